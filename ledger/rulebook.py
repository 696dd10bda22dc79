"""The rulebook (SPEC §5.2): scoring and limits as data, loaded from TOML and validated.

The code knows the concepts — publication, grade, bonus (cumulative or highest-only), clue,
deduction, sequence target, direct-report share, streak, core team — never one office's
numbers. A rulebook that cannot be used raises `RulebookError` naming the file and the key.
"""

from __future__ import annotations

import functools
import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parser.errors import UserError

RULEBOOK_DIR = Path(__file__).parent / "rulebooks"

# Registry sequences a rulebook may give targets to (`office` is never ranked).
RANKED_SEQUENCES = ("district", "dept_a", "dept_b", "direct")
NOTIFY_ROLES = ("supervising_leader", "principal_leader")
BONUS_MODES = ("cumulative", "highest")
MAX_POINTS = 10_000


class RulebookError(UserError):
    """A rulebook that cannot be used; the message names the file and the key."""


@functools.lru_cache(maxsize=4096)
def name_key(text: str) -> str:
    """How names from tags and the CLI are compared: NFKC (full/half width), no spaces."""
    return "".join(unicodedata.normalize("NFKC", text).split()).lower()


@dataclass(frozen=True)
class Calendar:
    year_start_month: int
    months_per_quarter: int


@dataclass(frozen=True)
class Grade:
    name: str
    points: int


@dataclass(frozen=True)
class Publication:
    """A publication that adopts items: a fixed value per item, or one per grade."""

    name: str
    aliases: tuple[str, ...]
    points: int | None
    grades: tuple[Grade, ...]

    def grade(self, name: str | None) -> Grade | None:
        """The grade called `name`; None for a publication without grades."""
        if not self.grades:
            if name:
                raise LookupError(f"{self.name} has no grades (got {name!r})")
            return None
        if not name:
            names = "/".join(g.name for g in self.grades)
            raise LookupError(f"{self.name} needs a grade ({names})")
        for g in self.grades:
            if name_key(g.name) == name_key(name):
                return g
        names = "/".join(g.name for g in self.grades)
        raise LookupError(f"{self.name} has no grade {name!r} ({names})")

    def points_for(self, grade: str | None) -> int:
        g = self.grade(grade)
        if g is not None:
            return g.points
        assert self.points is not None  # the loader guarantees points or grades
        return self.points


@dataclass(frozen=True)
class BonusLevel:
    name: str
    points: int


@dataclass(frozen=True)
class Bonus:
    """A bonus on an item: `cumulative` adds every level recorded, `highest` the top one."""

    name: str
    mode: str
    requires_adoption: bool
    levels: tuple[BonusLevel, ...]

    def level(self, name: str) -> BonusLevel:
        for lv in self.levels:
            if name_key(lv.name) == name_key(name):
                return lv
        names = "/".join(lv.name for lv in self.levels)
        raise LookupError(f"bonus {self.name} has no level {name!r} ({names})")


@dataclass(frozen=True)
class Deduction:
    name: str
    points: int


@dataclass(frozen=True)
class SequenceRule:
    key: str
    name: str
    quarterly_target: int | None
    annual_target: int | None


@dataclass(frozen=True)
class PraiseRule:
    first_quarters_met: int
    notify: str


@dataclass(frozen=True)
class CriticismRule:
    quarters_missed: int
    notify: str
    replace_officer: bool


@dataclass(frozen=True)
class Rulebook:
    name: str
    title: str
    body_chars: int
    attachment_chars: int
    calendar: Calendar
    publications: tuple[Publication, ...] = ()
    bonuses: tuple[Bonus, ...] = ()
    clue_points: int | None = None
    deductions: tuple[Deduction, ...] = ()
    sequences: tuple[SequenceRule, ...] = ()
    direct_share_percent: int = 0
    praise: tuple[PraiseRule, ...] = ()
    criticism: tuple[CriticismRule, ...] = ()
    award_names: tuple[str, ...] = ()
    core_team_size: int = 0
    late_deduction: str | None = None

    @property
    def quarters_per_year(self) -> int:
        return 12 // self.calendar.months_per_quarter

    @functools.cached_property
    def _publications_by_key(self) -> dict[str, Publication]:
        by_key: dict[str, Publication] = {}
        for pub in self.publications:
            for n in (pub.name, *pub.aliases):
                by_key.setdefault(name_key(n), pub)
        return by_key

    def publication(self, name: str) -> Publication:
        pub = self._publications_by_key.get(name_key(name))
        if pub is not None:
            return pub
        names = ", ".join(p.name for p in self.publications)
        raise LookupError(f"no publication {name!r} in rulebook {self.name} ({names})")

    def bonus(self, name: str) -> Bonus:
        for bonus in self.bonuses:
            if name_key(bonus.name) == name_key(name):
                return bonus
        names = ", ".join(b.name for b in self.bonuses)
        raise LookupError(f"no bonus {name!r} in rulebook {self.name} ({names})")

    def deduction(self, name: str) -> Deduction:
        for d in self.deductions:
            if name_key(d.name) == name_key(name):
                return d
        names = ", ".join(d.name for d in self.deductions)
        raise LookupError(f"no deduction {name!r} in rulebook {self.name} ({names})")

    def sequence(self, key: str) -> SequenceRule | None:
        return next((s for s in self.sequences if s.key == key), None)


# --- validation helpers: each names the file and the key ----------------------------------


class _Where:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> RulebookError:
        return RulebookError(f"rulebook {self.source}: {where} {problem}")

    def int_(self, where: str, table: dict[str, Any], key: str, lo: int, hi: int) -> int:
        value = table.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.fail(f"{where} {key}", f"must be a whole number from {lo} to {hi}")
        return value

    def opt_int(self, where: str, table: dict[str, Any], key: str, lo: int, hi: int) -> int | None:
        return None if key not in table else self.int_(where, table, key, lo, hi)

    def str_(self, where: str, table: dict[str, Any], key: str) -> str:
        value = table.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where} {key}", "must be a non-empty string")
        return value.strip()

    def bool_(self, where: str, table: dict[str, Any], key: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{where} {key}", "must be true or false")
        return value

    def str_list(self, where: str, table: dict[str, Any], key: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(f"{where} {key}", "must be a list of non-empty strings")
        return tuple(v.strip() for v in value)

    def table(
        self, where: str, value: Any, keys: set[str], required: bool = True
    ) -> dict[str, Any]:
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self.fail(where, "is missing" if value is None else "must be a table")
        unknown = set(value) - keys
        if unknown:
            raise RulebookError(f"rulebook {self.source}: unknown key {where} {sorted(unknown)[0]}")
        return value

    def tables(self, where: str, value: Any, keys: set[str]) -> list[dict[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(where, "must be an array of tables ([[…]])")
        return [self.table(f"{where} {i}", item, keys) for i, item in enumerate(value, 1)]

    def named_points(self, where: str, value: Any) -> list[tuple[str, int]]:
        """`[{ name = "…", points = N }, …]` as (name, points) pairs."""
        return [
            (
                self.str_(f"{where} {i}", t, "name"),
                self.int_(f"{where} {i}", t, "points", 0, MAX_POINTS),
            )
            for i, t in enumerate(self.tables(where, value, {"name", "points"}), 1)
        ]

    def unique(self, where: str, names: list[str]) -> None:
        seen: set[str] = set()
        for name in names:
            if name_key(name) in seen:
                raise self.fail(where, f"name {name!r} is given twice")
            seen.add(name_key(name))


SECTIONS = {
    "meta", "limits", "calendar", "publications", "bonuses", "clues", "deductions",
    "sequences", "direct_report", "streaks", "awards", "core_team", "solicitation",
}  # fmt: skip


def _publications(w: _Where, data: dict[str, Any]) -> tuple[Publication, ...]:
    pubs = []
    keys = {"name", "aliases", "points", "grades"}
    for i, t in enumerate(w.tables("[[publications]]", data.get("publications"), keys), 1):
        where = f"[[publications]] {i}"
        name = w.str_(where, t, "name")
        grades = tuple(Grade(*g) for g in w.named_points(f"{where} grades", t.get("grades")))
        points = w.opt_int(where, t, "points", 0, MAX_POINTS)
        if (points is None) == (not grades):
            raise w.fail(f"{where} ({name})", "needs either points or grades, not both")
        w.unique(f"{where} grades", [g.name for g in grades])
        pubs.append(Publication(name, w.str_list(where, t, "aliases"), points, grades))
    w.unique("[[publications]]", [n for p in pubs for n in (p.name, *p.aliases)])
    return tuple(pubs)


def _bonuses(w: _Where, data: dict[str, Any]) -> tuple[Bonus, ...]:
    bonuses = []
    keys = {"name", "mode", "requires_adoption", "levels"}
    for i, t in enumerate(w.tables("[[bonuses]]", data.get("bonuses"), keys), 1):
        where = f"[[bonuses]] {i}"
        name = w.str_(where, t, "name")
        mode = w.str_(where, t, "mode")
        if mode not in BONUS_MODES:
            raise w.fail(f"{where} mode", f"must be one of {', '.join(BONUS_MODES)}")
        levels = tuple(BonusLevel(*lv) for lv in w.named_points(f"{where} levels", t.get("levels")))
        if not levels:
            raise w.fail(f"{where} levels", "must list at least one level")
        w.unique(f"{where} levels", [lv.name for lv in levels])
        bonuses.append(Bonus(name, mode, w.bool_(where, t, "requires_adoption", False), levels))
    w.unique("[[bonuses]]", [b.name for b in bonuses])
    return tuple(bonuses)


def _sequences(w: _Where, data: dict[str, Any]) -> tuple[SequenceRule, ...]:
    raw = w.table("[sequences]", data.get("sequences"), set(RANKED_SEQUENCES), required=False)
    rules = []
    for key, t in raw.items():
        where = f"[sequences.{key}]"
        t = w.table(where, t, {"name", "quarterly_target", "annual_target"})
        rules.append(
            SequenceRule(
                key=key,
                name=w.str_(where, t, "name"),
                quarterly_target=w.opt_int(where, t, "quarterly_target", 0, MAX_POINTS),
                annual_target=w.opt_int(where, t, "annual_target", 0, MAX_POINTS),
            )
        )
    return tuple(rules)


def _role(w: _Where, where: str, t: dict[str, Any]) -> str:
    role = w.str_(where, t, "notify")
    if role not in NOTIFY_ROLES:
        raise w.fail(f"{where} notify", f"must be one of {', '.join(NOTIFY_ROLES)}")
    return role


def parse_rulebook(data: dict[str, Any], source: str) -> Rulebook:
    w = _Where(source)
    unknown = set(data) - SECTIONS
    if unknown:
        raise RulebookError(f"rulebook {source}: unknown section [{sorted(unknown)[0]}]")
    meta = w.table("[meta]", data.get("meta"), {"name", "title"})
    limits = w.table("[limits]", data.get("limits"), {"body_chars", "attachment_chars"})
    cal = w.table("[calendar]", data.get("calendar"), {"year_start_month", "months_per_quarter"})
    months = w.int_("[calendar]", cal, "months_per_quarter", 1, 12)
    if 12 % months:
        raise w.fail("[calendar] months_per_quarter", "must divide 12")
    name = w.str_("[meta]", meta, "name")
    calendar = Calendar(w.int_("[calendar]", cal, "year_start_month", 1, 12), months)
    quarters = 12 // months

    clues = w.table("[clues]", data.get("clues"), {"points"}, required=False)
    deductions = tuple(
        Deduction(*d) for d in w.named_points("[[deductions]]", data.get("deductions"))
    )
    w.unique("[[deductions]]", [d.name for d in deductions])
    direct = w.table(
        "[direct_report]", data.get("direct_report"), {"parent_share_percent"}, required=False
    )
    streaks = w.table("[streaks]", data.get("streaks"), {"praise", "criticism"}, required=False)
    praise_where = "[[streaks.praise]]"
    praise = tuple(
        PraiseRule(
            w.int_(f"{praise_where} {i}", t, "first_quarters_met", 1, quarters),
            _role(w, f"{praise_where} {i}", t),
        )
        for i, t in enumerate(
            w.tables(praise_where, streaks.get("praise"), {"first_quarters_met", "notify"}), 1
        )
    )
    crit_where = "[[streaks.criticism]]"
    crit_keys = {"quarters_missed", "notify", "replace_officer"}
    criticism = tuple(
        CriticismRule(
            w.int_(f"{crit_where} {i}", t, "quarters_missed", 1, quarters),
            _role(w, f"{crit_where} {i}", t),
            w.bool_(f"{crit_where} {i}", t, "replace_officer", False),
        )
        for i, t in enumerate(w.tables(crit_where, streaks.get("criticism"), crit_keys), 1)
    )
    awards = w.table("[awards]", data.get("awards"), {"names"}, required=False)
    core = w.table("[core_team]", data.get("core_team"), {"size"}, required=False)
    solicit = w.table(
        "[solicitation]", data.get("solicitation"), {"late_deduction"}, required=False
    )
    late = w.str_("[solicitation]", solicit, "late_deduction") if solicit else None
    if late is not None and name_key(late) not in {name_key(d.name) for d in deductions}:
        raise w.fail("[solicitation] late_deduction", f"{late!r} is not one of [[deductions]]")
    return Rulebook(
        name=name,
        title=str(meta.get("title", name)),
        body_chars=w.int_("[limits]", limits, "body_chars", 1, 1_000_000),
        attachment_chars=w.int_("[limits]", limits, "attachment_chars", 1, 10_000_000),
        calendar=calendar,
        publications=_publications(w, data),
        bonuses=_bonuses(w, data),
        clue_points=w.opt_int("[clues]", clues, "points", 0, MAX_POINTS),
        deductions=deductions,
        sequences=_sequences(w, data),
        direct_share_percent=w.opt_int("[direct_report]", direct, "parent_share_percent", 0, 100)
        or 0,
        praise=praise,
        criticism=criticism,
        award_names=w.str_list("[awards]", awards, "names"),
        core_team_size=w.opt_int("[core_team]", core, "size", 0, MAX_POINTS) or 0,
        late_deduction=late,
    )


def load_rulebook(name_or_path: str, base_dir: Path | None = None) -> Rulebook:
    """A shipped rulebook by name (`guangzhou-2004`) or a TOML file by path."""
    candidate = Path(name_or_path)
    if candidate.suffix != ".toml":
        path = RULEBOOK_DIR / f"{name_or_path}.toml"
        if not path.exists():
            shipped = ", ".join(sorted(p.stem for p in RULEBOOK_DIR.glob("*.toml")))
            raise RulebookError(f"rulebook {name_or_path!r} is not shipped (shipped: {shipped})")
    else:
        path = candidate if candidate.is_absolute() or base_dir is None else base_dir / candidate
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulebookError(f"rulebook file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RulebookError(f"rulebook {path}: {exc}") from None
    return parse_rulebook(data, path.name)
