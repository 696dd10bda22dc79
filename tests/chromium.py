"""Render mail HTML as a reader sees it: headless Chromium (Debian's package) takes a screenshot.

`non_white_pixels` reads the PNG with a small decoder (zlib and the five PNG row filters), so
a test can tell a rendered page from a blank one without an imaging library.

`python -m tests.chromium` remakes the README's pictures in `docs/img/`.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

WINDOW = (1200, 1600)


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("chromium is not installed (scripts/setup installs Debian's package)")


def screenshot(html: str, png: Path, window: tuple[int, int] = WINDOW) -> bytes:
    """Write `html` to a file, open it in headless Chromium, save and return the screenshot."""
    with tempfile.TemporaryDirectory(prefix="mailroom-chromium-") as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(html, encoding="utf-8")
        profile = Path(tmp) / "profile"
        profile.mkdir()
        result = subprocess.run(
            [
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={window[0]},{window[1]}",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
    if result.returncode != 0 or not png.exists():
        raise AssertionError(f"chromium failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return png.read_bytes()


def _unfilter(data: bytes, width: int, height: int, bpp: int) -> list[bytes]:
    stride = width * bpp
    rows: list[bytes] = []
    previous = bytearray(stride)
    pos = 0
    for _ in range(height):
        kind = data[pos]
        line = bytearray(data[pos + 1 : pos + 1 + stride])
        pos += 1 + stride
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = previous[i]
            upper_left = previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - upper_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - upper_left)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else upper_left)
                line[i] = (line[i] + pred) & 0xFF
            elif kind != 0:
                raise ValueError(f"PNG row filter {kind} is not defined")
        rows.append(bytes(line))
        previous = line
    return rows


def decode_png(png: bytes) -> tuple[int, int, list[bytes], int]:
    """(width, height, rows of pixel bytes, bytes per pixel) of an 8-bit RGB or RGBA PNG."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat, header = 8, bytearray(), b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        body = png[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG (depth {depth}, colour type {colour})")
    bpp = 3 if colour == 2 else 4
    return width, height, _unfilter(zlib.decompress(bytes(idat)), width, height, bpp), bpp


def pixels(png: bytes, step: int = 2) -> list[tuple[int, int, int]]:
    """The (r, g, b) of every `step`-th pixel of every `step`-th row."""
    width, height, rows, bpp = decode_png(png)
    out = []
    for y in range(0, height, step):
        row = rows[y]
        for x in range(0, width * bpp, step * bpp):
            out.append((row[x], row[x + 1], row[x + 2]))
    return out


def non_white_pixels(png: bytes, step: int = 2) -> tuple[int, int]:
    """(pixels that are not near-white, pixels looked at), sampling every `step`-th pixel."""
    seen = pixels(png, step)
    return sum(1 for rgb in seen if min(rgb) < 235), len(seen)


def near(rgb: tuple[int, int, int], colour: str, tolerance: int = 24) -> bool:
    """Whether a pixel is close to a `#rrggbb` colour."""
    target = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return all(abs(a - b) <= tolerance for a, b in zip(rgb, target, strict=True))


def worked_example_html(quarter: str) -> str:
    """The quarterly summary of the scoring tests' worked example year, as mailed."""
    from datetime import date

    from ledger.db import Ledger
    from ledger.rulebook import load_rulebook
    from mailroom.app import migrate
    from reports.deliver import ReportSettings, build
    from reports.render import ReportWriter
    from tests.scoring_kit import SHANGHAI, Office
    from tests.test_scoring_worked_example import build_year

    rules = load_rulebook("guangzhou-2004")
    settings = ReportSettings(zone=SHANGHAI, sender="inf@mailroom.test", sender_name="政务信息处")
    with tempfile.TemporaryDirectory(prefix="mailroom-example-") as tmp:
        url = f"sqlite:///{tmp}/mailroom.db"
        migrate(url)
        ledger = Ledger.from_url(url)
        try:
            with ledger.transaction() as session:
                build_year(Office(session, rules))
            report = build(ledger, rules, settings, "quarterly", quarter, date(2026, 6, 1))
        finally:
            ledger.dispose()
    return ReportWriter().html(report)


def main() -> None:
    """Remake docs/img/quarterly.png (the worked example's 2026Q2) and docs/img/refusal.png."""
    from tests.reportdata import refusal_html

    img = Path(__file__).resolve().parent.parent / "docs" / "img"
    img.mkdir(parents=True, exist_ok=True)
    screenshot(worked_example_html("2026Q2"), img / "quarterly.png")
    screenshot(refusal_html(), img / "refusal.png", (1000, 700))
    print(f"wrote {img / 'quarterly.png'} and {img / 'refusal.png'}")


if __name__ == "__main__":
    main()
