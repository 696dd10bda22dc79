"""Decoding details that the fixtures do not show one by one."""

from __future__ import annotations

from parser import decode_message
from parser.decode import decode_bytes, decode_header, html_to_text, safe_filename


def test_html_body_loses_quoted_replies_scripts_and_styles() -> None:
    html = (
        "<html><head><style>p{}</style><title>t</title></head><body><p>正文第一段</p>"
        "<div>第二段<br>第三行</div><script>x()</script>"
        "<blockquote><div>被引用的原邮件</div></blockquote></body></html>"
    )
    assert html_to_text(html) == "正文第一段\n\n第二段\n第三行"


def test_labels_are_widened_and_wrong_labels_fall_back() -> None:
    gbk_only = "朱镕基".encode("gbk")
    assert decode_bytes(gbk_only, "gb2312") == ("朱镕基", True)
    assert decode_bytes("養樂多".encode("big5hkscs"), "big5") == ("養樂多", True)
    assert decode_bytes("天河区".encode("gbk"), "utf-8") == ("天河区", True)
    assert decode_bytes("天河区".encode("gbk"), "x-unknown-charset") == ("天河区", True)
    assert decode_bytes("天河区政府".encode("gbk"), "iso-8859-1") == ("天河区政府", True)
    assert decode_bytes("café crème".encode("latin-1"), "iso-8859-1") == ("café crème", True)
    text, clean = decode_bytes(b"\xff\xfe\x80\xff", "utf-8")
    assert not clean and "\ufffd" in text


def test_unlabelled_big5_is_told_from_gbk_by_what_reads_as_chinese() -> None:
    assert decode_bytes("養樂多線上訂購".encode("big5"), None) == ("養樂多線上訂購", True)
    assert decode_bytes("天河区政府办公室".encode("gbk"), None) == ("天河区政府办公室", True)


def test_split_and_unknown_encoded_words() -> None:
    assert decode_header("=?GB2312?B?zOw=?= =?GB2312?B?utPH+A==?=") == "天河区"
    assert decode_header("=?x-gbk?B?zOy608f4?=") == "天河区"
    assert decode_header("=?utf-8?Q?=E5=A4=A9=E6=B2=B3?=\r\n =?utf-8?Q?=E5=8C=BA?=") == "天河区"


def test_attachment_names_keep_only_their_last_component() -> None:
    assert safe_filename("../../etc/passwd.docx") == "passwd.docx"
    assert safe_filename("C:\\x\\y.docx") == "y.docx"
    assert safe_filename("..") is None
    assert safe_filename("a\x00b\r\n.doc") == "ab.doc"


def test_a_from_header_folded_after_its_name_is_read_unfolded() -> None:
    """Python's own `email` package (and clients built on it) fold a long From right after
    `From:`; RFC 5322 §2.2.3 unfolds it, and the officer's address is read (a unit whose name
    is long was refused unknown_sender before)."""
    raw = (
        b"From:\r\n =?utf-8?b?5Zu9572R6ZmH5Y2X5L6b55S15YWs5Y+4?= <shihaitao@gwlngdgs.ln.test>\r\n"
        b"To:\r\n =?utf-8?b?5pS/5Yqh5L+h5oGv?= <inf@mailroom.test>,\r\n <sfxx@mailroom.test>\r\n"
        b"Subject: a\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n"
    )
    msg = decode_message(raw)
    assert (msg.from_address, msg.from_name) == ("shihaitao@gwlngdgs.ln.test", "国网陇南供电公司")
    assert msg.recipients == ("inf@mailroom.test", "sfxx@mailroom.test")
    # A line break not followed by white space ends the header: the From names no one.
    assert decode_message(raw.replace(b"From:\r\n ", b"From:\r\n")).from_address == ""


def test_an_address_with_a_control_character_is_no_address() -> None:
    """`<\\x00liming@…>` (found by the mutation property test): not the officer's address,
    and nothing the database could store."""
    for control in ("\x00", "\x01", "\x7f"):
        raw = (
            f'From: "李明" <{control}liming@th.gz.test>\r\nTo: inf@mailroom.test, '
            f"<x{control}@mailroom.test>\r\nSubject: a\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n"
        ).encode()
        msg = decode_message(raw)
        assert msg.from_address == "", repr(control)
        assert msg.recipients == (), repr(control)  # a header with such an address names none
