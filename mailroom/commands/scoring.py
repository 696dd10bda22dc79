"""The scoring commands (SPEC §4.5, §9): `mailroom adopt`, `instruct`, `clue`, `deduct`,
`bonus`, `undo`, `standings`, `payments`."""

from __future__ import annotations

import argparse
from typing import Any

from ledger.scoring import (
    Recorded,
    record_adoption,
    record_clue,
    record_deduction,
    record_instruction,
    record_unit_bonus,
    undo_event,
)
from ledger.standings import officer_standings, standings, streak_outcomes
from mailroom.app import App
from mailroom.commands.output import by, instant, number, period_arg, print_json, table


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    adopt = sub.add_parser("adopt", help="record an adoption in a publication of the rulebook")
    adopt.add_argument("tracking_no", metavar="TRACKING")
    adopt.add_argument("publication", metavar="PUBLICATION")
    adopt.add_argument("grade", nargs="?", metavar="GRADE")
    recorded_by(adopt, cmd_adopt)
    instruct = sub.add_parser("instruct", help="record a bonus (instruction, upper level)")
    instruct.add_argument("tracking_no", metavar="TRACKING")
    instruct.add_argument("bonus", metavar="BONUS")
    instruct.add_argument("level", metavar="LEVEL")
    recorded_by(instruct, cmd_instruct)
    clue = sub.add_parser("clue", help="record a verified clue (线索 采用) on an item")
    clue.add_argument("tracking_no", metavar="TRACKING")
    recorded_by(clue, cmd_clue)
    deduct = sub.add_parser("deduct", help="record a deduction of the rulebook against a unit")
    deduct.add_argument("unit", metavar="UNIT")
    deduct.add_argument("kind", metavar="KIND")
    recorded_by(deduct, cmd_deduct)
    bonus = sub.add_parser("bonus", help="record a unit bonus of the rulebook (加分) for a unit")
    bonus.add_argument("unit", metavar="UNIT")
    bonus.add_argument("bonus", metavar="BONUS")
    recorded_by(bonus, cmd_bonus)
    undo = sub.add_parser("undo", help="undo a scoring event by its number")
    undo.add_argument("event_id", metavar="EVENT", type=int)
    recorded_by(undo, cmd_undo)

    stand = sub.add_parser("standings", help="points, targets and ranks per sequence")
    stand.add_argument("--period", help="2026Q1, 2026 or 2026-03 (default: the current quarter)")
    stand.add_argument("--json", action="store_true")
    stand.add_argument("--officers", action="store_true", help="rank the info officers instead")
    stand.set_defaults(run=cmd_standings)

    pay = sub.add_parser("payments", help="稿酬 and author rewards in yuan, per item and reason")
    pay.add_argument("--period", help="2026Q1, 2026 or 2026-03 (default: the current quarter)")
    pay.add_argument("--json", action="store_true")
    pay.set_defaults(run=cmd_payments)


def recorded_by(cmd: argparse.ArgumentParser, run: Any = None) -> None:
    """`--by`, `--at` and `--note` of a command that records an event."""
    cmd.add_argument("--by", help="who records it (default: the login name)")
    cmd.add_argument("--at", help="ISO 8601 time it happened (default: now)")
    cmd.add_argument("--note", default="", help="a remark kept with the event")
    if run is not None:
        cmd.set_defaults(run=run)


STREAK_TEXT = {
    "praise": "表扬",
    "criticism": "批评",
    "annual_missed": "未完成年度指标",
    "award_candidate": "先进/积极单位候选",
}

ROLE_TEXT = {"supervising_leader": "主管领导", "principal_leader": "主要领导"}


def _scored(what: str, recorded: Recorded) -> None:
    event, points, unit = recorded.event_id, recorded.points, recorded.unit_code
    print(f"recorded {what} as event {event}: {points:+d} for {unit}")


def cmd_adopt(app: App, args: argparse.Namespace) -> int:
    with app.ledger.transaction() as session:
        recorded = record_adoption(
            session, app.rulebook, args.tracking_no, args.publication, args.grade,
            by=by(args), at=instant(app, args.at, "--at"), source="cli", note=args.note,
            zone=app.config.zone,
        )  # fmt: skip
    _scored(" ".join(filter(None, ["采用", args.publication, args.grade])), recorded)
    return 0


def cmd_instruct(app: App, args: argparse.Namespace) -> int:
    with app.ledger.transaction() as session:
        recorded = record_instruction(
            session, app.rulebook, args.tracking_no, args.bonus, args.level,
            by=by(args), at=instant(app, args.at, "--at"), source="cli", note=args.note,
            zone=app.config.zone,
        )  # fmt: skip
    _scored(f"{args.bonus} {args.level}", recorded)
    return 0


def cmd_clue(app: App, args: argparse.Namespace) -> int:
    with app.ledger.transaction() as session:
        recorded = record_clue(
            session, app.rulebook, args.tracking_no,
            by=by(args), at=instant(app, args.at, "--at"), source="cli", note=args.note,
            zone=app.config.zone,
        )  # fmt: skip
    _scored("线索 采用", recorded)
    return 0


def cmd_deduct(app: App, args: argparse.Namespace) -> int:
    with app.ledger.transaction() as session:
        recorded = record_deduction(
            session, app.rulebook, args.unit, args.kind,
            by=by(args), at=instant(app, args.at, "--at"), source="cli", note=args.note,
        )  # fmt: skip
    assert recorded is not None  # only a dedupe key can make it a no-op
    _scored(f"扣分 {args.kind}", recorded)
    return 0


def cmd_bonus(app: App, args: argparse.Namespace) -> int:
    with app.ledger.transaction() as session:
        recorded = record_unit_bonus(
            session, app.rulebook, args.unit, args.bonus,
            by=by(args), at=instant(app, args.at, "--at"), source="cli", note=args.note,
        )  # fmt: skip
    _scored(f"加分 {args.bonus}", recorded)
    return 0


def cmd_payments(app: App, args: argparse.Namespace) -> int:
    from ledger.payments import payments

    period = period_arg(app, args.period)
    with app.ledger.reader() as session:
        found = payments(session, app.rulebook, period, app.config.zone)
    data = [
        {
            "unit_code": p.unit_code, "author": p.author, "tracking_no": p.tracking_no,
            "amount_yuan": p.amount_yuan, "reason": p.reason, "period": p.period,
        }
        for p in found
    ]  # fmt: skip
    if args.json:
        print_json(data)
        return 0
    print(f"{period.label}  ({app.rulebook.title})")
    table(
        [[p.unit_name, p.author, p.tracking_no, p.reason, str(p.amount_yuan)] for p in found],
        ["单位", "撰稿人", "编号", "事由", "金额（元）"],
    )
    print(f"合计：{sum(p.amount_yuan for p in found)} 元")
    return 0


def cmd_undo(app: App, args: argparse.Namespace) -> int:
    with app.ledger.transaction() as session:
        ev = undo_event(
            session, args.event_id, by=by(args), at=instant(app, args.at, "--at"), source="cli"
        )
        print(f"undone event {ev.id} ({ev.kind} {ev.rule} {ev.level or ''})".rstrip() + ")")
    return 0


def cmd_standings(app: App, args: argparse.Namespace) -> int:
    period = period_arg(app, args.period)
    zone = app.config.zone
    with app.ledger.reader() as session:
        if args.officers:
            officers = officer_standings(session, app.rulebook, period, zone)
            rows: list[dict[str, Any]] = [
                {
                    "name": o.name, "unit_code": o.unit_code, "unit_name": o.unit_name,
                    "sequence": o.sequence, "points": number(o.points), "items": o.items,
                    "adopted": o.adopted, "rank": o.rank,
                }
                for o in officers
            ]  # fmt: skip
            if args.json:
                print_json(rows)
            else:
                table(
                    [[r["sequence"], str(r["rank"]), r["name"], r["unit_name"], str(r["points"]),
                      str(r["items"]), str(r["adopted"])] for r in rows],
                    ["sequence", "rank", "officer", "unit", "points", "items", "adopted"],
                )  # fmt: skip
            return 0
        ranked = standings(session, app.rulebook, period, zone)
        outcomes = []  # printed with the table only: --json gives the standings alone
        if period.kind != "month" and not args.json:
            through = int(period.label.split("Q")[1]) if period.kind == "quarter" else None
            outcomes = [
                o
                for o in streak_outcomes(session, app.rulebook, period.year, zone, through)
                if period.kind == "year" or o.period == period.label
            ]
    data: list[dict[str, Any]] = [
        {
            "unit_code": s.unit_code, "unit_name": s.unit_name, "sequence": s.sequence,
            "points": number(s.points), "target": s.target, "met": s.met, "rank": s.rank,
            "submitted": s.submitted, "adopted": s.adopted, "metric": s.metric,
            "quota": s.quota, "quota_met": s.quota_met, "bonus_points": number(s.bonus_points),
            "task": [
                {"name": t.name, "target": t.target, "actual": number(t.actual), "met": t.met}
                for t in s.task
            ],
        }
        for s in ranked
    ]  # fmt: skip
    if args.json:
        print_json(data)
        return 0
    print(f"{period.label}  ({app.rulebook.title})")
    names = {rule.key: rule.name for rule in app.rulebook.in_force(period.start.date()).sequences}
    table(
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
