"""Editors' commands (SPEC §4.2, §4.4): the tags and batch lines of a reply, read above the quote.

Pure: text in, a `Script` out. Tags may be simplified or traditional, full- or half-width,
with or without a leading `#`. The command block is the first paragraph of the reply's own
text and every later paragraph that starts with a tag or an item number; it ends at the quoted
part, a `-- ` signature, or the first paragraph that does not start with a command (a greeting
or signature below the tags). A line in the block that is no command is reported, never guessed.

What a tag's words mean (publication, grade, bonus level, deduction) is the rulebook's business:
the parser only splits them. Bonus verbs (`批示`, `上报`, …) come from the rulebook too and are
passed in as `bonus_verbs`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace

from parser.normalize import fold

# The fixed verbs of SPEC §4.2 (after folding), longest first so 不采用 is not read as 采用.
VERBS = {
    "不采用": "decline",
    "采用": "adopt",
    "退回": "return",
    "撤销": "undo",
    "撤消": "undo",
    "线索": "clue",
    "扣分": "deduct",
    "加分": "unit_bonus",
}
BONUS = "bonus"

# Traditional forms of command words that the shared folding table does not hold yet.
_EXTRA_T2S = str.maketrans({"遲": "迟", "詢": "询"})

_TRACKING = re.compile(r"^([A-Za-z]{1,16}-\d{4}-\d{1,9})(?![\d-])", re.ASCII)
_APPROVED = re.compile(r"^(approved|approve|批准|口令)\s*[:：]\s*(.+?)\s*$", re.IGNORECASE)
_ISSUE = re.compile(r"(?:\d{4}\s*年\s*)?第\s*[\d一二三四五六七八九十百零〇]+\s*期")
_BRACKETS = str.maketrans({"《": " ", "》": " ", "〈": " ", "〉": " ", "“": " ", "”": " "})

# Where the editor's own text ends: quote headers of the common clients (Foxmail, QQ, 163,
# Outlook, Gmail, Apple Mail, Thunderbird), a quoted line, or the `-- ` signature separator.
_QUOTE_START = re.compile(
    r"^(?:>"
    r"|-{2,}\s*(?:原始邮件|原始郵件|original message|转发邮件|轉寄郵件|forwarded message)"
    r"|_{10,}\s*$"
    r"|-{5,}\s*original\s*-{5,}"
    r"|在.{1,120}(?:写道|寫道)\s*[:]?\s*$"
    r"|on .{1,200}\bwrote\s*:?\s*$"
    r"|(?:发件人|寄件者|寄件人|from)\s*[:]"
    r"|(?:发送时间|寄件日期|sent)\s*[:]"
    r")",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Tag:
    """One tag: a verb and the words after it (folded), plus the words as the editor wrote them.

    `verb` is `adopt`, `decline`, `return`, `undo`, `clue`, `deduct`, `unit_bonus` (加分, for a
    unit) or `bonus`; for `bonus`, `bonus` is the rulebook's bonus name (`批示`, `上报`).
    `issue` is an issue label such as `2026年第45期` found among the words. For `undo`,
    `target` is the tag being undone (None: the latest tag on the item).
    """

    verb: str
    words: tuple[str, ...]
    text: str
    bonus: str | None = None
    issue: str | None = None
    target: Tag | None = None


@dataclass(frozen=True)
class CommandLine:
    """A line of the command block: a tag for the replied-to item, or for a named item."""

    number: int
    source: str
    tracking_no: str | None = None
    tag: Tag | None = None
    error: str | None = None  # unknown_tag, missing_tag
    header: bool = False  # a batch header: its tag applies to the item lines below it


@dataclass(frozen=True)
class Script:
    """Everything an editor's message asks for, in order."""

    approved: str | None
    lines: tuple[CommandLine, ...]
    trailing: int = 0  # lines after the command block (greetings, signatures): not read

    @property
    def errors(self) -> tuple[CommandLine, ...]:
        return tuple(line for line in self.lines if line.error)


def _fold(text: str) -> str:
    return fold(text).translate(_EXTRA_T2S).translate(_BRACKETS)


def own_text(body: str) -> list[str]:
    """The lines the editor wrote: everything above the quoted part or the signature."""
    kept: list[str] = []
    for line in body.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line.rstrip("\r") == "-- " or line.strip() == "--":
            break
        if _QUOTE_START.match(unicodedata.normalize("NFKC", line).strip()):
            break
        kept.append(line.rstrip())
    return kept


def _strip_hash(text: str) -> str:
    return text.lstrip().lstrip("#").lstrip()


def parse_tag(text: str, bonus_verbs: Iterable[str] = (), *, undoable: bool = True) -> Tag | None:
    """One tag (`采用 穗府信息 标题`, `#上報 省辦採用`), or None when it starts with no verb.

    `撤销 <tag>` names the tag it undoes; that one is not itself read as an undo (there is no
    undoing an undo by name), so `撤销 撤销 撤销 …` costs one level, not one per word."""
    original = _strip_hash(unicodedata.normalize("NFKC", text))
    folded = _strip_hash(_fold(text)).strip()
    if not folded:
        return None
    verbs = [(word, verb) for word, verb in VERBS.items()]
    verbs += [(_fold(name).replace(" ", ""), BONUS) for name in bonus_verbs]
    for word, verb in sorted(verbs, key=lambda wv: len(wv[0]), reverse=True):
        if not folded.startswith(word):
            continue
        shown = original[len(word) :].strip()
        words, issue = _split_words(folded[len(word) :])
        tag = Tag(
            verb=verb,
            words=words,
            text=shown,
            bonus=word if verb == BONUS else None,
            issue=issue,
        )
        if verb == "undo" and undoable:
            target = parse_tag(shown, bonus_verbs, undoable=False) if shown else None
            tag = replace(tag, target=target, words=() if target else tag.words)
        return tag
    return None


def _item_line(text: str) -> tuple[str, str] | None:
    m = _TRACKING.match(_strip_hash(unicodedata.normalize("NFKC", text)).strip())
    if m is None:
        return None
    rest = _strip_hash(unicodedata.normalize("NFKC", text)).strip()[m.end() :]
    return m.group(1).upper(), rest.strip(" :：-—,，")


def _split_words(text: str) -> tuple[tuple[str, ...], str | None]:
    """Folded words of `text`, with an issue label (`2026年第45期`) taken out."""
    rest = _fold(text).strip()
    m = _ISSUE.search(rest)
    issue = re.sub(r"\s+", "", m.group(0)) if m else None
    if m:
        rest = rest[: m.start()] + " " + rest[m.end() :]
    return tuple(rest.split()), issue


def _with_header(header: Tag, words: str) -> Tag:
    """A batch line's tag: the header's verb and words, then the line's own words."""
    extra, issue = _split_words(words)
    return replace(
        header,
        words=header.words + extra,
        text=f"{header.text} {words}".strip(),
        issue=header.issue or issue,
    )


def parse_commands(body: str, bonus_verbs: Iterable[str] = ()) -> Script:
    """Read an editor's message body into a `Script` (nothing is applied here)."""
    bonus_verbs = tuple(bonus_verbs)
    lines = own_text(body)
    approved: str | None = None
    paragraphs: list[list[tuple[int, str]]] = [[]]
    for number, line in enumerate(lines, 1):
        if not line.strip():
            if paragraphs[-1]:
                paragraphs.append([])
            continue
        m = _APPROVED.match(unicodedata.normalize("NFKC", line).strip())
        if m and approved is None and not any(paragraphs):
            approved = m.group(2)
            continue
        paragraphs[-1].append((number, line))
    paragraphs = [p for p in paragraphs if p]

    def starts_command(text: str) -> bool:
        return _item_line(text) is not None or parse_tag(text, bonus_verbs) is not None

    block: list[tuple[int, str]] = []
    trailing = 0
    for index, paragraph in enumerate(paragraphs):
        if index == 0 or starts_command(paragraph[0][1]):
            if trailing:
                break
            block.extend(paragraph)
        else:
            trailing += len(paragraph)

    out: list[CommandLine] = []
    header: Tag | None = None  # the latest header line's tag, for the item lines below it
    for i, (number, text) in enumerate(block):
        item = _item_line(text)
        if item is not None:
            tracking_no, rest = item
            own = parse_tag(rest, bonus_verbs) if rest else None
            if own is not None:
                out.append(CommandLine(number, text.strip(), tracking_no, own))
            elif header is not None:
                joined = _with_header(header, rest)
                out.append(CommandLine(number, text.strip(), tracking_no, joined))
            else:
                out.append(CommandLine(number, text.strip(), tracking_no, error="missing_tag"))
            continue
        tag = parse_tag(text, bonus_verbs)
        if tag is None:
            out.append(CommandLine(number, text.strip(), error="unknown_tag"))
            continue
        # A tag directly above item lines is their header, not a tag for the replied-to item.
        is_header = i + 1 < len(block) and _item_line(block[i + 1][1]) is not None
        out.append(CommandLine(number, text.strip(), None, tag, header=is_header))
        if is_header:
            header = tag
    return Script(approved=approved, lines=tuple(out), trailing=trailing)


# --- a unit's status query (查询) --------------------------------------------------------------

MAX_QUERY_SUBJECT = 200
_QUERY = re.compile(
    r"[\[【]?\s*查询\s*[\]】]?\s*(?:(?P<period>\d{4}(?:Q\d{1,2}|-\d{1,2})?)"
    r"|(?P<tracking>[A-Za-z]{1,16}-\d{4}-\d{1,9}))?\s*",
    re.ASCII | re.IGNORECASE,
)


@dataclass(frozen=True)
class StatusQuery:
    """`查询` (the current quarter), `查询 2027Q1` / `查询 2027` / `查询 2027-03`, or
    `查询 GZ-2027-000012` (one item)."""

    period: str | None = None
    tracking_no: str | None = None


def parse_status_query(subject: str) -> StatusQuery | None:
    """The query a subject asks, or None when the subject is no query (an item's title)."""
    if len(subject) > MAX_QUERY_SUBJECT:
        return None
    text = _fold(subject).strip()
    for prefix in ("re:", "回复:", "答复:"):  # a reply to an earlier answer asks again
        if text.lower().startswith(prefix):
            text = text[len(prefix) :].strip()
    m = _QUERY.fullmatch(text)
    if m is None:
        return None
    period, tracking = m.group("period"), m.group("tracking")
    return StatusQuery(
        period=period.upper() if period else None,
        tracking_no=tracking.upper() if tracking else None,
    )
