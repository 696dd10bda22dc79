"""Two desk mailboxes polled at once (two IMAP accounts with `mailbox = "desk"`), the editors'
replies interleaved between them: every confirmation goes to the editor who wrote, in answer
to that editor's own message, and every notice to the author of the item decided, once.

The desk is shared by both pollers; what belongs to one message must stay with it.
"""

from __future__ import annotations

import email
import email.policy
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import event, select

from ingest.imap import ImapPoller, lease_for
from ingest.pipeline import Arrival
from ledger.demo import load_demo
from ledger.models import Intake, OutboundMessage, Person, Submission
from mailroom.app import App
from mailroom.config import parse_config
from tests.conftest import DATA, REPO
from tests.dovecot import Dovecot
from tests.service import with_message_id

RECEIVED = datetime(2026, 11, 22, 2, 20, tzinfo=UTC)
ITEMS = 24  # twelve of 天河区, twelve of 越秀区
ACCOUNTS = ("deska", "deskb")
EDITORS = ("chenjing@gzb.gz.test", "liangxiaotong@gzb.gz.test", "hezhenhua@gzb.gz.test")


@pytest.fixture(scope="module")
def desk_dovecot() -> Iterator[Dovecot]:
    server = Dovecot(users={account: "secret" for account in ACCOUNTS})
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def app(db_url: str, tmp_path: Path, desk_dovecot: Dovecot) -> Iterator[App]:
    imap = {
        account: {
            "host": "127.0.0.1",
            "port": desk_dovecot.port,
            "ssl": False,
            "username": account,
            "password": "secret",
            "processed_folder": "done",
            "mailbox": "desk",
        }
        for account in ACCOUNTS
    }
    config = parse_config(
        {
            "database": {"url": db_url},
            "imap": imap,
            "security": {"reply_key_secret": "two-desks-secret"},
        },
        tmp_path,
        environ={},
    )
    office = App.open(config)
    office.pipeline.clock = lambda: RECEIVED + timedelta(hours=1)
    with office.ledger.transaction() as session:
        load_demo(session)
    try:
        yield office
    finally:
        office.close()


def file_items(app: App) -> None:
    sources = (REPO / "examples" / "valid.eml", DATA / "desk" / "item_yuexiu_gbk.eml")
    for n in range(ITEMS):
        raw = with_message_id(sources[n % 2].read_bytes(), f"item-{n}@units.gz.test")
        assert app.pipeline.process(raw, Arrival("daily", "file", RECEIVED)).state == "filed"


def forward_to(app: App, editor: str, item_id: int) -> EmailMessage:
    with app.ledger.reader() as s:
        for row in s.scalars(
            select(OutboundMessage).where(
                OutboundMessage.kind == "desk", OutboundMessage.to_address == editor
            )
        ):
            msg = email.message_from_bytes(row.message, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            if str(msg["Reply-To"]).count(f"+{item_id}-"):
                return msg
    raise AssertionError(f"no forward of item {item_id} to {editor}")


def reply(forward: EmailMessage, editor: str, body: str, n: int) -> bytes:
    """What an editor's mail client sends on 回复: to the Reply-To, the subject kept."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = editor
    msg["To"] = str(forward["Reply-To"])
    msg["Subject"] = "回复：" + str(forward["Subject"])
    msg["Date"] = email.utils.format_datetime(RECEIVED + timedelta(minutes=30))
    msg["Message-ID"] = f"<reply-{n}@gzb.gz.test>"
    msg["In-Reply-To"] = str(forward["Message-ID"])
    msg["References"] = str(forward["Message-ID"])
    msg.set_content(body + "\n\n编辑台\n", charset="utf-8")
    return msg.as_bytes()


def test_two_desk_pollers_at_once_answer_each_editor_and_tell_each_author(
    app: App, desk_dovecot: Dovecot
) -> None:
    file_items(app)
    with app.ledger.reader() as s:
        item_ids = s.scalars(select(Submission.id).order_by(Submission.id)).all()
    assert len(item_ids) == ITEMS
    sent: dict[str, tuple[str, int]] = {}  # reply Message-ID → (editor, item id)
    boxes: dict[str, list[bytes]] = {account: [] for account in ACCOUNTS}
    for n, item_id in enumerate(item_ids):
        editor = EDITORS[n % len(EDITORS)]
        body = "采用 穗府信息 标题" if n % 3 else "不采用 与本单位上期信息重复"
        boxes[ACCOUNTS[n % 2]].append(reply(forward_to(app, editor, item_id), editor, body, n))
        sent[f"<reply-{n}@gzb.gz.test>"] = (editor, item_id)
    for account, raws in boxes.items():
        desk_dovecot.append(raws, user=account, at=RECEIVED + timedelta(minutes=30))

    pollers = [
        ImapPoller(folder, app.pipeline, lease_for(app.ledger.engine, folder), 1_000_000)
        for folder in app.config.imap
    ]
    assert [p.config.mailbox for p in pollers] == ["desk", "desk"]
    errors: list[BaseException] = []
    start = threading.Barrier(len(pollers))

    def poll(poller: ImapPoller) -> None:
        try:
            start.wait(timeout=30)
            poller.poll_once()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=poll, args=(p,)) for p in pollers]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads change hands often, as on a busy many-core server
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=180)
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors
    assert all(desk_dovecot.uids("INBOX", user=account) == [] for account in ACCOUNTS)

    with app.ledger.reader() as s:
        intakes = {
            row.message_id: row for row in s.scalars(select(Intake).where(Intake.mailbox == "desk"))
        }
        assert sorted(intakes) == sorted(sent)
        assert {row.state for row in intakes.values()} == {"command"}, [
            (row.message_id, row.state, row.reasons) for row in intakes.values()
        ]
        by_intake: dict[int, list[OutboundMessage]] = {}
        for row in s.scalars(
            select(OutboundMessage).where(OutboundMessage.kind.in_(("confirmation", "notice")))
        ):
            assert row.intake_id is not None, (row.kind, row.to_address, row.subject)
            by_intake.setdefault(row.intake_id, []).append(row)
        for message_id, (editor, item_id) in sent.items():
            intake = intakes[message_id]
            rows = by_intake.get(intake.id, [])
            confirmations = [r for r in rows if r.kind == "confirmation"]
            notices = [r for r in rows if r.kind == "notice"]
            assert [r.to_address for r in confirmations] == [editor], message_id
            answer = email.message_from_bytes(confirmations[0].message, policy=email.policy.default)
            assert answer["In-Reply-To"] == message_id
            item = s.get(Submission, item_id)
            assert item is not None and item.author_id is not None
            author = s.get(Person, item.author_id)
            assert author is not None
            assert [(r.to_address, item.tracking_no in r.subject) for r in notices] == [
                (author.email.lower(), True)
            ], message_id
        assert sum(len(rows) for rows in by_intake.values()) == 2 * ITEMS


def test_a_reply_applied_while_another_is_half_done_keeps_its_own_notices(app: App) -> None:
    """The crossing made certain: when the first reply's lines have applied (its savepoint
    released) and its notices are not yet written, a second reply is handled on another
    thread. Each reply still tells its own item's author, once."""
    file_items(app)
    with app.ledger.reader() as s:
        first, second = s.scalars(select(Submission.id).order_by(Submission.id).limit(2)).all()
    raws = {
        n: reply(forward_to(app, EDITORS[n], item_id), EDITORS[n], "采用 穗府信息 标题", n)
        for n, item_id in enumerate((first, second))
    }

    def handle(n: int) -> None:
        rcpt = str(email.message_from_bytes(raws[n])["To"])
        arrival = Arrival("desk", "smtp", RECEIVED, mail_from="x@gzb.gz.test", rcpt=rcpt)
        app.pipeline.process(raws[n], arrival)

    main = threading.current_thread()
    crossed: list[threading.Thread] = []

    def on_release(*_args: object) -> None:
        if threading.current_thread() is main and not crossed:
            other = threading.Thread(target=handle, args=(1,))
            crossed.append(other)
            other.start()
            other.join(timeout=3)  # it goes as far as the first reply's locks let it

    event.listen(app.ledger.engine, "release_savepoint", on_release)
    try:
        handle(0)
        assert crossed, "the first reply released no savepoint"
        crossed[0].join(timeout=60)
    finally:
        event.remove(app.ledger.engine, "release_savepoint", on_release)
    with app.ledger.reader() as s:
        told = s.execute(
            select(Intake.message_id, OutboundMessage.to_address, OutboundMessage.subject)
            .join(Intake, Intake.id == OutboundMessage.intake_id)
            .where(OutboundMessage.kind == "notice")
            .order_by(Intake.message_id)
        ).all()
        tracking = [s.get(Submission, i).tracking_no for i in (first, second)]  # type: ignore[union-attr]
    assert [(m, t) for m, _to, t in told] == [
        ("<reply-0@gzb.gz.test>", f"信息处理通知：{tracking[0]} 已采用"),
        ("<reply-1@gzb.gz.test>", f"信息处理通知：{tracking[1]} 已采用"),
    ], told
