"""Property tests: the parser never raises on arbitrary or mutated messages (SPEC §10)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parser import Limits, SenderContext, classify, decode_message, validate
from parser.decode import clean_text
from parser.tnef import TnefError, tnef_attachments
from parser.word import WordError, word_text
from tests.conftest import DATA

MAIL = DATA / "mail"
SEEDS = [path.read_bytes() for path in sorted(MAIL.glob("*.eml"))]
WORD_SEEDS = [
    path.read_bytes() for path in sorted((DATA / "word").glob("*.do*")) if "bomb" not in path.name
]
SENDER = SenderContext(
    unit_code="TH", unit_name="天河区", unit_mark="【天河区】", person_name="李明"
)
LIMITS = Limits(450, 4000, timedelta(minutes=15), 3)
RECEIVED = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Shanghai")
PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def judge(raw: bytes) -> None:
    """What the pipeline asks of the parser, in its order; must return, whatever the bytes."""
    msg = decode_message(raw)
    classify(msg, None, ("inf@mailroom.test",))
    classify(msg, "", ())
    for sender in (SENDER, None):
        verdict = validate(msg, sender, LIMITS, RECEIVED, ZONE)
        assert verdict.submission is not None or verdict.problems
    # Everything the ledger stores is storable in PostgreSQL: no NUL, no lone surrogate.
    texts = [msg.body_text, msg.subject, msg.from_name, msg.from_address, msg.message_id or ""]
    texts += [value for _name, value in msg.headers]
    texts += [a.filename or "" for a in msg.attachments]
    assert all(clean_text(text) == text for text in texts)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with a few byte-level edits: flips, cuts, inserted junk, duplicated slices."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert", "duplicate", "truncate"]))
        if action == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "cut":
            del data[at : at + draw(st.integers(1, 200))]
        elif action == "insert":
            data[at:at] = draw(
                st.one_of(
                    st.binary(max_size=40),
                    st.sampled_from(
                        [
                            b"\r\n\r\n",
                            b"--",
                            b"=?gb2312?B?",
                            b"?=",
                            b"\xff\xfe",
                            b"boundary=",
                            b"Content-Type: multipart/mixed; boundary=x\r\n",
                            b"\x00" * 8,
                        ]
                    ),
                )
            )
        elif action == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 500))]
        else:
            del data[at:]
    return bytes(data)


@PROPERTY
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    judge(raw)


@PROPERTY
@given(mutated(SEEDS))
def test_mutated_real_messages_never_raise(raw: bytes) -> None:
    judge(raw)


@PROPERTY
@given(st.text(max_size=2000))
def test_arbitrary_text_as_a_message_never_raises(text: str) -> None:
    judge(text.encode("utf-8", errors="surrogatepass"))


@PROPERTY
@given(st.one_of(mutated(WORD_SEEDS), st.binary(max_size=3000)))
def test_word_reader_fails_only_with_its_own_error(data: bytes) -> None:
    for name in ("x.docx", "x.doc", None):
        with contextlib.suppress(WordError):
            assert isinstance(word_text(data, name), str)


@PROPERTY
@given(st.binary(max_size=2000))
def test_tnef_reader_fails_only_with_its_own_error(data: bytes) -> None:
    for raw in (data, b"\x78\x9f\x3e\x22\x01\x00" + data):
        with contextlib.suppress(TnefError):
            assert all(isinstance(a.data, bytes) for a in tnef_attachments(raw))


def test_pathological_lines_and_subjects_are_judged_quickly() -> None:
    """Long lines never reach the backtracking patterns; bracket groups are bounded."""
    subject = "【天河区】" * 5000 + "标题"
    body = "\n".join(
        [
            "1" * 200_000,
            "a" * 200_000 + "@",
            "1 " * 100_000,
            "【天河区】" * 20_000,
            "作者单位：" * 20_000,
        ]
    )
    raw = (
        f"From: a@th.gz.test\nSubject: {subject}\nContent-Type: text/plain; charset=utf-8\n\n{body}"
    ).encode()
    started = datetime.now(UTC)
    judge(raw)
    assert datetime.now(UTC) - started < timedelta(seconds=20)


# --- the plain mailbox, read without the two parsers --------------------------------------

# Atom characters, and white space and format characters other than space and tab (which
# part no words): the ideographic space, NEL, NBSP, zero-width space, BOM, a C1 control.
_ATOM = st.text(
    alphabet=st.sampled_from(
        "abcXYZ019!#$%&'*+-/=?^_`{|}~张三李明天河区\u3000\x85\xa0\u200b\ufeff\x9f"
    ),
    min_size=1,
    max_size=8,
)
_LOCAL = st.lists(st.text("abz09_+-", min_size=1, max_size=6), min_size=1, max_size=3)
_DOMAIN = st.lists(st.text("abz09-", min_size=1, max_size=6), min_size=2, max_size=3)
_SPACE = st.sampled_from(["", " ", "  ", "\t"])


@st.composite
def _address_headers(draw: st.DrawFn) -> str:
    """Header values near the plain shapes: names of atoms and encoded-words, angle and bare
    addresses, and now and then one special character that takes a value off them."""
    address = ".".join(draw(_LOCAL)) + "@" + ".".join(draw(_DOMAIN))
    words = draw(st.lists(_ATOM | st.just("=?GBK?B?1cXI/Q==?="), max_size=3))
    name = " ".join(words)
    if words and draw(st.booleans()):
        name = f'"{draw(_SPACE)}{name}{draw(_SPACE)}"'  # a quoted display name
    value = draw(_SPACE) + name + draw(_SPACE)
    value += f"<{address}>" if words or draw(st.booleans()) else address
    value += draw(_SPACE)
    if draw(st.booleans()):
        at = draw(st.integers(0, len(value)))
        value = value[:at] + draw(st.sampled_from('"(),.:;<>@[\\]\x01')) + value[at:]
    return value


@PROPERTY
@given(_address_headers())
def test_a_plain_mailbox_is_read_as_the_two_parsers_read_it(value: str) -> None:
    from parser.decode import _PLAIN_MAILBOX, _addr_specs, _read_twice

    assert _addr_specs(value) == _read_twice(value)
    if _PLAIN_MAILBOX.fullmatch(value) is not None:
        assert _addr_specs(value) is not None


def test_the_plain_shapes_are_what_real_clients_write() -> None:
    # Not vacuous: the From of the real messages of the test set take the quick way.
    from email.parser import BytesHeaderParser

    from parser.decode import _PLAIN_MAILBOX, _addr_specs, _read_twice

    froms = [str(BytesHeaderParser().parsebytes(raw).get("From", "")) for raw in SEEDS]
    plain = [f for f in froms if _PLAIN_MAILBOX.fullmatch(f)]
    assert len(plain) >= len(froms) * 3 // 4, [f for f in froms if f not in plain]
    assert [_addr_specs(f) for f in froms] == [_read_twice(f) for f in froms]
