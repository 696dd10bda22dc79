"""What a unit reads in its receipt and refusal: one formal register, spans in plain figures,
and the sign-off's approver (审签人) kept with the item."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from ingest.pipeline import Arrival
from ingest.replies import duration_text
from ledger.demo import load_demo
from ledger.models import OutboundMessage, Submission
from mailroom.app import App
from mailroom.config import parse_config
from tests.conftest import DATA, REPO

RECEIVED = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[App]:
    office = App.open(parse_config({"database": {"url": db_url}}, tmp_path, environ={}))
    with office.ledger.transaction() as session:
        load_demo(session)
    try:
        yield office
    finally:
        office.close()


def replies(app: App, kind: str) -> list[EmailMessage]:
    with app.ledger.reader() as s:
        rows = s.scalars(select(OutboundMessage).where(OutboundMessage.kind == kind)).all()
    out = []
    for row in rows:
        msg = email.message_from_bytes(row.message, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


def text_of(msg: EmailMessage, subtype: str = "plain") -> str:
    part = msg.get_body((subtype,))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def test_receipt_and_refusal_address_the_unit_alike(app: App) -> None:
    for name in ("valid.eml", "malformed.eml"):
        raw = (REPO / "examples" / name).read_bytes()
        app.pipeline.process(raw, Arrival("daily", "file", RECEIVED))
    (receipt,) = replies(app, "receipt")
    (refusal,) = replies(app, "refusal")
    for msg in (receipt, refusal):
        for subtype in ("plain", "html"):
            text = text_of(msg, subtype)
            assert "你单位" in text, text
            assert "你于" not in text


@pytest.mark.parametrize(
    ("minutes", "said"),
    [
        (16, "16 分钟"),
        (119, "119 分钟"),
        (120, "2 小时"),
        (200, "3 小时"),
        (47 * 60, "47 小时"),
        (48 * 60, "2 天"),
        (14021, "10 天"),
    ],
)
def test_a_clock_skew_is_said_in_minutes_hours_or_days(minutes: int, said: str) -> None:
    assert duration_text(minutes) == said


def test_a_skew_of_days_reads_in_days_in_the_receipt(app: App) -> None:
    late = datetime(2026, 12, 2, 2, 15, 32, tzinfo=UTC)  # ten days after the item's Date:
    raw = (REPO / "examples" / "valid.eml").read_bytes()
    app.pipeline.process(raw, Arrival("daily", "file", late))
    (receipt,) = replies(app, "receipt")
    assert "相差约 10 天" in text_of(receipt)
    assert "分钟" not in text_of(receipt)


def test_the_approver_of_the_signoff_is_stored_with_the_item(app: App) -> None:
    raw = (DATA / "mail" / "approver_line_foxmail.eml").read_bytes()
    outcome = app.pipeline.process(raw, Arrival("daily", "file", RECEIVED))
    assert (outcome.state, outcome.reasons) == ("filed", ())
    with app.ledger.reader() as s:
        item = s.scalars(select(Submission)).one()
    assert (item.signoff_author, item.approver, item.signoff_phone) == (
        "李明",
        "王五",
        "020-38620000",
    )
    (forward, *_) = replies(app, "desk")
    assert "【审签】王五" in text_of(forward)
    assert "审签人：王五" in text_of(forward, "html")
