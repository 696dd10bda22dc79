"""Word attachments: the type sniffed from the bytes, the text read safely (SPEC §3.4, §10).

A .docx is a zip holding `word/document.xml`, read with `zipfile` and `expat` (an
uncompressed-size cap against zip bombs; DTDs and entities refused, so neither "billion laughs"
nor external entities can do anything). A .doc, and a .wps as WPS Office saves it, is an OLE2
compound file holding a Word 97 `WordDocument` stream: `olefile` reads the container (always from
memory, never a path) and the piece table is read here, as [MS-DOC] §2.4.1 describes.
"""

from __future__ import annotations

import io
import re
import struct
import xml.parsers.expat
import zipfile

import olefile

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
MAX_XML_BYTES = 16 * 1024 * 1024
MAX_DOC_CHARS = 4 * 1024 * 1024
WORD_EXTENSIONS = (".docx", ".doc", ".wps", ".docm", ".dot", ".dotx", ".wpt")
_W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_MC_NS = "http://schemas.openxmlformats.org/markup-compatibility/2006"


class WordError(Exception):
    """The attachment looks like a Word file but cannot be read (broken, encrypted, a bomb)."""


class _OleFile(olefile.OleFileIO):  # type: ignore[misc]
    """olefile's reader, with its check that no stream is referenced twice kept in sets: the
    library looks each stream up in a list, quadratic in the entries of a crafted directory."""

    def _check_duplicate_stream(self, first_sect: int, minifat: bool = False) -> None:
        if not minifat and first_sect in _NOT_STREAMS:
            return
        seen: set[int] = self.__dict__.setdefault(
            "_seen_minifat" if minifat else "_seen_fat", set()
        )
        if first_sect in seen:
            self._raise_defect(olefile.DEFECT_INCORRECT, "Stream referenced twice")
        seen.add(first_sect)


_NOT_STREAMS = frozenset({olefile.DIFSECT, olefile.FATSECT, olefile.ENDOFCHAIN, olefile.FREESECT})


def _ole_streams(data: bytes) -> set[str] | None:
    """The stream names of an OLE2 file (lower case, top level), None when it is not one."""
    try:
        with _OleFile(io.BytesIO(data)) as ole:
            return {"/".join(entry).lower() for entry in ole.listdir(streams=True)}
    except Exception:  # olefile raises many kinds on a broken container; it is just unreadable
        return None


def sniff_word(data: bytes, filename: str | None) -> str | None:
    """ "docx" or "ole" when the bytes are a Word file (whatever the name says), else None.

    An OLE2 file counts when it holds a WordDocument stream, or when its name says Word (it is
    then read, and found unreadable if it is encrypted or broken); a zip counts when it holds
    `word/document.xml`. A name alone counts only when the bytes are neither zip nor OLE2.
    """
    name = (filename or "").lower()
    word_name = name.endswith(WORD_EXTENSIONS)
    if data.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                return "docx" if "word/document.xml" in zf.namelist() else None
        except Exception:  # a broken zip (any of zipfile's many errors): judge by the name
            return "docx" if word_name else None
    if data.startswith(OLE2_MAGIC):
        streams = _ole_streams(data)
        if streams is not None and "worddocument" in streams:
            return "ole"
        return "ole" if word_name else None
    return "docx" if name.endswith((".docx", ".docm", ".dotx")) else ("ole" if word_name else None)


# --- .docx ------------------------------------------------------------------------------


def _safe_xml_text(xml_bytes: bytes) -> str:
    """Text of the w:t/w:tab/w:br/w:p elements, with DTDs and entities refused."""
    parts: list[str] = []
    in_text = False
    fallback = 0  # inside mc:Fallback, which repeats the mc:Choice content for old readers
    parser = xml.parsers.expat.ParserCreate(namespace_separator="|")

    def refuse(*_args: object) -> None:
        raise WordError("the document declares a DTD or entities")

    def start(name: str, _attrs: dict[str, str]) -> None:
        nonlocal in_text, fallback
        ns, _, local = name.rpartition("|")
        if ns == _MC_NS and local == "Fallback":
            fallback += 1
        if ns != _W_NS or fallback:
            return
        if local == "t":
            in_text = True
        elif local == "tab":
            parts.append("\t")
        elif local in ("br", "cr"):
            parts.append("\n")

    def end(name: str) -> None:
        nonlocal in_text, fallback
        ns, _, local = name.rpartition("|")
        if ns == _MC_NS and local == "Fallback":
            fallback = max(0, fallback - 1)
        if ns != _W_NS or fallback:
            return
        if local == "t":
            in_text = False
        elif local == "p":
            parts.append("\n")

    def data(text: str) -> None:
        if in_text and not fallback:
            parts.append(text)

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse  # type: ignore[assignment]
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    try:
        parser.Parse(xml_bytes, True)
    except xml.parsers.expat.ExpatError as exc:
        raise WordError(f"document.xml is not well-formed: {exc}") from None
    except RecursionError:
        raise WordError("document.xml is nested too deeply") from None
    return "".join(parts)


def docx_text(data: bytes) -> str:
    """The text of a .docx (body, without headers and footers)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            try:
                info = zf.getinfo("word/document.xml")
            except KeyError:
                raise WordError("no word/document.xml in the file") from None
            if info.flag_bits & 0x1:
                raise WordError("the document is encrypted")
            if info.file_size > MAX_XML_BYTES:
                raise WordError("the document is larger than the uncompressed-size cap")
            with zf.open(info) as fh:
                # Read at most the cap whatever the header claims: a lying size cannot bomb.
                xml_bytes = fh.read(MAX_XML_BYTES + 1)
            if len(xml_bytes) > MAX_XML_BYTES:
                raise WordError("the document is larger than the uncompressed-size cap")
    except WordError:
        raise
    except Exception as exc:  # zipfile passes on its decompressors' own errors: zlib.error,
        # lzma.LZMAError, OSError from bz2, EOFError, BadZipFile on a bad CRC, RuntimeError …
        raise WordError(f"not a readable .docx: {type(exc).__name__}") from None
    return _safe_xml_text(xml_bytes)


# --- .doc / .wps (Word 97 binary in OLE2) -----------------------------------------------

_FIB_ENCRYPTED = 0x0100
_FIB_WHICH_TABLE = 0x0200
_FIB_OBFUSCATED = 0x8000
_CLX_INDEX = 33  # fcClx/lcbClx in FibRgFcLcb97
# Word's control characters in the text stream: cell and row marks, breaks, field markers, anchors.
_DOC_CONTROLS = str.maketrans(
    {
        "\r": "\n",
        "\x07": "\t",
        "\x0b": "\n",
        "\x0c": "\n",
        "\x0e": "\n",
        "\x1e": "-",
        "\x1f": "",
        "\xa0": " ",
        "\x01": "",
        "\x02": "",
        "\x03": "",
        "\x04": "",
        "\x05": "",
        "\x08": "",
    }
)
# Compressed (8-bit) pieces hold Windows-1252 text ([MS-DOC] 2.4.1, FcCompressed).
_CP1252 = "cp1252"


def _u16(buf: bytes, pos: int) -> int:
    return int(struct.unpack_from("<H", buf, pos)[0])


def _u32(buf: bytes, pos: int) -> int:
    return int(struct.unpack_from("<I", buf, pos)[0])


def _drop_field_codes(text: str) -> str:
    """Keep a field's result, drop its code: 0x13 code 0x14 result 0x15 (fields may nest).

    Linear: the open fields are a stack of flags (in code / in result) beside a count of those
    still in their code, so no character costs more than the depth it opens or closes.
    """
    if _FIELD_MARK.search(text) is None:
        return text
    out: list[str] = []
    open_fields: list[bool] = []  # per open field: still in its code part
    in_code = 0  # how many of them
    start = 0
    for m in _FIELD_MARK.finditer(text):
        if not in_code:
            out.append(text[start : m.start()])
        mark = m.group()
        if mark == "\x13":
            open_fields.append(True)
            in_code += 1
        elif open_fields and mark == "\x14":
            if open_fields[-1]:
                open_fields[-1] = False
                in_code -= 1
        elif open_fields:  # 0x15 ends the innermost field
            in_code -= open_fields.pop()
        start = m.end()
    if not in_code:
        out.append(text[start:])
    return "".join(out)


_FIELD_MARK = re.compile("[\x13\x14\x15]")


def _piece_text(word: bytes, table: bytes, ccp_text: int, fc_clx: int, lcb_clx: int) -> str:
    if fc_clx + lcb_clx > len(table) or lcb_clx < 5:
        raise WordError("the piece table lies outside the table stream")
    clx = table[fc_clx : fc_clx + lcb_clx]
    pos = 0
    while pos < len(clx) and clx[pos] == 0x01:  # Prc: property modifiers, skipped
        size = struct.unpack_from("<h", clx, pos + 1)[0]
        if size < 0:
            raise WordError("a negative property block in the piece table")
        pos += 3 + size
    if pos + 5 > len(clx) or clx[pos] != 0x02:
        raise WordError("no piece table in the document")
    lcb = _u32(clx, pos + 1)
    plc = clx[pos + 5 : pos + 5 + lcb]
    if lcb < 4 or len(plc) < lcb or (lcb - 4) % 12:
        raise WordError("the piece table is cut short")
    pieces = (lcb - 4) // 12
    out: list[str] = []
    remaining = min(ccp_text, MAX_DOC_CHARS)
    for i in range(pieces):
        if remaining <= 0:
            break
        cp_start, cp_end = _u32(plc, i * 4), _u32(plc, (i + 1) * 4)
        if cp_end <= cp_start:
            continue
        count = min(cp_end - cp_start, remaining)
        fc = _u32(plc, (pieces + 1) * 4 + i * 8 + 2)
        if fc & 0x40000000:
            offset = (fc & 0x3FFFFFFF) // 2
            chunk = word[offset : offset + count]
            out.append(chunk.decode(_CP1252, errors="replace"))
        else:
            chunk = word[fc : fc + 2 * count]
            out.append(chunk.decode("utf-16-le", errors="replace"))
        if len(chunk) < (count if fc & 0x40000000 else 2 * count):
            raise WordError("a piece of text lies outside the document stream")
        remaining -= count
    return "".join(out)


def doc_text(data: bytes) -> str:
    """The main-document text of a Word 97–2003 .doc (or a .wps saved by WPS Office)."""
    try:
        with _OleFile(io.BytesIO(data)) as ole:
            streams = {"/".join(e).lower(): "/".join(e) for e in ole.listdir(streams=True)}
            if "encryptedpackage" in streams or "encryptioninfo" in streams:
                raise WordError("the document is encrypted")
            if "worddocument" not in streams:
                raise WordError("no WordDocument stream: not a Word 97 or later document")
            word = ole.openstream(streams["worddocument"]).read()
            if len(word) < 0x200 or _u16(word, 0) != 0xA5EC:
                raise WordError("the WordDocument stream has no Word 97 header")
            flags = _u16(word, 0x0A)
            if flags & (_FIB_ENCRYPTED | _FIB_OBFUSCATED):
                raise WordError("the document is encrypted")
            if _u16(word, 2) < 0x00C1:
                raise WordError("a Word 95 or older document")
            table_name = "1table" if flags & _FIB_WHICH_TABLE else "0table"
            if table_name not in streams:
                raise WordError("the table stream is missing")
            table = ole.openstream(streams[table_name]).read()
    except WordError:
        raise
    except Exception as exc:  # olefile and struct fail in many ways on a broken container
        raise WordError(f"not a readable .doc: {type(exc).__name__}") from None
    try:
        pos = 32
        csw = _u16(word, pos)
        pos += 2 + csw * 2
        cslw = _u16(word, pos)
        ccp_text = _u32(word, pos + 2 + 3 * 4)
        pos += 2 + cslw * 4
        cb_rg_fc_lcb = _u16(word, pos)
        if cb_rg_fc_lcb <= _CLX_INDEX:
            raise WordError("the file information block is too short")
        fc_clx = _u32(word, pos + 2 + _CLX_INDEX * 8)
        lcb_clx = _u32(word, pos + 2 + _CLX_INDEX * 8 + 4)
        text = _piece_text(word, table, ccp_text, fc_clx, lcb_clx)
    except struct.error:
        raise WordError("the file information block is cut short") from None
    return _drop_field_codes(text).translate(_DOC_CONTROLS)


def word_text(data: bytes, filename: str | None = None, kind: str | None = None) -> str:
    """The text of a Word attachment of either kind; raises `WordError` when unreadable.
    `kind` is what `sniff_word` said of it, when the caller asked already."""
    kind = kind or sniff_word(data, filename)
    if kind == "docx":
        return docx_text(data)
    if kind == "ole":
        return doc_text(data)
    raise WordError("not a Word document")
