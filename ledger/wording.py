"""Language sets and the office's own templates: where a wing's words come from.

Each wing that writes to people (`ingest/templates/`, `reports/templates/`) ships one folder
per language set: `zh-Hans` (the source) and `zh-Hant` (made from it by
`scripts/make-zh-hant`). A set holds the wing's Jinja2 templates, its tables of texts (.toml)
and `words.toml`, the fixed words its Python code puts into mail (subjects, headlines, table
headers), keyed by their Simplified text as the code writes them.

An office may keep a folder of its own (`[templates] dir`): a file at `<dir>/<wing>/<name>`
is used instead of the packaged `<name>`; the rest still come from the package. A .toml file
there is laid over the packaged one key by key, so it need hold only what it changes.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader

LANGUAGES = ("zh-Hans", "zh-Hant")  # the packaged sets: Simplified, Traditional
SOURCE_LANGUAGE = "zh-Hans"
WORDS_FILE = "words.toml"


def merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `over` laid on it, tables merged key by key."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


class Words:
    """The fixed words of a wing's code in one language: `words("回执：{no}", no=…)` gives
    the set's text for that Simplified text (itself where the set has none), its `{names}`
    filled. Values are put in as they are, never read as format strings themselves."""

    def __init__(self, table: Mapping[str, str]) -> None:
        self.table = dict(table)

    def __call__(self, text: str, /, **values: object) -> str:
        found = self.table.get(text, text)
        return found.format_map(values) if values else found

    def all(self, *texts: str) -> list[str]:
        return [self(t) for t in texts]


IDENTITY = Words({})


def N_(text: str) -> str:
    """Marks a fixed text kept in a constant for `words.toml`; it is looked up where used."""
    return text


@dataclass(frozen=True)
class TemplateSet:
    """One wing's templates and tables in one language set, under the office's own folder."""

    package_dir: Path  # the wing's `templates/` folder
    language: str = SOURCE_LANGUAGE
    office_dir: Path | None = None  # the office's `[templates] dir`, or None
    wing: str = ""  # the office folder's subfolder for this wing: ingest, reports

    @property
    def folders(self) -> list[Path]:
        """Where a file is looked for, first found first."""
        own = [self.office_dir / self.wing] if self.office_dir is not None else []
        return [*own, self.package_dir / self.language]

    def loader(self) -> FileSystemLoader:
        return FileSystemLoader([str(f) for f in self.folders])

    def table(self, name: str) -> dict[str, Any]:
        """A .toml table of the set, with the office's file of the same name laid over it."""
        out: dict[str, Any] = {}
        for folder in reversed(self.folders):
            path = folder / name
            if path.is_file():
                out = merged(out, tomllib.loads(path.read_text(encoding="utf-8")))
        return out

    def words(self) -> Words:
        return Words(self.table(WORDS_FILE))
