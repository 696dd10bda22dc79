"""What the commands share: JSON and table output (CJK-aware), times and periods from the
command line, who records an event."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from unicodedata import east_asian_width

from ledger.calendar import Period, parse_period, quarter_of
from mailroom.app import App
from mailroom.errors import UserError


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def _cells(text: str) -> int:
    """Columns a terminal gives `text`: CJK and full-width characters take two."""
    return sum(2 if east_asian_width(c) in "WF" else 1 for c in text)


def shorten(text: str, columns: int = 40) -> str:
    """`text` within `columns` terminal columns, cut with an ellipsis (…) when longer.

    A cut inside a Latin word goes back to the space before it, if that keeps most of the text.
    """
    if _cells(text) <= columns:
        return text
    kept, used = [], 1  # the ellipsis takes one column
    for ch in text:
        used += _cells(ch)
        if used > columns:
            break
        kept.append(ch)
    cut = "".join(kept)
    rest = text[len(cut) :]
    if cut[-1:].isascii() and cut[-1:].isalnum() and rest[:1].isascii() and rest[:1].isalnum():
        space = cut.rfind(" ")
        if space >= len(cut) * 2 // 3:
            cut = cut[:space]
    return cut.rstrip() + "…"


def table(rows: list[list[str]], headers: list[str]) -> None:
    width = _cells
    all_rows = [headers, *rows]
    widths = [max(width(r[i]) for r in all_rows) for i in range(len(headers))]
    for r in all_rows:
        print(
            "  ".join(cell + " " * (widths[i] - width(cell)) for i, cell in enumerate(r)).rstrip()
        )
    if not rows:
        print("(none)")


def number(points: Decimal | int) -> int | float:
    """Points for JSON: whole numbers stay whole; a 直报点 share may leave a half (18.5)."""
    value = Decimal(points)
    return int(value) if value == value.to_integral_value() else float(value)


def instant(app: App, text: str | None, flag: str) -> datetime:
    """An ISO 8601 time from the command line (the configured zone if none given); now if unset."""
    if not text:
        return datetime.now(UTC)
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{flag} {text!r} is not an ISO 8601 time") from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=app.config.zone)
    return instant


def by(args: argparse.Namespace) -> str:
    return str(args.by or getpass.getuser())


def period_arg(app: App, text: str | None) -> Period:
    zone, calendar = app.config.zone, app.rulebook.calendar
    if not text:
        text = quarter_of(datetime.now(UTC), zone, calendar).label
    try:
        return parse_period(text, zone, calendar)
    except ValueError as exc:
        raise UserError(f"--period {exc}") from None
