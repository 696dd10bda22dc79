"""Hostile senders against a real `mailroom serve` over SMTP (SPEC §10, the probe's findings):
they can neither stop filing for others nor speak in a registered unit's name.

Each test is one finding: a crafted message (or a flood) arrives by SMTP on 127.0.0.1, and the
ledger, the outbox, the spool and serve's log show what became of it and of the ordinary
item sent after it.
"""

from __future__ import annotations

import base64
import io
import random
import re
import smtplib
import socket
import subprocess
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ingest.desk import reply_key
from ledger.models import Intake, OutboundMessage, Submission
from tests.conftest import DATA, REPO
from tests.service import LedgerView, MailroomInstance, wait_for, with_message_id
from tests.wordfile import word97

# Reads today's date (a real serve stamps mail as it arrives): run at a year boundary.
pytestmark = [pytest.mark.wall_clock, pytest.mark.slow]

VALID = (REPO / "examples" / "valid.eml").read_bytes()
SECRET = "hostile-tests-reply-key-secret"
ITEM_TH = (
    "今年以来，天河区围绕优化营商环境，深入推进“放管服”改革，企业开办时间由5个工作日压缩至1个"
    "工作日，群众办事平均等候时间缩短40%。"
)


def ew(text: str) -> str:
    """An RFC 2047 encoded-word, as clients write non-ASCII headers."""
    return f"=?UTF-8?B?{base64.b64encode(text.encode()).decode()}?="


def folded_ew(text: str, chunk: int = 20) -> str:
    """A long header value as clients fold it: encoded-words of `chunk` characters, a line each."""
    return "\r\n ".join(ew(text[i : i + chunk]) for i in range(0, len(text), chunk))


def signoff(unit: str = "天河区政府办公室", name: str = "李明") -> str:
    today = datetime.now(UTC).astimezone().date()
    return (
        f"作者单位：{unit}\n姓名：{name}\n联系电话：020-38620000\n"
        f"日期：{today.year}年{today.month}月{today.day}日\n"
    )


def mail(
    subject: str,
    *,
    message_id: str,
    sender: str = f'"{ew("天河区")}" <liming@th.gz.test>',
    text: str | None = None,
    html: str | None = None,
    attachment: tuple[str, bytes] | None = None,
    extra_headers: str = "",
) -> bytes:
    """A message as a mail client lays one out; `subject` and `sender` are raw header text."""
    head = (
        f"Date: {format_datetime(datetime.now(UTC))}\r\nFrom: {sender}\r\n"
        f"To: inf@mailroom.test\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n"
        f"MIME-Version: 1.0\r\n{extra_headers}"
    )

    def part(ctype: str, data: bytes, name: str | None = None) -> str:
        disposition = f'Content-Disposition: attachment; filename="{name}"\r\n' if name else ""
        encoded = base64.encodebytes(data).decode().replace("\n", "\r\n")
        return (
            f"Content-Type: {ctype}\r\n{disposition}Content-Transfer-Encoding: base64\r\n\r\n"
            f"{encoded}"
        )

    body_text = text if text is not None else f"{ITEM_TH}\n\n{signoff()}"
    parts = []
    if html is not None:
        parts.append(part("text/html; charset=utf-8", html.encode()))
    else:
        parts.append(part("text/plain; charset=utf-8", body_text.encode()))
    if attachment is not None:
        name, data = attachment
        parts.append(part("application/msword", data, name))
    if len(parts) == 1:
        return (head + parts[0]).encode()
    boundary = "----=_Part_hostile"
    body = "".join(f"--{boundary}\r\n{p}\r\n" for p in parts) + f"--{boundary}--\r\n"
    return (head + f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n' + body).encode()


def send(port: int, mail_from: str, raw: bytes, to: str = "inf@mailroom.test") -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.sendmail(mail_from, [to], raw)


def ordinary_item(n: int) -> bytes:
    """The README's valid item under a Message-ID of its own: what a unit really sends."""
    return with_message_id(VALID, f"ordinary-{n}@th.gz.test")


class Office:
    """A `mailroom serve` on its own SQLite (or PostgreSQL) database with the demo registry."""

    def __init__(self, root: Path, db_url: str, **settings: Any) -> None:
        overrides = {
            "smtp.max_message_bytes": 4_000_000,
            "security.reply_key_secret": SECRET,
            **settings,
        }
        self.instance = MailroomInstance(root, db_url, **overrides)
        self.instance.init()
        self.view = LedgerView(db_url)

    @property
    def port(self) -> int:
        return self.instance.port

    def intake(self, message_id: str) -> Intake | None:
        with self.view.ledger.reader() as s:
            return s.scalars(select(Intake).where(Intake.message_id == f"<{message_id}>")).first()

    def judged(self, message_id: str) -> Intake | None:
        row = self.intake(message_id)
        return row if row is not None and row.state != "received" else None

    def quarantined(self) -> list[Intake]:
        with self.view.ledger.reader() as s:
            return list(s.scalars(select(Intake).where(Intake.state == "quarantined")))

    def raw_of(self, row: Intake) -> bytes:
        with self.view.ledger.reader() as s:
            intake = s.get(Intake, row.id)
            assert intake is not None and intake.raw is not None
            return intake.raw.data

    def items(self) -> list[Submission]:
        with self.view.ledger.reader() as s:
            return list(s.scalars(select(Submission).order_by(Submission.id)))

    def outbox(self, kind: str | None = None) -> list[OutboundMessage]:
        return [m for m in self.view.outbox() if kind is None or m.kind == kind]

    def log(self) -> str:
        return self.instance.log.read_text(errors="replace")

    def close(self) -> None:
        self.instance.close()
        self.view.close()


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    one = Office(tmp_path / "office", f"sqlite:///{tmp_path}/mailroom.db")
    try:
        yield one
    finally:
        one.close()


def wait_judged(office: Office, message_id: str, timeout: float = 30.0) -> Intake:
    row: Intake = wait_for(
        lambda: office.judged(message_id), timeout=timeout, what=f"<{message_id}> judged"
    )
    return row


# --- 1. poison messages never stop filing for others ---------------------------------------


def long_docx_text() -> bytes:
    """A .docx within every size cap whose 15 MiB of XML take seconds to read: empty
    paragraphs, the most elements the bytes hold (1.7 s of CPU when written; paragraphs of one
    character took 0.9 s, under the tests' one-second budget with the rest of the filing)."""
    base = zipfile.ZipFile(io.BytesIO((DATA / "word" / "item.docx").read_bytes()))
    xml = base.read("word/document.xml")
    start = xml.index(b"<w:body>") + len(b"<w:body>")
    paragraph = b"<w:p/>"
    big = xml[:start] + paragraph * (15 * 1024 * 1024 // len(paragraph)) + xml[start:]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name in base.namelist():
            z.writestr(name, big if name == "word/document.xml" else base.read(name))
    return out.getvalue()


def long_title(seed: int) -> str:
    """32,000 characters of a title's words in no order (the worst case for comparing two)."""
    rng = random.Random(seed)
    return "".join(rng.choice("天河区推进改革成效") for _ in range(32_000))


POISONS = {
    # 60 KB of '-' after the title: the plain-revision regex backtracked over every start.
    "subject_dashes": lambda: [
        mail(ew("【天河区】天河区推进改革") + " " + "-" * 60_000 + " x",
             message_id="poison-subject@evil.test"),
    ],
    # 745 KB of fields opened and moved to their result, in a Word 97 file: the field-code
    # filter looked at every open field for every character.
    "doc_field_codes": lambda: [
        mail(ew("【天河区】天河区推进改革"), message_id="poison-doc@evil.test",
             attachment=("材料.doc", word97("\x13\x14a" * 248_000))),
    ],
    # 480 KB of '<!--' as the HTML body: the standard html.parser rescans (CVE-2025-6069).
    "html_comments": lambda: [
        mail(ew("【天河区】天河区推进改革"), message_id="poison-html@evil.test",
             html="<!--" * 120_000),
    ],
    # An item with a 32,000-character title, then a 修改稿 with another: the similarity of two
    # such titles is quadratic in their length.
    "revision_title": lambda: [
        mail(folded_ew("【天河区】" + long_title(1)), message_id="poison-title@evil.test"),
        mail(folded_ew("【天河区】【修改稿】" + long_title(2)),
             message_id="poison-revision@evil.test"),
    ],
}  # fmt: skip


@pytest.mark.parametrize("poison", sorted(POISONS))
def test_a_poison_message_does_not_hold_up_the_item_after_it(office: Office, poison: str) -> None:
    office.instance.start()
    for n in range(3):  # the unit has items a 修改稿 could supersede
        send(office.port, "liming@th.gz.test", ordinary_item(n))
    wait_for(lambda: len(office.items()) == 3, what="three ordinary items filed")
    raws = POISONS[poison]()
    for raw in raws:
        send(office.port, "liming@th.gz.test", raw)
    send(office.port, "liming@th.gz.test", ordinary_item(99))
    started = time.monotonic()
    after = wait_judged(office, "ordinary-99@th.gz.test", timeout=30)
    assert after.state == "filed"
    assert time.monotonic() - started < 30
    for raw in raws:
        header = next(line for line in raw.split(b"\r\n") if line.startswith(b"Message-ID"))
        poisoned = office.judged(header.decode()[13:-1])
        assert poisoned is not None and poisoned.state in ("filed", "rejected"), poisoned


def test_a_message_over_the_time_budget_is_set_aside_and_the_next_filed(tmp_path: Path) -> None:
    """Acceptance 2: built to take long (15 MiB of Word XML), it ends quarantined too_slow
    within the budget, and the item after it is filed within seconds; after a restart too."""
    office = Office(
        tmp_path / "office", f"sqlite:///{tmp_path}/m.db", **{"intake.time_budget_seconds": 1}
    )
    try:
        slow = mail(
            ew("【天河区】天河区推进改革"),
            message_id="slow-1@th.gz.test",
            attachment=("材料.docx", long_docx_text()),
        )
        office.instance.start()
        # The first items warm the filer up (imports, templates, the database's first pages);
        # on a loaded machine the very first may itself overrun a one-second budget.
        for n in (0, 10, 11):
            send(office.port, "liming@th.gz.test", ordinary_item(n))
            if wait_judged(office, f"ordinary-{n}@th.gz.test").state == "filed":
                break
        else:
            raise AssertionError("no ordinary item was filed within the budget")
        send(office.port, "liming@th.gz.test", slow)
        send(office.port, "liming@th.gz.test", ordinary_item(1))
        started = time.monotonic()
        assert wait_judged(office, "ordinary-1@th.gz.test", timeout=20).state == "filed"
        assert time.monotonic() - started < 10
        row = office.judged("slow-1@th.gz.test")
        assert row is not None and (row.state, row.reasons) == ("quarantined", ["too_slow"])
        assert row.error is not None and "1 s" in row.error
        office.instance.stop()

        # Spooled while nothing files, then met first by a fresh filing process.
        office.instance.start("--no-process")
        send(office.port, "liming@th.gz.test", with_message_id(slow, "slow-2@th.gz.test"))
        send(office.port, "liming@th.gz.test", ordinary_item(2))
        office.instance.stop()
        office.instance.start()
        started = time.monotonic()
        assert wait_judged(office, "ordinary-2@th.gz.test", timeout=20).state == "filed"
        assert time.monotonic() - started < 15  # the filer's own start-up included
        row = office.judged("slow-2@th.gz.test")
        assert row is not None and (row.state, row.reasons) == ("quarantined", ["too_slow"])
    finally:
        office.close()


def test_a_message_that_stops_the_filing_process_twice_is_set_aside(
    tmp_path: Path, pg_url: str
) -> None:
    """What the budget cannot interrupt: the filing process waits in C code (here on a lock
    another session holds in PostgreSQL). Past twice the budget and a grace, serve kills it
    and counts a strike against the message; at the second strike the message is set aside
    unread, and the item behind it is filed."""
    from sqlalchemy import create_engine, text

    office = Office(tmp_path / "office", pg_url, **{"intake.time_budget_seconds": 3})
    holder = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with holder.connect() as lock:
            # Copies of one message are judged in turn under this lock (`_serialise_copies`).
            lock.execute(
                text("SELECT pg_advisory_lock(hashtextextended(:key, 4))"),
                {"key": "<struck@th.gz.test>"},
            )
            office.instance.start()
            send(office.port, "liming@th.gz.test", with_message_id(VALID, "struck@th.gz.test"))
            send(office.port, "liming@th.gz.test", ordinary_item(1))
            after = wait_judged(office, "ordinary-1@th.gz.test", timeout=90)
            assert after.state == "filed"
            # Set aside unread: not even its headers are read a third time.
            [row] = office.quarantined()
            assert (row.reasons, row.message_id) == (["too_slow"], None)
            assert "stopped the filing process 2 times" in (row.error or "")
            assert office.raw_of(row) == with_message_id(VALID, "struck@th.gz.test")
        log = office.log()
        assert log.count("(strike 1;") == 1 and log.count("(strike 2;") == 1, log[-4000:]
        spool = office.instance.spool_dir
        wait_for(lambda: not office.instance.spooled(), what="the spool emptied")
        assert list((spool / "strikes").iterdir()) == []
    finally:
        holder.dispose()
        office.close()


# --- 2. an encoded-word From is a name, never an address -----------------------------------


def test_an_encoded_from_cannot_file_or_revise_in_an_officers_name(office: Office) -> None:
    office.instance.start()
    send(office.port, "liming@th.gz.test", ordinary_item(1))
    wait_for(lambda: len(office.items()) == 1, what="the unit's real item")
    title = office.items()[0].title
    forged = mail(
        ew(f"【天河区】【修改稿】{title}"),
        message_id="forged@evil.test",
        sender=f"{ew('liming@th.gz.test')} <attacker@evil.test>",
    )
    send(office.port, "attacker@evil.test", forged)
    row = wait_judged(office, "forged@evil.test")
    assert row.from_address == "attacker@evil.test"
    assert row.state == "rejected" and row.reasons[0] == "unknown_sender"
    [item] = office.items()  # nobody's item was filed; the real one was not superseded
    assert (item.status, item.title) == ("filed", title)
    assert not [m for m in office.outbox() if m.to_address == "liming@th.gz.test" and
                m.kind == "refusal"]  # fmt: skip


# --- 3. duplicates are judged against the same sender's copies only ------------------------


def test_decoys_under_a_victims_message_id_do_not_get_its_copy_filed_twice(
    office: Office,
) -> None:
    office.instance.start()
    # Decoys first, under the Message-ID the victim's client will give its item (Foxmail's
    # are a timestamp and a counter: they can be guessed).
    for n in range(6):
        decoy = mail(ew(f"【越秀区】诱饵 {n}"), message_id="victim@th.gz.test",
                     sender=f"decoy{n}@evil.test")  # fmt: skip
        send(office.port, f"decoy{n}@evil.test", decoy)
    wait_for(lambda: len(office.view.rows()) == 6, what="the decoys judged")
    victim = with_message_id(VALID, "victim@th.gz.test")
    send(office.port, "liming@th.gz.test", victim)
    wait_for(lambda: len(office.view.rows()) == 7, what="the victim's item judged")
    # The second copy, as the mailbox's own server delivered it: a header of its own added.
    copy = b"X-CM-TRANSID: AQAAf0CsxTMiAp9nFbkBAA--.1S2\r\n" + victim
    send(office.port, "liming@th.gz.test", copy)
    wait_for(lambda: len(office.view.rows()) == 8, what="all eight judged")
    rows = office.view.rows()
    assert [state for state, _ in rows[6:]] == ["filed", "duplicate"]
    assert len(office.items()) == 1


# --- 4. a connection flood leaves room for the units --------------------------------------


def test_a_connection_flood_from_two_clients_leaves_a_normal_sender_served(
    tmp_path: Path,
) -> None:
    office = Office(
        tmp_path / "office",
        f"sqlite:///{tmp_path}/m.db",
        **{"smtp.max_sessions": 60, "smtp.max_sessions_per_client": 20},
    )
    held: list[socket.socket] = []
    turned_away = 0
    try:
        office.instance.start()
        # Two flooding clients on their own loopback addresses, 150 connections each, held open.
        for source in ("127.0.0.2", "127.0.0.3"):
            for _ in range(150):
                s = socket.create_connection(
                    ("127.0.0.1", office.port), timeout=5, source_address=(source, 0)
                )
                held.append(s)
                if s.recv(200).startswith(b"421"):
                    turned_away += 1
        assert turned_away == 2 * (150 - 20)
        started = time.monotonic()
        send(office.port, "liming@th.gz.test", ordinary_item(1))
        assert time.monotonic() - started < 5
        assert wait_judged(office, "ordinary-1@th.gz.test").state == "filed"
        flood_lines = [ln for ln in office.log().splitlines() if "turned away" in ln]
        assert 1 <= len(flood_lines) <= 2  # once a minute, not per connection
        assert len(office.log().splitlines()) < 200
    finally:
        for s in held:
            s.close()
        office.close()


# --- 5. the database file deleted under the service ----------------------------------------


def test_a_deleted_database_file_stops_filing_and_keeps_the_spool(office: Office) -> None:
    office.instance.start()
    send(office.port, "liming@th.gz.test", ordinary_item(0))
    wait_for(lambda: len(office.items()) == 1, what="an item filed before")
    db = Path(office.instance.db_url.removeprefix("sqlite:///"))
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        path.unlink(missing_ok=True)
    answered = []
    for n in range(1, 11):
        try:
            send(office.port, "liming@th.gz.test", ordinary_item(n))
            answered.append(n)
        except smtplib.SMTPResponseException as exc:
            assert exc.smtp_code == 451  # the sender keeps it and tries again later
    time.sleep(3)  # the filing process looks at least once a second
    assert len(office.instance.spooled()) == len(answered)  # every 250 is still in the spool
    assert not db.exists()  # nothing made a new, empty database either
    assert "was deleted while the service ran" in office.log()
    # Nothing was filed or answered into the deleted file: no receipt for the ten.
    replies = (
        [p.read_bytes() for p in office.instance.outbox.glob("*")]
        if office.instance.outbox.exists()
        else []
    )
    assert not any(f"ordinary-{n}@".encode() in r for r in replies for n in answered)


# --- 6. refusals, not quarantine, for what the parser cannot read -------------------------


def nested(depth: int) -> bytes:
    body = ""
    for i in range(depth):
        body += f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'
    body += f"Content-Type: text/plain; charset=utf-8\r\n\r\n{ITEM_TH}\r\n"
    for i in reversed(range(depth)):
        body += f"--b{i}--\r\n"
    return (
        f"From: liming@th.gz.test\r\nTo: inf@mailroom.test\r\nSubject: {ew('【天河区】嵌套')}\r\n"
        "Message-ID: <nested@th.gz.test>\r\nMIME-Version: 1.0\r\n" + body
    ).encode()


CHARSETS = ("rot13", "idna", "punycode", "hex", "zlib", "bz2", "uu", "base64")


def test_a_charset_label_naming_another_kind_of_codec_is_read_as_no_label(office: Office) -> None:
    """Text labelled with a codec that is no charset (`idna` reads bytes as host names,
    `rot13` is not even a bytes codec), and not readable in any charset either: refused as
    undecodable, not quarantined."""
    office.instance.start()
    title = "【天河区】天河区推进改革"
    text = ITEM_TH.encode("gbk") + b"\xff\xfe\xff\xfe" + f"\n\n{signoff()}".encode("gbk")
    for charset in CHARSETS:
        raw = (
            f"Date: {format_datetime(datetime.now(UTC))}\r\nFrom: liming@th.gz.test\r\n"
            "To: inf@mailroom.test\r\n"
            f"Subject: =?{charset}?B?{base64.b64encode(title.encode('gbk')).decode()}?=\r\n"
            f"Message-ID: <cs-{charset}@th.gz.test>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset={charset}\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{base64.encodebytes(text).decode()}"
        ).encode()
        send(office.port, "liming@th.gz.test", raw)
    for charset in CHARSETS:
        row = wait_judged(office, f"cs-{charset}@th.gz.test")
        assert (row.state, row.subject) == ("rejected", title), (charset, row.state, row.error)
        assert row.reasons == ["undecodable_text"], charset
    refused = [m.kind for m in office.outbox() if m.to_address == "liming@th.gz.test"]
    assert refused == ["refusal"] * len(CHARSETS)


def test_a_thousand_levels_of_nesting_get_a_refusal(office: Office) -> None:
    office.instance.start()
    send(office.port, "liming@th.gz.test", nested(1000))
    row = wait_judged(office, "nested@th.gz.test")
    assert row.state == "rejected" and "malformed_message" in row.reasons, row.reasons
    assert [m.to_address for m in office.outbox("refusal")] == ["liming@th.gz.test"]


def test_a_reply_key_in_arabic_indic_digits_is_refused_not_quarantined(office: Office) -> None:
    office.instance.start()
    send(office.port, "liming@th.gz.test", ordinary_item(1))
    wait_for(lambda: len(office.items()) == 1, what="an item to reply to")
    key = reply_key(SECRET, office.items()[0].id)
    item_id, mac = key.split("-")
    arabic = "".join(chr(0x0660 + int(d)) for d in item_id)
    reply = (
        f"From: chenjing@gzb.gz.test\r\nTo: desk+{arabic}-{mac}@mailroom.test\r\n"
        f"Subject: {ew(f'回复：[#{arabic}-{mac}]')}\r\nMessage-ID: <arabic@gzb.gz.test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n采用 调研\r\n"
    ).encode()
    send(office.port, "chenjing@gzb.gz.test", reply, to="desk@mailroom.test")
    row = wait_judged(office, "arabic@gzb.gz.test")
    assert row.state == "command_refused", (row.state, row.reasons, row.error)


# --- 7. no backscatter, no reflection ------------------------------------------------------


def test_refusals_are_capped_per_mailbox_and_domain_and_quote_nothing_to_strangers(
    tmp_path: Path,
) -> None:
    office = Office(
        tmp_path / "office",
        f"sqlite:///{tmp_path}/m.db",
        **{"security.refusals_per_hour": 3, "security.refusals_per_hour_per_domain": 8},
    )
    phishing = "账户异常，请点击 http://evil.test/login 验证"
    try:
        office.instance.start()
        # Plus-tags of one registered mailbox are one mailbox: 3 refusals, not 6.
        for n in range(6):
            raw = mail(ew(phishing), message_id=f"tag-{n}@evil.test",
                       sender=f"{ew(phishing)} <wangfang+{n}@yx.gz.test>")  # fmt: skip
            send(office.port, f"wangfang+{n}@yx.gz.test", raw)
        # Made-up people at a registered domain: 8 refusals in all for the domain.
        for n in range(10):
            raw = mail(ew(phishing), message_id=f"made-up-{n}@evil.test",
                       sender=f"{ew(phishing)} <user{n}@yx.gz.test>")  # fmt: skip
            send(office.port, f"user{n}@yx.gz.test", raw)
        wait_for(lambda: len(office.view.rows()) == 16, what="all sixteen judged")
        refusals = office.outbox("refusal")
        tagged = [m for m in refusals if m.to_address.startswith("wangfang+")]
        assert len(tagged) == 3
        assert len(refusals) == 8
        for refusal in refusals:
            assert "未登记" in refusal.subject and "账户异常" not in refusal.subject
            text = refusal.message.decode("ascii", "replace")
            assert (
                "evil.test/login" not in text
                and base64.b64encode(phishing.encode()).decode()[:16] not in text
            )
    finally:
        office.close()


# --- 8. the smaller findings ----------------------------------------------------------------


def test_approved_passphrases_are_locked_after_repeated_wrong_guesses(office: Office) -> None:
    result = office.instance.cli("editor", "passphrase", "chenjing@gzb.gz.test", "--generate")
    right = result.stdout.strip().split()[-1]
    office.instance.start()

    def batch(n: int, passphrase: str) -> bytes:
        return (
            f"From: chenjing@gzb.gz.test\r\nTo: desk@mailroom.test\r\nSubject: batch {n}\r\n"
            f"Message-ID: <guess-{n}@gzb.gz.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            f"Approved: {passphrase}\r\n扣分 TH 迟报\r\n"
        ).encode()

    for n in range(5):
        send(office.port, "chenjing@gzb.gz.test", batch(n, f"guess-{n}"), to="desk@mailroom.test")
        assert wait_judged(office, f"guess-{n}@gzb.gz.test").reasons == ["bad_passphrase"]
    send(office.port, "chenjing@gzb.gz.test", batch(5, right), to="desk@mailroom.test")
    row = wait_judged(office, "guess-5@gzb.gz.test")
    assert (row.state, row.reasons) == ("command_refused", ["passphrase_locked"])


def test_mail_to_postmaster_is_accepted_and_passed_to_the_operator(tmp_path: Path) -> None:
    office = Office(
        tmp_path / "office",
        f"sqlite:///{tmp_path}/m.db",
        **{"mailboxes.postmaster": "operator@gzb.gz.test"},
    )
    try:
        office.instance.start()
        note = mail("abuse report", message_id="to-postmaster@isp.test", sender="noc@isp.test")
        for rcpt in ("postmaster", "Postmaster@mailroom.test"):
            with smtplib.SMTP("127.0.0.1", office.port, timeout=30) as smtp:
                smtp.ehlo()
                smtp.mail("noc@isp.test")
                code, _ = smtp.rcpt(rcpt)
                assert code == 250, rcpt
                smtp.data(with_message_id(note, f"pm-{rcpt.lower()}@isp.test"))
        wait_for(lambda: len(office.outbox("postmaster")) == 2, what="both passed on")
        assert {m.to_address for m in office.outbox("postmaster")} == {"operator@gzb.gz.test"}
        row = office.judged("pm-postmaster@isp.test")
        assert row is not None and (row.state, row.reasons) == ("ignored", ["postmaster"])
        with smtplib.SMTP("127.0.0.1", office.port, timeout=30) as smtp:
            smtp.ehlo()
            smtp.mail("noc@isp.test")
            assert smtp.rcpt("postmaster@elsewhere.test")[0] == 550  # still no relay
    finally:
        office.close()


def test_a_message_with_bare_lf_line_endings_is_accepted(office: Office) -> None:
    office.instance.start()
    raw = VALID.replace(b"\r\n", b"\n")
    raw = with_message_id(raw, "bare-lf@th.gz.test")
    assert len(raw) > 1000 and b"\r" not in raw
    with socket.create_connection(("127.0.0.1", office.port), timeout=10) as s:
        reader = s.makefile("rb")

        def say(line: bytes) -> bytes:
            s.sendall(line)
            answer = reader.readline()
            while answer[3:4] == b"-":
                answer = reader.readline()
            return answer

        reader.readline()
        for command in (b"EHLO x\r\n", b"MAIL FROM:<liming@th.gz.test>\r\n",
                        b"RCPT TO:<inf@mailroom.test>\r\n", b"DATA\r\n"):  # fmt: skip
            assert say(command)[:1] in (b"2", b"3")
        # A client that writes bare LF writes the end of data as it should: <CRLF>.<CRLF>
        assert say(raw + b"\r\n.\r\n").startswith(b"250"), "bare-LF message refused"
    assert wait_judged(office, "bare-lf@th.gz.test").state == "filed"


def test_a_spool_file_that_cannot_be_removed_is_said_once_and_the_filer_goes_on(
    office: Office,
) -> None:
    office.instance.start("--no-process")
    send(office.port, "liming@th.gz.test", ordinary_item(1))
    office.instance.stop()
    spool = office.instance.spool_dir / "journal"
    subprocess.run(["chattr", "+i", str(spool)], check=True)  # not even root may write there
    try:
        office.instance.start()
        assert wait_judged(office, "ordinary-1@th.gz.test").state == "filed"
        time.sleep(4)  # a few drains later
        log = office.log()
        assert log.count("cannot be removed from the spool") == 1, log[-3000:]
        assert "ended unexpectedly" not in log
        assert len(re.findall(r"filing process \d+ started", log)) == 1  # never restarted
    finally:
        subprocess.run(["chattr", "-i", str(spool)], check=True)
