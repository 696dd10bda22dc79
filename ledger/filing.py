"""Ledger operations of intake: who is the sender, tracking numbers, filing, the items."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Dialect, bindparam, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledger.calendar import Period
from ledger.db import DriverStatement
from ledger.models import Base, Intake, OutboundMessage, Person, Submission, Unit
from ledger.rulebook import name_key
from parser.types import SenderContext
from parser.types import Submission as ParsedItem


@dataclass(frozen=True)
class Sender:
    """A registered info officer, as the parser needs it plus the ids the ledger needs."""

    context: SenderContext
    person_id: int
    unit_id: int
    unit: Unit


def approver_roles(session: Session, unit_id: int, name: str) -> set[str]:
    """The registry roles of the unit's people called `name` (审签人 as the sign-off writes it;
    full/half width and spaces aside); empty when nobody of the unit has that name."""
    if not name.strip():
        return set()
    wanted = name_key(name)
    return {
        person.role
        for person in session.scalars(select(Person).where(Person.unit_id == unit_id))
        if name_key(person.name) == wanted
    }


def find_sender(session: Session, address: str, day: date) -> Sender | None:
    """The info officer (信息员) registered with this address and in office on `day`, if any.

    Asked once per session for an address and a day: a batch of filings (one transaction)
    reads the registry as it stood when it began, and an officer who sends several items in
    it is looked up once."""
    address = address.strip().lower()
    key = ("filing.sender", address, day)
    if key in session.info:
        found: Sender | None = session.info[key]
        return found
    found = session.info[key] = _sender(session, address, day)
    return found


def _sender(session: Session, address: str, day: date) -> Sender | None:
    row = session.execute(
        select(Person, Unit)
        .join(Unit, Person.unit_id == Unit.id)
        .where(
            func.lower(Person.email) == address,
            Person.role == "officer",
            Person.active_on(day),
        )
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
        unit=unit,
    )


@dataclass(frozen=True)
class FormerOfficer:
    """An address that was a unit's info officer but is not in office on the day asked about."""

    unit_id: int
    unit_name: str
    active_to: date | None  # the last day in office; None when the row starts later
    current: tuple[str, ...]  # the names of the unit's officers in office that day


def former_officer(session: Session, address: str, day: date) -> FormerOfficer | None:
    """The latest officer row of this address out of office on `day`, with who is in now."""
    person = session.scalars(
        select(Person)
        .where(
            func.lower(Person.email) == address.strip().lower(),
            Person.role == "officer",
            ~Person.active_on(day),
        )
        .order_by(Person.active_to.desc(), Person.id.desc())
        .limit(1)
    ).first()
    if person is None:
        return None
    current = session.scalars(
        select(Person.name)
        .where(Person.unit_id == person.unit_id, Person.role == "officer", Person.active_on(day))
        .order_by(Person.id)
    ).all()
    ended = person.active_to if person.active_to is not None and person.active_to < day else None
    return FormerOfficer(person.unit_id, person.unit.name, ended, tuple(dict.fromkeys(current)))


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
    number = _counter_on(session.get_bind().dialect).execute(
        session, {"prefix": prefix, "year": year}
    )
    return f"{prefix}-{year}-{number.scalar_one():06d}"


@functools.lru_cache(maxsize=8)
def _counter_on(dialect: Dialect) -> DriverStatement:
    """The counter's upsert, built and compiled once for `dialect`: it runs for every item."""
    counters = Base.metadata.tables["tracking_counters"]
    insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert(counters)
        .values(prefix=bindparam("prefix"), year=bindparam("year"), last=1)
        .on_conflict_do_update(
            index_elements=["prefix", "year"], set_={"last": counters.c.last + 1}
        )
        .returning(counters.c.last)
    )
    return DriverStatement(stmt, dialect)


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


def unit_items_of(
    session: Session, unit_id: int, start: datetime, end: datetime
) -> list[Submission]:
    """The unit's filed items received in [start, end), the latest first (what a 修改稿 may
    supersede)."""
    return list(
        session.scalars(
            select(Submission)
            .where(
                Submission.unit_id == unit_id,
                Submission.status == "filed",
                Submission.received_at >= start,
                Submission.received_at < end,
            )
            .order_by(Submission.received_at.desc(), Submission.id.desc())
        )
    )


def file_submission(
    session: Session,
    *,
    intake: Intake,
    sender: Sender,
    item: ParsedItem,
    mailbox: str,
    received_at: datetime,
    tracking_no: str,
    warnings: list[str],
    supersedes: Submission | None,
    importance: str = "",
) -> Submission:
    """File a valid item under its tracking number: the submission row in its final state,
    the item it revises (if any) superseded."""
    if supersedes is not None:
        supersedes.status = "superseded"
    filed = Submission(
        tracking_no=tracking_no,
        intake_id=intake.id,
        unit_id=sender.unit_id,
        author_id=sender.person_id,
        mailbox=mailbox,
        received_at=received_at,
        title=item.title,
        body=item.body,
        body_chars=item.body_chars,
        attachment_name=item.attachment_name,
        attachment_chars=item.attachment_chars,
        signoff_unit=item.signoff.unit or "",
        signoff_author=item.signoff.author or "",
        signoff_phone=item.signoff.phone or "",
        signoff_date=item.signoff.date,
        approver=item.signoff.approver or "",
        importance=importance,
        status="filed",
        warnings=warnings,
        supersedes_id=supersedes.id if supersedes else None,
    )
    session.add(filed)
    session.flush()
    return filed


def item_by_tracking_no(session: Session, tracking_no: str) -> tuple[Submission, str] | None:
    """A filed item and its unit's code."""
    row = session.execute(
        select(Submission, Unit.code)
        .join(Unit, Submission.unit_id == Unit.id)
        .where(Submission.tracking_no == tracking_no)
    ).first()
    return None if row is None else (row[0], row[1])


def items_in(
    session: Session, period: Period | None = None, unit_code: str | None = None
) -> list[tuple[Submission, str]]:
    """Filed items (received in `period`, of one unit), oldest first, with their unit's code."""
    query = select(Submission, Unit.code).join(Unit, Submission.unit_id == Unit.id)
    if period is not None:
        query = query.where(
            Submission.received_at >= period.start, Submission.received_at < period.end
        )
    if unit_code:
        query = query.where(Unit.code == unit_code)
    return [(item, code) for item, code in session.execute(query.order_by(Submission.id))]
