"""The rendered book as a reader sees it: every page of _toc.yml opened in headless Chromium.

Run after `make book` (``make check-book`` does both). For each page: a screenshot is saved under
_build/screenshots/, every image must have loaded (naturalWidth > 0), chapter pages must show at
least one figure, no cell may show an error or a traceback, the page must raise no JavaScript
error, formulas must be typeset, and the "next" link must lead to the next page of the table of contents.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ERROR_SELECTORS = [".output.traceback", ".output.error", "div.cell_output .ansi-red-fg"]

pytestmark = pytest.mark.rendered_book


def toc_pages() -> list[str]:
    """Document names (e.g. "book/01_convolution") in reading order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages.extend(chapter["file"] for chapter in part["chapters"])
    return pages


def is_notebook(page: str) -> bool:
    source = ROOT / f"{page}.md"
    return source.exists() and source.read_text().startswith("---\njupytext:")


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not (HTML / "index.html").exists():
        pytest.fail(f"no rendered book at {HTML}: run `make book` first")
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        pytest.fail("Chromium not found: install Debian's chromium package (make check-book does) or set CHROMIUM")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


PAGES = toc_pages()


@pytest.mark.parametrize("index", range(len(PAGES)), ids=PAGES)
def test_page_renders_completely(browser, index):
    page_name = PAGES[index]
    html_file = HTML / f"{page_name}.html"
    assert html_file.exists(), f"{html_file} was not built"
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    js_errors: list[str] = []
    page.on("pageerror", lambda error: js_errors.append(str(error)))
    try:
        page.goto(html_file.as_uri(), wait_until="load")
        # MathJax (served from the book itself) typesets asynchronously after load.
        page.evaluate("async () => { if (window.MathJax && MathJax.startup) await MathJax.startup.promise; }")
        page.screenshot(path=str(SHOTS / f"{Path(page_name).name}.png"), full_page=True)

        images = page.evaluate(
            "Array.from(document.querySelectorAll('main img')).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])"
        )
        broken = [src for src, complete, width in images if not complete or width == 0]
        assert not broken, f"{page_name}: images that did not load: {broken}"
        if is_notebook(page_name) and page_name.split("/")[-1][:2].isdigit():
            assert images, f"{page_name}: a chapter without a single figure"

        for selector in ERROR_SELECTORS:
            count = page.locator(selector).count()
            assert count == 0, f"{page_name}: {count} element(s) matching {selector!r}"
        body = page.inner_text("main")
        assert "Traceback (most recent call last)" not in body, f"{page_name}: a traceback is shown"
        raw_math = [marker for marker in ("\\(", "\\[", "$$") if marker in body]
        assert not raw_math, f"{page_name}: formulas left untypeset (MathJax did not run): {raw_math}"
        assert not js_errors, f"{page_name}: JavaScript errors {js_errors}"

        if index + 1 < len(PAGES):
            expected = HTML / f"{PAGES[index + 1]}.html"
            link = page.locator("a.right-next")
            assert link.count() == 1, f"{page_name}: no 'next' link"
            link.click()
            page.wait_for_load_state("load")
            assert Path(page.url.removeprefix("file://")).resolve() == expected.resolve(), (
                f"{page_name}: 'next' led to {page.url}, expected {expected}"
            )
    finally:
        page.close()


def test_every_page_was_screenshotted(browser):
    names = {Path(page).name for page in PAGES}
    shots = {path.stem for path in SHOTS.glob("*.png")}
    assert names <= shots, f"missing screenshots: {sorted(names - shots)}"
