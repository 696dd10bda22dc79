"""Every kind of mail Mailroom sends carries the same envelope of headers (one composer):
receipts, refusals (to a unit and to an unregistered address), the postmaster's copy, desk
forwards, confirmations, the unit's notice, 约稿 notices and reminders, reports and streak
notices. Each is produced here the way the service produces it, then read back from the
outbox as it will go on the wire.
"""

from __future__ import annotations

import email
import email.policy
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from ingest.notices import send_due_reminders, send_notices
from ingest.pipeline import Arrival
from ledger.demo import load_demo
from ledger.models import OutboundMessage
from ledger.solicit import open_solicitation
from mailroom.app import App
from mailroom.config import parse_config
from mailroom.reporting import report_settings
from parser import classify, decode_message
from parser.classify import OWN_MARKER_HEADER, OWN_MESSAGE
from reports.deliver import send_notices as send_streak_notices
from reports.deliver import send_report
from reports.model import StreakNotice
from reports.render import ReportWriter
from tests.conftest import DATA, REPO
from tests.test_reports import sample_quarterly

RECEIVED = datetime(2026, 11, 22, 2, 20, tzinfo=UTC)
SENDER = "inf@mailroom.test"
SECRET = "desk-tests-reply-key-secret"
MARKERS = {  # outbox kind → the own-message markers of that kind
    "receipt": {"receipt"},
    "refusal": {"refusal"},
    "postmaster": {"postmaster"},
    "desk": {"desk"},
    "confirmation": {"confirmation"},
    "notice": {"notice", "solicit_notice", "solicit_reminder"},
    "report": {"report"},
}


@pytest.fixture
def app(tmp_path: Path, sqlite_template: Path) -> Iterator[App]:
    shutil.copyfile(sqlite_template, tmp_path / "m.db")
    settings = {
        "database": {"url": f"sqlite:///{tmp_path}/m.db"},
        "mailboxes": {"postmaster": "operator@mailroom.test"},
        "security": {"reply_key_secret": SECRET},  # the desk fixtures' replies carry its keys
    }
    office = App.open(parse_config(settings, tmp_path, environ={}))
    office.pipeline.clock = lambda: RECEIVED + timedelta(hours=1)
    with office.ledger.transaction() as session:
        load_demo(session)
    try:
        yield office
    finally:
        office.close()


def every_kind(app: App) -> None:
    def arrive(raw: bytes, mailbox: str = "daily", rcpt: str = "") -> str:
        arrival = Arrival(mailbox, "smtp", RECEIVED, mail_from="x@units.gz.test", rcpt=rcpt)
        return app.pipeline.process(raw, arrival).state

    assert arrive((REPO / "examples" / "valid.eml").read_bytes()) == "filed"  # receipt, desk
    assert arrive((REPO / "examples" / "malformed.eml").read_bytes()) == "rejected"  # refusal
    stranger = (
        (REPO / "examples" / "valid.eml")
        .read_bytes()
        .replace(b"liming@th.gz.test", b"nobody@elsewhere.test")
    )
    assert arrive(stranger) == "rejected"  # the unregistered address's refusal
    assert arrive(stranger, "postmaster", "postmaster@mailroom.test") == "ignored"
    reply = (DATA / "desk" / "reply_foxmail_gbk_adopt.eml").read_bytes()
    assert arrive(reply, "desk", "desk+" + reply_key_of(reply) + "@mailroom.test") == "command"
    with app.ledger.transaction() as session:
        deadline = RECEIVED + timedelta(days=2)
        sol = open_solicitation(
            session, "YG-1201", "重点项目进展", deadline, units=["TH"], by="信息处", at=RECEIVED
        )
        assert send_notices(session, app.solicit_mailer, sol, RECEIVED) > 0
    assert send_due_reminders(
        app.ledger, app.solicit_mailer, before=timedelta(days=3), now=RECEIVED + timedelta(days=1)
    )
    settings = report_settings(app)
    now = RECEIVED + timedelta(days=10)
    assert send_report(app.ledger, app.rulebook, settings, "monthly", "2026-11", now=now).queued
    streak = (StreakNotice("YX", "越秀区", "criticism", 2, "supervising_leader"),)
    sent = send_streak_notices(
        app.ledger, app.rulebook, settings, sample_quarterly(), streak, now, ReportWriter()
    )
    assert sent.queued == 1


def reply_key_of(raw: bytes) -> str:
    found = re.search(rb"desk\+([0-9]+-[a-z2-7]{20})@", raw)
    assert found is not None
    return found.group(1).decode()


def test_every_kind_of_outgoing_mail_has_the_same_envelope(app: App) -> None:
    every_kind(app)
    with app.ledger.reader() as session:
        rows = session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)).all()
    seen: dict[str, set[str]] = {}
    for row in rows:
        msg = email.message_from_bytes(row.message, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        marker = str(msg[OWN_MARKER_HEADER])
        seen.setdefault(row.kind, set()).add(marker)
        where = f"{row.kind}/{marker} to {row.to_address}"
        assert msg["From"].addresses[0].addr_spec == SENDER, where
        assert msg["To"].addresses[0].addr_spec.lower() == row.to_address.lower(), where
        assert msg["Date"] is not None, where
        assert re.fullmatch(
            rf"<mailroom\.{marker}\.[a-z0-9.-]+@mailroom\.test>", msg["Message-ID"]
        ), where
        answers = msg["In-Reply-To"] is not None
        expected = "auto-replied" if answers else "auto-generated"
        assert msg["Auto-Submitted"] == expected, where
        assert msg["X-Auto-Response-Suppress"] == "All", where
        # Come back (a forwarding rule, a copy to the office's own mailbox): known as our own
        # by the marker alone, whoever it claims to be from.
        back = decode_message(row.message.replace(SENDER.encode(), b"someone@units.gz.test"))
        assert classify(back, "someone@units.gz.test", own_addresses=()) == OWN_MESSAGE, where
    assert seen == {kind: markers for kind, markers in MARKERS.items()}
