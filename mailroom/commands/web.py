"""The web console's commands: `mailroom web` (the console alone) and `mailroom user add |
passwd | disable` (its accounts)."""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from datetime import UTC, datetime

from ledger.accounts import add_user, disable_user, set_password
from ledger.models import WEB_ROLES
from mailroom.app import App, settle_heap
from mailroom.errors import UserError


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    web = sub.add_parser("web", help="run the web console alone (mailroom serve runs it too)")
    web.set_defaults(run=cmd_web)

    user = sub.add_parser("user", help="accounts of the web console")
    usub = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    uadd = usub.add_parser("add", help="open an account (password from stdin, or --generate)")
    uadd.add_argument("email", metavar="EMAIL")
    uadd.add_argument("--role", required=True, choices=WEB_ROLES)
    uadd.add_argument("--generate", action="store_true", help="make a password, print it once")
    upw = usub.add_parser("passwd", help="set a new password (every session of it ends)")
    upw.add_argument("email", metavar="EMAIL")
    upw.add_argument("--generate", action="store_true", help="make a password, print it once")
    udis = usub.add_parser("disable", help="close an account: no sign-in, sessions end now")
    udis.add_argument("email", metavar="EMAIL")
    user.set_defaults(run=cmd_user)


def _password(generate: bool) -> str:
    if generate:
        return secrets.token_urlsafe(15)
    if sys.stdin.isatty():
        first = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != first:
            raise UserError("the two passwords differ; nothing changed")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_user(app: App, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    if args.action == "disable":
        with app.ledger.transaction() as session:
            account = disable_user(session, args.email, now)
        print(f"disabled {account.email}: it cannot sign in, and its sessions have ended")
        return 0
    password = _password(args.generate)
    with app.ledger.transaction() as session:
        if args.action == "add":
            account = add_user(session, args.email, args.role, password, now)
            print(f"added {account.email} ({account.role})")
        else:
            account = set_password(session, args.email, password, now)
            print(f"new password set for {account.email}; its sessions have ended")
    if args.generate:
        print(f"password: {password}")
    return 0


def cmd_web(app: App, args: argparse.Namespace) -> int:
    import uvicorn

    from mailroom.console import uvicorn_config

    cfg = app.config.web
    print(f"mailroom: web console on http://{cfg.listen_host}:{cfg.listen_port}/", flush=True)
    server = uvicorn.Server(uvicorn_config(app))
    settle_heap()
    server.run()
    return 0
