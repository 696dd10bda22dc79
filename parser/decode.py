"""Raw bytes → `DecodedMessage`: every MIME part decoded from its own bytes (SPEC §10).

Chinese mail is often mislabelled: gb2312/gbk labels are decoded as gb18030 (a superset),
big5 as big5hkscs, and a wrong or unknown label falls back through the likely charsets.
"""

from __future__ import annotations

import binascii
import codecs
import contextlib
import email
import email.header
import email.parser
import email.utils
import hashlib
import re
from collections.abc import Iterator
from datetime import datetime
from email import policy
from email.headerregistry import HeaderRegistry
from email.message import Message
from html.parser import HTMLParser
from typing import Any

from parser.tnef import TnefError, tnef_attachments
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


_NOT_CHARSETS = frozenset(
    {"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined", "charmap"}
)


def _codec(label: str | None) -> str | None:
    """The Python codec to try for a declared charset, or None if it is unusable."""
    if not label:
        return None
    name = str(label).strip().strip("\"'").lower()
    name = CHARSET_ALIASES.get(name, name)
    if not name:
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    # Only charsets: `rot13`, `base64`, `zlib`, `hex`, `uu` … are codecs of another kind, and
    # `idna`, `punycode` or `unicode-escape` read a sender's bytes as something else again.
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return info.name


_SINGLE_BYTE = frozenset({"cp1252", "latin-1", "iso8859-1", "ascii", "utf-8"})


def _cjk_fit(text: str, codec: str) -> tuple[float, int]:
    """How plausible `text` is as Chinese decoded with `codec`: the share of its hanzi that are
    common ones (GB2312 for gb18030, Big5 level 1 for big5hkscs), and how many hanzi it has.

    Big5 bytes read as GBK (and the reverse) still decode, but into rare characters.
    """
    hanzi = [ch for ch in text if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"]
    if not hanzi:
        return 0.0, 0
    common = 0
    for ch in hanzi:
        if codec == "big5hkscs":
            try:
                code = int.from_bytes(ch.encode("big5"), "big")
            except UnicodeEncodeError:
                continue
            common += 0xA440 <= code <= 0xC67E
        else:
            try:
                ch.encode("gb2312")
            except UnicodeEncodeError:
                continue
            common += 1
    return common / len(hanzi), len(hanzi)


def _best_chinese(data: bytes, hints: tuple[str, ...]) -> str | None:
    """Among the hinted and the likely Chinese charsets, the strict decoding that reads best."""
    best: tuple[float, int, str] | None = None
    order = [c for c in (_codec(h) for h in hints) if c] + ["gb18030", "big5hkscs"]
    seen: list[str] = []
    for rank, codec in enumerate(order):
        if codec in seen or codec in _SINGLE_BYTE:
            continue
        seen.append(codec)
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        fit, _ = _cjk_fit(text, codec)
        key = (fit, -rank, codec)
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best else None


def decode_bytes(data: bytes, label: str | None, hints: tuple[str, ...] = ()) -> tuple[str, bool]:
    """Decode `data`; returns (text, clean). Not clean means replacement characters remain.

    The declared label wins when it decodes; a wrong or unknown one falls back to UTF-8, then to
    whichever of the hinted charsets, GB18030 and Big5-HKSCS reads as the most plausible Chinese.
    """
    if data.isascii():
        return data.decode("ascii"), True
    declared = _codec(label)
    if declared and declared not in ("cp1252", "latin-1", "iso8859-1"):
        try:
            return data.decode(declared), True
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        pass
    chinese = _best_chinese(data, hints)
    if declared in ("cp1252", "latin-1", "iso8859-1"):
        # Old clients label GBK as ISO-8859-1: take the Chinese reading only when it is convincing.
        if chinese is not None:
            text = data.decode(chinese)
            fit, hanzi = _cjk_fit(text, chinese)
            if fit >= 0.9 and hanzi >= 2:
                return text, True
        try:
            return data.decode(declared), True
        except UnicodeDecodeError:
            return data.decode("latin-1"), True
    if chinese is not None:
        return data.decode(chinese), True
    return data.decode(declared or "gb18030", errors="replace"), False


def _unescape_8bit(value: str, hints: tuple[str, ...] = ()) -> str:
    """Header text that arrived as raw 8-bit bytes (not RFC 2047) comes back surrogate-escaped."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    raw = value.encode("utf-8", errors="surrogateescape")
    text, _ = decode_bytes(raw, None, hints)
    return text


_ENCODED_WORD_GAP = re.compile(r"(\?=)\s+(=\?)")


# A header value is decoded this far: the `email` package's RFC 2047 decoder is quadratic in
# the number of encoded-words (and in `=?` without `?=`), and no header a person wrote is longer.
MAX_DECODED_HEADER = 4096


def decode_header(value: object, hints: tuple[str, ...] = ()) -> str:
    """RFC 2047 encoded-words (split ones too) decoded with the charset aliases."""
    if value is None:
        return ""
    text = _unescape_8bit(str(value)[:MAX_DECODED_HEADER], hints)
    if not text:
        return ""
    if "\x1b$" in text or "\x1b(" in text:  # raw ISO-2022-JP, as old Japanese mailers send it
        with contextlib.suppress(UnicodeError, LookupError):
            text = text.encode("ascii").decode("iso2022_jp")
    text = _ENCODED_WORD_GAP.sub(r"\1\2", text)
    try:
        parts = email.header.decode_header(text)
    except (email.errors.HeaderParseError, ValueError, LookupError, AssertionError):
        return _one_line(text)
    out: list[str] = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
        else:
            decoded, _ = decode_bytes(chunk, charset, hints)
            out.append(decoded)
    return _one_line("".join(out))


# Content-Type and Content-Disposition are read this far: the `email` package splits their
# parameters with a copy of the rest of the value per parameter (quadratic), even inside the
# parser itself (a multipart's boundary).
MAX_PARAM_HEADER = 8192
_PARAM_HEADERS = frozenset({"content-type", "content-disposition"})
# What the `email` package's parameter code raises on crafted values: RFC 2231 sections that
# sort `None` against numbers, section numbers too long for `int`, broken quoting.
_PARAM_ERRORS = (TypeError, ValueError, IndexError, LookupError, AssertionError, RecursionError)


class _Part(Message):
    """A message part whose parameters are read safely: from a capped header value, and with
    crafted RFC 2231 parameters read as absent rather than raising from inside the parser."""

    def get(self, name: str, failobj: Any = None) -> Any:
        value = super().get(name, failobj)
        if name.lower() in _PARAM_HEADERS and isinstance(value, str):
            return value[:MAX_PARAM_HEADER]
        return value

    def get_params(
        self, failobj: Any = None, header: str = "content-type", unquote: bool = True
    ) -> Any:
        try:
            return super().get_params(failobj, header, unquote)
        except _PARAM_ERRORS:
            return failobj

    def get_param(
        self,
        param: str,
        failobj: Any = None,
        header: str = "content-type",
        unquote: bool = True,
    ) -> Any:
        try:
            return super().get_param(param, failobj, header, unquote)
        except _PARAM_ERRORS:
            return failobj


def raw_header(msg: Message, name: str) -> str | None:
    """A header's raw value (8-bit bytes surrogate-escaped), never a compat32 `Header` object."""
    lname = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == lname:
            return str(value)
    return None


_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text a database can store: no NUL or other C0 controls (PostgreSQL refuses NUL), and a
    lone surrogate becomes U+FFFD (so it is reported as undecodable, not lost)."""
    return _SURROGATE.sub("\ufffd", _UNSTORABLE.sub("", text))


def _one_line(text: str) -> str:
    return clean_text(re.sub(r"[\r\n]+\s*", " ", text)).strip()


class _HtmlText(HTMLParser):
    """Visible text of an HTML body, with block elements as line breaks."""

    BLOCKS = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._quoted = 0  # inside <blockquote>: a quoted reply, never part of the body

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip += 1
        elif tag == "blockquote":
            self._quoted += 1
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip = max(0, self._skip - 1)
        elif tag == "blockquote":
            self._quoted = max(0, self._quoted - 1)
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip and not self._quoted:
            self.parts.append(data)


# An HTML body is read this far: an item is 450 字, and the standard parser's tag pattern grows
# a little faster than its input on tens of megabytes of crafted markup.
MAX_HTML = 1024 * 1024
# What `feed` leaves unparsed (an unterminated comment, tag or declaration and everything
# after it) is dropped when longer than this: `close` would rescan it from every `<`, which is
# quadratic (CVE-2025-6069, fixed only in later Python releases), and it is no text anyway.
MAX_UNPARSED_HTML = 1024
# A character reference of more digits than this is no character (and `int()` refuses a
# number over 4,300 digits long).
_HUGE_CHARREF = re.compile(r"&#(?:[xX][0-9a-fA-F]{9,}|[0-9]{9,});?")


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    try:
        parser.feed(_HUGE_CHARREF.sub("", html[:MAX_HTML]))
        if len(parser.rawdata) > MAX_UNPARSED_HTML:
            parser.rawdata = ""
        parser.close()
    except AssertionError:  # html.parser raises this on some malformed markup
        pass
    text = "".join(parser.parts).replace("\xa0", " ")
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


HASH_CHUNK = 1024 * 1024  # a message body is hashed this many bytes at a time


def _header_end(raw: bytes) -> tuple[int, int] | None:
    """Where the header block ends and the body begins, as the line endings normalised to LF
    would have them (the first blank line): (end of the header, start of the body)."""
    found = [i for i in (raw.find(b"\n\n"), raw.find(b"\n\r\n")) if i >= 0]
    if not found:
        return None
    at = min(found)
    head_end = at - 1 if at > 0 and raw[at - 1 : at] == b"\r" else at
    return head_end, at + (2 if raw[at + 1 : at + 2] == b"\n" else 3)


def _kept_header(head: bytes) -> bytes:
    """The header block without its trace headers, LF line endings."""
    kept: list[bytes] = []
    keep = True
    for line in head.replace(b"\r\n", b"\n").split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if keep:
                kept.append(line)
            continue
        name = line.split(b":", 1)[0].strip().lower().decode("ascii", "replace")
        keep = name not in TRACE_HEADERS
        if keep:
            kept.append(line)
    return b"\n".join(kept)


def content_hash(raw: bytes) -> str:
    """SHA-256 of the message without its trace headers, line endings normalised to LF, the
    body's last line breaks left out. The body is read in chunks: a 25 MB message is hashed
    without a normalised copy of itself."""
    ends = _header_end(raw)
    if ends is None:  # no body: the whole message is its header block
        return hashlib.sha256(_kept_header(raw)).hexdigest()
    head_end, body_start = ends
    digest = hashlib.sha256(_kept_header(raw[:head_end]) + b"\n\n")
    body = memoryview(raw)[body_start:]
    carry = b""  # a CR that ended a chunk: its LF may begin the next one
    newlines = 0  # LFs seen at the end so far: hashed only when more text follows them
    for at in range(0, len(body), HASH_CHUNK):
        chunk = carry + body[at : at + HASH_CHUNK].tobytes()
        carry = b""
        if chunk.endswith(b"\r") and at + HASH_CHUNK < len(body):
            chunk, carry = chunk[:-1], b"\r"
        chunk = chunk.replace(b"\r\n", b"\n")
        text = chunk.rstrip(b"\n")
        if text:
            digest.update(b"\n" * newlines + text)
            newlines = 0
        newlines += len(chunk) - len(text)
    return digest.hexdigest()


def written_hash(
    from_address: str, subject: str, body_text: str, attachments: tuple[Attachment, ...]
) -> str:
    """SHA-256 of what a sender wrote: the same whichever way the message was delivered."""
    digest = hashlib.sha256()
    for text in (from_address, subject, body_text.strip()):
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big") + data)
    for a in attachments:
        name = (a.filename or "").encode("utf-8", "surrogatepass")
        digest.update(len(name).to_bytes(8, "big") + name + hashlib.sha256(a.data).digest())
    return digest.hexdigest()


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_filename(name: str) -> str | None:
    """An attachment name reduced to its last path component, without controls or dots at the
    ends: `../../etc/passwd.docx` → `passwd.docx`, `C:\\x\\y.docx` → `y.docx`."""
    name = clean_text(_CONTROL.sub("", name))
    name = re.split(r"[\\/]", name)[-1].strip().strip(".").strip()
    return name[:255] or None


def _filename(part: Message, hints: tuple[str, ...]) -> str | None:
    value: object = None
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        try:
            value = part.get_param(param, header=header)
        except (ValueError, IndexError, LookupError, AssertionError):
            value = None
        if value:
            break
    if not value:
        return None
    if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded text as latin-1)
        charset, _lang, text = value
        data = str(text).encode("latin-1", errors="surrogateescape")
        name, _ = decode_bytes(data, charset or None, hints)
    else:
        name = email.utils.unquote(str(value))
        name = decode_header(name, hints) if "=?" in name else _unescape_8bit(name, hints)
    return safe_filename(name)


# A base64 body of the alphabet and line breaks only, padded to whole quads: decoded straight
# from the parsed text, as the `email` package would, without its three copies of the text.
_PLAIN_BASE64 = re.compile(r"[A-Za-z0-9+/\r\n]*(?:=[\r\n]*){0,2}")


def _plain_base64(part: Message, deferred: _Deferred) -> bytes | None:
    """The decoded body of a well-formed base64 part; None for any other (the `email`
    package's own decoding then reads it, defects and all)."""
    payload = getattr(part, "_payload", None)  # the parsed text, without get_payload's copies
    if not isinstance(payload, str) or not payload.isascii():
        return None
    if str(part.get("content-transfer-encoding", "")).lower() != "base64":
        return None
    body = deferred.bodies.get(payload)
    if body is not None:  # checked as this part's text would be when it was deferred
        return binascii.a2b_base64(body)
    if not _PLAIN_BASE64.fullmatch(payload):
        return None
    if (len(payload) - payload.count("\r") - payload.count("\n")) % 4:
        return None
    return binascii.a2b_base64(payload)


def _payload_bytes(part: Message, deferred: _Deferred) -> bytes:
    plain = _plain_base64(part, deferred)
    if plain is not None:
        return plain
    payload = getattr(part, "_payload", None)
    if isinstance(payload, str) and deferred.within(payload):
        raise _DeferredMismatch  # a body deferred that is not read as plain base64 after all
    try:
        data = part.get_payload(decode=True)
    except (ValueError, AssertionError, LookupError, TypeError):
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
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else None


# Headers that say where a message was sent (the desk reads its reply key from them).
_RECIPIENT_HEADERS = frozenset({"to", "cc", "delivered-to", "x-original-to", "envelope-to"})


def _return_path(value: str | None) -> str | None:
    """The envelope sender the final delivery recorded: "" for the null sender `<>`, None when
    there is no such header. Read as it arrived: `=?…?=` that decodes to `<>` is not `<>`."""
    if value is None:
        return None
    text = str(value).strip()
    if text.startswith("<") and text.endswith(">") and text[1:-1].strip() == "":
        return ""
    _name, address = mailbox(text)
    return address.lower() or None  # unreadable: unknown, not the null sender


_MSG_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,990}>")  # printable ASCII, within a line


def _msg_ids(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(_MSG_ID.findall(value))


MAX_DEPTH = 16
MAX_PARTS = 256
# Parts whose payload is a message or header blocks: kept whole, never descended into.
_MESSAGE_LEAVES = frozenset(
    {
        "message/rfc822",
        "message/global",
        "message/delivery-status",
        "message/global-delivery-status",
        "message/disposition-notification",
        "message/feedback-report",
        "message/partial",
        "message/external-body",
        "text/rfc822-headers",
    }
)


def _leaves(part: Message, depth: int = 0) -> Iterator[Message]:
    """The leaf parts, depth-first; an attached message is one leaf, not walked into."""
    if depth > MAX_DEPTH:
        return
    if part.is_multipart() and part.get_content_type() not in _MESSAGE_LEAVES:
        payload = part.get_payload()
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, Message):
                    yield from _leaves(sub, depth + 1)
        return
    yield part


def _leaf_bytes(part: Message, deferred: _Deferred) -> bytes:
    if part.get_content_type() in _MESSAGE_LEAVES and part.is_multipart():
        payload = part.get_payload()
        try:
            data = b"".join(
                sub.as_bytes(policy=policy.compat32) for sub in payload if isinstance(sub, Message)
            )
        except (ValueError, LookupError, TypeError, UnicodeError, AttributeError, RecursionError):
            return b""  # e.g. attached messages nested hundreds deep
        if deferred.within(data):
            # Written out again, a body's line endings are the generator's: decoded again
            # with nothing deferred (a forwarded message is not parsed leaner, only right).
            raise _DeferredMismatch
        return data
    return _payload_bytes(part, deferred)


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


def _html_charset(data: bytes) -> str | None:
    m = _META_CHARSET.search(data[:4096])
    return m.group(1).decode("ascii") if m else None


def _declared_charsets(msg: Message) -> tuple[str, ...]:
    out: list[str] = []
    for part in _leaves(msg):
        try:
            charset = part.get_content_charset()
        except (ValueError, LookupError):
            charset = None
        if charset and charset not in out:
            out.append(charset)
    return tuple(out[:8])


# A header naming a mailbox longer than this names none a person could have written.
MAX_ADDRESS_HEADER = 2000
# The RFC 5322 address header class of the `email` package, made once: the registry builds a
# new class each time it is called (tens of microseconds, twice a message and more).
_ADDRESS_HEADER = HeaderRegistry()["to"]
_ANGLE_ADDR = re.compile(r"<([^<>]*)>\s*(?:\([^()]*\)\s*)*$")


# RFC 5322 §2.2.3: a header is unfolded by removing each CRLF that is followed by white space.
_FOLD = re.compile(r"\r?\n(?=[ \t])")


def _unfold(value: str) -> str:
    return _FOLD.sub("", value)


# The shapes nearly every client writes, which the two parsers below read alike (a test holds
# them to it): one plain address, or one angle address after a display name that is either
# words with no quote, comment, dot or other special (encoded-words and Chinese written raw
# among them) or one quoted string with no backslash in it (Outlook's and Foxmail's way).
# Possessive throughout (`++`, `*+`): each piece ends where the next begins, so nothing is
# ever tried again, and a header that is none of these shapes fails in one pass.
_LOCAL_PART = r"[A-Za-z0-9_+\-]++(?:\.[A-Za-z0-9_+\-]++)*+"
_DOMAIN = r"[A-Za-z0-9\-]++(?:\.[A-Za-z0-9\-]++)++"
_WORD = r"[^\x00-\x20\x7f\"(),.:;<>@\[\\\]]++"
_PLAIN_MAILBOX = re.compile(
    rf"[ \t]*+(?:(?:(?P<name>{_WORD}(?:[ \t]++{_WORD})*+)"
    rf"|\"(?P<quoted>[^\"\\\x00-\x1f\x7f]*+)\")?+"
    rf"[ \t]*+<(?P<angle>{_LOCAL_PART}@{_DOMAIN})>|(?P<bare>{_LOCAL_PART}@{_DOMAIN}))[ \t]*+"
)

_BLANKS = re.compile(r"[ \t]++")


def _addr_specs(value: str) -> list[tuple[str, str]] | None:
    """The (name, address) pairs of an address header's raw value, as two parsers read it;
    None when they disagree (the old `getaddresses` and the RFC 5322 one of the `email`
    package read a crafted header differently: then neither reading can be trusted). A
    header of one plain mailbox (`_PLAIN_MAILBOX`) is read as both would read it, without
    them: they cost a tenth of a millisecond a header, twice a message."""
    plain = _PLAIN_MAILBOX.fullmatch(value)
    if plain is None:
        return _read_twice(value)
    quoted = plain["quoted"]
    # Words are parted by spaces and tabs only: other white space (U+3000, NEL) is in a word.
    name = quoted if quoted is not None else " ".join(_BLANKS.split(plain["name"] or ""))
    return [(name, plain["angle"] or plain["bare"])]


def _read_twice(value: str) -> list[tuple[str, str]] | None:
    """`_addr_specs` by the two parsers."""
    try:
        loose = [(n, a) for n, a in email.utils.getaddresses([value]) if a]
        header = _ADDRESS_HEADER("To", value)
        strict = [x.addr_spec for x in header.addresses]  # type: ignore[attr-defined]
    except Exception:  # either parser gives up on some garbage (hundreds of nested comments
        return None  # exhaust the old one's stack): there is no reading to trust
    if [a.lower() for _, a in loose] != [a.lower() for a in strict]:
        return None
    if any(_CONTROL.search(a) for _, a in loose):
        return None  # no address holds a control character (RFC 5322 §3.4.1), nor can be stored
    return loose


def mailbox(value: str | None, hints: tuple[str, ...] = ()) -> tuple[str, str]:
    """(display name, address) of a header that names one mailbox (From, Sender).

    The address is read from the header as it arrived, before any RFC 2047 decoding: an
    encoded-word that decodes to `someone@example.org` is a display name, never an address.
    ("", "") when the header names no mailbox or more than one, or is read two ways.
    """
    if not value:
        return "", ""
    text = _unfold(_unescape_8bit(str(value), hints))
    if len(text) > MAX_ADDRESS_HEADER:
        return "", ""
    pairs = _addr_specs(text)
    if pairs is None or len(pairs) != 1:
        return "", ""
    name, address = pairs[0]
    angle = _ANGLE_ADDR.search(text)
    if angle is not None and angle.group(1).strip().lower() == address.lower():
        name = text[: angle.start()]  # decoded below with the charset aliases
    name = decode_header(name, hints).strip().strip('"').strip()
    return name, address.strip()


def addresses(values: list[str], hints: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Every address named by the raw values of address headers (To, Cc, …), parsed before
    decoding like `mailbox`; a header that two parsers read differently names none."""
    out: list[str] = []
    for value in values:
        text = _unfold(_unescape_8bit(value, hints))
        if len(text) > MAX_ADDRESS_HEADER * 10:
            continue
        out += [a.strip() for _, a in _addr_specs(text) or []]
    return tuple(out)


def _is_tnef(ctype: str, filename: str | None) -> bool:
    return ctype in ("application/ms-tnef", "application/vnd.ms-tnef") or (
        (filename or "").lower() == "winmail.dat"
    )


MAX_BOUNDARIES = 100
_BOUNDARY = re.compile(rb"boundary\s*=", re.IGNORECASE)


def identify(raw: bytes) -> tuple[str | None, str, str]:
    """(Message-ID, From address, Subject) read from the header block alone: what the intake
    log shows of a message that could not be judged. Linear in the header's size."""
    msg = email.parser.BytesHeaderParser(_class=_Part, policy=policy.compat32).parsebytes(raw)
    _name, address = mailbox(raw_header(msg, "From"))
    message_id = (_msg_ids(raw_header(msg, "Message-ID")) or (None,))[0]
    subject = decode_header((raw_header(msg, "Subject") or "")[: MAX_ADDRESS_HEADER * 5])
    return message_id, address.lower() if len(address) <= 254 else "", subject


PARSE_CHUNK = 64 * 1024  # the parser is fed this many bytes at a time
DEFER_BYTES = 1024 * 1024  # a base64 body longer than this is not parsed line by line
MAX_DEFERRED = 16  # bodies deferred in one message, at most

# A part's body that is base64 lines only, after the blank line that ends its header block;
# `take` checks that a delimiter line (or the end of the message) follows. One character
# class, not a repeated line: the regex engine keeps a backtracking entry per repetition of a
# group (22 MB for a 25 MB body), none for a run of one class. Linear: each match runs to the
# end of its run, and the next search starts after it, never inside it.
_BASE64_RUN = re.compile(rb"\n\r?\n([A-Za-z0-9+/=\r\n]+)")
_BASE64_HEADER = re.compile(rb"(?im)^content-transfer-encoding:[ \t]*base64[ \t]*\r?$")


class _DeferredMismatch(Exception):
    """A body was deferred that the parsed message does not read as plain base64: the
    message is decoded again with nothing deferred."""


class _Deferred:
    """The large base64 bodies of a message, each replaced by a token line before it is
    parsed: the stdlib parser keeps every line of a body as a string (a 25 MB attachment cost
    70 MB there), and its text is only ever decoded. `bodies` maps each token, as the parsed
    part's text, to a view of the body in the message itself, decoded from there."""

    def __init__(self) -> None:
        self.bodies: dict[str, memoryview] = {}
        self.prefix: bytes | None = None  # the tokens' start, once a body is deferred

    def take(self, raw: bytes, least: int) -> bytes:
        """`raw` with its large base64 bodies replaced by tokens (`raw` itself when none is)."""
        if len(raw) <= least:
            return raw
        prefix = _token_prefix(raw)
        if prefix is None:
            return raw
        view = memoryview(raw)
        pieces: list[bytes | memoryview] = []
        done = 0
        for found in _BASE64_RUN.finditer(raw):
            if len(self.bodies) >= MAX_DEFERRED:
                break
            start, end = found.span(1)
            if end - start <= least or not (end == len(raw) or raw.startswith(b"--", end)):
                continue
            if end == len(raw):
                text_end = end  # the message's last part, which keeps its last line's end
            elif raw[end - 1 : end] == b"\n":
                # The CRLF before a delimiter belongs to it: the part's text ends before it.
                text_end = end - (2 if raw[end - 2 : end] == b"\r\n" else 1)
            else:
                continue  # a delimiter is at a line's start
            if not self._is_plain_base64_part(raw, start, text_end):
                continue
            token = prefix + str(len(self.bodies)).encode("ascii") + b"="
            self.bodies[token.decode("ascii")] = view[start:text_end]
            self.prefix = prefix
            pieces += (view[done:start], token, view[text_end:end])
            done = end
        if not pieces:
            return raw
        pieces.append(view[done:])
        return b"".join(pieces)

    @staticmethod
    def _is_plain_base64_part(raw: bytes, start: int, text_end: int) -> bool:
        """Whether the text at `start` is the body of a part declared base64 that
        `_plain_base64` decodes itself (its own checks met here first, on the message's
        bytes, not a copy). The header block is looked for in the 64 KB before it."""
        low = max(0, start - _HEAD_WINDOW)
        head_start = max(raw.rfind(b"\n--", low, start), raw.rfind(b"\n\r\n", low, start - 1))
        if head_start < 0 and low > 0:
            return False
        if not _BASE64_HEADER.search(raw, head_start + 1, start):
            return False
        letters = text_end - start - raw.count(b"\r", start, text_end)
        letters -= raw.count(b"\n", start, text_end)
        return bool(_PLAIN_BASE64_BYTES.fullmatch(raw, start, text_end)) and letters % 4 == 0

    def within(self, data: bytes | str) -> bool:
        """Whether a token is in `data` (a part's text, an attached message written out)."""
        if self.prefix is None:
            return False
        if isinstance(data, str):
            return self.prefix.decode("ascii") in data
        return self.prefix in data


_HEAD_WINDOW = 64 * 1024  # a part's header block, at most, where a body is deferred
_PLAIN_BASE64_BYTES = re.compile(_PLAIN_BASE64.pattern.encode("ascii"))  # on the raw bytes


def _token_prefix(raw: bytes) -> bytes | None:
    """A token start found nowhere in `raw`, so no token can be taken for the sender's text
    (a few tries; None: nothing is deferred)."""
    for n in range(4):
        prefix = b"=mailroom-deferred-" + str(n).encode("ascii") + b"-"
        if prefix not in raw:
            return prefix
    return None


def _parse(raw: bytes, deferred: _Deferred | None = None, least: int = DEFER_BYTES) -> Message:
    """The standard parser, fed the message in chunks: `email.message_from_bytes` first
    decodes the whole of it to text and copies that into a `StringIO` (four bytes a
    character), over a hundred megabytes for a 25 MB message. With `deferred`, base64 bodies
    over `least` bytes are deferred first (`_Deferred`)."""
    if deferred is not None:
        raw = deferred.take(raw, least)
    feed = email.parser.BytesFeedParser(_factory=_Part, policy=policy.compat32)
    view = memoryview(raw)
    for at in range(0, len(view), PARSE_CHUNK):
        feed.feed(view[at : at + PARSE_CHUNK].tobytes())
    return feed.close()


def decode_message(raw: bytes, defer: int = DEFER_BYTES) -> DecodedMessage:
    """Decode a raw RFC 5322 message. Never raises on malformed input. A base64 body over
    `defer` bytes is decoded from `raw` itself rather than parsed (`_Deferred`): the
    same result, without the parser's copies of it."""
    try:
        return _decode(raw, defer)
    except _DeferredMismatch:
        pass  # decoded again below, once the first try (its parse, its parts) is let go
    return _decode(raw, len(raw))


def _decode(raw: bytes, defer: int) -> DecodedMessage:
    malformed: str | None = None
    deferred = _Deferred()
    try:
        # The stdlib parser holds every open boundary and tests each line against them all:
        # quadratic in the nesting, and it recurses once per level (a thousand exhaust the
        # stack). A message declaring this many boundaries is read for its headers only.
        if sum(1 for _ in _BOUNDARY.finditer(raw)) > MAX_BOUNDARIES:
            raise RecursionError("too many MIME boundaries")
        msg = _parse(raw, deferred, defer)
    except RecursionError:
        msg = email.parser.BytesHeaderParser(_class=_Part, policy=policy.compat32).parsebytes(raw)
        malformed = "nesting"
    hints = _declared_charsets(msg)
    headers = tuple((str(k), decode_header(v, hints)) for k, v in msg.raw_items())
    name, address = mailbox(raw_header(msg, "From"), hints)
    recipients = addresses(
        [str(v) for k, v in msg.raw_items() if k.lower() in _RECIPIENT_HEADERS], hints
    )

    plain: list[str] = []
    html: list[str] = []
    attachments: list[Attachment] = []
    undecodable = False
    for count, part in enumerate(_leaves(msg) if malformed is None else ()):
        if count >= MAX_PARTS:
            break
        ctype = part.get_content_type()
        disposition = (raw_header(part, "Content-Disposition") or "").split(";")[0]
        disposition = disposition.strip().lower()
        filename = _filename(part, hints)
        data = _leaf_bytes(part, deferred)
        is_text_body = ctype in ("text/plain", "text/html") and disposition != "attachment"
        if is_text_body and filename is None:
            try:
                label = part.get_content_charset()
            except (ValueError, LookupError):
                label = None
            if label is None and ctype == "text/html":
                label = _html_charset(data)
            text, clean = decode_bytes(data, label, hints)
            undecodable = undecodable or not clean
            (plain if ctype == "text/plain" else html).append(text)
            continue
        if _is_tnef(ctype, filename):  # Outlook's winmail.dat: its files, judged one by one
            try:
                unpacked = tnef_attachments(data)
            except TnefError:
                unpacked = None
            if unpacked is not None:
                attachments.extend(
                    Attachment(
                        filename=safe_filename(a.filename or "") if a.filename else None,
                        content_type="application/octet-stream",
                        data=a.data,
                        inline=False,
                    )
                    for a in unpacked
                )
                continue
            ctype = "application/ms-tnef"
        attachments.append(
            Attachment(
                filename=filename,
                content_type=ctype,
                data=data,
                inline=disposition == "inline" or (disposition == "" and filename is None),
            )
        )
    body = "\n".join(plain) if plain else "\n".join(html_to_text(h) for h in html)
    body = clean_text(body.replace("\r\n", "\n").replace("\r", "\n"))
    subject = decode_header(raw_header(msg, "Subject"), hints)
    if "\ufffd" in body or "\ufffd" in subject:
        undecodable = True

    in_reply_to = _msg_ids(raw_header(msg, "In-Reply-To"))
    try:
        content_type = msg.get_content_type()
    except (ValueError, LookupError, AttributeError):
        content_type = "text/plain"
    # An address longer than SMTP allows (RFC 5321: 254) is no address to answer.
    from_address = address.lower() if len(address) <= 254 else ""
    return DecodedMessage(
        message_id=(_msg_ids(raw_header(msg, "Message-ID")) or (None,))[0],
        return_path=_return_path(raw_header(msg, "Return-Path")),
        recipients=recipients,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=_msg_ids(raw_header(msg, "References")),
        from_address=from_address,
        from_name=name.strip(),
        subject=subject,
        date=_parse_date(raw_header(msg, "Date")),
        content_type=content_type,
        headers=headers,
        body_text=body,
        attachments=tuple(attachments),
        undecodable=undecodable,
        content_hash=content_hash(raw),
        written_hash=written_hash(from_address, subject, body, tuple(attachments)),
        malformed=malformed,
    )
