"""Word 97 `.doc` files of any text, for the tests: a compound file (OLE2, [MS-CFB]) holding a
`WordDocument` stream (a file information block and the text) and a `1Table` stream (the piece
table), laid out as [MS-DOC] §2.4.1 says Word finds its text. The fixtures LibreOffice saved
are small; a hostile `.doc` (hundreds of KB of nested field codes) is made here instead.
"""

from __future__ import annotations

import struct

SECTOR = 512
FREE, END_OF_CHAIN, FAT_SECTOR, NO_STREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
MINI_CUTOFF = 4096  # smaller streams would live in the mini stream: these are padded past it


def _fib(ccp_text: int, text_offset: int, lcb_clx: int) -> bytes:
    """A Word 97 FIB: the base (32 bytes), 14 shorts, 22 longs, 93 fc/lcb pairs."""
    base = bytearray(32)
    struct.pack_into("<HH", base, 0, 0xA5EC, 0x00C1)  # wIdent, nFib (Word 97)
    struct.pack_into("<H", base, 0x0A, 0x0200)  # fWhichTblStm: the table is 1Table
    longs = [0] * 22
    longs[3] = ccp_text  # ccpText
    pairs = [0] * (93 * 2)
    pairs[33 * 2], pairs[33 * 2 + 1] = 0, lcb_clx  # fcClx (offset in 1Table), lcbClx
    fib = bytes(base) + struct.pack("<H", 14) + bytes(28)
    fib += struct.pack("<H", 22) + struct.pack("<22I", *longs)
    fib += struct.pack("<H", 93) + struct.pack(f"<{93 * 2}I", *pairs)
    assert len(fib) <= text_offset
    return fib + bytes(text_offset - len(fib))


def doc_streams(text: str) -> dict[str, bytes]:
    """The two streams of a .doc whose main text is `text` (8-bit, Windows-1252, one piece)."""
    data = text.encode("cp1252")
    offset = 0x400
    clx = b"\x02" + struct.pack("<I", 4 * 2 + 8)  # Pcdt: one piece
    clx += struct.pack("<II", 0, len(data))  # its CPs
    clx += struct.pack("<HIH", 0, 0x40000000 | (offset * 2), 0)  # PCD: compressed, at offset
    word = _fib(len(data), offset, len(clx)) + data
    return {"WordDocument": word, "1Table": clx}


def compound_file(streams: dict[str, bytes]) -> bytes:
    """An OLE2 compound file (version 3) with these streams under its root, each in regular
    sectors (padded past the mini-stream cutoff), one FAT, no DIFAT sectors."""
    padded = {name: data + bytes(max(0, MINI_CUTOFF - len(data))) for name, data in streams.items()}
    chains: list[tuple[int, int]] = []  # (first sector, sector count) per stream
    sector = 1  # sector 0 is the directory
    for data in padded.values():
        count = -(-len(data) // SECTOR)
        chains.append((sector, count))
        sector += count
    data_sectors = sector
    fat_sectors = 1
    while (data_sectors + fat_sectors) > fat_sectors * (SECTOR // 4):
        fat_sectors += 1
    assert fat_sectors <= 109, "too large for a header-only DIFAT"
    fat = [FREE] * (fat_sectors * SECTOR // 4)
    fat[0] = END_OF_CHAIN  # the directory: one sector
    for first, count in chains:
        for i in range(count):
            fat[first + i] = first + i + 1 if i + 1 < count else END_OF_CHAIN
    for i in range(fat_sectors):
        fat[data_sectors + i] = FAT_SECTOR

    def entry(name: str, kind: int, child: int, right: int, start: int, size: int) -> bytes:
        encoded = name.encode("utf-16-le") + b"\x00\x00"
        out = encoded.ljust(64, b"\x00") + struct.pack("<HBB", len(encoded), kind, 1)  # black
        out += struct.pack("<III", NO_STREAM, right, child) + bytes(16 + 4 + 16)
        return out + struct.pack("<IIi", start, size, 0)

    names = list(padded)
    directory = entry("Root Entry", 5, 1, NO_STREAM, END_OF_CHAIN, 0)
    for i, name in enumerate(names):
        right = i + 2 if i + 1 < len(names) else NO_STREAM
        first, _count = chains[i]
        directory += entry(name, 2, NO_STREAM, right, first, len(padded[name]))
    directory = directory.ljust(SECTOR, b"\x00")

    header = bytearray(SECTOR)
    header[0:8] = bytes.fromhex("D0CF11E0A1B11AE1")
    struct.pack_into("<HHHHH", header, 0x18, 0x003E, 0x0003, 0xFFFE, 9, 6)
    struct.pack_into("<I", header, 0x2C, fat_sectors)
    struct.pack_into("<I", header, 0x30, 0)  # the directory's first sector
    struct.pack_into("<I", header, 0x38, MINI_CUTOFF)
    struct.pack_into("<III", header, 0x3C, END_OF_CHAIN, 0, END_OF_CHAIN)  # no mini FAT
    struct.pack_into("<II", header, 0x44, END_OF_CHAIN, 0)  # no DIFAT sectors
    difat = [data_sectors + i for i in range(fat_sectors)] + [FREE] * (109 - fat_sectors)
    struct.pack_into("<109I", header, 0x4C, *difat)

    body = directory
    for data in padded.values():
        body += data.ljust(-(-len(data) // SECTOR) * SECTOR, b"\x00")
    body += struct.pack(f"<{len(fat)}I", *fat)
    return bytes(header) + body


def word97(text: str) -> bytes:
    """A `.doc` of `text`, as Word 97 lays one out."""
    return compound_file(doc_streams(text))
