"""Wiring of the reports: settings from the config, `mailroom report`, the service's scheduler."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast

from mailroom.app import App
from mailroom.config import REPORT_KINDS
from mailroom.errors import UserError

if TYPE_CHECKING:  # the report modules (openpyxl, APScheduler) load only when used
    from reports.deliver import ReportSettings
    from reports.model import ReportKind
    from reports.schedule import Clock, ReportScheduler

# For tests and demonstrations: the scheduler's clock starts at this ISO 8601 instant.
CLOCK_VARIABLE = "MAILROOM_CLOCK"


def report_settings(app: App) -> ReportSettings:
    from reports.deliver import ReportSettings

    cfg = app.config
    return ReportSettings(
        zone=cfg.zone,
        sender=cfg.sender_address,
        sender_name=cfg.outbound.from_name,
        recipients=cfg.reports.recipients,
    )


def add_report_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser("report", help="build a period report; write it or send it")
    report.add_argument("kind", choices=REPORT_KINDS)
    report.add_argument(
        "--period", required=True, help="2026-03 (monthly), 2026Q1 (quarterly), 2026 (annual)"
    )
    report.add_argument("--out", metavar="DIR", help="write the .html, .txt and .xlsx here")
    report.add_argument(
        "--send", action="store_true", help="send to every recipient who has not had it yet"
    )


def cmd_report(app: App, args: argparse.Namespace) -> int:
    from reports.build import report_period
    from reports.deliver import build, send_report
    from reports.render import ReportWriter
    from reports.xlsx import write_xlsx

    kind = cast("ReportKind", args.kind)
    settings = report_settings(app)
    try:
        period = report_period(kind, args.period, settings.zone, app.rulebook.calendar)
    except ValueError as exc:
        raise UserError(f"--period {exc}") from None
    writer = ReportWriter()
    if args.out or not args.send:
        today = datetime.now(UTC).astimezone(settings.zone).date()
        report = build(app.ledger, app.rulebook, settings, kind, period.label, today)
        if args.out:
            out = Path(args.out)
            try:
                out.mkdir(parents=True, exist_ok=True)
                base = out / report.header.basename
                base.with_suffix(".html").write_text(writer.html(report), encoding="utf-8")
                base.with_suffix(".txt").write_text(writer.text(report), encoding="utf-8")
                write_xlsx(report, base.with_suffix(".xlsx"))
            except OSError as exc:
                raise UserError(f"--out {out}: {exc.strerror or exc}") from None
            for suffix in (".html", ".txt", ".xlsx"):
                print(base.with_suffix(suffix))
        elif not args.send:
            print(writer.text(report), end="")
    if args.send:
        summary = send_report(app.ledger, app.rulebook, settings, kind, period.label)
        app.deliver()
        print(
            f"{kind} report {period.label}: sent to {summary.queued} recipient(s), "
            f"{summary.already_sent} had it already"
        )
    return 0


def scheduler_clock(environ: Mapping[str, str]) -> Clock | None:
    from reports.schedule import offset_clock

    value = environ.get(CLOCK_VARIABLE)
    if not value:
        return None
    try:
        start = datetime.fromisoformat(value)
        return offset_clock(start)
    except ValueError:
        raise UserError(f"{CLOCK_VARIABLE}={value!r} is not an ISO 8601 time with a zone") from None


def start_report_scheduler(
    app: App, on_queued: Callable[[], object], environ: Mapping[str, str] | None = None
) -> ReportScheduler:
    """Start the scheduled reports of `mailroom serve`; `on_queued` wakes the outbound sender."""
    from reports.deliver import send_report
    from reports.schedule import ReportScheduler, Schedule

    cfg = app.config
    settings = report_settings(app)

    def run(kind: ReportKind, period: str) -> None:
        summary = send_report(app.ledger, app.rulebook, settings, kind, period)
        if summary.queued:
            on_queued()

    scheduler = ReportScheduler(
        cfg.database.url,
        run,
        Schedule(
            kinds=tuple(cast("ReportKind", k) for k in cfg.reports.send),
            day=cfg.reports.schedule_day,
            hour=cfg.reports.schedule_hour,
            minute=cfg.reports.schedule_minute,
        ),
        app.rulebook.calendar,
        cfg.zone,
        clock=scheduler_clock(os.environ if environ is None else environ),
    )
    scheduler.start()
    return scheduler
