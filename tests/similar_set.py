"""The duplicate-detection test set (tests/data/similar/): 20 政务信息 items, each with three
rewrites a unit would send of another unit's item (撒网式报送), and an unrelated item of
another unit on the same topic.

Each topic file holds:
- `base`: the item as its unit wrote it (300–410 characters);
- `edited`: a new title and a handful of phrases reworded (`edits`: [old, new] pairs);
- `shortened`: written anew from the base at 40–55 % of its length, with a new title;
- `relayed`: the base's paragraphs in another order (`order`), the unit's self-references
  reworded (`edits`), sent by a third unit;
- `unrelated`: one item (or more) of another unit on the same topic, with its own facts.

Within a topic every version comes from a different unit; the four versions of one base are
duplicates of each other (6 pairs a topic, 120 in all), every other pair is not.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SET = Path(__file__).parent / "data" / "similar"
VERSIONS = ("base", "edited", "shortened", "relayed")


@dataclass(frozen=True)
class Version:
    topic: str  # the file's stem, e.g. 01_flood
    kind: str  # base, edited, shortened, relayed, unrelated
    unit: str
    title: str
    body: str

    def duplicates(self, other: Version) -> bool:
        return self.topic == other.topic and {self.kind, other.kind} <= set(VERSIONS)


def _edited(body: str, edits: list[list[str]]) -> str:
    for old, new in edits:
        if old not in body:
            raise ValueError(f"edit {old!r} not in the text")
        body = body.replace(old, new, 1)
    return body


def _topic(path: Path) -> list[Version]:
    data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    base = data["base"]
    body = base["body"].strip()
    paragraphs = body.split("\n")
    edited, shortened, relayed = data["edited"], data["shortened"], data["relayed"]
    if sorted(relayed["order"]) != list(range(len(paragraphs))):
        raise ValueError(f"{path.name}: relayed.order is not a permutation of the paragraphs")
    reordered = "\n".join(paragraphs[i] for i in relayed["order"])
    topic = path.stem
    versions = [
        Version(topic, "base", base["unit"], base["title"], body),
        Version(topic, "edited", edited["unit"], edited["title"], _edited(body, edited["edits"])),
        Version(topic, "shortened", shortened["unit"], shortened["title"],
                shortened["body"].strip()),
        Version(topic, "relayed", relayed["unit"], relayed["title"],
                _edited(reordered, relayed["edits"])),
    ] + [
        Version(topic, "unrelated", u["unit"], u["title"], u["body"].strip())
        for u in data["unrelated"]
    ]  # fmt: skip
    units = [v.unit for v in versions]
    if len(set(units)) != len(units):
        raise ValueError(f"{path.name}: two versions of one topic come from one unit")
    return versions


def load() -> list[Version]:
    return [v for path in sorted(SET.glob("*.toml")) for v in _topic(path)]
