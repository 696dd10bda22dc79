"""Editors' tags and batch lines (SPEC §4.2, §4.4), parsed from reply bodies; pure functions."""

from __future__ import annotations

from pathlib import Path

import pytest

from parser.commands import parse_commands, parse_tag
from tests.conftest import CORPUS

BONUS_VERBS = ("批示", "上报")


@pytest.mark.parametrize(
    ("text", "verb", "words"),
    [
        ("采用 穗府信息 标题", "adopt", ("穗府信息", "标题")),
        ("採用 穗府信息 標題", "adopt", ("穗府信息", "标题")),
        ("#采用 穗府信息 短波", "adopt", ("穗府信息", "短波")),
        ("＃採用　《穗府信息》　標題", "adopt", ("穗府信息", "标题")),
        ("采用 穗府要情", "adopt", ("穗府要情",)),
        ("采用 調研", "adopt", ("调研",)),
        ("不采用 内容与前期重复", "decline", ("内容与前期重复",)),
        ("不採用", "decline", ()),
        ("退回 需注明来源", "return", ("需注明来源",)),
        ("批示 市领导", "bonus", ("市领导",)),
        ("上報 國辦領導批示", "bonus", ("国办领导批示",)),
        ("上报 省办采用", "bonus", ("省办采用",)),
        ("線索 採用", "clue", ("采用",)),
        ("扣分 天河區 遲報 未按规定时间报送", "deduct", ("天河区", "迟报", "未按规定时间报送")),
    ],
)
def test_tags_simplified_traditional_with_or_without_hash(
    text: str, verb: str, words: tuple[str, ...]
) -> None:
    tag = parse_tag(text, BONUS_VERBS)
    assert tag is not None
    assert (tag.verb, tag.words) == (verb, words)


def test_a_bonus_verb_names_its_ladder_and_undo_names_the_tag_it_undoes() -> None:
    bonus = parse_tag("上報 省辦採用", BONUS_VERBS)
    assert bonus is not None and bonus.bonus == "上报"
    undo = parse_tag("撤銷 採用 穗府信息 標題", BONUS_VERBS)
    assert undo is not None and undo.verb == "undo"
    assert undo.target is not None and undo.target.words == ("穗府信息", "标题")
    bare = parse_tag("撤销", BONUS_VERBS)
    assert bare is not None and bare.target is None


def test_reasons_keep_what_the_editor_wrote() -> None:
    tag = parse_tag("退回 需注明來源（數據出處）", BONUS_VERBS)
    assert tag is not None and tag.text == "需注明來源(數據出處)"


def test_words_that_are_no_verb_are_not_a_tag() -> None:
    assert parse_tag("收到，谢谢", BONUS_VERBS) is None
    assert parse_tag("批示 市领导", ()) is None  # bonus verbs come from the rulebook


def test_reply_tags_are_read_above_the_foxmail_quote_only() -> None:
    body = (
        "采用 穗府信息 标题\r\n"
        "批示 市领导\r\n"
        "\r\n"
        "陈静\r\n"
        "新闻信息处\r\n"
        "\r\n"
        "------------------ 原始邮件 ------------------\r\n"
        '发件人: "编辑台" <desk+1-abc@mailroom.test>\r\n'
        "采用 穗府信息 短波\r\n"
        "不采用\r\n"
    )
    script = parse_commands(body, BONUS_VERBS)
    assert [line.source for line in script.lines] == ["采用 穗府信息 标题", "批示 市领导"]
    assert not script.errors
    assert script.trailing == 2  # the signature below the blank line is not read


@pytest.mark.parametrize(
    "quote",
    [
        '在 2026-11-22 10:20:11，"编辑台" <desk@mailroom.test> 写道：',
        "在 2026年11月22日 星期日 10:20，編輯台 寫道:",
        "-----Original Message-----",
        "________________________________",
        "发件人: 编辑台 <desk@mailroom.test>",
        "寄件者: 編輯台 <desk@mailroom.test>",
        "From: desk@mailroom.test",
        "On Sun, Nov 22, 2026 at 10:20 AM 编辑台 <desk@mailroom.test> wrote:",
        "> 采用 穗府信息 标题",
    ],
)
def test_nothing_below_a_quote_header_is_read(quote: str) -> None:
    script = parse_commands(f"{quote}\n采用 穗府信息 标题\n", BONUS_VERBS)
    assert script.lines == ()


def test_an_unknown_line_among_the_tags_is_reported() -> None:
    script = parse_commands("采用 穗府信息 标题\n采纳 穗府要情\n", BONUS_VERBS)
    assert [(line.source, line.error) for line in script.errors] == [
        ("采纳 穗府要情", "unknown_tag")
    ]


def test_a_greeting_above_the_tags_is_an_unknown_tag_not_a_guess() -> None:
    script = parse_commands("收到\n采用 穗府信息 标题\n", BONUS_VERBS)
    assert [line.error for line in script.lines] == ["unknown_tag", None]


def test_batch_lines_take_the_header_above_them() -> None:
    body = (
        "Approved: 编辑部口令 2026\n"
        "采用 穗府信息 2026年第45期\n"
        "GZ-2026-000123 标题\n"
        "gz-2026-000130 短波\n"
        "GZ-2026-000131 標題\n"
        "GZ-2026-000132 上报 省办采用\n"
        "\n"
        "退回 需注明来源\n"
        "GZ-2026-000140\n"
    )
    script = parse_commands(body, BONUS_VERBS)
    assert script.approved == "编辑部口令 2026"
    items = [line for line in script.lines if line.tracking_no]
    assert [(line.tracking_no, line.tag.verb if line.tag else None) for line in items] == [
        ("GZ-2026-000123", "adopt"),
        ("GZ-2026-000130", "adopt"),
        ("GZ-2026-000131", "adopt"),
        ("GZ-2026-000132", "bonus"),
        ("GZ-2026-000140", "return"),
    ]
    first = items[0].tag
    assert first is not None
    assert first.words == ("穗府信息", "标题") and first.issue == "2026年第45期"
    assert items[2].tag is not None and items[2].tag.words == ("穗府信息", "标题")
    assert items[4].tag is not None and items[4].tag.text == "需注明来源"
    assert [line.header for line in script.lines if line.tracking_no is None] == [True, True]


def test_an_item_line_without_any_tag_is_reported() -> None:
    script = parse_commands("Approved: x\nGZ-2026-000123\n", BONUS_VERBS)
    assert [(line.tracking_no, line.error) for line in script.lines] == [
        ("GZ-2026-000123", "missing_tag")
    ]


def test_approved_counts_only_as_the_first_line() -> None:
    script = parse_commands("采用 穗府信息 标题\nApproved: secret\n", BONUS_VERBS)
    assert script.approved is None
    assert [line.error for line in script.lines] == [None, "unknown_tag"]


REPLY_TRIMMER = CORPUS / "reply-trimmer"


def _corpus_replies() -> list[Path]:
    emails = sorted((REPLY_TRIMMER / "emails").glob("*.txt"))
    assert emails, f"the reply-trimmer corpus is missing at {REPLY_TRIMMER}"
    return [e for e in emails if (REPLY_TRIMMER / "trimmed" / e.name).exists()]


def test_a_tag_planted_in_the_quoted_part_of_real_replies_is_never_read() -> None:
    # Real replies of many clients and languages (Discourse's trimmer corpus): every quoted
    # line is replaced by a tag; none of them may reach the command block.
    replies = _corpus_replies()
    assert len(replies) >= 50
    for path in replies:
        text = path.read_text(encoding="utf-8")
        planted = "\n".join(
            "> 采用 穗府信息 标题" if line.startswith(">") else line for line in text.splitlines()
        )
        script = parse_commands(planted, BONUS_VERBS)
        assert [line for line in script.lines if line.tag] == [], path.name


def test_the_chinese_corpus_reply_keeps_exactly_the_trimmed_text() -> None:
    name = "embedded_email_chinese.txt"
    body = (REPLY_TRIMMER / "emails" / name).read_text(encoding="utf-8")
    expected = (REPLY_TRIMMER / "trimmed" / name).read_text(encoding="utf-8").split("\n")
    script = parse_commands(body, BONUS_VERBS)
    assert [line.source for line in script.lines] == [e for e in expected if e.strip()]
