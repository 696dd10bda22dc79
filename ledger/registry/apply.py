"""Applying checked registry rows to the ledger, and exporting the ledger's (SPEC §5.1).

An import is all or nothing: if any row of any file is bad, nothing changes. Otherwise units are
upserted by code and people by (unit code, role, email), so re-importing a file changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import NoReturn

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.models import ROLES, SEQUENCES, Person, Unit
from ledger.registry.checks import PersonRow, RegistryError, Sequences, UnitRow, check_tables
from ledger.registry.formats import (
    TABLES,
    UNITS,
    read_files,
    write_atomically,
    write_csv,
    write_xlsx,
)
from ledger.rulebook import Rulebook


@dataclass(frozen=True)
class ImportSummary:
    units_added: int = 0
    units_updated: int = 0
    people_added: int = 0
    people_updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        """In words, for people: `30 units added, 90 people added`."""

        def count(n: int, one: str, many: str) -> str:
            return f"{n} {one if n == 1 else many}"

        parts = [
            f"{count(n, one, many)} {what}"
            for n, one, many, what in (
                (self.units_added, "unit", "units", "added"),
                (self.units_updated, "unit", "units", "updated"),
                (self.people_added, "person", "people", "added"),
                (self.people_updated, "person", "people", "updated"),
                (self.unchanged, "row", "rows", "unchanged"),
            )
            if n
        ]
        return ", ".join(parts) if parts else "nothing to import"


# -- import --------------------------------------------------------------------------------------


def import_registry(session: Session, paths: Sequence[Path], rulebook: Rulebook) -> ImportSummary:
    """Import units and people from CSV/.xlsx files; all of it, or nothing if any row is bad.
    A unit's sequence is one the rulebook defines (by key, name or alias), or the office.

    The caller owns the transaction; this only adds to the session and flushes.
    """
    if isinstance(paths, str | Path):
        paths = [Path(paths)]  # one file given bare would otherwise be read letter by letter
    problems: list[str] = []
    if not paths:
        problems.append("no registry files given")
    tables = read_files(paths, problems)
    checked = check_tables(session, tables, problems, Sequences.of(rulebook))
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        raise RegistryError(
            # Every bad row on the one line the CLI prints, so a person fixes them all at once.
            f"registry not imported, nothing was changed: {count}: {' | '.join(problems)}",
            problems,
        )
    return _apply(session, checked.db_units, checked.units, checked.people)


def _apply(
    session: Session, db_units: dict[str, Unit], units: list[UnitRow], people: list[PersonRow]
) -> ImportSummary:
    counts = dict.fromkeys(
        ("units_added", "units_updated", "people_added", "people_updated", "unchanged"), 0
    )
    by_code = dict(db_units)
    parent_code_of = {unit.id: unit.code for unit in db_units.values()}
    for row in units:
        unit = by_code.get(row.code)
        if unit is None:
            unit = Unit(code=row.code, name=row.name, mark=row.mark, sequence=row.sequence)
            unit.active_from, unit.active_to = row.active or (None, None)
            session.add(unit)
            by_code[row.code] = unit
    for row in units:
        unit = by_code[row.code]
        parent = by_code[row.parent_code] if row.parent_code else None
        if row.code not in db_units:
            unit.parent = parent
            counts["units_added"] += 1
            continue
        old_parent = parent_code_of.get(unit.parent_id) if unit.parent_id else None
        new = (row.name, row.mark, row.sequence, row.parent_code or None)
        dates = (unit.active_from, unit.active_to) if row.active is None else row.active
        if (unit.name, unit.mark, unit.sequence, old_parent) == new and dates == (
            unit.active_from,
            unit.active_to,
        ):
            counts["unchanged"] += 1
            continue
        unit.name, unit.mark, unit.sequence = row.name, row.mark, row.sequence
        unit.active_from, unit.active_to = dates
        unit.parent = parent
        counts["units_updated"] += 1

    existing: dict[tuple[str, str, str], Person] = {}
    for person, code in session.execute(select(Person, Unit.code).join(Person.unit)):
        existing.setdefault((code, person.role, person.email.strip().lower()), person)
    for p in people:
        found = existing.get((p.unit_code, p.role, p.email))
        if found is None:
            session.add(
                Person(
                    unit=by_code[p.unit_code],
                    role=p.role,
                    name=p.name,
                    email=p.email,
                    phone=p.phone or "",
                    title=p.title or "",
                    active_from=(p.active or (None, None))[0],
                    active_to=(p.active or (None, None))[1],
                )
            )
            counts["people_added"] += 1
            continue
        phone = found.phone if p.phone is None else p.phone
        title = found.title if p.title is None else p.title
        dates = (found.active_from, found.active_to) if p.active is None else p.active
        old = (found.name, found.email, found.phone, found.title)
        if (*old, found.active_from, found.active_to) == (p.name, p.email, phone, title, *dates):
            counts["unchanged"] += 1
            continue
        found.name, found.email, found.phone, found.title = p.name, p.email, phone, title
        found.active_from, found.active_to = dates
        counts["people_updated"] += 1
    session.flush()
    return ImportSummary(**counts)


# -- export --------------------------------------------------------------------------------------


def _sequence_order(sequence: str) -> tuple[int, str]:
    return (SEQUENCES.index(sequence), "") if sequence in SEQUENCES else (len(SEQUENCES), sequence)


def _role_order(role: str) -> int:
    return ROLES.index(role) if role in ROLES else len(ROLES)


def _export_rows(session: Session, table: str) -> list[list[str]]:
    units = sorted(
        session.scalars(select(Unit)), key=lambda u: (_sequence_order(u.sequence), u.code)
    )
    if table == UNITS:
        code_of = {unit.id: unit.code for unit in units}
        return [
            [
                u.code,
                u.name,
                u.mark,
                u.sequence,
                code_of.get(u.parent_id, "") if u.parent_id else "",
                _day(u.active_from),
                _day(u.active_to),
            ]
            for u in units
        ]
    unit_order = {unit.id: index for index, unit in enumerate(units)}
    code_of = {unit.id: unit.code for unit in units}
    people = sorted(
        session.scalars(select(Person)),
        key=lambda p: (unit_order.get(p.unit_id, 0), _role_order(p.role), p.email),
    )
    return [
        [
            code_of[p.unit_id],
            p.role,
            p.name,
            p.email,
            p.phone,
            p.title,
            _day(p.active_from),
            _day(p.active_to),
        ]
        for p in people
    ]


def _day(day: date | None) -> str:
    return "" if day is None else day.isoformat()


def export_registry(session: Session, path: Path, table: str | None = None) -> None:
    """Write the registry to `.xlsx` (sheets units and people) or one table to `.csv`."""
    path = Path(path)
    try:
        _export(session, path, table)
    except OSError as exc:
        _export_error(f"{path}: cannot write the file ({exc.strerror or exc})")


def _export(session: Session, path: Path, table: str | None) -> None:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        if table is None or table not in TABLES:
            _export_error(f"{path.name}: a .csv export holds one table; say units or people")
        csv_table = table
        write_atomically(
            path, lambda out: write_csv(out, csv_table, _export_rows(session, csv_table))
        )
    elif suffix == ".xlsx":
        if table is not None:
            _export_error(f"{path.name}: an .xlsx export always holds both tables")
        sheets = {name: _export_rows(session, name) for name in TABLES}
        write_atomically(path, lambda out: write_xlsx(out, sheets))
    else:
        _export_error(
            f"{path.name}: unsupported file type {suffix or '(none)'!r}; use .csv or .xlsx"
        )


def _export_error(problem: str) -> NoReturn:
    raise RegistryError(f"cannot export the registry: {problem}", [problem])
