"""Chapters as a reader without network or mirror runs them: no warning, traceback or path.

``make check-book`` runs this file (marker ``offline_book``); CI builds the book with the
mirror, so its pages never meet the fallbacks. Each chapter of ``OFFLINE`` is executed from a
fresh kernel with an empty data folder, no mirror, an empty torch home and every download
refused by a proxy on a closed port: what a machine without network, or behind a proxy that
refuses, sees. The fallbacks take over (scikit-learn's digits for MNIST, the names shipped
with the package), and the outputs must show them calmly: no stderr output, no warning, no
error or traceback and no path of this machine, the checks the browser applies to the pages.

``test_the_check_reports_a_fallback_that_warns`` runs the same check on a notebook that loads
MNIST without the chapter preamble, so the fallback warns as it does for any library caller:
the check must report the warning and the machine path it prints.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from output_checks import MACHINE_PATH, WARNING_TEXT

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
# MNIST and the names: the two downloads with a fallback in the quick profile. Chapter 04
# loads MNIST before its training, chapter 07 the names.
OFFLINE = ["04_mnist", "07_char_cnn"]
# The discard port: every connection is refused at once.
REFUSING_PROXY = "http://127.0.0.1:9"

pytestmark = pytest.mark.offline_book


@pytest.fixture
def no_network(tmp_path, monkeypatch):
    """The environment a kernel started now inherits: no data, no mirror, no network."""
    for name in ("NBHELPERS_DATA_MIRROR", "NBHELPERS_OFFLINE", "MPLBACKEND"):
        monkeypatch.delenv(name, raising=False)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, REFUSING_PROXY)
    monkeypatch.setenv("NBHELPERS_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("NBHELPERS_PROFILE", "quick")
    monkeypatch.setenv("NBHELPERS_THREADS", "1")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "matplotlib"))
    return tmp_path


def execute(notebook) -> None:
    """Run ``notebook`` in place in a fresh kernel, in book/ (as the book build does)."""
    from nbclient import NotebookClient

    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(BOOK)}},
    )
    client.execute()


def output_problems(notebook) -> list[str]:
    """Errors, stderr, warnings and machine paths in the outputs of ``notebook``."""
    problems = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            kind = output["output_type"]
            if kind == "error":
                problems.append(f"cell {index}: {output['ename']}: {output['evalue']}")
                continue
            if kind == "stream" and output["name"] == "stderr":
                first = output["text"].strip().splitlines()[:1]
                problems.append(f"cell {index}: stderr output {first}")
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            for line in "".join(text).splitlines():
                if WARNING_TEXT.search(line):
                    problems.append(f"cell {index}: a warning: {line.strip()[:120]}")
                if MACHINE_PATH.search(line):
                    problems.append(
                        f"cell {index}: a machine path: {line.strip()[:120]}"
                    )
    return problems


@pytest.mark.parametrize("chapter", OFFLINE)
def test_a_chapter_without_network_or_mirror_shows_its_fallbacks_calmly(
    chapter, no_network
):
    import jupytext

    notebook = jupytext.read(BOOK / f"{chapter}.md")
    execute(notebook)
    problems = output_problems(notebook)
    assert not problems, "\n".join(problems)
    banner = "".join(
        "".join(output.get("text", ""))
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )
    assert "download failed: network unreachable" in banner, (
        "the fallback's reason is not shown"
    )


def test_the_check_reports_a_fallback_that_warns(no_network):
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "from nbhelpers.data import load_mnist\n"
            "print('data:', load_mnist(train=False).source)"
        )
    ]
    execute(notebook)
    problems = "\n".join(output_problems(notebook))
    assert "stderr output" in problems, problems
    assert "a warning: " in problems and "DataFallbackWarning" in problems, problems
    assert "a machine path: " in problems, problems
