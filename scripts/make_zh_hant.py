"""Make the Traditional Chinese language set (zh-Hant) from the Simplified one (zh-Hans).

    .venv/bin/python scripts/make_zh_hant.py           # write the files
    .venv/bin/python scripts/make_zh_hant.py --check   # exit 1 if they are out of date

For each wing (ingest, reports) it first writes `templates/zh-Hans/words.toml`: every fixed
text the wing's code passes to `words(…)`, `.all(…)` or `N_(…)`, found by reading the code.
Then every file of `templates/zh-Hans/` is converted by OpenCC's `s2tw` (Taiwan standard
characters, words kept: 信息 stays 信息, 为 becomes 為 and not OpenCC's own 爲) into
`templates/zh-Hant/`, followed by the corrections below. Only Chinese characters change: the
Jinja2 syntax, the .toml keys and the {placeholders} are checked to come out unchanged.

Edit the zh-Hans files (or the code), never the zh-Hant ones, then run this again: the test
suite checks that the committed zh-Hant set is what this makes.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import tomllib
from pathlib import Path

import opencc
from jinja2 import Environment

REPO = Path(__file__).resolve().parent.parent
WINGS = ("ingest", "reports")
SOURCE, TARGET = "zh-Hans", "zh-Hant"
CONFIG = "s2tw.json"
WORDS = "words.toml"

# Where s2tw picks the wrong character for the sense these texts use (reviewed by eye).
CORRECTIONS = {
    "審籤": "審簽",  # 审签, to review and sign off an item: 簽 (sign), not 籤 (slip, label)
    "審 籤 人": "審 簽 人",  # the same, spaced out to line up with 四字 labels
    "回復": "回覆",  # 回复 here is always to reply (回覆): never to restore (回復) …
    "回複": "回覆",  # … nor to duplicate (複)
}

MARKERS = {"words", "w", "all", "N_"}  # the calls whose literal arguments are fixed texts


def _cjk(text: str) -> bool:
    return any("\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff" for c in text)


def fixed_texts(wing: str) -> list[str]:
    """The Simplified texts a wing's code looks up in its language set, sorted."""
    found: set[str] = set()
    for path in sorted((REPO / wing).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name not in MARKERS:
                continue
            for arg in node.args:
                for inner in ast.walk(arg):
                    text = inner.value if isinstance(inner, ast.Constant) else None
                    if isinstance(text, str) and _cjk(text):
                        found.add(text)
    return sorted(found)


def words_toml(table: dict[str, str], wing: str, made_from: str) -> str:
    lines = [
        f"# The fixed words of the {wing} code in this language set (mail subjects, headlines,",
        "# table headers), keyed by their Simplified text as the code writes them.",
        made_from,
        "",
    ]
    for key, value in table.items():
        lines.append(
            f"{json.dumps(key, ensure_ascii=False)} = {json.dumps(value, ensure_ascii=False)}"
        )
    return "\n".join(lines) + "\n"


class Converter:
    def __init__(self) -> None:
        self.cc = opencc.OpenCC(CONFIG)

    def __call__(self, text: str) -> str:
        out = self.cc.convert(text)
        for wrong, right in CORRECTIONS.items():
            out = out.replace(wrong, right)
        return out


def _syntax(source: str) -> list[tuple[str, str]]:
    """A template's tokens without its text: what the conversion must leave alone."""
    return [
        (kind, value)
        for _, kind, value in Environment().lex(source)
        if kind not in ("data", "string")
    ]


def _shape(value: object) -> object:
    """A TOML table's keys (nested), with each text's Jinja syntax and {placeholders}."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, str):
        return _syntax(value), sorted(re.findall(r"\{\w*\}", value))
    return value


def converted(wing: str, name: str, source: str, convert: Converter) -> str:
    if name == WORDS:  # the keys are the code's: only the values are converted
        table = tomllib.loads(source)
        made = f"# Made by scripts/make_zh_hant.py from {SOURCE}/{WORDS}: do not edit."
        out = words_toml({k: convert(v) for k, v in table.items()}, wing, made)
    else:
        out = convert(source)
    if name.endswith(".j2"):
        if _syntax(out) != _syntax(source):
            raise SystemExit(f"{name}: the conversion changed the template's syntax")
    else:
        if _shape(tomllib.loads(out)) != _shape(tomllib.loads(source)):
            raise SystemExit(f"{name}: the conversion changed the table's keys or placeholders")
    return out


def wanted() -> dict[Path, str]:
    """Every generated file and the text it should have."""
    convert = Converter()
    files: dict[Path, str] = {}
    for wing in WINGS:
        base = REPO / wing / "templates"
        texts = fixed_texts(wing)
        made = "# Made by scripts/make_zh_hant.py from the code: do not edit."
        files[base / SOURCE / WORDS] = words_toml({t: t for t in texts}, wing, made)
        sources = {p.name: p.read_text(encoding="utf-8") for p in (base / SOURCE).iterdir()}
        sources[WORDS] = files[base / SOURCE / WORDS]
        for name, text in sorted(sources.items()):
            files[base / TARGET / name] = converted(wing, name, text, convert)
    return files


def stale() -> list[Path]:
    """zh-Hant files that no zh-Hans file makes any more."""
    made = wanted()
    return [
        p
        for wing in WINGS
        for p in sorted((REPO / wing / "templates" / TARGET).glob("*"))
        if p not in made
    ]


def main(argv: list[str]) -> int:
    files = wanted()
    differ = [
        p for p, text in files.items() if not p.is_file() or p.read_text(encoding="utf-8") != text
    ]
    extra = stale()
    if "--check" in argv:
        for p in [*differ, *extra]:
            print(f"out of date: {p.relative_to(REPO)}", file=sys.stderr)
        return 1 if differ or extra else 0
    for p in differ:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(files[p], encoding="utf-8")
        print(f"wrote {p.relative_to(REPO)}")
    for p in extra:
        p.unlink()
        print(f"removed {p.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
