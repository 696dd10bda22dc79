"""The `mailroom` command (SPEC §7.1). User mistakes: one line on stderr, non-zero exit."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from unicodedata import east_asian_width

from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError

from ingest.door import take
from ingest.pipeline import Arrival
from ingest.settings import MAILBOX_KINDS
from ledger.calendar import Period, parse_period, quarter_of
from ledger.models import ImapMessage, Intake, OutboundMessage, ScoreEvent, Submission, Unit
from ledger.scoring import (
    Recorded,
    event_points,
    item_points,
    live_events,
    record_adoption,
    record_clue,
    record_deduction,
    record_instruction,
    undo_event,
)
from ledger.solicit import (
    close_solicitation,
    list_solicitations,
    open_solicitation,
    target_states,
)
from ledger.standings import officer_standings, standings, streak_outcomes
from mailroom.app import App, migrate
from mailroom.config import config_path, load_config
from mailroom.desk_cli import add_parsers as add_desk_parsers
from mailroom.desk_cli import cmd_audit, cmd_editor, ensure_reply_key_secret
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

    examples = sub.add_parser(
        "send-examples",
        help="send example items to the running serve, dated today as a mail client would",
    )
    examples.add_argument("files", nargs="+", metavar="FILE.eml")

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

    def who(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("--by", help="who records it (default: the login name)")
        cmd.add_argument("--at", help="ISO 8601 time it happened (default: now)")
        cmd.add_argument("--note", default="", help="a remark kept with the event")

    adopt = sub.add_parser("adopt", help="record an adoption in a publication of the rulebook")
    adopt.add_argument("tracking_no", metavar="TRACKING")
    adopt.add_argument("publication", metavar="PUBLICATION")
    adopt.add_argument("grade", nargs="?", metavar="GRADE")
    who(adopt)
    instruct = sub.add_parser("instruct", help="record a bonus (instruction, upper level)")
    instruct.add_argument("tracking_no", metavar="TRACKING")
    instruct.add_argument("bonus", metavar="BONUS")
    instruct.add_argument("level", metavar="LEVEL")
    who(instruct)
    clue = sub.add_parser("clue", help="record a verified clue (线索 采用) on an item")
    clue.add_argument("tracking_no", metavar="TRACKING")
    who(clue)
    deduct = sub.add_parser("deduct", help="record a deduction of the rulebook against a unit")
    deduct.add_argument("unit", metavar="UNIT")
    deduct.add_argument("kind", metavar="KIND")
    who(deduct)
    undo = sub.add_parser("undo", help="undo a scoring event by its number")
    undo.add_argument("event_id", metavar="EVENT", type=int)
    who(undo)

    stand = sub.add_parser("standings", help="points, targets and ranks per sequence")
    stand.add_argument("--period", help="2026Q1, 2026 or 2026-03 (default: the current quarter)")
    stand.add_argument("--json", action="store_true")
    stand.add_argument("--officers", action="store_true", help="rank the info officers instead")

    solicit = sub.add_parser("solicit", help="约稿: open, list, close")
    ssub = solicit.add_subparsers(dest="action", required=True, metavar="ACTION")
    sopen = ssub.add_parser("open", help="open a 约稿 and notify its target units")
    sopen.add_argument("code", metavar="CODE")
    sopen.add_argument("--topic", required=True)
    sopen.add_argument("--deadline", required=True, help="ISO 8601 time (local zone if none)")
    sopen.add_argument("--units", help="unit codes, comma-separated (default: every unit)")
    sopen.add_argument("--no-send", action="store_true", help="queue the notices, do not send")
    who(sopen)
    slist = ssub.add_parser("list", help="every 约稿 with each target unit's state")
    slist.add_argument("--json", action="store_true")
    sclose = ssub.add_parser("close", help="stop matching answers to a 约稿")
    sclose.add_argument("code", metavar="CODE")
    who(sclose)

    add_report_parser(sub)

    outbox = sub.add_parser("outbox", help="outgoing mail and its state")
    outbox.add_argument("--json", action="store_true")
    outbox.add_argument("--send", action="store_true", help="send what is due now")
    add_desk_parsers(sub)
    return p


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def _cells(text: str) -> int:
    """Columns a terminal gives `text`: CJK and full-width characters take two."""
    return sum(2 if east_asian_width(c) in "WF" else 1 for c in text)


def shorten(text: str, columns: int = 40) -> str:
    """`text` within `columns` terminal columns, cut with an ellipsis (…) when longer.

    A cut inside a Latin word goes back to the space before it, if that keeps most of the text.
    """
    if _cells(text) <= columns:
        return text
    kept, used = [], 1  # the ellipsis takes one column
    for ch in text:
        used += _cells(ch)
        if used > columns:
            break
        kept.append(ch)
    cut = "".join(kept)
    rest = text[len(cut) :]
    if cut[-1:].isascii() and cut[-1:].isalnum() and rest[:1].isascii() and rest[:1].isalnum():
        space = cut.rfind(" ")
        if space >= len(cut) * 2 // 3:
            cut = cut[:space]
    return cut.rstrip() + "…"


def _table(rows: list[list[str]], headers: list[str]) -> None:
    width = _cells
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
    print(f"reply-key secret: from the {ensure_reply_key_secret(app)}")
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


def _instant(app: App, text: str | None, flag: str) -> datetime:
    """An ISO 8601 time from the command line (the configured zone if none given); now if unset."""
    if not text:
        return datetime.now(UTC)
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{flag} {text!r} is not an ISO 8601 time") from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=app.config.zone)
    return instant


def cmd_ingest(app: App, args: argparse.Namespace) -> int:
    received_at = _instant(app, args.received_at, "--received-at")
    results: list[dict[str, Any]] = []
    for name in args.files:
        path = Path(name)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
        outcome = take(
            app.pipeline,
            raw,
            Arrival(mailbox=args.mailbox, channel="file", received_at=received_at),
        )
        assert outcome is not None  # only a concurrent copy of one arrival is taken elsewhere
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
            summary = import_registry(session, paths)
        print(f"imported: {summary}")
        return 0
    path = Path(args.file)
    with app.ledger.reader() as session:
        export_registry(session, path, args.table)
    print(f"exported to {path}")
    return 0


def _imap_origins(app: App) -> dict[int, ImapMessage]:
    """Where each IMAP-polled intake was first found on the server (account, folder, UID)."""
    with app.ledger.reader() as session:
        rows = session.scalars(select(ImapMessage).order_by(ImapMessage.id.desc())).all()
    return {row.intake_id: row for row in rows}


def cmd_intake(app: App, args: argparse.Namespace) -> int:
    with app.ledger.reader() as session:
        query = select(Intake, Submission.tracking_no).outerjoin(
            Submission, Submission.intake_id == Intake.id
        )
        if args.state:
            query = query.where(Intake.state == args.state)
        rows = session.execute(query.order_by(Intake.id)).all()
    origins = _imap_origins(app)
    data: list[dict[str, Any]] = []
    for intake, tracking in rows:
        origin = origins.get(intake.id)
        data.append(
            {
                "id": intake.id,
                "message_id": intake.message_id,
                "mailbox": intake.mailbox,
                "channel": intake.channel,
                "imap": None
                if origin is None
                else {
                    "account": origin.account,
                    "folder": origin.folder,
                    "uidvalidity": origin.uidvalidity,
                    "uid": origin.uid,
                },
                "from": intake.from_address,
                "subject": intake.subject,
                "received_at": _iso(intake.received_at),
                "state": intake.state,
                "reasons": list(intake.reasons),
                "tracking_no": tracking,
            }
        )
    if args.json:
        _print_json(data)
    else:
        _table(
            [
                [
                    str(d["id"]),
                    str(d["received_at"])[:19],
                    d["mailbox"],
                    _origin_text(d),
                    d["state"],
                    ",".join(d["reasons"]),
                    d["tracking_no"] or "",
                    shorten(d["subject"]),
                ]
                for d in data
            ],
            ["id", "received (UTC)", "mailbox", "via", "state", "reasons", "tracking", "subject"],
        )
    return 0


def _number(points: Decimal | int) -> int | float:
    """Points for JSON: whole numbers stay whole; a 直报点 share may leave a half (18.5)."""
    value = Decimal(points)
    return int(value) if value == value.to_integral_value() else float(value)


def _origin_text(row: dict[str, Any]) -> str:
    imap = row["imap"]
    if imap is None:
        return str(row["channel"])
    return f"imap {imap['account']}/{imap['folder']} uid {imap['uid']}"


def _item_json(
    app: App, item: Submission, unit_code: str, events: list[ScoreEvent]
) -> dict[str, Any]:
    zone = app.config.zone
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
        # Derived from the item's live events under the rulebook (SPEC §2), never stored.
        "points": item_points(app.rulebook, events),
        "adoptions": [
            {
                "event": ev.id,
                "kind": ev.kind,
                "name": ev.rule,
                "level": ev.level,
                "points": event_points(app.rulebook, ev),
                "by": ev.recorded_by,
                "at": _iso(ev.occurred_at),
            }
            for ev in events
        ],
    }


def cmd_items(app: App, args: argparse.Namespace) -> int:
    with app.ledger.reader() as session:
        query = select(Submission, Unit.code).join(Unit, Submission.unit_id == Unit.id)
        if args.action == "show":
            row = session.execute(query.where(Submission.tracking_no == args.tracking_no)).first()
            if row is None:
                raise UserError(f"no item with tracking number {args.tracking_no}")
            item, code = row
            data = _item_json(app, item, code, live_events(session, item.id))
            data.update(
                body=item.body,
                signoff={
                    "unit": item.signoff_unit,
                    "author": item.signoff_author,
                    "phone": item.signoff_phone,
                    "date": item.signoff_date.isoformat() if item.signoff_date else None,
                    "approver": item.approver or None,
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
                period = parse_period(args.period, app.config.zone, app.rulebook.calendar)
            except ValueError as exc:
                raise UserError(f"--period {exc}") from None
            query = query.where(
                Submission.received_at >= period.start, Submission.received_at < period.end
            )
        if args.unit:
            query = query.where(Unit.code == args.unit)
        rows = session.execute(query.order_by(Submission.id)).all()
        data_list = [
            _item_json(app, item, code, live_events(session, item.id)) for item, code in rows
        ]
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
                    str(d["points"]),
                    shorten(d["title"]),
                ]
                for d in data_list
            ],
            ["tracking", "unit", "period", "status", "字数", "points", "title"],
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
                    shorten(d["subject"]),
                ]
                for d in data
            ],
            ["id", "kind", "state", "tries", "to", "subject"],
        )
    return 0


def _by(args: argparse.Namespace) -> str:
    return str(args.by or getpass.getuser())


def _scored(what: str, recorded: Recorded) -> None:
    event, points, unit = recorded.event_id, recorded.points, recorded.unit_code
    print(f"recorded {what} as event {event}: {points:+d} for {unit}")


def cmd_adopt(app: App, args: argparse.Namespace) -> int:
    with app.ledger.transaction() as session:
        recorded = record_adoption(
            session, app.rulebook, args.tracking_no, args.publication, args.grade,
            by=_by(args), at=_instant(app, args.at, "--at"), source="cli", note=args.note,
        )  # fmt: skip
    _scored(" ".join(filter(None, ["采用", args.publication, args.grade])), recorded)
    return 0


def cmd_instruct(app: App, args: argparse.Namespace) -> int:
    with app.ledger.transaction() as session:
        recorded = record_instruction(
            session, app.rulebook, args.tracking_no, args.bonus, args.level,
            by=_by(args), at=_instant(app, args.at, "--at"), source="cli", note=args.note,
        )  # fmt: skip
    _scored(f"{args.bonus} {args.level}", recorded)
    return 0


def cmd_clue(app: App, args: argparse.Namespace) -> int:
    with app.ledger.transaction() as session:
        recorded = record_clue(
            session, app.rulebook, args.tracking_no,
            by=_by(args), at=_instant(app, args.at, "--at"), source="cli", note=args.note,
        )  # fmt: skip
    _scored("线索 采用", recorded)
    return 0


def cmd_deduct(app: App, args: argparse.Namespace) -> int:
    with app.ledger.transaction() as session:
        recorded = record_deduction(
            session, app.rulebook, args.unit, args.kind,
            by=_by(args), at=_instant(app, args.at, "--at"), source="cli", note=args.note,
        )  # fmt: skip
    assert recorded is not None  # only a dedupe key can make it a no-op
    _scored(f"扣分 {args.kind}", recorded)
    return 0


def cmd_undo(app: App, args: argparse.Namespace) -> int:
    with app.ledger.transaction() as session:
        ev = undo_event(
            session, args.event_id, by=_by(args), at=_instant(app, args.at, "--at"), source="cli"
        )
        print(f"undone event {ev.id} ({ev.kind} {ev.rule} {ev.level or ''})".rstrip() + ")")
    return 0


def _period_arg(app: App, text: str | None) -> Period:
    zone, calendar = app.config.zone, app.rulebook.calendar
    if not text:
        text = quarter_of(datetime.now(UTC), zone, calendar).label
    try:
        return parse_period(text, zone, calendar)
    except ValueError as exc:
        raise UserError(f"--period {exc}") from None


STREAK_TEXT = {
    "praise": "表扬",
    "criticism": "批评",
    "annual_missed": "未完成年度指标",
    "award_candidate": "先进/积极单位候选",
}
ROLE_TEXT = {"supervising_leader": "主管领导", "principal_leader": "主要领导"}


def cmd_standings(app: App, args: argparse.Namespace) -> int:
    period = _period_arg(app, args.period)
    zone = app.config.zone
    with app.ledger.reader() as session:
        if args.officers:
            officers = officer_standings(session, app.rulebook, period, zone)
            rows: list[dict[str, Any]] = [
                {
                    "name": o.name, "unit_code": o.unit_code, "unit_name": o.unit_name,
                    "sequence": o.sequence, "points": _number(o.points), "items": o.items,
                    "adopted": o.adopted, "rank": o.rank,
                }
                for o in officers
            ]  # fmt: skip
            if args.json:
                _print_json(rows)
            else:
                _table(
                    [[r["sequence"], str(r["rank"]), r["name"], r["unit_name"], str(r["points"]),
                      str(r["items"]), str(r["adopted"])] for r in rows],
                    ["sequence", "rank", "officer", "unit", "points", "items", "adopted"],
                )  # fmt: skip
            return 0
        table = standings(session, app.rulebook, period, zone)
        outcomes = []
        if period.kind != "month":
            through = int(period.label.split("Q")[1]) if period.kind == "quarter" else None
            outcomes = [
                o
                for o in streak_outcomes(session, app.rulebook, period.year, zone, through)
                if period.kind == "year" or o.period == period.label
            ]
    data: list[dict[str, Any]] = [
        {
            "unit_code": s.unit_code, "unit_name": s.unit_name, "sequence": s.sequence,
            "points": _number(s.points), "target": s.target, "met": s.met, "rank": s.rank,
            "submitted": s.submitted, "adopted": s.adopted,
        }
        for s in table
    ]  # fmt: skip
    if args.json:
        _print_json(data)
        return 0
    print(f"{period.label}  ({app.rulebook.title})")
    names = {rule.key: rule.name for rule in app.rulebook.sequences}
    _table(
        [
            [names.get(d["sequence"], d["sequence"]), str(d["rank"]), d["unit_code"],
             d["unit_name"], str(d["points"]), "" if d["target"] is None else str(d["target"]),
             {True: "达标", False: "未达标", None: ""}[d["met"]], str(d["submitted"]),
             str(d["adopted"])]
            for d in data
        ],
        ["序列", "名次", "代码", "单位", "得分", "指标", "完成", "报送", "采用"],
    )  # fmt: skip
    for o in outcomes:
        whom = f"，通报{ROLE_TEXT[o.notify]}" if o.notify else ""
        extra = "，提请更换信息员" if o.replace_officer else ""
        print(f"{o.period} {STREAK_TEXT[o.kind]}：{o.unit_name}（{o.unit_code}）{whom}{extra}")
    return 0


def cmd_solicit(app: App, args: argparse.Namespace) -> int:
    from ingest.notices import send_notices

    now = datetime.now(UTC)
    if args.action == "open":
        deadline = _instant(app, args.deadline, "--deadline")
        units = [u for u in args.units.split(",")] if args.units else None
        with app.ledger.transaction() as session:
            sol = open_solicitation(
                session, args.code, args.topic, deadline, units=units, by=_by(args),
                at=_instant(app, args.at, "--at"),
            )  # fmt: skip
            mails = send_notices(session, app.solicit_mailer, sol, now)
            targets = len(sol.targets)
        if not args.no_send:
            app.deliver()
        print(f"opened 约稿 {args.code}: {targets} target units, {mails} notices queued")
        return 0
    if args.action == "close":
        with app.ledger.transaction() as session:
            close_solicitation(session, args.code, by=_by(args), at=_instant(app, args.at, "--at"))
        print(f"closed 约稿 {args.code}")
        return 0
    zone = app.config.zone
    with app.ledger.reader() as session:
        data: list[dict[str, Any]] = [
            {
                "code": sol.code,
                "topic": sol.topic,
                "deadline": _iso(sol.deadline),
                "closed": sol.closed_at is not None,
                "targets": [
                    {
                        "unit_code": t.unit_code,
                        "unit_name": t.unit_name,
                        "state": t.state,
                        "answered_at": _iso(t.answered_at),
                        "tracking_no": t.tracking_no,
                    }
                    for t in target_states(session, sol, now)
                ],
            }
            for sol in list_solicitations(session)
        ]
    if args.json:
        _print_json(data)
        return 0
    rows = []
    for d in data:
        local = datetime.fromisoformat(d["deadline"]).astimezone(zone).strftime("%Y-%m-%d %H:%M")
        for t in d["targets"]:
            rows.append([d["code"], local, "closed" if d["closed"] else "open",
                         t["unit_code"], t["state"], t["tracking_no"] or ""])  # fmt: skip
    _table(rows, ["code", "deadline", "约稿", "unit", "state", "tracking"])
    return 0


COMMANDS = {
    "init": cmd_init,
    "serve": cmd_serve,
    "ingest": cmd_ingest,
    "send-examples": cmd_send_examples,
    "registry": cmd_registry,
    "intake": cmd_intake,
    "items": cmd_items,
    "adopt": cmd_adopt,
    "instruct": cmd_instruct,
    "clue": cmd_clue,
    "deduct": cmd_deduct,
    "undo": cmd_undo,
    "standings": cmd_standings,
    "solicit": cmd_solicit,
    "outbox": cmd_outbox,
    "editor": cmd_editor,
    "audit": cmd_audit,
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
        app = App.open(config, create=args.command == "init")
        code = COMMANDS[args.command](app, args)
        sys.stdout.flush()  # here, so that a reader gone away is seen below, not at exit
        return code
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
    except BrokenPipeError:
        # The reader went away (`mailroom standings | head -3`): stop quietly, as `cat` would.
        # Python would complain again when flushing stdout at exit, so point it at /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # the shell's status for a process ended by SIGPIPE
    finally:
        if app is not None:
            app.close()


if __name__ == "__main__":
    sys.exit(main())
