"""Attachments out of a TNEF `winmail.dat` (Outlook's "Rich Text" mail), per [MS-OXTNEF].

Only what Mailroom needs: each attachment's name and bytes. Reading is bounded by the size of
the input (every length is checked against what is left), so a hostile file cannot make it
loop or allocate more than it holds.
"""

from __future__ import annotations

import contextlib
import struct
from dataclasses import dataclass

TNEF_SIGNATURE = 0x223E9F78
LVL_ATTACHMENT = 0x02
ATT_ATTACH_REND_DATA = 0x00069002  # starts a new attachment
ATT_ATTACH_TITLE = 0x00018010  # short file name, in the OEM code page
ATT_ATTACH_DATA = 0x0006800F  # the file itself
ATT_ATTACHMENT = 0x00069005  # MAPI properties of the attachment (the long file name)
ATT_OEM_CODEPAGE = 0x00069007
PR_ATTACH_LONG_FILENAME = 0x3707
MAX_ATTACHMENTS = 64

_FIXED_SIZES = {
    0x0002: 4,  # PT_SHORT, padded
    0x0003: 4,  # PT_LONG
    0x0004: 4,  # PT_FLOAT
    0x0005: 8,  # PT_DOUBLE
    0x0006: 8,  # PT_CURRENCY
    0x0007: 8,  # PT_APPTIME
    0x000A: 4,  # PT_ERROR
    0x000B: 4,  # PT_BOOLEAN, padded
    0x0014: 8,  # PT_I8
    0x0040: 8,  # PT_SYSTIME
    0x0048: 16,  # PT_CLSID
}
_VARIABLE = (0x001E, 0x001F, 0x0102, 0x000D)


class TnefError(Exception):
    """The winmail.dat is not TNEF or is cut short."""


@dataclass(frozen=True)
class TnefAttachment:
    filename: str | None
    data: bytes


@dataclass
class _Building:
    title: str | None = None
    long_name: str | None = None
    data: bytes = b""


def _long_filename(props: bytes, codepage: str) -> str | None:
    """PR_ATTACH_LONG_FILENAME out of an attAttachment MAPI property block, if present."""
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if n < 0 or pos + n > len(props):
            raise TnefError("MAPI properties cut short")
        chunk = props[pos : pos + n]
        pos += n
        return chunk

    (count,) = struct.unpack("<I", take(4))
    for _ in range(min(count, 4096)):
        ptype, pid = struct.unpack("<HH", take(4))
        if pid >= 0x8000:  # a named property: GUID, kind, then an id or a name
            take(16)
            (kind,) = struct.unpack("<I", take(4))
            if kind == 0:
                take(4)
            else:
                (length,) = struct.unpack("<I", take(4))
                take(length + (-length % 4))
        multi = bool(ptype & 0x1000)
        base = ptype & 0x0FFF
        values = struct.unpack("<I", take(4))[0] if multi or base in _VARIABLE else 1
        for _ in range(min(values, 4096)):
            if base in _VARIABLE:
                (length,) = struct.unpack("<I", take(4))
                raw = take(length)
                take(-length % 4)
                if pid == PR_ATTACH_LONG_FILENAME and base in (0x001E, 0x001F):
                    encoding = "utf-16-le" if base == 0x001F else codepage
                    return raw.decode(encoding, errors="replace").rstrip("\x00") or None
            elif base in _FIXED_SIZES:
                take(_FIXED_SIZES[base])
            else:
                raise TnefError(f"unknown MAPI property type {ptype:#06x}")
    return None


def tnef_attachments(data: bytes) -> list[TnefAttachment]:
    """The attachments held in a winmail.dat; raises `TnefError` when it is not readable."""
    if len(data) < 6 or struct.unpack("<I", data[:4])[0] != TNEF_SIGNATURE:
        raise TnefError("not a TNEF stream")
    pos = 6
    codepage = "cp936"
    found: list[_Building] = []
    while pos < len(data):
        if pos + 9 > len(data):
            raise TnefError("TNEF attribute header cut short")
        level = data[pos]
        attr_id, length = struct.unpack("<II", data[pos + 1 : pos + 9])
        start = pos + 9
        end = start + length
        if end + 2 > len(data):
            raise TnefError("TNEF attribute cut short")
        value = data[start:end]
        pos = end + 2  # the 16-bit checksum is not verified: Outlook's own reader ignores it
        if attr_id == ATT_OEM_CODEPAGE and len(value) >= 4:
            number = struct.unpack("<I", value[:4])[0]
            codepage = "cp936" if number in (936, 20936) else f"cp{number}"
            try:
                "".encode(codepage)
            except LookupError:
                codepage = "cp936"
        if level != LVL_ATTACHMENT:
            continue
        if attr_id == ATT_ATTACH_REND_DATA:
            if len(found) >= MAX_ATTACHMENTS:
                raise TnefError("too many attachments in the TNEF stream")
            found.append(_Building())
        elif not found:
            continue
        elif attr_id == ATT_ATTACH_TITLE:
            found[-1].title = value.split(b"\x00", 1)[0].decode(codepage, errors="replace")
        elif attr_id == ATT_ATTACH_DATA:
            found[-1].data = value
        elif attr_id == ATT_ATTACHMENT:
            # When the properties are broken the short title still names the file.
            with contextlib.suppress(TnefError, struct.error):
                found[-1].long_name = _long_filename(value, codepage)
    return [TnefAttachment(b.long_name or b.title or None, b.data) for b in found if b.data]
