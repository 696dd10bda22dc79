"""A synthetic decade at province scale, bulk-loaded into a Mailroom ledger (bench 4).

`python -m bench.decade --url URL [--scale 1.0]` migrates the database and loads, by default,
1,000 units with their people, 2,000,000 filed items spread over the 40 quarters that end with
the last complete one, 400,000 adoption events (`score_events`, publications and grades
from the Guangzhou rulebook), and the band keys of the items of the decade's last
`[similar] window_days` (`similar_bands`, 64 an item: what filing keeps, older rows pruned).
SQLite gets `executemany` in large transactions, PostgreSQL gets `COPY`, so the full decade
loads in minutes. Items are not uniform: some units report far more than others, as in life.

Columns are filled from the models, not from a fixed list: a column added later with a default
(or nullable) is filled with it; one that cannot be filled is named in the error.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import random
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Engine, Table
from sqlalchemy.sql.schema import ColumnDefault

from ledger.calendar import Quarter, parse_period, quarter_of
from ledger.db import make_engine
from ledger.models import Base
from ledger.rulebook import Calendar, load_rulebook
from ledger.search import FTS_TABLE
from mailroom.app import migrate
from mailroom.config import SimilarConfig
from parser.similar import BANDS

UNITS = 1_000
ITEMS = 2_000_000
ADOPTIONS = 400_000
QUARTERS = 40
CHUNK = 50_000
ZONE_NAME = "Asia/Shanghai"
EDITORS = 10


class Unfillable(Exception):
    """A required column the generator has no value for (the schema grew: teach it here)."""


@dataclass
class DecadeSummary:
    url: str
    units: int = 0
    people: int = 0
    items: int = 0
    adoptions: int = 0
    adoptions_skipped: str | None = None
    similar_items: int = 0  # items of the last window, with band keys
    similar_keys: int = 0
    first_quarter: str = ""
    last_quarter: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "people": self.people,
            "items": self.items,
            "adoptions": self.adoptions,
            "adoptions_skipped": self.adoptions_skipped,
            "similar_items": self.similar_items,
            "similar_keys": self.similar_keys,
            "quarters": f"{self.first_quarter}–{self.last_quarter}",
            "seconds": self.seconds,
        }


# --- filling rows from the models ---------------------------------------------------------


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _constant_for(table: Table, name: str) -> tuple[bool, Any]:
    """(include, value) for a column the generator does not set itself."""
    column = table.columns[name]
    if column.server_default is not None or (column.primary_key and column.autoincrement):
        return False, None
    default = column.default
    if isinstance(default, ColumnDefault):
        if default.is_scalar:
            return True, default.arg
        if default.is_callable:
            return True, default.arg(None)
    if column.nullable:
        return True, None
    raise Unfillable(f"column {table.name}.{name} is required and has no default")


@dataclass
class TablePlan:
    """Which columns a bulk insert writes: the generator's own, then constants for the rest."""

    table: Table
    given: list[str]
    constants: dict[str, Any]

    @classmethod
    def of(cls, table: Table, given: list[str]) -> TablePlan:
        unknown = set(given) - set(table.columns.keys())
        if unknown:
            raise Unfillable(f"table {table.name} has no column {sorted(unknown)[0]}")
        constants: dict[str, Any] = {}
        for name in table.columns.keys():  # noqa: SIM118 - a ColumnCollection, not a dict
            if name in given:
                continue
            include, value = _constant_for(table, name)
            if include:
                constants[name] = value
        return cls(table, given, constants)

    @property
    def columns(self) -> list[str]:
        return [*self.given, *self.constants]

    def rows(self, values: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        tail = tuple(self.constants.values())
        for v in values:
            yield v + tail


def _sqlite_converter(column_type: Any) -> Callable[[Any], Any] | None:
    """SQLite stores what SQLAlchemy would: text datetimes, ISO dates, JSON text, 0/1."""
    if isinstance(column_type, DateTime) or isinstance(
        getattr(column_type, "impl_instance", None), DateTime
    ):
        return lambda v: None if v is None else v.isoformat(" ", "microseconds")
    if isinstance(column_type, Date):
        return lambda v: None if v is None else v.isoformat()
    if isinstance(column_type, JSON):
        return _json
    if isinstance(column_type, Boolean):
        return lambda v: None if v is None else int(v)
    return None


def _pg_converter(column_type: Any) -> Callable[[Any], Any] | None:
    return _json if isinstance(column_type, JSON) else None


def _json(value: Any) -> str | None:
    if value is None:
        return None
    if not value and isinstance(value, list | dict):
        return "[]" if isinstance(value, list) else "{}"
    return json.dumps(value)


def bulk_insert(engine: Engine, plan: TablePlan, values: Iterable[tuple[Any, ...]]) -> int:
    """Insert rows fast: `executemany` in big transactions (SQLite) or `COPY` (PostgreSQL)."""
    dialect = engine.dialect.name
    columns = plan.columns
    pick = _sqlite_converter if dialect == "sqlite" else _pg_converter
    converters = [(i, pick(plan.table.columns[c].type)) for i, c in enumerate(columns)]
    active = [(i, f) for i, f in converters if f is not None]

    def converted(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        for row in rows:
            if active:
                out = list(row)
                for i, f in active:
                    out[i] = f(out[i])
                yield tuple(out)
            else:
                yield row

    rows = converted(plan.rows(values))
    n = 0
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        names = ", ".join(f'"{c}"' for c in columns)
        if dialect == "postgresql":
            with cur.copy(f'COPY "{plan.table.name}" ({names}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
                    n += 1
        else:
            marks = ", ".join("?" * len(columns))
            sql = f'INSERT INTO "{plan.table.name}" ({names}) VALUES ({marks})'
            while True:
                chunk = [row for _, row in zip(range(CHUNK), rows, strict=False)]
                if not chunk:
                    break
                cur.executemany(sql, chunk)
                raw.commit()
                n += len(chunk)
        raw.commit()
    finally:
        raw.close()
    return n


def _reset_sequence(engine: Engine, table: str) -> None:
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f'(SELECT COALESCE(MAX(id), 1) FROM "{table}"))'
        )


# --- the decade ----------------------------------------------------------------------------


def decade_quarters(now: datetime, calendar: Calendar, zone: Any) -> tuple[Quarter, Quarter]:
    """The first and the last of the `QUARTERS` quarters that end with the last complete one."""
    per_year = 12 // calendar.months_per_quarter
    current = quarter_of(now, zone, calendar)
    last_index = current.year * per_year + current.number - 2
    first_index = last_index - (QUARTERS - 1)

    def at(index: int) -> Quarter:
        return Quarter(index // per_year, index % per_year + 1)

    return at(first_index), at(last_index)


_SEQUENCES = (
    ("district", "QX", 0.12, "区"),
    ("dept_a", "BA", 0.30, "局"),
    ("dept_b", "BB", 0.30, "办"),
)


def _units(n: int) -> list[tuple[Any, ...]]:
    """(id, code, name, mark, sequence, parent_id): the office, then districts, departments
    and direct-report units (直报点) under a district or department."""
    rows: list[tuple[Any, ...]] = [
        (1, "OFFICE", "省政府办公厅信息处", "【省府办公厅】", "office", None)
    ]
    uid = 1
    parents: list[int] = []
    for sequence, prefix, share, suffix in _SEQUENCES:
        for k in range(max(1, round((n - 1) * share))):
            uid += 1
            name = (
                f"第{k + 1:03d}{suffix}" if sequence == "district" else f"省第{k + 1:03d}{suffix}"
            )
            rows.append((uid, f"{prefix}{k + 1:04d}", name, f"【{name}】", sequence, None))
            parents.append(uid)
    k = 0
    while uid < n:
        uid += 1
        k += 1
        name = f"直报点{k:03d}"
        rows.append((uid, f"DR{k:04d}", name, f"【{name}】", "direct", parents[k % len(parents)]))
    return rows


def _people(units: list[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], dict[int, list[int]]]:
    """(id, unit_id, role, name, email, phone, title); two officers per unit, two leaders,
    and the office's editors. Returns the rows and each unit's officer ids."""
    rows: list[tuple[Any, ...]] = []
    officers: dict[int, list[int]] = {}
    pid = 0
    for unit_id, code, _name, _mark, sequence, _parent in units:
        domain = f"{code.lower()}.gd.test"
        roles = (
            [("editor", f"editor{i}", "编辑") for i in range(1, EDITORS + 1)]
            if sequence == "office"
            else [
                ("officer", "xxy1", "信息员"),
                ("officer", "xxy2", "信息员"),
                ("supervising_leader", "fgld", "分管领导"),
                ("principal_leader", "zyld", "主要领导"),
            ]
        )
        for role, local, title in roles:
            pid += 1
            rows.append(
                (
                    pid,
                    unit_id,
                    role,
                    f"{title}{pid}",
                    f"{local}@{domain}",
                    f"1380000{pid:04d}"[-11:],
                    title,
                )
            )
            if role == "officer":
                officers.setdefault(unit_id, []).append(pid)
    return rows, officers


def generate(
    url: str,
    *,
    scale: float = 1.0,
    seed: int = 8,
    now: datetime | None = None,
    say: Callable[[str], None] = lambda _text: None,
) -> DecadeSummary:
    """Migrate `url` (an empty database) and load the decade into it."""
    rng = random.Random(seed)
    summary = DecadeSummary(url=url)
    n_units = max(8, round(UNITS * scale))
    n_items = max(1, round(ITEMS * scale))
    n_adoptions = round(ADOPTIONS * scale)
    rulebook = load_rulebook("guangzhou-2004")
    calendar = rulebook.calendar
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(ZONE_NAME)
    first, last = decade_quarters(now or datetime.now(UTC), calendar, zone)
    summary.first_quarter, summary.last_quarter = first.label, last.label
    # Naive UTC, as the ledger stores times (`UtcDateTime`): bulk inserts bypass the type.
    start = parse_period(first.label, zone, calendar).start.astimezone(UTC).replace(tzinfo=None)
    end = parse_period(last.label, zone, calendar).end.astimezone(UTC).replace(tzinfo=None)

    clock = time.monotonic()
    migrate(url)
    engine = make_engine(url)
    summary.seconds["migrate"] = time.monotonic() - clock
    try:
        clock = time.monotonic()
        units = _units(n_units)
        people, officers = _people(units)
        summary.units = bulk_insert(
            engine,
            TablePlan.of(_table("units"), ["id", "code", "name", "mark", "sequence", "parent_id"]),
            units,
        )
        summary.people = bulk_insert(
            engine,
            TablePlan.of(
                _table("people"), ["id", "unit_id", "role", "name", "email", "phone", "title"]
            ),
            people,
        )
        for name in ("units", "people"):
            _reset_sequence(engine, name)
        summary.seconds["registry"] = time.monotonic() - clock

        clock = time.monotonic()
        reporting = [u for u in units if u[4] != "office"]
        # Some units report much more than others (a long tail, as in real offices).
        weights = [rng.paretovariate(1.5) for _ in reporting]
        span = (end - start).total_seconds()
        stamps = sorted(rng.random() * span for _ in range(n_items))
        chosen = rng.choices(range(len(reporting)), weights=weights, k=n_items)
        people_by_id = {p[0]: p for p in people}
        item_unit = array("i", bytes(4 * n_items))
        item_time = array("d", stamps)
        counters: dict[int, int] = {}
        year_start = calendar.year_start_month

        def item_rows() -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
            for k in range(n_items):
                unit = reporting[chosen[k]]
                unit_id, _code, uname, mark, _seq, _parent = unit
                author = people_by_id[rng.choice(officers[unit_id])]
                received = start + timedelta(seconds=stamps[k])
                local = received + timedelta(hours=8)  # Asia/Shanghai has had no DST since 1991
                year = local.year + (1 if year_start != 1 and local.month >= year_start else 0)
                counters[year] = counters.get(year, 0) + 1
                item_unit[k] = unit_id
                title = f"{uname}推进第{k % 97 + 1}项重点工作取得新成效"
                digest = hashlib.sha256(f"{seed}:{k}".encode()).hexdigest()
                intake: tuple[Any, ...] = (
                    k + 1,
                    "smtp",
                    "daily",
                    author[4],
                    "inf@mailroom.test",
                    f"<decade.{k}@{author[4].partition('@')[2]}>",
                    author[4],
                    f"{mark}{title}",
                    received,
                    received + timedelta(seconds=2),
                    "filed",
                    [],
                    {},
                    digest,
                    2600,
                )
                item: tuple[Any, ...] = (
                    k + 1,
                    f"GZ-{year}-{counters[year]:06d}",
                    k + 1,
                    unit_id,
                    author[0],
                    "daily",
                    received,
                    title,
                    f"{title}。今年以来，{uname}认真落实部署，细化任务分工，工作取得明显成效。",
                    40 + k % 400,
                    None,
                    None,
                    uname,
                    author[3],
                    author[5],
                    local.date(),
                    "filed",
                    [],
                )
                yield intake, item

        intake_plan = TablePlan.of(
            _table("intake"),
            ["id", "channel", "mailbox", "envelope_from", "envelope_to", "message_id",
             "from_address", "subject", "received_at", "processed_at", "state", "reasons",
             "details", "content_hash", "size"],
        )  # fmt: skip
        item_plan = TablePlan.of(
            _table("submissions"),
            ["id", "tracking_no", "intake_id", "unit_id", "author_id", "mailbox", "received_at",
             "title", "body", "body_chars", "attachment_name", "attachment_chars", "signoff_unit",
             "signoff_author", "signoff_phone", "signoff_date", "status", "warnings"],
        )  # fmt: skip
        # Intake rows first (items refer to them), in chunks so memory stays bounded.
        triggers = _suspend_search_triggers(engine)
        done = 0
        generator = item_rows()
        while True:
            batch = [pair for _, pair in zip(range(200_000), generator, strict=False)]
            if not batch:
                break
            bulk_insert(engine, intake_plan, (p[0] for p in batch))
            done += bulk_insert(engine, item_plan, (p[1] for p in batch))
            say(f"decade: {done:,} of {n_items:,} items")
        summary.items = done
        summary.seconds["items"] = time.monotonic() - clock
        clock = time.monotonic()
        _resume_search_triggers(engine, triggers)
        counter_plan = TablePlan.of(_table("tracking_counters"), ["prefix", "year", "last"])
        bulk_insert(engine, counter_plan, (("GZ", y, n) for y, n in sorted(counters.items())))
        for name in ("intake", "submissions"):
            _reset_sequence(engine, name)
        summary.seconds["search_index"] = time.monotonic() - clock  # SQLite's FTS5 rebuild

        clock = time.monotonic()
        # Lower grades far more often than higher ones, as in life.
        choices: list[tuple[str, str | None]] = [
            (pub.name, grade.name)
            for pub in rulebook.publications
            for i, grade in enumerate(pub.grades)
            for _ in range(len(pub.grades) - i)
        ] + [(pub.name, None) for pub in rulebook.publications if not pub.grades]
        summary.adoptions = fill_adoptions(
            engine, choices, rng, n_adoptions, item_unit, item_time, start, people, say
        )
        summary.seconds["adoptions"] = time.monotonic() - clock

        clock = time.monotonic()
        summary.similar_items, summary.similar_keys = fill_similar_bands(
            engine, rng, item_unit, item_time, start, span, SimilarConfig.window_days, say
        )
        summary.seconds["similar"] = time.monotonic() - clock

        clock = time.monotonic()
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        summary.seconds["analyze"] = time.monotonic() - clock
    finally:
        engine.dispose()
    return summary


def _suspend_search_triggers(engine: Engine) -> list[str]:
    """On SQLite, drop the triggers that keep the items search's FTS5 table in step (row by
    row they cost more than loading the items) and return their SQL to create them again."""
    if engine.dialect.name != "sqlite":
        return []  # PostgreSQL's trigram indexes take COPY as it comes
    with engine.begin() as conn:
        found = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = "
            f"'submissions' AND name LIKE '{FTS_TABLE}%'"
        ).all()
        for name, _sql in found:
            conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
    return [sql for _name, sql in found]


def _resume_search_triggers(engine: Engine, triggers: list[str]) -> None:
    """The triggers back, and the FTS5 table built from the items in one pass."""
    if not triggers:
        return
    with engine.begin() as conn:
        for sql in triggers:
            conn.exec_driver_sql(sql)
        conn.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")


# --- adoption events ---------------------------------------------------------------------


def fill_adoptions(
    engine: Engine,
    publications: list[tuple[str, str | None]],
    rng: random.Random,
    n: int,
    item_unit: array[int],
    item_time: array[float],
    start: datetime,
    people: list[tuple[Any, ...]],
    say: Callable[[str], None],
) -> int:
    """`n` adoption events (`score_events` of kind `adoption`) on distinct random items, as
    an editor records them a few days after the item came in: a publication of the rulebook
    and, where it has grades, a grade."""
    if n == 0:
        return 0
    editors = [p[4] for p in people if p[2] == "editor"] or ["editor@bench.test"]
    given = ["kind", "unit_id", "submission_id", "rule", "level", "occurred_at"]
    given += ["recorded_by", "source", "note"]
    plan = TablePlan.of(_table("score_events"), given)
    picks = sorted(rng.sample(range(len(item_unit)), min(n, len(item_unit))))

    def rows() -> Iterator[tuple[Any, ...]]:
        for k in picks:
            rule, level = rng.choice(publications)
            when = start + timedelta(seconds=item_time[k], days=rng.randint(1, 20))
            editor = rng.choice(editors)
            yield ("adoption", item_unit[k], k + 1, rule, level, when, editor, "bench", "")

    count = bulk_insert(engine, plan, rows())
    _reset_sequence(engine, "score_events")
    say(f"decade: {count:,} adoption events")
    return count


# --- band keys of the last window (cross-unit duplicates) ---------------------------------


def fill_similar_bands(
    engine: Engine,
    rng: random.Random,
    item_unit: array[int],
    item_time: array[float],
    start: datetime,
    span: float,
    window_days: int,
    say: Callable[[str], None],
) -> tuple[int, int]:
    """`BANDS` keys for each item received in the decade's last `window_days` (the rows filing
    leaves: older ones are pruned). The decade's bodies are one template sentence, which would
    all be alike; their keys stand for distinct bodies instead, drawn at random (a lookup's
    false candidates are added by `bench.similar`, at the rate measured on the test set).
    Returns (items, keys)."""
    if not window_days or not len(item_time):
        return 0, 0
    first = bisect.bisect_left(item_time, span - window_days * 86_400.0)
    plan = TablePlan.of(_table("similar_bands"), ["key", "submission_id", "unit_id", "received_at"])

    def rows() -> Iterator[tuple[Any, ...]]:
        for k in range(first, len(item_time)):
            received = start + timedelta(seconds=item_time[k])
            unit_id = item_unit[k]
            for key in {rng.getrandbits(63) for _ in range(BANDS)}:
                yield key, k + 1, unit_id, received

    keys = bulk_insert(engine, plan, rows())
    items = len(item_time) - first
    say(f"decade: band keys of the last {window_days} days: {items:,} items, {keys:,} keys")
    return items, keys


def landed() -> dict[str, str | None]:
    """For standings and the quarterly report: None when landed, else why it is skipped."""
    from bench.procs import cli_has, module_exists

    return {
        "standings": None
        if module_exists("ledger.standings") and cli_has("standings")
        else "ledger.standings not landed",
        "report": None
        if cli_has("report", "quarterly")
        else "reports not landed (no `mailroom report quarterly`)",
    }


def _timed_cli(instance: Any, *args: str, check: bool = True) -> float:
    """Seconds one `mailroom` command takes, as a person at the terminal sees it."""
    start = time.monotonic()
    instance.cli(*args, check=check)
    return time.monotonic() - start


def run_decade(
    settings: Any, databases: Any, scale: float, kinds: list[str]
) -> tuple[list[Any], dict[str, Any]]:
    """Bench 4: `standings`, the quarterly report, and the console's items search and
    standings pages (`bench.console`) on the decade, on each database; and bench 6's lookup of
    a filed item among the window's band keys (`bench.similar`)."""
    from bench.stats import Row, Target
    from tests.service import MailroomInstance

    skips = landed()
    size = f"{round(ITEMS * scale):,} items"
    rows: list[Row] = []
    details: dict[str, Any] = {"landed": skips}
    if all(skips.values()):
        for kind in kinds:
            rows.append(
                Row("4", f"standings --period, {size} ({kind})", "s", skipped=skips["standings"])
            )
            rows.append(
                Row("4", f"quarterly report, {size} ({kind})", "s", skipped=skips["report"])
            )
        return rows, details
    for kind in kinds:
        root = settings.work / f"decade-{kind}"
        root.mkdir(parents=True)
        url = databases.url(kind, root)
        try:
            settings.say(f"decade on {kind}: generating {size}")
            summary = generate(url, scale=scale, say=settings.say)
            details[kind] = summary.as_json()
            settings.say(f"decade on {kind}: generated in {sum(summary.seconds.values()):.0f} s")
            instance = MailroomInstance(root, url)
            period = summary.last_quarter
            start_s: list[float] = []
            standings_s: list[float] = []
            table_s: list[float] = []
            report_s: list[float] = []
            for i in range(settings.runs + 1):  # the first run warms the caches, uncounted
                start = _timed_cli(instance, "items", "show", "NONE-000000", check=False)
                if not skips["standings"]:
                    took = _timed_cli(instance, "standings", "--period", period, "--json")
                    standings_s.append(max(0.0, took - start))
                    # As a person reads it: the table, with the quarter's praise and criticism
                    # (which need every quarter of the year so far).
                    took = _timed_cli(instance, "standings", "--period", period)
                    table_s.append(max(0.0, took - start))
                if not skips["report"]:
                    out = root / f"report-{i}"
                    took = _timed_cli(
                        instance, "report", "quarterly", "--period", period, "--out", str(out)
                    )
                    made = {p.suffix for p in out.rglob("*") if p.is_file()}
                    if not {".html", ".txt", ".xlsx"} <= made:
                        raise RuntimeError(f"the quarterly report wrote {sorted(made)}")
                    report_s.append(max(0.0, took - start))
                start_s.append(start)
            if not skips["standings"]:
                from bench.console import run_console

                console_rows, details[f"console-{kind}"] = run_console(
                    root, url, period, settings.runs, size, kind, settings.say
                )
                rows += console_rows
            note = "wall time less the CLI start of the same run"
            rows.append(Row("4", f"CLI start, decade ({kind})", "s", runs=start_s[1:]))
            timed = (
                (f"standings --period {period}, {size}", standings_s, "standings", 0.5),
                (
                    f"standings --period {period} as a table, with streaks",
                    table_s,
                    "standings",
                    0.5,
                ),
                (f"quarterly report {period}, {size}", report_s, "report", 3.0),
            )
            for measure, runs, part, most in timed:
                rows.append(
                    Row(
                        "4",
                        f"{measure} ({kind})",
                        "s",
                        runs=runs[1:],
                        skipped=skips[part],
                        target=Target("<=", most),
                        note=note,
                    )
                )
            from bench.similar import decade_lookup

            similar_rows, details[f"similar-{kind}"] = decade_lookup(
                url, settings.runs, size, kind, settings.say
            )
            rows += similar_rows
        finally:
            databases.drop(url)
    return rows, details


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.decade", description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True, help="an empty database (sqlite:///… or postgresql://…)")
    p.add_argument("--scale", type=float, default=1.0, help="1.0 = 1,000 units, 2,000,000 items")
    p.add_argument("--seed", type=int, default=8)
    args = p.parse_args(argv)
    summary = generate(args.url, scale=args.scale, seed=args.seed, say=print)
    json.dump(summary.as_json(), sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
