"""A large message is parsed without holding whole extra copies of itself: the standard
parser fed in chunks, a well-formed base64 part decoded straight from the parsed text. The
result is the one the standard functions give on the whole message."""

from __future__ import annotations

import base64
import email
from email import policy
from email.message import Message

from hypothesis import given, settings
from hypothesis import strategies as st

from parser import decode_message
from parser.decode import _parse, _Part, _payload_bytes
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
    assert _payload_bytes(part) == part.get_payload(decode=True)


def test_a_large_message_is_decoded_within_three_times_its_size() -> None:
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
    assert [a.data for a in msg.attachments] == [picture]
    # Whole-message parsing held eight times the message (its text, a four-byte-a-character
    # copy of that, the payload's lines); now its lines and the payload joined from them.
    assert peak < 3 * len(raw)
