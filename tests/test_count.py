"""字 counting as Word and WPS count 字数 (SPEC §3.4): the table and its properties.

Every expected count below was worked out by hand from the rule Word and WPS apply to 字数:
each CJK character (hanzi, kana, hangul) and each full-width character or punctuation mark
counts 1; each maximal run of other non-space characters (Latin letters, digits and the
half-width punctuation stuck to them) counts 1; spaces, line breaks and invisible format
characters count 0. The `how` column spells the sum out.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parser.count import count_chars, is_asian

TABLE: list[tuple[str, int, str]] = [
    ("", 0, "nothing"),
    ("天河区", 3, "3 hanzi"),
    ("天河区，", 4, "3 hanzi + full-width comma"),
    ("“放管服”改革", 7, "2 IME curly quotes + 5 hanzi"),
    ("37项", 2, "run 37 + 项"),
    ("12.6万件", 3, "run 12.6 + 万 + 件"),
    ("40%", 1, "one run 40%"),
    ("18.6%。", 2, "run 18.6% + full-width 。"),
    ("GZ-2026-000123", 1, "one run: hyphens join it"),
    ("Word 文档", 3, "run Word + 文 + 档"),
    ("hello world", 2, "two runs split by a space"),
    ("020-38620000", 1, "one run"),
    ("2026年11月22日", 6, "2026 + 年 + 11 + 月 + 22 + 日"),
    ("二〇二六年十一月二十二日", 12, "12 CJK characters (〇 is CJK)"),
    ("１２３", 3, "3 full-width digits, 1 each"),
    ("ＡＢＣ", 3, "3 full-width letters, 1 each"),
    ("【天河区】", 5, "【 + 3 hanzi + 】"),
    ("a  b\tc\nd", 4, "four runs split by white space"),
    (
        "（天河区政府办公室 张三 电话：020-38620000 2026年11月22日）",
        22,
        "（ + 8 + 2 + 电话 2 + ： + 020-38620000 + 2026 年 11 月 22 日 (6) + ）",
    ),
    ("e-mail地址", 3, "run e-mail + 地 + 址"),
    ("COVID-19疫情", 3, "run COVID-19 + 疫 + 情"),
    ("\ufeff天\u200b地", 2, "BOM and zero-width space are invisible: 天 + 地"),
    ("한국어", 3, "3 hangul syllables"),
    ("かなカナ", 4, "4 kana"),
    ("3.6万平方米，", 6, "run 3.6 + 万平方米 (4) + ，"),
    ("——……", 4, "2 em dashes + 2 ellipses typed by a Chinese IME"),
    ("(a) b.", 2, "runs (a) and b."),
    (
        "全区取消37项，压缩至1个工作日。",
        16,
        "全区取消 4 + 37 + 项， 2 + 压缩至 3 + 1 + 个工作日。 5",
    ),
]


@pytest.mark.parametrize(("text", "expected", "how"), TABLE)
def test_count_table(text: str, expected: int, how: str) -> None:
    assert count_chars(text) == expected, how


def test_the_table_has_at_least_twenty_cases() -> None:
    assert len(TABLE) >= 20


def _joins(a: str, b: str) -> bool:
    """Two texts whose boundary glues a Latin/digit run of `a` to one of `b`."""

    def wordish(ch: str) -> bool:
        return not is_asian(ch) and count_chars(ch) == 1

    return bool(a and b) and wordish(a[-1]) and wordish(b[0])


TEXT = st.text(
    alphabet=st.sampled_from(
        [*"天河区政府办公室，。“”、：；（）【】0123456789abcXYZ.-%", " ", "\n", "\t", "\u3000"]
    ),
    max_size=60,
)


@given(TEXT, TEXT)
def test_count_is_additive_over_concatenation(a: str, b: str) -> None:
    joined = count_chars(a + b)
    if _joins(a, b):
        assert joined == count_chars(a) + count_chars(b) - 1  # two runs became one word
    else:
        assert joined == count_chars(a) + count_chars(b)


@given(st.text(max_size=200))
def test_count_never_exceeds_the_visible_characters(text: str) -> None:
    visible = sum(1 for ch in text if not ch.isspace())
    assert 0 <= count_chars(text) <= visible


CJK = st.one_of(
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
    st.characters(min_codepoint=0x3040, max_codepoint=0x30FF),
    st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3),
    st.characters(min_codepoint=0xFF01, max_codepoint=0xFF5E),
    st.characters(min_codepoint=0x20000, max_codepoint=0x2A6DF),
)


@given(st.text(alphabet=CJK, max_size=50))
def test_every_cjk_and_full_width_character_counts_one(text: str) -> None:
    assert count_chars(text) == len(text)
