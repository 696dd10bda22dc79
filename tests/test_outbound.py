"""Outbound mail through a real SMTP relay on loopback: delivered once, retried when it is down."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ingest.outbound import deliver_due
from ingest.pipeline import Arrival
from ledger.bounces import row_of_return_path
from ledger.demo import load_demo
from ledger.editors import REPLY_KEY_SECRET, stored_secret
from ledger.models import OutboundMessage
from mailroom.app import App
from mailroom.config import parse_config
from tests.conftest import REPO, migrate
from tests.pgcluster import free_port
from tests.service import wait_for, with_message_id
from tests.smtpsink import SinkHandler, SmtpSink

# Reads today's date (a real serve, the CLI or a mailbox without a fixed time): run at
# a year boundary by the test command.
pytestmark = pytest.mark.wall_clock


def test_reply_goes_to_the_relay_once_and_waits_while_it_is_down(
    db_url: str, tmp_path: Path
) -> None:
    port = free_port()
    config = parse_config(
        {"database": {"url": db_url}, "outbound": {"relay": f"127.0.0.1:{port}"}},
        tmp_path,
        environ={},
    )
    app = App.open(config)
    now = datetime.now(UTC) + timedelta(seconds=1)  # replies are queued as due at filing time
    try:
        with app.ledger.transaction() as session:
            load_demo(session)
        raw = (REPO / "examples" / "valid.eml").read_bytes()
        assert app.pipeline.process(raw, Arrival("daily", "file", now)).state == "filed"

        # Relay down: the attempt fails, the receipt stays queued with a later retry time.
        receipt = select(OutboundMessage).where(OutboundMessage.kind == "receipt")
        assert deliver_due(app.ledger, app.transport, config.sender_address, lambda: now) == 0
        with app.ledger.reader() as s:
            row = s.scalars(receipt).one()
            assert (row.state, row.attempts) == ("queued", 1)
            assert row.next_attempt_at > now and row.last_error
        # Not due yet: nothing is tried again.
        assert deliver_due(app.ledger, app.transport, config.sender_address, lambda: now) == 0

        sink = SmtpSink(port).start()
        try:
            later = now + timedelta(minutes=5)
            # The receipt and the desk forwards to the 3 demo editors.
            assert deliver_due(app.ledger, app.transport, config.sender_address, lambda: later) == 4
            assert deliver_due(app.ledger, app.transport, config.sender_address, lambda: later) == 0
        finally:
            sink.stop()
        assert len(sink.messages) == 4
        assert sink.messages[0].rcpt_tos == ["liming@th.gz.test"]
        data = sink.messages[0].data
        assert b"Auto-Submitted: auto-replied" in data
        assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only, as SMTP requires
        assert max(len(line) for line in data.split(b"\r\n")) <= 998
        with app.ledger.reader() as s:
            row = s.scalars(receipt).one()
            assert (row.state, row.attempts, row.last_error) == ("sent", 2, None)
    finally:
        app.close()


def test_the_relay_hears_the_helo_name_and_each_mail_comes_from_its_own_return_path(
    db_url: str, tmp_path: Path
) -> None:
    sink = SmtpSink().start()
    relay = f"127.0.0.1:{sink.port}"
    raw = (REPO / "examples" / "valid.eml").read_bytes()
    try:
        named = parse_config(
            {
                "database": {"url": db_url},
                "outbound": {"relay": relay, "helo_name": "mailroom.example.gov.cn"},
            },
            tmp_path,
            environ={},
        )
        app = App.open(named)
        try:
            with app.ledger.transaction() as session:
                load_demo(session)
            now = datetime.now(UTC)
            assert app.pipeline.process(raw, Arrival("daily", "file", now)).state == "filed"
            assert app.deliver() == 4  # the receipt, and the desk forwards to 3 editors
            with app.ledger.transaction() as session:
                secret = stored_secret(session, REPLY_KEY_SECRET, now)
                rows = {r.to_address: r.id for r in session.scalars(select(OutboundMessage))}
        finally:
            app.close()
        assert {m.helo for m in sink.messages} == {"mailroom.example.gov.cn"}
        for m in sink.messages:
            row_id = rows[m.rcpt_tos[0]]
            assert re.fullmatch(rf"inf\+bounce-{row_id}-[a-z2-7]{{16}}@mailroom\.test", m.mail_from)
            assert row_of_return_path(secret, "inf@mailroom.test", m.mail_from) == row_id

        # Without a name, Python's own (the machine's name, or its address in brackets); with
        # `verp = false` every mail comes from the sender's address itself.
        plain = parse_config(
            {"database": {"url": db_url}, "outbound": {"relay": relay, "verp": False}},
            tmp_path,
            environ={},
        )
        app = App.open(plain)
        try:
            again = with_message_id(raw, "another@th.gz.test")
            assert app.pipeline.process(again, Arrival("daily", "file", now)).state == "filed"
            assert app.deliver() == 4
        finally:
            app.close()
        later = sink.messages[4:]
        assert {m.mail_from for m in later} == {"inf@mailroom.test"}
        assert "mailroom.example.gov.cn" not in {m.helo for m in later}
    finally:
        sink.stop()


def test_the_sender_holds_no_write_lock_while_the_relay_takes_a_message(tmp_path: Path) -> None:
    """SQLite has one writer: a sender whose transaction wrote before the hand-over (the
    return path's secret) would keep filing waiting for as long as the relay takes."""
    release = threading.Event()

    class SlowRelay(SinkHandler):
        in_data = False

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.in_data = True
            await asyncio.get_running_loop().run_in_executor(None, release.wait, 30)
            return await super().handle_DATA(server, session, envelope)

    handler = SlowRelay()
    sink = SmtpSink(handler=handler).start()
    db = tmp_path / "mailroom.db"
    migrate(f"sqlite:///{db}")
    config = parse_config(
        {"database": {"url": f"sqlite:///{db}"}, "outbound": {"relay": f"127.0.0.1:{sink.port}"}},
        tmp_path,
        environ={},
    )
    app = App.open(config)
    sending = threading.Thread(target=app.deliver)
    try:
        with app.ledger.transaction() as session:
            load_demo(session)
        raw = (REPO / "examples" / "valid.eml").read_bytes()
        now = datetime.now(UTC)
        assert app.pipeline.process(raw, Arrival("daily", "file", now)).state == "filed"
        sending.start()
        wait_for(lambda: handler.in_data, what="the relay to be given the first message")
        # Another writer, as the filing process is, gets the lock at once.
        with sqlite3.connect(db, timeout=0.5) as other:
            other.execute("UPDATE units SET name = name WHERE id = 1")
    finally:
        release.set()
        sending.join(timeout=60)
        app.close()
        sink.stop()
    assert len(sink.messages) == 4
