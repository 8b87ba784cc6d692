"""Sphinx extension: drop repeated <script> entries from every HTML page.

sphinx-thebe (loaded by Jupyter Book) registers its inline configuration script once per
``env-before-read-docs`` event, and that event fires twice in a Jupyter Book build; the second copy
redeclares a ``const`` and raises a JavaScript error on every page. The book uses no Thebe launch
buttons, so keeping the first copy of each script is enough.
"""

from __future__ import annotations


def _dedupe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen = set()
    unique = []
    for script in scripts:
        # Same file and attributes: the same script (inline ones have filename None or "").
        key = (
            str(getattr(script, "filename", script) or ""),
            repr(sorted(getattr(script, "attributes", {}).items())),
        )
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
