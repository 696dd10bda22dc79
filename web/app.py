"""The office's web console (SPEC §11): a Starlette application over the ledger, server-rendered
with Jinja2, every asset served by Mailroom itself.

Security in one place: a session is a random token in an HttpOnly, SameSite=Strict cookie
(Secure behind TLS) that the ledger knows by its hash (`ledger.accounts`); every POST carries
the session's CSRF token; roles are checked on the server for every route (leader: read, editor:
desk actions too, staff: everything); sign-in is throttled; every response carries a
Content-Security-Policy without `unsafe-inline`, and every string from an email is escaped by
Jinja2's autoescape (raw messages are shown as text, never as HTML).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.accounts import (
    SignedIn,
    Throttle,
    close_session,
    csrf_ok,
    find_session,
    open_session,
    sign_in,
    throttled,
)
from ledger.db import Ledger
from ledger.rulebook import Rulebook
from web.labels import reason_text, state_text

HERE = Path(__file__).parent
COOKIE = "mailroom_session"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}
READ, ACT, STAFF = "read", "act", "staff"
PAGE_SIZE = 50
UPLOAD_BYTES = 1 << 20  # the largest file the console takes (a registry import)
# A body refused by its declared size is still read (and dropped) up to this many bytes, so
# that the browser gets the refusal page: a server that answers and closes while the body is
# still coming makes the client see a reset connection instead.
DRAIN_BYTES = 8 * UPLOAD_BYTES


@dataclass(frozen=True)
class WebSettings:
    """What the console needs from the configuration (built by the composition root)."""

    zone: tzinfo
    office_name: str
    idle_minutes: int = 30
    secure_cookies: bool = False  # behind TLS: the cookie is sent over HTTPS only
    metrics_token: str | None = None  # /metrics from elsewhere than loopback, with this token
    throttle: Throttle = field(default_factory=Throttle)


class Actions(Protocol):
    """What the console asks of the rest of the house (wired by the composition root)."""

    def desk(self, editor: str, line: str) -> tuple[bool, str]:
        """Apply one desk line for `editor`: (applied, the reason code when not)."""

    def retry(self, intake_ids: list[int]) -> list[str]:
        """Re-run quarantined messages through the normal door: one line per message."""

    def open_solicitation(
        self, code: str, topic: str, deadline: datetime, units: list[str] | None, by: str
    ) -> int:
        """Open a 约稿 (None: every unit) and queue its notices; how many were queued. Raises
        `parser.errors.UserError` (e.g. the code is taken, a unit is unknown)."""

    def report_xlsx(self, period: str) -> tuple[str, bytes]:
        """The period's report workbook (monthly, quarterly or annual by the period's kind):
        its file name and bytes. Raises `parser.errors.UserError` for a period it cannot build."""

    def health(self) -> dict[str, Any]:
        """Database reachable, spool writable, filer alive, filing lag (for /healthz)."""

    def metrics(self) -> str:
        """The Prometheus text exposition (for /metrics)."""


Handler = Callable[[Request, SignedIn, FormData | None], Response]


class SecurityHeaders:
    """Adds the security headers to every HTTP response (pages, static files, errors)."""

    def __init__(self, app: ASGIApp, secure: bool) -> None:
        self.app = app
        self.headers = dict(SECURITY_HEADERS)
        if secure:
            self.headers["strict-transport-security"] = "max-age=31536000"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [
                    (k.encode(), v.encode())
                    for k, v in self.headers.items()
                    if k.encode() not in present
                ]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


class Console:
    """The console's routes; pages and actions live in `web.pages` and `web.actions`."""

    def __init__(
        self,
        ledger: Ledger,
        rulebook: Rulebook,
        settings: WebSettings,
        actions: Actions,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.ledger = ledger
        self.rulebook = rulebook
        self.settings = settings
        self.actions = actions
        self.clock = clock or (lambda: datetime.now(UTC))
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates" / "zh-Hans"),
            autoescape=select_autoescape(["html.j2"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["local"] = self.local
        self.env.filters["num"] = number
        self.env.filters["state"] = state_text
        self.env.filters["reason"] = reason_text

    # --- rendering --------------------------------------------------------------------------

    def local(self, instant: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return "" if instant is None else instant.astimezone(self.settings.zone).strftime(fmt)

    def render(
        self,
        request: Request,
        name: str,
        signed: SignedIn | None,
        context: Mapping[str, Any],
        status: int = 200,
    ) -> HTMLResponse:
        html = self.env.get_template(name).render(
            {
                "office_name": self.settings.office_name,
                "user": signed.account if signed else None,
                "csrf": signed.csrf if signed else "",
                "path": request.url.path,
                **context,
            }
        )
        return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})

    def forbidden(self, request: Request, signed: SignedIn) -> HTMLResponse:
        return self.render(
            request,
            "error.html.j2",
            signed,
            {"title": "无权操作", "message": "您的账号没有执行此项操作的权限。"},
            status=403,
        )

    # --- sessions ---------------------------------------------------------------------------

    def signed_in(self, request: Request) -> SignedIn | None:
        token = request.cookies.get(COOKIE, "")
        if not token:
            return None
        idle = timedelta(minutes=self.settings.idle_minutes)
        with self.ledger.transaction() as session:
            return find_session(session, token, self.clock(), idle)

    def route(
        self, need: str, handler: Handler, files: int = 0
    ) -> Callable[[Request], Awaitable[Response]]:
        """A page or action for the signed-in: role checked, CSRF checked on POST. A route
        that takes `files` uploads refuses a body over UPLOAD_BYTES (and one of unknown size)."""

        async def endpoint(request: Request) -> Response:
            signed = await run_in_threadpool(self.signed_in, request)
            if signed is None:
                target = quote(
                    request.url.path + (f"?{request.url.query}" if request.url.query else "")
                )
                if request.method != "GET":
                    return PlainTextResponse("请先登录。", status_code=401)
                return RedirectResponse(f"/login?next={target}", status_code=303)
            if not allowed(signed, need):
                return self.forbidden(request, signed)
            form = None
            if request.method == "POST":
                if files:
                    size = request.headers.get("content-length", "")
                    if not size.isdigit() or int(size) > UPLOAD_BYTES + (64 << 10):
                        if size.isdigit() and int(size) <= DRAIN_BYTES:
                            async for _chunk in request.stream():
                                pass
                        return self.render(
                            request,
                            "error.html.j2",
                            signed,
                            {
                                "title": "文件过大",
                                "message": f"上传的文件不得超过 {UPLOAD_BYTES >> 20} MB。",
                            },
                            status=413,
                        )
                form = await request.form(max_files=files, max_fields=200, max_part_size=1 << 20)
                given = form.get("csrf")
                if not csrf_ok(signed.csrf, given if isinstance(given, str) else None):
                    return self.render(
                        request,
                        "error.html.j2",
                        signed,
                        {
                            "title": "请求无效",
                            "message": "页面已过期或请求来源无效，请刷新页面后重试。",
                        },
                        status=403,
                    )
            try:
                return await run_in_threadpool(handler, request, signed, form)
            finally:
                if form is not None:
                    await form.close()  # an uploaded file's spooled copy goes now

        return endpoint

    # --- sign-in ----------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return self.render(
                request,
                "login.html.j2",
                None,
                {"error": "", "email": "", "next": _next(request.query_params.get("next"))},
            )
        form = await request.form(max_files=0, max_fields=10, max_part_size=4096)
        email = str(form.get("email") or "")[:320]
        password = str(form.get("password") or "")[:1024]
        target = _next(str(form.get("next") or ""))
        client = request.client.host if request.client else "?"
        refused, token = await run_in_threadpool(self._sign_in, email, password, client)
        if refused:
            status = 429 if refused == "throttled" else 401
            minutes = int(self.settings.throttle.window.total_seconds() // 60)
            message = (
                f"登录失败次数过多，请 {minutes} 分钟后再试。"
                if refused == "throttled"
                else "邮箱或密码不正确。"
            )
            return self.render(
                request,
                "login.html.j2",
                None,
                {"error": message, "email": email, "next": target},
                status=status,
            )
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=self.settings.secure_cookies,
            path="/",
        )
        return response

    def _sign_in(self, email: str, password: str, client: str) -> tuple[str, str]:
        """("", the new session's token), or ("throttled" | "failed", "")."""
        now = self.clock()
        throttle = self.settings.throttle
        with self.ledger.transaction() as session:
            if throttled(session, email, client, now, throttle):
                return "throttled", ""
        with self.ledger.transaction() as session:
            account = sign_in(session, email, password, client, now, throttle)
            if account is None:
                return "failed", ""
            token, _ = open_session(session, account, now)
            return "", token

    def logout(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        with self.ledger.transaction() as session:
            close_session(session, request.cookies.get(COOKIE, ""))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    # --- for operators ----------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        found = await run_in_threadpool(self.actions.health)
        status = 200 if found.get("ok") else 503
        lines = [f"{k}: {v}" for k, v in found.items()]
        return PlainTextResponse("\n".join(lines) + "\n", status_code=status)

    async def metrics(self, request: Request) -> Response:
        client = request.client.host if request.client else ""
        token = self.settings.metrics_token
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        loopback = client in ("127.0.0.1", "::1") or client.startswith("127.")
        if not loopback and not (token and csrf_ok(token, given)):
            return PlainTextResponse("forbidden\n", status_code=403)
        text = await run_in_threadpool(self.actions.metrics)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    # --- the application --------------------------------------------------------------------

    def app(self) -> ASGIApp:
        from web import actions, office, pages, registry

        routes = [
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/logout", self.route(READ, self.logout), methods=["POST"]),
            Route("/healthz", self.healthz),
            Route("/metrics", self.metrics),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
            *pages.routes(self),
            *actions.routes(self),
            *office.routes(self),
            *registry.routes(self),
        ]
        starlette = Starlette(routes=routes)
        return SecurityHeaders(starlette, self.settings.secure_cookies)


def allowed(signed: SignedIn, need: str) -> bool:
    account = signed.account
    if need == READ:
        return True
    if need == ACT:
        return account.can_act
    return account.is_staff


def _next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def number(value: Any) -> str:
    """18, or 18.5 for a 直报点 share."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(f)) if math.isfinite(f) and f == int(f) else f"{f:g}"
