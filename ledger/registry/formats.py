"""Registry files: CSV and .xlsx rows to plain rows and back (SPEC §5.1), pure of the database.

A table is recognised by its header row, in English or as the office's own sheets spell it in
Chinese: a CSV file (UTF-8 with or without a BOM, or GB18030 as Excel on Chinese Windows saves
it) holds one table, an .xlsx workbook one per sheet named units/people (单位/人员). What cannot
be read goes to `problems` as "FILE line N: what is wrong". An export is written beside its
target and renamed into place.
"""

from __future__ import annotations

import csv
import io
import os
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

UNITS = "units"
PEOPLE = "people"
TABLES = (UNITS, PEOPLE)

# In office (a unit: in service) from active_from through active_to, both days included; an
# empty cell leaves the date open, a missing column keeps the ledger's dates.
DATE_COLUMNS = ("active_from", "active_to")
UNIT_COLUMNS = ("code", "name", "mark", "sequence", "parent_code", *DATE_COLUMNS)
PEOPLE_COLUMNS = ("unit_code", "role", "name", "email", "phone", "title", *DATE_COLUMNS)
COLUMNS = {UNITS: UNIT_COLUMNS, PEOPLE: PEOPLE_COLUMNS}
REQUIRED_COLUMNS = {
    UNITS: ("code", "name", "mark", "sequence"),
    PEOPLE: ("unit_code", "role", "name", "email"),
}

# Chinese headers as the office's own sheets spell them; 单位代码 means `code` or `unit_code`.
CHINESE_HEADERS = {
    UNITS: dict(
        zip(
            ("单位代码", "单位名称", "标识", "序列", "上级单位代码", "起始日期", "截止日期"),
            UNIT_COLUMNS,
            strict=True,
        )
    ),
    PEOPLE: dict(
        zip(
            ("单位代码", "角色", "姓名", "邮箱", "电话", "职务", "起始日期", "截止日期"),
            PEOPLE_COLUMNS,
            strict=True,
        )
    ),
}

SHEET_NAMES = {"units": UNITS, "单位": UNITS, "people": PEOPLE, "人员": PEOPLE}


@dataclass(frozen=True)
class Row:
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
class Table:
    kind: str
    rows: list[Row]


# -- reading files -------------------------------------------------------------------------------


def _cell_text(value: Any) -> str:
    """A cell as text; Excel stores phone numbers and numeric codes as numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, datetime):  # a date cell
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def match_key(text: str) -> str:
    """The form in which codes, headers and choices are compared: NFKC, no spaces, lower case."""
    return "".join(unicodedata.normalize("NFKC", text).split()).lower()


def _read_table(
    source: str, lines: Iterable[tuple[int, list[str]]], kind: str | None, problems: list[str]
) -> Table | None:
    """Recognise a table by its header row (the first non-blank line) and collect its rows."""
    rows_iter = iter(lines)
    for line, cells in rows_iter:
        if any(cell.strip() for cell in cells):
            header_line, header = line, cells
            break
    else:
        problems.append(f"{source}: no header row; expected the units or people headers")
        return None

    keys = [match_key(cell) for cell in header]
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
    rows: list[Row] = []
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
        rows.append(Row(source, line, values, columns))
    return Table(kind, rows)


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


def _read_csv(path: Path, problems: list[str]) -> list[Table]:
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


def _read_xlsx(path: Path, problems: list[str]) -> list[Table]:
    from openpyxl import load_workbook  # here: every command would pay 0.09 s to import it

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds of error for a damaged file
        problems.append(f"{path.name}: cannot open as an .xlsx workbook ({exc})")
        return []
    tables: list[Table] = []
    try:
        names = list(workbook.sheetnames)
        wanted = [
            (name, SHEET_NAMES[match_key(name)]) for name in names if match_key(name) in SHEET_NAMES
        ]
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


def read_files(paths: Sequence[Path], problems: list[str]) -> list[Table]:
    tables: list[Table] = []
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


# -- writing files ---------------------------------------------------------------------------------


def write_csv(out: Path, table: str, rows: list[list[str]]) -> None:
    # The BOM makes Excel read the file as UTF-8 instead of the local code page.
    with out.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS[table])
        writer.writerows(rows)


def write_xlsx(out: Path, sheets: dict[str, list[list[str]]]) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

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


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write beside the target and rename, so a failed export never leaves half a file."""
    temp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
