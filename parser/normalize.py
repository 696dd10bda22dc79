"""Folding for matching (SPEC §3.3): full-/half-width and traditional/simplified are the same."""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata

# Traditional → simplified for the characters of labels, marks, markers and place names that
# senders write in either form. Matching only: the text filed keeps what the sender wrote.
_T2S_PAIRS = (
    "區区 聯联 繫系 電电 話话 單单 縣县 採采 報报 標标 題题 點点 號号 辦办 稿稿 約约 "
    "訂订 撰撰 寫写 審审 簽签 發发 門门 廣广 州州 東东 華华 灣湾 陽阳 雲云 龍龙 "
    "黃黄 從从 歸归 豐丰 興兴 會会 員员 長长 與与 為为 國国 際际 經经 濟济 開开 "
    "設设 揮挥 務务 屬属 財财 貿贸 計计 劃划 委委 輸输 運运 氣气 農农 業业 衛卫 "
    "體体 育育 組组 織织 總总 處处 廳厅 館馆 車车 鐵铁 機机 關关 復复 覆复 動动 "
    "應应 答答 僅仅 於于 間间 無无 時时 歲岁 億亿 萬万 個个 們们 來来 這这 對对 "
    "證证 錄录 實实 驗验 訊讯 資资 產产 識识 數数 據据 樣样 專专 刊刊 調调 研研 "
    "批批 示示 領领 導导 線线 索索 撤撤 銷销 退退 回回 級级 轉转 傳传 線线 "
    "漢汉 談谈 書书 節节 場场 齊齐 盧卢 陳陈 劉刘 張张 趙赵 楊杨 吳吴 鄭郑 馬马 "
    "許许 鄧邓 蕭萧 馮冯 葉叶 羅罗 蘇苏 譚谭 韓韩 錢钱 孫孙 顧顾 鄒邹 嚴严 "
    "鍾钟 鐘钟 莊庄 範范 蔣蒋 湯汤 賴赖 謝谢 週周 曉晓 麗丽 慶庆 聖圣 藝艺"
)
_T2S = str.maketrans({pair[0]: pair[1] for pair in _T2S_PAIRS.split() if pair[0] != pair[1]})


def to_simplified(text: str) -> str:
    return text.translate(_T2S)


def fold(text: str) -> str:
    """NFKC (full-width → half-width) and traditional → simplified, for comparisons only."""
    # Short strings (labels, marks, lines of a sign-off) repeat a lot: those are cached.
    return _fold_short(text) if len(text) <= 256 else _fold(text)


def _fold(text: str) -> str:
    return to_simplified(unicodedata.normalize("NFKC", text))


_fold_short = functools.lru_cache(maxsize=8192)(_fold)


def same(a: str, b: str) -> bool:
    return fold(a).strip() == fold(b).strip()


# A revision supersedes the most similar earlier title only when it is at least this close.
SIMILAR_TITLE = 0.5
_NOT_TEXT = re.compile(r"[\W_]+")


# Titles are compared on their first characters only: a title longer than this is no title a
# person wrote, and the comparison (quadratic in the length) stays bounded.
TITLE_COMPARED = 200


def title_similarity(a: str, b: str, at_least: float = 0.0) -> float:
    """0…1: how alike two titles are, ignoring punctuation, width and traditional forms.
    Below `at_least` the answer may be any smaller number (a cheap bound stands in for it)."""
    x = _NOT_TEXT.sub("", fold(a[: TITLE_COMPARED * 2]))[:TITLE_COMPARED]
    y = _NOT_TEXT.sub("", fold(b[: TITLE_COMPARED * 2]))[:TITLE_COMPARED]
    if not x or not y:
        return 0.0
    if x == y:
        return 1.0
    matcher = difflib.SequenceMatcher(None, x, y, autojunk=False)
    if matcher.real_quick_ratio() < at_least or matcher.quick_ratio() < at_least:
        return 0.0
    return matcher.ratio()
