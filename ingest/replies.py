"""Receipts (回执) and refusals (退稿): rendered from Jinja2 templates, threaded, auto-submitted."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime, tzinfo
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from parser.classify import OWN_MARKER_HEADER
from parser.types import DecodedMessage, Problem

TEMPLATE_DIR = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Explained:
    code: str
    text: str
    fix: str


def wire_bytes(msg: EmailMessage) -> bytes:
    """The message as it goes on the wire: CRLF line endings, lines within SMTP's limit."""
    return msg.as_bytes(policy=policy.SMTP)


def readdressed(wire: bytes, headers: dict[str, str]) -> bytes:
    """A copy of `wire_bytes` output with some top-level headers given new values.

    Serialising a message costs far more than folding two header lines, so a message that goes
    to several people alike (the desk forward) is serialised once and readdressed per person.
    Each named header must occur exactly once in the message.
    """
    head, sep, body = wire.partition(b"\r\n\r\n")
    fields: list[bytearray] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        else:
            fields.append(bytearray(line))
    wanted = {name.lower(): name for name in headers}
    seen: set[str] = set()
    out = []
    for field in fields:
        name = bytes(field).split(b":", 1)[0].decode("ascii", "replace").strip().lower()
        if name in wanted:
            if name in seen:
                raise ValueError(f"header {wanted[name]} occurs more than once")
            seen.add(name)
            key = wanted[name]
            stored = policy.SMTP.header_store_parse(key, headers[key])
            out.append(policy.SMTP.fold_binary(*stored).removesuffix(b"\r\n"))
        else:
            out.append(bytes(field))
    missing = set(wanted) - seen
    if missing:
        raise ValueError(f"headers not in the message: {', '.join(sorted(missing))}")
    return b"\r\n".join(out) + sep + body


_HOUR = 60  # minutes
_DAY = 24 * _HOUR


def duration_text(minutes: int) -> str:
    """A span as a reader takes it in: under two hours in minutes, under two days in hours,
    else in days (40 分钟, 5 小时, 10 天; rounded, the text around it says 约)."""
    if minutes < 2 * _HOUR:
        return f"{minutes} 分钟"
    if minutes < 2 * _DAY:
        return f"{round(minutes / _HOUR)} 小时"
    return f"{round(minutes / _DAY)} 天"


class ReplyWriter:
    """Renders reply mail in one language set (`zh-Hans` by default)."""

    def __init__(self, sender: str, sender_name: str, zone: tzinfo, language: str = "zh-Hans"):
        folder = TEMPLATE_DIR / language
        self.env = Environment(
            loader=FileSystemLoader(folder),
            autoescape=select_autoescape(["html.j2"]),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self._plain = Environment(autoescape=False)
        self._plain.filters["duration"] = duration_text
        self.problem_texts: dict[str, dict[str, str]] = tomllib.loads(
            (folder / "problems.toml").read_text(encoding="utf-8")
        )
        self.sender = sender
        self.sender_name = sender_name
        self.zone = zone

    def explain(self, problem: Problem) -> Explained:
        entry = self.problem_texts.get(problem.code, {"text": problem.code, "fix": ""})
        params: dict[str, Any] = {"found": None, "expected": None, **dict(problem.params)}
        return Explained(
            code=problem.code,
            text=self._plain.from_string(entry["text"]).render(params),
            fix=self._plain.from_string(entry.get("fix", "")).render(params),
        )

    def local_time(self, instant: datetime) -> str:
        return instant.astimezone(self.zone).strftime("%Y年%m月%d日 %H:%M")

    def _message(
        self,
        *,
        to: str,
        subject: str,
        original: DecodedMessage,
        kind: str,
        context: dict[str, Any],
        template: str | None = None,
    ) -> EmailMessage:
        msg = EmailMessage()
        local, _, domain = self.sender.partition("@")
        msg["From"] = Address(display_name=self.sender_name, username=local, domain=domain)
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = format_datetime(context["now"])
        msg["Message-ID"] = make_msgid(idstring=f"mailroom.{kind}", domain=domain or None)
        if original.message_id:
            msg["In-Reply-To"] = original.message_id
            msg["References"] = " ".join([*original.references, original.message_id])
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
        msg[OWN_MARKER_HEADER] = kind
        text = self.env.get_template(f"{template or kind}.txt.j2").render(context)
        html = self.env.get_template(f"{template or kind}.html.j2").render(context)
        msg.set_content(text, charset="utf-8")
        msg.add_alternative(html, subtype="html", charset="utf-8")
        return msg

    def receipt(
        self,
        *,
        to: str,
        original: DecodedMessage,
        unit_name: str,
        tracking_no: str,
        title: str,
        body_chars: int,
        body_limit: int,
        attachment_name: str | None,
        attachment_chars: int | None,
        attachment_limit: int,
        received_at: datetime,
        quarter: str,
        warnings: tuple[Problem, ...],
        now: datetime,
    ) -> EmailMessage:
        context = {
            "unit_name": unit_name,
            "tracking_no": tracking_no,
            "title": title,
            "body_chars": body_chars,
            "body_limit": body_limit,
            "attachment_name": attachment_name,
            "attachment_chars": attachment_chars,
            "attachment_limit": attachment_limit,
            "received_local": self.local_time(received_at),
            "quarter": quarter,
            "warnings": [self.explain(w) for w in warnings],
            "office_name": self.sender_name,
            "now": now,
        }
        subject = f"回执：{tracking_no} {title}"
        return self._message(
            to=to, subject=subject, original=original, kind="receipt", context=context
        )

    def postmaster_forward(
        self,
        *,
        to: str,
        original: DecodedMessage,
        raw: bytes,
        envelope_from: str,
        recipient: str,
        received_at: datetime,
        now: datetime,
    ) -> EmailMessage:
        """Mail to postmaster, passed on to the operator with the original attached."""
        context = {
            "sender": envelope_from or original.from_address,
            "recipient": recipient,
            "received_local": self.local_time(received_at),
            "office_name": self.sender_name,
            "now": now,
        }
        msg = self._message(
            to=to,
            subject="发给 postmaster 的邮件",
            original=original,
            kind="postmaster",
            context=context,
        )
        msg.add_attachment(
            raw, maintype="application", subtype="octet-stream", filename="postmaster.eml"
        )
        return msg

    def refusal_unregistered(
        self, *, to: str, original: DecodedMessage, received_at: datetime, now: datetime
    ) -> EmailMessage:
        """The refusal an unregistered address gets: fixed words that quote nothing of the
        message (its subject, names and address are the sender's to choose, and the
        sender may not be who the From says)."""
        context = {
            "fix": self.explain(Problem.of("unknown_sender", address="")).fix,
            "received_local": self.local_time(received_at),
            "office_name": self.sender_name,
            "now": now,
        }
        return self._message(
            to=to,
            subject="退稿：发件邮箱未登记为信息员邮箱",
            original=original,
            kind="refusal",
            template="refusal_unregistered",
            context=context,
        )

    def refusal(
        self,
        *,
        to: str,
        original: DecodedMessage,
        addressee: str,
        problems: tuple[Problem, ...],
        received_at: datetime,
        now: datetime,
    ) -> EmailMessage:
        context = {
            "addressee": addressee,
            "problems": [self.explain(p) for p in problems],
            "original_subject": original.subject,
            "received_local": self.local_time(received_at),
            "office_name": self.sender_name,
            "now": now,
        }
        subject = f"退稿：{original.subject or '（无主题）'}"
        return self._message(
            to=to, subject=subject, original=original, kind="refusal", context=context
        )
