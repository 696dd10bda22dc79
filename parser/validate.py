"""Validation of a decoded message as a submission (SPEC §3.3–§3.5).

One small rule per element; `RULES` says which run. Every rule runs, so a refusal names every
problem at once. Rules read a `Draft` (what was found) and return `Problem`s.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

from parser.count import count_chars
from parser.normalize import fold, same
from parser.types import (
    Attachment,
    DecodedMessage,
    Limits,
    Problem,
    SenderContext,
    SignOff,
    Submission,
    Verdict,
)
from parser.word import WordError, sniff_word, word_text

# --- subject: mark, markers, title ---------------------------------------------------------

# Marker vocabulary of `Submission.markers` (stable strings, read by the ledger and the desk).
REVISION = "revision"
SOLICITED = "solicited"  # any sign of a 约稿 answer
SOLICITED_SUBJECT = "solicited_subject"  # 【约稿】 in the subject
SOLICITED_MAILBOX = "solicited_mailbox"  # sent to the solicited (约稿) mailbox
SOLICITATION_PREFIX = "solicitation:"  # followed by the 约稿 code named in the subject
IMPORTANCE_PREFIX = "importance:"  # followed by the importance word of the subject (【重大】)

_REVISION_WORD = (
    r"(?:第?[一二三四五六七八九十\d]次)?(?:修改稿|修改件|修改版|修改|更正稿|更正|修正稿|修订稿|修订)"
    r"(?:[(]?[一二三四五六七八九十\d][)]?)?"
)
_REVISION = re.compile(rf"^{_REVISION_WORD}$")
_SOLICITED = re.compile(r"^约稿(?:\s*(?:编号)?\s*[:#\-]?\s*([A-Za-z0-9][A-Za-z0-9_\-]{0,31}))?$")
_OPEN = "【[(〔"
_CLOSE = "】])〕"
_BRACKETED = re.compile(
    rf"^\s*[{re.escape(_OPEN)}]\s*([^{re.escape(_CLOSE)}]{{1,40}}?)\s*"
    rf"[{re.escape(_CLOSE)}]\s*"
)
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|fw|fwd|回复|答复|转发)\s*[:：]\s*)+", re.IGNORECASE)
_PLAIN_REVISION_START = re.compile(rf"^\s*{_REVISION_WORD}\s*[:\-—\s]+\s*")
_REVISION_DRAFT = r"(?:修改稿|更正稿|修正稿|修订稿)(?:[(]?[一二三四五六七八九十\d][)]?)?"
_PLAIN_REVISION_END = re.compile(
    rf"(?:[\s\-—_:]+{_REVISION_WORD}|{_REVISION_DRAFT}|"
    rf"\s*[{re.escape(_OPEN)}]\s*{_REVISION_WORD}\s*[{re.escape(_CLOSE)}])\s*$"
)
_PLAIN_SOLICITED_CODE = re.compile(r"约稿编号\s*(?:[:：]\s*)?([A-Za-z0-9][A-Za-z0-9_\-]{0,31})")


# A mark and a few markers at most: more bracket groups are title text (and bound the work).
MAX_BRACKET_GROUPS = 8
# A subject is read this far: longer is no title a person wrote (RFC 5322 wants lines of at
# most 998 characters), and every pattern then runs on a bounded text.
MAX_SUBJECT = 1000
# The revision word at the end of a title (修改稿, 第二次修改, 【更正】) lies within this tail.
REVISION_TAIL = 40
# Sign-off lines are short; longer lines are body text (and never reach the slower patterns).
MAX_SIGNOFF_LINE = 200
# A longer value is not a unit name, a person's name, a phone or a date: the element is missing.
MAX_VALUE = {"unit": 100, "author": 50, "phone": 64, "date": 64, "approver": 50, "importance": 16}


@dataclass(frozen=True)
class SubjectParts:
    mark: str | None
    title: str
    markers: frozenset[str]


def parse_subject(subject: str, importance_words: Collection[str] = ()) -> SubjectParts:
    """`【天河区】【修改稿】标题` → mark 天河区, markers {revision}, title 标题.

    Brackets are 【】, [], () or 〔〕 in full or half width; marks and markers are matched on the
    folded text (simplified, half-width), while the title keeps the sender's own characters.
    """
    original = _REPLY_PREFIX.sub("", subject.strip()[:MAX_SUBJECT])
    # fold() maps characters one to one except for rare compatibility forms; cut on the original
    # by the same number of bracket groups so the title keeps what the sender wrote.
    rest = fold(original)
    mark: str | None = None
    markers: set[str] = set()
    consumed = 0
    while consumed < MAX_BRACKET_GROUPS:
        m = _BRACKETED.match(rest)
        if not m:
            break
        token = m.group(1).strip()
        solicited = _SOLICITED.match(token)
        if _REVISION.match(token):
            markers.add(REVISION)
        elif token in importance_words:
            markers.add(IMPORTANCE_PREFIX + token)
        elif solicited:
            markers.update((SOLICITED, SOLICITED_SUBJECT))
            if solicited.group(1):
                markers.add(SOLICITATION_PREFIX + solicited.group(1).upper())
        elif mark is None:
            mark = token
        else:
            break
        rest = rest[m.end() :]
        consumed += 1
    title = original
    for _ in range(consumed):
        m = _BRACKETED.match(fold(title))
        if not m:
            break
        title = title[_original_span(title, m.end()) :]
    title = title.strip().lstrip(":：-— ").strip()
    folded_title = fold(title)
    start = _PLAIN_REVISION_START.match(folded_title)
    if start:
        markers.add(REVISION)
        title = title[_original_span(title, start.end()) :]
        folded_title = fold(title)
    # A plain revision word ends the title: look for it in the title's tail only, so that a
    # long run of separators (`-` or spaces by the thousand) costs no backtracking.
    tail_start = max(0, len(folded_title) - REVISION_TAIL)
    end = _PLAIN_REVISION_END.search(folded_title, tail_start)
    if end and end.start() > 0:
        markers.add(REVISION)
        title = title[: _original_span(title, end.start())].rstrip(" -—_:")
    code = _PLAIN_SOLICITED_CODE.search(fold(title))
    if code:
        markers.update((SOLICITED, SOLICITED_SUBJECT, SOLICITATION_PREFIX + code.group(1).upper()))
        head, tail = _original_span(title, code.start()), _original_span(title, code.end())
        title = title[:head] + title[tail:]
    return SubjectParts(mark=mark, title=title.strip(), markers=frozenset(markers))


def _original_span(original: str, folded_end: int) -> int:
    """The index in `original` whose folded prefix has length `folded_end`."""
    total = 0
    for i, ch in enumerate(original):
        if total >= folded_end:
            return i
        total += len(fold(ch))
    return len(original)


# --- body: quotes, signatures, client footers ---------------------------------------------

_QUOTE_HEADERS = re.compile(
    r"^(-{2,}\s*(原始邮件|原邮件|original message|转发邮件|forwarded message|原始郵件)|"
    r"-{3,}\s*original\s*-{3,}|={2,}\s*原邮件|"
    r"在.{1,120}(写道|寫道)\s*[:]?\s*$|于.{1,80}(写道|寫道)\s*[:]?\s*$|on .{1,160} wrote:?\s*$|"
    r"(发件人|寄件者|寄件人)\s*:|from:\s|_{10,}\s*$|\*?from:\*?\s)",
    re.IGNORECASE,
)
_CLIENT_FOOTER = re.compile(
    r"^(发自我的|发自|来自|发送自|从我的|sent from|sent with|get outlook|获取 ?outlook)"
    r".{0,40}(iphone|ipad|android|手机|邮箱|邮件|mail|outlook|客户端|windows|大师|wps|"
    r"华为|小米|荣耀|oppo|vivo)",
    re.IGNORECASE,
)
_DISCLAIMER = re.compile(
    r"^(免责声明|保密声明|disclaimer|confidentiality notice|"
    r"(本|此)(邮件|电子邮件).{0,20}(保密|机密|仅供|如果您不是))",
    re.IGNORECASE,
)
_BARE_ADDRESS = re.compile(r"^[^\s@<>]*\s*<?[\w.+\-]+@[\w\-]+(\.[\w\-]+)+>?$")


def strip_quotes_and_signature(text: str) -> str:
    """The sender's own text: stop at a quoted reply, a `-- ` signature or a disclaimer, drop
    quoted lines and client footers (发自我的iPhone, 来自网易邮箱大师, the address Foxmail adds)."""
    kept: list[str] = []
    for line in text.split("\n"):
        folded = fold(line).strip()
        if line.rstrip("\r") in ("-- ", "--") or line.strip() == "--":
            break
        if _QUOTE_HEADERS.match(folded) or _DISCLAIMER.match(folded):
            break
        if folded.startswith(">") or _CLIENT_FOOTER.match(folded):
            continue
        kept.append(line.rstrip())
    while kept and (
        not kept[-1].strip()
        or (len(kept[-1]) <= MAX_SIGNOFF_LINE and _BARE_ADDRESS.match(fold(kept[-1]).strip()))
    ):
        kept.pop()
    return "\n".join(kept).strip("\n")


# --- dates and phones ----------------------------------------------------------------------

_CN_DIGITS = {
    "〇": 0, "○": 0, "零": 0, "O": 0, "o": 0, "0": 0,
    "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip


def _cn_number(text: str) -> int | None:
    """二〇二六 → 2026 (digit by digit); 二十二 → 22, 十一 → 11 (with 十)."""
    if not text:
        return None
    if "十" in text:
        tens, _, ones = text.partition("十")
        t = _CN_DIGITS.get(tens) if tens else 1
        o = _CN_DIGITS.get(ones) if ones else 0
        return None if t is None or o is None else t * 10 + o
    value = 0
    for ch in text:
        if ch not in _CN_DIGITS:
            return None
        value = value * 10 + _CN_DIGITS[ch]
    return value


_DATE_PATTERNS = (
    re.compile(r"(?<!\d)(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?"),
    re.compile(r"(?<!\d)(\d{4})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})(?!\d)"),
)
_CN_DATE = re.compile(
    r"([〇○零一二三四五六七八九Oo0]{4})\s*年\s*([一二三四五六七八九十]{1,3})\s*月\s*"
    r"([一二三四五六七八九十]{1,3})\s*[日号]"
)


def _find_date(text: str) -> re.Match[str] | None:
    for pattern in (*_DATE_PATTERNS, _CN_DATE):
        m = pattern.search(text)
        if m:
            return m
    return None


def parse_date(text: str) -> date | str | None:
    """A date in one of the four formats; None when absent; "bad" when present but invalid."""
    folded = fold(text)
    m = _find_date(folded)
    if m is None:
        return None
    if m.re is _CN_DATE:
        y, mo, d = (_cn_number(g) for g in m.groups())
        if y is None or mo is None or d is None:
            return "bad"
    else:
        y, mo, d = (int(g) for g in m.groups())
    try:
        return date(y, mo, d)
    except ValueError:
        return "bad"


_PHONE_TOKEN = re.compile(
    r"(?:\+?86[\s-]?)?[(]?0?\d[\d\- ()]{5,}\d(?:\s*(?:-|转|分机|ext\.?|x)\s*\d{1,6})?", re.I
)
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?[2-9]\d{6,7}(?:(?:-|转|分机|ext\.?|x)\d{1,6})?$", re.I)


def phone_is_valid(text: str) -> bool:
    """Mainland mobile (11 digits, 1[3-9]) or landline with area code, extension allowed."""
    compact = fold(text).replace("(", "").replace(")", "-")
    candidates = re.split(r"[、,;/]|或|\s{2,}", compact)
    for candidate in candidates:
        c = re.sub(r"\s+", "", candidate).strip("-")
        c = re.sub(r"^(\+?86-?)(?=1[3-9]|0)", "", c)
        if not c:
            continue
        if _MOBILE.match(c.replace("-", "")) or _LANDLINE.match(re.sub(r"-+", "-", c)):
            return True
    return False


# --- sign-off -------------------------------------------------------------------------------

_LABELS = {
    "unit": ("作者单位", "报送单位", "供稿单位", "撰稿单位", "单位名称", "单位"),
    "author": ("作者姓名", "姓名", "撰稿人", "撰稿", "作者", "联系人", "信息员"),
    "phone": (
        "联系电话", "联络电话", "联系方式", "办公电话", "固定电话", "手机号码", "手机号",
        "电话号码", "电话", "手机", "座机",
    ),
    "date": ("报送日期", "撰稿日期", "报送时间", "日期", "时间"),
    # Who signed the item off in the unit (审签): read and kept; required where the rulebook
    # says so (rule_signoff).
    "approver": ("审签人", "签发人", "审核人", "审签", "签发"),
    "importance": ("重要程度", "信息等级", "紧急程度"),
}  # fmt: skip
_KIND_OF_LABEL = {label: kind for kind, labels in _LABELS.items() for label in labels}
# Labels are often spaced out to align them (姓　　名：); allow spaces between their characters.
_LABEL_ALT = "|".join(
    r"\s*".join(re.escape(ch) for ch in label)
    for label in sorted(_KIND_OF_LABEL, key=len, reverse=True)
)
_LABEL_RE = re.compile(rf"({_LABEL_ALT})\s*:\s*")


@dataclass
class SignOffFound:
    unit: str | None = None
    author: str | None = None
    phone: str | None = None
    date_text: str | None = None
    approver: str | None = None
    importance: str | None = None
    lines: int = 0


def _label_kind(found: str) -> str:
    return _KIND_OF_LABEL[re.sub(r"\s+", "", found)]


def _labelled_values(folded: str) -> list[tuple[str, str, int, int]]:
    """(kind, value, start, end) of each `label：value` in a folded line."""
    matches = list(_LABEL_RE.finditer(folded))
    out: list[tuple[str, str, int, int]] = []
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(folded)
        value = folded[m.end() : end].strip(" ,;，；、")
        out.append((_label_kind(m.group(1)), value, m.start(), end))
    return out


def _labelled(line: str) -> dict[str, str] | None:
    """`作者单位：X 姓名：Y` → {"unit": X, "author": Y}; None if the line carries no label."""
    folded = fold(line).strip()
    values = _labelled_values(folded)
    if not values or values[0][2] != 0:
        return None
    out: dict[str, str] = {}
    for kind, value, _start, _end in values:
        out.setdefault(kind, value)
    return out


def _compact(line: str) -> dict[str, str] | None:
    """`（天河区政府办公室 张三 电话：020-38620000 2026年11月22日）` → its four elements."""
    folded = fold(line).strip()
    m = re.fullmatch(r"[(〔\[](.+)[)〕\]]", folded)
    inner = m.group(1) if m else folded
    out: dict[str, str] = {}
    date_match = _find_date(inner)
    if date_match:
        out["date"] = date_match.group(0)
        inner = inner[: date_match.start()] + " " + inner[date_match.end() :]
    # A label inside the line (撰稿：张三, 单位：…) names the word after it.
    for label in _LABEL_RE.finditer(inner):
        kind = _label_kind(label.group(1))
        if kind in ("unit", "author"):
            word = re.match(r"[^\s,，、;；:]+", inner[label.end() :])
            if word:
                out.setdefault(kind, word.group(0))
    inner = _LABEL_RE.sub(" ", inner)
    phone = _PHONE_TOKEN.search(inner)
    if phone:
        out["phone"] = phone.group(0).strip()
        inner = inner[: phone.start()] + " " + inner[phone.end() :]
    words = [w for w in re.split(r"[\s,，、;；]+", inner) if w and w not in out.values()]
    for kind in ("unit", "author"):
        if kind not in out and words:
            out[kind] = words.pop(0)
    if m is None:
        # Without brackets, only a line holding a date and a phone beside two names is a sign-off.
        return out if {"date", "phone", "unit", "author"} <= out.keys() and not words else None
    return out if len(out) >= 3 else None


def _bare_element(line: str) -> dict[str, str] | None:
    """A line that is only a date (`2026年11月22日`) or only a phone number."""
    folded = fold(line).strip()
    m = _find_date(folded)
    if m and m.start() == 0 and not folded[m.end() :].strip():
        return {"date": folded}
    if re.fullmatch(r"[\d\s()+\-转]{7,}", folded) and phone_is_valid(folded):
        return {"phone": folded}
    return None


def _signoff_line(line: str) -> dict[str, str] | None:
    if len(line) > MAX_SIGNOFF_LINE:
        return None
    values = _labelled(line) or _compact(line) or _bare_element(line)
    if values is None:
        return None
    # Found on the folded line; give back the sender's own characters (陳, not 陈), half-width.
    folded = fold(line).strip()
    width = unicodedata.normalize("NFKC", line).strip()
    if len(width) != len(folded):
        return values
    out: dict[str, str] = {}
    for kind, value in values.items():
        at = folded.find(value)
        out[kind] = width[at : at + len(value)] if at >= 0 else value
    return out


def split_signoff(body: str) -> tuple[str, SignOffFound]:
    """Split the body into the item text and the trailing sign-off block (labelled lines in
    any order, a compact line, bare date or phone lines; blank lines between them allowed)."""
    lines = body.split("\n")
    found = SignOffFound()
    cut = len(lines)
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        if not line.strip():
            continue
        values = _signoff_line(line)
        if values is None:
            break
        for kind, value in values.items():
            attr = "date_text" if kind == "date" else kind
            if getattr(found, attr) is None and value and len(value) <= MAX_VALUE[kind]:
                setattr(found, attr, value)
        found.lines += 1
        cut = i
    if not found.lines:
        return body.strip(), found
    return "\n".join(lines[:cut]).strip(), found


def count_signoff_blocks(text: str) -> int:
    """How many sign-off blocks (lines naming two or more elements together) `text` holds."""
    blocks = 0
    kinds: set[str] = set()
    for line in text.split("\n"):
        if not line.strip():
            continue
        short = len(line) <= MAX_SIGNOFF_LINE
        values = (_labelled(line) or _compact(line)) if short else None
        if values is None or kinds & set(values):  # a repeated element starts another block
            blocks += len(kinds) >= 2
            kinds = set()
        if values is not None:
            kinds |= set(values)
    return blocks + (len(kinds) >= 2)


# --- the draft and the rules --------------------------------------------------------------


@dataclass
class Draft:
    """What was read from the message, for the rules to judge."""

    msg: DecodedMessage
    sender: SenderContext | None
    limits: Limits
    received_at: datetime
    zone: tzinfo
    subject: SubjectParts
    body: str
    body_chars: int
    signoff: SignOffFound
    signoff_date: date | None
    titles_in_body: int = 0
    signoff_blocks: int = 0
    word_files: list[Attachment] = field(default_factory=list)
    other_files: list[Attachment] = field(default_factory=list)
    tnef_files: list[Attachment] = field(default_factory=list)
    attachment_chars: int | None = None
    attachment_error: str | None = None


def rule_sender(d: Draft) -> list[Problem]:
    return [] if d.sender else [Problem.of("unknown_sender", address=d.msg.from_address or "")]


def rule_mark(d: Draft) -> list[Problem]:
    if not d.subject.mark:
        if d.sender:
            return [Problem.of("missing_mark", expected=d.sender.unit_mark)]
        return [Problem.of("missing_mark")]
    if d.sender and not same(d.subject.mark, d.sender.unit_mark.strip("【】[]")):
        return [
            Problem.of("missing_mark", found=f"【{d.subject.mark}】", expected=d.sender.unit_mark)
        ]
    return []


def rule_title(d: Draft) -> list[Problem]:
    return [] if d.subject.title else [Problem.of("missing_title")]


def rule_body(d: Draft) -> list[Problem]:
    if not d.body.strip():
        return [Problem.of("missing_body")]
    if d.limits.body_chars and d.body_chars > d.limits.body_chars:
        return [Problem.of("body_too_long", count=d.body_chars, limit=d.limits.body_chars)]
    return []


def rule_signoff(d: Draft) -> list[Problem]:
    """The elements the rulebook requires must be there; one that is there must be valid."""
    s = d.signoff
    required = d.limits.required_signoff
    problems = []
    if not s.unit and "unit" in required:
        problems.append(Problem.of("missing_unit"))
    if not s.author and "author" in required:
        problems.append(Problem.of("missing_author"))
    if not s.phone:
        if "phone" in required:
            problems.append(Problem.of("missing_phone"))
    elif not phone_is_valid(s.phone):
        problems.append(Problem.of("bad_phone", value=s.phone))
    if not s.date_text:
        if "date" in required:
            problems.append(Problem.of("missing_date"))
    elif d.signoff_date is None:
        problems.append(Problem.of("bad_date", value=s.date_text))
    if not s.approver and "approver" in required:
        problems.append(Problem.of("missing_approver"))
    return problems


def rule_one_item(d: Draft) -> list[Problem]:
    if len(d.word_files) > 1:
        return [Problem.of("multiple_items", kind="attachments", count=len(d.word_files))]
    items = max(d.titles_in_body + (1 if d.subject.title else 0), d.signoff_blocks)
    if items > 1:
        return [Problem.of("multiple_items", kind="titles", count=items)]
    return []


def rule_attachments(d: Draft) -> list[Problem]:
    problems = []
    for a in d.other_files:
        problems.append(Problem.of("unsupported_attachment", name=a.filename or a.content_type))
    for a in d.tnef_files:
        problems.append(Problem.of("tnef_attachment", name=a.filename or "winmail.dat"))
    if d.attachment_error:
        name = d.word_files[0].filename or "" if d.word_files else ""
        problems.append(Problem.of("unreadable_attachment", name=name))
    elif (
        d.attachment_chars is not None
        and d.limits.attachment_chars
        and d.attachment_chars > d.limits.attachment_chars
    ):
        problems.append(
            Problem.of(
                "attachment_too_long", count=d.attachment_chars, limit=d.limits.attachment_chars
            )
        )
    return problems


def rule_decoding(d: Draft) -> list[Problem]:
    return [Problem.of("undecodable_text")] if d.msg.undecodable else []


def rule_structure(d: Draft) -> list[Problem]:
    return [Problem.of("malformed_message")] if d.msg.malformed else []


Rule = Callable[[Draft], list[Problem]]

RULES: tuple[Rule, ...] = (
    rule_sender,
    rule_mark,
    rule_title,
    rule_body,
    rule_signoff,
    rule_one_item,
    rule_attachments,
    rule_decoding,
    rule_structure,
)


def warn_from_name(d: Draft) -> list[Problem]:
    if d.sender is None:
        return []
    shown = fold(d.msg.from_name)
    names = (fold(d.sender.unit_name), fold(d.sender.unit_mark).strip("【】[]() "))
    if not any(name and name in shown for name in names):
        return [Problem.of("from_name_mismatch", expected=d.sender.unit_name)]
    return []


def warn_clock(d: Draft) -> list[Problem]:
    if d.msg.date is None:
        return []
    try:
        skew = abs(d.msg.date - d.received_at)
    except (OverflowError, TypeError):
        return []
    if skew > d.limits.clock_skew:
        return [Problem.of("clock_skew", minutes=int(skew.total_seconds() // 60))]
    return []


def warn_late(d: Draft) -> list[Problem]:
    if d.signoff_date is None:
        return []
    days = (d.received_at.astimezone(d.zone).date() - d.signoff_date).days
    if days > d.limits.late_report_days:
        return [Problem.of("late_report", days=days)]
    return []


WARNINGS: tuple[Rule, ...] = (warn_from_name, warn_clock, warn_late)


def _inline_image(a: Attachment) -> bool:
    return a.content_type.startswith("image/") and (a.inline or a.filename is None)


def _titles_in_body(body: str, subject: SubjectParts) -> int:
    """Lines of the body headed like a subject (`【天河区】另一个标题`) with another title."""
    if not subject.mark:
        return 0
    titles: set[str] = set()
    own = fold(subject.title).strip()
    for line in body.split("\n"):
        short = len(line) <= MAX_SIGNOFF_LINE
        parts = parse_subject(line) if short and fold(line).strip()[:1] in _OPEN else None
        if parts is None or parts.mark is None or not same(parts.mark, subject.mark):
            continue
        title = fold(parts.title).strip()
        if title and title != own:
            titles.add(title)
    return len(titles)


def validate(
    msg: DecodedMessage,
    sender: SenderContext | None,
    limits: Limits,
    received_at: datetime,
    zone: tzinfo,
    *,
    mailbox: str = "daily",
) -> Verdict:
    """Judge a decoded message as a submission: a `Submission`, or every `Problem` found.

    `mailbox` is the kind of mailbox it arrived at (`daily`, `solicited`, `desk`).
    """
    words = tuple(fold(w) for w in limits.importance_words)
    subject = parse_subject(msg.subject, words)
    if mailbox == "solicited":
        subject = SubjectParts(
            subject.mark, subject.title, subject.markers | {SOLICITED, SOLICITED_MAILBOX}
        )
    text = strip_quotes_and_signature(msg.body_text)
    body, signoff = split_signoff(text)
    parsed_date = parse_date(signoff.date_text) if signoff.date_text else None
    draft = Draft(
        msg=msg,
        sender=sender,
        limits=limits,
        received_at=received_at,
        zone=zone,
        subject=subject,
        body=body,
        body_chars=count_chars(body),
        signoff=signoff,
        signoff_date=parsed_date if isinstance(parsed_date, date) else None,
        titles_in_body=_titles_in_body(body, subject),
        signoff_blocks=count_signoff_blocks(body) + (1 if signoff.lines else 0),
    )
    word_kinds: list[str] = []
    for a in msg.attachments:
        if _inline_image(a):
            continue
        if a.content_type == "application/ms-tnef":
            draft.tnef_files.append(a)
        elif (kind := sniff_word(a.data, a.filename)) is not None:
            draft.word_files.append(a)
            word_kinds.append(kind)
        else:
            draft.other_files.append(a)
    if len(draft.word_files) == 1:
        first = draft.word_files[0]
        try:
            text = word_text(first.data, first.filename, word_kinds[0])
            draft.attachment_chars = count_chars(text)
        except WordError as exc:
            draft.attachment_error = str(exc)

    problems = tuple(p for rule in RULES for p in rule(draft))
    warnings = tuple(p for rule in WARNINGS for p in rule(draft))
    if problems:
        return Verdict(submission=None, problems=problems, warnings=warnings)
    assert subject.mark is not None
    submission = Submission(
        mark=subject.mark,
        title=subject.title,
        markers=subject.markers,
        body=body,
        body_chars=draft.body_chars,
        signoff=SignOff(
            unit=signoff.unit,
            author=signoff.author,
            phone=signoff.phone,
            date=draft.signoff_date,
            approver=signoff.approver,
            importance=signoff.importance,
        ),
        attachment_name=draft.word_files[0].filename if draft.word_files else None,
        attachment_chars=draft.attachment_chars,
    )
    return Verdict(submission=submission, warnings=warnings)
