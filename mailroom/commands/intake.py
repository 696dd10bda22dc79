"""What came in and what goes out: `mailroom ingest`, `intake list`, `items`, `outbox`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from ingest.door import take
from ingest.pipeline import Arrival
from ingest.settings import MAILBOX_KINDS
from ledger import filing, outbox, similar
from ledger import intake as intake_log
from ledger.calendar import parse_period, quarter_of
from ledger.models import ScoreEvent, Submission
from ledger.scoring import event_points, item_points, live_events
from mailroom.app import App
from mailroom.commands.output import instant, iso, print_json, shorten, table
from mailroom.errors import UserError


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ingest = sub.add_parser("ingest", help="run the pipeline on .eml files")
    ingest.add_argument("files", nargs="+", metavar="FILE.eml")
    ingest.add_argument("--mailbox", choices=MAILBOX_KINDS, default="daily")
    ingest.add_argument("--received-at", help="ISO 8601 time of receipt (default: now)")
    ingest.add_argument("--no-send", action="store_true", help="queue replies, do not send")
    ingest.add_argument("--json", action="store_true")
    ingest.set_defaults(run=cmd_ingest)

    intake = sub.add_parser("intake", help="the intake log")
    isub = intake.add_subparsers(dest="action", required=True, metavar="ACTION")
    ilist = isub.add_parser("list", help="every message with its state and reasons")
    ilist.add_argument("--json", action="store_true")
    ilist.add_argument("--state", help="only messages in this state")
    iretry = isub.add_parser(
        "retry", help="re-run quarantined messages through the normal door (once each)"
    )
    iretry.add_argument("ids", nargs="+", type=int, metavar="ID")
    iretry.add_argument("--no-send", action="store_true", help="queue replies, do not send")
    iretry.add_argument("--json", action="store_true")
    intake.set_defaults(run=cmd_intake)

    items = sub.add_parser("items", help="filed items")
    itsub = items.add_subparsers(dest="action", required=True, metavar="ACTION")
    itlist = itsub.add_parser("list")
    itlist.add_argument("--period", help="2026Q1, 2026 or 2026-03")
    itlist.add_argument("--unit", help="unit code")
    itlist.add_argument("--json", action="store_true")
    itdec = itsub.add_parser("decisions", help="不采用 and 退回 decisions (the 退文台账)")
    itdec.add_argument("--period", help="2026Q1, 2026 or 2026-03 (default: every one)")
    itdec.add_argument("--json", action="store_true")
    itshow = itsub.add_parser("show")
    itshow.add_argument("tracking_no", metavar="TRACKING")
    itshow.add_argument("--json", action="store_true")
    itsim = itsub.add_parser(
        "similar", help="other units' items near-identical to this one (撒网式报送)"
    )
    itsim.add_argument("tracking_no", metavar="TRACKING")
    itsim.add_argument("--json", action="store_true")
    items.set_defaults(run=cmd_items)

    mail = sub.add_parser("outbox", help="outgoing mail and its state")
    mail.add_argument("--json", action="store_true")
    mail.add_argument("--send", action="store_true", help="send what is due now")
    mail.set_defaults(run=cmd_outbox)


def cmd_ingest(app: App, args: argparse.Namespace) -> int:
    received_at = instant(app, args.received_at, "--received-at")
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
        print_json(results)
    else:
        for r in results:
            extra = f" {r['tracking_no']}" if r["tracking_no"] else ""
            reasons = f" ({', '.join(r['reasons'])})" if r["reasons"] else ""
            print(f"{r['file']}: {r['state']}{extra}{reasons}")
    return 0


def cmd_retry(app: App, args: argparse.Namespace) -> int:
    from ingest.door import retry

    results = [retry(app.pipeline, intake_id) for intake_id in args.ids]
    if not args.no_send:
        app.deliver()
    if args.json:
        print_json(
            [
                {
                    "intake_id": r.intake_id, "retried_as": r.outcome.intake_id,
                    "state": r.outcome.state, "reasons": list(r.outcome.reasons),
                    "tracking_no": r.outcome.tracking_no, "again": r.again,
                }
                for r in results
            ]
        )  # fmt: skip
        return 0
    for r in results:
        o = r.outcome
        tail = f" {o.tracking_no}" if o.tracking_no else ""
        why = f" ({', '.join(o.reasons)})" if o.reasons else ""
        again = "; retried before, nothing changed" if r.again else ""
        print(f"{r.intake_id}: as {o.intake_id}, {o.state}{why}{tail}{again}")
    return 0


def cmd_intake(app: App, args: argparse.Namespace) -> int:
    if args.action == "retry":
        return cmd_retry(app, args)
    with app.ledger.reader() as session:
        rows = intake_log.log_entries(session, args.state)
        origins = intake_log.imap_origins(session)
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
                "received_at": iso(intake.received_at),
                "state": intake.state,
                "reasons": list(intake.reasons),
                "tracking_no": tracking,
            }
        )
    if args.json:
        print_json(data)
    else:
        table(
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
        "received_at": iso(item.received_at),
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
                "at": iso(ev.occurred_at),
            }
            for ev in events
        ],
    }


DECISION_TEXT = {"decline": "不采用", "return": "退回修改"}


def cmd_decisions(app: App, args: argparse.Namespace) -> int:
    from ledger.editors import decisions

    period = (
        parse_period(args.period, app.config.zone, app.rulebook.calendar) if args.period else None
    )
    with app.ledger.reader() as session:
        found = decisions(session, *((period.start, period.end) if period else (None, None)))
    data = [
        {
            "at": iso(d.at), "tracking_no": d.tracking_no, "unit_code": d.unit_code,
            "unit_name": d.unit_name, "title": d.title, "decision": d.verb, "reason": d.reason,
            "editor": d.editor, "undone": d.undone,
        }
        for d in found
    ]  # fmt: skip
    if args.json:
        print_json(data)
        return 0
    table(
        [
            [iso(d.at) or "", d.tracking_no, d.unit_name, shorten(d.title, 30),
             DECISION_TEXT[d.verb] + ("（已撤销）" if d.undone else ""), d.reason, d.editor]
            for d in found
        ],
        ["时间", "编号", "单位", "题目", "处理", "理由", "编辑"],
    )  # fmt: skip
    return 0


def cmd_items(app: App, args: argparse.Namespace) -> int:
    if args.action == "decisions":
        try:
            return cmd_decisions(app, args)
        except ValueError as exc:
            raise UserError(f"--period {exc}") from None
    with app.ledger.reader() as session:
        if args.action == "similar":
            return cmd_similar(app, session, args)
        if args.action == "show":
            row = filing.item_by_tracking_no(session, args.tracking_no)
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
                importance=item.importance or None,
                attachment_name=item.attachment_name,
                warnings=list(item.warnings),
                similar=[r.item.tracking_no for r in similar.related(session, item.id)],
            )
            if args.json:
                print_json(data)
            else:
                for key, value in data.items():
                    print(f"{key}: {value}")
            return 0
        period = None
        if args.period:
            try:
                period = parse_period(args.period, app.config.zone, app.rulebook.calendar)
            except ValueError as exc:
                raise UserError(f"--period {exc}") from None
        rows = filing.items_in(session, period, args.unit)
        alike = similar.related_numbers(session, [item.id for item, _ in rows])
        data_list = [
            _item_json(app, item, code, live_events(session, item.id))
            | {"similar": alike.get(item.id, [])}
            for item, code in rows
        ]
    if args.json:
        print_json(data_list)
    else:
        table(
            [
                [
                    d["tracking_no"],
                    d["unit_code"],
                    d["period"],
                    d["status"],
                    str(d["body_chars"]),
                    str(d["points"]),
                    " ".join(d["similar"]),
                    shorten(d["title"]),
                ]
                for d in data_list
            ],
            ["tracking", "unit", "period", "status", "字数", "points", "similar", "title"],
        )
    return 0


def cmd_similar(app: App, session: Session, args: argparse.Namespace) -> int:
    """The items recorded as near-identical to one item, either way: the other units' items it
    resembles (filed before it) and those that resemble it (filed after)."""
    row = filing.item_by_tracking_no(session, args.tracking_no)
    if row is None:
        raise UserError(f"no item with tracking number {args.tracking_no}")
    item, code = row
    found = similar.related(session, item.id)
    data = [
        {
            "tracking_no": r.item.tracking_no,
            "unit_code": r.unit_code,
            "unit_name": r.unit_name,
            "title": r.item.title,
            "received_at": iso(r.item.received_at),
            "similarity": r.similarity,
            "filed": "before" if r.earlier else "after",
        }
        for r in found
    ]
    if args.json:
        print_json(data)
        return 0
    if not data:
        print(f"{item.tracking_no} ({code}): no near-identical item of another unit recorded")
        return 0
    table(
        [
            [r.item.tracking_no, r.unit_code, iso(r.item.received_at) or "",
             f"{r.similarity:.2f}", "before" if r.earlier else "after", shorten(r.item.title, 30)]
            for r in found
        ],
        ["tracking", "unit", "received", "similarity", "filed", "title"],
    )  # fmt: skip
    return 0


def cmd_outbox(app: App, args: argparse.Namespace) -> int:
    if args.send:
        app.deliver()
    with app.ledger.reader() as session:
        data: list[dict[str, Any]] = [
            {
                "id": r.id,
                "to": r.to_address,
                "subject": r.subject,
                "kind": r.kind,
                "state": r.state,
                "attempts": r.attempts,
                "created_at": iso(r.created_at),
                "sent_at": iso(r.sent_at),
                "last_error": r.last_error,  # of a bounced mail: the bounce's reason
                "bounced_at": iso(r.bounced_at),
            }
            for r in outbox.listing(session)
        ]
    if args.json:
        print_json(data)
    else:
        table(
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
