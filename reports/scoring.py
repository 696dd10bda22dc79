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

from ledger import standings as ledger_standings
from ledger.calendar import Period
from ledger.models import ScoreEvent, SolicitationAnswer
from ledger.rulebook import Rulebook
from reports.model import CoreMember, ExcellentItem, StandingRow, StreakNotice

# The columns that say where a unit's points come from (bonuses and deductions have their own).
BREAKDOWN = (("adoption", "采用得分"), ("clue", "线索得分"))
SHARE = "直报点分成"


def as_points(value: object) -> Decimal:
    """Points as an exact decimal, whatever numeric type the ledger hands back."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"points must be a number, not {type(value).__name__}")
    return Decimal(str(value))


def _row(s: ledger_standings.Standing) -> StandingRow:
    parts = [(label, as_points(s.points_by_kind.get(kind, 0))) for kind, label in BREAKDOWN]
    if s.share_points:
        parts.append((SHARE, as_points(s.share_points)))
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
        bonuses=as_points(s.points_by_kind.get("bonus", 0)),
        deductions=as_points(s.deducted),
    )


def standings(
    session: Session, rulebook: Rulebook, period: Period, zone: tzinfo
) -> list[StandingRow]:
    """Every ranked unit's standing in the period, by sequence and rank."""
    return [_row(s) for s in ledger_standings.standings(session, rulebook, period, zone)]


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


def _adoption_text(events: list[ScoreEvent]) -> str:
    parts = []
    for ev in events:
        if ev.kind == "adoption":
            parts.append(f"《{ev.rule}》{ev.level or ''}")
        elif ev.kind == "clue":
            parts.append("线索采用")
        else:
            parts.append(f"{ev.rule}{ev.level or ''}")
    return "、".join(parts)


def excellent_items(
    session: Session, rulebook: Rulebook, period: Period, zone: tzinfo, limit: int
) -> list[ExcellentItem]:
    """The period's best items (优秀信息篇目) by their points, best first, at most `limit`."""
    return [
        ExcellentItem(
            tracking_no=item.tracking_no,
            unit_name=item.unit_name,
            title=item.title,
            publication=_adoption_text(list(item.events)),
            points=as_points(item.points),
        )
        for item in ledger_standings.best_items(session, rulebook, period, limit)
    ]


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
