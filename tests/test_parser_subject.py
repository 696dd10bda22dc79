"""Subjects, sign-offs, dates and phones in every shape SPEC §3.3–§3.5 names."""

from __future__ import annotations

from datetime import date

import pytest

from parser.validate import parse_date, parse_subject, phone_is_valid, split_signoff


@pytest.mark.parametrize(
    ("subject", "mark", "title", "markers"),
    [
        ("【天河区】天河区推进改革", "天河区", "天河区推进改革", set()),
        ("[天河区]天河区推进改革", "天河区", "天河区推进改革", set()),
        ("（天河區）天河區推進改革", "天河区", "天河區推進改革", set()),
        ("【天河区】【修改稿】标题", "天河区", "标题", {"revision"}),
        ("【修改稿】【天河区】标题", "天河区", "标题", {"revision"}),
        ("【天河区】标题（修改稿）", "天河区", "标题", {"revision"}),
        ("【天河区】标题修改稿2", "天河区", "标题", {"revision"}),
        ("【天河区】更正：标题", "天河区", "标题", {"revision"}),
        ("【天河区】标题 第二次修改", "天河区", "标题", {"revision"}),
        ("【天河区】关于修改条例的通知", "天河区", "关于修改条例的通知", set()),
        ("回复：【天河区】标题", "天河区", "标题", set()),
        ("【天河区】【约稿】标题", "天河区", "标题", {"solicited", "solicited_subject"}),
        (
            "【天河区】【约稿:yg-2026-07】标题",
            "天河区",
            "标题",
            {"solicited", "solicited_subject", "solicitation:YG-2026-07"},
        ),
        (
            "【天河区】标题 约稿编号：YG7",
            "天河区",
            "标题",
            {"solicited", "solicited_subject", "solicitation:YG7"},
        ),
        ("天河区推进改革", None, "天河区推进改革", set()),
        ("【天河区】", "天河区", "", set()),
    ],
)
def test_subject_shapes(subject: str, mark: str | None, title: str, markers: set[str]) -> None:
    parts = parse_subject(subject)
    assert (parts.mark, parts.title, set(parts.markers)) == (mark, title, markers)


SIGNOFFS = [
    "作者单位：天河区政府办公室\n姓名：李明\n联系电话：020-38620000\n日期：2026年11月22日",
    "日期:2026-11-22\n联系电话:020-38620000\n姓名:李明\n作者单位:天河区政府办公室",
    "作者单位：天河区政府办公室  姓名：李明\n\n联系电话：020-38620000  日期：2026.11.22",
    "作者單位：天河區政府辦公室\n姓　　名：李明\n聯繫電話：020-38620000\n日　　期：2026年11月22日",
    "（天河区政府办公室 李明 电话：020-38620000 2026年11月22日）",
    "(天河区政府办公室，撰稿：李明，020-38620000，二〇二六年十一月二十二日)",
    "天河区政府办公室 李明 020-38620000 2026-11-22",
    "作者单位：天河区政府办公室\n姓名：李明\n联系电话：020-38620000\n2026年11月22日",
]


@pytest.mark.parametrize("signoff", SIGNOFFS)
def test_every_signoff_shape_yields_the_four_elements(signoff: str) -> None:
    body, found = split_signoff(f"今年以来，天河区深入推进改革。\n\n{signoff}")
    assert body == "今年以来，天河区深入推进改革。"
    assert found.unit in ("天河区政府办公室", "天河區政府辦公室")
    assert found.author == "李明"
    assert found.phone == "020-38620000"
    assert found.date_text is not None and parse_date(found.date_text) == date(2026, 11, 22)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026年11月22日", date(2026, 11, 22)),
        ("2026-11-22", date(2026, 11, 22)),
        ("2026.11.22", date(2026, 11, 22)),
        ("２０２６年１１月２２日", date(2026, 11, 22)),
        ("二〇二六年十一月二十二日", date(2026, 11, 22)),
        ("二○二六年一月五日", date(2026, 1, 5)),
        ("2026年13月32日", "bad"),
        ("2026-02-30", "bad"),
        ("二〇二六年十三月五日", "bad"),
        ("明天", None),
    ],
)
def test_dates_in_the_four_formats(text: str, expected: date | str | None) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("phone", "valid"),
    [
        ("13800138000", True),
        ("138 0013 8000", True),
        ("138-0013-8000", True),
        ("+86 13800138000", True),
        ("020-38620000", True),
        ("(020)38620000", True),
        ("020 3862 0000", True),
        ("0755-88888888", True),
        ("020-38620000转8001", True),
        ("020-38620000-8001", True),
        ("０２０－３８６２００００", True),
        ("020-38620000、13800138000", True),
        ("38620000", False),  # no area code
        ("12345678901", False),  # not a mobile prefix
        ("1380013800", False),  # 10 digits
        ("3862000", False),
        ("电话", False),
    ],
)
def test_mainland_phones(phone: str, valid: bool) -> None:
    assert phone_is_valid(phone) is valid


def test_overlong_values_are_not_sign_off_elements() -> None:
    long_name = "李" * 60
    _body, found = split_signoff(
        f"正文。\n\n作者单位：天河区政府办公室\n姓名：{long_name}\n日期：2026-11-22"
    )
    assert found.unit == "天河区政府办公室" and found.author is None
