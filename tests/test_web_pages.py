"""The web console's office pages over HTTP against a real `mailroom serve` (issue 17): the
intake log and its quarantine re-run, reports sent, 约稿, the registry import in two steps, the
outbox's 重新发送, the standings workbook; every action audited, and refused to a leader."""

from __future__ import annotations

import html
import http.cookiejar
import io
import re
import secrets
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from ingest.pipeline import Arrival
from ledger.models import AuditEntry, OutboundMessage, SolicitationMail, Unit
from ledger.outbox import enqueue, mark_failed
from mailroom.app import App
from mailroom.config import load_config
from tests.conftest import REPO
from tests.pgcluster import free_port
from tests.service import LedgerView, MailroomInstance

NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 in Guangzhou, in 2026Q2 of its calendar
STAFF, LEADER = "staff@office.test", "leader@office.test"
PASSWORD = "a long enough password"
VALID = (REPO / "examples" / "valid.eml").read_bytes()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


class Browser:
    """A signed-in client: keeps the session cookie, follows redirects like a browser."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),  # loopback only, whatever the environment says
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
        )

    def request(self, path: str, data: bytes | None = None, content_type: str = "") -> Reply:
        req = urllib.request.Request(self.base + path, data=data)
        if content_type:
            req.add_header("Content-Type", content_type)
        try:
            with self.opener.open(req, timeout=30) as r:
                return Reply(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
        except urllib.error.HTTPError as e:
            return Reply(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())

    def get(self, path: str) -> Reply:
        return self.request(path)

    def post(self, path: str, fields: dict[str, str | list[str]]) -> Reply:
        pairs = [(k, v) for k, vs in fields.items() for v in (vs if isinstance(vs, list) else [vs])]
        return self.request(
            path, urllib.parse.urlencode(pairs).encode(), "application/x-www-form-urlencoded"
        )

    def upload(self, path: str, fields: dict[str, str], name: str, data: bytes) -> Reply:
        boundary = secrets.token_hex(12)
        out = io.BytesIO()
        for k, v in fields.items():
            out.write(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
            )
            out.write(v.encode() + b"\r\n")
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{name}"\r\nContent-Type: text/csv\r\n\r\n'.encode()
        )
        out.write(data + f"\r\n--{boundary}--\r\n".encode())
        return self.request(path, out.getvalue(), f"multipart/form-data; boundary={boundary}")

    def sign_in(self, email: str) -> None:
        reply = self.post("/login", {"email": email, "password": PASSWORD, "next": "/"})
        assert reply.status == 200 and "工作台" in reply.text, reply.text

    def csrf(self, path: str = "/") -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.get(path).text)
        assert found is not None
        return found.group(1)


@dataclass
class Office:
    instance: MailroomInstance
    view: LedgerView
    staff: Browser
    leader: Browser
    quarantined: int
    failed: int

    def audit(self) -> list[AuditEntry]:
        with self.view.ledger.reader() as s:
            return list(s.scalars(select(AuditEntry).where(AuditEntry.source == "web")))


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture
def office(db_url: str, tmp_path: Path) -> Iterator[Office]:
    web_port = free_port()
    instance = MailroomInstance(
        tmp_path / "office",
        db_url,
        clock=NOW,
        **{"web.enabled": True, "web.listen": f"127.0.0.1:{web_port}"},
    )
    instance.init()
    for email, role in ((STAFF, "staff"), (LEADER, "leader")):
        instance.cli("user", "add", email, "--role", role, input=PASSWORD + "\n")
    # A message set aside by a fault (since fixed), and a mail the relay refused for good.
    app = App.open(load_config(instance.config))
    try:
        arrival = Arrival("daily", "smtp", NOW, spool_id="web-pages-1")
        error = "Traceback: <script>alert(1)</script> a fixed bug"
        quarantined = app.pipeline.quarantine(VALID, arrival, "processing_error", error).intake_id
        with app.ledger.transaction() as s:
            row = enqueue(
                s, kind="receipt", to_address="gone@unit.test", subject="回执",
                message=b"Subject: x\r\nMessage-ID: <failed@office.test>\r\n\r\nx\r\n", now=NOW,
            )  # fmt: skip
            mark_failed(row, "550 5.1.1 no such user")
            s.flush()
            failed = row.id
    finally:
        app.close()
    instance.start()
    instance.wait(lambda: _listening(web_port), what=f"the web console on port {web_port}")
    view = LedgerView(db_url)
    base = f"http://127.0.0.1:{web_port}"
    staff, leader = Browser(base), Browser(base)
    try:
        staff.sign_in(STAFF)
        leader.sign_in(LEADER)
        yield Office(instance, view, staff, leader, quarantined, failed)
    finally:
        view.close()
        instance.close()


def test_the_office_pages_and_their_actions(office: Office) -> None:
    # One serve per database for both: a leader first (nothing may change), then staff.
    leader_reads_every_page_and_is_refused_every_action(office)
    staff_use_every_page_and_action(office)


def staff_use_every_page_and_action(office: Office) -> None:
    staff, instance = office.staff, office.instance

    # The intake log: the quarantined message with its error escaped, and its re-run.
    page = staff.get("/intake?state=quarantined")
    assert page.status == 200 and "已隔离" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>" not in page.text
    assert staff.get("/quarantine").text == page.text
    token = staff.csrf("/intake")
    done = staff.post("/intake/retry", {"csrf": token, "id": str(office.quarantined)})
    assert done.status == 200 and "重新处理结果" in done.text and "filed" in done.text
    log = staff.get("/intake?state=filed").text
    tracking = re.search(r'href="/items/([^"]+)"', log)
    assert tracking is not None and tracking.group(1).startswith("GZ-2026-")
    # The items search: a term under three characters is looked for among the newest items
    # only, and the page says so; a longer one is not bounded.
    short = "仅在最近登记的20000条信息中查找"
    assert short in staff.get("/items?q=" + urllib.parse.quote("信息")).text
    found = staff.get("/items?q=" + urllib.parse.quote(tracking.group(1))).text
    assert short not in found and f'href="/items/{tracking.group(1)}"' in found
    assert staff.get("/intake?state=retried").text.count("processing_error") == 1
    assert "没有符合条件" in staff.get("/intake?sender=nobody-sent-this").text
    assert "processing_error" in staff.get("/intake?reason=processing_error&date=2026-03-10").text
    assert "没有符合条件" in staff.get("/intake?reason=processing&date=2026-03-10").text
    assert "没有符合条件" in staff.get("/intake?reason=processing_error&date=2026-03-11").text

    # The outbox: the failed mail queued again (and sent by serve's sender).
    assert "550 5.1.1 no such user" in staff.get("/outbox?state=failed").text
    done = staff.post("/outbox/retry", {"csrf": token, "id": str(office.failed)})
    assert "已重新排队发送" in done.text
    with office.view.ledger.reader() as s:
        row = s.get(OutboundMessage, office.failed)
        assert row is not None and row.state in ("queued", "sent")
    done = staff.post("/outbox/retry", {"csrf": token, "id": str(office.failed)})
    assert "不是发送失败的邮件" in done.text

    # 约稿: opened for two units (notices queued), its board, then closed.
    done = staff.post(
        "/solicitations/open",
        {"csrf": token, "code": "YG-WEB-1", "topic": "春耕生产<b>", "deadline": "2026-03-20T17:00",
         "unit": ["YX", "LW"]},
    )  # fmt: skip
    assert "已发起约稿 YG-WEB-1" in done.text and "2 份约稿通知" in done.text
    assert "春耕生产&lt;b&gt;" in done.text and "待报送 2" in done.text
    with office.view.ledger.reader() as s:
        assert len(s.scalars(select(SolicitationMail)).all()) == 2
    again = staff.post(
        "/solicitations/open",
        {"csrf": token, "code": "YG-WEB-1", "topic": "再次", "deadline": "2026-03-20T17:00",
         "all": "1"},
    )  # fmt: skip
    assert "未能发起约稿" in again.text and "already exists" in again.text
    done = staff.post("/solicitations/close", {"csrf": token, "code": "YG-WEB-1"})
    assert "约稿 YG-WEB-1 已结束" in done.text
    (sol,) = instance.cli_json("solicit", "list")
    assert sol["closed"] and {t["unit_code"] for t in sol["targets"]} == {"YX", "LW"}

    # The registry: a file with a bad row is refused with every problem, nothing changed ...
    assert "越秀区" in staff.get("/registry").text
    bad = "code,name,mark,sequence\nWEB1,网页测试区,网页测试区,district\nWEB2,,坏行,nosuch\n"
    preview = staff.upload("/registry/upload", {"csrf": token}, "单位.csv", bad.encode())
    assert preview.status == 200 and "不能导入" in preview.text
    assert preview.text.count("<li>") >= 2 and "单位.csv" in preview.text
    assert 'name="token"' not in preview.text  # nothing to confirm, nothing kept
    # ... a good one previewed (nothing written yet), then applied.
    good = (
        "code,name,mark,sequence\n"
        "WEB1,网页测试区,网页测试区,district\nYX,越秀区,【越秀区】,district\n"
    )
    preview = staff.upload("/registry/upload", {"csrf": token}, "units.csv", good.encode())
    assert "新增单位 1 个" in preview.text and "WEB1 网页测试区" in preview.text
    assert "1 行与名册相同" in preview.text
    with office.view.ledger.reader() as s:
        assert s.scalar(select(Unit).where(Unit.code == "WEB1")) is None
    upload = re.search(r'name="token" value="([0-9a-f]{32})"', preview.text)
    assert upload is not None
    # Another session cannot confirm this session's upload.
    other = Browser(staff.base)
    other.sign_in(STAFF)
    refused = other.post("/registry/apply", {"csrf": other.csrf(), "token": upload.group(1)})
    assert refused.status == 400 and "已失效" in refused.text
    done = staff.post("/registry/apply", {"csrf": token, "token": upload.group(1)})
    assert "名册已导入：新增单位 1 个" in done.text and "网页测试区" in done.text
    with office.view.ledger.reader() as s:
        assert s.scalar(select(Unit.name).where(Unit.code == "WEB1")) == "网页测试区"
    twice = staff.post("/registry/apply", {"csrf": token, "token": upload.group(1)})
    assert twice.status == 400
    # Over 1 MB: refused by its size, whether the body says so up front or only the file does;
    # a body of megabytes is read to its end first, so the client gets the page, not a reset.
    for extra in (1, 1 << 17, 4 << 20):
        big = b"code,name,mark,sequence\n" + b"x" * ((1 << 20) + extra)
        too_big = staff.upload("/registry/upload", {"csrf": token}, "big.csv", big)
        assert too_big.status == 413 and "不得超过 1 MB" in too_big.text

    # Reports sent: the list, the plain text in <pre>, the workbook to download.
    instance.cli("report", "monthly", "--period", "2026-03", "--send")
    listing = staff.get("/reports").text
    assert "月度通报" in listing and "2026-03" in listing
    first = re.search(r'href="/reports/(\d+)"', listing)
    assert first is not None
    report = staff.get(f"/reports/{first.group(1)}").text
    assert "<pre" in report and "2026年3月" in report and "<html" not in report[200:]
    link = re.search(r'href="(/reports/\d+/attachment/0)">([^<]+\.xlsx)<', report)
    assert link is not None
    book = staff.get(link.group(1))
    assert book.status == 200 and book.headers["content-type"].startswith(
        "application/vnd.openxmlformats"
    )
    assert load_workbook(io.BytesIO(book.body)).sheetnames
    assert "filename*=UTF-8''" in book.headers["content-disposition"]

    # The standings workbook, linked from the standings page.
    standings = staff.get("/standings?period=2026-03").text
    assert 'href="/standings.xlsx?period=2026-03"' in standings
    xlsx = staff.get("/standings.xlsx?period=2026-03")
    assert xlsx.status == 200 and load_workbook(io.BytesIO(xlsx.body)).sheetnames
    assert staff.get("/standings.xlsx?period=nonsense").status == 400

    # Every state-changing action is in the audit log, the web user its actor.
    audited = {(a.action, a.actor) for a in office.audit()}
    for action in ("intake_retry", "outbox_retry", "solicit_open", "solicit_close",
                   "registry_import"):  # fmt: skip
        assert (action, STAFF) in audited, action
    assert instance.cli("audit", "verify").returncode == 0


def leader_reads_every_page_and_is_refused_every_action(office: Office) -> None:
    leader = office.leader
    for path in ("/intake", "/intake?state=quarantined", "/reports", "/solicitations",
                 "/registry", "/outbox", "/standings"):  # fmt: skip
        page = leader.get(path)
        assert page.status == 200, path
        assert 'action="/intake/retry"' not in page.text
        assert "重新发送</button>" not in page.text and "发起约稿并发送通知" not in page.text
    token = leader.csrf()
    posts = {
        "/intake/retry": {"id": str(office.quarantined)},
        "/outbox/retry": {"id": str(office.failed)},
        "/solicitations/open": {"code": "X", "topic": "x", "deadline": "2026-04-01T00:00",
                                "all": "1"},
        "/solicitations/close": {"code": "X"},
        "/registry/apply": {"token": "0" * 32},
        "/registry/cancel": {"token": "0" * 32},
    }  # fmt: skip
    for path, fields in posts.items():
        reply = leader.post(path, {"csrf": token, **fields})
        assert reply.status == 403 and "无权操作" in reply.text, path
    upload = leader.upload("/registry/upload", {"csrf": token}, "u.csv", b"code,name\n")
    assert upload.status == 403
    # Nothing happened.
    with office.view.ledger.reader() as s:
        row = s.get(OutboundMessage, office.failed)
        assert row is not None and row.state == "failed"
    assert office.audit() == []
    assert html.escape("已隔离") in leader.get("/intake?state=quarantined").text
