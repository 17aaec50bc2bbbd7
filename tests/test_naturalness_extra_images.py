"""bench/naturalness_extra_images.py: collage layouts tile the canvas, runs repeat for a seed, game renders
come out of Debian packages."""

import csv
import importlib.util
import io
import random
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from bench.naturalness_extra_images import collage_layout, game_renders, photo_collage
from tests.conftest import ROOT, shared_path
from tests.synthetic_images import encode


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


def fake_game_package(folder, name: str, files: dict) -> None:
    """A real .deb (dpkg-deb --build) named like the package `apt-get download` fetches."""
    root = folder / f"{name}-root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(f"Package: {name}\nVersion: 1.0\nArchitecture: all\n"
                                             "Maintainer: lait tests <tests@example.org>\nDescription: test data\n")
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    subprocess.run(["dpkg-deb", "--build", str(root), str(folder / f"{name}_1.0_all.deb")], check=True,
                   capture_output=True)


def image_bytes(colour, fmt: str) -> bytes:
    return encode(Image.new("RGB", (64, 48), colour), fmt)


def test_game_renders_are_read_from_the_debian_packages_and_their_pk3_archives(tmp_path):
    if not shutil.which("dpkg-deb"):
        pytest.skip("no dpkg-deb here: render needs a Debian system")
    pk3 = io.BytesIO()
    with zipfile.ZipFile(pk3, "w") as archive:
        archive.writestr("maps/hall.jpg", image_bytes((10, 20, 200), "JPEG"))
        archive.writestr("maps/hall/lm_0000.tga", b"lightmap, not a screenshot")
    packages = {
        "nexuiz-data": {"usr/share/games/nexuiz/data/data.pk3": pk3.getvalue()},
        "redeclipse-data": {"usr/share/games/redeclipse/data/maps/a.png": image_bytes((200, 0, 0), "PNG"),
                            "usr/share/games/redeclipse/data/maps/b.png": image_bytes((0, 200, 0), "PNG"),
                            "usr/share/games/redeclipse/data/maps/a.cfg": b"map settings"},
        "supertuxkart-data": {"usr/share/games/supertuxkart/data/tracks/cove/screenshot.jpg":
                              image_bytes((200, 200, 0), "JPEG"),
                              "usr/share/games/supertuxkart/data/tracks/cove/track.xml": b"<track/>"},
    }
    for name, files in packages.items():
        fake_game_package(tmp_path, name, files)
    renders = list(game_renders(5, random.Random(0), tmp_path))
    assert sorted(source for source, _ in renders) == ["deb:nexuiz-data", "deb:redeclipse-data",
                                                       "deb:redeclipse-data", "deb:supertuxkart-data"]
    colours = {source: [] for source, _ in renders}
    for source, image in renders:
        colours[source].append(image.convert("RGB").getpixel((5, 5)))
    assert max(abs(a - b) for a, b in zip(colours["deb:nexuiz-data"][0], (10, 20, 200))) < 12
    assert sorted(colours["deb:redeclipse-data"]) == [(0, 200, 0), (200, 0, 0)]
    assert len(list(game_renders(1, random.Random(0), tmp_path))) == 3  # at most --count from each game


def test_renders_without_debian_tools_is_a_one_line_error(tmp_path):
    bare = tmp_path / "bin"  # an empty PATH: no apt-get, no dpkg-deb
    bare.mkdir()
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "naturalness_extra_images.py"),
                           str(tmp_path / "out"), "--only", "render"], capture_output=True, text=True, cwd=ROOT,
                          env={"PATH": str(bare)})
    assert done.returncode == 2
    assert "error: render needs apt-get and dpkg-deb" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
