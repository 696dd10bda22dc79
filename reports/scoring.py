"""The one place where reports ask the ledger for scores: standings, streaks, best items.

Reports never compute points themselves (SPEC §2: points are derived by the ledger's standings
queries). Every builder goes through the functions below, which turn the ledger's answers
into the plain rows of `reports.model`.

Until the ledger's scoring queries exist, `standings` lists every ranked unit with its real
submission count and no points, and the streak, best-item and core-team lists are empty; the
bodies of these functions are where the ledger's queries plug in.
"""

from __future__ import annotations

from datetime import tzinfo
from decimal import Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ledger.calendar import Period
from ledger.models import Submission, Unit
from ledger.rulebook import Rulebook
from reports.model import SEQUENCE_TITLES, CoreMember, ExcellentItem, StandingRow, StreakNotice


def as_points(value: object) -> Decimal:
    """Points as an exact decimal, whatever numeric type the ledger hands back."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"points must be a number, not {type(value).__name__}")
    return Decimal(str(value))


def _ranked_units(session: Session, period: Period) -> list[Unit]:
    start, end = period.start.date(), period.end.date()
    return list(
        session.scalars(
            select(Unit)
            .where(
                Unit.sequence.in_(tuple(SEQUENCE_TITLES)),
                or_(Unit.active_from.is_(None), Unit.active_from < end),
                or_(Unit.active_to.is_(None), Unit.active_to >= start),
            )
            .order_by(Unit.id)
        )
    )


def standings(
    session: Session, rulebook: Rulebook, period: Period, zone: tzinfo
) -> list[StandingRow]:
    """Every ranked unit's standing in the period, in no particular order."""
    submitted = dict(
        session.execute(
            select(Submission.unit_id, func.count(Submission.id))
            .where(
                Submission.received_at >= period.start,
                Submission.received_at < period.end,
                Submission.status != "withdrawn",
            )
            .group_by(Submission.unit_id)
        ).all()
    )
    return [
        StandingRow(
            unit_code=unit.code,
            unit_name=unit.name,
            sequence=unit.sequence,
            rank=1,
            submitted=int(submitted.get(unit.id, 0)),
            adopted=0,
            points=Decimal(0),
            target=None,
            met=None,
        )
        for unit in _ranked_units(session, period)
    ]


def streak_notices(
    session: Session, rulebook: Rulebook, quarter: Period, zone: tzinfo
) -> list[StreakNotice]:
    """The streak rules that fire at the close of this quarter (SPEC §5.4)."""
    return []


def excellent_items(
    session: Session, rulebook: Rulebook, period: Period, zone: tzinfo, limit: int
) -> list[ExcellentItem]:
    """The period's best items (优秀信息篇目), best first, at most `limit`."""
    return []


def core_team(
    session: Session, rulebook: Rulebook, quarter: Period, zone: tzinfo
) -> list[CoreMember]:
    """The 优秀信息员核心队伍 after this quarter, best first."""
    return []


def late_answers(session: Session, rulebook: Rulebook, period: Period, zone: tzinfo) -> int:
    """How many 约稿 answers came after their deadline in the period."""
    return 0
