"""Hostile inputs for every entry point of the parser, at any size: `python -m tests.linearity
CASE` times CASE at a size n and at 10·n and prints the two CPU times as JSON.

Each case is a shape a sender controls (a run of one character, a construct repeated, nesting)
that once made a step of the parser grow faster than its input. The test runs each in a
process of its own, with a time limit, so a case that has become quadratic again fails
rather than hangs; user CPU time, the best of five runs, keeps a busy machine from moving it.
"""

from __future__ import annotations

import base64
import io
import json
import resource
import sys
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

Thunk = Callable[[], object]
CASES: dict[str, tuple[Callable[[int], Thunk], int]] = {}  # name → (make(n), first n)
# n grows until the small run takes this long; no further, or memory rather than work
# would set the time of the larger runs.
MIN_CPU = 0.01
DATA = Path(__file__).parent / "data"


def case(name: str, n0: int) -> Callable[[Callable[[int], Thunk]], Callable[[int], Thunk]]:
    def register(make: Callable[[int], Thunk]) -> Callable[[int], Thunk]:
        CASES[name] = (make, n0)
        return make

    return register


def raw_mail(headers: list[tuple[str, str]], body: bytes = b"hello\r\n", ctype: str = "") -> bytes:
    base = [
        ("From", "liming@th.gz.test"),
        ("To", "inf@mailroom.test"),
        ("Subject", "s"),
        ("Message-ID", "<m@th.gz.test>"),
        ("MIME-Version", "1.0"),
        ("Content-Type", ctype or "text/plain; charset=utf-8"),
    ]
    names = {k.lower() for k, _ in headers}
    lines = [f"{k}: {v}" for k, v in base if k.lower() not in names]
    lines += [f"{k}: {v}" for k, v in headers]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


def decoded(raw: bytes) -> Thunk:
    from parser.decode import decode_message

    return lambda: decode_message(raw)


def validated(raw: bytes) -> Thunk:
    """decode → validate, as the pipeline runs them on a registered officer's mail."""
    from parser.decode import decode_message
    from parser.types import Limits, SenderContext
    from parser.validate import validate

    sender = SenderContext("TH", "天河区", "【天河区】", "李明")
    limits = Limits(450, 4000, timedelta(minutes=15), 3)
    at, zone = datetime(2026, 11, 22, 3, 0, tzinfo=UTC), ZoneInfo("Asia/Shanghai")
    return lambda: validate(decode_message(raw), sender, limits, at, zone)


def html(body: str) -> Thunk:
    return decoded(raw_mail([], body.encode(), "text/html; charset=utf-8"))


def ew(text: str) -> str:
    return f"=?UTF-8?B?{base64.b64encode(text.encode()).decode()}?="


# --- the subject --------------------------------------------------------------------------

case("subject: a run of '-' after the title", 500)(
    lambda n: validated(raw_mail([("Subject", ew("【天河区】标题") + " " + "-" * n + " x")]))
)
case("subject: a run of spaces after the title", 500)(
    lambda n: validated(raw_mail([("Subject", ew("【天河区】标题") + " " * n + "x")]))
)
case("subject: 约稿编号 and a run of spaces", 500)(
    lambda n: validated(raw_mail([("Subject", ew("【天河区】约稿编号" + " " * n + "!"))]))
)
case("subject: many encoded-words", 200)(
    lambda n: decoded(raw_mail([("Subject", " ".join([ew("天")] * n))]))
)
case("a header of '=?' without '?='", 200)(lambda n: decoded(raw_mail([("X-Any", "=?a?q?x " * n)])))


# --- addresses ----------------------------------------------------------------------------

case("From: nested comments", 50)(
    lambda n: decoded(raw_mail([("From", "(" * n + "x" + ")" * n + " <liming@th.gz.test>")]))
)
case("To: a run of spaces before a name and no address", 500)(
    lambda n: decoded(raw_mail([("To", " " * n + "x y")]))
)
case("To: a display name of many words and no address", 200)(
    lambda n: decoded(raw_mail([("To", " ".join(["李明"] * n) + " <x")]))
)
case("To: an address of many dotted parts and no domain", 200)(
    lambda n: decoded(raw_mail([("To", "<" + ".".join(["a"] * n) + ">")]))
)
case("From: many addresses", 50)(
    lambda n: decoded(raw_mail([("From", ", ".join(f"a{i}@x.test" for i in range(n)))]))
)


# --- MIME structure -----------------------------------------------------------------------

case("Content-Type: many parameters", 200)(
    lambda n: decoded(raw_mail([], ctype="text/plain; " + "; ".join(f"p{i}=v" for i in range(n))))
)
case("Content-Type: a quoted value full of ';'", 200)(
    lambda n: decoded(raw_mail([], ctype='text/plain; name="' + ";" * n + '"'))
)
case("RFC 2231 continuations of a file name", 100)(
    lambda n: decoded(
        raw_mail(
            [],
            b"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
            + "; ".join(f"filename*{i}*=utf-8''%E5%A4%A9" for i in range(n)).encode()
            + b"\r\n\r\nx\r\n--b--\r\n",
            'multipart/mixed; boundary="b"',
        )
    )
)


def _nested(n: int) -> bytes:
    body = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(n)
    )
    body += "Content-Type: text/plain\r\n\r\nx\r\n" + "".join(
        f"--b{i}--\r\n" for i in reversed(range(n))
    )
    return ("From: liming@th.gz.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n" + body).encode()


case("multipart nested deep", 20)(lambda n: decoded(_nested(n)))
case("many MIME parts", 20)(
    lambda n: decoded(
        raw_mail(
            [],
            b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(n))
            + b"--b--\r\n",
            'multipart/mixed; boundary="b"',
        )
    )
)


def _deferred(raw: bytes) -> Thunk:
    from parser.decode import decode_message

    return lambda: decode_message(raw, defer=64)  # every body over 64 bytes looked at


_LINES = b"QUJD" * 19 + b"\r\n"
case("deferred: base64 runs after blank lines, no delimiter after them", 20)(
    lambda n: _deferred(raw_mail([], (b"\r\n" + _LINES * 3 + b"*\r\n") * n))
)
case("deferred: many parts declared base64", 20)(
    lambda n: _deferred(
        raw_mail(
            [],
            b"".join(
                b"--b\r\nContent-Transfer-Encoding: base64\r\n\r\n" + _LINES * 3 for _ in range(n)
            )
            + b"--b--\r\n",
            'multipart/mixed; boundary="b"',
        )
    )
)
case("deferred: a run of blank lines no delimiter ends", 2000)(
    lambda n: _deferred(raw_mail([], b"\r\n" * n + b"*\r\n"))
)
case("deferred: LF bodies far from any header block", 20)(
    lambda n: _deferred(raw_mail([], (b"\n" + _LINES.replace(b"\r", b"") * 3 + b"--x\n") * n))
)

# --- HTML bodies --------------------------------------------------------------------------

for _shape in ("<!--", "<a b=", '<a b="', "<a", "</ ", "<?", "<![if ", "<!", "<![CDATA[", "</"):
    case(f"HTML body: {_shape!r} repeated", 200)(lambda n, s=_shape: html(s * n))
case("HTML body: nested elements", 200)(lambda n: html("<div>" * n + "x" + "</div>" * n))
case("HTML body: a huge character reference", 20)(lambda n: html(("&#" + "9" * 5000 + ";") * n))


# --- the body and its sign-off ------------------------------------------------------------


def _body(text: str) -> bytes:
    return raw_mail([("Subject", ew("【天河区】标题"))], text.encode())


case("body: lines of digits and spaces", 20)(
    lambda n: validated(_body("正文。\n" + ("1 3 8 0 0 1 3 8 0 0 0 " * 9 + "\n") * n))
)
case("body: one long line", 2000)(lambda n: validated(_body("正" * n)))
case("body: many sign-off lines", 20)(
    lambda n: validated(_body("正文。\n\n" + "电话：13800138000\n" * n))
)
case("body: many quote-header lines", 20)(
    lambda n: validated(_body("正文。\n" + "在某日某人写道\n" * n))
)
case("body: many titled lines", 20)(
    lambda n: validated(_body("".join(f"【天河区】标题{i}\n" for i in range(n))))
)


# --- Word attachments ---------------------------------------------------------------------


def _attached(name: str, data: bytes) -> bytes:
    b64 = base64.encodebytes(data)
    return raw_mail(
        [("Subject", ew("【天河区】标题"))],
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xe6\xad\xa3\xe6\x96\x87\r\n"
        + b"--b\r\nContent-Type: application/msword\r\n"
        + f'Content-Disposition: attachment; filename="{name}"\r\n'.encode()
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + b64
        + b"--b--\r\n",
        'multipart/mixed; boundary="b"',
    )


def _doc(text: str) -> bytes:
    from tests.wordfile import word97

    return word97(text)


case(".doc: nested field codes", 200)(lambda n: validated(_attached("a.doc", _doc("\x13" * n))))
case(".doc: field codes opened and ended", 200)(
    lambda n: validated(_attached("a.doc", _doc("\x13\x14a" * n)))
)


def _docx(n: int) -> bytes:
    base = zipfile.ZipFile(io.BytesIO((DATA / "word" / "item.docx").read_bytes()))
    xml = base.read("word/document.xml")
    start = xml.index(b"<w:body>") + len(b"<w:body>")
    big = xml[:start] + b"<w:p><w:r><w:t>a</w:t></w:r></w:p>" * n + xml[start:]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name in base.namelist():
            z.writestr(name, big if name == "word/document.xml" else base.read(name))
    return out.getvalue()


case(".docx: many paragraphs", 200)(lambda n: validated(_attached("a.docx", _docx(n))))


def _ole_entries(n: int) -> bytes:
    """An OLE2 file whose directory holds `n` streams, as a balanced tree."""
    import struct

    entries = [b""] * (n + 1)

    def tree(lo: int, hi: int) -> int:
        if lo > hi:
            return 0xFFFFFFFF
        mid = (lo + hi) // 2
        left, right = tree(lo, mid - 1), tree(mid + 1, hi)
        name = f"s{mid}".encode("utf-16-le")
        entries[mid] = struct.pack(
            "<64sHBBIII16sIQQIII", name, len(name) + 2, 2, 1, left, right, 0xFFFFFFFF,
            b"\0" * 16, 0, 0, 0, 1_000_000 + mid, 5000, 0,
        )  # fmt: skip
        return mid

    top = tree(1, n)
    root = "Root Entry".encode("utf-16-le")
    entries[0] = struct.pack(
        "<64sHBBIII16sIQQIII", root, len(root) + 2, 5, 1, 0xFFFFFFFF, 0xFFFFFFFF, top,
        b"\0" * 16, 0, 0, 0, 0xFFFFFFFE, 0, 0,
    )  # fmt: skip
    directory = b"".join(entries)
    directory += b"\0" * (-len(directory) % 512)
    d = len(directory) // 512
    f = 1
    while f * 128 < f + d:
        f += 1
    fat = [0xFFFFFFFD] * f + [f + i + 1 for i in range(d - 1)] + [0xFFFFFFFE]
    fat += [0xFFFFFFFF] * (f * 128 - len(fat))
    difat = list(range(f)) + [0xFFFFFFFF] * (109 - f)
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16
        + struct.pack("<HHHHH6sIIIIIIIII", 0x3E, 3, 0xFFFE, 9, 6, b"\0" * 6, 0, f, f, 0,
                      4096, 0xFFFFFFFE, 0, 0xFFFFFFFE, 0)
        + struct.pack("<109I", *difat)
    )  # fmt: skip
    return header + struct.pack(f"<{len(fat)}I", *fat) + directory


case("OLE2 attachment: many directory entries", 200)(
    lambda n: validated(_attached("a.doc", _ole_entries(n)))
)


# --- the desk's commands, and titles compared ----------------------------------------------


def _commands(body: str) -> Thunk:
    from parser.commands import parse_commands

    return lambda: parse_commands(body, ("批示", "上报"))


case("desk: item lines under one header", 100)(
    lambda n: _commands(
        "采用 穗府信息 2026年第45期\n" + "".join(f"GZ-2026-{i:06d} 标题\n" for i in range(n))
    )
)
case("desk: 撤销 repeated", 50)(lambda n: _commands("撤销 " * n + "采用 调研"))


def _titles(n: int) -> Thunk:
    from parser.normalize import title_similarity

    a, b = "天河区推进改革" * n, "海珠区更新城市" * n
    return lambda: title_similarity(a, b)


case("revision: two long titles compared", 20)(_titles)


# --- bounces ----------------------------------------------------------------------------------


def _bounced(report: str, returned: str = "", body: str = "") -> Thunk:
    from parser.bounce import read_bounce
    from parser.decode import decode_message

    raw = raw_mail(
        [("From", "MAILER-DAEMON@mx.th.gz.test")],
        (
            f"--b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n"
            f"--b\r\nContent-Type: message/delivery-status\r\n\r\n{report}\r\n"
            f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n{returned}\r\n--b--\r\n"
        ).encode(),
        'multipart/report; report-type=delivery-status; boundary="b"',
    )
    return lambda: read_bounce(decode_message(raw))


_RECIPIENT = "Final-Recipient: rfc822; a@b.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
case("bounce: a report of many recipients", 200)(
    lambda n: _bounced("Reporting-MTA: dns; x\r\n\r\n" + _RECIPIENT * n)
)
case("bounce: one field folded over many lines", 200)(
    lambda n: _bounced(
        "Reporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; a@b.test\r\n"
        "Diagnostic-Code: smtp; 550" + "\r\n 5.1.1 x" * n
    )
)
case("bounce: returned headers of many Message-IDs", 200)(
    lambda n: _bounced("", "".join(f"Message-ID: <{i}@x>\r\n" for i in range(n)))
)


def _plain_bounce(n: int) -> Thunk:
    from parser.bounce import read_bounce
    from parser.decode import decode_message

    raw = raw_mail([("Subject", "failure notice")], ("5." * n + "\r\n" + "said: 4" * n).encode())
    return lambda: read_bounce(decode_message(raw))


case("bounce: a plain one of dots and digits", 200)(_plain_bounce)


def cpu(thunk: Thunk, runs: int = 3) -> float:
    """User CPU seconds, the best of `runs`. The kernel's time is left out: past a few megabytes
    each allocation is fresh pages from the kernel, and faulting them in grew from nothing to
    0.9 s between 12 and 120 MB of input on a loaded machine (the user time grew 11×), which is
    the memory system, not the parser."""
    best = float("inf")
    for _ in range(runs):
        start = resource.getrusage(resource.RUSAGE_SELF).ru_utime
        thunk()
        best = min(best, resource.getrusage(resource.RUSAGE_SELF).ru_utime - start)
    return best


RATIO = 15  # ten times the input may cost this many times the time


def measure(name: str) -> dict[str, float | int]:
    """CPU seconds at n and 10·n. When that decade grows faster than `RATIO`, the next one
    (10·n and 100·n) is timed too and the smaller growth kept: a linear step can cross a
    cache size in one decade (seen: the standard html.parser's tag regex, 0.2 → 0.6 µs a
    repetition past 300 KB), where a quadratic one grows a hundredfold in every decade."""
    make, n = CASES[name]
    small = cpu(make(n))
    while small < MIN_CPU and n < 10**7:
        n *= 2
        small = cpu(make(n))
    small = min(small, cpu(make(n), 2))  # five runs in all, as for the large one
    large = cpu(make(10 * n), 5)
    if large > RATIO * small:
        larger = cpu(make(100 * n), 2)
        if larger / large < large / small:
            return {"n": 10 * n, "small": large, "large": larger}
    return {"n": n, "small": small, "large": large}


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1])))
