"""Early warnings (预警): at the rulebook's points of a period, each unit below its pro-rata
target is told, its officers in office and its 主管领导, with the gap in figures.

A point is `[[warnings]]` of the rulebook (default: two thirds through each quarter). While the
period is open and the point has passed, every check finds the lagging units and sends each of
them one notice per recipient through `deliver.send_once`: the (report, period, recipient) key
makes it go once, also with two instances on one database and after a restart past the point.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.calendar import Period, parse_period, quarter_of
from ledger.db import Ledger
from ledger.models import Person, Unit
from ledger.rulebook import Rulebook, WarningPoint
from ledger.standings import standings
from ledger.wording import N_, Words
from reports.build import office_name
from reports.deliver import Recipient, ReportSettings, SendSummary, compose_report, send_each
from reports.render import ReportWriter

log = logging.getLogger(__name__)

MONTHS = {"month": 1, "quarter": 3, "year": 12}  # a quarter's months come from the calendar


@dataclass(frozen=True)
class Lagging:
    """A unit behind at a point: what it has, what the share of its target gone asks."""

    unit_id: int
    unit_code: str
    unit_name: str
    sequence_name: str
    measure: str  # points, submitted, adopted
    value: Decimal
    expected: int  # pro rata, rounded up
    target: int  # for the whole measured period
    gap: int


def period_at(kind: str, instant: datetime, zone: tzinfo, rulebook: Rulebook) -> Period:
    """The month, quarter or assessment year that `instant` falls in."""
    calendar = rulebook.calendar
    if kind == "month":
        label = instant.astimezone(zone).strftime("%Y-%m")
    elif kind == "quarter":
        label = quarter_of(instant, zone, calendar).label
    else:
        label = str(quarter_of(instant, zone, calendar).year)
    return parse_period(label, zone, calendar)


def point_instant(period: Period, point: WarningPoint) -> datetime:
    return period.start + (period.end - period.start) * point.at


def due(
    rulebook: Rulebook, now: datetime, zone: tzinfo
) -> list[tuple[WarningPoint, Period, datetime]]:
    """The points passed in periods still open at `now`: (point, its period, its instant)."""
    book = rulebook.in_force_at(now, zone)
    out = []
    for point in book.warnings:
        period = period_at(point.period, now, zone, rulebook)
        at = point_instant(period, point)
        if at <= now < period.end:
            out.append((point, period, at))
    return out


def lagging_units(
    session: Session, rulebook: Rulebook, point: WarningPoint, at: datetime, zone: tzinfo
) -> tuple[Period, float, list[Lagging]]:
    """The measured period, the share of it gone at `at`, and the units behind then."""
    measured = period_at(point.measured, at, zone, rulebook)
    share = (at - measured.start) / (measured.end - measured.start)
    book = rulebook.in_force(measured.start.astimezone(zone).date())
    months = _months(measured, book)
    ids = {u.code: (u.id, u.name) for u in session.scalars(select(Unit))}
    out = []
    for s in standings(session, rulebook, measured, zone):
        rule = book.sequence(s.sequence)
        measure, target = "points", s.target
        value = s.points if s.metric == "points" else Decimal(s.submitted)
        if s.metric == "count":
            measure = "submitted"
        if target is None and rule is not None and rule.quota is not None:
            # A count quota of a shorter period (Changji's monthly items) over the measured one.
            quota = rule.quota
            measure = quota.counts
            target = quota.items * months // _months_of(quota.period, book)
            value = Decimal(s.submitted if quota.counts == "submitted" else s.adopted)
        if not target:
            continue
        # Pro rata to the nearest whole (two thirds of 18 is 12), never below 1.
        expected = max(
            1, int((Decimal(target) * Decimal(share)).quantize(Decimal(1), ROUND_HALF_UP))
        )
        if value < expected:
            unit_id, name = ids[s.unit_code]
            out.append(
                Lagging(
                    unit_id=unit_id,
                    unit_code=s.unit_code,
                    unit_name=name,
                    sequence_name=book.sequence_name(s.sequence),
                    measure=measure,
                    value=value,
                    expected=expected,
                    target=target,
                    gap=math.ceil(expected - value),
                )
            )
    return measured, share, out


def _months_of(kind: str, book: Rulebook) -> int:
    return book.calendar.months_per_quarter if kind == "quarter" else MONTHS[kind]


def _months(period: Period, book: Rulebook) -> int:
    return _months_of(period.kind, book)


def recipients(session: Session, unit_id: int, day: datetime, zone: tzinfo) -> list[Recipient]:
    """The unit's officers in office and its 主管领导, once each."""
    on = day.astimezone(zone).date()
    people = session.scalars(
        select(Person)
        .where(
            Person.unit_id == unit_id,
            Person.role.in_(("officer", "supervising_leader")),
            Person.active_on(on),
        )
        .order_by(Person.role, Person.id)
    )
    seen: dict[str, Recipient] = {}
    for p in people:
        seen.setdefault(p.email.lower(), Recipient(p.email, p.name))
    return list(seen.values())


def send_warnings(
    ledger: Ledger,
    rulebook: Rulebook,
    settings: ReportSettings,
    now: datetime,
    writer: ReportWriter | None = None,
) -> SendSummary:
    """Queue each due warning once per recipient; what was queued before is left alone."""
    writer = writer or ReportWriter(settings.templates)
    summary = SendSummary()
    zone = settings.zone
    for point, period, at in due(rulebook, now, zone):
        this = SendSummary()
        with ledger.reader() as session:
            measured, share, behind = lagging_units(session, rulebook, point, at, zone)
            people = {lag.unit_id: recipients(session, lag.unit_id, now, zone) for lag in behind}
            office = office_name(session, settings.sender_name)
        for lag in behind:
            if not people[lag.unit_id]:
                log.warning("unit %s has nobody in office to warn", lag.unit_code)
                continue
            context = warning_context(lag, measured, share, at, zone, office, writer.words)
            subject = str(context["subject"])
            text, html = writer.warning(context)

            def message(r: Recipient, s: str = subject, t: str = text, h: str = html) -> bytes:
                mail = compose_report(settings, kind="warning", subject=s, text=t, html=h, now=now)
                return mail.to(r)

            this.add(
                send_each(
                    ledger,
                    report=f"warning/{lag.unit_id}",
                    period=f"{period.label}@{round(point.at * 1000)}",
                    recipients=people[lag.unit_id],
                    kind="warning",
                    subject=subject,
                    message=message,
                    now=now,
                )
            )
        log.info(
            "early warning %s of %s: %d units behind, %d queued, %d already sent",
            point.period, period.label, len(behind), this.queued, this.already_sent,
        )  # fmt: skip
        summary.add(this)
    return summary


MEASURE_TEXT = {
    "points": (N_("累计得分"), N_("分")),
    "submitted": (N_("报送信息"), N_("条")),
    "adopted": (N_("被采用信息"), N_("条")),
}
_NUMBERS = "一二三四五六"


def period_text(period: Period, words: Words) -> str:
    """2027年度第一季度, 2027年度, 2027年3月."""
    label = period.label
    if period.kind == "quarter":
        year, number = label.split("Q")
        return words("{y}年度第{n}季度", y=year, n=_NUMBERS[int(number) - 1])
    if period.kind == "month":
        year, month = label.split("-")
        return f"{year}年{int(month)}月"
    return words("{y}年度", y=label)


def warning_context(
    lag: Lagging,
    measured: Period,
    share: float,
    at: datetime,
    zone: tzinfo,
    office: str,
    words: Words,
) -> dict[str, Any]:
    local = at.astimezone(zone)
    measure, unit = MEASURE_TEXT[lag.measure]
    span = period_text(measured, words)
    value = lag.value
    day = f"{local.year}年{local.month}月{local.day}日"
    return {
        "subject": words("关于{u}{p}政务信息报送进度的预警提示", u=lag.unit_name, p=span),
        "unit_name": lag.unit_name,
        "period_text": span,
        "as_of": day,
        "issued": day,
        "percent": round(share * 100),
        "measure_text": words(measure),
        "unit": words(unit),
        "value": int(value) if value == value.to_integral_value() else value,
        "expected": lag.expected,
        "target": lag.target,
        "gap": lag.gap,
        "office_name": office,
    }


class WarningCheck:
    """`send_warnings` for a service loop: the points are looked at every `every` seconds."""

    def __init__(
        self,
        ledger: Ledger,
        rulebook: Rulebook,
        settings: ReportSettings,
        every: float,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.ledger, self.rulebook, self.settings, self.every = ledger, rulebook, settings, every
        self.clock = clock or time.monotonic
        self.next_at: float | None = None
        self.done: set[tuple[str, str]] = set()  # (point, period) all sent by this process
        self.writer = ReportWriter(settings.templates)

    def __call__(self) -> int:
        tick = self.clock()
        if self.next_at is not None and tick < self.next_at:
            return 0
        self.next_at = tick + self.every
        now = datetime.now(UTC)
        points = due(self.rulebook, now, self.settings.zone)
        if all((f"{p.period}@{p.at}", period.label) in self.done for p, period, _ in points):
            return 0
        summary = send_warnings(self.ledger, self.rulebook, self.settings, now, self.writer)
        self.done |= {(f"{p.period}@{p.at}", period.label) for p, period, _ in points}
        return summary.queued
