"""Sphinx extension: code and outputs in a font size at which an 88-character line fits the page.

sphinx-book-theme sets code in 14px monospace, so that only about 77 characters fit the text
column of a 1280-pixel-wide window and longer lines scroll sideways. ``static/code-width.css``
sets code, outputs and literal blocks in 12px; ``tests/test_rendered_book.py`` checks in Chromium
that no code cell scrolls.
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"


def _add_static_path(app, config) -> None:
    config.html_static_path.append(str(STATIC))


def setup(app):
    app.connect("config-inited", _add_static_path)
    app.add_css_file("code-width.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
