"""The editors' desk in-process: forwards with reply keys, who may command, what comes back.

Every test files the demo's item 1 (天河区, `examples/valid.eml`) and item 2 (越秀区), then
lets editors' replies (as Foxmail, Outlook and 163 webmail build them) arrive at the desk.
"""

from __future__ import annotations

import email
import email.policy
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim
import pytest
from sqlalchemy import func, select, text

from ingest.desk import dkim_passes, find_keys, reply_key
from ingest.desk.keys import MAX_DKIM_SIGNATURES, forward_message_id
from ingest.pipeline import Arrival, Outcome
from ledger.audit import verify_chain
from ledger.demo import load_demo
from ledger.editors import REPLY_KEY_SECRET, set_passphrase
from ledger.models import (
    AuditEntry,
    DeskAction,
    Intake,
    OutboundMessage,
    ScoreEvent,
    StoredSecret,
)
from mailroom.app import App
from mailroom.config import parse_config
from parser import decode_message
from tests.conftest import DATA, REPO

DESK = DATA / "desk"
SECRET = "desk-tests-reply-key-secret"
KEY1 = reply_key(SECRET, 1)
KEY2 = reply_key(SECRET, 2)
RECEIVED = datetime(2026, 11, 22, 2, 20, tzinfo=UTC)


def make_app(db_url: str, tmp_path: Path, **security: Any) -> App:
    settings: dict[str, Any] = {"database": {"url": db_url}, "security": security}
    office = App.open(parse_config(settings, tmp_path, environ={}))
    # The desk's clock: deductions count in the quarter of the time they are recorded.
    office.pipeline.clock = lambda: RECEIVED + timedelta(hours=1)
    with office.ledger.transaction() as session:
        load_demo(session)
    return office


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[App]:
    office = make_app(db_url, tmp_path, reply_key_secret=SECRET)
    file_items(office)
    try:
        yield office
    finally:
        office.close()


def file_items(app: App) -> None:
    for raw in (
        (REPO / "examples" / "valid.eml").read_bytes(),
        (DESK / "item_yuexiu_gbk.eml").read_bytes(),
    ):
        assert app.pipeline.process(raw, Arrival("daily", "file", RECEIVED)).state == "filed"


def to_desk(app: App, raw: bytes, rcpt: str = "", minutes: int = 30) -> Outcome:
    rcpt = rcpt or str(decode_message(raw).header("To") or "")
    at = RECEIVED + timedelta(minutes=minutes)
    return app.pipeline.process(
        raw, Arrival("desk", "smtp", at, mail_from="x@gzb.gz.test", rcpt=rcpt)
    )


def fixture(name: str) -> bytes:
    return (DESK / name).read_bytes()


def outbox(app: App, kind: str | None = None) -> list[tuple[str, EmailMessage]]:
    with app.ledger.reader() as s:
        query = select(OutboundMessage).order_by(OutboundMessage.id)
        if kind:
            query = query.where(OutboundMessage.kind == kind)
        rows = s.scalars(query).all()
    out = []
    for row in rows:
        msg = email.message_from_bytes(row.message, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out.append((row.to_address, msg))
    return out


def plain(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    assert body is not None
    content = body.get_content()
    assert isinstance(content, str)
    return content


def counts(app: App) -> tuple[int, int]:
    """Desk actions and audit rows; any scoring event also has its audit row."""
    with app.ledger.reader() as s:
        actions = s.scalar(select(func.count(DeskAction.id))) or 0
        audits = s.scalar(select(func.count(AuditEntry.id))) or 0
        assert (s.scalar(select(func.count(ScoreEvent.id))) or 0) <= audits
    return actions, audits


# --- the forward ---------------------------------------------------------------------------


def test_each_filed_item_goes_to_every_editor_with_its_reply_key(app: App) -> None:
    forwards = outbox(app, "desk")
    assert [to for to, _ in forwards] == [
        "chenjing@gzb.gz.test",
        "liangxiaotong@gzb.gz.test",
        "hezhenhua@gzb.gz.test",
    ] * 2
    first = forwards[0][1]
    assert first["Reply-To"].addresses[0].addr_spec == f"desk+{KEY1}@mailroom.test"
    assert str(first["Subject"]).startswith("【待编】GZ-2026-000001 天河区：")
    assert f"[#{KEY1}]" in str(first["Subject"])
    assert str(first["Message-ID"]).startswith(f"<mailroom.desk.{KEY1}.")
    assert first["Auto-Submitted"] == "auto-generated"
    text_part = plain(first)
    assert "登记编号：GZ-2026-000001" in text_part and "李明" in text_part
    attachment = next(first.iter_attachments())
    assert attachment.get_filename() == "GZ-2026-000001.eml"
    assert attachment.get_content() == (REPO / "examples" / "valid.eml").read_bytes()
    # The fixtures' replies answer exactly this forward: same subject, same key.
    fixture_subject = decode_message(fixture("reply_foxmail_gbk_adopt.eml")).subject
    assert fixture_subject == "回复：" + str(first["Subject"])
    second = forwards[3][1]
    assert second["Reply-To"].addresses[0].addr_spec == f"desk+{KEY2}@mailroom.test"


def test_the_forward_gives_each_warning_with_its_figures(db_url: str, tmp_path: Path) -> None:
    """The editors read the warnings as the unit's receipt says them, numbers included."""
    office = make_app(db_url, tmp_path, reply_key_secret=SECRET)
    try:
        # examples/valid.eml was written (Date:, sign-off) on 2026-11-22 10:15 +08:00; it
        # arrives ten days later.
        late = datetime(2026, 12, 2, 2, 15, 32, tzinfo=UTC)
        raw = (REPO / "examples" / "valid.eml").read_bytes()
        outcome = office.pipeline.process(raw, Arrival("daily", "file", late))
        assert (outcome.state, outcome.reasons) == ("filed", ("clock_skew", "late_report"))
        expected = ("发件计算机时间与收件时间相差约 10 天", "落款日期早于收件日期 10 天")
        for _to, forward in outbox(office, "desk"):
            assert all(text in plain(forward) for text in expected), plain(forward)
        ((_to, receipt),) = outbox(office, "receipt")
        assert all(text in plain(receipt) for text in expected)
    finally:
        office.close()


def test_desk_forward_addresses_replace_the_editors_when_configured(
    db_url: str, tmp_path: Path
) -> None:
    config = parse_config(
        {
            "database": {"url": db_url},
            "mailboxes": {"desk_forward": ["bianji@gzb.gz.test"]},
            "security": {"reply_key_secret": SECRET},
        },
        tmp_path,
        environ={},
    )
    office = App.open(config)
    try:
        with office.ledger.transaction() as session:
            load_demo(session)
        file_items(office)
        assert [to for to, _ in outbox(office, "desk")] == ["bianji@gzb.gz.test"] * 2
    finally:
        office.close()


def test_without_a_configured_secret_one_is_made_once_and_kept_in_the_database(
    db_url: str, tmp_path: Path
) -> None:
    first = make_app(db_url, tmp_path)
    second = make_app(db_url, tmp_path)  # another instance on the same database
    try:
        file_items(first)
        with first.ledger.reader() as s:
            stored = s.scalars(
                select(StoredSecret).where(StoredSecret.name == REPLY_KEY_SECRET)
            ).one()
        assert len(stored.value) >= 40
        forward = outbox(first, "desk")[0][1]
        key = reply_key(stored.value, 1)
        assert forward["Reply-To"].addresses[0].addr_spec == f"desk+{key}@mailroom.test"
        # The other instance checks the key with the same stored secret.
        reply = fixture("reply_163_utf8_decline.eml").replace(KEY1.encode(), key.encode())
        assert to_desk(second, reply).state == "command"
    finally:
        first.close()
        second.close()


# --- commands that need no scoring: 不采用, 退回, 撤销 ------------------------------------------


def test_decline_from_163_webmail_tells_the_unit_and_confirms_to_the_editor(app: App) -> None:
    outcome = to_desk(app, fixture("reply_163_utf8_decline.eml"))
    assert (outcome.state, outcome.reasons) == ("command", ())
    with app.ledger.reader() as s:
        action = s.scalars(select(DeskAction)).one()
        assert (action.verb, action.editor, action.submission_id) == (
            "decline",
            "hezhenhua@gzb.gz.test",
            1,
        )
        entry = s.scalars(select(AuditEntry)).one()
        assert (entry.actor, entry.action, entry.subject) == (
            "hezhenhua@gzb.gz.test",
            "decline",
            "GZ-2026-000001",
        )
        assert entry.source.startswith(f"intake:{outcome.intake_id} <4c1b9e2a.")
    notices = outbox(app, "notice")
    assert [to for to, _ in notices] == ["liming@th.gz.test"]
    notice_text = plain(notices[0][1])
    assert "不予采用，理由：内容与前期信息重复" in notice_text
    assert "GZ-2026-000001" in str(notices[0][1]["Subject"])
    confirmations = outbox(app, "confirmation")
    assert [to for to, _ in confirmations] == ["hezhenhua@gzb.gz.test"]
    confirmation = confirmations[0][1]
    assert "已全部登记" in str(confirmation["Subject"])
    assert "已登记（GZ-2026-000001）：不采用" in plain(confirmation)
    assert (
        confirmation["In-Reply-To"] == "<4c1b9e2a.5d31.18f3c2a9b7e.Coremail.hezhenhua@gzb.gz.test>"
    )


def test_return_for_revision_asks_the_unit_for_a_revised_item(app: App) -> None:
    assert to_desk(app, fixture("reply_foxmail_gbk_return.eml")).state == "command"
    ((to, notice),) = outbox(app, "notice")
    assert to == "liming@th.gz.test"
    assert "退回修改，理由：需注明数据来源" in plain(notice)
    assert "【修改稿】" in plain(notice)


def test_undo_marks_the_earlier_tag_undone_and_is_audited(app: App) -> None:
    assert to_desk(app, fixture("reply_163_utf8_decline.eml")).state == "command"
    undo = fixture("reply_163_utf8_decline.eml").replace(b"<4c1b9e2a.", b"<5d2c0f3b.")
    undo = _replace_body(undo, "撤销 不采用")
    assert to_desk(app, undo, minutes=40).state == "command"
    with app.ledger.reader() as s:
        declined, undone = s.scalars(select(DeskAction).order_by(DeskAction.id)).all()
        assert declined.undone_by == undone.id and undone.verb == "undo"
        assert [e.action for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))] == [
            "decline",
            "undo",
        ]
        assert verify_chain(s).ok
    # Nothing left to undo: refused, and said so.
    again = _replace_body(undo.replace(b"<5d2c0f3b.", b"<6e3d1a4c."), "撤销 不采用")
    assert to_desk(app, again, minutes=50).reasons == ("nothing_to_undo",)


def test_a_reply_applies_whole_or_not_at_all(app: App) -> None:
    raw = _replace_body(fixture("reply_163_utf8_decline.eml"), "不采用 重复\n采纳 穗府要情")
    outcome = to_desk(app, raw)
    assert outcome.state == "command_refused"
    assert set(outcome.reasons) == {"unknown_tag", "reply_not_applied_whole"}
    assert counts(app) == (0, 0)
    assert outbox(app, "notice") == []
    text_part = plain(outbox(app, "confirmation")[0][1])
    assert "采纳 穗府要情" in text_part and "无法识别的标签" in text_part


# --- acceptance 3: refused, nothing changes --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason", "told"),
    [
        ("new_editor_no_key.eml", "no_reply_key", "chenjing@gzb.gz.test"),
        ("reply_officer_with_key.eml", "not_an_editor", None),
        ("reply_key_for_other_item.eml", "key_for_other_item", "chenjing@gzb.gz.test"),
        ("reply_quoted_only.eml", "no_commands", "chenjing@gzb.gz.test"),
    ],
)
def test_refused_commands_change_nothing(
    app: App, name: str, reason: str, told: str | None
) -> None:
    before = outbox(app)
    outcome = to_desk(app, fixture(name))
    assert (outcome.state, outcome.reasons) == ("command_refused", (reason,))
    assert counts(app) == (0, 0)
    with app.ledger.reader() as s:
        intake = s.get(Intake, outcome.intake_id)
        assert intake is not None and intake.state == "command_refused"
    new = outbox(app)[len(before) :]
    if told is None:
        assert new == []  # a forger learns nothing
    else:
        assert [(to, "confirmation" in str(m["X-Mailroom-Origin"])) for to, m in new] == [
            (told, True)
        ]


def test_a_forged_or_altered_key_is_refused(app: App) -> None:
    # A new message to a made-up plus address: the key's MAC does not match item 1.
    forged = f"desk+1-{'a' * 20}@mailroom.test"
    raw = fixture("new_editor_no_key.eml").replace(b"<desk@mailroom.test>", f"<{forged}>".encode())
    assert to_desk(app, raw).reasons == ("bad_reply_key",)
    assert counts(app) == (0, 0)


# --- Approved: passphrases and batches -------------------------------------------------------


def _new_message(
    sender: str, body: str, *, subject: str = "编辑台指令", msgid: str = "<batch-1@gzb.gz.test>"
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "desk@mailroom.test"
    msg["Subject"] = subject
    msg["Date"] = "Sun, 22 Nov 2026 11:30:00 +0800"
    msg["Message-ID"] = msgid
    msg.set_content(body, charset="gb18030", cte="base64")
    return msg.as_bytes(policy=email.policy.SMTP)


def _replace_body(raw: bytes, top: str) -> bytes:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    msg.clear_content()
    msg.set_content(
        top + '\n\n在 2026-11-22，"政务信息处" 写道：\n> 采用 穗府信息 标题\n', charset="utf-8"
    )
    return msg.as_bytes(policy=email.policy.SMTP)


def test_a_batch_with_a_passphrase_applies_each_line_on_its_own(app: App) -> None:
    with app.ledger.transaction() as s:
        set_passphrase(s, "ChenJing@gzb.gz.test", "编辑部 2026 口令", datetime.now(UTC))
    body = (
        "Approved: 编辑部 2026 口令\n"
        "不采用 与前期重复\n"
        "GZ-2026-000001\n"
        "GZ-2026-000099\n"
        "GZ-2026-000002\n"
    )
    outcome = to_desk(app, _new_message("陈静 <chenjing@gzb.gz.test>", body))
    assert (outcome.state, outcome.reasons) == ("command", ("unknown_item",))
    with app.ledger.reader() as s:
        assert sorted(a.submission_id or 0 for a in s.scalars(select(DeskAction))) == [1, 2]
    confirmation = plain(outbox(app, "confirmation")[0][1])
    assert "已登记（GZ-2026-000001）" in confirmation
    assert "未执行（GZ-2026-000099）：没有此登记编号的稿件" in confirmation
    assert "已登记（GZ-2026-000002）" in confirmation
    assert [to for to, _ in outbox(app, "notice")] == ["liming@th.gz.test", "wangfang@yx.gz.test"]


def test_a_wrong_passphrase_or_none_refuses_the_batch(app: App) -> None:
    with app.ledger.transaction() as s:
        set_passphrase(s, "chenjing@gzb.gz.test", "编辑部 2026 口令", datetime.now(UTC))
    wrong = _new_message(
        "chenjing@gzb.gz.test", "Approved: 猜一猜 猜一猜\n不采用 重复\nGZ-2026-000001\n"
    )
    assert to_desk(app, wrong).reasons == ("bad_passphrase",)
    other = _new_message(
        "liangxiaotong@gzb.gz.test",
        "Approved: 编辑部 2026 口令\n不采用 重复\nGZ-2026-000001\n",
        msgid="<b2@gzb.gz.test>",
    )
    assert to_desk(app, other).reasons == ("bad_passphrase",)  # a passphrase is one editor's
    without = _new_message(
        "chenjing@gzb.gz.test", "不采用 重复\nGZ-2026-000001\n", msgid="<b3@gzb.gz.test>"
    )
    assert to_desk(app, without).reasons == ("no_reply_key",)
    assert counts(app) == (0, 0)


def test_a_reply_key_covers_its_own_item_only(app: App) -> None:
    raw = _replace_body(fixture("reply_163_utf8_decline.eml"), "不采用 重复\nGZ-2026-000002")
    outcome = to_desk(app, raw)
    # The reply group (nothing for item 1 here) and the line for item 2, refused on its own.
    assert outcome.state == "command_refused"
    assert "key_for_other_item" in outcome.reasons
    assert counts(app) == (0, 0)


# --- DKIM ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """A 2048-bit RSA key made for this test run: (private PEM, DNS TXT record)."""
    folder = tmp_path_factory.mktemp("dkim")
    private = folder / "private.pem"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(private), "2048"], check=True, capture_output=True
    )
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(private), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    import base64

    return private.read_bytes(), b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def dns_for(record: bytes) -> Callable[..., bytes | None]:
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"mailroom-test._domainkey.gzb.gz.test." else None

    return lookup


def signed(raw: bytes, private: bytes) -> bytes:
    signature = dkim.sign(
        raw,
        b"mailroom-test",
        b"gzb.gz.test",
        private,
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
    )
    assert isinstance(signature, bytes)
    return signature + raw


@pytest.fixture
def dkim_app(db_url: str, tmp_path: Path, dkim_key: tuple[bytes, bytes]) -> Iterator[App]:
    office = make_app(db_url, tmp_path, reply_key_secret=SECRET, require_dkim=True)
    office.pipeline.desk.dns_txt = dns_for(dkim_key[1])
    file_items(office)
    try:
        yield office
    finally:
        office.close()


def test_dkim_required_a_valid_signature_of_the_editors_domain_is_applied(
    dkim_app: App, dkim_key: tuple[bytes, bytes]
) -> None:
    raw = signed(fixture("reply_163_utf8_decline.eml"), dkim_key[0])
    assert to_desk(dkim_app, raw).state == "command"
    # With DKIM proving the sender, a new message (no key, no passphrase) is trusted too.
    batch = signed(
        _new_message("chenjing@gzb.gz.test", "退回 需注明来源\nGZ-2026-000002\n"), dkim_key[0]
    )
    assert to_desk(dkim_app, batch).state == "command"
    assert counts(dkim_app)[0] == 2


@pytest.mark.parametrize("how", ["tampered", "unsigned", "other_key"])
def test_dkim_required_a_failing_signature_is_refused(
    dkim_app: App, dkim_key: tuple[bytes, bytes], how: str
) -> None:
    raw = fixture("reply_163_utf8_decline.eml")
    if how == "tampered":
        raw = signed(raw, dkim_key[0]).replace(b"Subject: =?UTF-8?B?", b"Subject: =?UTF-8?b?", 1)
        raw = raw.replace(b"hezhenhua@gzb.gz.test>\r\nTo:", b"hezhenhua@gzb.gz.test>\r\nTo: ", 1)
        raw = raw.replace(b"Date: Sun, 22 Nov 2026 10:58:41", b"Date: Sun, 22 Nov 2026 10:59:41", 1)
    elif how == "other_key":
        dkim_app.pipeline.desk.dns_txt = dns_for(
            b"v=DKIM1; k=rsa; p=" + dkim_key[1].split(b"p=")[1][::-1]
        )
        raw = signed(raw, dkim_key[0])
    outcome = to_desk(dkim_app, raw)
    assert (outcome.state, outcome.reasons) == ("command_refused", ("dkim_failed",))
    assert counts(dkim_app) == (0, 0)


def test_audit_rows_cannot_be_edited_behind_the_services_back(app: App) -> None:
    assert to_desk(app, fixture("reply_163_utf8_decline.eml")).state == "command"
    assert to_desk(app, fixture("reply_foxmail_gbk_return.eml"), minutes=35).state == "command"
    with app.ledger.transaction() as s:
        assert verify_chain(s).ok
        s.execute(text("UPDATE audit_log SET actor = 'someone@else.test' WHERE id = 1"))
    with app.ledger.reader() as s:
        report = verify_chain(s)
    assert not report.ok and report.broken_at == 1


def test_the_same_reply_delivered_twice_is_applied_once(app: App) -> None:
    raw = fixture("reply_163_utf8_decline.eml")
    assert to_desk(app, raw).state == "command"
    relayed = (
        b"Received: from mx.gzb.gz.test by mailroom; Sun, 22 Nov 2026 10:59:00 +0800\r\n" + raw
    )
    assert to_desk(app, relayed, minutes=31).state == "duplicate"
    assert counts(app) == (1, 1)
    assert len(outbox(app, "confirmation")) == 1


def test_refusal_confirmations_to_one_editor_are_rate_limited(db_url: str, tmp_path: Path) -> None:
    office = make_app(db_url, tmp_path, reply_key_secret=SECRET, refusals_per_hour=2)
    try:
        file_items(office)
        raw = fixture("new_editor_no_key.eml")
        reasons = [
            to_desk(
                office, raw.replace(b"<202611221110021234567@", f"<{n}@".encode()), minutes=n
            ).reasons
            for n in range(1, 5)
        ]
        assert reasons == [("no_reply_key",)] * 2 + [("no_reply_key", "refusal_rate_limited")] * 2
        assert len(outbox(office, "confirmation")) == 2
    finally:
        office.close()


def test_init_makes_the_reply_key_secret_when_the_config_sets_none(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mailroom.cli import main

    config = tmp_path / "mailroom.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    assert main(["--config", str(config), "init"]) == 0
    assert "reply-key secret: from the database" in capsys.readouterr().out
    office = App.open(parse_config({"database": {"url": db_url}}, tmp_path, environ={}))
    try:
        with office.ledger.reader() as s:
            first = s.scalars(select(StoredSecret.value)).one()
    finally:
        office.close()
    assert main(["--config", str(config), "init"]) == 0  # again: the same secret is kept
    office = App.open(parse_config({"database": {"url": db_url}}, tmp_path, environ={}))
    try:
        with office.ledger.reader() as s:
            assert s.scalars(select(StoredSecret.value)).one() == first
    finally:
        office.close()
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[security]\nreply_key_secret = "{SECRET}"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "init"]) == 0
    assert "reply-key secret: from the config" in capsys.readouterr().out


def test_a_key_in_a_forwards_message_id_of_either_style_is_found() -> None:
    """A reply that kept only References: today's forwards and those of earlier versions."""
    for msgid in (forward_message_id(KEY1, "mailroom.test"), f"<desk.{KEY1}.0a1b2c3d@x.test>"):
        raw = (
            "From: chenjing@gzb.gz.test\r\nTo: inf@mailroom.test\r\nSubject: 回复\r\n"
            f"Message-ID: <r1@gzb.gz.test>\r\nReferences: {msgid}\r\n\r\n采用 穗府信息\r\n"
        ).encode()
        found = find_keys(SECRET, decode_message(raw), "desk@mailroom.test")
        assert (found.items, found.invalid) == ({1: "references"}, 0), msgid


def test_only_the_topmost_signatures_are_tried(dkim_key: tuple[bytes, bytes]) -> None:
    """A forger's pile of signatures whose name servers never answer cannot hold the filer:
    past `MAX_DKIM_SIGNATURES` none is looked up."""
    lookups: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        lookups.append(name)
        return dns_for(dkim_key[1])(name, timeout)

    valid = signed(fixture("reply_163_utf8_decline.eml"), dkim_key[0])
    for before, expected in ((MAX_DKIM_SIGNATURES - 1, True), (MAX_DKIM_SIGNATURES, False)):
        raw = valid
        for n in range(before):  # each new signature goes on top of the valid one
            signature = dkim.sign(raw, b"gone%d" % n, b"gzb.gz.test", dkim_key[0])
            assert isinstance(signature, bytes)
            raw = signature + raw
        lookups.clear()
        assert dkim_passes(raw, "gzb.gz.test", dns) is expected
        assert len(lookups) == min(before + 1, MAX_DKIM_SIGNATURES)
