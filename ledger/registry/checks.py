"""Checking registry rows before anything is imported (SPEC §5.1).

An import validates every row of every file first and changes nothing if any row is bad; a
`RegistryError` then lists each problem as "FILE line N: what is wrong". The checks read the
ledger's units (codes, marks, parents, editors) but never write to it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.models import ROLES, Person, Unit
from ledger.registry.formats import (
    DATE_COLUMNS,
    PEOPLE,
    REQUIRED_COLUMNS,
    UNITS,
    Row,
    Table,
    match_key,
)
from ledger.rulebook import OFFICE, OFFICE_NAMES, Rulebook
from parser.errors import UserError


@dataclass(frozen=True)
class Sequences:
    """The sequences a registry may name: the rulebook's (by key, name or alias) and the
    office's own; which of them report to a parent unit (直报点)."""

    names: dict[str, str]  # match_key(name) → key
    titles: dict[str, str]  # key → name
    with_parent: frozenset[str]
    listed: str  # for an error: "district (区、县级市), …"

    @classmethod
    def of(cls, rulebook: Rulebook) -> Sequences:
        names = {match_key(n): OFFICE for n in OFFICE_NAMES}
        for rule in rulebook.sequences:
            for n in (rule.key, rule.name, *rule.aliases):
                names.setdefault(match_key(n), rule.key)
        listed = ", ".join(f"{r.key} ({r.name})" for r in rulebook.sequences)
        return cls(
            names,
            {r.key: r.name for r in rulebook.sequences},
            frozenset(r.key for r in rulebook.sequences if r.reports_to_parent),
            f"{listed} or office (本办)",
        )

    def key(self, raw: str) -> str | None:
        return self.names.get(match_key(raw))


ROLE_NAMES = {
    **{name: name for name in ROLES},
    "信息员": "officer",
    "主管领导": "supervising_leader",
    "主要领导": "principal_leader",
    "编辑": "editor",
    "信息科长": "section_chief",
    "科长": "section_chief",
    "分管副秘书长": "deputy_secretary_general",
    "副秘书长": "deputy_secretary_general",
    "办公室主任": "director",
    "秘书长": "secretary_general",
    "分管副市长": "vice_mayor",
    "副市长": "vice_mayor",
    "市长": "mayor",
}

MARK_BRACKETS = (("【", "】"), ("[", "]"), ("［", "］"), ("(", ")"), ("（", "）"))
OPENING_BRACKETS = "".join(pair[0] for pair in MARK_BRACKETS)
CLOSING_BRACKETS = "".join(pair[1] for pair in MARK_BRACKETS)

EMAIL_RE = re.compile(
    r"[^@\s<>()\[\],;:\"]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+"
)

# The column sizes of ledger.models, checked up front so PostgreSQL never fails mid-import.
MAX_MARK_LENGTH = 100
MAX_LENGTHS = {
    UNITS: {"code": 64, "name": 200, "parent_code": 64},
    PEOPLE: {"unit_code": 64, "name": 100, "email": 254, "phone": 64, "title": 100},
}


class RegistryError(UserError):
    """Registry files that cannot be used; `problems` holds one line per bad row or file."""

    def __init__(self, summary: str, problems: Sequence[str]) -> None:
        super().__init__(summary)
        self.summary = summary
        self.problems: list[str] = list(problems)

    def __str__(self) -> str:
        return self.summary


# (active_from, active_to), or None when the file has neither column: the ledger's dates stay.
Dates = tuple[date | None, date | None] | None


@dataclass(frozen=True)
class UnitRow:
    where: str
    code: str
    name: str
    mark: str
    sequence: str
    parent_code: str
    active: Dates = None


@dataclass(frozen=True)
class PersonRow:
    where: str
    unit_code: str
    role: str
    name: str
    email: str
    phone: str | None  # None: the file has no phone column, so the ledger's value stays
    title: str | None
    active: Dates = None


# -- checking values ----------------------------------------------------------------------------


def normalise_mark(text: str) -> str | None:
    """`天河区`, `[天河区]` or `【天河区】` as stored: `【天河区】`; None if it is malformed."""
    inner = text.strip()
    for opening, closing in MARK_BRACKETS:
        if inner.startswith(opening) and inner.endswith(closing):
            inner = inner[len(opening) : -len(closing)].strip()
            break
    if not inner or any(ch in OPENING_BRACKETS + CLOSING_BRACKETS for ch in inner):
        return None
    return f"【{inner}】"


def normalise_email(text: str) -> str | None:
    email = unicodedata.normalize("NFKC", text).strip().lower()
    return email if EMAIL_RE.fullmatch(email) else None


def _too_long(row: Row, kind: str) -> list[str]:
    return [
        f"{row.where}: {column} is longer than {limit} characters"
        for column, limit in MAX_LENGTHS[kind].items()
        if len(row.get(column)) > limit
    ]


def _missing(row: Row, kind: str) -> list[str]:
    return [
        f"{row.where}: {column} is empty"
        for column in REQUIRED_COLUMNS[kind]
        if not row.get(column)
    ]


@dataclass
class _Check:
    """What validation knows: the ledger's units and the units the import defines."""

    db_units: dict[str, Unit]
    imported_sequences: dict[str, str | None]  # None: the row's sequence is itself bad
    sequences: Sequences

    def sequence_of(self, code: str) -> str | None:
        if code in self.imported_sequences:
            return self.imported_sequences[code]
        unit = self.db_units.get(code)
        return unit.sequence if unit else None

    def known(self, code: str) -> bool:
        return code in self.imported_sequences or code in self.db_units

    def unknown_code(self, code: str) -> str:
        hint = [c for c in (*self.imported_sequences, *self.db_units) if c.lower() == code.lower()]
        return f"unknown unit code {code!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")


DATE_RE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")


def parse_day(text: str) -> date | None:
    """`2027-01-05`, `2027/1/5`, `2027.1.5` or `2027年1月5日` (full-width digits too)."""
    m = DATE_RE.fullmatch(unicodedata.normalize("NFKC", text).strip())
    if m is None:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _dates(row: Row, found: list[str]) -> Dates:
    """The row's dates in office, each problem added to `found`."""
    if not row.columns & set(DATE_COLUMNS):
        return None
    days: list[date | None] = []
    for column in DATE_COLUMNS:
        text = row.get(column)
        day = parse_day(text) if text else None
        if text and day is None:
            found.append(f"{row.where}: {column} {text!r} is not a date such as 2027-01-05")
        days.append(day)
    start, end = days
    if start is not None and end is not None and end < start:
        found.append(f"{row.where}: active_to {end} is before active_from {start}")
    return start, end


def _code(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def _check_units(rows: list[Row], check: _Check, problems: list[str]) -> list[UnitRow]:
    units: list[UnitRow] = []
    first_line: dict[str, str] = {}
    marks: dict[str, str] = {}
    for code, unit in check.db_units.items():
        if code not in check.imported_sequences:
            marks[match_key(unit.mark)] = f"unit {code} in the registry"
    for row in rows:
        found = _missing(row, UNITS) + _too_long(row, UNITS)
        active = _dates(row, found)
        code = _code(row.get("code"))
        if code and code in first_line:
            found.append(f"{row.where}: unit code {code!r} is already on {first_line[code]}")
        elif code:
            first_line[code] = row.where

        raw_sequence = row.get("sequence")
        sequence = check.sequences.key(raw_sequence)
        if raw_sequence and sequence is None:
            found.append(
                f"{row.where}: unknown sequence {raw_sequence!r}; use {check.sequences.listed}"
            )

        mark = normalise_mark(row.get("mark")) if row.get("mark") else None
        if row.get("mark") and mark is None:
            found.append(f"{row.where}: mark {row.get('mark')!r} is not a name such as 【天河区】")
        elif mark is not None and len(mark) > MAX_MARK_LENGTH:
            found.append(f"{row.where}: mark is longer than {MAX_MARK_LENGTH} characters")
        elif mark is not None and match_key(mark) in marks:
            found.append(f"{row.where}: mark {mark} is already used by {marks[match_key(mark)]}")
        elif mark is not None:
            marks[match_key(mark)] = f"unit {code} on {row.where}"

        parent_code = _code(row.get("parent_code"))
        with_parent = check.sequences.with_parent
        if sequence in with_parent and not parent_code:
            title = check.sequences.titles[sequence]
            found.append(f"{row.where}: a {sequence} ({title}) unit needs a parent_code")
        elif sequence is not None and sequence not in with_parent and parent_code:
            reporting = ", ".join(f"{k} ({check.sequences.titles[k]})" for k in sorted(with_parent))
            found.append(
                f"{row.where}: only {reporting or 'direct-report'} units have a parent_code"
            )
        elif parent_code and parent_code == code:
            found.append(f"{row.where}: a unit cannot be its own parent")
        elif parent_code and not check.known(parent_code):
            found.append(f"{row.where}: parent_code: {check.unknown_code(parent_code)}")
        elif parent_code:
            parent_sequence = check.sequence_of(parent_code)
            if parent_sequence is not None and (
                parent_sequence in with_parent or parent_sequence == OFFICE
            ):
                found.append(
                    f"{row.where}: parent {parent_code} is a {parent_sequence} unit; a direct "
                    "unit's parent must be a ranked unit that has no parent itself"
                )

        problems.extend(found)
        if not found and sequence is not None and mark is not None:
            units.append(
                UnitRow(row.where, code, row.get("name"), mark, sequence, parent_code, active)
            )
    return units


def _check_people(rows: list[Row], check: _Check, problems: list[str]) -> list[PersonRow]:
    people: list[PersonRow] = []
    first_line: dict[tuple[str, str, str], str] = {}
    for row in rows:
        found = _missing(row, PEOPLE) + _too_long(row, PEOPLE)
        active = _dates(row, found)
        unit_code = _code(row.get("unit_code"))
        if unit_code and not check.known(unit_code):
            found.append(f"{row.where}: {check.unknown_code(unit_code)}")

        raw_role = row.get("role")
        role = ROLE_NAMES.get(match_key(raw_role))
        if raw_role and role is None:
            found.append(
                f"{row.where}: unknown role {raw_role!r}; use officer (信息员), supervising_leader "
                "(主管领导), principal_leader (主要领导), editor (编辑), or an approver: "
                "section_chief (信息科长), deputy_secretary_general (分管副秘书长), director "
                "(办公室主任), secretary_general (秘书长), vice_mayor (分管副市长), mayor (市长)"
            )
        elif role == "editor" and unit_code and check.known(unit_code):
            sequence = check.sequence_of(unit_code)
            if sequence is not None and sequence != "office":
                found.append(
                    f"{row.where}: editors belong to the office unit (sequence office), "
                    f"not to {unit_code} ({sequence})"
                )

        email = normalise_email(row.get("email")) if row.get("email") else None
        if row.get("email") and email is None:
            found.append(f"{row.where}: {row.get('email')!r} is not an email address")

        if unit_code and role and email:
            key = (unit_code, role, email)
            if key in first_line:
                found.append(
                    f"{row.where}: {email} is already listed as {role} of {unit_code} "
                    f"on {first_line[key]}"
                )
            else:
                first_line[key] = row.where

        problems.extend(found)
        if not found and role is not None and email is not None:
            people.append(
                PersonRow(
                    row.where,
                    unit_code,
                    role,
                    row.get("name"),
                    email,
                    row.get("phone") if "phone" in row.columns else None,
                    row.get("title") if "title" in row.columns else None,
                    active,
                )
            )
    return people


@dataclass(frozen=True)
class Checked:
    """The rows that passed every check, and the ledger's units they were checked against."""

    db_units: dict[str, Unit]
    units: list[UnitRow]
    people: list[PersonRow]


def check_tables(
    session: Session, tables: Sequence[Table], problems: list[str], sequences: Sequences
) -> Checked:
    """Check every row against the others and against the ledger; each problem goes to `problems`.

    Only rows without a problem come back. This reads the ledger's units but changes nothing.
    """
    unit_rows = [row for table in tables if table.kind == UNITS for row in table.rows]
    people_rows = [row for table in tables if table.kind == PEOPLE for row in table.rows]

    db_units = {unit.code: unit for unit in session.scalars(select(Unit))}
    imported: dict[str, str | None] = {}
    for row in unit_rows:
        code = _code(row.get("code"))
        if code and code not in imported:
            imported[code] = sequences.key(row.get("sequence"))
    check = _Check(db_units, imported, sequences)

    units = _check_units(unit_rows, check, problems)
    people = _check_people(people_rows, check, problems)
    problems.extend(_check_office_changes(session, units))
    return Checked(db_units, units, people)


def _check_office_changes(session: Session, units: list[UnitRow]) -> list[str]:
    """An office unit whose sequence changes must not keep its editors in the ledger."""
    leaving = {row.code: row for row in units if row.sequence != "office"}
    if not leaving:
        return []
    stmt = (
        select(Unit.code)
        .join(Person, Person.unit_id == Unit.id)
        .where(Unit.code.in_(leaving), Unit.sequence == "office", Person.role == "editor")
        .distinct()
    )
    return [
        f"{leaving[code].where}: unit {code} still has editors, so it must stay an office unit"
        for code in session.scalars(stmt)
    ]
