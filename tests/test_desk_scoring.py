"""Editors' tags that score (SPEC §4.2–4.5): through the same ledger functions as `mailroom adopt`.

Acceptance of issue 6: the upper-level ladder takes the highest only; a batch applies each line
on its own; `撤销` restores the earlier total; the audit chain verifies, and fails after an edit.
"""

from __future__ import annotations

import email.policy
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from ingest.pipeline import Arrival
from ledger.audit import verify_chain
from ledger.editors import set_passphrase
from ledger.models import ScoreEvent
from ledger.standings import standings
from mailroom.app import App
from mailroom.cli import main
from tests.test_desk import (
    RECEIVED,
    SECRET,
    _new_message,
    _replace_body,
    file_items,
    fixture,
    make_app,
    outbox,
    plain,
    to_desk,
)

PASSPHRASE = "编辑部 2026 口令"


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[App]:
    office = make_app(db_url, tmp_path, reply_key_secret=SECRET)
    file_items(office)
    with office.ledger.transaction() as s:
        set_passphrase(s, "chenjing@gzb.gz.test", PASSPHRASE, datetime.now(UTC))
    try:
        yield office
    finally:
        office.close()


def points(app: App, unit_code: str) -> Decimal:
    with app.ledger.reader() as s:
        table = standings(s, app.rulebook, "2026Q4", app.config.zone)
    return next(row.points for row in table if row.unit_code == unit_code)


def reply(app: App, top: str, minutes: int) -> tuple[str, tuple[str, ...]]:
    raw = _replace_body(fixture("reply_163_utf8_decline.eml"), top)
    raw = raw.replace(b"<4c1b9e2a.", f"<m{minutes}.".encode())
    outcome = to_desk(app, raw, minutes=minutes)
    return outcome.state, outcome.reasons


def test_adoption_reply_scores_and_tells_unit_and_editor(app: App) -> None:
    assert to_desk(app, fixture("reply_foxmail_gbk_adopt.eml")).state == "command"
    assert points(app, "TH") == 2
    ((to, notice),) = outbox(app, "notice")
    assert to == "liming@th.gz.test"
    assert "已被采用：《穗府信息》标题信息" in plain(notice)
    ((to, confirmation),) = outbox(app, "confirmation")
    assert to == "chenjing@gzb.gz.test"
    assert "天河区：2 分" in plain(confirmation)


def test_traditional_tags_from_outlook_big5_score_the_same(app: App) -> None:
    assert to_desk(app, fixture("reply_outlook_big5_adopt.eml")).state == "command"
    assert points(app, "TH") == 2


def test_upper_level_ladder_takes_the_highest_only(app: App) -> None:
    assert reply(app, "上报 省办采用", 31) == ("command", ())
    assert points(app, "TH") == 5
    assert reply(app, "#上報 國辦領導批示", 32) == ("command", ())
    assert points(app, "TH") == 20  # not 25: 加分不累计，取其最高值
    assert "天河区：20 分" in plain(outbox(app, "confirmation")[-1][1])


def test_undo_restores_the_earlier_total_and_the_audit_chain_holds(
    app: App, tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert reply(app, "采用 穗府信息 标题", 31)[0] == "command"
    assert reply(app, "批示 市领导", 32)[0] == "command"
    assert points(app, "TH") == 7
    assert reply(app, "撤销", 33)[0] == "command"  # the latest tag: 批示 市领导
    assert points(app, "TH") == 2
    assert reply(app, "撤銷 採用 穗府信息 標題", 34)[0] == "command"
    assert points(app, "TH") == 0
    with app.ledger.reader() as s:
        undone = s.scalar(
            select(func.count(ScoreEvent.id)).where(ScoreEvent.undone_at.is_not(None))
        )
        assert undone == 2
        assert verify_chain(s).ok
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    assert main(["--config", str(config), "audit", "verify"]) == 0
    assert "audit log intact" in capsys.readouterr().out
    with app.ledger.transaction() as s:
        s.execute(text("UPDATE audit_log SET actor = 'liming@th.gz.test' WHERE id = 1"))
    assert main(["--config", str(config), "audit", "verify"]) == 1
    assert "audit log broken at row 1" in capsys.readouterr().err


def _item(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "王芳 <wangfang@yx.gz.test>"
    msg["To"] = "inf@mailroom.test"
    msg["Subject"] = f"【越秀区】越秀区第{n}批惠民实事项目全部落地见效"
    msg["Date"] = "Sun, 22 Nov 2026 10:31:02 +0800"
    msg["Message-ID"] = f"<item-{n}@yx.gz.test>"
    msg.set_content(
        f"越秀区第{n}批惠民实事项目全部落地见效\n\n"
        f"今年以来，越秀区第{n}批惠民实事项目共{n + 10}项，已全部完成，"
        "群众满意度达到百分之九十五。\n\n"
        "作者单位：越秀区人民政府办公室\n姓名：王芳\n联系电话：13593519892\n日期：2026年11月22日\n",
        charset="gb18030",
        cte="base64",
    )
    return msg.as_bytes(policy=email.policy.SMTP)


def test_a_batch_of_ten_lines_with_two_bad_applies_eight(app: App) -> None:
    for n in range(3, 10):  # items 3–9, after the fixture's items 1 and 2
        outcome = app.pipeline.process(_item(n), Arrival("daily", "file", RECEIVED))
        assert outcome.tracking_no == f"GZ-2026-{n:06d}"
    lines = [f"GZ-2026-{n:06d} {'标题' if n % 2 else '短波'}" for n in range(1, 9)]
    lines.insert(3, "GZ-2026-000099 标题")  # no such item
    lines.append("GZ-2026-000009 长篇")  # no such grade
    body = f"Approved: {PASSPHRASE}\n采用 穗府信息 2026年第45期\n" + "\n".join(lines) + "\n"
    outcome = to_desk(app, _new_message("陈静 <chenjing@gzb.gz.test>", body))
    assert (outcome.state, sorted(outcome.reasons)) == (
        "command",
        ["unknown_grade", "unknown_item"],
    )
    text_part = plain(outbox(app, "confirmation")[0][1])
    assert "已登记 8 条，未执行 2 条" in text_part
    for n in range(1, 9):
        assert f"已登记（GZ-2026-{n:06d}）：《穗府信息》" in text_part
    assert "未执行（GZ-2026-000099）：没有此登记编号的稿件" in text_part
    assert "未执行（GZ-2026-000009）：刊物的信息类别不正确" in text_part
    # 天河区 item 1 标题 (2); 越秀区 item 2 短波, 3 标题, 4 短波, 5 标题, 6 短波, 7 标题, 8 短波.
    assert points(app, "TH") == 2
    assert points(app, "YX") == 1 + 2 + 1 + 2 + 1 + 2 + 1
    with app.ledger.reader() as s:
        notes = set(s.scalars(select(ScoreEvent.note)))
    assert notes == {"2026年第45期"}


def test_an_editors_deduction(app: App) -> None:
    body = f"Approved: {PASSPHRASE}\n扣分 天河區 遲報 11月月报迟报\n"
    outcome = to_desk(app, _new_message("chenjing@gzb.gz.test", body))
    assert outcome.state == "command"
    assert points(app, "TH") == -4
    assert "扣分 天河区 迟报" in plain(outbox(app, "confirmation")[0][1])
    refused = to_desk(
        app,
        _new_message(
            "chenjing@gzb.gz.test",
            f"Approved: {PASSPHRASE}\n扣分 天河区 迟交\n",
            msgid="<d2@gzb.gz.test>",
        ),
    )
    assert refused.reasons == ("unknown_deduction",)


def test_a_bonus_that_needs_an_adoption_is_refused_before_it(app: App) -> None:
    assert reply(app, "批示 市领导", 31) == ("command_refused", ("requires_adoption",))
    assert points(app, "TH") == 0
