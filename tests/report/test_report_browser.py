"""The report in a real browser: headless Chromium loads the page written for the profile_driver
example (model + store + profile + bench), with and without JavaScript.

Checked: no console error, no request leaves the file, every section present and visible, every
image decoded and drawn at a non-zero size with alt text, every table with a header row, the flame
graph zoom, a page that is not blank. The full-page screenshot is kept under pytest's tmp dir.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chromium import Browser

EXPECTED = {("surrogate", s) for s in ("spec", "data", "training", "accuracy", "gate", "production")} | {
    ("profile", "flame"), ("profile", "candidates"), ("cost", "cost")}

INSPECT = """JSON.stringify((() => {
  const box = e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; };
  return {
    images: Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, natural: [i.naturalWidth, i.naturalHeight], box: box(i)})),
    flames: Array.from(document.querySelectorAll("svg.flame")).map(s => ({label: s.getAttribute("aria-label") || "", box: box(s)})),
    tables: Array.from(document.querySelectorAll("table")).map(t => t.querySelectorAll("thead th").length),
    sections: Array.from(document.querySelectorAll("[data-section]")).map(s => ({
      part: s.closest("[data-part]").dataset.part, id: s.dataset.section, box: box(s)})),
    text: document.body.innerText.length,
  };
})())"""

ZOOM = """JSON.stringify((() => {
  const svg = document.querySelector("svg.flame");
  const W = svg.viewBox.baseVal.width;
  const rects = Array.from(svg.querySelectorAll("g[data-label] rect"));
  const narrow = rects.filter(r => +r.getAttribute("width") > 5 && +r.getAttribute("width") < W / 3)[0];
  const before = +narrow.getAttribute("width");
  narrow.dispatchEvent(new MouseEvent("click", {bubbles: true}));
  const zoomed = +narrow.getAttribute("width");
  const label = narrow.parentNode.querySelector("text").textContent;
  svg.dispatchEvent(new MouseEvent("click", {bubbles: true}));
  return {W, before, zoomed, reset: +narrow.getAttribute("width"), label, full: narrow.parentNode.dataset.label};
})())"""


def _blank_share(png: Path) -> float:
    from PIL import Image

    gray = Image.open(png).convert("L")
    hist = gray.histogram()
    return sum(hist[250:]) / sum(hist)


def _check_loaded(page: dict, where: str) -> None:
    assert {(s["part"], s["id"]) for s in page["sections"]} == EXPECTED, where
    hidden = [s["id"] for s in page["sections"] if min(s["box"]) <= 0]
    assert not hidden, f"{where}: sections drawn at zero size: {hidden}"
    assert len(page["images"]) >= 15, where
    for img in page["images"]:
        assert img["alt"].strip(), f"{where}: an image without alt text"
        assert img["complete"] and min(img["natural"]) > 0, f"{where}: image not decoded: {img['alt']}"
        assert min(img["box"]) > 50, f"{where}: image drawn at {img['box']}: {img['alt']}"
    assert len(page["flames"]) == 2, where
    for svg in page["flames"]:
        assert svg["label"].startswith("Flame graph of") and min(svg["box"]) > 50, (where, svg)
    assert page["tables"] and all(n >= 2 for n in page["tables"]), f"{where}: a table without a header row"
    assert page["text"] > 3000, where


def test_report_in_chromium(chromium: str, driver_report: Path, tmp_path_factory: pytest.TempPathFactory,
                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path_factory.mktemp("report-browser")
    shot = out / "report-full-page.png"
    with Browser(chromium) as browser:
        browser.open(driver_report.as_uri())
        assert browser.errors() == []
        leaving = [u for u in browser.requests() if not u.startswith(("data:", "file:", "about:"))]
        assert leaving == [], leaving
        _check_loaded(json.loads(browser.evaluate(INSPECT)), "with JavaScript")
        zoom = json.loads(browser.evaluate(ZOOM))
        assert zoom["zoomed"] == pytest.approx(zoom["W"] - 20, abs=0.1), zoom  # the clicked box spans the graph
        assert zoom["reset"] == pytest.approx(zoom["before"], abs=0.05), zoom
        assert zoom["label"] == zoom["full"], zoom  # wide enough now for its whole name
        assert browser.errors() == []
        width, height = browser.screenshot(shot)

        browser.open(driver_report.as_uri(), javascript=False)  # readable without JavaScript
        assert browser.errors() == []
        _check_loaded(json.loads(browser.evaluate(INSPECT)), "without JavaScript")
    with capsys.disabled():
        print(f"\nreport screenshot ({width}x{height}): {shot}")
    assert height > 3000
    assert _blank_share(shot) < 0.92, "the page looks blank"
