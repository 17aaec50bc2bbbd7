"""lait's optional C extensions: each compiled module, or None where it cannot be used.

setup.py builds them where there is a C compiler: `lait.filters._dom` (the page walks of
ParsePages, and the caption and headline walks of each candidate image) and `lait.scoring.dominant_image._trees` (the ranker's tree walk). Each has a
Python definition beside it that it must equal (the tests compare them), which runs where the
extension was not built, or with LAIT_NO_EXTENSIONS=1 (to tell whether a difference comes from
an extension).
"""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType


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
