"""A unit's standing as its own officer may ask for it by mail (`查询`): the period's items with
their state and points, the total against the target, the rank in the sequence, and what is
still pending (items the desk has not decided, 约稿 not answered yet). One unit only, always:
the caller passes the sender's own unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.calendar import Period
from ledger.editors import DECISION_VERBS
from ledger.models import (
    DeskAction,
    OutboundMessage,
    ScoreEvent,
    Solicitation,
    Submission,
    Unit,
)
from ledger.rulebook import Rulebook
from ledger.scoring import item_points, live_events
from ledger.solicit import target_states
from ledger.standings import Standing, standings

# An item's state as its unit reads it, worked out from its events and the desk's decisions.
ADOPTED, DECLINED, RETURNED, SUPERSEDED, PENDING = (
    "adopted", "declined", "returned", "superseded", "pending",
)  # fmt: skip


@dataclass(frozen=True)
class ItemStatus:
    tracking_no: str
    title: str
    received_at: datetime
    state: str  # adopted, declined, returned, superseded, pending
    adoptions: tuple[str, ...]  # "穗府信息 标题", "批示 市领导", as recorded; "" for a clue
    points: int


@dataclass(frozen=True)
class OpenSolicitation:
    code: str
    topic: str
    deadline: datetime


@dataclass(frozen=True)
class UnitStatus:
    unit_code: str
    unit_name: str
    period: Period
    items: tuple[ItemStatus, ...]
    standing: Standing | None  # None when the unit is not ranked in the period
    ranked: int  # units ranked with it (its sequence or group)
    open_solicitations: tuple[OpenSolicitation, ...]

    @property
    def pending(self) -> tuple[ItemStatus, ...]:
        return tuple(i for i in self.items if i.state == PENDING)


def item_status(session: Session, rulebook: Rulebook, item: Submission) -> ItemStatus:
    events = live_events(session, item.id)
    return ItemStatus(
        tracking_no=item.tracking_no,
        title=item.title,
        received_at=item.received_at,
        state=_state(session, item, events),
        adoptions=tuple(
            " ".join(p for p in (ev.rule, ev.level or "") if p)
            for ev in events
            if ev.kind in ("adoption", "bonus", "clue")
        ),
        points=item_points(rulebook, events),
    )


def _state(session: Session, item: Submission, events: list[ScoreEvent]) -> str:
    if item.status == "superseded":
        return SUPERSEDED
    if any(ev.kind == "adoption" for ev in events):
        return ADOPTED
    verb = session.scalar(
        select(DeskAction.verb)
        .where(
            DeskAction.submission_id == item.id,
            DeskAction.verb.in_(DECISION_VERBS),
            DeskAction.undone_at.is_(None),
        )
        .order_by(DeskAction.at.desc(), DeskAction.id.desc())
        .limit(1)
    )
    return {"decline": DECLINED, "return": RETURNED}.get(verb or "", PENDING)


def unit_status(
    session: Session,
    rulebook: Rulebook,
    unit_id: int,
    period: Period,
    zone: tzinfo,
    now: datetime,
) -> UnitStatus:
    """The unit's figures in `period`, exactly as `mailroom standings` computes them."""
    unit = session.get_one(Unit, unit_id)
    items = session.scalars(
        select(Submission)
        .where(
            Submission.unit_id == unit_id,
            Submission.received_at >= period.start,
            Submission.received_at < period.end,
        )
        .order_by(Submission.received_at, Submission.id)
    )
    rows = standings(session, rulebook, period, zone)
    own = next((s for s in rows if s.unit_code == unit.code), None)
    ranked = 0
    if own is not None:
        book = rulebook.in_force(period.start.astimezone(zone).date())
        group = _group(book, own.sequence)
        ranked = sum(1 for s in rows if _group(book, s.sequence) == group)
    return UnitStatus(
        unit_code=unit.code,
        unit_name=unit.name,
        period=period,
        items=tuple(item_status(session, rulebook, item) for item in items),
        standing=own,
        ranked=ranked,
        open_solicitations=_open_solicitations(session, unit_id, now),
    )


def _group(rulebook: Rulebook, sequence: str) -> str:
    rule = rulebook.sequence(sequence)
    return rule.group if rule is not None else sequence


def _open_solicitations(
    session: Session, unit_id: int, now: datetime
) -> tuple[OpenSolicitation, ...]:
    """约稿 asked of the unit, still open, that it has not answered."""
    unit = session.get_one(Unit, unit_id)
    out = []
    for sol in session.scalars(
        select(Solicitation)
        .where(Solicitation.closed_at.is_(None), Solicitation.deadline > now)
        .order_by(Solicitation.deadline, Solicitation.id)
    ):
        state = next(
            (t for t in target_states(session, sol, now) if t.unit_code == unit.code), None
        )
        if state is not None and state.state == "pending":
            out.append(OpenSolicitation(sol.code, sol.topic, sol.deadline))
    return tuple(out)


def answers_since(session: Session, address: str, since: datetime) -> int:
    """How many answers to a 查询 went to this address since `since` (the per-sender limit)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(OutboundMessage)
            .where(
                OutboundMessage.kind == "status",
                func.lower(OutboundMessage.to_address) == address.strip().lower(),
                OutboundMessage.created_at >= since,
            )
        )
        or 0
    )


def points_text(points: Decimal | int) -> str:
    """18, or 18.5 for a 直报点 share."""
    value = Decimal(points)
    return str(int(value)) if value == value.to_integral_value() else str(value.normalize())
