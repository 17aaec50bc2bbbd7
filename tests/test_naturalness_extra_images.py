"""The collages of bench/naturalness_extra_images.py: layouts tile the canvas, runs repeat for a seed."""

import csv
import importlib.util
import random
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from bench.naturalness_extra_images import collage_layout, photo_collage
from tests.conftest import ROOT, shared_path


def test_layouts_tile_the_canvas_without_overlap():
    for seed in range(200):
        rng = random.Random(seed)
        width, height = rng.choice((480, 640, 800)), rng.randint(240, 800)
        covered = np.zeros((height, width), dtype=int)
        boxes = collage_layout(width, height, rng)
        assert len(boxes) >= 2
        for left, top, right, bottom in boxes:
            assert 0 <= left < right <= width and 0 <= top < bottom <= height
            covered[top:bottom, left:right] += 1
        assert (covered == 1).all(), f"seed {seed}: {boxes}"


def test_collage_shows_each_photo_in_its_tile():
    colours = [(200, 30, 30), (30, 200, 30)]  # every layout has two tiles or more
    photos = [Image.new("RGB", (300, 200), colour) for colour in colours]
    for seed in range(20):
        collage = np.asarray(photo_collage(photos, random.Random(seed)))
        found = {colour for colour in colours if (np.abs(collage.astype(int) - colour).sum(axis=2) < 30).any()}
        assert found == set(colours), f"seed {seed}: only {found}"


def test_collage_folder_repeats_for_a_seed_and_names_the_photos_source(tmp_path):
    natural = shared_path("natural")
    sources = {row["source_repo"] for row in csv.DictReader(open(natural / "labels.csv", encoding="utf-8"))}
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        subprocess.run([sys.executable, str(ROOT / "bench" / "naturalness_extra_images.py"), str(folder),
                        "--only", "collage", "--count", "6"], check=True, capture_output=True, cwd=ROOT)
    rows = list(csv.DictReader(open(folders[0] / "labels.csv", encoding="utf-8")))
    assert len(rows) == 6
    for row in rows:
        assert row["label"] == "other" and row["kind"] == "collage"
        assert row["source_repo"].removeprefix("collage:") in sources
        assert (folders[0] / row["path"]).read_bytes() == (folders[1] / row["path"]).read_bytes()
        assert min(Image.open(folders[0] / row["path"]).size) >= 240


def test_a_missing_game_engine_is_a_one_line_error(tmp_path):
    if importlib.util.find_spec("vizdoom") is not None:
        pytest.skip("vizdoom is installed here: the error it would give cannot show")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "naturalness_extra_images.py"), str(tmp_path),
                           "--only", "doom"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2
    assert "error: no module vizdoom: pip install vizdoom" in done.stderr and "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir())
