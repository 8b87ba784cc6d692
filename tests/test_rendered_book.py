"""The rendered book as a reader sees it: every page of _toc.yml opened in headless Chromium.

Run after `make book` (``make check-book`` does both). For each page a screenshot is saved under
_build/screenshots/, and the page must:

- load every image, and show at least the figures its chapter draws (``MIN_FIGURES``; an
  animation counts as a figure, and its player must step through frames without a kernel);
- show no error, traceback, warning, stderr output or path of the build machine in its outputs;
- have no code cell wider than the text column (a sideways scroll bar);
- resolve every cross-reference, and name chapters by link, not in plain text;
- typeset its formulas and raise no JavaScript error;
- for a chapter or the appendix: end with a summary and 3 to 5 exercises whose solutions are
  folded away;
- link to the next page of the table of contents.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from output_checks import MACHINE_PATH, WARNING_TEXT

ROOT = Path(__file__).resolve().parents[1]
# BOOK_HTML: check a book rendered elsewhere (default: what `make book` wrote).
HTML = Path(os.environ.get("BOOK_HTML") or ROOT / "_build" / "html")
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
]
ERROR_SELECTORS = [
    ".output.traceback",
    ".output.error",
    "div.cell_output .ansi-red-fg",
    ".output.stderr",
]

# Figures (images and animations) each page must show at least: the figures its code draws.
# A chapter that loses a figure (a backend that draws nowhere, a cell that stopped plotting)
# fails here. Update the number when a chapter gains or drops a figure on purpose.
MIN_FIGURES = {
    "book/intro": 0,
    # connectivity, banded matrix, animation, layer grid, 2 output rows, kernel recovery,
    # learned edges, backward pass
    "book/01_convolution": 9,
    # animation, strides, padding, receptive field, paths of 7x7 vs 3x3 stack, pooling x2,
    # GAP, 1x1 channel mixing
    "book/02_padding_stride_pooling": 9,
    "book/03_training_engine": 2,  # bar samples, training history
    # architecture, LeNet-5 beside it, samples, LR range test, schedule, history, kernels,
    # feature maps, softmax bars
    "book/04_mnist": 9,
    "book/05_transfer_learning": 11,  # patches, BGR, augmentation, 2 histories, 2 without/with, confusion, PR, raw patch, tumour map
    "book/06_guided_backprop": 4,  # digits, patches, plain vs guided, photograph
    "book/07_char_cnn": 3,  # lengths, character convolution, history
    "book/08_engine_appendix": 0,
    "book/running": 0,
    "book/data": 0,
    "book/troubleshooting": 0,
    "book/performance": 0,
    "book/reliability": 0,
    "book/api": 0,
    "book/bibliography": 0,
}
ANIMATED = {"book/01_convolution", "book/02_padding_stride_pooling"}
# Pages that teach: each ends with a summary and exercises.
WITH_EXERCISES = {page for page in MIN_FIGURES if re.fullmatch(r"book/\d\d_\w+", page)}

# "chapter 5", "Chapter 05", "chapters 5 and 6", "the last chapter": chapter names that must be links.
# The API reference is exempt: it renders the package's docstrings, which cannot hold links.
CHAPTER_MENTION = re.compile(
    r"\bchapters?\s+0?\d\b|\b(last|previous|next|preceding) chapter\b", re.IGNORECASE
)

pytestmark = pytest.mark.rendered_book


def toc_pages() -> list[str]:
    """Document names (e.g. "book/01_convolution") in reading order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages.extend(chapter["file"] for chapter in part["chapters"])
    return pages


PAGES = toc_pages()


def test_every_page_of_the_toc_has_a_figure_minimum():
    assert set(PAGES) == set(MIN_FIGURES), (
        f"pages without an entry in MIN_FIGURES: {sorted(set(PAGES) - set(MIN_FIGURES))}; "
        f"entries for pages not in _toc.yml: {sorted(set(MIN_FIGURES) - set(PAGES))}"
    )


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not (HTML / "index.html").exists():
        pytest.fail(f"no rendered book at {HTML}: run `make book` first")
    executable = (
        os.environ.get("CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    if not executable:
        pytest.fail(
            "Chromium not found: install Debian's chromium package (make check-book does) or set CHROMIUM"
        )
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


# JavaScript run in each page; each returns plain data for the assertions.
IMAGES_JS = """() => Array.from(document.querySelectorAll('main img')).map(i => ({
    src: (i.getAttribute('src') || '').slice(0, 80), complete: i.complete, width: i.naturalWidth,
    animation: i.closest('div.animation') !== null}))"""
OUTPUT_TEXT_JS = """() => Array.from(document.querySelectorAll('main div.cell_output')).map(o => o.innerText)"""
WIDE_CODE_JS = """() => Array.from(document.querySelectorAll('main div.cell_input pre')).filter(
    p => p.scrollWidth > p.clientWidth + 1).map(p => p.innerText.split('\\n').reduce(
    (a, b) => a.length >= b.length ? a : b).slice(0, 90))"""
# A cross-reference between pages ({ref}, {numref}, {doc}) that Sphinx could not resolve is left
# as a span of class "xref std"; resolved ones become links.
UNRESOLVED_JS = """() => Array.from(document.querySelectorAll('main .xref.std')).filter(
    x => x.closest('a') === null).map(x => x.innerText)"""
INTERNAL_LINKS_JS = """() => Array.from(document.querySelectorAll('main a.reference.internal')).map(
    a => a.href)"""
# Prose text nodes outside links, code, outputs, the navigation and API docstrings.
PROSE_MENTIONS_JS = """(pattern) => {
    const re = new RegExp(pattern, 'i');
    const walker = document.createTreeWalker(document.querySelector('main article') ||
        document.querySelector('main'), NodeFilter.SHOW_TEXT);
    const found = [];
    while (walker.nextNode()) {
        const node = walker.currentNode;
        const parent = node.parentElement;
        if (parent.closest('a, pre, code, .cell_output, .cell_input, .highlight, nav, .toctree-wrapper, dl.py'))
            continue;
        const match = node.textContent.match(re);
        if (match) found.push(node.textContent.trim().slice(0, 80));
    }
    return found;
}"""
EXERCISES_JS = """() => {
    const section = document.querySelector('main section#exercises');
    const summary = document.querySelector('main section#summary');
    if (!section) return {summary: summary !== null, exercises: null};
    const dropdowns = Array.from(section.querySelectorAll('.dropdown, details'));
    // sphinx-togglebutton folds a dropdown by hiding everything after its title
    const visibleSolutions = dropdowns.filter(d => {
        const body = d.querySelector(':scope > :not(.admonition-title):not(summary)');
        return body !== null && getComputedStyle(body).visibility !== 'hidden' && body.offsetHeight > 0;
    }).length;
    return {summary: summary !== null, exercises: dropdowns.length, visibleSolutions: visibleSolutions};
}"""


def step_animations(page) -> list[str]:
    """Problems with the JavaScript animations of a page: each must show a frame and step on."""
    problems = []
    players = page.locator("main div.animation")
    for index in range(players.count()):
        player = players.nth(index)
        image = player.locator("img")
        try:
            page.wait_for_function(
                "img => img.complete && img.naturalWidth > 0",
                arg=image.element_handle(),
                timeout=5000,
            )
        except Exception:  # noqa: BLE001 - playwright raises its own TimeoutError
            problems.append(
                f"animation {index} shows no frame (its JavaScript did not run)"
            )
            continue
        before = image.get_attribute("src")
        player.locator("button[title='Next frame']").click()
        if image.get_attribute("src") == before:
            problems.append(f"animation {index} does not step to its next frame")
    return problems


def page_problems(
    page, page_name: str, minimum_figures: int, with_exercises: bool
) -> list[str]:
    """Everything wrong with the page open in ``page``, as messages naming the page; [] if none."""
    problems: list[str] = []

    # Figures: every image loaded, animations step, at least as many figures as the page draws.
    problems += [f"{page_name}: {problem}" for problem in step_animations(page)]
    images = page.evaluate(IMAGES_JS)
    broken = [
        image["src"] for image in images if not image["complete"] or image["width"] == 0
    ]
    if broken:
        problems.append(f"{page_name}: images that did not load: {broken}")
    animations = page.locator("main div.animation").count()
    figures = sum(not image["animation"] for image in images) + animations
    if figures < minimum_figures:
        problems.append(
            f"{page_name}: {figures} figures ({animations} of them animations), expected at least {minimum_figures}"
        )

    # Outputs: no errors, warnings or paths of the build machine.
    for selector in ERROR_SELECTORS:
        count = page.locator(selector).count()
        if count:
            problems.append(f"{page_name}: {count} element(s) matching {selector!r}")
    body = page.inner_text("main")
    if "Traceback (most recent call last)" in body:
        problems.append(f"{page_name}: a traceback is shown")
    outputs = page.evaluate(OUTPUT_TEXT_JS)
    warnings = [
        m.group(0) for text in outputs for m in [WARNING_TEXT.search(text)] if m
    ]
    if warnings:
        problems.append(f"{page_name}: warnings in the outputs: {warnings}")
    paths = sorted(
        {
            line.strip()[:100]
            for text in outputs
            for line in text.splitlines()
            if MACHINE_PATH.search(line)
        }
    )
    if paths:
        problems.append(
            f"{page_name}: outputs show paths of the build machine: {paths}"
        )

    # Layout: no code cell wider than the text column.
    wide = page.evaluate(WIDE_CODE_JS)
    if wide:
        problems.append(
            f"{page_name}: {len(wide)} code cell(s) scroll sideways, e.g. {wide[:3]}"
        )

    # Cross-references: all resolved, internal links lead to pages that exist, chapters by link.
    unresolved = page.evaluate(UNRESOLVED_JS)
    if unresolved:
        problems.append(f"{page_name}: unresolved references {unresolved}")
    for href in page.evaluate(INTERNAL_LINKS_JS):
        target = Path(href.split("#")[0].removeprefix("file://"))
        if href.startswith("file://") and not target.exists():
            problems.append(f"{page_name}: link to a page that does not exist: {href}")
    if page_name != "book/api":
        mentions = page.evaluate(PROSE_MENTIONS_JS, CHAPTER_MENTION.pattern)
        if mentions:
            problems.append(
                f"{page_name}: chapters named in plain text instead of a link: {mentions}"
            )

    raw_math = [marker for marker in ("\\(", "\\[", "$$") if marker in body]
    if raw_math:
        problems.append(
            f"{page_name}: formulas left untypeset (MathJax did not run): {raw_math}"
        )

    if with_exercises:
        found = page.evaluate(EXERCISES_JS)
        if not found["summary"]:
            problems.append(f"{page_name}: no 'Summary' section")
        if found["exercises"] is None:
            problems.append(f"{page_name}: no 'Exercises' section")
        else:
            if not 3 <= found["exercises"] <= 5:
                problems.append(
                    f"{page_name}: {found['exercises']} exercises, expected 3 to 5"
                )
            if found["visibleSolutions"]:
                problems.append(
                    f"{page_name}: {found['visibleSolutions']} solutions are not folded away"
                )
    return problems


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
        page.evaluate(
            "async () => { if (window.MathJax && MathJax.startup) await MathJax.startup.promise; }"
        )
        problems = page_problems(
            page, page_name, MIN_FIGURES[page_name], page_name in WITH_EXERCISES
        )
        page.screenshot(path=str(SHOTS / f"{Path(page_name).name}.png"), full_page=True)
        if page_name in ANIMATED and page.locator("main div.animation").count() == 0:
            problems.append(f"{page_name}: its animation is missing")
        if js_errors:
            problems.append(f"{page_name}: JavaScript errors {js_errors}")
        assert not problems, "\n".join(problems)

        if index + 1 < len(PAGES):
            expected = HTML / f"{PAGES[index + 1]}.html"
            link = page.locator("a.right-next")
            assert link.count() == 1, f"{page_name}: no 'next' link"
            link.click()
            page.wait_for_load_state("load")
            assert (
                Path(page.url.removeprefix("file://")).resolve() == expected.resolve()
            ), f"{page_name}: 'next' led to {page.url}, expected {expected}"
    finally:
        page.close()


# A page with one of every defect the check exists for, in the markup the book's theme produces.
BROKEN_PAGE = (
    """<html><body><main><article>
<p>As the last chapter showed, and as chapter 5 will show again.</p>
<div class="cell_input"><pre style="width: 300px; overflow-x: auto">x = """
    + '"'
    + "0" * 200
    + '"'
    + """</pre></div>
<div class="cell_output"><div class="output stderr"><pre>UserWarning: something</pre></div>
<pre>data: mirror (/home/reader/data/MNIST)</pre></div>
<p><span class="xref std std-numref">ch-nowhere</span></p>
<section id="exercises"><h2>Exercises</h2>
<div class="admonition dropdown"><p class="admonition-title">Solution</p><p>Visible.</p></div>
</section>
</article></main></body></html>"""
)


def test_the_checks_catch_every_defect_they_exist_for(browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.set_content(BROKEN_PAGE)
        problems = "\n".join(
            page_problems(page, "broken", minimum_figures=2, with_exercises=True)
        )
    finally:
        page.close()
    for expected in [
        "0 figures (0 of them animations), expected at least 2",
        "matching '.output.stderr'",
        "warnings in the outputs: ['UserWarning:']",
        "paths of the build machine: ['data: mirror (/home/reader/data/MNIST)']",
        "1 code cell(s) scroll sideways",
        "unresolved references ['ch-nowhere']",
        "chapters named in plain text",
        "no 'Summary' section",
        "1 exercises, expected 3 to 5",
        "1 solutions are not folded away",
    ]:
        assert expected in problems, f"not reported: {expected!r}\n{problems}"


def test_every_page_was_screenshotted(browser):
    names = {Path(page).name for page in PAGES}
    shots = {path.stem for path in SHOTS.glob("*.png")}
    assert names <= shots, f"missing screenshots: {sorted(names - shots)}"
