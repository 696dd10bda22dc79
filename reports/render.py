"""HTML and plain text of reports and notices, from the Jinja2 templates an office may edit.

The chart of points against target is an HTML table of coloured cells with inline styles: it
needs no image, so Outlook (Word's engine, which blocks images from outside senders by default),
Foxmail and webmail (which strip `<style>`) all show it as it is meant. The plain-text part
draws the same bars with characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from unicodedata import east_asian_width

from jinja2 import Environment, StrictUndefined, select_autoescape

from ledger.wording import TemplateSet
from reports.model import Report, ReportHeader, StandingRow, StreakNotice

TEMPLATE_DIR = Path(__file__).parent / "templates"


def template_set(language: str = "zh-Hans", office_dir: Path | None = None) -> TemplateSet:
    """This wing's templates in `language`, under the office's `<office_dir>/reports/`."""
    return TemplateSet(TEMPLATE_DIR, language, office_dir, "reports")


BAR_PIXELS = 360
BAR_CHARS = 24

MET = "#2e7d32"  # target reached: dark green up to the target …
OVER = "#81c784"  # … light green beyond it
SHORT = "#c62828"  # target missed: red for the points …
GAP = "#f3d3d3"  # … pale red for what is missing
NONE = "#1565c0"  # no target (a period without one)


def points_text(value: Decimal | int | None) -> str:
    """`18`, `4.5`, or `—` for no value: never `18.00` or `1E+1`."""
    if value is None:
        return "—"
    number = Decimal(value)
    if number == number.to_integral_value():
        return str(number.quantize(Decimal(1)))
    return format(number.normalize(), "f")


def rate_text(value: Decimal | None) -> str:
    return "—" if value is None else f"{value}%"


def display_width(text: str) -> int:
    return sum(2 if east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: object, width: int, right: bool = False) -> str:
    """Pad to a display width, counting CJK characters as two columns."""
    value = str(text)
    space = " " * max(width - display_width(value), 0)
    return space + value if right else value + space


@dataclass(frozen=True)
class Bar:
    """One unit's bar: coloured segments (pixels or characters) and the numbers beside it."""

    name: str
    points: str
    target: str
    met: bool | None
    segments: tuple[tuple[int, str], ...]  # (pixels, colour)
    text: str  # the same bar in characters


def bars(rows: tuple[StandingRow, ...]) -> list[Bar]:
    """Bars on one scale for a table: up to the target and beyond it, or short of it."""
    top = max([max(r.points, r.target or Decimal(0)) for r in rows] + [Decimal(1)])

    def px(value: Decimal) -> int:
        return int((value * BAR_PIXELS / top).to_integral_value())

    def ch(value: Decimal) -> int:
        return int((value * BAR_CHARS / top).to_integral_value())

    out = []
    for r in rows:
        points = max(r.points, Decimal(0))
        if r.target is None:
            parts = [(points, NONE)]
            text = "■" * ch(points)
        elif points >= r.target:
            parts = [(r.target, MET), (points - r.target, OVER)]
            text = "■" * ch(r.target) + "▣" * (ch(points) - ch(r.target))
        else:
            parts = [(points, SHORT), (r.target - points, GAP)]
            text = "■" * ch(points) + "□" * (ch(r.target) - ch(points))
        out.append(
            Bar(
                name=r.unit_name,
                points=points_text(r.points),
                target=points_text(r.target),
                met=r.met,
                segments=tuple((px(v), colour) for v, colour in parts if px(v) > 0),
                text=text,
            )
        )
    return out


class ReportWriter:
    """Renders reports and notices in one language set (packaged `zh-Hans` by default)."""

    def __init__(self, templates: TemplateSet | None = None) -> None:
        self.templates = templates or template_set()
        self.words = self.templates.words()
        loader = self.templates.loader()
        common: dict[str, Any] = {
            "undefined": StrictUndefined,
            "keep_trailing_newline": True,
            "trim_blocks": True,
            "lstrip_blocks": True,
        }
        self.html_env = Environment(loader=loader, autoescape=select_autoescape(["j2"]), **common)
        self.text_env = Environment(loader=loader, autoescape=False, **common)
        for env in (self.html_env, self.text_env):
            # `words`: a fixed text of the code (a leader's title) in this language set.
            env.filters.update(pts=points_text, rate=rate_text, pad=pad, words=self.words)
            env.globals.update(bars=bars, colours={"met": MET, "over": OVER, "short": SHORT})

    def html(self, report: Report) -> str:
        kind = report.header.kind
        return self.html_env.get_template(f"{kind}.html.j2").render(report=report)

    def text(self, report: Report) -> str:
        kind = report.header.kind
        return self.text_env.get_template(f"{kind}.txt.j2").render(report=report)

    def notice_subject(self, notice: StreakNotice, header: ReportHeader) -> str:
        what = self.words("通报表扬" if notice.kind == "praise" else "通报批评")
        return self.words(
            "关于{unit}{year}年度政务信息工作的{what}",
            unit=notice.unit_name,
            year=header.period[:4],
            what=what,
        )

    def notice(
        self, notice: StreakNotice, header: ReportHeader, leader_name: str
    ) -> tuple[str, str]:
        """(plain text, HTML) of a streak notice to one of the unit's leaders."""
        context = {
            "notice": notice,
            "header": header,
            "leader_name": leader_name,
            "year": header.period[:4],
            "subject": self.notice_subject(notice, header),
        }
        text = self.text_env.get_template("notice.txt.j2").render(context)
        html = self.html_env.get_template("notice.html.j2").render(context)
        return text, html

    def warning(self, context: dict[str, Any]) -> tuple[str, str]:
        """(plain text, HTML) of an early warning to a lagging unit (`reports.warnings`)."""
        text = self.text_env.get_template("warning.txt.j2").render(context)
        html = self.html_env.get_template("warning.html.j2").render(context)
        return text, html
