"""Setting up and running: `mailroom init`, `serve`, `send-examples`, `registry`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from mailroom.app import App, migrate
from mailroom.commands.desk import ensure_reply_key_secret
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
    rsub.add_parser("check", help="what needs a person's look: addresses whose latest mail bounced")
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

    if args.action == "check":
        return cmd_registry_check(app)
    if args.action == "import":
        paths = [Path(f) for f in args.files]
        with app.ledger.transaction() as session:
            summary = import_registry(session, paths, app.rulebook)
        print(f"imported: {summary}")
        return 0
    path = Path(args.file)
    with app.ledger.reader() as session:
        export_registry(session, path, args.table)
    print(f"exported to {path}")
    return 0


def cmd_registry_check(app: App) -> int:
    """Each check prints a section; none of them fails the command."""
    from ledger.bounces import bouncing_addresses

    with app.ledger.reader() as session:
        bouncing = bouncing_addresses(session)
    print(f"Addresses that bounce: {len(bouncing) or 'none'}")
    for b in bouncing:
        owners = "; ".join(f"{o.name}, {o.role} of {o.unit_name} ({o.unit_code})" for o in b.owners)
        at = b.last_bounced_at.astimezone(app.config.zone).strftime("%Y-%m-%d %H:%M")
        times = "1 mail" if b.bounces == 1 else f"{b.bounces} mails in a row"
        print(f"  {b.address} ({owners or 'not in the registry'})")
        print(f"    {times} bounced; the last ({b.last_kind}) at {at}: {b.last_reason}")
    return 0
