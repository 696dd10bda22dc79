"""Profiles of `mailroom serve` under load, with py-spy (the `bench` extra), and their summary."""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")
PROJECT = re.compile(r"[(/](mailroom|ingest|parser|ledger|reports)/")


def py_spy() -> str:
    """The py-spy binary of this virtualenv (installed with `pip install -e '.[bench]'`)."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise RuntimeError("py-spy is not installed: pip install -e '.[bench]'")
    return found


def _frames(line: str) -> tuple[list[str], int]:
    stack, _, count = line.rpartition(" ")
    return stack.split(";"), int(count)


def top_frames(raw: Path, n: int = 15) -> list[str]:
    """The functions with most samples on top of the stack (self), and the project's functions
    with most samples anywhere on the stack (inclusive), from a py-spy `--format raw` file."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        frames, count = _frames(line)
        total += count
        own[frames[-1]] += count
        # One entry per function (py-spy names each line): drop the line number.
        for frame in {_LINE.sub(")", f) for f in frames}:
            if PROJECT.search(frame):
                inclusive[frame] += count
    if not total:
        return ["(no samples)"]
    out = [f"{total} samples; self time:"]
    out += [f"  {c / total:6.1%}  {f}" for f, c in own.most_common(n)]
    out.append("project functions, inclusive:")
    out += [f"  {c / total:6.1%}  {f}" for f, c in inclusive.most_common(n)]
    return out


if __name__ == "__main__":
    print("\n".join(top_frames(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 15)))
