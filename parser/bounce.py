"""What a bounce says: which recipients failed, why, and which message of ours it returns.

A delivery report (RFC 3464: `multipart/report` with a `message/delivery-status` part) names
each recipient with its action (`failed`, `delayed`, `delivered` …), its status (`5.1.1`) and
the remote server's words; the returned message (`message/rfc822`) or its header block
(`text/rfc822-headers`) carries the Message-ID of what we sent. A bounce that is no report (an
old mail system's plain text) gives only the first line that names an SMTP status.

Everything here is the sender's to write: each part is read up to a cap, line by line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parser.decode import identify
from parser.normalize import fold
from parser.types import DecodedMessage

# Of a delivery-status part, of a returned message's header block, and of a plain bounce's
# text: what is read. A report names at most this many recipients that count.
MAX_REPORT_BYTES = 64 * 1024
MAX_HEADER_BYTES = 64 * 1024
MAX_TEXT_CHARS = 20_000
MAX_RECIPIENTS = 100
MAX_REASON_CHARS = 300

_REPORTS = ("message/delivery-status", "message/global-delivery-status")
_RETURNED = ("message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers")
_STATUS = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$", re.ASCII)
# In a plain bounce's text: an enhanced status (`5.1.1`, qmail's `(#5.1.1)`), or a reply code
# where mail systems write one (at the start of a line, after `said:`), never any number.
_CODE_IN_TEXT = re.compile(
    r"(?<![\d.])([245])\.\d{1,3}\.\d{1,3}(?![\d.])|(?:^|said:)\s*([245])[0-5]\d(?:[ -]|$)",
    re.ASCII | re.IGNORECASE,
)
_DELAYED = re.compile(r"delay|延迟|延时|暂缓|will retry|still trying", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class RecipientStatus:
    """One recipient of a delivery report."""

    recipient: str  # Final-Recipient, lower case
    original: str  # Original-Recipient, "" when the report gives none
    action: str  # failed, delayed, delivered, relayed, expanded ("" when unnamed)
    status: str  # the enhanced status code, e.g. 5.1.1 ("" when unreadable)
    diagnostic: str  # the remote server's answer, on one line

    @property
    def failed(self) -> bool:
        """Given up for good: `Action: failed`, or a permanent status where no action is named."""
        if self.action:
            return self.action == "failed"
        return self.status.startswith("5")

    @property
    def reason(self) -> str:
        """The status and the remote server's words, as a person reads them."""
        if not self.diagnostic:
            return self.status
        if self.status and self.status not in self.diagnostic:
            return f"{self.status} {self.diagnostic}"
        return self.diagnostic


@dataclass(frozen=True)
class Bounce:
    """What a bounce says, as far as it can be read."""

    recipients: tuple[RecipientStatus, ...]  # from a delivery report; () for a plain bounce
    message_id: str | None  # of the returned message
    report: bool  # it holds a delivery report
    text_reason: str  # a plain bounce's first line naming an SMTP status ("" when none)
    # A plain bounce that says delivery failed for good: its line names a permanent (5)
    # status, and its subject no delay.
    text_permanent: bool

    @property
    def failures(self) -> tuple[RecipientStatus, ...]:
        return tuple(r for r in self.recipients if r.failed)


def read_bounce(msg: DecodedMessage) -> Bounce:
    """The recipients, statuses and returned Message-ID of a bounce (never raises)."""
    report_part = next((a for a in msg.attachments if a.content_type in _REPORTS), None)
    returned = next((a for a in msg.attachments if a.content_type in _RETURNED), None)
    message_id = _returned_message_id(returned.data) if returned is not None else None
    if report_part is not None:
        return Bounce(
            recipients=_recipients(report_part.data),
            message_id=message_id,
            report=True,
            text_reason="",
            text_permanent=False,
        )
    reason, code_class = _reason_line(msg.body_text[:MAX_TEXT_CHARS])
    delayed = bool(_DELAYED.search(fold(msg.subject[:1000])))
    return Bounce((), message_id, False, reason, code_class == "5" and not delayed)


def _one_line(value: str, limit: int = MAX_REASON_CHARS) -> str:
    return _SPACES.sub(" ", value[: limit * 4]).strip()[:limit]


def _fields(block: list[str]) -> dict[str, str]:
    """The fields of one block of a report, unfolded; the first of a repeated name counts."""
    out: dict[str, str] = {}
    name = ""
    for line in block:
        if line[:1] in (" ", "\t"):  # a continuation line, of the field before it
            if name and len(out[name]) < MAX_REASON_CHARS * 4:
                out[name] += " " + line.strip()
            continue
        key, colon, value = line.partition(":")
        name = key.strip().lower() if colon else ""
        if name and name not in out:
            out[name] = value.strip()
        elif name:
            name = ""  # a repeated field: its continuation lines are not the first one's
    return out


def _typed_value(value: str) -> str:
    """`rfc822; someone@example.org` → the address (the type before `;` dropped)."""
    _kind, semicolon, rest = value.partition(";")
    return (rest if semicolon else value).strip().strip("<>").strip()


def _recipients(data: bytes) -> tuple[RecipientStatus, ...]:
    text = data[:MAX_REPORT_BYTES].decode("utf-8", "replace")
    blocks: list[list[str]] = [[]]
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line.strip():
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    out: list[RecipientStatus] = []
    for block in blocks[1:]:  # the first block is about the message, the rest a recipient each
        fields = _fields(block)
        recipient = _typed_value(fields.get("final-recipient", ""))[:320].lower()
        if not recipient:
            continue
        status = fields.get("status", "").split(" ", 1)[0].strip()
        out.append(
            RecipientStatus(
                recipient=recipient,
                original=_typed_value(fields.get("original-recipient", ""))[:320].lower(),
                action=fields.get("action", "").split(" ", 1)[0].strip().lower()[:20],
                status=status if _STATUS.match(status) else "",
                diagnostic=_one_line(_typed_value(fields.get("diagnostic-code", ""))),
            )
        )
        if len(out) >= MAX_RECIPIENTS:
            break
    return tuple(out)


def _returned_message_id(data: bytes) -> str | None:
    """The Message-ID of the returned message, from its header block only."""
    head = data[:MAX_HEADER_BYTES]
    end = re.search(rb"\r?\n\r?\n", head)
    if end is not None:
        head = head[: end.start()]
    message_id, _from, _subject = identify(head + b"\r\n\r\n")
    return message_id


def _reason_line(text: str) -> tuple[str, str]:
    """The first line of a plain bounce that names an SMTP status, and the status's class
    (`5`: permanent, `4`: a delay); ("", "") when no line does."""
    for line in text.split("\n"):
        m = _CODE_IN_TEXT.search(line.strip())
        if m is not None:
            return _one_line(line), m.group(1) or m.group(2)
    return "", ""
