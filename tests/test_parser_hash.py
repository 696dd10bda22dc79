"""The content hash: the same message whatever its line endings and trace headers, read in
chunks (a 25 MB message is hashed without a normalised copy of itself)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parser import decode
from parser.decode import TRACE_HEADERS, content_hash
from tests.measure import peak_of


def whole_message_hash(raw: bytes) -> str:
    """The definition, on the whole message at once: what the chunked hash must equal."""
    head, sep, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    kept: list[bytes] = []
    keep = True
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if keep:
                kept.append(line)
            continue
        keep = line.split(b":", 1)[0].strip().lower().decode("ascii", "replace") not in (
            TRACE_HEADERS
        )
        if keep:
            kept.append(line)
    return hashlib.sha256(b"\n".join(kept) + sep + body.rstrip(b"\n")).hexdigest()


PIECES = st.sampled_from(
    [b"\r", b"\n", b"\r\n", b" ", b"\t", b"a", b":", b"Received: x", b"Subject: y", b"\n\n"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, max_size=40).map(b"".join), st.sampled_from([1, 2, 3, 7, 1 << 20]))
def test_the_chunked_hash_is_the_hash_of_the_whole_message(raw: bytes, chunk: int) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(decode, "HASH_CHUNK", chunk)  # CRs and LFs across every chunk edge
        assert content_hash(raw) == whole_message_hash(raw)


def test_line_endings_trace_headers_and_last_line_breaks_do_not_change_it() -> None:
    lf = b"From: a@b.test\nSubject: x\n\nbody\nmore\n"
    crlf = b"Received: from relay\r\n\tby mx\r\n" + lf.replace(b"\n", b"\r\n") + b"\r\n\r\n"
    assert content_hash(lf) == content_hash(crlf) == whole_message_hash(lf)
    assert content_hash(lf) != content_hash(lf.replace(b"more", b"less"))


def test_a_large_message_is_hashed_without_a_copy_of_itself() -> None:
    raw = b"From: a@b.test\r\nSubject: x\r\n\r\n" + (b"A" * 76 + b"\r\n") * 130_000  # 10 MB
    digest, peak = peak_of(lambda: content_hash(raw))
    assert digest == whole_message_hash(raw)
    assert peak < 4 * decode.HASH_CHUNK < len(raw) / 2  # a few chunks, whatever its size
