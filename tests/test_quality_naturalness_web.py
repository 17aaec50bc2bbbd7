"""bench/quality_naturalness_web.py's held-out charts: matplotlib's baseline images FilterImages would pass."""

import io
import subprocess
import sys
import tarfile

import pytest
from PIL import Image

from bench.quality_naturalness_web import baseline_charts
from tests.conftest import ROOT
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


@pytest.mark.parametrize("name, content", [("missing.tar.gz", None), ("broken.tar.gz", b"not a tar file"),
                                           ("other.tar.gz", "empty")])
def test_a_wrong_charts_file_is_a_one_line_error_before_any_work(tmp_path, name, content):
    path = tmp_path / name
    if content == "empty":
        with tarfile.open(path, "w:gz") as tar:
            member = tarfile.TarInfo("other-1.0/README")
            tar.addfile(member, io.BytesIO(b""))
    elif content is not None:
        path.write_bytes(content)
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "quality_naturalness_web.py"), "--charts", str(path),
                           "--output", str(tmp_path / "out.json")], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "give matplotlib's sdist" in errors[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "out.json").exists()
