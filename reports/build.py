"""Builders: a period label in, a monthly 通报, quarterly or annual summary out (SPEC §6).

Each builder reads the ledger through `reports.scoring` only, in one session, and returns the
plain values of `reports.model`; rendering and sending are elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, timedelta, tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.calendar import Period, parse_period, quarter_of
from ledger.models import Unit
from ledger.registry.turnover import units_without_officer
from ledger.rulebook import Calendar, Rulebook
from ledger.wording import IDENTITY, Words
from reports import scoring
from reports.model import (
    Analysis,
    AnnualReport,
    MonthlyReport,
    MonthlyRow,
    MonthlyTable,
    QuarterlyReport,
    Report,
    ReportHeader,
    ReportKind,
    SequenceTable,
    StandingRow,
    date_text,
)

CHINESE_NUMBERS = "一二三四五六七八九十"
PERIOD_FORMS: dict[ReportKind, tuple[str, str]] = {
    "monthly": (r"\d{4}-\d{1,2}", "a month such as 2026-03"),
    "quarterly": (r"\d{4}Q\d{1,2}", "a quarter such as 2026Q1"),
    "annual": (r"\d{4}", "an assessment year such as 2026"),
}


def report_period(kind: ReportKind, label: str, zone: tzinfo, calendar: Calendar) -> Period:
    """The period a report of this kind covers; ValueError names what was expected."""
    pattern, expected = PERIOD_FORMS[kind]
    if not re.fullmatch(pattern, label.strip().upper()):
        raise ValueError(f"{label!r} is not {expected}")
    return parse_period(label, zone, calendar)


def span_text(period: Period, zone: tzinfo, words: Words = IDENTITY) -> str:
    first = period.start.astimezone(zone).date()
    last = period.end.astimezone(zone).date() - timedelta(days=1)
    return words("{first}至{last}", first=date_text(first), last=date_text(last))


def quarter_number(label: str) -> tuple[int, int]:
    year, _, number = label.partition("Q")
    return int(year), int(number)


def previous_quarter(label: str, quarters_per_year: int) -> str:
    year, number = quarter_number(label)
    if number > 1:
        return f"{year}Q{number - 1}"
    return f"{year - 1}Q{quarters_per_year}"


def office_name(session: Session, fallback: str) -> str:
    """The office's own unit in the registry (sequence `office`), else the configured name."""
    name = session.scalar(select(Unit.name).where(Unit.sequence == "office").order_by(Unit.id))
    return name or fallback


def _tables(rulebook: Rulebook, rows: Iterable[StandingRow]) -> tuple[SequenceTable, ...]:
    """The rows by sequence, in the rulebook's order, under the rulebook's titles."""
    by_sequence: dict[str, list[StandingRow]] = {}
    groups = {rule.key: rule.group for rule in rulebook.sequences}
    for row in rows:  # a sequence ranked with another is listed in that one's table
        by_sequence.setdefault(groups.get(row.sequence, row.sequence), []).append(row)
    return tuple(
        SequenceTable(
            sequence=rule.key,
            title=rule.report_title,
            rows=tuple(
                sorted(by_sequence[rule.key], key=lambda r: (r.rank, -r.points, r.unit_code))
            ),
            sheet_name=rule.sheet_name,
            metric=rulebook.metric,
        )
        for rule in rulebook.sequences
        if by_sequence.get(rule.key)
    )


def build_quarterly(
    session: Session,
    rulebook: Rulebook,
    label: str,
    zone: tzinfo,
    *,
    office: str,
    issued: date,
    excellent_limit: int = 10,
    words: Words = IDENTITY,
) -> QuarterlyReport:
    period = report_period("quarterly", label, zone, rulebook.calendar)
    year, number = quarter_number(period.label)
    rows = scoring.standings(session, rulebook, period, zone, words)
    previous = parse_period(
        previous_quarter(period.label, rulebook.quarters_per_year), zone, rulebook.calendar
    )
    before = scoring.standings(session, rulebook, previous, zone)
    notices = scoring.streak_notices(session, rulebook, period, zone)
    tables = _tables(rulebook.in_force_at(period.start, zone), rows)
    ranked = [r for t in tables for r in t.rows]
    analysis = Analysis(
        submitted=sum(r.submitted for r in rows),
        adopted=sum(r.adopted for r in rows),
        previous_submitted=sum(r.submitted for r in before),
        previous_adopted=sum(r.adopted for r in before),
        units_without_adoption=tuple(r.unit_name for r in ranked if r.adopted == 0),
        late_answers=scoring.late_answers(session, rulebook, period, zone),
        units_without_officer=tuple(u.name for u in units_without_officer(session, issued)),
    )
    header = ReportHeader(
        kind="quarterly",
        period=period.label,
        title=words(
            "{year}年度第{number}季度政务信息工作总结",
            year=year,
            number=CHINESE_NUMBERS[number - 1],
        ),
        span=span_text(period, zone, words),
        office_name=office,
        issued=date_text(issued),
    )
    return QuarterlyReport(
        header=header,
        tables=tables,
        praise=tuple(n for n in notices if n.kind == "praise"),
        criticism=tuple(n for n in notices if n.kind == "criticism"),
        excellent=tuple(
            scoring.excellent_items(session, rulebook, period, zone, excellent_limit, words)
        ),
        core_team=tuple(scoring.core_team(session, rulebook, period, zone)),
        analysis=analysis,
        excellence_lists=tuple(scoring.excellence_lists(session, rulebook, period, zone, words)),
        note=scoring.note(session, "quarterly", period),
    )


def build_monthly(
    session: Session,
    rulebook: Rulebook,
    label: str,
    zone: tzinfo,
    *,
    office: str,
    issued: date,
    words: Words = IDENTITY,
) -> MonthlyReport:
    month = report_period("monthly", label, zone, rulebook.calendar)
    year_label = str(quarter_of(month.start, zone, rulebook.calendar).year)
    year = parse_period(year_label, zone, rulebook.calendar)
    so_far = Period(f"{year.label}..{month.label}", year.start, month.end)
    this_month = {r.unit_code: r for r in scoring.standings(session, rulebook, month, zone)}
    annual = {r.unit_code: r for r in scoring.standings(session, rulebook, year, zone)}
    cumulative = _tables(
        rulebook.in_force_at(month.start, zone),
        scoring.standings(session, rulebook, so_far, zone, words),
    )
    tables = tuple(
        MonthlyTable(
            sequence=t.sequence,
            title=t.title,
            sheet_name=t.sheet_name,
            rows=tuple(
                MonthlyRow(
                    unit_code=r.unit_code,
                    unit_name=r.unit_name,
                    sequence=r.sequence,
                    month_points=this_month[r.unit_code].points
                    if r.unit_code in this_month
                    else scoring.as_points(0),
                    cumulative_points=r.points,
                    rank=r.rank,
                    annual_target=annual[r.unit_code].target if r.unit_code in annual else None,
                    month_submitted=mine.submitted if mine else 0,
                    month_adopted=mine.adopted if mine else 0,
                    quota=mine.quota if mine else None,
                    quota_met=mine.quota_met if mine else None,
                )
                for r in t.rows
                for mine in [this_month.get(r.unit_code)]
            ),
        )
        for t in cumulative
    )
    book = rulebook.in_force(month.start.astimezone(zone).date())
    lagging = None
    if book.lagging_units:
        slow = scoring.lagging(session, rulebook, so_far, zone, book.lagging_units)
        lagging = tuple(r for t in tables for r in t.rows if r.unit_code in slow)
    local = month.start.astimezone(zone)
    header = ReportHeader(
        kind="monthly",
        period=month.label,
        title=words("{year}年{month}月政务信息积分通报", year=local.year, month=local.month),
        span=words(
            "{span}；累计自{start}起",
            span=span_text(month, zone, words),
            start=date_text(year.start.astimezone(zone).date()),
        ),
        office_name=office,
        issued=date_text(issued),
    )
    return MonthlyReport(
        header=header,
        tables=tables,
        deductions=tuple(scoring.deductions(session, rulebook, month, zone))
        if book.monthly_deductions
        else None,
        lagging=lagging,
        payments=tuple(scoring.payments(session, rulebook, month, zone, words))
        if book.payments
        else None,
        note=scoring.note(session, "monthly", month),
    )


def build_annual(
    session: Session,
    rulebook: Rulebook,
    label: str,
    zone: tzinfo,
    *,
    office: str,
    issued: date,
    excellent_limit: int = 20,
    words: Words = IDENTITY,
) -> AnnualReport:
    year = report_period("annual", label, zone, rulebook.calendar)
    rows = scoring.standings(session, rulebook, year, zone, words)
    candidate_codes, missed_codes = scoring.annual_outcomes(session, rulebook, year, zone)
    tables = _tables(rulebook.in_force_at(year.start, zone), rows)
    ranked = [r for t in tables for r in t.rows]
    candidates = tuple(r for r in ranked if r.unit_code in candidate_codes)
    header = ReportHeader(
        kind="annual",
        period=year.label,
        title=words("{year}年度政务信息工作总结", year=year.label),
        span=span_text(year, zone, words),
        office_name=office,
        issued=date_text(issued),
    )
    book = rulebook.in_force(year.start.astimezone(zone).date())
    return AnnualReport(
        header=header,
        tables=tables,
        award_candidates=candidates,
        missed_target=tuple(r for r in ranked if r.unit_code in missed_codes),
        excellent=tuple(
            scoring.excellent_items(session, rulebook, year, zone, excellent_limit, words)
        ),
        awards=tuple(scoring.awards(session, rulebook, year, zone)),
        payments=tuple(scoring.payments(session, rulebook, year, zone, words))
        if book.payments
        else None,
        has_tasks=bool(book.tasks),
        has_targets=any(r.target is not None for r in ranked),
        excellence_lists=tuple(scoring.excellence_lists(session, rulebook, year, zone, words)),
        officer_award_names=book.officer_award_names,
        officer_candidates=tuple(
            scoring.officer_candidates(session, rulebook, year, zone, candidate_codes)
        )
        if book.officer_award_names
        else (),
        note=scoring.note(session, "annual", year),
    )


def build_report(
    session: Session,
    rulebook: Rulebook,
    kind: ReportKind,
    label: str,
    zone: tzinfo,
    *,
    office: str,
    issued: date,
    words: Words = IDENTITY,
) -> Report:
    if kind == "monthly":
        return build_monthly(
            session, rulebook, label, zone, office=office, issued=issued, words=words
        )
    if kind == "quarterly":
        return build_quarterly(
            session, rulebook, label, zone, office=office, issued=issued, words=words
        )
    return build_annual(session, rulebook, label, zone, office=office, issued=issued, words=words)
