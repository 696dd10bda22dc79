"""The rulebook (SPEC §5.2): scoring and limits as data, loaded from TOML and validated.

The code knows the concepts — publication, grade, bonus (cumulative or highest-only), clue,
deduction, unit bonus, sequence with its titles and targets, monthly quota with a rate bonus,
per-unit task table, payments in yuan, award quotas, direct-report share, streak, core team,
required sign-off elements, a revision's effective date — never one office's numbers or names.
A rulebook that cannot be used raises `RulebookError` naming the file and the key.
docs/rulebooks.md documents every key.
"""

from __future__ import annotations

import functools
import tomllib
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

from ledger.models import APPROVER_ROLES
from parser.errors import UserError

RULEBOOK_DIR = Path(__file__).parent / "rulebooks"

# The office's own unit is in every registry and never ranked; its name in a registry file.
OFFICE = "office"
OFFICE_NAMES = ("office", "本办")
NOTIFY_ROLES = ("supervising_leader", "principal_leader")
BONUS_MODES = ("cumulative", "highest")
METRICS = ("points", "count")
QUOTA_PERIODS = ("month", "quarter", "year")
QUOTA_COUNTS = ("submitted", "adopted")
# Sign-off elements a rulebook may require (SPEC §3.3); the parser knows how to read each.
SIGNOFF_ELEMENTS = ("unit", "author", "phone", "date", "approver")
SIGNOFF_DEFAULT = ("unit", "author", "phone", "date")
MAX_POINTS = 10_000
TRACKING_PREFIX_MAX = 16  # as the tracking numbers' column holds it
MAX_YUAN = 1_000_000


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
    yuan: int = 0


@dataclass(frozen=True)
class Publication:
    """A publication that adopts items: a fixed value per item, or one per grade."""

    name: str
    aliases: tuple[str, ...]
    points: int | None
    grades: tuple[Grade, ...]
    yuan: int = 0  # paid to the author per item adopted (稿酬), when no grade says otherwise
    level: str = ""  # the level it belongs to (区, 市, 省), for task tables counting adoptions

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

    def yuan_for(self, grade: str | None) -> int:
        g = self.grade(grade)
        return g.yuan if g is not None else self.yuan


@dataclass(frozen=True)
class BonusLevel:
    name: str
    points: int
    yuan: int = 0  # paid per instance recorded (每条次), cumulative across levels


@dataclass(frozen=True)
class Bonus:
    """A bonus on an item: `cumulative` adds every level recorded, `highest` the top one."""

    name: str
    mode: str
    requires_adoption: bool
    levels: tuple[BonusLevel, ...]
    # Only an item adopted in one of these publications may get it (e.g. only via 内刊).
    requires_publication: tuple[str, ...] = ()
    # A level may be recorded again on the same item (a second instruction): points count
    # once per level, money once per instance.
    repeatable: bool = False

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
class UnitBonus:
    """Points for a unit as a whole (组织奖, 培训): recorded as an event, audited."""

    name: str
    points: int
    sequences: tuple[str, ...] = ()  # the sequences it is open to; empty: all


@dataclass(frozen=True)
class Quota:
    """A count target: items submitted (or adopted) per month, quarter or year; with a bonus
    of `bonus_points` for each such period in which it is met at `min_adoption_percent`."""

    period: str
    counts: str
    items: int
    bonus_points: int = 0
    min_adoption_percent: int = 0


@dataclass(frozen=True)
class SequenceRule:
    key: str
    name: str
    quarterly_target: int | None
    annual_target: int | None
    title: str = ""  # in reports: 区、县级市序列
    sheet: str = ""  # .xlsx sheet name
    aliases: tuple[str, ...] = ()
    monthly_target: int | None = None
    reports_to_parent: bool = False  # a 直报点 sequence: units have a parent sharing points
    quota: Quota | None = None
    # Ranked (and reported) within another sequence's table: Longnan's 省驻陇南单位 among 部门.
    rank_with: str = ""

    @property
    def group(self) -> str:
        return self.rank_with or self.key

    @property
    def report_title(self) -> str:
        return self.title or f"{self.name}序列"

    @property
    def sheet_name(self) -> str:
        return self.sheet or self.name

    def target(self, period_kind: str) -> int | None:
        return {
            "month": self.monthly_target,
            "quarter": self.quarterly_target,
            "year": self.annual_target,
        }.get(period_kind)


@dataclass(frozen=True)
class Importance:
    """An importance grade (一般, 重大, 特别重大): the subject markers or sign-off words that give
    it, the registry roles that may sign such an item off, and whether it goes to the desk
    ahead of the rest."""

    name: str
    markers: tuple[str, ...]
    approvers: tuple[str, ...]
    urgent: bool = False
    default: bool = False  # the grade of an item that names none


@dataclass(frozen=True)
class Excellence:
    """A list of the year's good items the office names (优秀调研信息, 领导批示好信息): those
    adopted in one of `publications` (or at one of `grades`), or given one of `bonuses`."""

    name: str
    publications: tuple[str, ...] = ()
    grades: tuple[str, ...] = ()
    bonuses: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnitTask:
    """A unit's annual task (任务基数表): points, and items adopted at a publication level."""

    unit: str  # the unit's name as the registry has it
    points: int | None
    adopted: tuple[tuple[str, int], ...]  # (level, items)


@dataclass(frozen=True)
class Award:
    """An award with a quota: for units per sequence (or across all), or for officers."""

    name: str
    kind: str  # unit, officer
    quota: int | None = None  # across all sequences
    per_sequence: tuple[tuple[str, int], ...] = ()
    yuan: int = 0


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
class WarningPoint:
    """A point of a period (`at`: the share of it gone, 2/3 = 0.667) when units below their
    pro-rata target are warned, their officer and 主管领导 (预警)."""

    period: str  # month, quarter or year: a point in each period of this kind
    at: float
    # The period whose figures and target are measured, pro rata to the share of it gone at the
    # point: the same kind (a quarter's target two thirds through the quarter), or a longer one
    # (Longgang's monthly point against the annual task).
    against: str = ""

    @property
    def measured(self) -> str:
        return self.against or self.period


# Unless a rulebook says otherwise: two thirds through each quarter.
DEFAULT_WARNINGS = (WarningPoint("quarter", 0.667),)


@dataclass(frozen=True)
class Rulebook:
    name: str
    title: str
    body_chars: int  # 0: no limit
    attachment_chars: int  # 0: no limit
    calendar: Calendar
    tracking_prefix: str = "MR"
    publications: tuple[Publication, ...] = ()
    bonuses: tuple[Bonus, ...] = ()
    clue_points: int | None = None
    deductions: tuple[Deduction, ...] = ()
    sequences: tuple[SequenceRule, ...] = ()
    direct_share_percent: int = 0
    praise: tuple[PraiseRule, ...] = ()
    criticism: tuple[CriticismRule, ...] = ()
    award_names: tuple[str, ...] = ()
    # Awards for people, proposed from the candidate units' officers with an adopted item.
    officer_award_names: tuple[str, ...] = ()
    core_team_size: int = 0
    late_deduction: str | None = None
    missing_deduction: str | None = None  # a target unit with no answer at the deadline
    metric: str = "points"  # what ranks units: points, or the count of items submitted
    unit_bonuses: tuple[UnitBonus, ...] = ()
    tasks: tuple[UnitTask, ...] = ()
    awards: tuple[Award, ...] = ()
    required_signoff: tuple[str, ...] = SIGNOFF_DEFAULT
    effective_from: date | None = None
    # The rulebooks this one replaced, newest first: periods before `effective_from` keep them.
    earlier: tuple[Rulebook, ...] = field(default=(), compare=False)
    # Report sections the rulebook asks for: deductions (with notes) in the monthly 通报, the
    # units lagging behind, the units that missed their annual task.
    monthly_deductions: bool = False
    lagging_units: int = 0
    payments: bool = False
    importance: tuple[Importance, ...] = ()
    excellence: tuple[Excellence, ...] = ()
    warnings: tuple[WarningPoint, ...] = DEFAULT_WARNINGS

    def grade_for(self, word: str | None) -> Importance | None:
        """The importance grade a marker or sign-off word names; the default grade for none."""
        if not self.importance:
            return None
        if word:
            for grade in self.importance:
                if any(name_key(word) == name_key(m) for m in (grade.name, *grade.markers)):
                    return grade
        return next((g for g in self.importance if g.default), None)

    @property
    def importance_words(self) -> tuple[str, ...]:
        return tuple(w for g in self.importance for w in (g.name, *g.markers))

    def in_force_at(self, instant: datetime, zone: tzinfo) -> Rulebook:
        """The rulebook that applied at an aware instant, its day seen in the office's zone."""
        return self.in_force(instant.astimezone(zone).date()) if self.earlier else self

    def in_force(self, day: date) -> Rulebook:
        """The rulebook that applied on `day`: this one, or the one it replaced then."""
        for book in (self, *self.earlier):
            if book.effective_from is None or day >= book.effective_from:
                return book
        return self.earlier[-1] if self.earlier else self

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

    def sequence_title(self, key: str) -> str:
        rule = self.sequence(key)
        return rule.report_title if rule is not None else key

    def sequence_name(self, key: str) -> str:
        rule = self.sequence(key)
        return rule.name if rule is not None else key

    def sequence_order(self, key: str) -> int:
        keys = [s.key for s in self.sequences]
        return keys.index(key) if key in keys else len(keys)

    def unit_bonus(self, name: str) -> UnitBonus:
        for b in self.unit_bonuses:
            if name_key(b.name) == name_key(name):
                return b
        names = ", ".join(b.name for b in self.unit_bonuses) or "none"
        raise LookupError(f"no unit bonus {name!r} in rulebook {self.name} ({names})")

    def task_of(self, unit_name: str) -> UnitTask | None:
        return self._tasks.get(name_key(unit_name))

    @functools.cached_property
    def _tasks(self) -> dict[str, UnitTask]:
        return {name_key(t.unit): t for t in self.tasks}


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

    def named_points(self, where: str, value: Any) -> list[tuple[str, int, int]]:
        """`[{ name = "…", points = N, yuan = M }, …]` as (name, points, yuan) triples."""
        return [
            (
                self.str_(f"{where} {i}", t, "name"),
                self.int_(f"{where} {i}", t, "points", 0, MAX_POINTS),
                self.opt_int(f"{where} {i}", t, "yuan", 0, MAX_YUAN) or 0,
            )
            for i, t in enumerate(self.tables(where, value, {"name", "points", "yuan"}), 1)
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
    "ranking", "unit_bonuses", "tasks", "signoff", "reports", "importance", "excellence",
    "warnings",
}  # fmt: skip


def _warnings(w: _Where, data: dict[str, Any]) -> tuple[WarningPoint, ...]:
    """`[[warnings]] period = "quarter", at = 0.667`; `warnings = []` warns never."""
    if "warnings" not in data:
        return DEFAULT_WARNINGS
    points = []
    keys = {"period", "at", "against"}
    for i, t in enumerate(w.tables("[[warnings]]", data["warnings"], keys), 1):
        period = _choice(w, f"[[warnings]] {i}", t, "period", QUOTA_PERIODS)
        against = (
            _choice(w, f"[[warnings]] {i}", t, "against", QUOTA_PERIODS) if "against" in t else ""
        )
        if against and QUOTA_PERIODS.index(against) < QUOTA_PERIODS.index(period):
            raise w.fail(f"[[warnings]] {i} against", f"must be {period} or a longer period")
        at = t.get("at")
        if isinstance(at, bool) or not isinstance(at, int | float) or not 0 < at < 1:
            raise w.fail(
                f"[[warnings]] {i} at", "must be a fraction of the period, above 0 and below 1"
            )
        points.append(WarningPoint(period, float(at), against))
    if len({(p.period, round(p.at * 1000)) for p in points}) != len(points):
        raise w.fail("[[warnings]]", "lists the same point twice")
    return tuple(points)


def _importance(w: _Where, data: dict[str, Any]) -> tuple[Importance, ...]:
    keys = {"name", "markers", "approvers", "urgent", "default"}
    found = []
    for i, t in enumerate(w.tables("[[importance]]", data.get("importance"), keys), 1):
        where = f"[[importance]] {i}"
        approvers = w.str_list(where, t, "approvers")
        if not approvers:
            raise w.fail(f"{where} approvers", "must name at least one role")
        for role in approvers:
            if role not in APPROVER_ROLES:
                raise w.fail(f"{where} approvers", f"{role!r} is not one of {APPROVER_ROLES}")
        found.append(
            Importance(
                name=w.str_(where, t, "name"),
                markers=w.str_list(where, t, "markers"),
                approvers=approvers,
                urgent=w.bool_(where, t, "urgent", False),
                default=w.bool_(where, t, "default", False),
            )
        )
    if found and sum(g.default for g in found) != 1:
        raise w.fail("[[importance]]", "needs exactly one grade with default = true")
    w.unique("[[importance]]", [n for g in found for n in (g.name, *g.markers)])
    return tuple(found)


def _excellence(
    w: _Where, data: dict[str, Any], pubs: tuple[Publication, ...], bonuses: tuple[Bonus, ...]
) -> tuple[Excellence, ...]:
    keys = {"name", "publications", "grades", "bonuses"}
    names = {name_key(n) for p in pubs for n in (p.name, *p.aliases)}
    grades = {name_key(g.name) for p in pubs for g in p.grades}
    bonus_names = {name_key(b.name) for b in bonuses}
    found = []
    for i, t in enumerate(w.tables("[[excellence]]", data.get("excellence"), keys), 1):
        where = f"[[excellence]] {i}"
        item = Excellence(
            w.str_(where, t, "name"),
            w.str_list(where, t, "publications"),
            w.str_list(where, t, "grades"),
            w.str_list(where, t, "bonuses"),
        )
        for key, values, known in (
            ("publications", item.publications, names),
            ("grades", item.grades, grades),
            ("bonuses", item.bonuses, bonus_names),
        ):
            for v in values:
                if name_key(v) not in known:
                    raise w.fail(f"{where} {key}", f"{v!r} is not in the rulebook")
        if not (item.publications or item.grades or item.bonuses):
            raise w.fail(where, "needs publications, grades or bonuses")
        found.append(item)
    return tuple(found)


def _publications(w: _Where, data: dict[str, Any]) -> tuple[Publication, ...]:
    pubs = []
    keys = {"name", "aliases", "points", "grades", "yuan", "level"}
    for i, t in enumerate(w.tables("[[publications]]", data.get("publications"), keys), 1):
        where = f"[[publications]] {i}"
        name = w.str_(where, t, "name")
        grades = tuple(Grade(*g) for g in w.named_points(f"{where} grades", t.get("grades")))
        points = w.opt_int(where, t, "points", 0, MAX_POINTS)
        if (points is None) == (not grades):
            raise w.fail(f"{where} ({name})", "needs either points or grades, not both")
        w.unique(f"{where} grades", [g.name for g in grades])
        pubs.append(
            Publication(
                name,
                w.str_list(where, t, "aliases"),
                points,
                grades,
                yuan=w.opt_int(where, t, "yuan", 0, MAX_YUAN) or 0,
                level=w.str_(where, t, "level") if "level" in t else "",
            )
        )
    w.unique("[[publications]]", [n for p in pubs for n in (p.name, *p.aliases)])
    return tuple(pubs)


def _bonuses(w: _Where, data: dict[str, Any], pubs: tuple[Publication, ...]) -> tuple[Bonus, ...]:
    bonuses = []
    keys = {"name", "mode", "requires_adoption", "levels", "requires_publication", "repeatable"}
    publications = {name_key(n) for p in pubs for n in (p.name, *p.aliases)}
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
        needs = w.str_list(where, t, "requires_publication")
        for pub in needs:
            if name_key(pub) not in publications:
                raise w.fail(f"{where} requires_publication", f"{pub!r} is not a publication")
        bonuses.append(
            Bonus(
                name,
                mode,
                w.bool_(where, t, "requires_adoption", False) or bool(needs),
                levels,
                requires_publication=needs,
                repeatable=w.bool_(where, t, "repeatable", False),
            )
        )
    w.unique("[[bonuses]]", [b.name for b in bonuses])
    return tuple(bonuses)


SEQUENCE_KEYS = {
    "name", "title", "sheet", "aliases", "monthly_target", "quarterly_target", "annual_target",
    "reports_to_parent", "quota", "rank_with",
}  # fmt: skip
QUOTA_KEYS = {"period", "counts", "items", "bonus_points", "min_adoption_percent"}
# Characters Excel refuses in a sheet name, and its longest name.
SHEET_FORBIDDEN = set("[]:*?/\\")
MAX_SHEET = 31


def _choice(w: _Where, where: str, t: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = w.str_(where, t, key)
    if value not in allowed:
        raise w.fail(f"{where} {key}", f"must be one of {', '.join(allowed)}")
    return value


def _quota(w: _Where, where: str, value: Any) -> Quota | None:
    if value is None:
        return None
    t = w.table(where, value, QUOTA_KEYS)
    return Quota(
        period=_choice(w, where, t, "period", QUOTA_PERIODS),
        counts=_choice(w, where, t, "counts", QUOTA_COUNTS),
        items=w.int_(where, t, "items", 1, MAX_POINTS),
        bonus_points=w.opt_int(where, t, "bonus_points", 0, MAX_POINTS) or 0,
        min_adoption_percent=w.opt_int(where, t, "min_adoption_percent", 0, 100) or 0,
    )


def _sequences(w: _Where, data: dict[str, Any]) -> tuple[SequenceRule, ...]:
    raw = w.table("[sequences]", data.get("sequences"), set(data.get("sequences") or ()), False)
    rules = []
    for key, t in raw.items():
        where = f"[sequences.{key}]"
        if key in OFFICE_NAMES or not key.isascii() or not key.replace("_", "").isalnum():
            raise w.fail(where, "needs a key of letters, digits and _ (and not office)")
        t = w.table(where, t, SEQUENCE_KEYS)
        sheet = w.str_(where, t, "sheet") if "sheet" in t else ""
        shown = sheet or str(t.get("name", ""))
        if len(shown) > MAX_SHEET or SHEET_FORBIDDEN & set(shown):
            raise w.fail(f"{where} sheet", f"must be at most {MAX_SHEET} characters, no []:*?/\\")
        rules.append(
            SequenceRule(
                key=key,
                name=w.str_(where, t, "name"),
                title=w.str_(where, t, "title") if "title" in t else "",
                sheet=sheet,
                aliases=w.str_list(where, t, "aliases"),
                monthly_target=w.opt_int(where, t, "monthly_target", 0, MAX_POINTS),
                quarterly_target=w.opt_int(where, t, "quarterly_target", 0, MAX_POINTS),
                annual_target=w.opt_int(where, t, "annual_target", 0, MAX_POINTS),
                reports_to_parent=w.bool_(where, t, "reports_to_parent", False),
                quota=_quota(w, f"{where} quota", t.get("quota")),
                rank_with=w.str_(where, t, "rank_with") if "rank_with" in t else "",
            )
        )
    keys = {r.key for r in rules}
    for r in rules:
        if r.rank_with and (r.rank_with not in keys or r.rank_with == r.key):
            raise w.fail(f"[sequences.{r.key}] rank_with", "must name another sequence")
        if r.rank_with and next(o for o in rules if o.key == r.rank_with).rank_with:
            raise w.fail(f"[sequences.{r.key}] rank_with", "must name a sequence ranked itself")
    w.unique("[sequences]", [n for r in rules for n in (r.key, r.name, *r.aliases)])
    return tuple(rules)


def _unit_bonuses(
    w: _Where, data: dict[str, Any], sequences: tuple[SequenceRule, ...]
) -> tuple[UnitBonus, ...]:
    keys = {s.key for s in sequences}
    found = []
    for i, t in enumerate(
        w.tables("[[unit_bonuses]]", data.get("unit_bonuses"), {"name", "points", "sequences"}), 1
    ):
        where = f"[[unit_bonuses]] {i}"
        open_to = w.str_list(where, t, "sequences")
        for seq in open_to:
            if seq not in keys:
                raise w.fail(f"{where} sequences", f"{seq!r} is not one of [sequences]")
        found.append(
            UnitBonus(w.str_(where, t, "name"), w.int_(where, t, "points", 0, MAX_POINTS), open_to)
        )
    w.unique("[[unit_bonuses]]", [b.name for b in found])
    return tuple(found)


def _tasks(w: _Where, data: dict[str, Any], pubs: tuple[Publication, ...]) -> tuple[UnitTask, ...]:
    levels = {p.level for p in pubs if p.level}
    found = []
    for i, t in enumerate(
        w.tables("[[tasks]]", data.get("tasks"), {"unit", "points", "adopted"}), 1
    ):
        where = f"[[tasks]] {i}"
        adopted = t.get("adopted") or {}
        if not isinstance(adopted, dict):
            raise w.fail(f"{where} adopted", 'must be a table such as { "市" = 15 }')
        for level in adopted:
            if level not in levels:
                known = ", ".join(sorted(levels)) or "none"
                raise w.fail(
                    f"{where} adopted", f"names level {level!r}, which no publication has ({known})"
                )
        counts = tuple(
            (level, w.int_(f"{where} adopted", adopted, level, 0, MAX_POINTS)) for level in adopted
        )
        found.append(
            UnitTask(w.str_(where, t, "unit"), w.opt_int(where, t, "points", 0, MAX_POINTS), counts)
        )
    w.unique("[[tasks]]", [task.unit for task in found])
    return tuple(found)


def _awards(
    w: _Where, raw: dict[str, Any], sequences: tuple[SequenceRule, ...]
) -> tuple[Award, ...]:
    keys = {s.key for s in sequences}
    found = []
    award_keys = {"name", "kind", "quota", "per_sequence", "yuan"}
    for i, t in enumerate(w.tables("[[awards.quotas]]", raw.get("quotas"), award_keys), 1):
        where = f"[[awards.quotas]] {i}"
        per = w.table(f"{where} per_sequence", t.get("per_sequence"), keys, required=False)
        kind = _choice(w, where, t, "kind", ("unit", "officer"))
        quota = w.opt_int(where, t, "quota", 1, MAX_POINTS)
        if (quota is None) == (not per):
            raise w.fail(where, "needs either quota or per_sequence, not both")
        if kind == "officer" and per:
            raise w.fail(
                f"{where} per_sequence", "is for unit awards; an officer award has a quota"
            )
        found.append(
            Award(
                name=w.str_(where, t, "name"),
                kind=kind,
                quota=quota,
                per_sequence=tuple(
                    (seq, w.int_(f"{where} per_sequence", per, seq, 0, MAX_POINTS)) for seq in per
                ),
                yuan=w.opt_int(where, t, "yuan", 0, MAX_YUAN) or 0,
            )
        )
    w.unique("[[awards.quotas]]", [a.name for a in found])
    return tuple(found)


def _role(w: _Where, where: str, t: dict[str, Any]) -> str:
    role = w.str_(where, t, "notify")
    if role not in NOTIFY_ROLES:
        raise w.fail(f"{where} notify", f"must be one of {', '.join(NOTIFY_ROLES)}")
    return role


def _date(w: _Where, where: str, t: dict[str, Any], key: str) -> date | None:
    value = t.get(key)
    if value is None:
        return None
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise w.fail(f"{where} {key}", "must be a date such as 2027-03-01")


def parse_rulebook(data: dict[str, Any], source: str) -> Rulebook:
    w = _Where(source)
    unknown = set(data) - SECTIONS
    if unknown:
        raise RulebookError(f"rulebook {source}: unknown section [{sorted(unknown)[0]}]")
    meta = w.table(
        "[meta]",
        data.get("meta"),
        {"name", "title", "effective_from", "replaces", "tracking_prefix"},
    )
    prefix = w.str_("[meta]", meta, "tracking_prefix") if "tracking_prefix" in meta else "MR"
    if not prefix.isascii() or not prefix.isalpha() or len(prefix) > TRACKING_PREFIX_MAX:
        raise w.fail("[meta] tracking_prefix", f"must be 1 to {TRACKING_PREFIX_MAX} letters A–Z")
    limits = w.table(
        "[limits]", data.get("limits"), {"body_chars", "attachment_chars"}, required=False
    )
    cal = w.table("[calendar]", data.get("calendar"), {"year_start_month", "months_per_quarter"})
    months = w.int_("[calendar]", cal, "months_per_quarter", 1, 12)
    if 12 % months:
        raise w.fail("[calendar] months_per_quarter", "must divide 12")
    name = w.str_("[meta]", meta, "name")
    calendar = Calendar(w.int_("[calendar]", cal, "year_start_month", 1, 12), months)
    quarters = 12 // months

    clues = w.table("[clues]", data.get("clues"), {"points"}, required=False)
    for i, t in enumerate(data.get("deductions") or (), 1):
        if isinstance(t, dict) and "yuan" in t:
            raise RulebookError(f"rulebook {source}: unknown key [[deductions]] {i} yuan")
    deductions = tuple(
        Deduction(n, p) for n, p, _ in w.named_points("[[deductions]]", data.get("deductions"))
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
    sequences = _sequences(w, data)
    awards = w.table(
        "[awards]", data.get("awards"), {"names", "officers", "quotas"}, required=False
    )
    core = w.table("[core_team]", data.get("core_team"), {"size"}, required=False)
    solicit = w.table(
        "[solicitation]",
        data.get("solicitation"),
        {"late_deduction", "missing_deduction"},
        required=False,
    )
    named = {name_key(d.name) for d in deductions}
    late = (
        w.str_("[solicitation]", solicit, "late_deduction") if "late_deduction" in solicit else None
    )
    missing = (
        w.str_("[solicitation]", solicit, "missing_deduction")
        if "missing_deduction" in solicit
        else None
    )
    for key, value in (("late_deduction", late), ("missing_deduction", missing)):
        if value is not None and name_key(value) not in named:
            raise w.fail(f"[solicitation] {key}", f"{value!r} is not one of [[deductions]]")
    ranking = w.table("[ranking]", data.get("ranking"), {"metric"}, required=False)
    signoff = w.table("[signoff]", data.get("signoff"), {"required"}, required=False)
    required = w.str_list("[signoff]", signoff, "required") if signoff else None
    for element in required or ():
        if element not in SIGNOFF_ELEMENTS:
            raise w.fail("[signoff] required", f"{element!r} is not one of {SIGNOFF_ELEMENTS}")
    reports = w.table(
        "[reports]",
        data.get("reports"),
        {"monthly_deductions", "lagging_units", "payments"},
        required=False,
    )
    for seq in sequences:
        if seq.reports_to_parent and "parent_share_percent" not in direct:
            raise w.fail(
                f"[sequences.{seq.key}] reports_to_parent",
                "needs [direct_report] parent_share_percent",
            )
    pubs = _publications(w, data)
    bonuses = _bonuses(w, data, pubs)
    importance = _importance(w, data)
    if importance and "approver" not in (required or ()):
        raise w.fail("[[importance]]", 'needs "approver" in [signoff] required')
    return Rulebook(
        name=name,
        title=str(meta.get("title", name)),
        tracking_prefix=prefix.upper(),
        body_chars=w.opt_int("[limits]", limits, "body_chars", 1, 1_000_000) or 0,
        attachment_chars=w.opt_int("[limits]", limits, "attachment_chars", 1, 10_000_000) or 0,
        calendar=calendar,
        publications=pubs,
        bonuses=bonuses,
        importance=importance,
        excellence=_excellence(w, data, pubs, bonuses),
        clue_points=w.opt_int("[clues]", clues, "points", 0, MAX_POINTS),
        deductions=deductions,
        sequences=sequences,
        direct_share_percent=w.opt_int("[direct_report]", direct, "parent_share_percent", 0, 100)
        or 0,
        praise=praise,
        criticism=criticism,
        award_names=w.str_list("[awards]", awards, "names"),
        officer_award_names=w.str_list("[awards]", awards, "officers"),
        core_team_size=w.opt_int("[core_team]", core, "size", 0, MAX_POINTS) or 0,
        late_deduction=late,
        missing_deduction=missing,
        metric=_choice(w, "[ranking]", ranking, "metric", METRICS) if ranking else "points",
        unit_bonuses=_unit_bonuses(w, data, sequences),
        tasks=_tasks(w, data, pubs),
        awards=_awards(w, awards, sequences),
        required_signoff=tuple(required) if required is not None else SIGNOFF_DEFAULT,
        effective_from=_date(w, "[meta]", meta, "effective_from"),
        monthly_deductions=w.bool_("[reports]", reports, "monthly_deductions", False),
        lagging_units=w.opt_int("[reports]", reports, "lagging_units", 0, MAX_POINTS) or 0,
        payments=w.bool_("[reports]", reports, "payments", False),
        warnings=_warnings(w, data),
    )


MAX_REVISIONS = 20


def load_rulebook(name_or_path: str, base_dir: Path | None = None) -> Rulebook:
    """A shipped rulebook by name (`guangzhou-2004`) or a TOML file by path, with the rulebooks
    it replaces (`[meta] replaces`, followed back): each applies before the next one's
    `effective_from`, so a revision never rescores earlier periods."""
    chain: list[Rulebook] = []
    replaces: str | None = name_or_path
    while replaces is not None:
        if len(chain) >= MAX_REVISIONS:
            raise RulebookError(f"rulebook {name_or_path}: more than {MAX_REVISIONS} revisions")
        book, replaces, where = _load_one(replaces, base_dir)
        if any(b.name == book.name for b in chain):
            raise RulebookError(f"rulebook {where}: [meta] replaces goes round in a circle")
        if chain:
            newer = chain[-1]
            if book.calendar != newer.calendar:
                raise RulebookError(
                    f"rulebook {where}: its [calendar] differs from {newer.name}'s; a revision "
                    "keeps the assessment calendar"
                )
            if newer.effective_from is None or (
                book.effective_from is not None and book.effective_from >= newer.effective_from
            ):
                raise RulebookError(
                    f"rulebook {newer.name}: [meta] effective_from must be a date after "
                    f"{book.name}'s (in {where.name})"
                )
        base_dir = where.parent
        chain.append(book)
    newest = chain[0]
    if len(chain) == 1:
        return newest
    return replace(newest, earlier=tuple(chain[1:]))


def _load_one(name_or_path: str, base_dir: Path | None) -> tuple[Rulebook, str | None, Path]:
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
    book = parse_rulebook(data, path.name)
    meta = data.get("meta") or {}
    replaces = meta.get("replaces")
    if replaces is not None and (not isinstance(replaces, str) or not replaces.strip()):
        raise RulebookError(
            f"rulebook {path.name}: [meta] replaces must be a rulebook name or file"
        )
    return book, replaces.strip() if replaces else None, path
