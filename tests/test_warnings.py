"""Early warnings (预警): who is behind at a point and by how much, one notice per recipient,
with two service instances on one PostgreSQL and after a restart past the point."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.calendar import parse_period
from ledger.db import Ledger, make_engine
from ledger.demo import load_demo
from ledger.filing import item_by_tracking_no
from ledger.models import OutboundMessage, Person, Unit
from ledger.rulebook import load_rulebook
from ledger.scoring import record_adoption
from reports.deliver import ReportSettings
from reports.warnings import due, lagging_units, point_instant, send_warnings
from tests.scoring_kit import SHANGHAI, Office
from tests.service import MailroomInstance, plain_text

GZ = load_rulebook("guangzhou-2004")
SETTINGS = ReportSettings(zone=SHANGHAI, sender="xxc@mailroom.test", sender_name="市政府办公厅")
Q1 = parse_period("2027Q1", SHANGHAI, GZ.calendar)
POINT = GZ.warnings[0]
AT = point_instant(Q1, POINT)
CHECKED = "early warning quarter of 2027Q1"  # serve's log line when it looked at the point


def adopt_items(office: Office, code: str, count: int, at: datetime) -> None:
    """`count` items of the demo unit `code`, each adopted as 调研 (5 points in Guangzhou)."""
    session = office.session
    unit = session.scalars(select(Unit).where(Unit.code == code)).one()
    office.units[code] = unit
    for _ in range(count):
        tracking = office.item(code, at)
        row = item_by_tracking_no(session, tracking)
        assert row is not None
        record_adoption(session, GZ, tracking, "调研", by="编辑", at=at, source="test")


@pytest.fixture
def office(ledger: Ledger) -> Ledger:
    with ledger.transaction() as session:
        load_demo(session)
        kit = Office(session, GZ)
        adopt_items(kit, "TH", 3, Q1.start + timedelta(days=3))  # 15 points: ahead
        adopt_items(kit, "YX", 2, Q1.start + timedelta(days=4))  # 10 points: 2 behind
    return ledger


def warned(session: Session) -> dict[str, int]:
    rows = session.scalars(
        select(OutboundMessage.to_address).where(OutboundMessage.kind == "warning")
    )
    out: dict[str, int] = {}
    for address in rows:
        out[address] = out.get(address, 0) + 1
    return out


def test_units_behind_the_share_of_their_target_are_named_with_the_gap(office: Ledger) -> None:
    assert (POINT.period, POINT.at) == ("quarter", 0.667)  # the default: two thirds through
    with office.reader() as session:
        measured, share, behind = lagging_units(session, GZ, POINT, AT, SHANGHAI)
        quarterly = {
            u.code
            for u in session.scalars(select(Unit))
            if (rule := GZ.sequence(u.sequence)) is not None and rule.quarterly_target
        }
    assert measured == Q1 and share == pytest.approx(0.667)
    by_code = {lag.unit_code: lag for lag in behind}
    assert set(by_code) == quarterly - {"TH"}  # 直报点 have no quarterly target: never warned
    yx = by_code["YX"]
    assert (yx.value, yx.target, yx.expected, yx.gap, yx.measure) == (
        Decimal(10), 18, 12, 2, "points",
    )  # fmt: skip
    assert by_code["HZ"].gap == 12


def test_each_recipient_is_warned_once_and_only_after_the_point(office: Ledger) -> None:
    assert due(GZ, AT - timedelta(seconds=1), SHANGHAI) == []
    assert send_warnings(office, GZ, SETTINGS, AT - timedelta(seconds=1)).queued == 0
    first = send_warnings(office, GZ, SETTINGS, AT + timedelta(minutes=1))
    again = send_warnings(office, GZ, SETTINGS, AT + timedelta(days=2))
    assert first.queued > 0 and (again.queued, again.already_sent) == (0, first.queued)
    with office.reader() as session:
        counts = warned(session)
        yx_people = {
            p.role: p.email
            for p in session.scalars(select(Person).join(Unit).where(Unit.code == "YX"))
        }
        yx_mail = session.scalars(
            select(OutboundMessage).where(OutboundMessage.to_address == yx_people["officer"])
        ).one()
    assert set(counts.values()) == {1} and len(counts) == first.queued
    assert yx_people["officer"] in counts and yx_people["supervising_leader"] in counts
    assert yx_people["principal_leader"] not in counts
    assert not any(a.endswith("@th.gz.test") for a in counts)
    text = plain_text(_message(yx_mail.message))
    assert "越秀区" in text and "累计得分10分" in text and "此时应达12分，尚差2分" in text
    # After the quarter closed, the quarter's report speaks; no more warnings.
    assert send_warnings(office, GZ, SETTINGS, Q1.end + timedelta(hours=1)).queued == 0


def _message(data: bytes) -> Any:
    import email
    import email.policy

    return email.message_from_bytes(data, policy=email.policy.default)


@pytest.mark.parametrize("name", ["longgang-2012", "changji-2017"])
def test_the_seed_offices_points_measure_their_own_targets(ledger: Ledger, name: str) -> None:
    rulebook = load_rulebook(name)
    (point,) = rulebook.warnings
    at = datetime(2027, 5, 20, 12, tzinfo=SHANGHAI)
    with ledger.transaction() as session:
        load_demo(session, rulebook)
    with ledger.reader() as session:
        measured, share, behind = lagging_units(session, rulebook, point, at, SHANGHAI)
        units = {u.code: u for u in session.scalars(select(Unit))}
    assert behind  # nothing submitted yet: every unit with a target is behind
    for lag in behind:
        book = rulebook.in_force(measured.start.date())
        if name == "longgang-2012":
            # Monthly, against the annual task: the year is partly gone on 20 May.
            assert measured.kind == "year" and point.period == "month"
            task = book.task_of(lag.unit_name)
            assert task is not None and lag.target == task.points
        else:
            rule = book.sequence(units[lag.unit_code].sequence)
            assert rule is not None and rule.quota is not None
            assert measured.kind == "quarter" and lag.target == rule.quota.items * 3
            assert lag.measure == "submitted"
        want = int((Decimal(lag.target) * Decimal(share)).quantize(Decimal(1), "ROUND_HALF_UP"))
        assert lag.expected == max(1, want) and lag.gap == lag.expected
    assert 0 < share < 1


# --- two instances of `mailroom serve` on one PostgreSQL, a restart past the point ----------


@pytest.fixture
def pair(tmp_path: Path, pg_url: str) -> Iterator[tuple[MailroomInstance, MailroomInstance]]:
    start = AT - timedelta(seconds=4)
    made = [
        MailroomInstance(tmp_path / name, pg_url, clock=start, **{"reports.warnings": True})
        for name in ("a", "b")
    ]
    made[0].init()
    try:
        yield made[0], made[1]
    finally:
        for instance in made:
            instance.close()


def test_two_instances_and_a_restart_warn_each_recipient_once(
    pair: tuple[MailroomInstance, MailroomInstance], pg_url: str
) -> None:
    a, b = pair
    ledger = Ledger(make_engine(pg_url))
    try:
        a.start()
        b.start()
        expected = len(_lagging_recipients(ledger))
        a.wait(lambda: _count(ledger) >= expected, timeout=40, what="the warnings")
        for instance in (a, b):

            def checked(log: Path = instance.log) -> bool:
                return CHECKED in log.read_text()

            instance.wait(checked, what="both checked")
        a.stop()
        a.start()
        a.wait(lambda: a.log.read_text().count(CHECKED) >= 2, what="the check after a restart")
        with ledger.reader() as session:
            counts = warned(session)
            times = session.scalars(
                select(OutboundMessage.created_at).where(OutboundMessage.kind == "warning")
            ).all()
        assert set(counts) == _lagging_recipients(ledger) and set(counts.values()) == {1}
        assert min(times) >= AT  # the instances started before the point: none went early
    finally:
        ledger.engine.dispose()


def _count(ledger: Ledger) -> int:
    with ledger.reader() as session:
        return sum(warned(session).values())


def _lagging_recipients(ledger: Ledger) -> set[str]:
    with ledger.reader() as session:
        _, _, behind = lagging_units(session, GZ, POINT, AT, SHANGHAI)
        ids = [lag.unit_id for lag in behind]
        rows = session.scalars(
            select(Person.email).where(
                Person.unit_id.in_(ids), Person.role.in_(("officer", "supervising_leader"))
            )
        )
        return {r.lower() for r in rows}
