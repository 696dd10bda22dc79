"""The web console in a real browser: Debian's headless Chromium driven by Playwright (never a
browser of Playwright's own), a `mailroom serve` with its console on a free loopback port, and
helpers to sign in, file an item over SMTP and read what the browser saw.

`python -m tests.browser` remakes the README's pictures of the console in `docs/img/`.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import smtplib
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Request, sync_playwright
from sqlalchemy import select

from ledger.db import Ledger
from ledger.models import Submission
from mailroom.cli import main
from tests.pgcluster import free_port
from tests.service import MailroomInstance

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2027, 1, 5, 10, 0, tzinfo=SHANGHAI)  # in 2027Q1 of the Guangzhou calendar
SIGNOFF = "作者单位：{unit}\n姓名：{name}\n联系电话：020-38620000\n日期：2027年1月5日"
# Demo officers (ledger/demo/people.csv): their address, their unit's mark, their name.
OFFICERS = {
    "TH": ("liming@th.gz.test", "天河区", "李明"),
    "YX": ("wangfang@yx.gz.test", "越秀区", "王芳"),
    "HZ": ("xuhaiyan@hz.gz.test", "海珠区", "徐海燕"),
    "BY": ("guohongwei@by.gz.test", "白云区", "郭宏伟"),
}


def item_message(
    unit: str, title: str, body: str = "", to: str = "inf@mailroom.test", tag: str = ""
) -> EmailMessage:
    """An item from the unit's demo officer, as a mail client writes it."""
    sender, mark, name = OFFICERS[unit]
    msg = EmailMessage()
    msg["From"] = formataddr((name, sender))
    msg["To"] = to
    msg["Subject"] = f"【{mark}】{tag}{title}"
    msg["Date"] = format_datetime(START)
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    text = body or f"{title}，工作取得新进展。"
    msg.set_content(f"{text}\n\n{SIGNOFF.format(unit=mark + '政府办公室', name=name)}\n")
    return msg


def launch(p: Playwright) -> Browser:
    """Debian's Chromium; a test fails here, loudly, when the package is missing."""
    if shutil.which(CHROMIUM) is None:
        raise AssertionError(f"{CHROMIUM} is missing: scripts/setup installs Debian's chromium")
    return p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = launch(p)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """A page with everything worth asserting on recorded: dialogs (an XSS alert lands here),
    console errors, and every URL the page asked for."""

    context: BrowserContext
    page: Page
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # responses of status 400 and above

    def close(self) -> None:
        self.context.close()

    def outside(self) -> list[str]:
        """Requests that left 127.0.0.1 (none may)."""
        return [u for u in self.requests if urllib.parse.urlsplit(u).hostname != "127.0.0.1"]


def watched(browser: Browser, width: int = 1280, height: int = 900) -> Watched:
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = context.new_page()
    w = Watched(context, page)

    def on_dialog(d: Any) -> None:
        w.dialogs.append(d.message)
        d.dismiss()

    def on_console(m: Any) -> None:
        if m.type == "error":
            where = m.location.get("url", "") if m.location else ""
            w.errors.append(f"{m.text} ({where})" if where else m.text)

    def on_request(r: Request) -> None:
        w.requests.append(r.url)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda e: w.errors.append(f"page error: {e}"))
    page.on("request", on_request)
    page.on(
        "response", lambda r: w.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None
    )
    return w


class Console:
    """A `mailroom serve` with the web console on, its demo registry, and its accounts."""

    def __init__(self, root: Path, db_url: str, **overrides: Any) -> None:
        self.web_port = free_port()
        self.instance = MailroomInstance(
            root,
            db_url,
            clock=START,
            **{"web.enabled": True, "web.listen": f"127.0.0.1:{self.web_port}", **overrides},
        )
        self.base = f"http://127.0.0.1:{self.web_port}"
        self.passwords: dict[str, str] = {}

    def run(self, *args: str) -> str:
        """A `mailroom` command run in this process (a fresh interpreter costs seconds)."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["--config", str(self.instance.config), *args]) == 0
        return out.getvalue()

    def add_user(self, email: str, role: str) -> str:
        """`mailroom user add EMAIL --role ROLE --generate`: the password it printed."""
        printed = self.run("user", "add", email, "--role", role, "--generate")
        found = re.search(r"^password: (\S+)$", printed, re.MULTILINE)
        assert found is not None, printed
        self.passwords[email] = found.group(1)
        return found.group(1)

    def start(self) -> None:
        self.instance.start()
        self.instance.wait(self.listening, what=f"the web console on port {self.web_port}")

    def listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.web_port), timeout=0.2):
                return True
        except OSError:
            return False

    def close(self) -> None:
        self.instance.close()

    # --- mail -------------------------------------------------------------------------------

    def send_item(
        self, unit: str, title: str, body: str = "", to: str = "inf@mailroom.test", tag: str = ""
    ) -> str:
        """Mail an item from the unit's officer over SMTP (to `to`, `tag` before the title in
        the subject, e.g. 【约稿:YG-1】); its tracking number once filed."""
        with smtplib.SMTP("127.0.0.1", self.instance.port, timeout=30) as smtp:
            smtp.send_message(item_message(unit, title, body, to, tag))
        found: str = self.instance.wait(lambda: self.tracking_no(title), what=f"{title} filed")
        return found

    def tracking_no(self, title: str) -> str | None:
        ledger = Ledger.from_url(self.instance.db_url)
        try:
            with ledger.reader() as s:
                return s.scalar(select(Submission.tracking_no).where(Submission.title == title))
        finally:
            ledger.dispose()

    def outbox(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(self.run("outbox", "--json"))
        return rows

    # --- the browser ------------------------------------------------------------------------

    def sign_in(self, w: Watched, email: str, password: str | None = None) -> None:
        page = w.page
        page.goto(f"{self.base}/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password or self.passwords[email])
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert urllib.parse.urlsplit(page.url).path == "/", f"not signed in: {page.url}"


# --- HTTP without a browser ------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Answer:
    status: int
    headers: Any
    body: str


class Client:
    """urllib with a cookie of its own and no redirects followed (a 303 is an answer)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookie = ""
        self.opener = urllib.request.build_opener(_NoRedirect)

    def request(self, path: str, form: dict[str, str] | None = None) -> Answer:
        data = None if form is None else urllib.parse.urlencode(form).encode()
        req = urllib.request.Request(self.base + path, data=data)
        if self.cookie:
            req.add_header("Cookie", self.cookie)
        try:
            with self.opener.open(req, timeout=30) as resp:
                answer = Answer(resp.status, resp.headers, resp.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as exc:
            answer = Answer(exc.code, exc.headers, exc.read().decode("utf-8", "replace"))
        for header in answer.headers.get_all("set-cookie") or []:
            self.cookie = header.split(";", 1)[0]
        return answer

    def sign_in(self, email: str, password: str) -> Answer:
        return self.request("/login", {"email": email, "password": password, "next": "/"})

    def csrf(self, path: str = "/") -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.request(path).body)
        assert found is not None, f"no CSRF token on {path}"
        return found.group(1)


# --- pictures for the README -----------------------------------------------------------------

ITEMS = [
    ("TH", "天河区推进政务服务“一网通办”改革"),
    ("TH", "天河区开展安全生产大检查"),
    ("YX", "越秀区老旧小区改造提速增效"),
    ("HZ", "海珠区湿地公园生态修复取得阶段成效"),
    ("BY", "白云区强化春运交通保障"),
]


def pictures(console: Console, browser: Browser, out: Path) -> dict[str, Path]:
    """The dashboard, an item page and the standings, as a staff member sees them, after the
    sample items are filed and two adopted."""
    staff = "zhouqing@gzb.gz.test"
    if staff not in console.passwords:
        console.add_user(staff, "staff")
    tracking = [console.send_item(unit, title) for unit, title in ITEMS]
    # On the instance's clock (a command run here would date the adoptions today).
    console.instance.cli("adopt", tracking[0], "穗府信息", "标题")
    console.instance.cli("adopt", tracking[2], "穗府要情")
    w = watched(browser, 1280, 1000)
    try:
        console.sign_in(w, staff)
        shots = {
            "console-dashboard": "/",
            "console-item": f"/items/{tracking[0]}",
            "console-standings": "/standings?period=2027Q1",
        }
        made = {}
        out.mkdir(parents=True, exist_ok=True)
        for name, path in shots.items():
            w.page.goto(console.base + path)
            made[name] = out / f"{name}.png"
            w.page.screenshot(path=str(made[name]), full_page=False)
        assert not w.errors and not w.outside(), (w.errors, w.outside())
    finally:
        w.close()
    return made


def main_pictures() -> None:
    import tempfile

    img = Path(__file__).resolve().parent.parent / "docs" / "img"
    with tempfile.TemporaryDirectory(prefix="mailroom-console-") as tmp:
        from mailroom.app import migrate

        url = f"sqlite:///{tmp}/mailroom.db"
        migrate(url)
        console = Console(Path(tmp) / "office", url)
        console.instance.init()
        console.start()
        try:
            with chromium() as browser:
                made = pictures(console, browser, img)
        finally:
            console.close()
    print("wrote " + ", ".join(str(p) for p in made.values()))


if __name__ == "__main__":
    main_pictures()
