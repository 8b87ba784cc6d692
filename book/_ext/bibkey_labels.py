"""Sphinx extension: cite references by their BibTeX key, e.g. [SDBR14], as the source notes do.

Registers a pybtex label style "bibkey" and a formatting style "alpha_bibkey" (alpha with key
labels); _config.yml selects it through ``bibtex_default_style``.
"""

from __future__ import annotations

from pybtex.plugin import register_plugin
from pybtex.style.formatting.alpha import Style as AlphaStyle
from pybtex.style.labels import BaseLabelStyle


class KeyLabelStyle(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        for entry in sorted_entries:
            yield entry.key


class KeyLabelAlphaStyle(AlphaStyle):
    default_label_style = "bibkey"


def setup(app):
    register_plugin("pybtex.style.labels", "bibkey", KeyLabelStyle)
    register_plugin("pybtex.style.formatting", "alpha_bibkey", KeyLabelAlphaStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
