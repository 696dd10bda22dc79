"""Setting up and running: `mailroom init`, `serve`, `send-examples`, `registry` (import, export,
deactivate, check)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ledger.registry.checks import ROLE_NAMES, parse_day
from ledger.registry.formats import match_key
from ledger.registry.turnover import deactivate, units_without_officer
from mailroom.app import App, migrate
from mailroom.commands.desk import ensure_reply_key_secret
from mailroom.commands.output import table
from mailroom.errors import UserError


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    init = sub.add_parser("init", help="create or upgrade the database")
    init.add_argument("--demo", action="store_true", help="load the rulebook's sample registry")
    init.add_argument(
        "--rulebook",
        metavar="NAME",
        help="the demo registry of this rulebook (the one [rules] rulebook names)",
    )
    init.set_defaults(run=cmd_init)

    serve = sub.add_parser("serve", help="run the SMTP listener, worker and sender")
    serve.add_argument(
        "--no-process",
        action="store_true",
        help="accept and spool mail only; process it at the next normal start",
    )
    serve.set_defaults(run=cmd_serve)

    examples = sub.add_parser(
        "send-examples",
        help="send example items to the running serve, dated today as a mail client would",
    )
    examples.add_argument("files", nargs="+", metavar="FILE.eml")
    examples.set_defaults(run=cmd_send_examples)

    registry = sub.add_parser("registry", help="import, export or check units and people")
    rsub = registry.add_subparsers(dest="action", required=True, metavar="ACTION")
    rimp = rsub.add_parser("import", help="import .csv or .xlsx files (all or nothing)")
    rimp.add_argument("files", nargs="+", metavar="FILE")
    rexp = rsub.add_parser("export", help="export to .xlsx (both tables) or .csv (one)")
    rexp.add_argument("file", metavar="FILE")
    rexp.add_argument("--table", choices=("units", "people"), help="which table, for .csv")
    rdeact = rsub.add_parser(
        "deactivate", help="end a person's registration (kept for history; mail refused after)"
    )
    rdeact.add_argument("email", metavar="EMAIL")
    rdeact.add_argument(
        "--from",
        dest="from_day",
        metavar="DATE",
        help="the first day out of office, YYYY-MM-DD (default: today)",
    )
    rdeact.add_argument("--role", help="only this role of the address (default: every role)")
    rcheck = rsub.add_parser(
        "check", help="units with no officer in office, addresses whose mail bounces"
    )
    rcheck.add_argument("--on", metavar="DATE", help="the day, YYYY-MM-DD (default: today)")
    rcheck.add_argument("--json", action="store_true", help="machine-readable output")
    registry.set_defaults(run=cmd_registry)


def cmd_init(app: App, args: argparse.Namespace) -> int:
    migrate(app.config.database.url)
    print(f"database ready: {app.config.database.url}")
    print(f"reply-key secret: from the {ensure_reply_key_secret(app)}")
    if args.rulebook and not args.demo:
        raise UserError("--rulebook goes with --demo: it says which office's demo registry")
    if args.demo:
        from ledger.demo import load_demo

        if args.rulebook and args.rulebook != app.rulebook.name:
            raise UserError(
                f"the configuration's rulebook is {app.rulebook.name}; to try "
                f'{args.rulebook}, set [rules] rulebook = "{args.rulebook}" in the config '
                "file and run this again"
            )
        with app.ledger.transaction() as session:
            summary = load_demo(session, app.rulebook)
        print(f"demo registry loaded: {summary}")
    return 0


def cmd_serve(app: App, args: argparse.Namespace) -> int:
    from mailroom.service import serve

    serve(app, process=not args.no_process)
    return 0


def cmd_send_examples(app: App, args: argparse.Namespace) -> int:
    from mailroom.examples import send_examples

    for line in send_examples(app.config, [Path(f) for f in args.files], datetime.now(UTC)):
        print(line)
    return 0


def cmd_registry(app: App, args: argparse.Namespace) -> int:
    from ledger.registry import export_registry, import_registry

    if args.action == "import":
        paths = [Path(f) for f in args.files]
        with app.ledger.transaction() as session:
            summary = import_registry(session, paths, app.rulebook)
        print(f"imported: {summary}")
        return 0
    if args.action == "deactivate":
        return _deactivate(app, args)
    if args.action == "check":
        return _check(app, args)
    path = Path(args.file)
    with app.ledger.reader() as session:
        export_registry(session, path, args.table)
    print(f"exported to {path}")
    return 0


def _day(app: App, text: str | None, flag: str) -> date:
    if not text:
        return datetime.now(UTC).astimezone(app.config.zone).date()
    day = parse_day(text)
    if day is None:
        raise UserError(f"{flag} {text!r} is not a date such as 2027-01-05")
    return day


def _deactivate(app: App, args: argparse.Namespace) -> int:
    from_day = _day(app, args.from_day, "--from")
    role = ROLE_NAMES.get(match_key(args.role)) if args.role else None
    if args.role and role is None:
        raise UserError(f"--role {args.role!r} is not a registry role")
    with app.ledger.transaction() as session:
        ended = deactivate(session, args.email, from_day, role)
    for row in ended:
        print(f"{row.email}: {row.role} of {row.unit_code}, last day in office {row.last_day}")
    return 0


def _check(app: App, args: argparse.Namespace) -> int:
    day = _day(app, args.on, "--on")
    with app.ledger.reader() as session:
        units = units_without_officer(session, day)
        rows = [{"code": u.code, "name": u.name, "sequence": u.sequence} for u in units]
    bouncing = _bouncing(app)
    if args.json:
        found = {"day": day.isoformat(), "units_without_officer": rows, "bouncing": bouncing}
        print(json.dumps(found, ensure_ascii=False))
        return 0
    print(f"units with no info officer in office on {day} ({len(rows)}):")
    table([[r["code"], r["name"], r["sequence"]] for r in rows], ["code", "name", "sequence"])
    print(f"Addresses that bounce: {len(bouncing) or 'none'}")
    for b in bouncing:
        owners = "; ".join(
            f"{o['name']}, {o['role']} of {o['unit_name']} ({o['unit_code']})" for o in b["owners"]
        )
        times = "1 mail" if b["bounces"] == 1 else f"{b['bounces']} mails in a row"
        print(f"  {b['address']} ({owners or 'not in the registry'})")
        print(f"    {times} bounced; the last ({b['last_kind']}) at {b['at']}: {b['last_reason']}")
    return 0


def _bouncing(app: App) -> list[dict[str, Any]]:
    """Addresses whose latest mail bounced, and whose they are (`ledger.bounces`)."""
    from ledger.bounces import bouncing_addresses

    with app.ledger.reader() as session:
        found = bouncing_addresses(session)
    return [
        {
            "address": b.address,
            "bounces": b.bounces,
            "at": b.last_bounced_at.astimezone(app.config.zone).strftime("%Y-%m-%d %H:%M"),
            "last_kind": b.last_kind,
            "last_reason": b.last_reason,
            "owners": [
                {"name": o.name, "role": o.role, "unit_code": o.unit_code, "unit_name": o.unit_name}
                for o in b.owners
            ],
        }
        for b in found
    ]
