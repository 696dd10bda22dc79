"""Raw bytes → `DecodedMessage`: every MIME part decoded from its own bytes (SPEC §10).

Chinese mail is often mislabelled: gb2312/gbk labels are decoded as gb18030 (a superset),
big5 as big5hkscs, and a wrong or unknown label falls back through the likely charsets.
"""

from __future__ import annotations

import codecs
import email
import email.header
import email.utils
import hashlib
import re
from datetime import datetime
from email import policy
from email.message import Message
from html.parser import HTMLParser

from parser.types import Attachment, DecodedMessage

# Labels that are subsets of a wider charset, decoded as the wider one.
CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "euc-cn": "gb18030",
    "x-euc-cn": "gb18030",
    "hz-gb-2312": "hz",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "cp950": "big5hkscs",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "unknown-8bit": "",
    "x-unknown": "",
    "x-user-defined": "",
    "utf8": "utf-8",
}

FALLBACK_CHARSETS = ("utf-8", "gb18030", "big5hkscs")

# Headers added in transit: they differ between two deliveries of the same message.
TRACE_HEADERS = frozenset(
    {
        "received",
        "return-path",
        "delivered-to",
        "x-original-to",
        "x-envelope-from",
        "x-envelope-to",
        "authentication-results",
        "arc-seal",
        "arc-message-signature",
        "arc-authentication-results",
        "received-spf",
        "x-received",
        "x-spam-status",
        "x-spam-score",
        "x-spam-flag",
        "x-virus-scanned",
        "x-mailroom-spool",
    }
)


def _codec(label: str | None) -> str | None:
    """The Python codec to try for a declared charset, or None if it is unusable."""
    if not label:
        return None
    name = label.strip().strip('"').lower()
    name = CHARSET_ALIASES.get(name, name)
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_bytes(data: bytes, label: str | None) -> tuple[str, bool]:
    """Decode `data`; returns (text, clean). Not clean means replacement characters remain."""
    tried: list[str] = []
    first = _codec(label)
    for name in ([first] if first else []) + list(FALLBACK_CHARSETS):
        if name in tried:
            continue
        tried.append(name)
        try:
            return data.decode(name), True
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode(first or "gb18030", errors="replace"), False


def _unescape_8bit(value: str) -> str:
    """Header text that arrived as raw 8-bit bytes (not RFC 2047) comes back surrogate-escaped."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    raw = value.encode("utf-8", errors="surrogateescape")
    text, _ = decode_bytes(raw, None)
    return text


_ENCODED_WORD_GAP = re.compile(r"(\?=)\s+(=\?)")


def decode_header(value: str | None) -> str:
    """RFC 2047 encoded-words (split ones too) decoded with the charset aliases."""
    if not value:
        return ""
    value = _unescape_8bit(str(value))
    value = _ENCODED_WORD_GAP.sub(r"\1\2", value)
    try:
        parts = email.header.decode_header(value)
    except (email.errors.HeaderParseError, ValueError):
        return value
    out: list[str] = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
        else:
            text, _ = decode_bytes(chunk, charset)
            out.append(text)
    return re.sub(r"[\r\n]+\s*", " ", "".join(out)).strip()


class _HtmlText(HTMLParser):
    """Visible text of an HTML body, with block elements as line breaks."""

    BLOCKS = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    try:
        parser.feed(html)
        parser.close()
    except AssertionError:  # html.parser raises this on some malformed markup
        pass
    text = "".join(parser.parts).replace("\xa0", " ")
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def content_hash(raw: bytes) -> str:
    """SHA-256 of the message without its trace headers, line endings normalised."""
    normalised = raw.replace(b"\r\n", b"\n")
    head, sep, body = normalised.partition(b"\n\n")
    kept: list[bytes] = []
    keep = True
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if keep:
                kept.append(line)
            continue
        name = line.split(b":", 1)[0].strip().lower().decode("ascii", "replace")
        keep = name not in TRACE_HEADERS
        if keep:
            kept.append(line)
    digest = hashlib.sha256(b"\n".join(kept) + sep + body.rstrip(b"\n"))
    return digest.hexdigest()


def _filename(part: Message) -> str | None:
    name = part.get_filename()
    if name is None:
        return None
    name = decode_header(name) if "=?" in name else _unescape_8bit(name)
    # Never trust a path in an attachment name: keep the last component only.
    name = re.split(r"[\\/]", name)[-1].strip().strip(".")
    return name or None


def _payload_bytes(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except (ValueError, AssertionError):
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", errors="surrogateescape")
    return b""


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else None


def _msg_ids(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(re.findall(r"<[^<>\s]+>", value))


def decode_message(raw: bytes) -> DecodedMessage:
    """Decode a raw RFC 5322 message. Never raises on malformed input."""
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    headers = tuple((str(k), decode_header(str(v))) for k, v in msg.items())
    name, address = email.utils.parseaddr(decode_header(msg.get("From", "")))

    plain: list[str] = []
    html: list[str] = []
    attachments: list[Attachment] = []
    undecodable = False
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        filename = _filename(part)
        data = _payload_bytes(part)
        is_text_body = ctype in ("text/plain", "text/html") and disposition != "attachment"
        if is_text_body and filename is None:
            text, clean = decode_bytes(data, part.get_content_charset())
            undecodable = undecodable or not clean
            (plain if ctype == "text/plain" else html).append(text)
            continue
        if ctype.startswith("multipart/") or ctype == "message/delivery-status":
            continue
        attachments.append(
            Attachment(
                filename=filename,
                content_type=ctype,
                data=data,
                inline=disposition == "inline" or (disposition == "" and filename is None),
            )
        )
    body = "\n".join(plain) if plain else "\n".join(html_to_text(h) for h in html)
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    if "\ufffd" in body:
        undecodable = True

    in_reply_to = _msg_ids(msg.get("In-Reply-To"))
    return DecodedMessage(
        message_id=(_msg_ids(msg.get("Message-ID")) or (None,))[0],
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=_msg_ids(msg.get("References")),
        from_address=address.strip().lower(),
        from_name=name.strip(),
        subject=decode_header(msg.get("Subject", "")),
        date=_parse_date(msg.get("Date")),
        content_type=msg.get_content_type(),
        headers=headers,
        body_text=body,
        attachments=tuple(attachments),
        undecodable=undecodable,
        content_hash=content_hash(raw),
    )
