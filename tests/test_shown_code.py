"""The reader's budget for package code the book shows with ``literalinclude``.

What a page shows is the idea in plain lines (DESIGN.md, "Two audiences"): every function a
chapter pulls in has a body of at most 30 code lines, at most one line of argument checking (a
call into the module that holds the checks, or one ``raise``), a short docstring, and lines
that fit the book's 88-column code blocks. A class shown whole (the Trainer core) fits on one
screen. The test reads the directives of every page, so the budget cannot quietly come back.
"""

from __future__ import annotations

import ast
import re

import pytest
from code_budget import ROOT, Shown, body_code_lines, docstring_lines, shown_objects

MAX_BODY_LINES = 30
MAX_CHECK_LINES = 1
MAX_DOCSTRING_LINES = 15
MAX_CLASS_LINES = 130
WIDTH = 88

SHOWN = shown_objects()


def _id(shown: Shown) -> str:
    return f"{shown.chapter}:{shown.name}"


def _check_lines(function: ast.AST) -> list[int]:
    """Lines that check arguments: ``raise`` statements and calls of ``check...`` functions."""
    lines = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Raise):
            lines.add(node.lineno)
        elif isinstance(node, ast.Call):
            func = node.func
            name = (
                func.attr
                if isinstance(func, ast.Attribute)
                else getattr(func, "id", "")
            )
            owner = getattr(func, "value", None)
            if name.startswith("check") or getattr(owner, "id", None) == "checks":
                lines.add(node.lineno)
    return sorted(lines)


def test_the_book_shows_package_code():
    # the pages that teach with package code still do (a renamed object fails loudly above)
    chapters = {shown.chapter for shown in SHOWN}
    assert {"01_convolution.md", "03_training_engine.md", "04_mnist.md"} <= chapters
    assert any(shown.name == "TrainerCore" for shown in SHOWN)


@pytest.mark.parametrize("shown", SHOWN, ids=_id)
def test_shown_functions_fit_the_reader_budget(shown):
    for function in shown.functions():
        body = body_code_lines(function, shown.source)
        where = f"{shown.path.name}: {function.name}"
        assert len(body) <= MAX_BODY_LINES, f"{where} has {len(body)} code lines"
        checks = _check_lines(function)
        assert len(checks) <= MAX_CHECK_LINES, f"{where} checks on lines {checks}"
        doc = docstring_lines(function)
        assert doc <= MAX_DOCSTRING_LINES, f"{where} has a {doc}-line docstring"


@pytest.mark.parametrize("shown", SHOWN, ids=_id)
def test_shown_code_fits_the_page(shown):
    first = shown.node.lineno - len(getattr(shown.node, "decorator_list", []))
    lines = shown.source[first - 1 : shown.node.end_lineno]
    wide = [line for line in lines if len(line) > WIDTH]
    assert not wide, f"{shown.name}: {len(wide)} lines wider than {WIDTH}: {wide[0]!r}"
    if shown.is_class:
        assert shown.lines() <= MAX_CLASS_LINES, f"{shown.name}: {shown.lines()} lines"


def test_the_budget_catches_a_long_guarded_function(tmp_path):
    # a test of the test: a shown function with a wall of checks fails the budget
    module = tmp_path / "walled.py"
    checks = "\n".join(
        f"    if x == {i}:\n        raise ValueError('{i}')" for i in range(16)
    )
    module.write_text(f"def walled(x):\n    '''Doc.'''\n{checks}\n    return x\n")
    page = tmp_path / "book"
    page.mkdir()
    (page / "p.md").write_text(
        "```{literalinclude} ../walled.py\n:pyobject: walled\n```\n"
    )
    (shown,) = shown_objects(page)
    function = shown.functions()[0]
    assert len(body_code_lines(function, shown.source)) == 33
    assert len(_check_lines(function)) == 16


PAGES = sorted((ROOT / "book").glob("*.md"))


@pytest.mark.parametrize("page", PAGES, ids=[page.stem for page in PAGES])
def test_code_cells_fit_the_page(page):
    """The code cells too: a line over 88 columns makes the rendered block scroll sideways
    (the browser check finds it only after the book is built)."""
    wide, inside = [], False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```{code-cell}"):
            inside = True
        elif inside and line.startswith("```"):
            inside = False
        elif inside and len(line) > WIDTH:
            wide.append(f"line {number}: {line}")
    assert not wide, f"{page.name}: code lines wider than {WIDTH}: {wide}"


CHAPTER_MENTION = re.compile(
    r"\bchapters?\s+0?\d\b|\b(last|previous|next|preceding) chapter\b", re.IGNORECASE
)
ROLE = re.compile(r"\{(numref|doc|ref)\}`[^`]*`")


@pytest.mark.parametrize("page", PAGES, ids=[page.stem for page in PAGES])
def test_chapters_are_named_by_link(page):
    """Prose names a chapter with {numref}, so the number follows the table of contents
    (the browser check applies the same rule to the rendered text)."""
    found, fenced = [], False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith(("```", "~~~")):
            fenced = (
                not fenced if line.strip() in ("```", "~~~") or not fenced else fenced
            )
            continue
        text = ROLE.sub("", line)
        if not fenced and CHAPTER_MENTION.search(text):
            found.append(f"line {number}: {line}")
    assert not found, f"{page.name}: chapters named in plain text: {found}"
