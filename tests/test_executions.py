"""The test run's chapters feed the book build: found under myst-nb's key, only when current.

``book/_ext/executions.py`` puts the notebooks nbmake executed into myst-nb's execution cache.
These tests check the three things that make that safe: the notebook cached is found under the
key myst-nb computes when it reads the chapter (and an edited chapter is not), a run that did
not finish or failed is never cached, and a test run of other code or settings is discarded.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import jupytext
import nbformat
import pytest
import yaml
from jupyter_cache import get_cache
from myst_nb.core.config import NbParserConfig
from myst_nb.core.read import create_nb_reader
from myst_parser.config.main import MdParserConfig

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))


def _load_executions():
    path = ROOT / "book" / "_ext" / "executions.py"
    spec = importlib.util.spec_from_file_location("executions", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


executions = _load_executions()


def md_config() -> MdParserConfig:
    """The Markdown settings of _config.yml, as myst-nb reads the chapters with them."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return MdParserConfig(
        enable_extensions=set(config["parse"]["myst_enable_extensions"])
    )


def read_as_myst_nb(path: Path, text: str | None = None):
    text = path.read_text(encoding="utf-8") if text is None else text
    reader = create_nb_reader(str(path), md_config(), NbParserConfig(), text)
    return reader.read(text)


def fake_execution(path: Path):
    """The chapter as nbmake would leave it: every code cell run, one output each."""
    notebook = jupytext.read(path)
    for count, cell in enumerate(c for c in notebook.cells if c.cell_type == "code"):
        cell.execution_count = count + 1
        cell.outputs = [nbformat.v4.new_output("stream", text=f"cell {count}\n")]
        cell.metadata["execution"] = {
            "iopub.status.busy": f"2026-01-01T00:00:{count:02d}.000000Z",
            "iopub.status.idle": f"2026-01-01T00:00:{count + 1:02d}.500000Z",
        }
    return notebook


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.stem)
def test_an_executed_chapter_is_found_under_the_key_myst_nb_computes(chapter, tmp_path):
    cache = get_cache(tmp_path / "cache")
    notebook, problem = executions.merged(
        read_as_myst_nb(chapter), fake_execution(chapter)
    )
    assert problem == ""
    _cache(cache, notebook, chapter)
    _, rendered = cache.merge_match_into_notebook(read_as_myst_nb(chapter))
    code = [cell for cell in rendered.cells if cell.cell_type == "code"]
    assert code[0].outputs[0]["text"] == "cell 0\n"

    # the key follows the chapter's code: an edited code cell is executed again
    text = chapter.read_text(encoding="utf-8")
    edited = text.replace(
        "```{code-cell} ipython3\n", "```{code-cell} ipython3\n1\n", 1
    )
    with pytest.raises(KeyError):
        cache.match_cache_notebook(read_as_myst_nb(chapter, edited))


def _cache(cache, notebook, chapter: Path) -> None:
    from jupyter_cache.base import CacheBundleIn

    cache.cache_notebook_bundle(
        CacheBundleIn(notebook, str(chapter)), check_validity=False
    )


def test_only_complete_successful_executions_are_used():
    chapter = ROOT / "book" / "03_training_engine.md"
    complete = fake_execution(chapter)
    assert executions.executed_problem(complete) == ""
    assert executions.execution_seconds(complete) > 0

    untouched = jupytext.read(chapter)
    assert "did not execute" in executions.executed_problem(untouched)

    failed = fake_execution(chapter)
    code = [cell for cell in failed.cells if cell.cell_type == "code"]
    code[2].outputs.append(nbformat.v4.new_output("error", ename="E", evalue="x"))
    assert "code cell 2 raised an error" in executions.executed_problem(failed)
    notebook, problem = executions.merged(read_as_myst_nb(chapter), failed)
    assert notebook is None and problem

    stopped = fake_execution(chapter)
    [cell for cell in stopped.cells if cell.cell_type == "code"][
        -1
    ].execution_count = None
    assert "stopped before" in executions.executed_problem(stopped)

    other = fake_execution(ROOT / "book" / "08_engine_appendix.md")
    notebook, problem = executions.merged(read_as_myst_nb(chapter), other)
    assert notebook is None and ("code cell" in problem or "cells executed" in problem)


def test_the_code_digest_follows_the_package_not_the_chapters(tmp_path):
    for name in ("nbhelpers/a.py", "tests/test_a.py", "book/01_a.md", "pyproject.toml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    before = executions.code_digest(tmp_path)
    (tmp_path / "book" / "01_a.md").write_text("changed\n")
    assert executions.code_digest(tmp_path) == before
    (tmp_path / "nbhelpers" / "a.py").write_text("x = 2\n")
    assert executions.code_digest(tmp_path) != before


def fake_app(tmp_path: Path):
    nb_config = NbParserConfig(
        execution_mode="cache", execution_cache_path=str(tmp_path / "cache")
    )
    return SimpleNamespace(
        env=SimpleNamespace(mystnb_config=nb_config, myst_config=md_config())
    )


@pytest.fixture
def test_run(tmp_path, monkeypatch):
    """A test run in tmp_path/.test-run: chapter 03 executed, chapter 08 failed."""
    folder = tmp_path / ".test-run"
    (folder / "book").mkdir(parents=True)
    monkeypatch.setattr(executions, "TEST_RUN", folder)
    monkeypatch.setattr(executions, "CONTEXT", folder / "context.json")
    monkeypatch.setattr(
        executions, "run_context", lambda: {"code": "a", "profile": "quick"}
    )
    for name in ("03_training_engine", "08_engine_appendix"):
        notebook = fake_execution(ROOT / "book" / f"{name}.md")
        if name.startswith("08"):
            last = [cell for cell in notebook.cells if cell.cell_type == "code"][-1]
            last.outputs = [nbformat.v4.new_output("error", ename="E", evalue="x")]
        nbformat.write(notebook, folder / "book" / f"{name}.ipynb")
    return folder


def test_a_current_test_run_fills_the_emptied_cache_with_its_good_chapters(
    tmp_path, test_run
):
    app = fake_app(tmp_path)
    cache = get_cache(app.env.mystnb_config.execution_cache_path)
    earlier = ROOT / "book" / "01_convolution.md"
    notebook, _ = executions.merged(read_as_myst_nb(earlier), fake_execution(earlier))
    _cache(cache, notebook, earlier)
    (test_run / "context.json").write_text(
        json.dumps({"code": "a", "profile": "quick"})
    )
    executions.reuse_test_run(app)
    cache = get_cache(app.env.mystnb_config.execution_cache_path)  # as myst-nb opens it
    cached = {Path(record.uri).stem for record in cache.list_cache_records()}
    assert cached == {"03_training_engine"}  # 01 was an earlier build's; 08 failed


def test_a_test_run_of_other_code_or_settings_is_removed(tmp_path, test_run):
    app = fake_app(tmp_path)
    (test_run / "context.json").write_text(json.dumps({"code": "a", "profile": "full"}))
    executions.reuse_test_run(app)
    assert not test_run.exists()
    assert (
        get_cache(app.env.mystnb_config.execution_cache_path).list_cache_records() == []
    )
