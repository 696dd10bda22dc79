"""A large message is parsed without holding whole extra copies of itself: the standard
parser fed in chunks, a well-formed base64 part decoded straight from the parsed text. The
result is the one the standard functions give on the whole message."""

from __future__ import annotations

import base64
import email
from email import policy
from email.message import Message

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parser import decode as decode_module
from parser import decode_message
from parser.decode import DEFER_BYTES, MAX_DEFERRED, _Deferred, _parse, _Part, _payload_bytes
from parser.types import DecodedMessage
from tests.conftest import CORPUS, DATA
from tests.measure import peak_of

MESSAGES = sorted((DATA / "mail").glob("*.eml")) + sorted(CORPUS.rglob("*.eml"))


def shape(msg: Message) -> object:
    """What a parsed message is made of: headers, defects and payloads, part by part."""
    payload = msg.get_payload()
    body = [shape(p) for p in payload] if isinstance(payload, list) else payload
    return (list(msg.raw_items()), [type(d) for d in msg.defects], msg.preamble, msg.epilogue, body)


def test_every_fixture_and_corpus_message_parses_as_the_whole_message_parses() -> None:
    assert len(MESSAGES) > 50
    for path in MESSAGES:
        raw = path.read_bytes()
        whole = email.message_from_bytes(raw, _class=_Part, policy=policy.compat32)
        assert shape(_parse(raw)) == shape(whole), path.name


BASE64ISH = st.lists(
    st.sampled_from(["QUJD", "QQ==", "QUI=", "=", "A", "+/9z", "\r\n", "\n", "\r", " ", "*"]),
    max_size=30,
).map("".join)


@settings(max_examples=500, deadline=None)
@given(BASE64ISH)
def test_a_base64_part_decodes_to_what_the_email_package_decodes(body: str) -> None:
    raw = b"Content-Transfer-Encoding: base64\r\n\r\n" + body.encode()
    part = email.message_from_bytes(raw, _class=_Part, policy=policy.compat32)
    assert _payload_bytes(part, _Deferred()) == part.get_payload(decode=True)


def test_a_large_message_is_decoded_within_its_size_and_a_half() -> None:
    picture = bytes(range(256)) * 24_000  # 6 MB, base64 at 76 columns: 8 MB on the wire
    encoded = base64.encodebytes(picture).replace(b"\n", b"\r\n")
    raw = (
        b"From: a@b.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n--b\r\n"
        b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="a.png"\r\n\r\n' + encoded + b"--b--\r\n"
    )
    msg, peak = peak_of(lambda: decode_message(raw))
    assert len(encoded) > DEFER_BYTES
    assert [a.data for a in msg.attachments] == [picture]
    # Whole-message parsing held eight times the message (its text, a four-byte-a-character
    # copy of that, the payload's lines); then under three (its lines, the payload joined
    # from them); with the body deferred, the picture decoded and little else.
    assert peak < len(picture) + len(raw) / 2


def decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The `defer` of every decoding try from now on: a second try, with nothing deferred,
    shows that the first found a deferred body it could not read after all."""
    tries: list[int] = []
    first = decode_module._decode

    def noted(raw: bytes, defer: int) -> DecodedMessage:
        tries.append(defer)
        return first(raw, defer)

    monkeypatch.setattr(decode_module, "_decode", noted)
    return tries


def test_every_message_decodes_the_same_with_its_base64_bodies_deferred(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deferred from the smallest up (`defer=0`), every fixture and corpus message
    decodes to what it does when each of its bodies is parsed."""
    tries = decodes(monkeypatch)
    taken = 0
    for path in MESSAGES:
        raw = path.read_bytes()
        expected = decode_message(raw, defer=len(raw))
        tries.clear()
        got = decode_message(raw, defer=0)
        assert got == expected, path
        # Read from its deferred bodies, not decoded again with none deferred.
        taken += _Deferred().take(raw, 0) != raw and tries == [0]
    assert taken > 40  # the comparison is not vacuous: many decode from deferred bodies


def _with_parts(*parts: bytes, boundary: bytes = b"b") -> bytes:
    head = b"From: a@b.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
    head += b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n'
    parts_ = b"".join(b"--" + boundary + b"\r\n" + p for p in parts)
    return head + parts_ + b"--" + boundary + b"--\r\n"


BODY = base64.encodebytes(bytes(range(256)) * 40).replace(b"\n", b"\r\n")
ATTACHED = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"


def test_crafted_messages_decode_the_same_whatever_is_deferred(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cases = {
        # Two encodings declared: the parser reads the first, so the body is not plain base64.
        "two encodings": _with_parts(
            b"Content-Transfer-Encoding: quoted-printable\r\n" + ATTACHED + BODY
        ),
        # The sender wrote the token itself: nothing is mistaken for a body deferred.
        "the token in the text": _with_parts(
            b"Content-Type: text/plain\r\n\r\n=mailroom-deferred-0-0=\r\n", ATTACHED + BODY
        ),
        "every token start in the text": _with_parts(
            b"Content-Type: text/plain\r\n\r\n"
            + b"".join(b"=mailroom-deferred-%d-\r\n" % n for n in range(4)),
            ATTACHED + BODY,
        ),
        # A forwarded message: its own attachment deferred, and written out whole again.
        "an attached message": _with_parts(
            b"Content-Type: message/rfc822\r\n\r\n"
            + _with_parts(ATTACHED + BODY, boundary=b"inner")
        ),
        "padding inside": _with_parts(ATTACHED + b"QQ==\r\nQUJD\r\n"),
        "no delimiter after it": _with_parts(ATTACHED + BODY + b"trailing text\r\n"),
        "more bodies than are deferred": _with_parts(*[ATTACHED + BODY] * (MAX_DEFERRED + 3)),
        "a single part": b"Subject: x\r\nContent-Transfer-Encoding: base64\r\n\r\n" + BODY,
        "LF line endings": _with_parts(ATTACHED + BODY).replace(b"\r\n", b"\n"),
    }
    # Decoded again with nothing deferred: a body the parsed message does not read as plain
    # base64, or a token written out in an attached message.
    again = {"two encodings", "an attached message"}
    tries = decodes(monkeypatch)
    for name, raw in cases.items():
        whole = decode_message(raw, defer=len(raw))
        tries.clear()
        assert decode_message(raw, defer=0) == whole, name
        assert tries == ([0, len(raw)] if name in again else [0]), name
        assert whole.attachments or name == "a single part", name
    assert _Deferred().take(cases["an attached message"], 0) != cases["an attached message"]
    assert (
        _Deferred().take(cases["every token start in the text"], 0)
        == cases["every token start in the text"]
    )
