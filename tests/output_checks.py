"""What no output of the book may show: shared by the browser check and the offline check."""

from __future__ import annotations

import re

# Absolute paths of the machine that built the book, as they would appear in printed output.
MACHINE_PATH = re.compile(r"(?<![\w.])(/work|/home|/root|/tmp|/Users)/")
WARNING_TEXT = re.compile(r"\b\w*Warning:|\bfindfont:|\bWARNING\b")
