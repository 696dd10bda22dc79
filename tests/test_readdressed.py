"""A message serialised once and readdressed per recipient equals one built for that recipient."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from ledger.compose import readdressed, wire_bytes


def build(to: str, message_id: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "政务信息科 <inf@mailroom.test>"
    msg["To"] = to
    msg["Subject"] = "【待编】GZ-2026-0001 天河区：关于推进“智慧城管”建设的情况报告" * 2
    msg["Message-ID"] = message_id
    msg["Reply-To"] = "编辑台 <desk+abc@mailroom.test>"
    msg.set_content("正文。" * 200, charset="utf-8")
    msg.add_alternative("<p>正文。</p>", subtype="html", charset="utf-8")
    msg.add_attachment(
        b"x" * 3000, maintype="application", subtype="octet-stream", filename="a.eml"
    )
    return msg


def same_but_boundaries(a: bytes, b: bytes) -> bool:
    """Equal bytes once the random MIME boundaries are numbered in order of appearance."""

    def numbered(wire: bytes) -> bytes:
        seen: dict[bytes, bytes] = {}
        return re.sub(
            rb"=+\d+==",
            lambda m: seen.setdefault(m.group(0), b"BOUNDARY-%d" % len(seen)),
            wire,
        )

    return numbered(a) == numbered(b)


@pytest.mark.parametrize(
    "to",
    [
        "lihong@gzb.gz.test",
        "陈静 <chenjing@gzb.gz.test>",
        "一位名字很长很长很长很长很长很长很长很长很长很长的编辑 <a.very.long.address@gzb.gz.test>",
    ],
)
def test_readdressed_equals_a_message_built_for_the_recipient(to: str) -> None:
    first = wire_bytes(build("chenjing@gzb.gz.test", "<desk.1@mailroom.test>"))
    copy = readdressed(first, {"To": to, "Message-ID": "<desk.2@mailroom.test>"})
    direct = wire_bytes(build(to, "<desk.2@mailroom.test>"))
    assert same_but_boundaries(copy, direct)
    parsed = message_from_bytes(copy, policy=policy.default)
    (address,) = parsed["To"].addresses
    name, _, spec = to.rpartition(" <")
    assert address.addr_spec == (spec.rstrip(">") or name)
    # (the standard parser may put a space where a long name was folded between encoded words)
    assert address.display_name.replace(" ", "") == (name if spec else "")
    assert all(len(line) <= 998 for line in copy.split(b"\r\n"))


def test_readdressed_refuses_a_header_that_is_not_there_once() -> None:
    wire = wire_bytes(build("chenjing@gzb.gz.test", "<desk.1@mailroom.test>"))
    with pytest.raises(ValueError, match="cc"):
        readdressed(wire, {"Cc": "someone@gzb.gz.test"})
