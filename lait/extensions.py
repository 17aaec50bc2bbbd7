"""lait's optional C extensions: each compiled module, or None where it cannot be used; and the
Python modules compiled as they are, run from their source wherever it changed since.

setup.py builds them where there is a C compiler:

- `lait.filters._dom` (the page walks of ParsePages, and the caption, headline and ancestor
  walks of each candidate image) and `lait.scoring.dominant_image._trees` (the ranker's tree
  walk), found with :func:`compiled`. Each has a Python definition beside it that it must
  equal (the tests compare them), which runs where the extension was not built, or with
  LAIT_NO_EXTENSIONS=1 (to tell whether a difference comes from an extension).
- Some modules' own `.py` (setup.py's `COMPILED_SOURCES`: the candidate images' features),
  compiled with Cython as they are. Python imports such a compiled copy instead of the `.py`;
  :func:`run_current_sources` (run when `lait` is imported) makes it import the `.py` wherever
  the copy was compiled from another version of it (an edit since the build: a warning says
  how to rebuild) or LAIT_NO_EXTENSIONS is set. Which version was compiled is in
  :data:`SOURCES_FILE`, written by the build.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from types import ModuleType

# Beside the package's __init__.py: {module: SHA-256 of the .py it was compiled from}.
SOURCES_FILE = "compiled_sources.json"


def compiled(name: str) -> ModuleType | None:
    """The extension module `name`, or None: not built, turned off by LAIT_NO_EXTENSIONS, or
    not loadable (built against another version of a library: a warning says how to rebuild)."""
    if os.environ.get("LAIT_NO_EXTENSIONS"):
        return None
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:  # not built: no C compiler where lait was installed
        return None
    except Exception as error:  # noqa: BLE001 - a broken build is slower, never wrong: the Python runs
        warnings.warn(f"lait's C extension {name} does not load ({error}); rebuild it with `make install` or "
                      "`python setup.py build_ext --inplace`. Its Python definition runs meanwhile.", stacklevel=2)
        return None


def source_hash(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def compiled_sources(package_dir: str, package: str) -> dict[str, tuple[str, bool]]:
    """`{module: (path of its .py, current)}` of the package's modules compiled from a `.py`
    beside them (`features.py` and `features.cpython-311-x86_64-linux-gnu.so`); `current` when
    :data:`SOURCES_FILE` says the compiled copy was built from the `.py` as it is now."""
    try:
        with open(os.path.join(package_dir, SOURCES_FILE), encoding="utf-8") as f:
            built = json.load(f)
    except (OSError, ValueError):  # none recorded: no compiled copy counts as current
        built = {}
    found = {}
    for folder, _, files in os.walk(package_dir):
        relative = os.path.relpath(folder, package_dir)
        prefix = package if relative == "." else ".".join([package, *relative.split(os.sep)])
        for file in files:
            suffix = next((s for s in importlib.machinery.EXTENSION_SUFFIXES if file.endswith(s)), None)
            source = os.path.join(folder, file[:-len(suffix)] + ".py") if suffix else None
            if source and os.path.exists(source):
                module = f"{prefix}.{file[:-len(suffix)]}"
                found[module] = (source, built.get(module) == source_hash(source))
    return found


class SourceFinder(importlib.abc.MetaPathFinder):
    """Finds the given modules at their `.py`, ahead of a compiled copy beside it."""

    def __init__(self, sources: dict[str, str]):
        self.sources = sources

    def find_spec(self, name, path=None, target=None):
        source = self.sources.get(name)
        return importlib.util.spec_from_file_location(name, source) if source else None


def run_current_sources(package_dir: str = os.path.dirname(os.path.abspath(__file__)), package: str = "lait"
                        ) -> dict[str, str]:
    """Make the package's compiled modules import from their `.py` where the compiled copy is not
    current (all of them with LAIT_NO_EXTENSIONS); returns `{module: source}` of those."""
    found = compiled_sources(package_dir, package)
    off = bool(os.environ.get("LAIT_NO_EXTENSIONS"))
    sources = {module: source for module, (source, current) in found.items() if off or not current}
    if sources and not off:
        warnings.warn(f"{', '.join(sorted(sources))}: not compiled from the .py as it is now (edited since the "
                      "build?); lait runs the .py, slower. Rebuild with `make` or `python setup.py build_ext "
                      "--inplace`.", stacklevel=2)
    if sources:
        sys.meta_path.insert(0, SourceFinder(sources))
    return sources
