"""The registry of units and people: import from CSV or .xlsx files, export to them (SPEC §5.1).

An import validates every row of every file first and changes nothing if any row is bad; a
`RegistryError` then lists each problem as "FILE line N: what is wrong". Otherwise units are
upserted by code and people by (unit code, role, email), so re-importing a file changes nothing.
"""

from __future__ import annotations

import csv
import io
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.models import ROLES, SEQUENCES, Person, Unit
from parser.errors import UserError

UNITS = "units"
PEOPLE = "people"
TABLES = (UNITS, PEOPLE)

UNIT_COLUMNS = ("code", "name", "mark", "sequence", "parent_code")
PEOPLE_COLUMNS = ("unit_code", "role", "name", "email", "phone", "title")
COLUMNS = {UNITS: UNIT_COLUMNS, PEOPLE: PEOPLE_COLUMNS}
REQUIRED_COLUMNS = {
    UNITS: ("code", "name", "mark", "sequence"),
    PEOPLE: ("unit_code", "role", "name", "email"),
}

# Chinese headers as the office's own sheets spell them; 单位代码 means `code` or `unit_code`.
CHINESE_HEADERS = {
    UNITS: dict(
        zip(("单位代码", "单位名称", "标识", "序列", "上级单位代码"), UNIT_COLUMNS, strict=True)
    ),
    PEOPLE: dict(
        zip(("单位代码", "角色", "姓名", "邮箱", "电话", "职务"), PEOPLE_COLUMNS, strict=True)
    ),
}

SHEET_NAMES = {"units": UNITS, "单位": UNITS, "people": PEOPLE, "人员": PEOPLE}

SEQUENCE_NAMES = {
    **{name: name for name in SEQUENCES},
    "区县级市": "district",
    "区、县级市": "district",
    "区县": "district",
    "部门a": "dept_a",
    "部门b": "dept_b",
    "直报点": "direct",
    "本办": "office",
}
ROLE_NAMES = {
    **{name: name for name in ROLES},
    "信息员": "officer",
    "主管领导": "supervising_leader",
    "主要领导": "principal_leader",
    "编辑": "editor",
}
# A 直报点's parent is the department (or district) that shares its points.
PARENT_SEQUENCES = ("district", "dept_a", "dept_b")

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


@dataclass(frozen=True)
class _Row:
    """One data row of a table, with the place a person would look for it."""

    source: str
    line: int
    values: dict[str, str]
    columns: frozenset[str]

    @property
    def where(self) -> str:
        return f"{self.source} line {self.line}"

    def get(self, column: str) -> str:
        return self.values.get(column, "")


@dataclass(frozen=True)
class _Table:
    kind: str
    rows: list[_Row]


@dataclass(frozen=True)
class _UnitRow:
    where: str
    code: str
    name: str
    mark: str
    sequence: str
    parent_code: str


@dataclass(frozen=True)
class _PersonRow:
    where: str
    unit_code: str
    role: str
    name: str
    email: str
    phone: str | None  # None: the file has no phone column, so the ledger's value stays
    title: str | None


# -- reading files -------------------------------------------------------------------------------


def _cell_text(value: Any) -> str:
    """A cell as text; Excel stores phone numbers and numeric codes as numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _key(text: str) -> str:
    """The form in which codes, headers and choices are compared: NFKC, no spaces, lower case."""
    return "".join(unicodedata.normalize("NFKC", text).split()).lower()


def _read_table(
    source: str, lines: Iterable[tuple[int, list[str]]], kind: str | None, problems: list[str]
) -> _Table | None:
    """Recognise a table by its header row (the first non-blank line) and collect its rows."""
    rows_iter = iter(lines)
    for line, cells in rows_iter:
        if any(cell.strip() for cell in cells):
            header_line, header = line, cells
            break
    else:
        problems.append(f"{source}: no header row; expected the units or people headers")
        return None

    keys = [_key(cell) for cell in header]
    found = {name for name in keys if name}
    if kind is None:
        scores = {
            table: len(found & (set(COLUMNS[table]) | set(CHINESE_HEADERS[table])))
            for table in TABLES
        }
        # 单位代码 alone belongs to both tables; the other headers decide.
        kind = max(TABLES, key=lambda table: scores[table])
        if scores[UNITS] == scores[PEOPLE]:
            problems.append(
                f"{source} line {header_line}: header row not recognised; expected "
                f"{','.join(UNIT_COLUMNS)} or {','.join(PEOPLE_COLUMNS)} (or the Chinese headers)"
            )
            return None

    fields: list[str | None] = []
    bad = False
    for raw, name in zip(header, keys, strict=True):
        if not name:
            fields.append(None)
            continue
        field = CHINESE_HEADERS[kind].get(name, name if name in COLUMNS[kind] else None)
        if field is None:
            problems.append(
                f"{source} line {header_line}: unknown header {raw.strip()!r} in the {kind} "
                f"table; expected {', '.join(COLUMNS[kind])}"
            )
            bad = True
        elif field in fields:
            problems.append(f"{source} line {header_line}: header {raw.strip()!r} appears twice")
            bad = True
        fields.append(field)
    for required in REQUIRED_COLUMNS[kind]:
        if required not in fields:
            problems.append(f"{source} line {header_line}: missing column {required!r}")
            bad = True
    if bad:
        return None

    columns = frozenset(field for field in fields if field)
    rows: list[_Row] = []
    for line, cells in rows_iter:
        if not any(cell.strip() for cell in cells):
            continue  # blank lines are spacing, not rows
        values: dict[str, str] = {}
        for index, cell in enumerate(cells):
            field = fields[index] if index < len(fields) else None
            if field is not None:
                values[field] = cell.strip()
            elif cell.strip():
                problems.append(
                    f"{source} line {line}: value {cell.strip()!r} in column {index + 1}, "
                    "which has no header"
                )
        rows.append(_Row(source, line, values, columns))
    return _Table(kind, rows)


def _decode(data: bytes) -> str | None:
    # Excel on Chinese Windows saves "CSV" as GB18030 (GBK); everyone else writes UTF-8.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def _csv_lines(text: str) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the line each starts on (a quoted field may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    for record in reader:
        yield start, [cell.strip() for cell in record]
        start = reader.line_num + 1


def _read_csv(path: Path, problems: list[str]) -> list[_Table]:
    source = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        problems.append(f"{source}: cannot read the file ({exc.strerror or exc})")
        return []
    text = _decode(data)
    if text is None:
        problems.append(f"{source}: not UTF-8 or GB18030 text; save it as CSV UTF-8 from Excel")
        return []
    try:
        lines = list(_csv_lines(text))
    except csv.Error as exc:
        problems.append(f"{source}: not a readable CSV file ({exc})")
        return []
    table = _read_table(source, lines, None, problems)
    return [table] if table else []


def _read_xlsx(path: Path, problems: list[str]) -> list[_Table]:
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds of error for a damaged file
        problems.append(f"{path.name}: cannot open as an .xlsx workbook ({exc})")
        return []
    tables: list[_Table] = []
    try:
        names = list(workbook.sheetnames)
        wanted = [(name, SHEET_NAMES[_key(name)]) for name in names if _key(name) in SHEET_NAMES]
        if not wanted:
            problems.append(
                f"{path.name}: no sheet named units/people (or 单位/人员); "
                f"sheets are {', '.join(names)}"
            )
        for name, kind in wanted:
            sheet = workbook[name]
            lines = (
                (number, [_cell_text(value) for value in row])
                for number, row in enumerate(sheet.iter_rows(min_row=1, values_only=True), 1)
            )
            table = _read_table(f"{path.name} sheet {name}", lines, kind, problems)
            if table:
                tables.append(table)
    finally:
        workbook.close()
    return tables


def _read_files(paths: Sequence[Path], problems: list[str]) -> list[_Table]:
    tables: list[_Table] = []
    for path in map(Path, paths):
        suffix = path.suffix.lower()
        if suffix == ".csv":
            tables.extend(_read_csv(path, problems))
        elif suffix == ".xlsx":
            tables.extend(_read_xlsx(path, problems))
        else:
            problems.append(
                f"{path.name}: unsupported file type {suffix or '(none)'!r}; "
                "use .csv or .xlsx (save an .xls from Excel as .xlsx)"
            )
    return tables


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


def _too_long(row: _Row, kind: str) -> list[str]:
    return [
        f"{row.where}: {column} is longer than {limit} characters"
        for column, limit in MAX_LENGTHS[kind].items()
        if len(row.get(column)) > limit
    ]


def _missing(row: _Row, kind: str) -> list[str]:
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


def _code(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def _check_units(rows: list[_Row], check: _Check, problems: list[str]) -> list[_UnitRow]:
    units: list[_UnitRow] = []
    first_line: dict[str, str] = {}
    marks: dict[str, str] = {}
    for code, unit in check.db_units.items():
        if code not in check.imported_sequences:
            marks[_key(unit.mark)] = f"unit {code} in the registry"
    for row in rows:
        found = _missing(row, UNITS) + _too_long(row, UNITS)
        code = _code(row.get("code"))
        if code and code in first_line:
            found.append(f"{row.where}: unit code {code!r} is already on {first_line[code]}")
        elif code:
            first_line[code] = row.where

        raw_sequence = row.get("sequence")
        sequence = SEQUENCE_NAMES.get(_key(raw_sequence))
        if raw_sequence and sequence is None:
            found.append(
                f"{row.where}: unknown sequence {raw_sequence!r}; use district (区县级市), "
                "dept_a (部门A), dept_b (部门B), direct (直报点) or office (本办)"
            )

        mark = normalise_mark(row.get("mark")) if row.get("mark") else None
        if row.get("mark") and mark is None:
            found.append(f"{row.where}: mark {row.get('mark')!r} is not a name such as 【天河区】")
        elif mark is not None and len(mark) > MAX_MARK_LENGTH:
            found.append(f"{row.where}: mark is longer than {MAX_MARK_LENGTH} characters")
        elif mark is not None and _key(mark) in marks:
            found.append(f"{row.where}: mark {mark} is already used by {marks[_key(mark)]}")
        elif mark is not None:
            marks[_key(mark)] = f"unit {code} on {row.where}"

        parent_code = _code(row.get("parent_code"))
        if sequence == "direct" and not parent_code:
            found.append(f"{row.where}: a direct (直报点) unit needs a parent_code")
        elif sequence is not None and sequence != "direct" and parent_code:
            found.append(f"{row.where}: only direct (直报点) units have a parent_code")
        elif parent_code and parent_code == code:
            found.append(f"{row.where}: a unit cannot be its own parent")
        elif parent_code and not check.known(parent_code):
            found.append(f"{row.where}: parent_code: {check.unknown_code(parent_code)}")
        elif parent_code:
            parent_sequence = check.sequence_of(parent_code)
            if parent_sequence is not None and parent_sequence not in PARENT_SEQUENCES:
                found.append(
                    f"{row.where}: parent {parent_code} is a {parent_sequence} unit; a direct "
                    "unit's parent must be a district or department unit"
                )

        problems.extend(found)
        if not found and sequence is not None and mark is not None:
            units.append(_UnitRow(row.where, code, row.get("name"), mark, sequence, parent_code))
    return units


def _check_people(rows: list[_Row], check: _Check, problems: list[str]) -> list[_PersonRow]:
    people: list[_PersonRow] = []
    first_line: dict[tuple[str, str, str], str] = {}
    for row in rows:
        found = _missing(row, PEOPLE) + _too_long(row, PEOPLE)
        unit_code = _code(row.get("unit_code"))
        if unit_code and not check.known(unit_code):
            found.append(f"{row.where}: {check.unknown_code(unit_code)}")

        raw_role = row.get("role")
        role = ROLE_NAMES.get(_key(raw_role))
        if raw_role and role is None:
            found.append(
                f"{row.where}: unknown role {raw_role!r}; use officer (信息员), supervising_leader "
                "(主管领导), principal_leader (主要领导) or editor (编辑)"
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
                _PersonRow(
                    row.where,
                    unit_code,
                    role,
                    row.get("name"),
                    email,
                    row.get("phone") if "phone" in row.columns else None,
                    row.get("title") if "title" in row.columns else None,
                )
            )
    return people


# -- import --------------------------------------------------------------------------------------


def import_registry(session: Session, paths: Sequence[Path]) -> ImportSummary:
    """Import units and people from CSV/.xlsx files; all of it, or nothing if any row is bad.

    The caller owns the transaction; this only adds to the session and flushes.
    """
    if isinstance(paths, str | Path):
        paths = [Path(paths)]  # one file given bare would otherwise be read letter by letter
    problems: list[str] = []
    if not paths:
        problems.append("no registry files given")
    tables = _read_files(paths, problems)
    unit_rows = [row for table in tables if table.kind == UNITS for row in table.rows]
    people_rows = [row for table in tables if table.kind == PEOPLE for row in table.rows]

    db_units = {unit.code: unit for unit in session.scalars(select(Unit))}
    imported: dict[str, str | None] = {}
    for row in unit_rows:
        code = _code(row.get("code"))
        if code and code not in imported:
            imported[code] = SEQUENCE_NAMES.get(_key(row.get("sequence")))
    check = _Check(db_units, imported)

    units = _check_units(unit_rows, check, problems)
    people = _check_people(people_rows, check, problems)
    problems.extend(_check_office_changes(session, units))
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        raise RegistryError(
            # Every bad row on the one line the CLI prints, so a person fixes them all at once.
            f"registry not imported, nothing was changed: {count}: {' | '.join(problems)}",
            problems,
        )
    return _apply(session, db_units, units, people)


def _check_office_changes(session: Session, units: list[_UnitRow]) -> list[str]:
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


def _apply(
    session: Session, db_units: dict[str, Unit], units: list[_UnitRow], people: list[_PersonRow]
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
        if (unit.name, unit.mark, unit.sequence, old_parent) == new:
            counts["unchanged"] += 1
            continue
        unit.name, unit.mark, unit.sequence = row.name, row.mark, row.sequence
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
                )
            )
            counts["people_added"] += 1
            continue
        phone = found.phone if p.phone is None else p.phone
        title = found.title if p.title is None else p.title
        if (found.name, found.email, found.phone, found.title) == (p.name, p.email, phone, title):
            counts["unchanged"] += 1
            continue
        found.name, found.email, found.phone, found.title = p.name, p.email, phone, title
        counts["people_updated"] += 1
    session.flush()
    return ImportSummary(**counts)


# -- export --------------------------------------------------------------------------------------


def _sequence_order(sequence: str) -> int:
    return SEQUENCES.index(sequence) if sequence in SEQUENCES else len(SEQUENCES)


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
            ]
            for u in units
        ]
    unit_order = {unit.id: index for index, unit in enumerate(units)}
    code_of = {unit.id: unit.code for unit in units}
    people = sorted(
        session.scalars(select(Person)),
        key=lambda p: (unit_order.get(p.unit_id, 0), _role_order(p.role), p.email),
    )
    return [[code_of[p.unit_id], p.role, p.name, p.email, p.phone, p.title] for p in people]


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
        _write_atomically(
            path, lambda out: _write_csv(out, csv_table, _export_rows(session, csv_table))
        )
    elif suffix == ".xlsx":
        if table is not None:
            _export_error(f"{path.name}: an .xlsx export always holds both tables")
        sheets = {name: _export_rows(session, name) for name in TABLES}
        _write_atomically(path, lambda out: _write_xlsx(out, sheets))
    else:
        _export_error(
            f"{path.name}: unsupported file type {suffix or '(none)'!r}; use .csv or .xlsx"
        )


def _export_error(problem: str) -> NoReturn:
    raise RegistryError(f"cannot export the registry: {problem}", [problem])


def _write_csv(out: Path, table: str, rows: list[list[str]]) -> None:
    # The BOM makes Excel read the file as UTF-8 instead of the local code page.
    with out.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS[table])
        writer.writerows(rows)


def _write_xlsx(out: Path, sheets: dict[str, list[list[str]]]) -> None:
    workbook = Workbook()
    workbook.remove(workbook.active)
    bold = Font(bold=True)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        sheet.append(list(COLUMNS[name]))
        for cell in sheet[1]:
            cell.font = bold
        for row in rows:
            sheet.append(row)
        sheet.freeze_panes = "A2"
    workbook.save(out)


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write beside the target and rename, so a failed export never leaves half a file."""
    temp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
