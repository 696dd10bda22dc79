"""The quarterly summary as a leader sees it: rendered in headless Chromium, not blank."""

from __future__ import annotations

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
    for name in ("quarterly", "refusal"):
        assert f"](docs/img/{name}.png)" in readme
        inked, seen = non_white_pixels((REPO / "docs" / "img" / f"{name}.png").read_bytes(), 4)
        assert inked > seen * 0.01
