"""Payments (稿酬, author rewards): the second ledger, in yuan, beside points (SPEC §9).

Like points, money is never stored: it is read from the live scoring events under the rulebook
in force when the item was received. An adoption pays its publication's (or grade's) `yuan`;
every bonus instance pays its level's `yuan` — two instructions on one item pay twice, while
their points count once. A payment goes to the item's writer as its sign-off names them
(co-authors named together get one payment per item and reason). Events of withdrawn items pay
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.calendar import Period, parse_period
from ledger.models import Person, ScoreEvent, Submission, Unit
from ledger.rulebook import Rulebook
from ledger.scoring import event_yuan

PAID_KINDS = ("adoption", "bonus")


@dataclass(frozen=True)
class Payment:
    unit_code: str
    unit_name: str
    sequence: str
    author: str
    tracking_no: str
    title: str
    amount_yuan: int
    reason: str
    period: str
    kind: str = ""  # the scoring event's: adoption, bonus
    rule: str = ""  # its publication or bonus, as the rulebook names it
    level: str | None = None


def reason_text(kind: str, rule: str, level: str | None) -> str:
    if kind == "adoption":
        return f"《{rule}》{level or ''}采用"
    return f"{rule} {level or ''}".strip()


def payments(
    session: Session, rulebook: Rulebook, period: Period | str, zone: tzinfo
) -> list[Payment]:
    """Every payment earned by the items received in `period`, by unit, item and event."""
    if isinstance(period, str):
        period = parse_period(period, zone, rulebook.calendar)
    rows = session.execute(
        select(ScoreEvent, Submission, Unit, Person.name)
        .join(Submission, ScoreEvent.submission_id == Submission.id)
        .join(Unit, Submission.unit_id == Unit.id)
        .outerjoin(Person, Submission.author_id == Person.id)
        .where(
            ScoreEvent.kind.in_(PAID_KINDS),
            ScoreEvent.undone_at.is_(None),
            Submission.status != "withdrawn",
            Submission.received_at >= period.start,
            Submission.received_at < period.end,
        )
        .order_by(Unit.code, Submission.tracking_no, ScoreEvent.id)
    ).all()
    found = []
    for ev, item, unit, person_name in rows:
        amount = event_yuan(rulebook.in_force_at(item.received_at, zone), ev)
        if amount <= 0:
            continue
        found.append(
            Payment(
                unit_code=unit.code,
                unit_name=unit.name,
                sequence=unit.sequence,
                author=item.signoff_author or person_name or "",
                tracking_no=item.tracking_no,
                title=item.title,
                amount_yuan=amount,
                reason=reason_text(ev.kind, ev.rule, ev.level),
                period=period.label,
                kind=ev.kind,
                rule=ev.rule,
                level=ev.level,
            )
        )
    return found
