"""Parser fixtures through the pipeline: what the ledger and the outbox hold afterwards."""

from __future__ import annotations

import base64
import tomllib
from datetime import UTC, datetime

from jinja2 import Environment
from sqlalchemy import select

from ingest.pipeline import Arrival
from ledger.models import Intake, OutboundMessage, Submission
from mailroom.app import App
from parser import decode_message
from tests.conftest import DATA, REPO

MAIL = DATA / "mail"
PROBLEMS = REPO / "ingest" / "templates" / "zh-Hans" / "problems.toml"
SUBMITTING = REPO / "docs" / "submitting.md"
RECEIVED = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)  # 11:00 in Guangzhou


def ingest(app: App, name: str, mailbox: str = "daily") -> tuple[str, tuple[str, ...]]:
    raw = (MAIL / f"{name}.eml").read_bytes()
    outcome = app.pipeline.process(raw, Arrival(mailbox, "file", RECEIVED))
    return outcome.state, outcome.reasons


def items(app: App) -> list[Submission]:
    with app.ledger.reader() as s:
        return list(s.scalars(select(Submission).order_by(Submission.id)))


def test_gbk_only_characters_under_a_gb2312_label_survive_into_the_ledger(app: App) -> None:
    assert ingest(app, "gb2312_label_gbk_only_chars") == ("filed", ())
    (item,) = items(app)
    assert item.title == "天河区学习朱镕基同志论述"
    assert item.signoff_author == "王堃"
    assert "朱镕基" in item.body and "\ufffd" not in item.body


def test_a_revision_supersedes_the_units_item_with_the_most_similar_title(app: App) -> None:
    assert ingest(app, "leave_policy_title_not_vacation")[0] == "filed"
    assert ingest(app, "foxmail_gbk_valid")[0] == "filed"
    assert ingest(app, "revision_bracket") == ("filed", ())
    leave, original, revision = items(app)
    assert (leave.status, original.status, revision.status) == ("filed", "superseded", "filed")
    assert revision.supersedes_id == original.id
    with app.ledger.reader() as s:
        intake = s.scalars(select(Intake).where(Intake.id == revision.intake_id)).one()
        assert intake.details["supersedes"] == original.tracking_no
        kinds = [row.kind for row in s.scalars(select(OutboundMessage))]
    # A receipt for each item, and each (the revision too) forwarded to the 3 editors.
    assert kinds == ["receipt", *["desk"] * 3] * 3


def test_a_revision_with_nothing_to_revise_is_filed_new_with_a_warning(app: App) -> None:
    assert ingest(app, "leave_policy_title_not_vacation")[0] == "filed"  # another title
    assert ingest(app, "revision_plain_suffix") == ("filed", ("revision_without_original",))
    first, revision = items(app)
    assert first.status == "filed" and revision.supersedes_id is None
    assert revision.warnings == ["revision_without_original"]


def test_a_refusal_names_every_problem_with_its_fix(app: App) -> None:
    assert ingest(app, "missing_phone") == ("rejected", ("missing_phone",))
    with app.ledger.reader() as s:
        (refusal,) = s.scalars(select(OutboundMessage)).all()
    text = decode_message(refusal.message).body_text
    assert "落款缺少联系电话。[missing_phone]" in text
    assert "修改方法：请在正文末尾落款处注明“联系电话：……”" in text


def test_bounces_and_auto_replies_among_the_fixtures_get_no_reply(app: App) -> None:
    for name in ("netease_bounce_cn", "postfix_dsn", "qq_auto_reply", "read_receipt_mdn"):
        assert ingest(app, name)[0] == "ignored"
    with app.ledger.reader() as s:
        assert s.scalars(select(OutboundMessage)).all() == []


EXAMPLE_PARAMS = {
    "missing_mark": {"expected": "【天河区】"},
    "body_too_long": {"limit": 450},
    "attachment_too_long": {"limit": 4000},
    # as a refusal under the Longnan rulebook says them, for an item of grade 重大
    "unknown_approver": {
        "grade": "重大",
        "roles": "分管副秘书长、办公室主任、秘书长、分管副市长或市长",
    },
    "approver_rank_too_low": {
        "grade": "重大",
        "roles": "分管副秘书长、办公室主任、秘书长、分管副市长或市长",
    },
}


def test_every_refusal_fix_is_the_line_docs_submitting_md_gives() -> None:
    """The refusal quotes docs/submitting.md: each code has its section there, same fix."""
    doc = SUBMITTING.read_text(encoding="utf-8")
    problems = tomllib.loads(PROBLEMS.read_text(encoding="utf-8"))
    env = Environment(autoescape=False)
    for code, entry in problems.items():
        assert f"`{code}`" in doc, code
        fix = env.from_string(entry["fix"]).render(
            {"expected": None, "found": None, **EXAMPLE_PARAMS.get(code, {})}
        )
        assert fix in doc, (code, fix)


def test_nul_bytes_and_overlong_fields_end_in_a_named_state_on_every_database(app: App) -> None:
    """PostgreSQL refuses NUL in text and over-long varchars: the parser hands it neither."""
    raw = (
        "From: =?utf-8?B?5aSp5rKz5Yy6?= <liming@th.gz.test>\r\n"
        "Subject: \x00【天河区】标题\x00\r\n"
        f"Message-ID: <{'x' * 1200}@th.gz.test>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "正文\x00内容。\r\n\r\n作者单位：天河区政府办公室\r\n"
        f"姓名：{'李' * 120}\r\n联系电话：020-38620000\r\n日期：2026年11月22日\r\n"
    ).encode()
    outcome = app.pipeline.process(raw, Arrival("daily", "file", RECEIVED))
    assert (outcome.state, outcome.reasons) == ("rejected", ("missing_author",))
    with app.ledger.reader() as s:
        intake = s.scalars(select(Intake)).one()
        assert intake.subject == "【天河区】标题" and intake.message_id is None


def test_under_a_rulebook_without_grades_an_approver_is_stored_and_never_required(
    app: App,
) -> None:
    """guangzhou-2004 requires no approver and grades no importance: an item signed off by
    anyone, even one marked 【重大】 as a Longnan unit would, is filed, its approver kept."""
    raw = (
        "From: =?utf-8?B?5aSp5rKz5Yy6?= <liming@th.gz.test>\r\n"
        "To: inf@mailroom.test\r\nSubject: =?utf-8?B?"
        + base64.b64encode("【天河区】天河区推进旧城改造".encode()).decode()
        + "?=\r\nMessage-ID: <approver-1@th.gz.test>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "天河区完成旧城改造项目三个。\r\n\r\n作者单位：天河区政府办公室\r\n姓名：李明\r\n"
        "联系电话：020-38620000\r\n日期：2026年11月22日\r\n审签人：未登记的人\r\n"
    ).encode()
    outcome = app.pipeline.process(raw, Arrival("daily", "file", RECEIVED))
    assert outcome.state == "filed"
    with app.ledger.reader() as s:
        item = s.scalars(select(Submission)).one()
        assert (item.approver, item.importance) == ("未登记的人", "")
