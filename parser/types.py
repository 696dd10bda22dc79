"""Plain values passed between the parser and the rest of Mailroom."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a message (or a warning), by stable code with its details."""

    code: str
    params: tuple[tuple[str, str | int], ...] = ()

    def param(self, name: str) -> str | int | None:
        return dict(self.params).get(name)

    @classmethod
    def of(cls, code: str, **params: str | int) -> Problem:
        return cls(code, tuple(sorted(params.items())))


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    data: bytes
    inline: bool


@dataclass(frozen=True)
class DecodedMessage:
    """A message with every header and text part decoded to str from its own bytes."""

    message_id: str | None
    # Addresses are read from the headers as they arrived, never from decoded text.
    return_path: str | None  # `Return-Path:`: "" for `<>`, None when absent
    recipients: tuple[str, ...]  # every address in To, Cc, Delivered-To, X-Original-To, …
    in_reply_to: str | None
    references: tuple[str, ...]
    from_address: str
    from_name: str
    subject: str
    date: datetime | None
    content_type: str
    headers: tuple[tuple[str, str], ...]
    body_text: str
    attachments: tuple[Attachment, ...]
    undecodable: bool
    content_hash: str  # of the raw message without its trace headers
    # Of what the sender wrote, once decoded (address, subject, text, attachments): two
    # deliveries of one message agree on it even when servers added headers of their own.
    written_hash: str
    # Why the body could not be read at all (`nesting`: MIME parts nested too deep), or None.
    malformed: str | None = None

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None


@dataclass(frozen=True)
class SenderContext:
    """What the registry knows of the sender (looked up by the caller, passed in)."""

    unit_code: str
    unit_name: str
    unit_mark: str
    person_name: str


@dataclass(frozen=True)
class Limits:
    """Limits from the rulebook and the config (never literals in code)."""

    body_chars: int  # 0: no limit
    attachment_chars: int  # 0: no limit
    clock_skew: timedelta
    late_report_days: int
    # The sign-off elements that must be there: unit, author, phone, date, approver.
    required_signoff: tuple[str, ...] = ("unit", "author", "phone", "date")
    # Words that mark an item's importance in the subject (【重大】), as the rulebook grades it.
    importance_words: tuple[str, ...] = ()


@dataclass(frozen=True)
class SignOff:
    unit: str | None = None
    author: str | None = None
    phone: str | None = None
    date: date | None = None
    approver: str | None = None  # 审签人 / 签发人 / 审核人, when the sign-off names one
    importance: str | None = None  # 重要程度：重大, when the sign-off says it


@dataclass(frozen=True)
class Submission:
    """An item that passed every check, ready to be filed."""

    mark: str
    title: str
    markers: frozenset[str]
    body: str
    body_chars: int
    signoff: SignOff
    attachment_name: str | None
    attachment_chars: int | None

    @property
    def importance_word(self) -> str | None:
        """The importance the subject marks (【重大】), else what the sign-off says (重要程度：)."""
        for marker in self.markers:
            if marker.startswith("importance:"):
                return marker.partition(":")[2]
        return self.signoff.importance

    @property
    def solicitation_code(self) -> str | None:
        """The 约稿 code named in the subject (`【约稿:YG-2026-07】`), from `markers`."""
        for marker in self.markers:
            if marker.startswith("solicitation:"):
                return marker.partition(":")[2]
        return None


@dataclass(frozen=True)
class Verdict:
    """The outcome of validation: a submission, or every problem found; warnings either way."""

    submission: Submission | None
    problems: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = field(default=())
