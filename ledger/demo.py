"""The demo registry: a sample of the Guangzhou 2004 units and their people (`init --demo`)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from ledger.registry import ImportSummary, import_registry

DEMO_DIR = Path(__file__).parent / "demo"
DEMO_FILES = (DEMO_DIR / "units.csv", DEMO_DIR / "people.csv")


def load_demo(session: Session) -> ImportSummary:
    """Import the demo units and people; loading it again changes nothing."""
    return import_registry(session, DEMO_FILES)
