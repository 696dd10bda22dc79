"""The console's office pages: the intake log (with quarantine and its re-run), reports sent
(with their text and workbook), 约稿 (open, status board, close), the outbox (with 重新发送 of
a failed mail), and the standings workbook.

Actions that change state are staff-only, carry the CSRF token (checked in `web.app`) and are
written to the audit log with the web user as the actor. What came from an email reaches a
page only through Jinja2's autoescape; a report is shown by its plain-text part, never its HTML.
"""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from sqlalchemy import Text, cast, func, or_, select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ledger.accounts import SignedIn
from ledger.audit import record
from ledger.models import Intake, OutboundMessage, ReportSend, Submission, Unit
from ledger.outbox import STATES as OUTBOX_STATES
from ledger.outbox import requeue_failed
from ledger.solicit import (
    SolicitError,
    close_solicitation,
    deduct_missing,
    list_solicitations,
    target_states,
)
from parser.errors import UserError
from web.labels import STATE_TEXT

if TYPE_CHECKING:
    from web.app import Console

PAGE = 50
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
OUTBOX_TEXT = {"queued": "待发送", "sent": "已发送", "failed": "发送失败", "bounced": "已退信"}
TARGET_TEXT = {"answered": "已报送", "late": "逾期报送", "missing": "未报送", "pending": "待报送"}
REPORT_TEXT = {"monthly": "月度通报", "quarterly": "季度通报", "annual": "年度通报"}
MAX_SHOWN = 200_000  # characters of a report's text shown on its page


def routes(console: Console) -> list[Route]:
    from web.app import READ, STAFF

    o = Office(console)
    return [
        Route("/intake", console.route(READ, o.intake)),
        Route("/quarantine", quarantine),
        Route("/intake/retry", console.route(STAFF, o.retry), methods=["POST"]),
        Route("/reports", console.route(READ, o.reports)),
        Route("/reports/{send_id:int}", console.route(READ, o.report)),
        Route("/reports/{send_id:int}/attachment/{n:int}", console.route(READ, o.attachment)),
        Route("/solicitations", console.route(READ, o.solicitations)),
        Route("/solicitations/open", console.route(STAFF, o.open), methods=["POST"]),
        Route("/solicitations/close", console.route(STAFF, o.close), methods=["POST"]),
        Route("/outbox", console.route(READ, o.outbox)),
        Route("/outbox/retry", console.route(STAFF, o.outbox_retry), methods=["POST"]),
        Route("/standings.xlsx", console.route(READ, o.standings_xlsx)),
    ]


async def quarantine(request: Request) -> Response:
    return RedirectResponse("/intake?state=quarantined", status_code=303)


def _q(request: Request, name: str, limit: int = 100) -> str:
    return (request.query_params.get(name) or "").strip()[:limit]


def _field(form: FormData | None, name: str, limit: int = 200) -> str:
    value = form.get(name) if form is not None else None
    return value.strip()[:limit] if isinstance(value, str) else ""


def _page(request: Request) -> int:
    try:
        return max(1, min(int(request.query_params.get("page") or 1), 100_000))
    except ValueError:
        return 1


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _done(path: str, message: str) -> Response:
    sep = "&" if "?" in path else "?"
    return RedirectResponse(f"{path}{sep}done={quote(message)}", status_code=303)


def message_of(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def plain_part(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    if body is None:
        return ""
    try:
        content = body.get_content()
    except (LookupError, ValueError):
        return ""
    return content[:MAX_SHOWN] if isinstance(content, str) else ""


def xlsx_parts(msg: EmailMessage) -> list[tuple[str, EmailMessage]]:
    """The mail's .xlsx attachments, in order: (file name, part)."""
    found = []
    for part in msg.iter_attachments():
        name = part.get_filename() or ""
        if isinstance(part, EmailMessage) and name.lower().endswith(".xlsx"):
            found.append((name, part))
    return found


def download(name: str, data: bytes, media_type: str = XLSX) -> Response:
    """A file to save, its (possibly Chinese) name in RFC 5987 form only."""
    return Response(
        data,
        media_type=media_type,
        headers={
            "content-disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "cache-control": "no-store",
        },
    )


class Office:
    def __init__(self, console: Console) -> None:
        self.c = console

    def _audit(
        self, session: Any, signed: SignedIn, action: str, subject: str, **details: Any
    ) -> None:
        record(
            session,
            at=self.c.clock(),
            actor=signed.account.email,
            action=action,
            source="web",
            subject=subject,
            details=details,
        )

    # --- the intake log and quarantine ------------------------------------------------------

    def intake(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        state = _q(request, "state", 20)
        reason = _q(request, "reason", 64)
        mailbox = _q(request, "mailbox", 16)
        day_text = _q(request, "date", 10)
        sender = _q(request, "sender", 320)
        subject = _q(request, "q", 200)
        page = _page(request)
        error = ""
        query = select(Intake, Submission.tracking_no).outerjoin(
            Submission, Submission.intake_id == Intake.id
        )
        if state:
            query = query.where(Intake.state == state)
        if reason:
            query = query.where(
                cast(Intake.reasons, Text).like(f'%"{_like(reason)}"%', escape="\\")
            )
        if mailbox:
            query = query.where(Intake.mailbox == mailbox)
        if day_text:
            try:
                day = datetime.strptime(day_text, "%Y-%m-%d").replace(tzinfo=self.c.settings.zone)
                query = query.where(
                    Intake.received_at >= day, Intake.received_at < day + timedelta(days=1)
                )
            except ValueError:
                error = f"“{day_text}”不是有效的日期，请按 2027-03-15 的格式填写。"
        if sender:
            like = f"%{_like(sender.lower())}%"
            query = query.where(
                or_(
                    func.lower(Intake.from_address).like(like, escape="\\"),
                    func.lower(Intake.envelope_from).like(like, escape="\\"),
                )
            )
        if subject:
            query = query.where(Intake.subject.like(f"%{_like(subject)}%", escape="\\"))
        with self.c.ledger.reader() as session:
            rows = session.execute(
                query.order_by(Intake.received_at.desc(), Intake.id.desc())
                .offset((page - 1) * PAGE)
                .limit(PAGE + 1)
            ).all()
            mailboxes = sorted(session.scalars(select(Intake.mailbox).distinct()))
        filters = {
            "state": state,
            "reason": reason,
            "mailbox": mailbox,
            "date": day_text,
            "sender": sender,
            "q": subject,
        }
        return self.c.render(
            request,
            "intake.html.j2",
            signed,
            {
                "rows": [(i, t) for i, t in rows[:PAGE]],
                "more": len(rows) > PAGE,
                "page": page,
                "f": filters,
                "query": urlencode(filters),
                "error": error,
                "states": STATE_TEXT,
                "mailboxes": mailboxes,
                "message": _q(request, "done", 2000),
            },
        )

    def retry(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        try:
            intake_id = int(_field(form, "id", 20))
        except ValueError:
            return _done("/intake?state=quarantined", "未指定要重新处理的邮件。")
        lines = self.c.actions.retry([intake_id])
        with self.c.ledger.transaction() as session:
            self._audit(session, signed, "intake_retry", f"intake:{intake_id}", result=lines)
        return _done("/intake?state=quarantined", "重新处理结果：" + "；".join(lines))

    # --- reports ----------------------------------------------------------------------------

    def reports(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        page = _page(request)
        with self.c.ledger.reader() as session:
            rows = session.execute(
                select(ReportSend, OutboundMessage)
                .outerjoin(OutboundMessage, ReportSend.outbox_id == OutboundMessage.id)
                .order_by(ReportSend.created_at.desc(), ReportSend.id.desc())
                .offset((page - 1) * PAGE)
                .limit(PAGE + 1)
            ).all()
        return self.c.render(
            request,
            "reports.html.j2",
            signed,
            {
                "rows": [(r, m) for r, m in rows[:PAGE]],
                "more": len(rows) > PAGE,
                "page": page,
                "report_text": REPORT_TEXT,
                "outbox_text": OUTBOX_TEXT,
            },
        )

    def _sent(self, request: Request) -> tuple[ReportSend, OutboundMessage | None] | None:
        with self.c.ledger.reader() as session:
            found = session.execute(
                select(ReportSend, OutboundMessage)
                .outerjoin(OutboundMessage, ReportSend.outbox_id == OutboundMessage.id)
                .where(ReportSend.id == request.path_params["send_id"])
            ).first()
            if found is None:
                return None
            session.expunge_all()
            return found[0], found[1]

    def _not_found(self, request: Request, signed: SignedIn) -> Response:
        return self.c.render(
            request,
            "error.html.j2",
            signed,
            {"title": "未找到", "message": "没有这份通报的发送记录。"},
            status=404,
        )

    def report(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        found = self._sent(request)
        if found is None:
            return self._not_found(request, signed)
        send, mail = found
        msg = message_of(mail.message) if mail is not None else None
        return self.c.render(
            request,
            "report.html.j2",
            signed,
            {
                "send": send,
                "mail": mail,
                "text": plain_part(msg) if msg is not None else "",
                "attachments": [name for name, _ in xlsx_parts(msg)] if msg is not None else [],
                "report_text": REPORT_TEXT,
                "outbox_text": OUTBOX_TEXT,
            },
        )

    def attachment(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        found = self._sent(request)
        if found is None or found[1] is None:
            return self._not_found(request, signed)
        parts = xlsx_parts(message_of(found[1].message))
        n = request.path_params["n"]
        if not 0 <= n < len(parts):
            return self._not_found(request, signed)
        name, part = parts[n]
        data = part.get_payload(decode=True)
        return download(name, data if isinstance(data, bytes) else b"")

    # --- 约稿 --------------------------------------------------------------------------------

    def solicitations(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        now = self.c.clock()
        with self.c.ledger.reader() as session:
            shown = []
            for sol in reversed(list_solicitations(session)):
                states = target_states(session, sol, now)
                counts = {k: sum(1 for s in states if s.state == k) for k in TARGET_TEXT}
                shown.append({"sol": sol, "states": states, "counts": counts})
            units = session.scalars(
                select(Unit).where(Unit.sequence != "office").order_by(Unit.code)
            ).all()
        return self.c.render(
            request,
            "solicitations.html.j2",
            signed,
            {
                "rows": shown,
                "units": units,
                "target_text": TARGET_TEXT,
                "message": _q(request, "done", 2000),
                "error": _q(request, "error", 2000),
            },
        )

    def open(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        assert form is not None
        code = _field(form, "code", 64)
        topic = _field(form, "topic", 2000)
        deadline_text = _field(form, "deadline", 32)
        units = [u[:64] for u in form.getlist("unit") if isinstance(u, str)][:1000]
        every = _field(form, "all", 8) == "1"
        try:
            deadline = datetime.fromisoformat(deadline_text)
        except ValueError:
            return _error("截止时间无效，请按 2027-03-15 17:00 的格式填写。")
        if deadline.tzinfo is None:
            deadline = deadline.replace(tzinfo=self.c.settings.zone)
        if not every and not units:
            return _error("请选择约稿单位，或勾选“全部单位”。")
        try:
            mails = self.c.actions.open_solicitation(
                code, topic, deadline, None if every else units, signed.account.email
            )
        except UserError as exc:
            return _error(f"未能发起约稿：{exc}")
        return _done("/solicitations", f"已发起约稿 {code}，已排队发送 {mails} 份约稿通知。")

    def close(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        code = _field(form, "code", 64)
        now = self.c.clock()
        try:
            with self.c.ledger.transaction() as session:
                close_solicitation(session, code, by=signed.account.email, at=now)
                missing = deduct_missing(session, self.c.rulebook, now)
                self._audit(session, signed, "solicit_close", code, deducted=missing)
        except SolicitError as exc:
            return _error(f"未能结束约稿：{exc}")
        tail = f"，{missing} 个未报送单位已按规则扣分" if missing else ""
        return _done("/solicitations", f"约稿 {code} 已结束{tail}。")

    # --- the outbox -------------------------------------------------------------------------

    def outbox(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        state = _q(request, "state", 16)
        page = _page(request)
        with self.c.ledger.reader() as session:
            counts = dict(
                session.execute(
                    select(OutboundMessage.state, func.count()).group_by(OutboundMessage.state)
                ).all()
            )
            query = select(OutboundMessage).order_by(OutboundMessage.id.desc())
            if state:
                query = query.where(OutboundMessage.state == state)
            rows = session.scalars(query.offset((page - 1) * PAGE).limit(PAGE + 1)).all()
        return self.c.render(
            request,
            "outbox.html.j2",
            signed,
            {
                "rows": rows[:PAGE],
                "more": len(rows) > PAGE,
                "page": page,
                "state": state,
                "counts": [(s, OUTBOX_TEXT[s], counts.get(s, 0)) for s in OUTBOX_STATES],
                "outbox_text": OUTBOX_TEXT,
                "message": _q(request, "done", 2000),
            },
        )

    def outbox_retry(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        try:
            outbox_id = int(_field(form, "id", 20))
        except ValueError:
            return _done("/outbox?state=failed", "未指定要重新发送的邮件。")
        with self.c.ledger.transaction() as session:
            row = requeue_failed(session, outbox_id, self.c.clock())
            if row is not None:
                self._audit(
                    session, signed, "outbox_retry", f"outbox:{outbox_id}", to=row.to_address
                )
        if row is None:
            return _done("/outbox", f"第 {outbox_id} 号邮件不是发送失败的邮件，未作处理。")
        return _done("/outbox", f"第 {outbox_id} 号邮件已重新排队发送。")

    # --- the standings workbook -------------------------------------------------------------

    def standings_xlsx(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        from web.pages import Pages

        period, error = Pages(self.c).period(request.query_params.get("period"), self.c.clock())
        if period is not None:
            try:
                name, data = self.c.actions.report_xlsx(period.label)
            except UserError as exc:
                error = f"未能生成工作簿：{exc}"
            else:
                return download(name, data)
        return self.c.render(
            request, "error.html.j2", signed, {"title": "无法导出", "message": error}, status=400
        )


def _error(message: str) -> Response:
    return RedirectResponse(f"/solicitations?error={quote(message)}", status_code=303)
