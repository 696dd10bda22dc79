"""Trustworthy intake with `mailroom serve` as a real process: IMAP and SMTP together,
a mail server that goes away, a relay that goes away, two instances, and mail loops.
"""

from __future__ import annotations

import smtplib
import time
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ledger.db import Ledger
from ledger.models import ImapMessage
from tests.conftest import DATA, REPO
from tests.dovecot import Dovecot
from tests.pgcluster import free_port
from tests.service import (
    LedgerView,
    MailroomInstance,
    remove_editors,
    wait_for,
    with_message_id,
)
from tests.smtpsink import SmtpSink

# Reads today's date (a real serve, the CLI or a mailbox without a fixed time): run at
# a year boundary by the test command.
pytestmark = pytest.mark.wall_clock

VALID = (REPO / "examples" / "valid.eml").read_bytes()
MALFORMED = (REPO / "examples" / "malformed.eml").read_bytes()
PROCESSED = "已处理"


def send(port: int, mail_from: str, to: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.sendmail(mail_from, [to], raw)


def imap_settings(dovecot: Dovecot, **extra: Any) -> dict[str, Any]:
    table = {
        "host": "127.0.0.1",
        "port": dovecot.port,
        "ssl": False,
        "username": "inf",
        "password": dovecot.users["inf"],
        "processed_folder": PROCESSED,
        "poll_seconds": 5,
        **extra,
    }
    return {f"imap.inf.{key}": value for key, value in table.items()}


@pytest.fixture
def view(db_url: str) -> Iterator[LedgerView]:
    handle = LedgerView(db_url)
    try:
        yield handle
    finally:
        handle.close()


def office(root: Path, db_url: str, **overrides: Any) -> MailroomInstance:
    instance = MailroomInstance(root, db_url, **overrides)
    instance.init()
    ledger = Ledger.from_url(db_url)
    try:
        with ledger.transaction() as session:
            remove_editors(session)  # intake and its replies only: no desk forwards
    finally:
        ledger.dispose()
    return instance


@pytest.mark.slow
def test_the_poller_rides_out_a_mail_server_restart(
    tmp_path: Path, db_url: str, dovecot: Dovecot, view: LedgerView
) -> None:
    mailroom = office(tmp_path / "office", db_url, **imap_settings(dovecot))
    try:
        dovecot.append([with_message_id(VALID, f"restart-{n}@th.gz.test") for n in range(120)])
        mailroom.start()
        wait_for(lambda: view.states()["filed"] >= 5, timeout=60, what="the first items filed")
        dovecot.stop()  # in the middle of a batch: the poller's connection is cut
        filed_while_down = view.states()["filed"]
        assert filed_while_down < 120
        time.sleep(1.0)
        dovecot.start()
        wait_for(lambda: view.states()["filed"] == 120, timeout=120, what="all 120 filed")
        wait_for(lambda: not dovecot.uids("INBOX"), timeout=30, what="the inbox to empty")
    finally:
        mailroom.close()
    assert sorted(view.filed_ids().values()) == [1] * 120
    assert view.states() == Counter({"filed": 120})
    assert len(dovecot.uids(PROCESSED)) == 120
    assert "connected" in mailroom.log.read_text()


@pytest.mark.slow
def test_the_same_item_by_smtp_and_by_imap_is_filed_once(
    tmp_path: Path, db_url: str, dovecot: Dovecot, view: LedgerView
) -> None:
    # A long poll interval: the IMAP copy is noticed at once only because the server says so
    # while Mailroom waits in IDLE.
    mailroom = office(tmp_path / "office", db_url, **imap_settings(dovecot, poll_seconds=600))
    try:
        mailroom.start()
        wait_for(lambda: " IDLE" in " ".join(dovecot.commands_received()), what="IDLE")
        # The unit's server delivers one copy to Mailroom's listener and one to inf@'s old
        # mailbox, where the office's Coremail added headers of its own.
        send(mailroom.port, "liming@th.gz.test", "inf@mailroom.test", VALID)
        wait_for(lambda: view.states()["filed"] == 1, what="the SMTP copy filed")
        dovecot.append([(DATA / "valid_in_coremail_mailbox.eml").read_bytes()])
        wait_for(lambda: view.states()["duplicate"] == 1, what="the IMAP copy judged")
        wait_for(lambda: not dovecot.uids("INBOX"), what="the IMAP copy moved")
        intake = mailroom.cli_json("intake", "list")
        table = mailroom.cli("intake", "list").stdout
    finally:
        mailroom.close()
    assert "imap inf@127.0.0.1/INBOX uid 1" in table
    assert [(row["state"], row["channel"]) for row in intake] == [
        ("filed", "smtp"),
        ("duplicate", "imap"),
    ]
    assert intake[0]["message_id"] == intake[1]["message_id"]
    assert intake[0]["imap"] is None
    assert intake[1]["imap"] == {
        "account": "inf@127.0.0.1",
        "folder": "INBOX",
        "uidvalidity": dovecot.uidvalidity(),
        "uid": 1,
    }
    assert [o.kind for o in view.outbox()] == ["receipt"]  # one receipt, not two


@pytest.mark.slow
def test_replies_wait_for_the_relay_and_go_out_once(
    tmp_path: Path, db_url: str, view: LedgerView
) -> None:
    relay_port = free_port()  # nothing listens there yet: the relay is down
    mailroom = office(
        tmp_path / "office",
        db_url,
        **{"outbound.relay": f"127.0.0.1:{relay_port}", "outbound.retry_seconds": 1},
    )
    sink = SmtpSink(relay_port)
    try:
        mailroom.start()
        for n in range(5):
            send(
                mailroom.port,
                "liming@th.gz.test",
                "inf@mailroom.test",
                with_message_id(VALID, f"relay-{n}@th.gz.test"),
            )
        wait_for(lambda: view.states()["filed"] == 5, what="five items filed")
        wait_for(lambda: any(o.last_error for o in view.outbox()), what="a failed attempt")
        time.sleep(1.5)  # the sender keeps trying (retry_seconds = 1) while the relay is down
        assert [o.state for o in view.outbox()] == ["queued"] * 5

        sink.start()  # the relay is back
        wait_for(lambda: all(o.state == "sent" for o in view.outbox()), what="the receipts sent")
        time.sleep(1.5)  # another round of the sender (every second): nothing goes out twice
    finally:
        mailroom.close()
        sink.stop()
    replied_to = Counter(
        str(message_from_bytes(m.data, policy=policy.default)["In-Reply-To"]) for m in sink.messages
    )
    assert replied_to == Counter({f"<relay-{n}@th.gz.test>": 1 for n in range(5)})
    assert [o.state for o in view.outbox()] == ["sent"] * 5


@pytest.mark.slow
def test_two_instances_share_one_folder_and_one_queue(
    tmp_path: Path, pg_url: str, dovecot: Dovecot
) -> None:
    db_url = pg_url
    sink = SmtpSink().start()
    settings = {
        **imap_settings(dovecot, poll_seconds=2),
        "outbound.relay": f"127.0.0.1:{sink.port}",
    }
    first = office(tmp_path / "mx1", db_url, **settings)
    second = MailroomInstance(tmp_path / "mx2", db_url, **settings)
    view = LedgerView(db_url)
    try:
        first.start()
        second.start()
        dovecot.append([with_message_id(VALID, f"pair-{n}@th.gz.test") for n in range(300)])
        wait_for(lambda: view.states()["filed"] == 300, timeout=180, what="300 items filed")
        wait_for(lambda: len(sink.messages) >= 300, timeout=120, what="300 receipts sent")
        time.sleep(1.5)  # both senders look again (every second): nothing more may go out

        # One folder, one poller: only one instance took the folder.
        took = [i for i in (first, second) if "polls it now" in i.log.read_text()]
        assert len(took) == 1
        # Kill the one that polls: the other takes the folder over at once.
        took[0].kill()
        survivor = second if took[0] is first else first
        dovecot.append([with_message_id(VALID, f"pair-{n}@th.gz.test") for n in range(300, 320)])
        wait_for(lambda: view.states()["filed"] == 320, timeout=120, what="the late 20 filed")
        wait_for(lambda: len(sink.messages) >= 320, timeout=60, what="their receipts sent")
        time.sleep(1.5)
        assert "polls it now" in survivor.log.read_text()
    finally:
        first.close()
        second.close()
        sink.stop()
    replied_to = Counter(
        str(message_from_bytes(m.data, policy=policy.default)["In-Reply-To"]) for m in sink.messages
    )
    assert replied_to == Counter({f"<pair-{n}@th.gz.test>": 1 for n in range(320)})
    assert sorted(view.filed_ids().values()) == [1] * 320
    assert view.states() == Counter({"filed": 320})
    assert {(o.state, o.attempts) for o in view.outbox()} == {("sent", 1)}
    with view.ledger.reader() as s:
        assert s.scalar(select(func.count(ImapMessage.id))) == 320
    assert dovecot.uids("INBOX") == [] and len(dovecot.uids(PROCESSED)) == 320
    view.close()


@pytest.mark.slow
def test_no_reply_to_ourselves_auto_replies_or_bounces_and_refusals_are_limited(
    tmp_path: Path, db_url: str, view: LedgerView
) -> None:
    mailroom = office(tmp_path / "office", db_url)
    try:
        mailroom.start()
        send(mailroom.port, "liming@th.gz.test", "inf@mailroom.test", VALID)
        wait_for(lambda: len(mailroom.outbox_messages()) == 1, what="the receipt")
        receipt = mailroom.outbox.iterdir().__next__().read_bytes()

        # A forwarding rule sends our own receipt back to us; someone forges our address;
        # a registered officer's mailbox answers on his behalf; a receipt bounces.
        send(mailroom.port, "liming@th.gz.test", "inf@mailroom.test", receipt)
        forged = VALID.replace(
            b'From: "=?GBK?B?zOy608f4?=" <liming@th.gz.test>', b"From: inf@mailroom.test"
        )
        send(
            mailroom.port, "inf@mailroom.test", "inf@mailroom.test", with_message_id(forged, "f@x")
        )
        auto = (DATA / "auto_reply_coremail.eml").read_bytes()
        send(mailroom.port, "liming@th.gz.test", "inf@mailroom.test", auto)
        send(
            mailroom.port, "", "inf@mailroom.test", (DATA / "bounce_coremail_dsn.eml").read_bytes()
        )
        wait_for(lambda: view.states()["ignored"] == 4, what="four messages ignored")

        # One sender, 30 malformed items within the hour: refusals stop at the limit (20).
        for n in range(30):
            raw = with_message_id(MALFORMED, f"bad-{n}@yx.gz.test")
            send(mailroom.port, "wangfang@yx.gz.test", "inf@mailroom.test", raw)
        wait_for(lambda: view.states()["rejected"] == 30, timeout=60, what="30 refusals judged")
        wait_for(lambda: all(o.state == "sent" for o in view.outbox()), what="the refusals written")
        intake = mailroom.cli_json("intake", "list")
    finally:
        mailroom.close()
    ignored = [tuple(row["reasons"]) for row in intake if row["state"] == "ignored"]
    assert ignored == [("own_message",), ("own_message",), ("auto_reply",), ("bounce",)]
    kinds = Counter((o.kind, o.to_address) for o in view.outbox())
    assert kinds == Counter(
        {("receipt", "liming@th.gz.test"): 1, ("refusal", "wangfang@yx.gz.test"): 20}
    )
    limited = [row for row in intake if "refusal_rate_limited" in row["reasons"]]
    assert len(limited) == 10
    assert len(mailroom.outbox_messages()) == 21


@pytest.mark.slow
def test_without_idle_or_move_the_poller_polls_and_copies(tmp_path: Path) -> None:
    # An older server: no IDLE, no MOVE (only UIDPLUS). Mailroom polls every poll_seconds and
    # moves by COPY, \Deleted and UID EXPUNGE of exactly those messages.
    server = Dovecot(capabilities="IMAP4rev1 LITERAL+ UIDPLUS").start()
    db_url = f"sqlite:///{tmp_path}/office.db"
    mailroom = office(tmp_path / "office", db_url, **imap_settings(server, poll_seconds=1))
    view = LedgerView(db_url)
    try:
        mailroom.start()
        wait_for(lambda: "connected" in mailroom.log.read_text(), what="the poller connected")
        server.append([with_message_id(VALID, f"old-{n}@th.gz.test") for n in range(5)])
        wait_for(lambda: view.states()["filed"] == 5, what="five items filed by polling")
        wait_for(lambda: not server.uids("INBOX"), what="the inbox emptied")
        assert len(server.uids(PROCESSED)) == 5
        commands = server.commands_received()
    finally:
        mailroom.close()
        view.close()
        server.close()
    assert not any(c.endswith(" IDLE") or " UID MOVE " in c for c in commands)
    assert any(" UID COPY " in c for c in commands)
    assert any(" UID EXPUNGE " in c for c in commands)
