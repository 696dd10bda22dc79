"""The quarterly summary as a leader sees it: rendered in headless Chromium, not blank."""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

from reports.render import GAP, MET, OVER, SHORT, ReportWriter
from tests.chromium import near, non_white_pixels, pixels, screenshot
from tests.conftest import REPO
from tests.reportdata import sample_quarterly


def test_quarterly_html_renders_in_chromium_with_its_chart(tmp_path: Path) -> None:
    png = screenshot(ReportWriter().html(sample_quarterly()), tmp_path / "quarterly.png")
    inked, seen = non_white_pixels(png)
    assert inked > seen * 0.03, f"only {inked} of {seen} sampled pixels are not white"
    colours = Counter(pixels(png))
    # Every kind of bar segment is on the page: met, beyond target, short of it, the gap.
    for colour in (MET, OVER, SHORT, GAP):
        assert sum(n for rgb, n in colours.items() if near(rgb, colour, 12)) > 200, colour


def test_a_blank_page_counts_as_blank(tmp_path: Path) -> None:
    png = screenshot("<!DOCTYPE html><html><body></body></html>", tmp_path / "blank.png")
    assert non_white_pixels(png)[0] == 0


def test_readme_shows_the_screenshots() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    sizes = {"quarterly": (1200, 1600), "refusal": (1000, 700)}
    for name, size in sizes.items():
        assert f"](docs/img/{name}.png)" in readme
        png = (REPO / "docs" / "img" / f"{name}.png").read_bytes()
        # A PNG of the window Chromium drew (`python -m tests.chromium` makes them).
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
        assert struct.unpack(">II", png[16:24]) == size
        assert len(png) > 20_000  # a blank page compresses to a few kilobytes
