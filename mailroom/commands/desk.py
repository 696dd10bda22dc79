"""CLI commands of the editors' desk: `mailroom editor passphrase`, `mailroom audit verify`."""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from datetime import UTC, datetime

from ledger.audit import verify_chain
from ledger.editors import REPLY_KEY_SECRET, set_passphrase, stored_secret
from mailroom.app import App
from mailroom.errors import UserError


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    editor = sub.add_parser("editor", help="editors of the desk")
    esub = editor.add_subparsers(dest="action", required=True, metavar="ACTION")
    phrase = esub.add_parser(
        "passphrase", help="set an editor's Approved: passphrase (read from stdin or a prompt)"
    )
    phrase.add_argument("email", metavar="EMAIL", help="a registered editor's address")
    phrase.add_argument(
        "--generate", action="store_true", help="make a strong passphrase and print it once"
    )

    editor.set_defaults(run=cmd_editor)

    audit = sub.add_parser("audit", help="the audit log of points and desk decisions")
    asub = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    asub.add_parser("verify", help="check the hash chain of the audit log")
    audit.set_defaults(run=cmd_audit)


def _read_passphrase() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("new passphrase: ")
        if getpass.getpass("again: ") != first:
            raise UserError("the two passphrases differ; nothing changed")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_editor(app: App, args: argparse.Namespace) -> int:
    passphrase = secrets.token_urlsafe(15) if args.generate else _read_passphrase()
    with app.ledger.transaction() as session:
        editor = set_passphrase(session, args.email, passphrase, datetime.now(UTC))
    print(f"passphrase set for {editor.name} <{editor.email}>")
    if args.generate:
        print(f"passphrase: {passphrase}")
    return 0


def cmd_audit(app: App, args: argparse.Namespace) -> int:
    with app.ledger.reader() as session:
        report = verify_chain(session)
    if not report.ok:
        print(
            f"mailroom: audit log broken at row {report.broken_at}: {report.problem} "
            f"({report.rows} rows checked)",
            file=sys.stderr,
        )
        return 1
    print(f"audit log intact: {report.rows} rows, head {report.head}")
    return 0


def ensure_reply_key_secret(app: App) -> str:
    """Where the reply-key secret comes from; made and stored at `init` when the config has none."""
    if app.config.security.reply_key_secret:
        return "config"
    with app.ledger.transaction() as session:
        stored_secret(session, REPLY_KEY_SECRET, datetime.now(UTC))
    return "database"
