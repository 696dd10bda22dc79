"""Word attachments: the type sniffed from the bytes, text read safely from .docx.

A .docx is a zip holding `word/document.xml`; a .doc or .wps is an OLE2 compound file.
Reading is bounded: an uncompressed-size cap against zip bombs, and an XML parser that
refuses DTDs and entities.
"""

from __future__ import annotations

import io
import xml.parsers.expat
import zipfile

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
MAX_XML_BYTES = 16 * 1024 * 1024
WORD_EXTENSIONS = (".docx", ".doc", ".wps", ".docm", ".dot", ".dotx")
_W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


class WordError(Exception):
    """The attachment looks like a Word file but cannot be read (broken, encrypted, a bomb)."""


def sniff_word(data: bytes, filename: str | None) -> str | None:
    """ "docx" or "ole" when the bytes are a Word file (whatever the name says), else None.

    An OLE2 file named .doc/.wps (or unnamed) counts; other OLE2 files (.xls) do not.
    """
    name = (filename or "").lower()
    if data.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                return "docx" if "word/document.xml" in zf.namelist() else None
        except (zipfile.BadZipFile, ValueError):
            return "docx" if name.endswith(WORD_EXTENSIONS) else None
    if data.startswith(OLE2_MAGIC):
        if not name or name.endswith(WORD_EXTENSIONS):
            return "ole"
        return None
    return (
        "docx"
        if name.endswith((".docx", ".docm", ".dotx"))
        else ("ole" if name.endswith((".doc", ".wps", ".dot")) else None)
    )


def _safe_xml_text(xml_bytes: bytes) -> str:
    """Text of the w:t/w:tab/w:br/w:p elements, with DTDs and entities refused."""
    parts: list[str] = []
    in_text = False
    parser = xml.parsers.expat.ParserCreate(namespace_separator="|")

    def refuse(*_args: object) -> None:
        raise WordError("the document declares a DTD or entities")

    def start(name: str, _attrs: dict[str, str]) -> None:
        nonlocal in_text
        ns, _, local = name.rpartition("|")
        if ns != _W_NS:
            return
        if local == "t":
            in_text = True
        elif local in ("tab",):
            parts.append("\t")
        elif local in ("br", "cr"):
            parts.append("\n")

    def end(name: str) -> None:
        nonlocal in_text
        ns, _, local = name.rpartition("|")
        if ns != _W_NS:
            return
        if local == "t":
            in_text = False
        elif local == "p":
            parts.append("\n")

    def data(text: str) -> None:
        if in_text:
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
    return "".join(parts)


def word_text(data: bytes) -> str:
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
                xml_bytes = fh.read(MAX_XML_BYTES + 1)
            if len(xml_bytes) > MAX_XML_BYTES:
                raise WordError("the document is larger than the uncompressed-size cap")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise WordError(f"not a readable .docx: {exc}") from None
    except NotImplementedError as exc:  # unsupported compression
        raise WordError(f"not a readable .docx: {exc}") from None
    return _safe_xml_text(xml_bytes)
