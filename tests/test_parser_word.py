"""Word attachments read from real LibreOffice-saved files, and hostile ones refused safely."""

from __future__ import annotations

import io
import zipfile

import pytest

from parser.count import count_chars
from parser.word import MAX_XML_BYTES, WordError, sniff_word, word_text
from tests.conftest import DATA

WORD = DATA / "word"


def read(name: str) -> bytes:
    return (WORD / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "kind", "chars"),
    [
        ("item.docx", "docx", 459),
        ("item.doc", "ole", 459),
        ("item.wps", "ole", 244),
        ("long.docx", "docx", 4520),
        ("long.doc", "ole", 4520),
    ],
)
def test_text_and_count_of_real_word_files(name: str, kind: str, chars: int) -> None:
    data = read(name)
    assert sniff_word(data, name) == kind
    assert sniff_word(data, None) == kind  # the bytes decide, not the name
    text = word_text(data, name)
    assert count_chars(text) == chars
    source = (WORD / ("item_wps.txt" if name == "item.wps" else "item.txt")).read_text("utf-8")
    if name.startswith("item"):
        assert text.split() == source.split()


def test_docx_and_doc_of_the_same_text_agree() -> None:
    assert word_text(read("item.docx")) == word_text(read("item.doc"))


def test_eight_bit_pieces_of_a_doc_are_read() -> None:
    text = word_text(read("latin.doc"))
    assert text.startswith("Tianhe District report on business environment reform")


@pytest.mark.parametrize(
    "name",
    ["encrypted.docx", "encrypted_flag.doc", "broken.doc", "zip_bomb.docx", "billion_laughs.docx",
     "xxe.docx"],
)  # fmt: skip
def test_hostile_or_broken_files_are_refused_with_a_word_error(name: str) -> None:
    with pytest.raises(WordError):
        word_text(read(name), name)


def test_zip_bomb_is_refused_without_inflating_it() -> None:
    with zipfile.ZipFile(io.BytesIO(read("zip_bomb.docx"))) as zf:
        assert zf.getinfo("word/document.xml").file_size > MAX_XML_BYTES
    with pytest.raises(WordError, match="uncompressed-size cap"):
        word_text(read("zip_bomb.docx"))


def test_entities_are_refused_not_expanded() -> None:
    with pytest.raises(WordError, match="DTD or entities"):
        word_text(read("billion_laughs.docx"))
    with pytest.raises(WordError, match="DTD or entities"):
        word_text(read("xxe.docx"))


def test_a_corrupt_deflate_stream_is_a_word_error() -> None:
    """Found by the fuzzer: zipfile raised zlib.error straight through."""
    data = bytearray(read("item.docx"))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("word/document.xml")
    header = info.header_offset
    name_len, extra_len = data[header + 26], data[header + 28]
    start = header + 30 + name_len + extra_len
    data[start : start + 12] = b"\xff" * 12
    with pytest.raises(WordError):
        word_text(bytes(data))


def test_other_files_are_not_word() -> None:
    assert sniff_word(b"%PDF-1.4", "x.pdf") is None
    assert sniff_word(read("encrypted.docx"), "x.xls") is None  # OLE2 without a Word stream
    assert sniff_word(b"not really", "x.doc") == "ole"  # a Word name: read, then unreadable
    with pytest.raises(WordError):
        word_text(b"not really", "x.doc")
