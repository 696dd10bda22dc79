"""The rulebook (SPEC §5.2): scoring and limits as data, loaded from TOML and validated."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailroom.errors import UserError

RULEBOOK_DIR = Path(__file__).parent / "rulebooks"


class RulebookError(UserError):
    """A rulebook that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Calendar:
    year_start_month: int
    months_per_quarter: int


@dataclass(frozen=True)
class Rulebook:
    name: str
    title: str
    body_chars: int
    attachment_chars: int
    calendar: Calendar


def _int(where: str, table: dict[str, Any], key: str, lo: int, hi: int) -> int:
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise RulebookError(f"{where} {key} must be a whole number from {lo} to {hi}")
    return value


def _table(source: str, data: dict[str, Any], name: str, keys: set[str]) -> dict[str, Any]:
    table = data.get(name)
    if not isinstance(table, dict):
        raise RulebookError(f"rulebook {source}: [{name}] is missing")
    unknown = set(table) - keys
    if unknown:
        raise RulebookError(f"rulebook {source}: unknown key [{name}] {sorted(unknown)[0]}")
    return table


def parse_rulebook(data: dict[str, Any], source: str) -> Rulebook:
    known = {"meta", "limits", "calendar"}
    unknown = set(data) - known
    if unknown:
        raise RulebookError(f"rulebook {source}: unknown section [{sorted(unknown)[0]}]")
    meta = _table(source, data, "meta", {"name", "title"})
    limits = _table(source, data, "limits", {"body_chars", "attachment_chars"})
    cal = _table(source, data, "calendar", {"year_start_month", "months_per_quarter"})
    months = _int(f"rulebook {source}: [calendar]", cal, "months_per_quarter", 1, 12)
    if 12 % months:
        raise RulebookError(f"rulebook {source}: [calendar] months_per_quarter must divide 12")
    if not isinstance(meta.get("name"), str) or not meta["name"]:
        raise RulebookError(f"rulebook {source}: [meta] name must be a non-empty string")
    return Rulebook(
        name=meta["name"],
        title=str(meta.get("title", meta["name"])),
        body_chars=_int(f"rulebook {source}: [limits]", limits, "body_chars", 1, 1_000_000),
        attachment_chars=_int(
            f"rulebook {source}: [limits]", limits, "attachment_chars", 1, 10_000_000
        ),
        calendar=Calendar(
            year_start_month=_int(f"rulebook {source}: [calendar]", cal, "year_start_month", 1, 12),
            months_per_quarter=months,
        ),
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
