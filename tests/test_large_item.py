"""A large item is filed without whole extra copies of itself: parsed in chunks, hashed in
chunks, its original attached to the desk forward in base64 written once and readdressed
copy by copy. The filing step's own allocations stay within a few times the message."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime

from sqlalchemy import select

from bench.workload import big_item
from ingest.pipeline import Arrival
from ledger.models import Intake, OutboundMessage
from mailroom.app import App
from parser.decode import content_hash


def test_a_large_item_is_filed_within_a_few_times_its_size(app: App) -> None:
    letter = big_item(4_000_000)  # a .docx of 2.9 MB (a picture), 4 MB in base64
    raw = letter.data
    arrival = Arrival("daily", "smtp", datetime.now(UTC), letter.mail_from, "inf@mailroom.test")
    tracemalloc.start()
    try:
        outcome = app.pipeline.process(raw, arrival)
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.state == "filed", outcome.reasons
    with app.ledger.reader() as session:
        intake = session.get(Intake, outcome.intake_id)
        assert intake is not None and intake.raw is not None
        assert intake.raw.data == raw and intake.content_hash == content_hash(raw)
        forwards = session.scalars(
            select(OutboundMessage).where(OutboundMessage.kind == "desk")
        ).all()
        assert len(forwards) == 3 and all(len(f.message) > 4 / 3 * len(raw) for f in forwards)
    # Before: nearly eight times (the parse's text copies, the hash's normalised copies, the
    # forward's base64 joined three times over and cut out again per editor); now under four.
    assert peak < 4.5 * len(raw)
