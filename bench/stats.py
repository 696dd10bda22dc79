"""Figures of a bench run: medians with min and max, ratios to the baseline, and the table."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0–100) by the nearest-rank method: a value that was measured."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Target:
    """What the issue asks of a figure: `value <op> bound`, on the figure itself or its ratio."""

    op: Literal[">=", "<="]
    bound: float
    on: Literal["value", "ratio"] = "value"

    def met(self, value: float) -> bool:
        return value >= self.bound if self.op == ">=" else value <= self.bound

    def describe(self, unit: str) -> str:
        sign = "≥" if self.op == ">=" else "≤"
        if self.on == "ratio":
            return f"ratio {sign} {self.bound:.0%}"
        return f"{sign} {_fmt(self.bound)} {unit}".rstrip()


@dataclass
class Row:
    """One line of the table: a measure taken in several runs, and its baseline's runs.

    Ratios are paired: run i of the measure against run i of the baseline, taken back to back.
    """

    bench: str
    measure: str
    unit: str
    runs: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    baseline_name: str = ""
    target: Target | None = None
    skipped: str | None = None
    note: str = ""

    @property
    def ratios(self) -> list[float]:
        return [m / b for m, b in zip(self.runs, self.baseline, strict=False) if b]

    def judged(self) -> bool | None:
        if self.target is None or self.skipped or not self.runs:
            return None
        if self.target.on == "ratio":
            return self.target.met(statistics.median(self.ratios)) if self.ratios else None
        return self.target.met(statistics.median(self.runs))

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "bench": self.bench,
            "measure": self.measure,
            "unit": self.unit,
            "runs": self.runs,
            "note": self.note,
        }
        if self.skipped:
            out["skipped"] = self.skipped
            return out
        if self.runs:
            out.update(median=statistics.median(self.runs), min=min(self.runs), max=max(self.runs))
        if self.baseline:
            out.update(
                baseline=self.baseline_name,
                baseline_runs=self.baseline,
                baseline_median=statistics.median(self.baseline),
                ratios=self.ratios,
                ratio_median=statistics.median(self.ratios) if self.ratios else None,
            )
        if self.target:
            out["target"] = self.target.describe(self.unit)
            out["met"] = self.judged()
        return out


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _ratio(value: float, unit: str) -> str:
    """Rates as a share of the baseline (61%); times and sizes as a multiple of it (×3.2)."""
    if unit.endswith("/s"):
        return f"{value:.0%}"
    return f"×{value:.1f}" if value < 100 else f"×{value:.0f}"


def _width(text: str) -> int:
    from unicodedata import east_asian_width

    return sum(2 if east_asian_width(c) in "WF" else 1 for c in text)


def render(rows: Sequence[Row]) -> str:
    """The table, as Markdown (readable in a terminal and in the README)."""
    headers = ["#", "measure", "median", "min – max", "baseline", "ratio (min – max)", "target"]
    lines: list[list[str]] = []
    for row in rows:
        if row.skipped:
            why = row.skipped if row.skipped.startswith("FAILED") else f"skipped: {row.skipped}"
            lines.append([row.bench, row.measure, "—", "—", "—", "—", why])
            continue
        if not row.runs:
            lines.append([row.bench, row.measure, "—", "—", "—", "—", "no runs"])
            continue
        unit = f" {row.unit}" if row.unit else ""
        median = _fmt(statistics.median(row.runs)) + unit
        spread = f"{_fmt(min(row.runs))} – {_fmt(max(row.runs))}"
        base = ratio = ""
        if row.baseline:
            base = f"{_fmt(statistics.median(row.baseline))}{unit} {row.baseline_name}".strip()
            r = row.ratios
            if r:
                ratio = f"{_ratio(statistics.median(r), row.unit)} "
                ratio += f"({_ratio(min(r), row.unit)} – {_ratio(max(r), row.unit)})"
        target = ""
        if row.target:
            met = row.judged()
            verdict = "met" if met else ("missed" if met is False else "?")
            target = f"{row.target.describe(row.unit)}: {verdict}"
        lines.append([row.bench, row.measure, median, spread, base, ratio, target])
    widths = [max(_width(x) for x in col) for col in zip(headers, *lines, strict=False)]

    def fmt_line(cells: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(c + " " * (w - _width(c)) for c, w in zip(cells, widths, strict=True))
            + " |"
        )

    out = [fmt_line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(fmt_line(line) for line in lines)
    return "\n".join(out)
