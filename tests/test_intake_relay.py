"""The outbound queue against real relays on loopback: STARTTLS and AUTH, refusals, give-up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from sqlalchemy import select

from ingest.outbound import RetryPolicy, deliver_due
from ingest.pipeline import Arrival
from ledger.demo import load_demo
from ledger.models import OutboundMessage
from mailroom.app import App
from mailroom.config import parse_config
from tests.conftest import REPO
from tests.pgcluster import free_port
from tests.service import remove_editors
from tests.smtpsink import SinkHandler, SmtpSink, self_signed_certificate, server_tls

# Reads today's date (a real serve, the CLI or a mailbox without a fixed time): run at
# a year boundary by the test command.
pytestmark = pytest.mark.wall_clock

VALID = (REPO / "examples" / "valid.eml").read_bytes()


def now() -> datetime:
    return datetime.now(UTC)


def office(db_url: str, tmp_path: Path, **outbound: Any) -> App:
    config = parse_config({"database": {"url": db_url}, "outbound": outbound}, tmp_path, environ={})
    app = App.open(config)
    with app.ledger.transaction() as session:
        load_demo(session)
        remove_editors(session)  # one reply to follow: no desk forwards
    assert app.pipeline.process(VALID, Arrival("daily", "smtp", now())).state == "filed"
    return app


def deliver(app: App, at: datetime) -> int:
    """`App.deliver` with the clock at `at`."""
    return deliver_due(
        app.ledger,
        app.transport,
        app.config.sender_address,
        lambda: at,
        retry=RetryPolicy.of(app.config.outbound),
    )


def the_receipt(app: App) -> OutboundMessage:
    with app.ledger.reader() as s:
        return s.scalars(select(OutboundMessage)).one()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path)


def only_mailroom(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"mailroom", b"s3cret")
    return AuthResult(success=ok, handled=False, auth_data=data)


@pytest.fixture
def guarded_relay(certificate: tuple[Path, Path]) -> Iterator[SmtpSink]:
    """A relay that takes mail only over STARTTLS and only after AUTH."""
    sink = SmtpSink(
        tls_context=server_tls(*certificate),
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=only_mailroom,
    ).start()
    try:
        yield sink
    finally:
        sink.stop()


def test_replies_go_over_starttls_with_auth(
    db_url: str, tmp_path: Path, guarded_relay: SmtpSink, certificate: tuple[Path, Path]
) -> None:
    app = office(
        db_url,
        tmp_path,
        relay=f"127.0.0.1:{guarded_relay.port}",
        starttls=True,
        ca_file=str(certificate[0]),
        username="mailroom",
        password="s3cret",
    )
    try:
        assert deliver(app, now()) == 1
    finally:
        app.close()
    [received] = guarded_relay.messages
    assert (received.tls, received.login, received.rcpt_tos) == (
        True,
        "mailroom",
        ["liming@th.gz.test"],
    )


def test_a_relay_login_problem_never_gives_a_reply_up(
    db_url: str, tmp_path: Path, guarded_relay: SmtpSink, certificate: tuple[Path, Path]
) -> None:
    settings = {
        "relay": f"127.0.0.1:{guarded_relay.port}",
        "starttls": True,
        "ca_file": str(certificate[0]),
        "username": "mailroom",
        "password": "wrong",
        "max_attempts": 2,
    }
    app = office(db_url, tmp_path, **settings)
    try:
        at = now()
        for _ in range(4):  # twice max_attempts: still waiting, never failed
            assert deliver(app, at) == 0
            row = the_receipt(app)
            assert row.state == "queued" and "relay refused TLS or login" in (row.last_error or "")
            at = row.next_attempt_at
        assert not guarded_relay.messages
    finally:
        app.close()
    # The operator corrects the password: the receipt goes, once.
    fixed = App.open(
        parse_config(
            {"database": {"url": db_url}, "outbound": {**settings, "password": "s3cret"}},
            tmp_path,
            environ={},
        )
    )
    try:
        assert deliver(fixed, at) == 1
        assert deliver(fixed, at + timedelta(hours=1)) == 0
        assert the_receipt(fixed).state == "sent"
    finally:
        fixed.close()
    assert len(guarded_relay.messages) == 1


class Refusing(SinkHandler):
    """A relay that answers every RCPT (or every DATA) with a fixed reply."""

    def __init__(self, rcpt: str | None = None, data: str | None = None) -> None:
        super().__init__()
        self.rcpt, self.data = rcpt, data

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.rcpt:
            return self.rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self.data or await super().handle_DATA(server, session, envelope)


def test_a_permanent_refusal_fails_the_reply_at_once(db_url: str, tmp_path: Path) -> None:
    sink = SmtpSink(handler=Refusing(rcpt="550 5.1.1 <liming@th.gz.test>: no such user")).start()
    app = office(db_url, tmp_path, relay=f"127.0.0.1:{sink.port}")
    try:
        assert deliver(app, now()) == 0
        row = the_receipt(app)
        assert (row.state, row.attempts) == ("failed", 1)
        assert "550" in (row.last_error or "") and "no such user" in (row.last_error or "")
    finally:
        app.close()
        sink.stop()


def test_temporary_failures_back_off_and_give_up_after_max_attempts(
    db_url: str, tmp_path: Path
) -> None:
    sink = SmtpSink(handler=Refusing(data="451 4.3.0 try again later")).start()
    app = office(db_url, tmp_path, relay=f"127.0.0.1:{sink.port}", retry_seconds=10, max_attempts=3)
    try:
        at = now()
        assert deliver(app, at) == 0
        first = the_receipt(app)
        assert (first.state, first.attempts) == ("queued", 1)
        assert first.next_attempt_at - at == timedelta(seconds=10)
        assert deliver(app, first.next_attempt_at - timedelta(seconds=1)) == 0  # not due yet
        assert the_receipt(app).attempts == 1

        assert deliver(app, first.next_attempt_at) == 0
        second = the_receipt(app)
        assert second.attempts == 2
        assert second.next_attempt_at - first.next_attempt_at == timedelta(seconds=20)

        assert deliver(app, second.next_attempt_at) == 0
        last = the_receipt(app)
        assert (last.state, last.attempts) == ("failed", 3)
        assert "451" in (last.last_error or "")
        assert deliver(app, last.next_attempt_at + timedelta(days=1)) == 0
        assert the_receipt(app).attempts == 3  # given up: never tried again
    finally:
        app.close()
        sink.stop()


def test_the_relay_port_is_checked_once_per_round_while_it_is_down(
    db_url: str, tmp_path: Path
) -> None:
    app = office(db_url, tmp_path, relay=f"127.0.0.1:{free_port()}", retry_seconds=60)
    raw = VALID.replace(b"202611221015320911274", b"second-item")
    try:
        assert app.pipeline.process(raw, Arrival("daily", "smtp", now())).state == "filed"
        at = now()
        assert deliver(app, at) == 0
        with app.ledger.reader() as s:
            rows = s.scalars(select(OutboundMessage).order_by(OutboundMessage.id)).all()
        # One connection attempt; both replies wait for the same next round, neither counted.
        assert [r.attempts for r in rows] == [1, 0]
        assert {r.next_attempt_at for r in rows} == {at + timedelta(seconds=60)}
        assert {r.state for r in rows} == {"queued"}
    finally:
        app.close()
