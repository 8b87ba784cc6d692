"""Fixtures of the hostile suite (see harness.py), and the list of cases a recorded run holds.

With ``NBHELPERS_RELIABILITY_RECORD`` naming a folder (``make test`` points it into
``.test-run/reliability``), ``run_case`` appends what each case observed to a JSON-lines
file there, and this file writes ``collected.json``: the ids of every case the run collected.
The book's Reliability page uses the records only when every collected case has one, so a run
that was stopped halfway or selected a few cases is not mistaken for the suite.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from harness import RECORD_ENV, Case, workspace  # noqa: F401 (a fixture, used by name)

COLLECTED = "collected.json"


def pytest_collection_finish(session: pytest.Session) -> None:
    folder = os.environ.get(RECORD_ENV)
    if not folder:
        return
    params = [getattr(item, "callspec", None) for item in session.items]
    cases = sorted(
        spec.params["case"].id
        for spec in params
        if spec is not None and isinstance(spec.params.get("case"), Case)
    )
    Path(folder).mkdir(parents=True, exist_ok=True)
    # every xdist worker collects the same cases: each replaces the file whole
    handle, name = tempfile.mkstemp(dir=folder, prefix=".collected.", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump({"cases": cases}, out)
    os.replace(name, Path(folder) / COLLECTED)
