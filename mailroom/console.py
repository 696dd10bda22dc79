"""Wiring of the web console: its settings from the config, what it may ask of the rest of the
house (desk actions, re-runs, health, metrics), and uvicorn serving it on `[web] listen`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Text, cast, func, select, text

from ledger.accounts import Throttle
from ledger.audit import record
from ledger.calendar import parse_period
from ledger.models import Intake, OutboundMessage
from ledger.solicit import open_solicitation
from mailroom.app import App
from parser.errors import UserError
from web.app import Console, WebSettings

log = logging.getLogger("mailroom.web")
# The report built for a period of each kind (ledger.calendar's kinds).
REPORT_OF_PERIOD: dict[str | None, Literal["monthly", "quarterly", "annual"]] = {
    "month": "monthly",
    "quarter": "quarterly",
    "year": "annual",
}


def _period_kind(text: str, app: App) -> str | None:
    try:
        return parse_period(text, app.config.zone, app.rulebook.calendar).kind
    except ValueError:
        return None


class HouseActions:
    """`web.app.Actions` over the App: the desk, the door, the spool, the ledger."""

    def __init__(self, app: App, filer_alive: Callable[[], bool | None] = lambda: None) -> None:
        self.app = app
        self.filer_alive = filer_alive

    def desk(self, editor: str, line: str) -> tuple[bool, str]:
        now = datetime.now(UTC)
        with self.app.ledger.transaction() as session:
            outcome = self.app.pipeline.desk.act(session, editor, line, now)
        return outcome.applied, outcome.code or ""

    def retry(self, intake_ids: list[int]) -> list[str]:
        """As `mailroom intake retry` does (the sender of `serve` sends what it queued)."""
        from ingest.door import retry

        lines = []
        for intake_id in intake_ids:
            try:
                r = retry(self.app.pipeline, intake_id)
            except UserError as exc:
                lines.append(f"{intake_id}: {exc}")
                continue
            o = r.outcome
            tail = f" {o.tracking_no}" if o.tracking_no else ""
            why = f" ({', '.join(o.reasons)})" if o.reasons else ""
            again = "; retried before, nothing changed" if r.again else ""
            lines.append(f"{intake_id}: as {o.intake_id}, {o.state}{why}{tail}{again}")
        return lines

    def open_solicitation(
        self, code: str, topic: str, deadline: datetime, units: list[str] | None, by: str
    ) -> int:
        """As `mailroom solicit open` does: the 约稿 and its notices in one transaction (the
        sender of `serve` sends them), audited with the web user as the actor."""
        from ingest.notices import send_notices

        now = datetime.now(UTC)
        with self.app.ledger.transaction() as session:
            sol = open_solicitation(session, code, topic, deadline, units=units, by=by, at=now)
            mails = send_notices(session, self.app.solicit_mailer, sol, now)
            record(
                session,
                at=now,
                actor=by,
                action="solicit_open",
                source="web",
                subject=sol.code,
                details={
                    "topic": sol.topic,
                    "deadline": sol.deadline.isoformat(),
                    "units": [t.unit.code for t in sol.targets],
                    "notices": mails,
                },
            )
        return mails

    def report_xlsx(self, period: str) -> tuple[str, bytes]:
        """The workbook `mailroom report KIND --period P --out` writes."""
        from mailroom.reporting import report_settings
        from reports.build import report_period
        from reports.deliver import build
        from reports.render import ReportWriter
        from reports.xlsx import xlsx_bytes

        settings = report_settings(self.app)
        kind = REPORT_OF_PERIOD.get(_period_kind(period, self.app))
        if kind is None:
            raise UserError(f"no report is built for the period {period!r}")
        try:
            label = report_period(kind, period, settings.zone, self.app.rulebook.calendar).label
        except ValueError as exc:
            raise UserError(str(exc)) from None
        today = datetime.now(UTC).astimezone(settings.zone).date()
        report = build(self.app.ledger, self.app.rulebook, settings, kind, label, today)
        writer = ReportWriter(settings.templates)
        return report.header.basename + ".xlsx", xlsx_bytes(report, writer.words)

    def _lag_seconds(self) -> float:
        """How long the oldest message accepted and not yet filed has waited."""
        oldest = None
        spool = self.app.spool
        for spool_id in spool.pending()[:1]:
            oldest = spool.arrived(spool_id)
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    def health(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        try:
            with self.app.ledger.reader() as session:
                session.execute(text("SELECT 1"))
            found["database"] = "ok"
        except Exception as exc:  # a health probe reports every failure, it never raises
            found["database"] = f"unreachable ({type(exc).__name__})"
        found["spool"] = "writable" if self.app.spool.writable() else "not writable"
        alive = self.filer_alive()
        found["filer"] = {True: "alive", False: "not running", None: "not run by this process"}[
            alive
        ]
        found["filing_lag_seconds"] = round(self._lag_seconds(), 1)
        found["ok"] = (
            found["database"] == "ok" and found["spool"] == "writable" and alive is not False
        )
        return found

    def metrics(self) -> str:
        out = []
        with self.app.ledger.reader() as session:
            intake = session.execute(
                select(Intake.state, func.count()).group_by(Intake.state)
            ).all()
            outbox = session.execute(
                select(OutboundMessage.state, func.count()).group_by(OutboundMessage.state)
            ).all()
            since = datetime.now(UTC) - timedelta(hours=1)
            limited = session.scalar(
                select(func.count())
                .select_from(Intake)
                .where(
                    Intake.received_at >= since,
                    cast(Intake.reasons, Text).like("%refusal_rate_limited%"),
                )
            )
        out.append("# HELP mailroom_intake_messages Messages in the intake log, by state.")
        out.append("# TYPE mailroom_intake_messages gauge")
        out += [f'mailroom_intake_messages{{state="{s}"}} {n}' for s, n in sorted(intake)]
        out.append("# HELP mailroom_outbox_messages Outgoing mail, by state.")
        out.append("# TYPE mailroom_outbox_messages gauge")
        out += [f'mailroom_outbox_messages{{state="{s}"}} {n}' for s, n in sorted(outbox)]
        out.append("# HELP mailroom_spool_depth Messages accepted and waiting to be filed.")
        out.append("# TYPE mailroom_spool_depth gauge")
        out.append(f"mailroom_spool_depth {len(self.app.spool.pending())}")
        out.append("# HELP mailroom_filing_lag_seconds Age of the oldest message waiting.")
        out.append("# TYPE mailroom_filing_lag_seconds gauge")
        out.append(f"mailroom_filing_lag_seconds {self._lag_seconds():.1f}")
        out.append("# HELP mailroom_refusals_rate_limited Refusals held back in the last hour.")
        out.append("# TYPE mailroom_refusals_rate_limited gauge")
        out.append(f"mailroom_refusals_rate_limited {limited or 0}")
        return "\n".join(out) + "\n"


def web_settings(app: App) -> WebSettings:
    cfg = app.config
    web = cfg.web
    return WebSettings(
        zone=cfg.zone,
        office_name=cfg.outbound.from_name,
        idle_minutes=web.idle_minutes,
        secure_cookies=web.behind_tls,
        metrics_token=web.metrics_token,
        throttle=Throttle(web.login_failures, timedelta(minutes=web.login_pause_minutes)),
    )


def console_app(app: App, filer_alive: Callable[[], bool | None] = lambda: None) -> Any:
    app.spool.ensure()  # /healthz reports whether it is writable
    console = Console(app.ledger, app.rulebook, web_settings(app), HouseActions(app, filer_alive))
    return console.app()


def uvicorn_config(app: App, filer_alive: Callable[[], bool | None] = lambda: None) -> Any:
    """uvicorn's settings for the console on `[web] listen` (no access log: the audit log
    says who did what; no Server header)."""
    import uvicorn

    cfg = app.config.web
    return uvicorn.Config(
        console_app(app, filer_alive),
        host=cfg.listen_host,
        port=cfg.listen_port,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )


class WebServer:
    """uvicorn on its own thread (it installs no signal handlers there): `mailroom serve`
    stops it with the rest."""

    def __init__(self, app: App, filer_alive: Callable[[], bool | None] = lambda: None) -> None:
        import uvicorn

        cfg = app.config.web
        self.server = uvicorn.Server(uvicorn_config(app, filer_alive))
        self.thread = threading.Thread(target=self.server.run, name="web", daemon=True)
        self.where = f"http://{cfg.listen_host}:{cfg.listen_port}/"

    def start(self, timeout: float = 10.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise OSError(f"the web console could not listen on {self.where}")
            if time.monotonic() > deadline:
                raise OSError(f"the web console did not start on {self.where}")
            time.sleep(0.02)
        log.info("web console on %s", self.where)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
