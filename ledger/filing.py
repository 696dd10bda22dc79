"""Ledger operations of intake: who is the sender, tracking numbers, filing, the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
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
    known = func.lower(Person.email).like(f"%@{_like(domain)}", escape="\\")
    hit = session.scalar(select(Person.id).where(known).limit(1))
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


JUDGED = ("filed", "rejected", "command", "command_refused")  # a later copy is a duplicate


def find_duplicate(
    session: Session, message_id: str | None, content_hash: str, written_hash: str
) -> Intake | None:
    """An earlier judged intake of the same message: the same Message-ID and what the same
    sender wrote (by whatever way it came), or — for a message without a Message-ID — the
    same bytes. Only the sender's own copies can match, and a lookup is one indexed query,
    however many messages anyone sent under that Message-ID."""
    query = select(Intake).where(Intake.state.in_(JUDGED))
    if message_id:
        query = query.where(Intake.message_id == message_id, Intake.written_hash == written_hash)
    else:
        query = query.where(Intake.content_hash == content_hash)
    return session.scalars(query.order_by(Intake.id).limit(1)).first()


def unhashed_copies(session: Session, message_id: str) -> list[Intake]:
    """Judged intakes of this Message-ID from before `written_hash` was kept (it is "")."""
    return list(
        session.scalars(
            select(Intake).where(
                Intake.message_id == message_id,
                Intake.written_hash == "",
                Intake.state.in_(JUDGED),
            )
        )
    )


def _like(text: str) -> str:
    """`text` for a LIKE pattern, its wildcards taken literally (escape character `\\`)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def mailbox_key(address: str) -> tuple[str, str]:
    """(local part without its +tag, domain), lower case: `WangFang+7@YX.test` is the mailbox
    (`wangfang`, `yx.test`), the same person however many tags a sender invents."""
    local, _, domain = address.strip().lower().rpartition("@")
    return local.split("+", 1)[0], domain


@dataclass(frozen=True)
class RefusalCounts:
    mailbox: int  # refusals to this mailbox, any +tag of it
    domain: int  # refusals to any address at its domain


def refusals_since(session: Session, address: str, since: datetime) -> RefusalCounts:
    """How many refusals were queued since `since` to this mailbox and to its domain."""
    local, domain = mailbox_key(address)
    to = func.lower(OutboundMessage.to_address)
    recent = select(func.count(OutboundMessage.id)).where(
        OutboundMessage.kind == "refusal", OutboundMessage.created_at >= since
    )
    mailbox = recent.where(
        or_(to == f"{local}@{domain}", to.like(f"{_like(local)}+%@{_like(domain)}", escape="\\"))
    )
    at_domain = recent.where(to.like(f"%@{_like(domain)}", escape="\\"))
    return RefusalCounts(session.scalar(mailbox) or 0, session.scalar(at_domain) or 0)


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
