"""The install layout: every folder of data files the code reads is declared, so setuptools
installs it (and says nothing about it at set-up)."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from tests.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def test_every_data_file_inside_a_package_is_declared_package_data() -> None:
    packages = set(SETUPTOOLS["packages"])
    package_data: dict[str, list[str]] = SETUPTOOLS["package-data"]
    undeclared = []
    for top in {p.split(".")[0] for p in packages}:
        for path in sorted((REPO / top).rglob("*")):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(REPO)
            # The package a data file belongs to: the deepest declared one above it.
            parts = relative.parts[:-1]
            owners = [".".join(parts[:n]) for n in range(len(parts), 0, -1)]
            owner = next((o for o in owners if o in packages), None)
            if owner is None:
                undeclared.append(f"{relative} (no declared package)")
                continue
            inside = relative.relative_to(*owner.split(".")).as_posix()
            patterns = package_data.get(owner, [])
            if not any(fnmatch.fnmatch(inside, pattern) for pattern in patterns):
                undeclared.append(f"{relative} (not in package-data of {owner})")
            # A folder on the way that is importable by name must be a declared package
            # itself, or setuptools warns at every install that it is installed as data.
            for n in range(1, len(parts) + 1):
                if not all(part.isidentifier() for part in parts[:n]):
                    break
                if ".".join(parts[:n]) not in packages:
                    undeclared.append(f"{Path(*parts[:n])}/ (a folder of data, not in packages)")
    assert not undeclared, sorted(set(undeclared))


def test_declared_packages_exist() -> None:
    for package in SETUPTOOLS["packages"]:
        assert (REPO / Path(*package.split("."))).is_dir(), package
