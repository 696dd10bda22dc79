"""Demo registries (`init --demo [--rulebook NAME]`): each shipped rulebook's sample of units
and people, with the sequence membership its plan gives. Guangzhou's sits in `demo/` itself,
every other office's in `demo/<rulebook name>/`."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from ledger.registry import ImportSummary, import_registry
from ledger.rulebook import Rulebook, load_rulebook
from parser.errors import UserError

DEMO_DIR = Path(__file__).parent / "demo"
DEFAULT_DEMO = "guangzhou-2004"
DEMO_FILES = (DEMO_DIR / "units.csv", DEMO_DIR / "people.csv")


def demo_names() -> list[str]:
    return sorted([DEFAULT_DEMO, *(p.name for p in DEMO_DIR.iterdir() if p.is_dir())])


def demo_files(name: str) -> tuple[Path, Path]:
    """The units and people files of a rulebook's demo registry."""
    if name == DEFAULT_DEMO:
        return DEMO_FILES
    folder = DEMO_DIR / name
    if not (folder / "units.csv").is_file():
        raise UserError(
            f"no demo registry for rulebook {name!r} (there is: {', '.join(demo_names())})"
        )
    return folder / "units.csv", folder / "people.csv"


def load_demo(session: Session, rulebook: Rulebook | None = None) -> ImportSummary:
    """Import a rulebook's demo units and people (Guangzhou's by default); again, no change."""
    rulebook = rulebook or load_rulebook(DEFAULT_DEMO)
    return import_registry(session, demo_files(rulebook.name), rulebook)
