"""The one place where reports ask the ledger for scores: standings, streaks, best items.

Reports never compute points themselves (SPEC §2: points are derived by the ledger's standings
queries, `ledger.standings` and `ledger.scoring`). Every builder goes through the functions
below, which turn the ledger's answers into the plain rows of `reports.model`.
"""

from __future__ import annotations

from datetime import tzinfo
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import payments as ledger_payments
from ledger import report_notes
from ledger import standings as ledger_standings
from ledger.calendar import Period
from ledger.models import ScoreEvent, SolicitationAnswer
from ledger.rulebook import Rulebook
from ledger.wording import IDENTITY, N_, Words
from reports.model import (
    AwardEntryLine,
    AwardLine,
    CoreMember,
    DeductionLine,
    ExcellenceLine,
    ExcellentItem,
    PaymentLine,
    StandingRow,
    StreakNotice,
    date_text,
)

# The columns that say where a unit's points come from (bonuses and deductions have their own);
# the share from direct-report units is labelled with their sequence's name (直报点分成).
BREAKDOWN = (("adoption", N_("采用得分")), ("clue", N_("线索得分")))
SHARE = N_("{names}分成")


def as_points(value: object) -> Decimal:
    """Points as an exact decimal, whatever numeric type the ledger hands back."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"points must be a number, not {type(value).__name__}")
    return Decimal(str(value))


def task_text(parts: tuple[ledger_standings.TaskPart, ...], words: Words = IDENTITY) -> str:
    """市采用 3/15，区采用 5/18，积分 120/300."""
    return "，".join(
        (words("积分") if p.name == "points" else words("{level}采用", level=p.name))
        + f" {as_points(p.actual)}/{p.target}"
        for p in parts
    )


def _share_label(rulebook: Rulebook, words: Words) -> str:
    names = [r.name for r in rulebook.sequences if r.reports_to_parent]
    return words(SHARE, names="、".join(names))


def _row(s: ledger_standings.Standing, share_label: str, words: Words) -> StandingRow:
    parts = [(words(label), as_points(s.points_by_kind.get(kind, 0))) for kind, label in BREAKDOWN]
    if s.share_points:
        parts.append((share_label, as_points(s.share_points)))
    return StandingRow(
        unit_code=s.unit_code,
        unit_name=s.unit_name,
        sequence=s.sequence,
        rank=s.rank,
        submitted=s.submitted,
        adopted=s.adopted,
        points=as_points(s.points),
        target=None if s.target is None else as_points(s.target),
        met=s.met,
        breakdown=tuple(parts),
        bonuses=as_points(s.bonus_points),
        deductions=as_points(s.deducted),
        task=task_text(s.task, words),
        quota=s.quota,
        quota_met=s.quota_met,
        quota_months=f"{s.quota_periods_met}/{s.quota_periods}" if s.quota_periods else "",
    )


def standings(
    session: Session, rulebook: Rulebook, period: Period, zone: tzinfo, words: Words = IDENTITY
) -> list[StandingRow]:
    """Every ranked unit's standing in the period, by sequence and rank."""
    label = _share_label(rulebook.in_force_at(period.start, zone), words)
    return [
        _row(s, label, words) for s in ledger_standings.standings(session, rulebook, period, zone)
    ]


def streak_notices(
    session: Session, rulebook: Rulebook, quarter: Period, zone: tzinfo
) -> list[StreakNotice]:
    """The praise and criticism that fire at the close of this quarter (SPEC §5.4)."""
    number = int(quarter.label.partition("Q")[2])
    outcomes = ledger_standings.streak_outcomes(
        session, rulebook, quarter.year, zone, through=number
    )
    notices = []
    for o in outcomes:
        if o.period != quarter.label or o.kind not in ("praise", "criticism") or not o.notify:
            continue
        assert o.notify in ("supervising_leader", "principal_leader"), o.notify
        notices.append(
            StreakNotice(
                unit_code=o.unit_code,
                unit_name=o.unit_name,
                kind="praise" if o.kind == "praise" else "criticism",
                quarters=o.count,
                audience="supervising_leader"
                if o.notify == "supervising_leader"
                else "principal_leader",
                replace_officer=o.replace_officer,
            )
        )
    return notices


def annual_outcomes(
    session: Session, rulebook: Rulebook, year: Period, zone: tzinfo
) -> tuple[set[str], set[str]]:
    """(award candidates, units that missed the annual target) of an assessment year."""
    outcomes = ledger_standings.streak_outcomes(session, rulebook, year.year, zone)
    candidates = {o.unit_code for o in outcomes if o.kind == "award_candidate"}
    missed = {o.unit_code for o in outcomes if o.kind == "annual_missed"}
    return candidates, missed


def _adoption_text(events: list[ScoreEvent], words: Words) -> str:
    parts = []
    for ev in events:
        if ev.kind == "adoption":
            parts.append(f"《{ev.rule}》{ev.level or ''}")
        elif ev.kind == "clue":
            parts.append(words("线索采用"))
        else:
            parts.append(f"{ev.rule}{ev.level or ''}")
    return "、".join(parts)


def _excellent(item: ledger_standings.ScoredItem, words: Words) -> ExcellentItem:
    return ExcellentItem(
        tracking_no=item.tracking_no,
        unit_name=item.unit_name,
        title=item.title,
        publication=_adoption_text(list(item.events), words),
        points=as_points(item.points),
    )


def excellent_items(
    session: Session,
    rulebook: Rulebook,
    period: Period,
    zone: tzinfo,
    limit: int,
    words: Words = IDENTITY,
) -> list[ExcellentItem]:
    """The period's best items (优秀信息篇目) by their points, best first, at most `limit`."""
    return [
        _excellent(item, words)
        for item in ledger_standings.best_items(session, rulebook, period, limit, zone)
    ]


def excellence_lists(
    session: Session, rulebook: Rulebook, period: Period, zone: tzinfo, words: Words = IDENTITY
) -> list[ExcellenceLine]:
    """The rulebook's lists of good items (优秀调研信息, 领导批示好信息) of the period."""
    return [
        ExcellenceLine(
            name=found.name, items=tuple(_excellent(item, words) for item in found.items)
        )
        for found in ledger_standings.excellence_lists(session, rulebook, period, zone)
    ]


def officer_candidates(
    session: Session, rulebook: Rulebook, year: Period, zone: tzinfo, units: set[str]
) -> list[CoreMember]:
    """The officers of the candidate units who wrote an adopted item (先进个人 candidates)."""
    return [
        CoreMember(name=o.name, unit_name=o.unit_name, points=as_points(o.points), items=o.items)
        for o in ledger_standings.officer_standings(session, rulebook, year, zone)
        if o.unit_code in units and o.adopted
    ]


def note(session: Session, kind: str, period: Period) -> str:
    """The office's own text for this report and period, if staff set one."""
    return report_notes.note_for(session, kind, period.label)


def core_team(
    session: Session, rulebook: Rulebook, quarter: Period, zone: tzinfo
) -> list[CoreMember]:
    """The 优秀信息员核心队伍 after this quarter, best first."""
    return [
        CoreMember(name=o.name, unit_name=o.unit_name, points=as_points(o.points), items=o.items)
        for o in ledger_standings.core_team(session, rulebook, quarter, zone)
    ]


def late_answers(session: Session, rulebook: Rulebook, period: Period, zone: tzinfo) -> int:
    """How many 约稿 answers came after their deadline in the period."""
    return (
        session.scalar(
            select(func.count(SolicitationAnswer.id)).where(
                SolicitationAnswer.late.is_(True),
                SolicitationAnswer.received_at >= period.start,
                SolicitationAnswer.received_at < period.end,
            )
        )
        or 0
    )


def deductions(
    session: Session, rulebook: Rulebook, period: Period, zone: tzinfo
) -> list[DeductionLine]:
    """The period's deductions with their notes (为当月通报作出说明)."""
    return [
        DeductionLine(
            unit_name=d.unit_name,
            sequence_title=rulebook.sequence_title(d.sequence),
            rule=d.rule,
            points=as_points(d.points),
            note=d.note,
            date=date_text(d.occurred_at.astimezone(zone).date()),
        )
        for d in ledger_standings.deductions_in(session, rulebook, period, zone)
    ]


def payments(
    session: Session, rulebook: Rulebook, period: Period, zone: tzinfo, words: Words = IDENTITY
) -> list[PaymentLine]:
    """The period's payments in yuan, from the ledger's payments query (an adoption's reason
    in the report's language set; a bonus's is the rulebook's own words)."""
    return [
        PaymentLine(
            unit_name=p.unit_name,
            author=p.author,
            tracking_no=p.tracking_no,
            title=p.title,
            reason=words("《{rule}》{level}采用", rule=p.rule, level=p.level or "")
            if p.kind == "adoption"
            else p.reason,
            amount_yuan=p.amount_yuan,
        )
        for p in ledger_payments.payments(session, rulebook, period, zone)
    ]


def awards(session: Session, rulebook: Rulebook, year: Period, zone: tzinfo) -> list[AwardLine]:
    """The rulebook's award quotas applied to the year."""
    return [
        AwardLine(
            name=a.name,
            kind="unit" if a.kind == "unit" else "officer",
            quota=a.quota,
            yuan=a.yuan,
            entries=tuple(
                AwardEntryLine(
                    sequence_title=rulebook.sequence_title(e.sequence),
                    name=e.name,
                    unit_name=e.unit_name,
                    points=as_points(e.points),
                    rank=e.rank,
                )
                for e in a.entries
            ),
        )
        for a in ledger_standings.award_results(session, rulebook, year, zone)
    ]


def lagging(
    session: Session, rulebook: Rulebook, period: Period, zone: tzinfo, count: int
) -> set[str]:
    """The codes of the `count` lowest units of each sequence in the period."""
    rows = ledger_standings.standings(session, rulebook, period, zone)
    return {s.unit_code for s in ledger_standings.lagging_units(rows, count)}
