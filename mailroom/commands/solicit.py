"""约稿 from the command line (SPEC §5.5): `mailroom solicit open`, `list`, `close`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from ledger.solicit import (
    close_solicitation,
    deduct_missing,
    list_solicitations,
    open_solicitation,
    target_states,
)
from mailroom.app import App
from mailroom.commands.output import by, instant, iso, print_json, table
from mailroom.commands.scoring import recorded_by


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    solicit = sub.add_parser("solicit", help="约稿: open, list, close")
    ssub = solicit.add_subparsers(dest="action", required=True, metavar="ACTION")
    sopen = ssub.add_parser("open", help="open a 约稿 and notify its target units")
    sopen.add_argument("code", metavar="CODE")
    sopen.add_argument("--topic", required=True)
    sopen.add_argument("--deadline", required=True, help="ISO 8601 time (local zone if none)")
    sopen.add_argument("--units", help="unit codes, comma-separated (default: every unit)")
    sopen.add_argument("--no-send", action="store_true", help="queue the notices, do not send")
    recorded_by(sopen)
    slist = ssub.add_parser("list", help="every 约稿 with each target unit's state")
    slist.add_argument("--json", action="store_true")
    sclose = ssub.add_parser("close", help="stop matching answers to a 约稿")
    sclose.add_argument("code", metavar="CODE")
    recorded_by(sclose)
    solicit.set_defaults(run=cmd_solicit)


def cmd_solicit(app: App, args: argparse.Namespace) -> int:
    from ingest.notices import send_notices

    now = datetime.now(UTC)
    if args.action == "open":
        deadline = instant(app, args.deadline, "--deadline")
        units = [u for u in args.units.split(",")] if args.units else None
        with app.ledger.transaction() as session:
            sol = open_solicitation(
                session, args.code, args.topic, deadline, units=units, by=by(args),
                at=instant(app, args.at, "--at"),
            )  # fmt: skip
            mails = send_notices(session, app.solicit_mailer, sol, now)
            targets = len(sol.targets)
        if not args.no_send:
            app.deliver()
        print(f"opened 约稿 {args.code}: {targets} target units, {mails} notices queued")
        return 0
    if args.action == "close":
        with app.ledger.transaction() as session:
            close_solicitation(session, args.code, by=by(args), at=instant(app, args.at, "--at"))
            missing = deduct_missing(session, app.rulebook, now)
        print(
            f"closed 约稿 {args.code}"
            + (f"; {missing} missing answers deducted" if missing else "")
        )
        return 0
    zone = app.config.zone
    with app.ledger.reader() as session:
        data: list[dict[str, Any]] = [
            {
                "code": sol.code,
                "topic": sol.topic,
                "deadline": iso(sol.deadline),
                "closed": sol.closed_at is not None,
                "targets": [
                    {
                        "unit_code": t.unit_code,
                        "unit_name": t.unit_name,
                        "state": t.state,
                        "answered_at": iso(t.answered_at),
                        "tracking_no": t.tracking_no,
                    }
                    for t in target_states(session, sol, now)
                ],
            }
            for sol in list_solicitations(session)
        ]
    if args.json:
        print_json(data)
        return 0
    rows = []
    for d in data:
        local = datetime.fromisoformat(d["deadline"]).astimezone(zone).strftime("%Y-%m-%d %H:%M")
        for t in d["targets"]:
            rows.append([d["code"], local, "closed" if d["closed"] else "open",
                         t["unit_code"], t["state"], t["tracking_no"] or ""])  # fmt: skip
    table(rows, ["code", "deadline", "约稿", "unit", "state", "tracking"])
    return 0
