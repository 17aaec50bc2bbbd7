"""lait.extensions: the C extensions are built here, and a missing or broken one falls back to Python."""

from __future__ import annotations

import os
import sys

import pytest

from lait.extensions import compiled

EXTENSIONS = ("lait.filters._dom", "lait.scoring.dominant_image._trees")


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
