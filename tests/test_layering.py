"""The house's floors (SPEC §2): each package imports only the packages below it.

    parser  ←  ledger  ←  ingest, reports, web, migrations  ←  mailroom (the composition root)

`parser/` also stays pure (tests/test_parser_imports.py). Lazy imports inside functions count
as much as those at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

FLOOR = {
    "parser": 0, "ledger": 1, "ingest": 2, "reports": 2, "web": 2, "migrations": 2, "mailroom": 3,
}  # fmt: skip


def project_imports(source: str) -> set[str]:
    """The project's packages a module's source imports (anywhere in it)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        out.update(name.split(".")[0] for name in names if name.split(".")[0] in FLOOR)
    return out


def climbs(package: str, source: str) -> set[str]:
    """What a module of `package` imports that is not below it (nor itself)."""
    return {
        other
        for other in project_imports(source)
        if other != package and FLOOR[other] >= FLOOR[package]
    }


def modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FLOOR))
def test_a_package_imports_only_the_floors_below_it(package: str) -> None:
    found = {
        str(path.relative_to(REPO)): sorted(climbs(package, path.read_text(encoding="utf-8")))
        for path in modules(package)
    }
    assert {path: names for path, names in found.items() if names} == {}


def test_the_check_catches_an_import_that_climbs() -> None:
    planted = (
        "from ingest.pipeline import Pipeline\n\ndef f():\n    from mailroom.config import Config\n"
    )
    assert climbs("ingest", planted) == {"mailroom"}
    assert climbs("ledger", planted) == {"ingest", "mailroom"}
    assert climbs("reports", "import ingest.smtp\n") == {"ingest"}  # siblings do not mix
    assert climbs("mailroom", planted) == set()
