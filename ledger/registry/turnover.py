"""People who leave and units left without an officer (SPEC §5.1, Guangzhou 二(二)).

Nobody is deleted: a person who leaves keeps the row with the last day in office
(`active_to`), so every item keeps the officer who sent it and the standings of the days before
stay as they were; from the next day their mail is refused `inactive_sender`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.models import Person, Unit
from ledger.registry.checks import RegistryError


@dataclass(frozen=True)
class Deactivated:
    email: str
    unit_code: str
    role: str
    last_day: date


def deactivate(
    session: Session, email: str, from_day: date, role: str | None = None
) -> list[Deactivated]:
    """End the address's registrations (every role, or `role` only) before `from_day`: the day
    before is the last day in office. A row already ended earlier keeps its own end."""
    wanted = email.strip().lower()
    stmt = select(Person).where(func.lower(Person.email) == wanted)
    if role is not None:
        stmt = stmt.where(Person.role == role)
    people = list(session.scalars(stmt.order_by(Person.id)))
    if not people:
        what = f" as {role}" if role else ""
        raise RegistryError(f"no person is registered with {wanted}{what}", [wanted])
    last_day = from_day - timedelta(days=1)
    out = []
    for person in people:
        if person.active_from is not None and person.active_from > last_day:
            raise RegistryError(
                f"{wanted} ({person.role} of {person.unit.code}) starts on "
                f"{person.active_from}; it cannot end before it starts",
                [wanted],
            )
        if person.active_to is None or person.active_to > last_day:
            person.active_to = last_day
        out.append(Deactivated(wanted, person.unit.code, person.role, person.active_to))
    session.flush()
    return out


def units_without_officer(session: Session, day: date) -> list[Unit]:
    """Units in service on `day` (the office aside) with no info officer in office that day."""
    staffed = select(Person.unit_id).where(Person.role == "officer", Person.active_on(day))
    return list(
        session.scalars(
            select(Unit)
            .where(
                Unit.sequence != "office",
                (Unit.active_from.is_(None)) | (Unit.active_from <= day),
                (Unit.active_to.is_(None)) | (Unit.active_to >= day),
                Unit.id.not_in(staffed),
            )
            .order_by(Unit.code)
        )
    )
