"""The report schedule: at a period close each recipient gets the report once; a close missed
while the service was down is made up once at start; two instances send it once in total."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from ledger.db import Ledger
from ledger.demo import load_demo
from ledger.models import OutboundMessage, Person, ReportSend
from ledger.rulebook import load_rulebook
from reports.deliver import ReportSettings, send_report
from reports.model import ReportKind
from reports.schedule import (
    JOB_IDS,
    ReportScheduler,
    Schedule,
    close_months,
    closed_period,
    offset_clock,
)
from tests.service import MailroomInstance, wait_for

# Reads today's date (a real serve, the CLI or a mailbox without a fixed time): run at
# a year boundary by the test command.
pytestmark = pytest.mark.wall_clock

ZONE = ZoneInfo("Asia/Shanghai")
RULEBOOK = load_rulebook("guangzhou-2004")
CAL = RULEBOOK.calendar
SETTINGS = ReportSettings(zone=ZONE, sender="inf@mailroom.test", sender_name="政务信息处")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZONE)


def test_reports_are_due_on_the_first_day_after_each_period_closes() -> None:
    assert close_months("quarterly", CAL) == "3,6,9,12"
    assert close_months("annual", CAL) == "12"
    assert close_months("monthly", CAL) == "*"
    assert closed_period("quarterly", at("2026-03-01 08:00"), ZONE, CAL) == "2026Q1"
    assert closed_period("quarterly", at("2026-12-01 08:00"), ZONE, CAL) == "2026Q4"
    assert closed_period("quarterly", at("2025-12-01 08:00"), ZONE, CAL) == "2025Q4"
    assert closed_period("annual", at("2026-12-01 08:00"), ZONE, CAL) == "2026"
    assert closed_period("monthly", at("2026-01-01 08:00"), ZONE, CAL) == "2025-12"
    # A run made up days later still reports the period of its scheduled time.
    assert closed_period("quarterly", at("2026-03-05 10:00"), ZONE, CAL) == "2026Q1"


@pytest.fixture
def office(ledger: Ledger) -> Ledger:
    with ledger.transaction() as session:
        load_demo(session)
    return ledger


def _leaders(ledger: Ledger) -> int:
    with ledger.reader() as session:
        return (
            session.scalar(
                select(func.count(func.distinct(func.lower(Person.email)))).where(
                    Person.role.in_(("supervising_leader", "principal_leader"))
                )
            )
            or 0
        )


def _sends(ledger: Ledger) -> list[tuple[str, str]]:
    with ledger.reader() as session:
        rows = session.execute(
            select(ReportSend.report, ReportSend.period, func.count(ReportSend.id))
            .group_by(ReportSend.report, ReportSend.period)
            .order_by(ReportSend.report, ReportSend.period)
        ).all()
    return [(r, p) for r, p, _ in rows]


def _queued(ledger: Ledger) -> int:
    with ledger.reader() as session:
        return session.scalar(select(func.count(OutboundMessage.id))) or 0


class Runs:
    """Starts schedulers on one database, each with its own clock; stops them all."""

    def __init__(self, ledger: Ledger, url: str) -> None:
        self.ledger = ledger
        self.url = url
        self.started: list[ReportScheduler] = []
        self.ran: list[tuple[ReportKind, str]] = []

    def start(
        self, clock_at: str, kinds: tuple[ReportKind, ...] = ("quarterly",)
    ) -> ReportScheduler:
        def run(kind: ReportKind, period: str) -> None:
            self.ran.append((kind, period))
            send_report(self.ledger, RULEBOOK, SETTINGS, kind, period)

        scheduler = ReportScheduler(
            self.url,
            run,
            Schedule(kinds=kinds),
            CAL,
            ZONE,
            clock=offset_clock(at(clock_at)),
        )
        scheduler.start()
        self.started.append(scheduler)
        return scheduler

    def stop(self, scheduler: ReportScheduler) -> None:
        scheduler.shutdown()
        self.started.remove(scheduler)

    def close(self) -> None:
        for scheduler in list(self.started):
            self.stop(scheduler)


@pytest.fixture
def runs(office: Ledger, db_url: str) -> Iterator[Runs]:
    handle = Runs(office, db_url)
    try:
        yield handle
    finally:
        handle.close()


def test_at_a_period_close_each_recipient_gets_the_report_once(runs: Runs) -> None:
    expected = _leaders(runs.ledger)
    scheduler = runs.start("2026-03-01 07:59:58", kinds=("quarterly", "annual"))
    assert scheduler.next_runs() == {
        JOB_IDS["quarterly"]: at("2026-03-01 08:00"),
        JOB_IDS["annual"]: at("2026-12-01 08:00"),
    }
    assert _queued(runs.ledger) == 0  # not before the close
    wait_for(lambda: _queued(runs.ledger) == expected, timeout=30, what="the quarterly report")
    time.sleep(1.5)  # nothing more comes after it
    assert _queued(runs.ledger) == expected
    assert runs.ran == [("quarterly", "2026Q1")]
    assert _sends(runs.ledger) == [("quarterly", "2026Q1")]
    assert scheduler.next_runs()[JOB_IDS["quarterly"]] == at("2026-06-01 08:00")


def test_a_close_missed_while_down_is_sent_once_at_start(runs: Runs) -> None:
    expected = _leaders(runs.ledger)
    runs.stop(runs.start("2026-02-27 12:00"))  # the service runs, then is down over Mar 1
    assert _queued(runs.ledger) == 0

    runs.start("2026-03-05 09:30")  # back four days later: the missed run is made up
    wait_for(lambda: _queued(runs.ledger) == expected, timeout=30, what="the missed report")
    runs.close()
    assert runs.ran == [("quarterly", "2026Q1")]

    later = runs.start("2026-03-06 09:30")  # another restart: nothing is due, nothing resent
    time.sleep(1.5)
    assert runs.ran == [("quarterly", "2026Q1")]
    assert _queued(runs.ledger) == expected
    assert later.next_runs() == {JOB_IDS["quarterly"]: at("2026-06-01 08:00")}


def test_a_failed_run_is_tried_again(office: Ledger, db_url: str) -> None:
    attempts: list[str] = []

    def run(kind: ReportKind, period: str) -> None:
        attempts.append(period)
        if len(attempts) == 1:
            raise RuntimeError("database away")  # as a dropped connection would
        send_report(office, RULEBOOK, SETTINGS, kind, period)

    scheduler = ReportScheduler(
        db_url,
        run,
        Schedule(kinds=("quarterly",)),
        CAL,
        ZONE,
        clock=offset_clock(at("2026-03-01 07:59:59")),
        retry_delays=(0.5,),
    )
    scheduler.start()
    try:
        expected = _leaders(office)
        wait_for(lambda: _queued(office) == expected, timeout=30, what="the retried report")
    finally:
        scheduler.shutdown()
    assert attempts == ["2026Q1", "2026Q1"]


def test_a_changed_schedule_replaces_the_stored_job(runs: Runs) -> None:
    runs.stop(runs.start("2026-02-27 12:00", kinds=("monthly", "quarterly")))
    scheduler = runs.start("2026-02-27 12:00", kinds=("annual",))
    assert scheduler.next_runs() == {JOB_IDS["annual"]: at("2026-12-01 08:00")}


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SPEC §8: shared PostgreSQL
def test_two_service_instances_on_one_postgresql_send_once_in_total(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both `mailroom serve` processes start a few seconds before the Mar 1 close.
    monkeypatch.setenv("MAILROOM_CLOCK", "2026-03-01T07:59:57+08:00")
    first = MailroomInstance(tmp_path / "a", db_url, **{"reports.send": ["quarterly"]})
    second = MailroomInstance(tmp_path / "b", db_url, **{"reports.send": ["quarterly"]})
    first.cli("init", "--demo")
    ledger = Ledger.from_url(db_url)
    try:
        expected = _leaders(ledger)
        first.start()
        second.start()

        def delivered() -> int:
            return len(first.outbox_messages()) + len(second.outbox_messages())

        # Whichever instance processes the stored job first runs it; the other finds it done,
        # or, if both run it at once, the database lets one of them queue each mail.
        wait_for(lambda: delivered() >= expected, timeout=60, what="the quarterly report")
        time.sleep(1)  # let a second copy, if there were one, arrive
        assert delivered() == expected
        assert _queued(ledger) == expected
        recipients = [str(m["To"]) for m in first.outbox_messages() + second.outbox_messages()]
        assert len(set(recipients)) == expected
        assert {str(m["Subject"]) for m in first.outbox_messages() + second.outbox_messages()} == {
            "2026年度第一季度政务信息工作总结"
        }
        assert _sends(ledger) == [("quarterly", "2026Q1")]
    finally:
        first.close()
        second.close()
        ledger.dispose()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[reports]\nschedule_hour = 24\n",
            "[reports] schedule_hour must be a whole number from 0 to 23",
        ),
        (
            "[reports]\nschedule_day = 31\n",
            "[reports] schedule_day must be a whole number from 1 to 28",
        ),
        (
            '[reports]\nsend = ["weekly"]\n',
            "[reports] send must be a list of monthly, quarterly, annual",
        ),
    ],
)
def test_schedule_settings_are_checked(tmp_path: Path, text: str, message: str) -> None:
    from mailroom.config import ConfigError, load_config

    path = tmp_path / "mailroom.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert str(err.value) == f"config: {message}"
