"""bench/quality_naturalness_web.py's held-out charts: matplotlib's baseline images FilterImages would pass."""

import io
import tarfile

from PIL import Image

from bench.quality_naturalness_web import baseline_charts
from tests.synthetic_images import encode


def png(width: int, height: int) -> bytes:
    return encode(Image.new("RGB", (width, height), (255, 255, 255)))


SDIST = {
    "matplotlib-9.9/lib/matplotlib/tests/baseline_images/test_axes/plot.png": png(640, 480),
    "matplotlib-9.9/lib/mpl_toolkits/mplot3d/tests/baseline_images/test_axes3d/surface.png": png(400, 301),
    "matplotlib-9.9/lib/matplotlib/tests/baseline_images/test_axes/thin.png": png(640, 300),  # FilterImages drops it
    "matplotlib-9.9/lib/matplotlib/tests/baseline_images/test_axes/strip.png": png(1000, 320),  # and this (aspect)
    "matplotlib-9.9/lib/matplotlib/tests/baseline_images/pngsuite/basn2c16.png": png(32, 32),
    "matplotlib-9.9/doc/_static/stinkbug.png": png(500, 375),  # a photo, outside the test baselines
    "matplotlib-9.9/lib/matplotlib/tests/baseline_images/test_axes/plot.pdf": b"%PDF-1.4",
}
KEPT = ["matplotlib-9.9/lib/matplotlib/tests/baseline_images/test_axes/plot.png",
        "matplotlib-9.9/lib/mpl_toolkits/mplot3d/tests/baseline_images/test_axes3d/surface.png"]


def test_baseline_charts_come_from_the_sdist_or_the_folder_it_unpacks_to(tmp_path):
    sdist = tmp_path / "matplotlib-9.9.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for name, data in SDIST.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    charts = baseline_charts(sdist)
    assert sorted(charts) == KEPT
    assert charts[KEPT[0]] == SDIST[KEPT[0]]
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert sorted(baseline_charts(tmp_path / "unpacked")) == KEPT
