"""The assessment calendar (SPEC §5.3) at its edges, in Shanghai and in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from ledger.calendar import parse_period, quarter_of
from ledger.rulebook import load_rulebook

SHANGHAI = ZoneInfo("Asia/Shanghai")
CAL = load_rulebook("guangzhou-2004").calendar


@pytest.mark.parametrize(
    ("instant", "label"),
    [
        (datetime(2026, 11, 30, 23, 59, 59, tzinfo=SHANGHAI), "2026Q4"),
        (datetime(2026, 12, 1, 0, 0, 0, tzinfo=SHANGHAI), "2027Q1"),
        # The same two instants given in UTC (Shanghai is UTC+8) land in the same quarters.
        (datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC), "2026Q4"),
        (datetime(2026, 11, 30, 16, 0, 0, tzinfo=UTC), "2027Q1"),
        (datetime(2025, 12, 1, 0, 0, tzinfo=SHANGHAI), "2026Q1"),
        (datetime(2026, 2, 28, 23, 59, 59, tzinfo=SHANGHAI), "2026Q1"),
        (datetime(2026, 3, 1, tzinfo=SHANGHAI), "2026Q2"),
        (datetime(2026, 5, 31, 23, 0, tzinfo=SHANGHAI), "2026Q2"),
        (datetime(2026, 6, 1, tzinfo=SHANGHAI), "2026Q3"),
        (datetime(2026, 9, 1, tzinfo=SHANGHAI), "2026Q4"),
    ],
)
def test_quarter_of_an_instant(instant: datetime, label: str) -> None:
    assert quarter_of(instant, SHANGHAI, CAL).label == label


@pytest.mark.parametrize(
    ("instant", "label"),
    [
        (datetime(2026, 11, 30, 23, 59, 59, tzinfo=SHANGHAI), "2026Q4"),
        (datetime(2026, 11, 30, 16, 0, 0, tzinfo=UTC), "2027Q1"),
    ],
)
def test_periods_contain_what_quarter_of_says(instant: datetime, label: str) -> None:
    quarter = parse_period(label, SHANGHAI, CAL)
    year = parse_period(label[:4], SHANGHAI, CAL)
    assert quarter.start <= instant < quarter.end
    assert year.start <= instant < year.end
    assert (quarter.kind, year.kind, year.year) == ("quarter", "year", int(label[:4]))


def test_period_bounds() -> None:
    q1 = parse_period("2026Q1", SHANGHAI, CAL)
    assert (q1.start, q1.end) == (
        datetime(2025, 12, 1, tzinfo=SHANGHAI),
        datetime(2026, 3, 1, tzinfo=SHANGHAI),
    )
    year = parse_period("2026", SHANGHAI, CAL)
    assert (year.start, year.end) == (
        datetime(2025, 12, 1, tzinfo=SHANGHAI),
        datetime(2026, 12, 1, tzinfo=SHANGHAI),
    )
    month = parse_period("2026-03", SHANGHAI, CAL)
    assert (month.start, month.end, month.kind) == (
        datetime(2026, 3, 1, tzinfo=SHANGHAI),
        datetime(2026, 4, 1, tzinfo=SHANGHAI),
        "month",
    )
    assert parse_period("2026-12", SHANGHAI, CAL).end == datetime(2027, 1, 1, tzinfo=SHANGHAI)


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        quarter_of(datetime(2026, 1, 1), SHANGHAI, CAL)
