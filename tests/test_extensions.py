"""lait.extensions: the C extensions are built here, and a missing or broken one falls back to Python;
a module compiled from its .py runs compiled only while the .py is the one it was compiled from."""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import subprocess
import sys
import textwrap

import pytest

import lait
from lait.extensions import SOURCES_FILE, compiled, compiled_sources, source_hash

EXTENSIONS = ("lait.filters._dom", "lait.scoring.dominant_image._trees")


def _setup_compiled_sources() -> list[str]:
    """The modules of setup.py's COMPILED_SOURCES."""
    import ast

    with open(os.path.join(os.path.dirname(os.path.dirname(lait.__file__)), "setup.py"), encoding="utf-8") as f:
        for node in ast.parse(f.read()).body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "COMPILED_SOURCES":
                return [os.path.splitext(path)[0].replace("/", ".") for path in ast.literal_eval(node.value)]
    raise AssertionError("setup.py has no COMPILED_SOURCES")


@pytest.mark.parametrize("name", EXTENSIONS)
def test_extensions_are_built(name):
    if os.environ.get("LAIT_NO_EXTENSIONS"):
        pytest.skip("LAIT_NO_EXTENSIONS is set: lait runs the extensions' Python definitions")
    assert compiled(name) is not None, (f"lait's C extension {name} is not built: `make install` builds it (needs a "
                                        "C compiler); LAIT_NO_EXTENSIONS=1 runs the tests without it")


def test_no_extensions_switch_turns_them_off(monkeypatch):
    monkeypatch.setenv("LAIT_NO_EXTENSIONS", "1")
    assert all(compiled(name) is None for name in EXTENSIONS)


def test_an_extension_not_built_is_none(monkeypatch):
    monkeypatch.delenv("LAIT_NO_EXTENSIONS", raising=False)
    assert compiled("lait.filters._not_built") is None


def test_an_extension_that_does_not_load_warns_and_is_none(tmp_path, monkeypatch):
    monkeypatch.delenv("LAIT_NO_EXTENSIONS", raising=False)
    (tmp_path / "lait_broken_extension.py").write_text("raise ValueError('built against another lxml')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(UserWarning, match="does not load .*built against another lxml.*make install"):
        assert compiled("lait_broken_extension") is None
    sys.modules.pop("lait_broken_extension", None)


def test_compiled_sources_are_built_current_and_imported():
    if os.environ.get("LAIT_NO_EXTENSIONS"):
        pytest.skip("LAIT_NO_EXTENSIONS is set: lait runs the modules' .py")
    found = compiled_sources(os.path.dirname(lait.__file__), "lait")
    for name in _setup_compiled_sources():
        assert found.get(name, ("", False))[1], (f"{name} is not compiled from its .py as it is: `make` builds it "
                                                 "(needs a C compiler); LAIT_NO_EXTENSIONS=1 runs the tests without it")
        assert importlib.import_module(name).__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def _import_in_child(package_root, **env) -> subprocess.CompletedProcess:
    """Which file `package.module` is imported from, and its WHO, after run_current_sources."""
    code = ("from lait.extensions import run_current_sources; "
            f"run_current_sources({str(package_root / 'package')!r}, 'package'); "
            "import package.module as m; print(m.__file__); print(m.WHO)")
    environment = {name: value for name, value in os.environ.items() if name != "LAIT_NO_EXTENSIONS"}
    environment.update(PYTHONPATH=str(package_root), **env)
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)


def test_a_compiled_module_runs_its_source_once_the_source_changes(tmp_path):
    pytest.importorskip("Cython")
    package = tmp_path / "package"
    package.mkdir()
    (package / "__init__.py").write_text("")
    source = package / "module.py"
    source.write_text('WHO = "first version"\n')
    build = textwrap.dedent("""
        from setuptools import Extension, setup
        from Cython.Build import cythonize
        setup(ext_modules=cythonize([Extension("package.module", ["package/module.py"])], quiet=True),
              script_args=["build_ext", "--inplace"])
    """)
    subprocess.run([sys.executable, "-c", build], cwd=tmp_path, capture_output=True, check=True)
    (package / SOURCES_FILE).write_text(f'{{"package.module": "{source_hash(str(source))}"}}')

    compiled_run = _import_in_child(tmp_path)
    file, who = compiled_run.stdout.split("\n")[:2]
    assert file.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)) and who == "first version"
    assert not compiled_run.stderr
    switched_off = _import_in_child(tmp_path, LAIT_NO_EXTENSIONS="1")
    assert switched_off.stdout.split("\n")[:2] == [str(source), "first version"] and not switched_off.stderr

    source.write_text('WHO = "edited"\n')  # the compiled copy is now stale
    edited = _import_in_child(tmp_path)
    assert edited.stdout.split("\n")[:2] == [str(source), "edited"]
    assert "package.module: not compiled from the .py as it is now" in edited.stderr and "make" in edited.stderr
