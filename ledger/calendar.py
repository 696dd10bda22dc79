"""The assessment calendar (SPEC §5.3): years and quarters in the configured zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo

from ledger.rulebook import Calendar


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    number: int

    @property
    def label(self) -> str:
        return f"{self.year}Q{self.number}"


def quarter_of(instant: datetime, zone: tzinfo, calendar: Calendar) -> Quarter:
    """The assessment quarter an aware instant falls in, seen in `zone`.

    With the year starting in December, Dec 2025 – Feb 2026 is 2026Q1.
    """
    if instant.tzinfo is None:
        raise ValueError("quarter_of needs an aware datetime")
    local = instant.astimezone(zone)
    offset = (local.month - calendar.year_start_month) % 12
    year = local.year + (
        1 if calendar.year_start_month != 1 and local.month >= calendar.year_start_month else 0
    )
    return Quarter(year=year, number=offset // calendar.months_per_quarter + 1)


@dataclass(frozen=True)
class Period:
    """A span of the calendar: a quarter (`2026Q1`), a year (`2026`) or a month (`2026-03`)."""

    label: str
    start: datetime  # inclusive, aware
    end: datetime  # exclusive, aware

    @property
    def kind(self) -> str:
        """`quarter`, `year` or `month` (which target applies)."""
        if "Q" in self.label:
            return "quarter"
        return "month" if "-" in self.label else "year"

    @property
    def year(self) -> int:
        """The assessment year of a quarter or a year (the calendar year of a month)."""
        return int(self.label[:4])


def _month_start(year: int, month: int, zone: tzinfo) -> datetime:
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=zone)


def parse_period(label: str, zone: tzinfo, calendar: Calendar) -> Period:
    """`2026Q1`, `2026` or `2026-03` in the configured zone; ValueError names the problem."""
    text = label.strip().upper()
    start_month = calendar.year_start_month
    # The assessment year Y starts in start_month of Y-1 (unless the year starts in January).
    first_year_offset = 0 if start_month == 1 else -1
    m = re.fullmatch(r"(\d{4})Q(\d{1,2})", text)
    if m:
        year, number = int(m.group(1)), int(m.group(2))
        quarters = 12 // calendar.months_per_quarter
        if not 1 <= number <= quarters:
            raise ValueError(f"{label!r}: quarter must be 1 to {quarters}")
        month = start_month + (number - 1) * calendar.months_per_quarter
        start = _month_start(year + first_year_offset, month, zone)
        end = _month_start(year + first_year_offset, month + calendar.months_per_quarter, zone)
        return Period(f"{year}Q{number}", start, end)
    m = re.fullmatch(r"(\d{4})", text)
    if m:
        year = int(m.group(1))
        start = _month_start(year + first_year_offset, start_month, zone)
        end = _month_start(year + first_year_offset, start_month + 12, zone)
        return Period(str(year), start, end)
    m = re.fullmatch(r"(\d{4})-(\d{1,2})", text)
    if m:
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12:
            raise ValueError(f"{label!r}: month must be 01 to 12")
        return Period(
            f"{year}-{month:02d}",
            _month_start(year, month, zone),
            _month_start(year, month + 1, zone),
        )
    raise ValueError(f"{label!r} is not a period (use 2026Q1, 2026 or 2026-03)")
