"""Ledger operations of intake: who is the sender, tracking numbers, filing, the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledger.models import Intake, OutboundMessage, Person, TrackingCounter, Unit
from parser.types import SenderContext


@dataclass(frozen=True)
class Sender:
    """A registered info officer, as the parser needs it plus the ids the ledger needs."""

    context: SenderContext
    person_id: int
    unit_id: int


def find_sender(session: Session, address: str) -> Sender | None:
    """The registered info officer (信息员) with this address, if any."""
    row = session.execute(
        select(Person, Unit)
        .join(Unit, Person.unit_id == Unit.id)
        .where(func.lower(Person.email) == address.strip().lower(), Person.role == "officer")
        .order_by(Person.id)
        .limit(1)
    ).first()
    if row is None:
        return None
    person, unit = row
    return Sender(
        context=SenderContext(
            unit_code=unit.code, unit_name=unit.name, unit_mark=unit.mark, person_name=person.name
        ),
        person_id=person.id,
        unit_id=unit.id,
    )


def domain_is_known(session: Session, domain: str, extra: tuple[str, ...] = ()) -> bool:
    """True when the domain is one of a registered person, or listed in the config."""
    domain = domain.strip().lower()
    if not domain:
        return False
    if domain in extra:
        return True
    hit = session.scalar(select(Person.id).where(func.lower(Person.email).like(f"%@{domain}")))
    return hit is not None


def next_tracking_no(session: Session, prefix: str, year: int) -> str:
    """`GZ-2026-000123`: one counter row per (prefix, year), incremented atomically."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(TrackingCounter)
        .values(prefix=prefix, year=year, last=1)
        .on_conflict_do_update(
            index_elements=["prefix", "year"], set_={"last": TrackingCounter.last + 1}
        )
        .returning(TrackingCounter.last)
    )
    number = session.execute(stmt).scalar_one()
    return f"{prefix}-{year}-{number:06d}"


def find_duplicate(session: Session, message_id: str | None, content_hash: str) -> Intake | None:
    """An earlier intake of the same message (same Message-ID and content), already judged."""
    query = select(Intake).where(
        Intake.content_hash == content_hash,
        Intake.state.in_(("filed", "rejected", "command", "command_refused")),
    )
    if message_id:
        query = query.where(Intake.message_id == message_id)
    return session.scalars(query.order_by(Intake.id).limit(1)).first()


def refusals_since(session: Session, address: str, since: datetime) -> int:
    return (
        session.scalar(
            select(func.count(OutboundMessage.id)).where(
                OutboundMessage.kind == "refusal",
                func.lower(OutboundMessage.to_address) == address.lower(),
                OutboundMessage.created_at >= since,
            )
        )
        or 0
    )


def queue_mail(
    session: Session,
    *,
    kind: str,
    to_address: str,
    subject: str,
    message: bytes,
    now: datetime,
    intake_id: int | None = None,
) -> OutboundMessage:
    row = OutboundMessage(
        kind=kind,
        to_address=to_address,
        subject=subject,
        message=message,
        intake_id=intake_id,
        state="queued",
        attempts=0,
        created_at=now,
        next_attempt_at=now,
    )
    session.add(row)
    return row
