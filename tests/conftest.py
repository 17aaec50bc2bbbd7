"""Shared fixtures: where ../shared is, and skips with a clear message when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LAIT_SHARED", ROOT.parent / "shared"))
SHARED_DATA = SHARED / "data"


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test when it is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs ../shared/data/{'/'.join(parts)} (the shared test data beside the repo), absent here")
    return path


def shared_pages():
    """`(row, HTML bytes)` of every page of ../shared/data/mainimage and pages (skips without them)."""
    import gzip
    import json

    for folder, index in (("mainimage", "labels.jsonl"), ("pages", "index.jsonl")):
        directory = shared_path(folder)
        with open(directory / index, encoding="utf-8") as f:
            for row in map(json.loads, f):
                content = (directory / row["path"]).read_bytes()
                yield row, gzip.decompress(content) if row["path"].endswith(".gz") else content


def tag_soup(rng, tags: list[str], words: list[str], singles: list[str], attributes: tuple[str, ...] = ("",),
             single_share: float = 0.15, depth: int = 6) -> str:
    """Random markup: up to five pieces, each a word, a single element or an element of `tags`
    (with one of `attributes`) around more of the same, nested `depth` levels at most."""
    parts = []
    for _ in range(rng.randint(1, 5)):
        roll = rng.random()
        if roll < 0.35:
            parts.append(rng.choice(words))
        elif roll < 0.35 + single_share:
            parts.append(rng.choice(singles))
        elif depth > 0:
            tag, inner = rng.choice(tags), tag_soup(rng, tags, words, singles, attributes, single_share, depth - 1)
            parts.append(f"<{tag}{rng.choice(attributes)}>{inner}</{tag}>{rng.choice(words)}")
    return "".join(parts)


@pytest.fixture
def shared_data() -> Path:
    return shared_path()
