"""约稿 end to end (SPEC §5.5): notices, the one reminder, answers through the real pipeline,
per-unit answered/late/missing state, and the late deduction recorded exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import select

from ingest.notices import ReminderCheck, send_due_reminders, send_notices
from ingest.pipeline import Arrival
from ledger.demo import load_demo
from ledger.models import Intake, OutboundMessage, ScoreEvent, Submission
from ledger.solicit import (
    SolicitError,
    claim_mail,
    close_solicitation,
    get_solicitation,
    open_solicitation,
    target_states,
)
from ledger.standings import standings
from mailroom.app import App
from mailroom.config import parse_config
from tests.conftest import DATA, REPO
from tests.scoring_kit import SHANGHAI, local
from tests.service import MailroomInstance, wait_for

# Reads today's date (a real serve, the CLI or a mailbox without a fixed time): run at
# a year boundary by the test command.
pytestmark = pytest.mark.wall_clock

DEADLINE = local(2026, 4, 10, 18)


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[App]:
    config = parse_config({"database": {"url": db_url}}, tmp_path, environ={})
    office = App.open(config)
    with office.ledger.transaction() as session:
        load_demo(session)
        sol = open_solicitation(
            session, "YG-0410", "一季度重点项目进展", DEADLINE,
            units=["TH", "HZ", "JSW"], by="信息处 刘", at=local(2026, 4, 1, 9),
        )  # fmt: skip
        send_notices(session, office.solicit_mailer, sol, local(2026, 4, 1, 9))
    try:
        yield office
    finally:
        office.close()


def notices(app: App) -> list[tuple[str, str]]:
    with app.ledger.reader() as s:
        rows = s.scalars(select(OutboundMessage).where(OutboundMessage.kind == "notice"))
        return [(r.to_address, r.subject) for r in rows]


def answer(app: App, raw: bytes, when_local: tuple[int, ...]) -> Intake:
    arrival = Arrival(mailbox="solicited", channel="file", received_at=local(*when_local))
    outcome = app.pipeline.process(raw, arrival)
    with app.ledger.reader() as s:
        intake = s.get(Intake, outcome.intake_id)
        assert intake is not None
        return intake


def late_deductions(app: App) -> list[tuple[str, str, str]]:
    with app.ledger.reader() as s:
        rows = s.scalars(select(ScoreEvent).where(ScoreEvent.kind == "deduction"))
        return [(r.unit.code, r.rule, r.recorded_by) for r in rows]


def test_notice_goes_to_each_target_units_officer_once(app: App) -> None:
    subject = "【约稿】YG-0410 一季度重点项目进展"
    assert sorted(notices(app)) == [
        ("liming@th.gz.test", subject),
        ("wanghaibo@jsw.gz.test", subject),
        ("xuhaiyan@hz.gz.test", subject),
    ]
    with app.ledger.reader() as s:
        row = s.scalars(select(OutboundMessage).where(OutboundMessage.kind == "notice")).first()
        assert row is not None
        msg = message_from_bytes(row.message, policy=policy.default)
    assert msg["Reply-To"] == "sfxx@mailroom.test"
    assert msg["Auto-Submitted"] == "auto-generated"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "截止时间：2026年04月10日 18:00" in text and "【约稿】YG-0410" in text
    with app.ledger.transaction() as session:
        again = send_notices(
            session, app.solicit_mailer, get_solicitation(session, "YG-0410"), DEADLINE
        )
    assert again == 0 and len(notices(app)) == 3


def test_late_answer_deducts_once_and_the_reminder_goes_once(app: App) -> None:
    before = timedelta(hours=app.config.solicit.remind_before_hours)
    mailer = app.solicit_mailer
    # 天河区 answers on time, by the solicited mailbox (its subject has no 【约稿】 marker).
    on_time = answer(app, (REPO / "examples" / "valid.eml").read_bytes(), (2026, 4, 9, 11))
    assert on_time.state == "filed" and on_time.details["late"] is False
    # Two days before the deadline nothing is due; within the window, one reminder per unit
    # that has not answered (HZ, JSW), and only once however often the check runs.
    assert send_due_reminders(app.ledger, mailer, before=before, now=DEADLINE - 2 * before) == 0
    assert send_due_reminders(app.ledger, mailer, before=before, now=DEADLINE - before / 2) == 2
    assert send_due_reminders(app.ledger, mailer, before=before, now=DEADLINE - before / 4) == 0
    reminders = [n for n in notices(app) if n[1].startswith("【约稿提醒】")]
    assert sorted(to for to, _ in reminders) == ["wanghaibo@jsw.gz.test", "xuhaiyan@hz.gz.test"]
    with app.ledger.transaction() as session:
        sol = get_solicitation(session, "YG-0410")
        unit_id = sol.targets[0].unit_id
        assert not claim_mail(session, sol.id, unit_id, "notice", "<x@y>", DEADLINE)

    # 海珠区 answers two days late (Foxmail, GBK): filed, and 迟报 −4 recorded automatically.
    first = answer(app, (DATA / "solicit_answer_hz_foxmail.eml").read_bytes(), (2026, 4, 12, 15))
    assert first.state == "filed" and first.details["late"] is True
    assert late_deductions(app) == [("HZ", "迟报", "mailroom")]
    # A second late answer to the same 约稿 files normally and deducts nothing more.
    again = answer(
        app, (DATA / "solicit_answer_hz_again_foxmail.eml").read_bytes(), (2026, 4, 13, 10)
    )
    assert again.state == "filed" and again.details["late"] is True
    assert late_deductions(app) == [("HZ", "迟报", "mailroom")]
    # After the deadline: no reminder for a passed deadline.
    assert send_due_reminders(app.ledger, mailer, before=before, now=DEADLINE) == 0

    with app.ledger.reader() as s:
        sol = get_solicitation(s, "YG-0410")
        states = {t.unit_code: t.state for t in target_states(s, sol, DEADLINE + before)}
        hz_first = s.scalar(select(Submission.tracking_no).where(Submission.intake_id == first.id))
        hz_state = next(t for t in target_states(s, sol, DEADLINE) if t.unit_code == "HZ")
        q2 = {x.unit_code: x for x in standings(s, app.rulebook, "2026Q2", SHANGHAI)}
    assert states == {"HZ": "late", "JSW": "missing", "TH": "answered"}
    assert hz_state.tracking_no == hz_first  # the first answer is the one that counts
    assert (q2["HZ"].points, q2["HZ"].submitted, q2["HZ"].deducted) == (-4, 2, 4)


def test_before_the_deadline_an_unanswered_unit_is_pending_and_closing_stops_matching(
    app: App,
) -> None:
    with app.ledger.transaction() as session:
        sol = get_solicitation(session, "YG-0410")
        assert {t.state for t in target_states(session, sol, DEADLINE - timedelta(hours=1))} == {
            "pending"
        }
        close_solicitation(session, "YG-0410", by="信息处 刘", at=local(2026, 4, 11))
        with pytest.raises(SolicitError, match="already closed"):
            close_solicitation(session, "YG-0410", by="信息处 刘", at=local(2026, 4, 11))
    late = answer(app, (DATA / "solicit_answer_hz_foxmail.eml").read_bytes(), (2026, 4, 12, 15))
    assert late.state == "filed" and "late" not in late.details
    assert late_deductions(app) == []


@pytest.mark.parametrize(
    ("code", "units", "message"),
    [
        ("YG-0410", ["TH"], "约稿 YG-0410 already exists"),
        ("YG-0411", ["TH", "NOPE"], "no unit with code NOPE"),
        ("YG 0411", ["TH"], "must be one word"),
    ],
)
def test_opening_mistakes_name_the_problem(
    app: App, code: str, units: list[str], message: str
) -> None:
    with app.ledger.transaction() as session, pytest.raises(SolicitError, match=message):
        open_solicitation(
            session, code, "主题", DEADLINE, units=units, by="刘", at=local(2026, 4, 1)
        )


def test_an_item_dated_long_before_receipt_is_flagged_late_report(app: App) -> None:
    # The sign-off says 2026-11-22; received 8 days later (more than late_report_days = 3).
    arrival = Arrival(mailbox="daily", channel="file", received_at=local(2026, 11, 30, 10))
    outcome = app.pipeline.process((REPO / "examples" / "valid.eml").read_bytes(), arrival)
    with app.ledger.reader() as s:
        item = s.scalars(select(Submission).where(Submission.intake_id == outcome.intake_id)).one()
    assert "late_report" in item.warnings


def test_reminder_check_runs_at_most_once_per_interval(app: App) -> None:
    ticks = iter([0.0, 10.0, 61.0])
    check = ReminderCheck(
        app.ledger, app.solicit_mailer, timedelta(hours=24), every=60.0, clock=lambda: next(ticks)
    )
    # The deadline is 2026-04-10, long past for the real clock: nothing is due, but the
    # check runs (at 0 s), is skipped (10 s), and runs again (61 s).
    assert [check(), check(), check()] == [0, 0, 0]
    assert check.next_at == 121.0


@pytest.mark.slow
def test_the_service_sends_the_reminder(tmp_path: Path, db_url: str) -> None:
    instance = MailroomInstance(tmp_path / "office", db_url)
    instance.cli("init", "--demo")
    deadline = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    instance.cli(
        "solicit", "open", "YG-SOON", "--topic", "防汛准备", "--units", "TH",
        "--deadline", deadline, "--no-send",
    )  # fmt: skip
    try:
        instance.start()
        wait_for(
            lambda: any(
                str(m["Subject"]).startswith("【约稿提醒】YG-SOON")
                for m in instance.outbox_messages()
            ),
            timeout=30,
            what="the 约稿 reminder in the outbox",
        )
    finally:
        instance.close()
    subjects = sorted(str(m["Subject"]) for m in instance.outbox_messages())
    assert len(subjects) == 2
    assert subjects[0] == "【约稿】YG-SOON 防汛准备"
    assert subjects[1].startswith("【约稿提醒】YG-SOON 防汛准备（")
    assert all(m["To"] == "liming@th.gz.test" for m in instance.outbox_messages())
