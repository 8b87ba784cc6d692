"""The chapters the test run executed, handed to the book build: one execution per chapter.

``make test`` calls ``python book/_ext/executions.py prepare book/01_*.md ...`` first. That
writes each chapter as a notebook into ``.test-run/book/`` (jupytext, as ``make
notebooks`` does), where nbmake executes it in place (``--overwrite``), and records the run's
context in ``.test-run/context.json``: a digest of the code (the package, the tests,
the benchmarks) and the settings that change what a chapter prints (profile, device, data
folder, mirror, offline mode, torch's version). The hostile suite writes its report beside
it, in ``.test-run/reliability/``, for the Reliability page. (Not under ``_build/``: nbmake
skips every notebook whose path has a ``_build`` folder in it.)

As a Sphinx extension (``_config.yml``), at the start of every book build:

- myst-nb's execution cache is emptied, so nothing an earlier build executed is reused;
- when the test run's context is this build's, every chapter that nbmake executed to the end
  without an error goes into the cache under the key myst-nb computes (the chapter's code as
  myst-nb reads it), and jupyter-book renders it without executing it again
  (``execute_notebooks: cache``). A chapter edited since has another key: it is executed;
- otherwise (other code, another profile, a failed run) the test run's folder is removed,
  since its executions and reports describe something else, and the build executes every
  chapter itself, as ``make book`` alone always does.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST_RUN = ROOT / ".test-run"
CONTEXT = TEST_RUN / "context.json"
# What the chapters' outputs depend on besides their own code, which is the cache's key.
CODE = ("nbhelpers/**/*", "tests/**/*.py", "benchmarks/**/*.py", "pyproject.toml")


def code_digest(root: Path = ROOT) -> str:
    """sha256 over the relative paths and contents of the files ``CODE`` names."""
    digest = hashlib.sha256()
    files = {
        path
        for pattern in CODE
        for path in root.glob(pattern)
        if path.is_file() and "__pycache__" not in path.parts
    }
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def run_context() -> dict[str, str]:
    """The code's digest and the settings a chapter's outputs depend on, in this process."""
    import torch

    from nbhelpers import storage
    from nbhelpers.device import get_device, profile

    return {
        "code": code_digest(),
        "profile": profile(),
        "device": get_device().type,
        "data": str(storage.data_dir()),
        "mirror": str(storage.mirror_dir() or ""),
        "offline": str(storage.offline()),
        "torch": torch.__version__,
    }


def prepare(chapters: list[Path]) -> None:
    """A fresh ``.test-run``: the chapters as notebooks, and the context of this run."""
    import jupytext

    shutil.rmtree(TEST_RUN, ignore_errors=True)
    (TEST_RUN / "book").mkdir(parents=True)
    for chapter in chapters:
        notebook = jupytext.read(chapter)
        jupytext.write(notebook, TEST_RUN / "book" / f"{chapter.stem}.ipynb")
    CONTEXT.write_text(json.dumps(run_context(), indent=1) + "\n")


# ---- the book build ------------------------------------------------------------------------


def executed_problem(notebook) -> str:
    """Why ``notebook`` is not a complete, successful execution; "" when it is."""
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    if all(cell.execution_count is None for cell in code):
        return "the test run did not execute it"
    for index, cell in enumerate(code):
        if any(output.get("output_type") == "error" for output in cell.outputs):
            return f"its code cell {index} raised an error in the test run"
        if cell.source.strip() and cell.execution_count is None:
            return f"the test run stopped before its code cell {index}"
    return ""


def merged(read, executed) -> tuple[object | None, str]:
    """``read`` (a chapter as myst-nb reads it) with the outputs of ``executed``; or why not."""
    problem = executed_problem(executed)
    if problem:
        return None, problem
    mine = [cell for cell in read.cells if cell.cell_type == "code"]
    theirs = [cell for cell in executed.cells if cell.cell_type == "code"]
    if len(mine) != len(theirs):
        return None, f"{len(theirs)} code cells executed, the chapter has {len(mine)}"
    for index, (cell, done) in enumerate(zip(mine, theirs)):
        if cell.source.rstrip() != done.source.rstrip():
            return None, f"code cell {index} differs from the chapter's"
        cell.outputs = done.outputs
        cell.execution_count = done.execution_count
    for key in ("language_info", "widgets"):
        if key in executed.metadata:
            read.metadata[key] = executed.metadata[key]
    return read, ""


def execution_seconds(notebook) -> float | None:
    """Seconds from the first cell's start to the last cell's end (nbclient's timings)."""
    stamps = [
        cell.metadata.get("execution", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
    ]
    starts = [s["iopub.status.busy"] for s in stamps if "iopub.status.busy" in s]
    ends = [s["iopub.status.idle"] for s in stamps if "iopub.status.idle" in s]
    if not starts or not ends:
        return None
    start, end = (
        datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (starts[0], ends[-1])
    )
    return (end - start).total_seconds()


def reuse_test_run(app) -> None:
    """Empty myst-nb's cache and fill it with the test run's chapters when they are current."""
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from myst_nb.core.read import create_nb_reader
    from sphinx.util import logging

    log = logging.getLogger(__name__)
    env = app.env
    if env.mystnb_config.execution_mode != "cache":
        return
    cache = get_cache(env.mystnb_config.execution_cache_path)
    cache.clear_cache()
    if not CONTEXT.is_file():
        log.info("executions: no test run; every chapter is executed")
        return
    recorded = json.loads(CONTEXT.read_text())
    current = run_context()
    changed = sorted(key for key in current if recorded.get(key) != current[key])
    if changed:
        log.info(
            f"executions: the test run had another {', '.join(changed)}; "
            "its folder is removed and every chapter is executed"
        )
        shutil.rmtree(TEST_RUN, ignore_errors=True)
        return
    for path in sorted((TEST_RUN / "book").glob("*.ipynb")):
        source = ROOT / "book" / f"{path.stem}.md"
        if not source.is_file():
            continue
        text = source.read_text(encoding="utf-8")
        reader = create_nb_reader(str(source), env.myst_config, env.mystnb_config, text)
        notebook, problem = merged(reader.read(text), nbformat.read(path, 4))
        if notebook is None:
            log.info(f"executions: {path.stem} is executed: {problem}")
            continue
        bundle = CacheBundleIn(
            notebook,
            str(source),
            data={"execution_seconds": execution_seconds(nbformat.read(path, 4))},
        )
        cache.cache_notebook_bundle(bundle, check_validity=False, overwrite=True)
        log.info(f"executions: {path.stem} as the test run executed it")


def setup(app):
    # after myst-nb has made its configuration (also on builder-inited)
    app.connect("builder-inited", reuse_test_run, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "prepare":
        sys.exit("usage: python book/_ext/executions.py prepare CHAPTER.md ...")
    prepare([Path(name) for name in sys.argv[2:]])
