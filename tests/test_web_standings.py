"""The console's standings page in this process, on each database: the officers' ranking a
page at a time (a province ranks thousands), its figures those of `officer_standings`."""

from __future__ import annotations

import html
import re
import types
from datetime import UTC, datetime
from typing import Any

import pytest

import web.pages
from ledger.standings import officer_standings
from mailroom.app import App
from mailroom.console import web_settings
from tests.scoring_kit import Office, local
from web.app import Console
from web.pages import Pages

PERIOD = "2026Q1"


def page(app: App, **query: str) -> str:
    console = Console(
        app.ledger,
        app.rulebook,
        web_settings(app),
        actions=None,  # type: ignore[arg-type]
        clock=lambda: datetime(2026, 3, 20, tzinfo=UTC),
    )
    request: Any = types.SimpleNamespace(
        query_params={"period": PERIOD, **query}, url=types.SimpleNamespace(path="/standings")
    )
    signed: Any = types.SimpleNamespace(
        account=types.SimpleNamespace(email="staff@office.test", role="staff", name="staff"),
        csrf="token",
    )
    response = Pages(console).standings(request, signed, None)
    assert response.status_code == 200
    return bytes(response.body).decode()


def officer_rows(text: str) -> list[tuple[str, str]]:
    """(rank, name) of each row of the officers' table."""
    table = text.split('<h2 id="officers">', 1)[1].split("</table>", 1)[0]
    return [
        (rank, html.unescape(name))
        for rank, name in re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td>", table)
    ]


@pytest.fixture
def ranked(app: App) -> list[tuple[str, str]]:
    """Five officers of five units, each with a different number of adopted items."""
    with app.ledger.transaction() as session:
        office = Office(session, app.rulebook)
        for n in range(5):
            code = f"PG{n}"
            office.unit(code, f"测试单位{n}", "district", officer=f"信息员{n}")
            for k in range(n + 1):
                office.item(code, local(2026, 1, 5 + k), ("采用", "调研"))
    with app.ledger.reader() as session:
        rows = officer_standings(session, app.rulebook, PERIOD, app.config.zone)
    return [(str(o.rank), o.name) for o in rows]


def test_the_officers_ranking_is_shown_a_page_at_a_time(
    app: App, ranked: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web.pages, "OFFICERS_SHOWN", 2)
    pages = (len(ranked) + 1) // 2
    assert len(ranked) >= 5 and ranked[0][1] == "信息员4"  # most adopted items first
    first = page(app)
    assert officer_rows(first) == ranked[:2]
    assert f"共 {len(ranked)} 名信息员，分 {pages} 页列出" in first
    assert f"第 1 / {pages} 页" in first and "上一页" not in first
    assert f'href="?period={PERIOD}&amp;officers_page=2#officers"' in first
    second = page(app, officers_page="2")
    assert officer_rows(second) == ranked[2:4]
    assert "上一页" in second and "下一页" in second
    # Past the last page: the last; not a number: the first.
    assert officer_rows(page(app, officers_page="999")) == ranked[(pages - 1) * 2 :]
    assert officer_rows(page(app, officers_page="x")) == ranked[:2]


def test_one_page_of_officers_has_no_pager(app: App, ranked: list[tuple[str, str]]) -> None:
    text = page(app)
    assert officer_rows(text) == ranked
    assert "分 1 页" not in text and "officers_page=" not in text
