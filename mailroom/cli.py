"""The `mailroom` command (SPEC §7.1). User mistakes: one line on stderr, non-zero exit."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError

from ingest.pipeline import Arrival
from ledger.calendar import parse_period, quarter_of
from ledger.models import Intake, OutboundMessage, Submission, Unit
from mailroom.app import App, migrate
from mailroom.config import MAILBOX_KINDS, config_path, load_config
from mailroom.errors import UserError
from mailroom.reporting import add_report_parser, cmd_report


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mailroom", description="Email intake, ledger and reports for 政务信息."
    )
    p.add_argument("--config", help="config file (default: $MAILROOM_CONFIG, then ./mailroom.toml)")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = sub.add_parser("init", help="create or upgrade the database")
    init.add_argument("--demo", action="store_true", help="load the Guangzhou sample registry")

    serve = sub.add_parser("serve", help="run the SMTP listener, worker and sender")
    serve.add_argument(
        "--no-process",
        action="store_true",
        help="accept and spool mail only; process it at the next normal start",
    )

    ingest = sub.add_parser("ingest", help="run the pipeline on .eml files")
    ingest.add_argument("files", nargs="+", metavar="FILE.eml")
    ingest.add_argument("--mailbox", choices=MAILBOX_KINDS, default="daily")
    ingest.add_argument("--received-at", help="ISO 8601 time of receipt (default: now)")
    ingest.add_argument("--no-send", action="store_true", help="queue replies, do not send")
    ingest.add_argument("--json", action="store_true")

    registry = sub.add_parser("registry", help="import or export units and people")
    rsub = registry.add_subparsers(dest="action", required=True, metavar="ACTION")
    rimp = rsub.add_parser("import", help="import .csv or .xlsx files (all or nothing)")
    rimp.add_argument("files", nargs="+", metavar="FILE")
    rexp = rsub.add_parser("export", help="export to .xlsx (both tables) or .csv (one)")
    rexp.add_argument("file", metavar="FILE")
    rexp.add_argument("--table", choices=("units", "people"), help="which table, for .csv")

    intake = sub.add_parser("intake", help="the intake log")
    isub = intake.add_subparsers(dest="action", required=True, metavar="ACTION")
    ilist = isub.add_parser("list", help="every message with its state and reasons")
    ilist.add_argument("--json", action="store_true")
    ilist.add_argument("--state", help="only messages in this state")

    items = sub.add_parser("items", help="filed items")
    itsub = items.add_subparsers(dest="action", required=True, metavar="ACTION")
    itlist = itsub.add_parser("list")
    itlist.add_argument("--period", help="2026Q1, 2026 or 2026-03")
    itlist.add_argument("--unit", help="unit code")
    itlist.add_argument("--json", action="store_true")
    itshow = itsub.add_parser("show")
    itshow.add_argument("tracking_no", metavar="TRACKING")
    itshow.add_argument("--json", action="store_true")

    add_report_parser(sub)

    outbox = sub.add_parser("outbox", help="outgoing mail and its state")
    outbox.add_argument("--json", action="store_true")
    outbox.add_argument("--send", action="store_true", help="send what is due now")
    return p


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def _table(rows: list[list[str]], headers: list[str]) -> None:
    from unicodedata import east_asian_width

    def width(text: str) -> int:
        return sum(2 if east_asian_width(c) in "WF" else 1 for c in text)

    all_rows = [headers, *rows]
    widths = [max(width(r[i]) for r in all_rows) for i in range(len(headers))]
    for r in all_rows:
        print(
            "  ".join(cell + " " * (widths[i] - width(cell)) for i, cell in enumerate(r)).rstrip()
        )
    if not rows:
        print("(none)")


def cmd_init(app: App, args: argparse.Namespace) -> int:
    migrate(app.config.database.url)
    print(f"database ready: {app.config.database.url}")
    if args.demo:
        from ledger.demo import load_demo

        with app.ledger.transaction() as session:
            summary = load_demo(session)
        print(f"demo registry loaded: {summary}")
    return 0


def cmd_serve(app: App, args: argparse.Namespace) -> int:
    from mailroom.service import serve

    serve(app, process=not args.no_process)
    return 0


def cmd_ingest(app: App, args: argparse.Namespace) -> int:
    received_at = datetime.now(UTC)
    if args.received_at:
        try:
            received_at = datetime.fromisoformat(args.received_at)
        except ValueError:
            raise UserError(f"--received-at {args.received_at!r} is not an ISO 8601 time") from None
        if received_at.tzinfo is None:
            received_at = received_at.replace(tzinfo=app.config.reports.zone)
    results: list[dict[str, Any]] = []
    for name in args.files:
        path = Path(name)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
        outcome = app.pipeline.process(
            raw, Arrival(mailbox=args.mailbox, channel="file", received_at=received_at)
        )
        results.append(
            {
                "file": str(path),
                "intake_id": outcome.intake_id,
                "state": outcome.state,
                "reasons": list(outcome.reasons),
                "tracking_no": outcome.tracking_no,
            }
        )
    if not args.no_send:
        app.deliver()
    if args.json:
        _print_json(results)
    else:
        for r in results:
            extra = f" {r['tracking_no']}" if r["tracking_no"] else ""
            reasons = f" ({', '.join(r['reasons'])})" if r["reasons"] else ""
            print(f"{r['file']}: {r['state']}{extra}{reasons}")
    return 0


def cmd_registry(app: App, args: argparse.Namespace) -> int:
    from ledger.registry import export_registry, import_registry

    if args.action == "import":
        paths = [Path(f) for f in args.files]
        with app.ledger.transaction() as session:
            summary = import_registry(session, paths)
        print(f"imported: {summary}")
        return 0
    path = Path(args.file)
    with app.ledger.reader() as session:
        export_registry(session, path, args.table)
    print(f"exported to {path}")
    return 0


def cmd_intake(app: App, args: argparse.Namespace) -> int:
    with app.ledger.reader() as session:
        query = select(Intake, Submission.tracking_no).outerjoin(
            Submission, Submission.intake_id == Intake.id
        )
        if args.state:
            query = query.where(Intake.state == args.state)
        rows = session.execute(query.order_by(Intake.id)).all()
    data: list[dict[str, Any]] = [
        {
            "id": intake.id,
            "message_id": intake.message_id,
            "mailbox": intake.mailbox,
            "channel": intake.channel,
            "from": intake.from_address,
            "subject": intake.subject,
            "received_at": _iso(intake.received_at),
            "state": intake.state,
            "reasons": list(intake.reasons),
            "tracking_no": tracking,
        }
        for intake, tracking in rows
    ]
    if args.json:
        _print_json(data)
    else:
        _table(
            [
                [
                    str(d["id"]),
                    str(d["received_at"])[:19],
                    d["mailbox"],
                    d["state"],
                    ",".join(d["reasons"]),
                    d["tracking_no"] or "",
                    d["subject"][:40],
                ]
                for d in data
            ],
            ["id", "received (UTC)", "mailbox", "state", "reasons", "tracking", "subject"],
        )
    return 0


def _item_json(app: App, item: Submission, unit_code: str) -> dict[str, Any]:
    zone = app.config.reports.zone
    return {
        "tracking_no": item.tracking_no,
        "unit_code": unit_code,
        "title": item.title,
        "status": item.status,
        "mailbox": item.mailbox,
        "received_at": _iso(item.received_at),
        "period": quarter_of(item.received_at, zone, app.rulebook.calendar).label,
        "body_chars": item.body_chars,
        "attachment_chars": item.attachment_chars,
        # Points are derived from adoption events; none exist until editors adopt items.
        "points": 0,
        "adoptions": [],
    }


def cmd_items(app: App, args: argparse.Namespace) -> int:
    with app.ledger.reader() as session:
        query = select(Submission, Unit.code).join(Unit, Submission.unit_id == Unit.id)
        if args.action == "show":
            row = session.execute(query.where(Submission.tracking_no == args.tracking_no)).first()
            if row is None:
                raise UserError(f"no item with tracking number {args.tracking_no}")
            item, code = row
            data = _item_json(app, item, code)
            data.update(
                body=item.body,
                signoff={
                    "unit": item.signoff_unit,
                    "author": item.signoff_author,
                    "phone": item.signoff_phone,
                    "date": item.signoff_date.isoformat() if item.signoff_date else None,
                },
                attachment_name=item.attachment_name,
                warnings=list(item.warnings),
            )
            if args.json:
                _print_json(data)
            else:
                for key, value in data.items():
                    print(f"{key}: {value}")
            return 0
        if args.period:
            try:
                period = parse_period(args.period, app.config.reports.zone, app.rulebook.calendar)
            except ValueError as exc:
                raise UserError(f"--period {exc}") from None
            query = query.where(
                Submission.received_at >= period.start, Submission.received_at < period.end
            )
        if args.unit:
            query = query.where(Unit.code == args.unit)
        rows = session.execute(query.order_by(Submission.id)).all()
        data_list = [_item_json(app, item, code) for item, code in rows]
    if args.json:
        _print_json(data_list)
    else:
        _table(
            [
                [
                    d["tracking_no"],
                    d["unit_code"],
                    d["period"],
                    d["status"],
                    str(d["body_chars"]),
                    d["title"][:40],
                ]
                for d in data_list
            ],
            ["tracking", "unit", "period", "status", "字数", "title"],
        )
    return 0


def cmd_outbox(app: App, args: argparse.Namespace) -> int:
    if args.send:
        app.deliver()
    with app.ledger.reader() as session:
        rows = session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)).all()
        data: list[dict[str, Any]] = [
            {
                "id": r.id,
                "to": r.to_address,
                "subject": r.subject,
                "kind": r.kind,
                "state": r.state,
                "attempts": r.attempts,
                "created_at": _iso(r.created_at),
                "sent_at": _iso(r.sent_at),
                "last_error": r.last_error,
            }
            for r in rows
        ]
    if args.json:
        _print_json(data)
    else:
        _table(
            [
                [
                    str(d["id"]),
                    d["kind"],
                    d["state"],
                    str(d["attempts"]),
                    d["to"],
                    d["subject"][:40],
                ]
                for d in data
            ],
            ["id", "kind", "state", "tries", "to", "subject"],
        )
    return 0


COMMANDS = {
    "init": cmd_init,
    "serve": cmd_serve,
    "ingest": cmd_ingest,
    "registry": cmd_registry,
    "intake": cmd_intake,
    "items": cmd_items,
    "outbox": cmd_outbox,
    "report": cmd_report,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.command == "serve" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app: App | None = None
    try:
        config = load_config(config_path(args.config))
        app = App.open(config)
        return COMMANDS[args.command](app, args)
    except UserError as exc:
        print(f"mailroom: {exc}", file=sys.stderr)
        return 2
    except (OperationalError, ProgrammingError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        hint = "" if args.command == "init" else " (has `mailroom init` been run?)"
        print(f"mailroom: database error: {reason}{hint}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    finally:
        if app is not None:
            app.close()


if __name__ == "__main__":
    sys.exit(main())
