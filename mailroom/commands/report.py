"""`mailroom report`: a period's report written out, shown, or sent (SPEC §6)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast

from mailroom.app import App
from mailroom.commands.output import by
from mailroom.config import REPORT_KINDS
from mailroom.errors import UserError
from mailroom.reporting import report_settings

if TYPE_CHECKING:  # the report modules (openpyxl) load only when used
    from reports.model import ReportKind


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser("report", help="build a period report; write it or send it")
    report.add_argument("kind", choices=REPORT_KINDS)
    report.add_argument(
        "--period", required=True, help="2026-03 (monthly), 2026Q1 (quarterly), 2026 (annual)"
    )
    report.add_argument("--out", metavar="DIR", help="write the .html, .txt and .xlsx here")
    report.add_argument(
        "--send", action="store_true", help="send to every recipient who has not had it yet"
    )
    report.add_argument(
        "--note",
        metavar="FILE",
        help="the office's own text for this report and period (UTF-8), kept for every later "
        "build and send of it; an empty file removes it",
    )
    report.add_argument("--by", help="who sets the note (default: the login name)")
    report.set_defaults(run=cmd_report)


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
    if args.note:
        from ledger.report_notes import set_note

        try:
            text = Path(args.note).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(
                f"--note {args.note}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        with app.ledger.transaction() as session:
            try:
                set_note(session, kind, period.label, text, by=by(args), at=datetime.now(UTC))
            except ValueError as exc:
                raise UserError(f"--note {args.note}: {exc}") from None
    writer = ReportWriter(settings.templates)
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
                write_xlsx(report, base.with_suffix(".xlsx"), writer.words)
            except OSError as exc:
                raise UserError(f"--out {out}: {exc.strerror or exc}") from None
            for suffix in (".html", ".txt", ".xlsx"):
                print(base.with_suffix(suffix))
        elif not args.send:
            print(writer.text(report), end="")
    if args.send:
        summary = send_report(app.ledger, app.rulebook, settings, kind, period.label, writer=writer)
        app.deliver()
        print(
            f"{kind} report {period.label}: sent to {summary.queued} recipient(s), "
            f"{summary.already_sent} had it already"
        )
    return 0
