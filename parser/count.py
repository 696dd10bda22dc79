"""字 counting as Word and WPS count 字数 (SPEC §3.4): the one place the rule lives.

Each CJK character and each full-width (East Asian) punctuation mark counts 1; each run of
other non-space characters (Latin letters, digits, half-width punctuation stuck to them)
counts 1, as Word counts a non-Asian word.
"""

from __future__ import annotations

import functools
import unicodedata

_ASIAN_BLOCKS = (
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x2FF0, 0x303F),  # ideographic description, CJK symbols and punctuation
    (0x3040, 0x31FF),  # kana, bopomofo, Hangul compatibility, kanbun
    (0x3200, 0x4DBF),  # enclosed CJK, compatibility, extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA960, 0xA97F),  # Hangul Jamo extended A
    (0xAC00, 0xD7FF),  # Hangul syllables and Jamo extended B
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFE10, 0xFE1F),  # vertical forms
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFE50, 0xFE6F),  # small form variants
    (0xFF01, 0xFF60),  # full-width ASCII variants and punctuation
    (0xFFE0, 0xFFE6),  # full-width signs
    (0x20000, 0x3FFFF),  # CJK extensions B and later
)


# Curly quotes, the em dash and the ellipsis typed by a Chinese IME count as Chinese punctuation.
_IME_PUNCTUATION = frozenset("\u2018\u2019\u201c\u201d\u2014\u2026")


def is_asian(ch: str) -> bool:
    """True for a character Word counts one by one (CJK, kana, Hangul, full-width forms)."""
    cp = ord(ch)
    if cp < 0x1100:
        return False
    for lo, hi in _ASIAN_BLOCKS:
        if lo <= cp <= hi:
            return True
    if ch in _IME_PUNCTUATION:
        return True
    return unicodedata.east_asian_width(ch) in ("W", "F")


# What a character is to the count: counted alone (Asian), between words (space, control,
# format), or part of a word. Kept for the characters met lately: a body is mostly a few
# hundred distinct characters, each read many times; the bound keeps a crafted text of every
# code point from growing it.
_ALONE, _BETWEEN, _WORD = "alone", "between", "word"
_KINDS_KEPT = 4096


@functools.lru_cache(maxsize=_KINDS_KEPT)
def _kind(ch: str) -> str:
    if is_asian(ch):
        return _ALONE
    if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp"):
        return _BETWEEN
    return _WORD


def count_chars(text: str) -> int:
    """The 字数 of `text`, as Word/WPS report it."""
    total = 0
    in_word = False
    for ch in text:
        kind = _kind(ch)
        if kind is _ALONE:
            total += 1
            in_word = False
        elif kind is _BETWEEN:
            in_word = False
        elif not in_word:
            total += 1
            in_word = True
    return total
