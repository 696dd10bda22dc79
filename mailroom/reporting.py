"""Wiring of the reports: their settings from the config, and the service's scheduler."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, cast

from mailroom.app import App
from mailroom.errors import UserError

if TYPE_CHECKING:  # the report modules (openpyxl, APScheduler) load only when used
    from reports.deliver import ReportSettings
    from reports.model import ReportKind
    from reports.schedule import Clock, ReportScheduler
    from reports.warnings import WarningCheck

# For tests and demonstrations: the scheduler's clock starts at this ISO 8601 instant.
CLOCK_VARIABLE = "MAILROOM_CLOCK"


def report_settings(app: App) -> ReportSettings:
    from reports.deliver import ReportSettings
    from reports.render import template_set

    cfg = app.config
    return ReportSettings(
        zone=cfg.zone,
        sender=cfg.sender_address,
        sender_name=cfg.outbound.from_name,
        recipients=cfg.reports.recipients,
        templates=template_set(cfg.templates.language, cfg.templates.dir),
    )


def warning_check(app: App, every: float) -> WarningCheck:
    """The early warnings of `mailroom serve` (the rulebook's [[warnings]] points)."""
    from reports.warnings import WarningCheck

    return WarningCheck(app.ledger, app.rulebook, report_settings(app), every)


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
