"""nbhelpers.data exports names lazily; none may be shadowed by a submodule of the same name."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import nbhelpers.data as data
from nbhelpers import storage


def _submodule_names() -> set[str]:
    return {module.name for module in pkgutil.iter_modules(data.__path__)} | {"files"}


def test_no_export_is_also_the_name_of_a_submodule():
    clashes = sorted(set(data.__all__) & _submodule_names())
    assert clashes == []


def test_every_export_resolves_to_its_object_after_every_submodule_was_imported():
    for name in sorted(_submodule_names() - {"files"}):
        importlib.import_module(f"nbhelpers.data.{name}")
    for name in data.__all__:
        module = importlib.import_module(data._MODULE_OF[name])
        assert getattr(data, name) is getattr(module, name), name
        assert not isinstance(getattr(data, name), type(data)), f"{name} is a module"


def test_the_issue_example_in_a_fresh_interpreter():
    code = (
        "from nbhelpers import data\n"
        "import nbhelpers.data.mnist, nbhelpers.data.names\n"
        "assert callable(data.download) and data.download is __import__('nbhelpers.storage').storage.download\n"
        "assert callable(data.load_mnist) and callable(data.load_names)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=None)


def test_storage_names_are_the_storage_objects():
    assert data.download is storage.download and data.DataSource is storage.DataSource


def test_unknown_names_raise_attribute_error():
    try:
        data.histopathology_root  # noqa: B018 (removed: sizes are explicit now)
    except AttributeError as error:
        assert "histopathology_root" in str(error)
    else:
        raise AssertionError("histopathology_root is still exported")
