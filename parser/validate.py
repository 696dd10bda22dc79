"""Validation of a decoded message as a submission (SPEC §3.3–§3.5).

One small rule per element; `RULES` says which run. Every rule runs, so a refusal names every
problem at once. Rules read a `Draft` (what was found) and return `Problem`s.
"""

from __future__ import annotations

import re
from collections.abc import Callable
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

_BRACKETED = re.compile(r"^\s*[【\[(]\s*([^】\])]{1,40}?)\s*[】\])]\s*")
REVISION_MARKERS = ("修改稿", "修改", "更正", "更正稿")
SOLICITED_MARKERS = ("约稿",)


@dataclass(frozen=True)
class SubjectParts:
    mark: str | None
    title: str
    markers: frozenset[str]


def parse_subject(subject: str) -> SubjectParts:
    """`【天河区】【修改稿】标题` → mark 天河区, markers {revision}, title 标题."""
    rest = fold(subject)
    original = subject.strip()
    mark: str | None = None
    markers: set[str] = set()
    consumed = 0
    while True:
        m = _BRACKETED.match(rest)
        if not m:
            break
        token = m.group(1).strip()
        if token in REVISION_MARKERS:
            markers.add("revision")
        elif token in SOLICITED_MARKERS:
            markers.add("solicited")
        elif mark is None:
            mark = token
        else:
            break
        rest = rest[m.end() :]
        consumed += 1
    # Keep the sender's own characters in the title: cut the same number of bracket groups.
    title = original
    for _ in range(consumed):
        m = re.match(r"^\s*[【\[(（［]\s*[^】\])）］]{1,40}?\s*[】\])）］]\s*", title)
        if not m:
            break
        title = title[m.end() :]
    title = title.strip().lstrip(":：-— ").strip()
    return SubjectParts(mark=mark, title=title, markers=frozenset(markers))


# --- body and sign-off ------------------------------------------------------------------

_LABELS = {
    "unit": ("作者单位", "报送单位", "单位"),
    "author": ("姓名", "作者", "撰稿人", "撰稿"),
    "phone": ("联系电话", "联系方式", "电话", "手机"),
    "date": ("日期", "报送日期", "时间"),
}
_LABEL_ALT = "|".join(
    sorted((label for labels in _LABELS.values() for label in labels), key=len, reverse=True)
)
_LABEL_RE = re.compile(rf"({_LABEL_ALT})\s*[:]\s*")
_QUOTE_HEADERS = re.compile(
    r"^(-{2,}\s*(原始邮件|original message|转发邮件|forwarded message)|"
    r"-{5,}\s*original\s*-{5,}|在.{1,80}写道[:]?$|on .{1,120} wrote:?$|发件人[:]|from:\s)",
    re.IGNORECASE,
)


def strip_quotes_and_signature(text: str) -> str:
    """The sender's own text: stop at a quoted reply, a `-- ` signature or a client footer."""
    kept: list[str] = []
    for line in text.split("\n"):
        folded = fold(line).strip()
        if line.rstrip("\r") == "-- " or line.strip() == "--":
            break
        if _QUOTE_HEADERS.match(folded):
            break
        if folded.startswith(">"):
            continue
        kept.append(line.rstrip())
    return "\n".join(kept).strip("\n")


_CN_DIGITS = {
    "〇": 0, "○": 0, "零": 0, "O": 0, "o": 0,
    "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip


def _cn_number(text: str) -> int | None:
    """二〇二六 → 2026 (digit by digit); 二十二 → 22 (with 十)."""
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
    re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?"),
    re.compile(r"(\d{4})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})"),
)
_CN_DATE = re.compile(
    r"([〇○零一二三四五六七八九Oo]{4})年([一二三四五六七八九十]{1,3})月([一二三四五六七八九十]{1,3})日"
)


def parse_date(text: str) -> date | str | None:
    """A date in one of the four formats; None when absent; "bad" when present but invalid."""
    folded = fold(text)
    for pattern in _DATE_PATTERNS:
        m = pattern.search(folded)
        if m:
            try:
                return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                return "bad"
    m = _CN_DATE.search(text)
    if m:
        y, mo, d = (_cn_number(g) for g in m.groups())
        if y is None or mo is None or d is None:
            return "bad"
        try:
            return date(y, mo, d)
        except ValueError:
            return "bad"
    return None


_PHONE_TOKEN = re.compile(r"[(]?0?\d[\d\- ()]{5,}\d(?:\s*(?:-|转|ext\.?|x)\s*\d{1,6})?", re.I)
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}(?:(?:-|转|ext\.?|x)\d{1,6})?$", re.I)


def phone_is_valid(text: str) -> bool:
    """Mainland mobile (11 digits, 1[3-9]) or landline with area code, extension allowed."""
    compact = re.sub(r"[\s()]", "", fold(text))
    compact = compact.replace("+86", "").lstrip("-")
    candidates = re.split(r"[、,;/或]", compact)
    return any(_MOBILE.match(c) or _LANDLINE.match(c) for c in candidates if c)


@dataclass
class SignOffFound:
    unit: str | None = None
    author: str | None = None
    phone: str | None = None
    date_text: str | None = None
    lines: int = 0


def _labelled(line: str) -> dict[str, str] | None:
    """`作者单位：X 姓名：Y` → {"unit": X, "author": Y}; None if the line carries no label."""
    folded = fold(line).strip()
    matches = list(_LABEL_RE.finditer(folded))
    if not matches or matches[0].start() != 0:
        return None
    out: dict[str, str] = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(folded)
        label = m.group(1)
        kind = next(k for k, labels in _LABELS.items() if label in labels)
        value = folded[m.end() : end].strip(" ,;，；")
        out.setdefault(kind, value)
    return out


def _compact(line: str) -> dict[str, str] | None:
    """`（天河区政府办公室 张三 电话：020-38620000 2026年11月22日）` → its four elements."""
    folded = fold(line).strip()
    m = re.fullmatch(r"[(](.+)[)]", folded)
    if not m:
        return None
    inner = m.group(1)
    out: dict[str, str] = {}
    parsed = parse_date(inner)
    date_match = None
    for pattern in (*_DATE_PATTERNS, _CN_DATE):
        date_match = pattern.search(inner)
        if date_match:
            break
    if date_match:
        out["date"] = date_match.group(0)
        inner = inner[: date_match.start()] + " " + inner[date_match.end() :]
    elif parsed is not None:
        out["date"] = inner
    inner = _LABEL_RE.sub(" ", inner)
    phone = _PHONE_TOKEN.search(inner)
    if phone:
        out["phone"] = phone.group(0).strip()
        inner = inner[: phone.start()] + " " + inner[phone.end() :]
    words = [w for w in re.split(r"[\s,，、]+", inner) if w]
    if words:
        out["unit"] = words[0]
    if len(words) > 1:
        out["author"] = words[1]
    return out if len(out) >= 2 else None


def split_signoff(body: str) -> tuple[str, SignOffFound]:
    """Split the body into the item text and the trailing sign-off block."""
    lines = body.split("\n")
    found = SignOffFound()
    cut = len(lines)
    i = len(lines) - 1
    while i >= 0:
        line = lines[i]
        if not line.strip():
            if found.lines:
                break
            i -= 1
            continue
        values = _labelled(line) or (_compact(line) if not found.lines else None)
        if values is None:
            break
        for kind, value in values.items():
            attr = "date_text" if kind == "date" else kind
            if getattr(found, attr) is None:
                setattr(found, attr, value)
        found.lines += 1
        cut = i
        i -= 1
    if not found.lines:
        return body.strip(), found
    return "\n".join(lines[:cut]).strip(), found


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
    word_files: list[Attachment] = field(default_factory=list)
    other_files: list[Attachment] = field(default_factory=list)
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
    if d.body_chars > d.limits.body_chars:
        return [Problem.of("body_too_long", count=d.body_chars, limit=d.limits.body_chars)]
    return []


def rule_signoff(d: Draft) -> list[Problem]:
    s = d.signoff
    problems = []
    if not s.unit:
        problems.append(Problem.of("missing_unit"))
    if not s.author:
        problems.append(Problem.of("missing_author"))
    if not s.phone:
        problems.append(Problem.of("missing_phone"))
    elif not phone_is_valid(s.phone):
        problems.append(Problem.of("bad_phone", value=s.phone))
    if not s.date_text:
        problems.append(Problem.of("missing_date"))
    elif d.signoff_date is None:
        problems.append(Problem.of("bad_date", value=s.date_text))
    return problems


def rule_attachments(d: Draft) -> list[Problem]:
    problems = []
    if len(d.word_files) > 1:
        problems.append(Problem.of("multiple_items", count=len(d.word_files)))
    for a in d.other_files:
        problems.append(Problem.of("unsupported_attachment", name=a.filename or a.content_type))
    if d.attachment_error:
        name = d.word_files[0].filename or "" if d.word_files else ""
        problems.append(Problem.of("unreadable_attachment", name=name))
    elif d.attachment_chars is not None and d.attachment_chars > d.limits.attachment_chars:
        problems.append(
            Problem.of(
                "attachment_too_long", count=d.attachment_chars, limit=d.limits.attachment_chars
            )
        )
    return problems


def rule_decoding(d: Draft) -> list[Problem]:
    return [Problem.of("undecodable_text")] if d.msg.undecodable else []


Rule = Callable[[Draft], list[Problem]]

RULES: tuple[Rule, ...] = (
    rule_sender,
    rule_mark,
    rule_title,
    rule_body,
    rule_signoff,
    rule_attachments,
    rule_decoding,
)


def warn_from_name(d: Draft) -> list[Problem]:
    if d.sender and fold(d.sender.unit_name) not in fold(d.msg.from_name):
        return [Problem.of("from_name_mismatch", expected=d.sender.unit_name)]
    return []


def warn_clock(d: Draft) -> list[Problem]:
    if d.msg.date is None:
        return []
    skew = abs(d.msg.date - d.received_at)
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


def validate(
    msg: DecodedMessage,
    sender: SenderContext | None,
    limits: Limits,
    received_at: datetime,
    zone: tzinfo,
) -> Verdict:
    """Judge a decoded message as a submission: a `Submission`, or every `Problem` found."""
    subject = parse_subject(msg.subject)
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
    )
    for a in msg.attachments:
        if _inline_image(a):
            continue
        if sniff_word(a.data, a.filename) is not None:
            draft.word_files.append(a)
        else:
            draft.other_files.append(a)
    if len(draft.word_files) == 1 and sniff_word(draft.word_files[0].data, None) == "docx":
        try:
            draft.attachment_chars = count_chars(word_text(draft.word_files[0].data))
        except WordError as exc:
            draft.attachment_error = str(exc)

    problems = tuple(p for rule in RULES for p in rule(draft))
    warnings = tuple(p for rule in WARNINGS for p in rule(draft))
    if problems:
        return Verdict(submission=None, problems=problems, warnings=warnings)
    assert subject.mark is not None and draft.signoff_date is not None
    submission = Submission(
        mark=subject.mark,
        title=subject.title,
        markers=subject.markers,
        body=body,
        body_chars=draft.body_chars,
        signoff=SignOff(
            unit=signoff.unit, author=signoff.author, phone=signoff.phone, date=draft.signoff_date
        ),
        attachment_name=draft.word_files[0].filename if draft.word_files else None,
        attachment_chars=draft.attachment_chars,
    )
    return Verdict(submission=submission, warnings=warnings)
