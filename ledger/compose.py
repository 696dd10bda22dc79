"""Every mail Mailroom sends is put together here, one way (pure: no clock, no I/O).

Receipts, refusals, the postmaster's copies, desk forwards, confirmations, notices, 约稿 mail
and reports differ in their words (each wing renders its own templates) and never in their
envelope of headers:

- `From` the office's sender; `Date` the time given; a `Message-ID` of the one style
  `<mailroom.<kind>.[<tag>.]<token>@<domain>>`;
- `Auto-Submitted: auto-replied` on a mail that answers a message (RFC 3834 §5.1), with its
  `In-Reply-To` and `References`; `auto-generated` on every other;
- `X-Auto-Response-Suppress: All`, so Exchange and Outlook send no out-of-office back;
- the own-message marker (`X-Mailroom-Origin: <kind>`), by which Mailroom knows its own mail
  when it comes back (a loop through a forwarding rule, a copy to the office's own mailbox).

`wire_bytes` gives the message as it goes on the wire; `readdressed` a copy for another
recipient without serialising it again.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from parser.classify import OWN_MARKER_HEADER
from parser.types import DecodedMessage

AUTO_SUBMITTED_HEADER = "Auto-Submitted"
SUPPRESS_HEADER = "X-Auto-Response-Suppress"


@dataclass(frozen=True)
class Sender:
    """Who the office's mail is from: an address and the name shown with it."""

    address: str
    name: str

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]

    def header(self) -> Address:
        local, _, domain = self.address.partition("@")
        return Address(display_name=self.name, username=local, domain=domain)


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes
    maintype: str = "application"
    subtype: str = "octet-stream"


def message_id(kind: str, domain: str, tag: str = "") -> str:
    """`<mailroom.<kind>.[<tag>.]<token>@<domain>>`; a tag carries what a reply must bring
    back (the desk's reply key)."""
    # With a tag the token can be shorter: the id then stays on one header line.
    token = secrets.token_hex(4 if tag else 8)
    middle = f"{tag}." if tag else ""
    return f"<mailroom.{kind}.{middle}{token}@{domain or 'localhost'}>"


def compose(
    *,
    kind: str,
    sender: Sender,
    to: str | Address,
    subject: str,
    text: str,
    html: str,
    now: datetime,
    answering: DecodedMessage | None = None,
    msgid: str | None = None,
    reply_to: str | None = None,
    attachments: Sequence[Attachment] = (),
) -> EmailMessage:
    """One outgoing mail of `kind`: plain text and HTML alternatives, then any attachments.

    `answering` is the message this one replies to (a receipt, a refusal, a confirmation).
    """
    msg = EmailMessage()
    msg["From"] = sender.header()
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = msgid or message_id(kind, sender.domain)
    if reply_to:
        msg["Reply-To"] = reply_to
    if answering is not None and answering.message_id:
        msg["In-Reply-To"] = answering.message_id
        msg["References"] = " ".join([*answering.references, answering.message_id])
    msg[AUTO_SUBMITTED_HEADER] = "auto-replied" if answering is not None else "auto-generated"
    msg[SUPPRESS_HEADER] = "All"
    msg[OWN_MARKER_HEADER] = kind
    msg.set_content(text, charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    for a in attachments:
        msg.add_attachment(a.data, maintype=a.maintype, subtype=a.subtype, filename=a.filename)
    return msg


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
