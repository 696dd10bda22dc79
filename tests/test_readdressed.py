"""Mailroom's own mail, written as bytes by the one composer (`ledger.compose`): what the
standard parser reads back is what was given, whatever the sender put in a title; and a
message written once and readdressed per recipient equals one written for that recipient."""

from __future__ import annotations

import base64
import re
import tracemalloc
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from ledger.compose import BASE64_CHUNK, Attachment, Mail, Sender, compose, readdressed
from parser.decode import decode_message

OFFICE = Sender("inf@mailroom.test", "广州市人民政府办公厅政务信息科")
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
TITLE = "关于推进“智慧城管”建设的情况报告"


def build(to: str | tuple[str, str], message_id: str, **extra: object) -> Mail:
    fields: dict[str, object] = {
        "kind": "desk",
        "sender": OFFICE,
        "to": to,
        "subject": f"【待编】GZ-2026-0001 天河区：{TITLE}" * 2,
        "text": "正文。" * 200 + "\n第二段。\n",
        "html": "<p>正文。</p>",
        "now": NOW,
        "msgid": message_id,
        "reply_to": "编辑台 <desk+abc@mailroom.test>",
        "attachments": (Attachment("GZ-2026-0001.eml", b"x" * 3000),),
    }
    fields.update(extra)
    return compose(**fields)  # type: ignore[arg-type]


def parsed(wire: bytes) -> EmailMessage:
    msg = message_from_bytes(wire, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert not msg.defects and all(not part.defects for part in msg.walk())
    return msg


def same_but_boundaries(a: bytes, b: bytes) -> bool:
    """Equal bytes once the random MIME boundaries are numbered in order of appearance."""

    def numbered(wire: bytes) -> bytes:
        seen: dict[bytes, bytes] = {}
        return re.sub(
            rb"=_mailroom_[0-9a-f]+",
            lambda m: seen.setdefault(m.group(0), b"BOUNDARY-%d" % len(seen)),
            wire,
        )

    return numbered(a) == numbered(b)


def encoded_word_lengths(head: bytes) -> list[int]:
    return [len(w) for w in re.findall(rb"=\?utf-8\?b\?[A-Za-z0-9+/=]*\?=", head)]


def test_the_standard_parser_reads_back_every_part_as_given() -> None:
    wire = build("陈静 <chenjing@gzb.gz.test>", "<desk.1@mailroom.test>").wire
    msg = parsed(wire)
    assert str(msg["Subject"]) == f"【待编】GZ-2026-0001 天河区：{TITLE}" * 2
    assert msg["From"].addresses[0].display_name == OFFICE.name
    assert msg["From"].addresses[0].addr_spec == OFFICE.address
    assert msg["To"].addresses[0].display_name == "陈静"
    assert msg["Reply-To"].addresses[0].addr_spec == "desk+abc@mailroom.test"
    assert msg["Message-ID"] == "<desk.1@mailroom.test>"
    assert msg["Date"].datetime == NOW
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().replace("\r\n", "\n") == "正文。" * 200 + "\n第二段。\n"
    assert html.get_content().strip() == "<p>正文。</p>"
    [attachment] = msg.iter_attachments()
    assert attachment.get_filename() == "GZ-2026-0001.eml"
    assert attachment.get_content() == b"x" * 3000
    # As SMTP wants it: CRLF only, header lines folded within 78, no line over 998.
    assert b"\n" not in wire.replace(b"\r\n", b"")
    head = wire.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 78
    assert encoded_word_lengths(head) and max(encoded_word_lengths(head)) <= 75  # RFC 2047
    assert max(len(line) for line in wire.split(b"\r\n")) <= 998
    # Mailroom's own parser reads it too (a copy that comes back is known by its marker).
    decoded = decode_message(wire)
    assert decoded.subject == str(msg["Subject"])


@pytest.mark.parametrize(
    "title",
    [
        "标题\r\nBcc: everyone@evil.test",  # a header injected through the title
        "ASCII title\nX-Injected: 1",
        "=?utf-8?b?5p2O?= looks encoded",
        "a" * 1200,  # one word longer than a line may be
        "plain ASCII words " * 12,
        "",
    ],
)
def test_a_title_cannot_add_a_header_or_break_a_line(title: str) -> None:
    mail = build("chenjing@gzb.gz.test", "<desk.1@mailroom.test>", subject=title)
    msg = parsed(mail.wire)
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert str(msg["Subject"]).replace(" ", "") == " ".join(title.split()).replace(" ", "")
    assert max(len(line) for line in mail.wire.split(b"\r\n")) <= 998


def test_a_long_line_of_text_goes_as_base64_and_a_chinese_file_name_as_rfc_2231() -> None:
    text = "一" * 2000  # 6,000 bytes on one line: past SMTP's 998
    mail = build(
        ("李明", "liming@th.gz.test"),
        "<desk.1@mailroom.test>",
        text=text,
        attachments=(Attachment("2026年第四季度政务信息通报.xlsx", b"PK\x03\x04"),),
    )
    msg = parsed(mail.wire)
    body = msg.get_body(("plain",))
    assert body is not None and body["Content-Transfer-Encoding"] == "base64"
    assert body.get_content() == text
    [attachment] = msg.iter_attachments()
    assert attachment.get_filename() == "2026年第四季度政务信息通报.xlsx"
    assert max(len(line) for line in mail.wire.split(b"\r\n")) <= 998


@pytest.mark.parametrize(
    "to",
    [
        "lihong@gzb.gz.test",
        "陈静 <chenjing@gzb.gz.test>",
        ("O'Brien, Pat", "pat@gzb.gz.test"),
        ("一位名字很长很长很长很长很长很长很长很长的编辑", "a.very.long.address@gzb.gz.test"),
    ],
)
def test_readdressed_equals_a_message_built_for_the_recipient(to: str | tuple[str, str]) -> None:
    first = build("chenjing@gzb.gz.test", "<desk.1@mailroom.test>").wire
    copy = readdressed(first, to=to, msgid="<desk.2@mailroom.test>")
    direct = build(to, "<desk.2@mailroom.test>").wire
    assert same_but_boundaries(copy, direct)
    (address,) = parsed(copy)["To"].addresses
    if isinstance(to, tuple):
        name, spec = to
    else:
        name, _, spec = to.rpartition(" <")
        name, spec = (name, spec.rstrip(">")) if name else ("", to)
    assert address.addr_spec == spec
    # (the standard parser may put a space where a long name was folded between encoded words)
    assert address.display_name.replace(" ", "") == name.replace(" ", "")
    assert parsed(copy)["Message-ID"] == "<desk.2@mailroom.test>"


def test_readdressed_refuses_a_message_without_the_headers() -> None:
    with pytest.raises(ValueError, match="message-id"):
        readdressed(b"To: a@b.test\r\n\r\nbody", to="c@d.test", msgid="<x@y.test>")


def test_what_a_sender_controls_stays_within_the_limits_and_reads_back() -> None:
    """A sender's address may be non-ASCII (the parser takes it), its Message-ID as long
    as a line (989 characters: the parser keeps it, but with "In-Reply-To: " it would pass
    998), a display name may look like an encoded word: none stops the reply."""
    from parser.types import DecodedMessage

    answered = decode_message(
        b"From: x@y.test\r\nMessage-ID: <" + b"a" * 980 + b"@y.test>\r\n"
        b"References: <root@y.test> "
        + b" ".join(b"<r%d@y.test>" % i for i in range(30))
        + b"\r\nSubject: s\r\n\r\nbody\r\n"
    )
    assert isinstance(answered, DecodedMessage)
    mail = compose(
        kind="refusal",
        sender=OFFICE,
        to=("=?utf-8?b?5Lit?=", "用户@例子.中国"),
        subject="中" * 60,
        text="第一行。\n",
        html="<p>x</p>\n",
        now=NOW,
        answering=answered,
        attachments=(Attachment("很长的文件名" * 40 + ".eml", b"x"),),
    )
    msg = parsed(mail.wire)
    assert max(len(line) for line in mail.wire.split(b"\r\n")) <= 998
    head = mail.wire.split(b"\r\n\r\n", 1)[0]
    assert max(encoded_word_lengths(head)) <= 75
    assert str(msg["Subject"]) == "中" * 60
    (to,) = msg["To"].addresses
    assert to.display_name == "=?utf-8?b?5Lit?="  # as written, not decoded to 中
    assert b"To: =?utf-8?b?" in head and "<用户@例子.中国>".encode() in head  # RFC 6532
    # An id longer than a line is left out; the thread keeps its first and its last.
    assert msg["In-Reply-To"] is None
    assert str(msg["References"]).split() == [
        "<root@y.test>",
        *(f"<r{i}@y.test>" for i in range(11, 30)),
    ]
    [attachment] = msg.iter_attachments()
    assert attachment.get_filename() == "很长的文件名" * 40 + ".eml"
    body = msg.get_body(("plain",))
    assert body is not None and body.get_content().replace("\r\n", "\n") == "第一行。\n"


def test_a_long_thread_keeps_its_first_message_and_its_last() -> None:
    ids = [f"<m{i}@y.test>" for i in range(30)]
    answered = decode_message(
        f"From: x@y.test\r\nMessage-ID: <last@y.test>\r\nReferences: {' '.join(ids)}\r\n"
        "Subject: s\r\n\r\nbody\r\n".encode()
    )
    mail = build("chenjing@gzb.gz.test", "<desk.1@mailroom.test>", answering=answered)
    msg = parsed(mail.wire)
    assert msg["In-Reply-To"] == "<last@y.test>"
    kept = str(msg["References"]).split()
    assert kept == [ids[0], *ids[-18:], "<last@y.test>"]
    assert max(len(line) for line in mail.wire.split(b"\r\n")) <= 78


@pytest.mark.parametrize("size", [0, 1, BASE64_CHUNK - 1, BASE64_CHUNK, 3 * BASE64_CHUNK + 5])
def test_an_attachment_is_written_as_whole_base64_lines_whatever_its_size(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    wire = build("lihong@gzb.gz.test", "<d@m.test>", attachments=(Attachment("a.eml", data),)).wire
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    assert b'filename="a.eml"\r\n\r\n' + encoded + b"\r\n--" in wire
    (attached,) = parsed(wire).iter_attachments()
    assert attached.get_content() == data


def test_a_large_original_is_held_once_in_base64_while_composed_and_readdressed() -> None:
    original = bytes(range(256)) * 24_000  # 6 MB: 8 MB in base64
    tracemalloc.start()
    try:
        wire = build("a@b.test", "<d.1@m.test>", attachments=(Attachment("o.eml", original),)).wire
        _size, composing = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        held, _peak = tracemalloc.get_traced_memory()
        copy = readdressed(wire, to="c@d.test", msgid="<d.2@m.test>")
        _size, peak = tracemalloc.get_traced_memory()
        readdressing = peak - held
    finally:
        tracemalloc.stop()
    # Once written, it was joined from its parts and then again with its header block (three
    # times the base64); and a copy cut the body out before joining it with the new header.
    assert composing < 1.3 * len(wire)
    assert readdressing < 1.3 * len(wire)
    assert copy.count(b"To: c@d.test\r\n") == 1 and copy.endswith(wire[-4000:])
