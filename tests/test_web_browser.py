"""The web console as its users meet it: Debian's Chromium (Playwright) against a real
`mailroom serve` on SQLite and on PostgreSQL. An editor adopts an item filed over SMTP a moment
before and the standings and the unit's notice follow; a leader reads and may do nothing; mail
that carries HTML or script shows as text; CSRF, the sign-in throttle, a disabled account, the
cookie's flags and the CSP hold; every page loads with no console error and asks nothing of any
host but 127.0.0.1.

One browser for the module, and one `serve` (plus one `mailroom web` behind TLS) per database.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import struct
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy import func, select

from ingest.pipeline import Arrival
from ledger.db import Ledger
from ledger.models import DeskAction, ReportSend, Submission
from ledger.rulebook import load_rulebook
from mailroom.app import App
from mailroom.config import load_config
from reports.deliver import ReportSettings, send_report
from tests.browser import (
    SHANGHAI,
    START,
    Answer,
    Client,
    Console,
    item_message,
    launch,
    pictures,
    watched,
)
from tests.chromium import non_white_pixels
from tests.conftest import REPO, _fresh_pg_database
from web.app import Console as WebConsole
from web.app import WebSettings

EDITOR, LEADER, STAFF, LEAVER = (
    "chenjing@gzb.gz.test",
    "lingdao@gzb.gz.test",
    "zhouqing@gzb.gz.test",
    "likai@gzb.gz.test",
)
VERBS = ("adopt", "decline", "return", "undo")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = launch(p)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextlib.contextmanager
def fresh_database(request: pytest.FixtureRequest, kind: str, where: Path) -> Iterator[str]:
    if kind == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, where / "mailroom.db")
        yield f"sqlite:///{where / 'mailroom.db'}"
        return
    with contextlib.contextmanager(_fresh_pg_database)(request.getfixturevalue("pg_cluster")) as u:
        yield u


@pytest.fixture(scope="module")
def office(
    request: pytest.FixtureRequest, kind: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp(f"web-{kind}")
    with fresh_database(request, kind, tmp) as url:
        console = Console(tmp / "office", url)
        console.instance.init()
        for email, role in ((EDITOR, "editor"), (LEADER, "leader"), (STAFF, "staff")):
            console.add_user(email, role)
        console.add_user(LEAVER, "editor")
        console.start()
        try:
            yield console
        finally:
            console.close()


class Alone:
    """`mailroom web` behind a TLS proxy (`web.behind_tls = true`) on a database of its own, and
    the answer to its first sign-in."""

    def __init__(self, console: Console, proc: subprocess.Popen[bytes], first: Answer) -> None:
        self.console = console
        self.proc = proc
        self.first = first


@pytest.fixture(scope="module")
def behind_tls(
    request: pytest.FixtureRequest, kind: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Alone]:
    tmp = tmp_path_factory.mktemp(f"web-tls-{kind}")
    with fresh_database(request, kind, tmp) as url:
        console = Console(tmp / "office", url, **{"web.behind_tls": True, "web.login_failures": 10})
        console.instance.init(demo=False)
        console.add_user(STAFF, "staff")
        instance = console.instance
        with open(tmp / "web.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mailroom.cli", "--config", str(instance.config), "web"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=instance.root,
                env=instance.env,
            )
        try:

            def up() -> bool:
                if proc.poll() is not None:
                    raise AssertionError("mailroom web exited:\n" + (tmp / "web.log").read_text())
                return console.listening()

            instance.wait(up, what="mailroom web")
            first = Client(console.base).sign_in(STAFF, console.passwords[STAFF])
            yield Alone(console, proc, first)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def web_routes() -> list[tuple[str, set[str]]]:
    """(path, methods) of every route of the console, as `web.app` builds it."""
    app = WebConsole(
        cast(Any, None), cast(Any, None), WebSettings(SHANGHAI, "x"), cast(Any, None)
    ).app()
    starlette = cast(Any, app).app
    return [(r.path, set(r.methods or ())) for r in starlette.routes if hasattr(r, "methods")]


def filled(path: str, samples: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        assert name in samples, f"give the tests a sample value for {{{name}}} in {path}"
        return samples[name]

    return re.sub(r"\{(\w+)(?::\w+)?\}", one, path)


def queue_report(office: Console) -> int:
    """Queue December's monthly report to its recipients; the first send's id."""
    ledger = Ledger.from_url(office.instance.db_url)
    settings = ReportSettings(zone=SHANGHAI, sender="inf@mailroom.test", sender_name="信息处")
    try:
        send_report(ledger, load_rulebook("guangzhou-2004"), settings, "monthly", "2026-12")
        with ledger.reader() as s:
            found = s.scalar(select(ReportSend.id).order_by(ReportSend.id).limit(1))
    finally:
        ledger.dispose()
    assert found is not None
    return found


def unit_row(page: Any, unit_name: str) -> list[str]:
    """The cells of the unit's row in the standings tables (by sequence, under an h3)."""
    rows = page.locator("h3 + table.grid tbody tr").filter(
        has=page.locator("td:nth-child(2)", has_text=re.compile(f"^{unit_name}$"))
    )
    assert rows.count() == 1, f"{unit_name}: {rows.count()} rows"
    return [c.strip() for c in rows.first.locator("td").all_inner_texts()]


def board_row(board: Any, unit_name: str) -> list[str]:
    """The cells of the unit's row on a 约稿's status board: unit, state, answered, number."""
    rows = board.locator("table.grid tbody tr").filter(
        has=board.page.locator("td:first-child", has_text=re.compile(f"^{unit_name}$"))
    )
    assert rows.count() == 1, f"{unit_name}: {rows.count()} rows"
    return [c.strip() for c in rows.first.locator("td").all_inner_texts()]


def intake_row(page: Any, intake_id: int) -> list[str]:
    """The cells of a message's row in the intake log (#, time, mailbox, sender, subject,
    state, reasons, tracking number)."""
    rows = page.locator("table.grid tbody tr").filter(
        has=page.locator("td:first-child", has_text=re.compile(f"^{intake_id}$"))
    )
    assert rows.count() == 1, f"intake {intake_id}: {rows.count()} rows"
    return [c.strip() for c in rows.first.locator("td").all_inner_texts()]


def notices_to(console: Console, address: str) -> int:
    return sum(1 for r in console.outbox() if r["kind"] == "notice" and r["to"] == address)


def desk_actions(console: Console, tracking_no: str) -> int:
    ledger = Ledger.from_url(console.instance.db_url)
    try:
        with ledger.reader() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(DeskAction)
                    .join(Submission, DeskAction.submission_id == Submission.id)
                    .where(Submission.tracking_no == tracking_no)
                )
                or 0
            )
    finally:
        ledger.dispose()


# --- the work ------------------------------------------------------------------------------


def test_an_editor_adopts_an_item_filed_a_moment_before(office: Console, browser: Browser) -> None:
    title = "海珠区推进城中村改造工作"
    tracking = office.send_item("HZ", title)
    notices = notices_to(office, "xuhaiyan@hz.gz.test")
    w = watched(browser)
    try:
        page = w.page
        office.sign_in(w, EDITOR)
        page.goto(f"{office.base}/standings?period=2027Q1")
        before = unit_row(page, "海珠区")

        page.goto(f"{office.base}/items?q=城中村")
        page.click(f"a[href='/items/{tracking}']")
        assert page.locator("h1").inner_text() == f"{tracking} {title}"
        form = page.locator("form:has(input[name=verb][value=adopt])")
        form.locator("select[name=publication]").select_option("穗府信息")
        form.locator("input[name=grade]").fill("标题")
        with page.expect_navigation():
            form.locator("button[type=submit]").click()
        assert page.locator("p.notice").inner_text() == "已登记采用"
        assert "穗府信息" in page.locator("table.grid").first.inner_text()

        page.goto(f"{office.base}/standings?period=2027Q1")
        after = unit_row(page, "海珠区")
        # Columns: rank, unit, items, adopted, points, target, progress.
        assert int(after[2]) == int(before[2])
        assert int(after[3]) == int(before[3]) + 1
        assert float(after[4]) == float(before[4]) + 2  # 穗府信息 标题: 2 points
        office.instance.wait(
            lambda: notices_to(office, "xuhaiyan@hz.gz.test") == notices + 1,
            what="the unit's notice of the adoption",
        )
        assert not w.dialogs and not w.errors and not w.outside()
    finally:
        w.close()


def test_a_leader_sees_the_standings_and_is_refused_every_action(
    office: Console, browser: Browser
) -> None:
    tracking = office.send_item("BY", "白云区开展河长制巡查")
    w = watched(browser)
    try:
        page = w.page
        office.sign_in(w, LEADER)
        page.goto(f"{office.base}/standings?period=2027Q1")
        assert page.locator("h3 + table.grid tbody tr").count() > 5
        assert unit_row(page, "白云区")[1] == "白云区"
        page.goto(f"{office.base}/items/{tracking}")
        assert page.locator("input[name=verb]").count() == 0  # no forms to act with
        csrf = page.locator("input[name=csrf]").first.get_attribute("value")
        assert csrf
        for verb in VERBS:  # the same POSTs as the forms would make, from the page
            with page.expect_response(lambda r: r.request.method == "POST") as answer:
                page.evaluate(
                    """([action, csrf, verb]) => {
                        const f = document.createElement("form");
                        f.method = "post"; f.action = action;
                        for (const [k, v] of [["csrf", csrf], ["verb", verb],
                                              ["publication", "穗府信息"], ["reason", "x"]]) {
                            const i = document.createElement("input");
                            i.type = "hidden"; i.name = k; i.value = v; f.appendChild(i);
                        }
                        document.body.appendChild(f); f.submit();
                    }""",
                    [f"/items/{tracking}/act", csrf, verb],
                )
            assert answer.value.status == 403, verb
            page.wait_for_load_state()
            assert "无权操作" in page.locator("h1").inner_text()
        assert not w.dialogs and not w.outside()
    finally:
        w.close()

    # At the HTTP level, every POST route but signing in and out, with a valid CSRF token.
    client = Client(office.base)
    assert client.sign_in(LEADER, office.passwords[LEADER]).status == 303
    csrf = client.csrf(f"/items/{tracking}")
    posts = [
        p for p, methods in web_routes() if "POST" in methods and p not in ("/login", "/logout")
    ]
    assert "/items/{tracking_no}/act" in posts
    for path in posts:
        for verb in VERBS:
            got = client.request(
                filled(path, {"tracking_no": tracking}),
                {"csrf": csrf, "verb": verb, "publication": "穗府信息"},
            )
            assert got.status == 403, (path, verb, got.status)
    assert desk_actions(office, tracking) == 0


def test_staff_open_a_solicitation_and_a_units_answer_shows_on_the_board(
    office: Console, browser: Browser
) -> None:
    code, topic = "YG-2027-01", "春节期间安全生产工作情况"
    w = watched(browser)
    try:
        page = w.page
        office.sign_in(w, STAFF)
        page.goto(f"{office.base}/solicitations")
        form = page.locator("form[action='/solicitations/open']")
        form.locator("input[name=code]").fill(code)
        form.locator("input[name=topic]").fill(topic)
        # A week after the instance's clock (START, running on from it).
        form.locator("input[name=deadline]").fill("2027-01-12T17:00")
        form.locator("input[name=unit][value=TH]").check()
        form.locator("input[name=unit][value=YX]").check()
        with page.expect_navigation():
            form.locator("button[type=submit]").click()
        assert page.locator("p.notice").inner_text() == (
            f"已发起约稿 {code}，已排队发送 2 份约稿通知。"
        )
        board = page.locator("section.card", has=page.locator("h2", has_text=code))
        assert board.locator("p").first.inner_text().startswith("截止时间：2027-01-12 17:00")
        assert board_row(board, "天河区")[1:] == ["待报送", "", ""]

        # 天河区's officer answers by mail to the 约稿 mailbox, the code in the subject.
        title = "天河区春节期间安全生产形势平稳"
        tracking = office.send_item("TH", title, to="sfxx@mailroom.test", tag=f"【约稿:{code}】")
        page.reload()
        board = page.locator("section.card", has=page.locator("h2", has_text=code))
        row = board_row(board, "天河区")
        assert (row[1], row[3]) == ("已报送", tracking) and row[2].startswith("2027-01-05")
        assert board_row(board, "越秀区")[1] == "待报送"
        assert "已报送 1，逾期报送 0，未报送 0，待报送 1" in board.inner_text()
        # Its tracking number leads to the item, whose warning shows by its Chinese name.
        with page.expect_navigation():
            board.locator(f"a[href='/items/{tracking}']").click()
        assert page.locator("h1").inner_text() == f"{tracking} {title}"
        facts = page.locator("table.facts").inner_text()
        assert "发件人名称未显示单位名称" in facts and "from_name_mismatch" not in facts
        page.goto(f"{office.base}/")
        today = page.locator("div.card", has=page.locator("h2", has_text="今日收件"))
        assert re.search(r"已登记：\d+", today.inner_text()) and "filed" not in today.inner_text()
        assert not w.dialogs and not w.errors and not w.outside()
    finally:
        w.close()


def test_staff_release_a_quarantined_message_and_it_ends_filed(
    office: Console, browser: Browser
) -> None:
    # The pipeline sets aside a message it could not file (a fault, since fixed).
    title = "越秀区推进垃圾分类工作提质增效"
    raw = item_message("YX", title).as_bytes()
    app = App.open(load_config(office.instance.config))
    try:
        arrival = Arrival("daily", "smtp", START, spool_id="browser-quarantine-1")
        set_aside = app.pipeline.quarantine(raw, arrival, "processing_error", "a fixed bug")
    finally:
        app.close()
    assert set_aside.state == "quarantined"
    held = set_aside.intake_id
    w = watched(browser)
    try:
        page = w.page
        office.sign_in(w, STAFF)
        page.goto(f"{office.base}/intake?state=quarantined")
        cells = intake_row(page, held)
        assert cells[5:7] == ["已隔离", "处理出错（processing_error）"], cells
        with page.expect_navigation():
            page.click(f"button:has-text('重新处理第 {held} 号邮件')")
        assert urllib.parse.urlsplit(page.url).path == "/intake"
        notice = page.locator("p.notice").inner_text()
        tracking = office.tracking_no(title)
        assert tracking is not None
        assert notice.startswith("重新处理结果：") and "filed" in notice and tracking in notice
        assert page.locator(f"button:has-text('重新处理第 {held} 号邮件')").count() == 0

        page.goto(f"{office.base}/intake?state=retried")
        assert intake_row(page, held)[5] == "已重新处理"
        page.goto(f"{office.base}/intake?state=filed")
        filed = page.locator(
            "table.grid tbody tr", has=page.locator(f"a[href='/items/{tracking}']")
        )
        assert filed.locator("td").nth(5).inner_text() == "已登记"
        with page.expect_navigation():
            filed.locator(f"a[href='/items/{tracking}']").click()
        assert page.locator("h1").inner_text() == f"{tracking} {title}"
        assert not w.dialogs and not w.errors and not w.outside()
    finally:
        w.close()


# --- security --------------------------------------------------------------------------------


def test_markup_in_a_mail_shows_as_text_and_runs_nothing(office: Console, browser: Browser) -> None:
    title = "<img src=x onerror=alert(1)>"
    body = "正文开头<script>alert(2)</script>正文结尾，工作取得新进展。"
    tracking = office.send_item("YX", title, body)
    w = watched(browser)
    try:
        page = w.page
        office.sign_in(w, STAFF)
        page.goto(f"{office.base}/items?q={tracking}")
        assert title in page.locator("table.grid").inner_text()
        page.goto(f"{office.base}/items/{tracking}")
        assert page.locator("h1").inner_text() == f"{tracking} {title}"
        assert "<script>alert(2)</script>" in page.locator("div.body").inner_text()
        assert "<script>alert(2)</script>" in page.locator("pre.raw").inner_text()
        assert page.locator("main img, main script").count() == 0
        page.wait_for_timeout(300)  # an onerror handler would have fired by now
        assert w.dialogs == [] and w.errors == []
    finally:
        w.close()


def test_a_post_without_the_sessions_csrf_token_is_refused(office: Console) -> None:
    tracking = office.send_item("TH", "天河区开展节前安全检查")
    client = Client(office.base)
    assert client.sign_in(EDITOR, office.passwords[EDITOR]).status == 303
    action = f"/items/{tracking}/act"
    for form in (
        {"verb": "decline", "reason": "重复"},
        {"verb": "decline", "reason": "重复", "csrf": ""},
        {"verb": "decline", "reason": "重复", "csrf": "x" * 43},
    ):
        got = client.request(action, form)
        assert got.status == 403 and "请求无效" in got.body, form
    assert client.request("/logout", {}).status == 403
    assert desk_actions(office, tracking) == 0
    # The session's own token is taken.
    csrf = client.csrf(f"/items/{tracking}")
    assert client.request(action, {"verb": "decline", "reason": "重复", "csrf": csrf}).status == 303
    assert desk_actions(office, tracking) == 1
    # The same again is not applied, and the page says why in words, not by its code.
    again = client.request(action, {"verb": "decline", "reason": "重复", "csrf": csrf})
    assert again.headers["location"] == f"/items/{tracking}?done=" + urllib.parse.quote(
        "未执行：已登记过同一标签"
    )
    assert desk_actions(office, tracking) == 1


def test_a_disabled_account_loses_its_session_at_once(office: Console, browser: Browser) -> None:
    w = watched(browser)
    try:
        page = w.page
        office.sign_in(w, LEAVER)
        page.goto(f"{office.base}/items")
        assert page.locator("h1").inner_text() == "信息查询"
        office.run("user", "disable", LEAVER)
        page.goto(f"{office.base}/items")
        assert page.url == f"{office.base}/login?next=/items"
        assert page.locator("input[name=password]").count() == 1
    finally:
        w.close()
    assert Client(office.base).sign_in(LEAVER, office.passwords[LEAVER]).status == 401


def test_the_session_cookie_and_the_security_headers(
    office: Console, behind_tls: Alone, browser: Browser
) -> None:
    signed = Client(office.base).sign_in(EDITOR, office.passwords[EDITOR])
    assert signed.status == 303
    (cookie,) = signed.headers.get_all("set-cookie")
    flags = {f.strip().split("=")[0].lower(): f.strip() for f in cookie.split(";")[1:]}
    assert "httponly" in flags and flags["samesite"].lower() == "samesite=strict"
    assert "secure" not in flags
    (tls_cookie,) = behind_tls.first.headers.get_all("set-cookie")
    assert behind_tls.first.status == 303
    tls_flags = {f.strip().split("=")[0].lower() for f in tls_cookie.split(";")[1:]}
    assert {
        "httponly",
        "secure",
        "samesite",
    } <= tls_flags and "samesite=strict" in tls_cookie.lower()
    assert "strict-transport-security" in {k.lower() for k in behind_tls.first.headers}

    w = watched(browser)
    try:
        office.sign_in(w, EDITOR)
        (jar,) = [c for c in w.context.cookies() if c["name"] == "mailroom_session"]
        assert jar["httpOnly"] and jar["sameSite"] == "Strict" and not jar["secure"]
    finally:
        w.close()

    client = Client(office.base)
    for path in ("/login", "/static/console.css", "/no-such-page", "/healthz"):
        csp = client.request(path).headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "script-src 'self'" in csp, path
        assert "default-src 'none'" in csp


def test_ten_wrong_passwords_and_the_eleventh_try_is_throttled(behind_tls: Alone) -> None:
    console = behind_tls.console
    client = Client(console.base)
    for _ in range(10):
        assert client.sign_in(STAFF, "not the password at all").status == 401
    got = client.sign_in(STAFF, console.passwords[STAFF])
    assert got.status == 429 and "登录失败次数过多" in got.body
    assert "set-cookie" not in {k.lower() for k in got.headers}


# --- every page ------------------------------------------------------------------------------


def test_every_page_loads_clean_and_asks_only_loopback(
    office: Console, browser: Browser, tmp_path: Path
) -> None:
    tracking = office.send_item("TH", "天河区优化营商环境")
    w = watched(browser)
    try:
        page = w.page
        page.goto(f"{office.base}/login")
        office.sign_in(w, STAFF)
        # The pages; /healthz and /metrics are plain text for operators' probes (below).
        probes = ("/healthz", "/metrics")
        pages = [
            p for p, methods in web_routes() if "GET" in methods and p not in ("/login", *probes)
        ]
        assert {"/", "/items", "/items/{tracking_no}", "/standings"} <= set(pages)
        # A report queued gives the report pages something to show (serve's sender sends it).
        send_id = str(queue_report(office))
        samples = {"tracking_no": tracking, "send_id": send_id, "n": "0"}
        seen = [filled(p, samples) for p in pages]
        seen += ["/items?q=天河区&period=2027Q1", "/standings?period=2027", "/standings?period=x"]
        # The .xlsx downloads are fetched, not opened as pages.
        downloads = [
            p for p in seen if re.search(r"\.\w+$", p.split("?")[0]) or "/attachment/" in p
        ]
        for path in (p for p in seen if p not in downloads):
            answer = page.goto(office.base + path)
            assert answer is not None and answer.status == 200, (path, answer and answer.status)
            csp = answer.headers["content-security-policy"]
            assert "unsafe-inline" not in csp, path
        assert w.errors == [], w.errors
        assert w.outside() == [], w.outside()
        assert any(u.endswith("/static/console.css") for u in w.requests)
    finally:
        w.close()

    client = Client(office.base)
    assert client.sign_in(STAFF, office.passwords[STAFF]).status == 303
    for path in downloads:  # files to save, not pages: fetched, not opened
        got = client.request(path)
        assert got.status == 200 and "unsafe-inline" not in got.headers["content-security-policy"]
    for path in probes:
        got = client.request(path)
        assert got.status == 200 and got.headers["content-type"].startswith("text/plain"), path
        assert "unsafe-inline" not in got.headers["content-security-policy"]

    made = pictures(office, browser, tmp_path)
    for name, png in made.items():
        inked, sampled = non_white_pixels(png.read_bytes(), step=4)
        assert inked > sampled * 0.02, f"{name}: only {inked} of {sampled} pixels inked"


def test_readme_shows_the_console() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name in ("console-dashboard", "console-item", "console-standings"):
        assert f"](docs/img/{name}.png)" in readme
        png = (REPO / "docs" / "img" / f"{name}.png").read_bytes()
        # A PNG of the window Chromium drew (`python -m tests.browser` makes them).
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
        assert struct.unpack(">II", png[16:24]) == (1280, 1000)
        assert len(png) > 20_000
