"""The console's pages that read: dashboard, items (search), the item page, standings.

Each handler runs in a worker thread with its own read transaction and renders a template; what
came from an email reaches the page only through Jinja2's autoescape.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledger import search
from ledger.accounts import SignedIn
from ledger.calendar import Period, parse_period, quarter_of
from ledger.models import (
    AuditEntry,
    DeskAction,
    Intake,
    OutboundMessage,
    RawMessage,
    ScoreEvent,
    Submission,
    Unit,
)
from ledger.scoring import event_points, item_points, live_events
from ledger.solicit import list_solicitations, target_states
from ledger.standings import core_team, officer_standings, standings

if TYPE_CHECKING:
    from web.app import Console

OFFICERS_SHOWN = 100  # officers on one page of the standings (all of them: the .xlsx)
RAW_SHOWN = 200_000  # characters of a raw message shown on its page (the rest: download)
STATUS_TEXT = {"filed": "已登记", "superseded": "已由修改稿替代", "withdrawn": "已撤回"}
EVENT_TEXT = {
    "adoption": "采用",
    "bonus": "加分",
    "clue": "线索",
    "deduction": "扣分",
    "unit_bonus": "单位加分",
}
VERB_TEXT = {
    "adopt": "采用",
    "decline": "不采用",
    "return": "退回修改",
    "undo": "撤销",
    "bonus": "加分",
    "clue": "线索",
    "deduct": "扣分",
    "unit_bonus": "加分",
}


def routes(console: Console) -> list[Route]:
    from web.app import READ

    pages = Pages(console)
    return [
        Route("/", console.route(READ, pages.dashboard)),
        Route("/items", console.route(READ, pages.items)),
        Route("/items/{tracking_no}", console.route(READ, pages.item)),
        Route("/standings", console.route(READ, pages.standings)),
    ]


class Pages:
    def __init__(self, console: Console) -> None:
        self.c = console

    def period(self, text: str | None, now: datetime) -> tuple[Period | None, str]:
        """The period asked for (default: the current quarter), or None and the error."""
        zone, calendar = self.c.settings.zone, self.c.rulebook.calendar
        label = (text or "").strip() or quarter_of(now, zone, calendar).label
        try:
            return parse_period(label[:16], zone, calendar), ""
        except ValueError:
            return None, f"“{label[:16]}”不是有效的期间，请按 2027Q1、2027 或 2027-03 的格式填写。"

    # --- the dashboard ----------------------------------------------------------------------

    def dashboard(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        now = self.c.clock()
        zone = self.c.settings.zone
        local = now.astimezone(zone)
        day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        period, _ = self.period(None, now)
        assert period is not None
        with self.c.ledger.reader() as session:
            today = Counter(
                dict(
                    session.execute(
                        select(Intake.state, func.count())
                        .where(Intake.received_at >= day_start)
                        .group_by(Intake.state)
                    ).all()
                )
            )
            rows = standings(session, self.c.rulebook, period, zone)
            quarantined = session.scalars(
                select(Intake)
                .where(Intake.state == "quarantined")
                .order_by(Intake.id.desc())
                .limit(20)
            ).all()
            failed = session.scalars(
                select(OutboundMessage)
                .where(OutboundMessage.state.in_(("failed", "bounced")))
                .order_by(OutboundMessage.id.desc())
                .limit(20)
            ).all()
            open_solicitations = []
            for sol in list_solicitations(session):
                if sol.closed_at is not None:
                    continue
                states = target_states(session, sol, now)
                waiting = [s for s in states if s.state in ("pending", "missing")]
                open_solicitations.append({"sol": sol, "waiting": waiting, "total": len(states)})
        book = self.c.rulebook.in_force(period.start.astimezone(zone).date())
        tables: dict[str, list[Any]] = {}
        for s in rows:
            tables.setdefault(book.sequence_name(s.sequence), []).append(s)
        return self.c.render(
            request,
            "dashboard.html.j2",
            signed,
            {
                "today": sorted(today.items()),
                "today_total": sum(today.values()),
                "period": period,
                "tables": tables,
                "quarantined": quarantined,
                "failed": failed,
                "solicitations": open_solicitations,
            },
        )

    # --- items ------------------------------------------------------------------------------

    def items(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        q = request.query_params
        text = (q.get("q") or "").strip()[:100]
        unit = (q.get("unit") or "").strip()[:64]
        status = (q.get("status") or "").strip()[:16]
        publication = (q.get("publication") or "").strip()[:100]
        period, error = (None, "")
        if q.get("period"):
            period, error = self.period(q.get("period"), self.c.clock())
        try:
            page = max(1, min(int(q.get("page") or 1), 100_000))
        except ValueError:
            page = 1
        with self.c.ledger.reader() as session:
            query = select(Submission, Unit).join(Unit, Submission.unit_id == Unit.id)
            if text:
                query = query.where(search.matches(session, text))
            if unit:
                query = query.where(or_(Unit.code == unit, Unit.name == unit))
            if status:
                query = query.where(Submission.status == status)
            if period is not None:
                query = query.where(
                    Submission.received_at >= period.start, Submission.received_at < period.end
                )
            if publication:
                adopted = select(ScoreEvent.submission_id).where(
                    ScoreEvent.kind == "adoption",
                    ScoreEvent.rule == publication,
                    ScoreEvent.undone_at.is_(None),
                )
                query = query.where(Submission.id.in_(adopted))
            rows = session.execute(
                query.order_by(Submission.received_at.desc(), Submission.id.desc())
                .offset((page - 1) * 50)
                .limit(51)
            ).all()
            more = len(rows) > 50
            shown = [
                {
                    "item": item,
                    "unit": u,
                    "points": item_points(self.c.rulebook, live_events(session, item.id)),
                }
                for item, u in rows[:50]
            ]
            units = session.scalars(select(Unit).order_by(Unit.code)).all()
        return self.c.render(
            request,
            "items.html.j2",
            signed,
            {
                "rows": shown,
                "more": more,
                "page": page,
                "q": text,
                "short_term": bool(text) and search.is_short(text),
                "short_window": search.SHORT_TERM_WINDOW,
                "unit": unit,
                "status": status,
                "publication": publication,
                "period_text": q.get("period") or "",
                "error": error,
                "units": units,
                "publications": [p.name for p in self.c.rulebook.publications],
                "status_text": STATUS_TEXT,
            },
        )

    def item(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        tracking_no = request.path_params["tracking_no"][:40]
        with self.c.ledger.reader() as session:
            found = session.execute(
                select(Submission, Unit)
                .join(Unit, Submission.unit_id == Unit.id)
                .where(Submission.tracking_no == tracking_no)
            ).first()
            if found is None:
                return self.c.render(
                    request,
                    "error.html.j2",
                    signed,
                    {"title": "未找到", "message": f"没有登记编号为 {tracking_no} 的信息。"},
                    status=404,
                )
            item, unit = found
            chain = _chain(session, item)
            events = session.scalars(
                select(ScoreEvent)
                .where(ScoreEvent.submission_id == item.id)
                .order_by(ScoreEvent.id)
            ).all()
            scored = [
                {
                    "event": ev,
                    "points": event_points(self.c.rulebook, ev),
                    "kind": EVENT_TEXT.get(ev.kind, ev.kind),
                }
                for ev in events
            ]
            actions = session.scalars(
                select(DeskAction)
                .where(DeskAction.submission_id == item.id)
                .order_by(DeskAction.id)
            ).all()
            audit = session.scalars(
                select(AuditEntry)
                .where(AuditEntry.subject == item.tracking_no)
                .order_by(AuditEntry.id)
            ).all()
            raw = session.get(RawMessage, item.intake_id)
            raw_text = (
                raw.data[: RAW_SHOWN * 4].decode("utf-8", "replace")[:RAW_SHOWN] if raw else ""
            )
            points = item_points(self.c.rulebook, live_events(session, item.id))
        return self.c.render(
            request,
            "item.html.j2",
            signed,
            {
                "item": item,
                "unit": unit,
                "chain": chain,
                "events": scored,
                "actions": actions,
                "audit": audit,
                "raw_text": raw_text,
                "points": points,
                "status_text": STATUS_TEXT,
                "verb_text": VERB_TEXT,
                "publications": self.c.rulebook.publications,
                "message": request.query_params.get("done", "")[:200],
            },
        )

    # --- standings --------------------------------------------------------------------------

    def standings(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        now = self.c.clock()
        period, error = self.period(request.query_params.get("period"), now)
        zone = self.c.settings.zone
        tables: dict[str, list[Any]] = {}
        officers: list[Any] = []
        team: list[Any] = []
        if period is not None:
            with self.c.ledger.reader() as session:
                rows = standings(session, self.c.rulebook, period, zone)
                officers = officer_standings(session, self.c.rulebook, period, zone)
                if period.kind == "quarter":
                    team = core_team(session, self.c.rulebook, period, zone)
            book = self.c.rulebook.in_force(period.start.astimezone(zone).date())
            for s in rows:
                tables.setdefault(book.sequence_name(s.sequence), []).append(s)
        # A province ranks thousands of officers: a hundred a page.
        pages = max(1, -(-len(officers) // OFFICERS_SHOWN))
        try:
            page = max(1, min(int(request.query_params.get("officers_page") or 1), pages))
        except ValueError:
            page = 1
        shown = officers[(page - 1) * OFFICERS_SHOWN : page * OFFICERS_SHOWN]
        return self.c.render(
            request,
            "standings.html.j2",
            signed,
            {
                "period": period,
                "period_text": request.query_params.get("period", "")[:16],
                "error": error,
                "tables": tables,
                "officers": shown,
                "officers_total": len(officers),
                "officers_page": page,
                "officers_pages": pages,
                "team": team,
            },
        )


def _chain(session: Any, item: Submission) -> list[Submission]:
    """The revision chain through this item, oldest first (at most 50 steps each way)."""
    before: list[Submission] = []
    at = item
    for _ in range(50):
        if at.supersedes_id is None:
            break
        prev = session.get(Submission, at.supersedes_id)
        if prev is None:
            break
        before.append(prev)
        at = prev
    after: list[Submission] = []
    at = item
    for _ in range(50):
        nxt = session.scalar(select(Submission).where(Submission.supersedes_id == at.id))
        if nxt is None:
            break
        after.append(nxt)
        at = nxt
    return [*reversed(before), item, *after]
