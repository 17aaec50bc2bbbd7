"""`lait inspect` and `lait export` on a small real-photo corpus."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

import numpy as np
import pyarrow.dataset as ds
import pytest
from PIL import Image
from sklearn.datasets import load_sample_image

from lait.pipeline.export import export_webdataset
from lait.pipeline.inspect import CorpusError, read_rejects, sample_rows, summarize, write_html_report
from lait.pipeline.schema import image_bytes, to_row
from lait.pipeline.write_shards import shard_path, write_table

TEXTS = [
    "The curved roof of a temple rises above green trees",
    "A pink dahlia in full bloom with green leaves",
    "Stone lanterns line the path to the old pagoda",
    "Close-up of flower petals after the rain",
    "Temple eaves against a clear blue sky",
    "A bee lands on a bright flower in a garden",
]


def _photo(name: str, box: tuple[int, int, int, int], fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.fromarray(load_sample_image(name)).crop(box).save(out, fmt)
    return out.getvalue()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> str:
    directory = tmp_path_factory.mktemp("corpus")
    rows = []
    for i in range(24):
        name = "china.jpg" if i % 2 == 0 else "flower.jpg"
        left = (i * 13) % 200
        data = _photo(name, (left, 0, left + 400, 400 - (i % 5) * 10), "PNG" if i % 7 == 0 else "JPEG")
        rows.append(to_row({
            "image_sha1": hashlib.sha1(data).hexdigest(), "image_bytes": data,
            "image_url": f"https://img{i % 3}.example.com/photo-{i}.jpg",
            "page_url": f"https://www.site{i % 4}.example.org/story/{i}", "text": TEXTS[i % len(TEXTS)] + f" ({i})",
            "text_source": ["alt", "figcaption", "alt", "og_image_alt"][i % 4], "width": 400,
            "height": 400 - (i % 5) * 10, "image_format": "PNG" if i % 7 == 0 else "JPEG",
            "score": round(0.1 + i / 30, 3), "natural_score": 0.9, "n_pages": 1 + i % 3,
        }))
    write_table(shard_path(str(directory), 0, 2), rows[:12])
    write_table(shard_path(str(directory), 1, 2), rows[12:])
    funnel = {"stages": [{"name": "FilterImages", "in": 40, "out": 30, "dropped": {"too_small": 10}},
                         {"name": "Aggregate", "in": 30, "out": 24, "dropped": {"duplicate_image": 6}}]}
    (directory / "_funnel.json").write_text(json.dumps(funnel))
    (directory / "_rejects").mkdir()
    small = {"stage": "FilterImages", "reason": "too_small", "image_url": "https://img.example.com/icon.png",
             "page_url": "https://site.example.org/a", "detail": "32x32"}
    (directory / "_rejects" / "FilterImages.too_small.jsonl").write_text(json.dumps(small) + "\n")
    return str(directory)


def test_summary_numbers_equal_what_pyarrow_reads(corpus):
    summary = summarize(corpus)
    table = ds.dataset(corpus, format="parquet").to_table()
    assert summary["shards"] == 2 and summary["rows"] == table.num_rows == 24
    scores = table.column("score").to_numpy()
    assert summary["distributions"]["score"]["p50"] == pytest.approx(np.quantile(scores, 0.5), abs=1e-3)
    assert summary["distributions"]["height"]["p0"] == min(table.column("height").to_pylist())
    assert summary["text_sources"] == {"alt": 12, "figcaption": 6, "og_image_alt": 6}
    assert sum(summary["top_page_domains"].values()) == 24 and "site0.example.org" in summary["top_page_domains"]
    assert summary["images_on_several_pages"] == sum(n > 1 for n in table.column("n_pages").to_pylist())
    assert summary["duplicate_pairs_merged"] == 6


def test_where_filters_rows_like_python_would(corpus):
    everything = ds.dataset(corpus, format="parquet").to_table(columns=["score", "text_source", "width"]).to_pylist()
    expected = [r for r in everything if r["score"] < 0.5 and r["text_source"] == "alt"]
    rows = sample_rows(corpus, 100, 'score < 0.5 and text_source == "alt"')
    assert len(rows) == len(expected) > 0
    assert all(r["score"] < 0.5 and r["text_source"] == "alt" for r in rows)
    assert len(sample_rows(corpus, 100, "not (score < 0.5) or width > 1000")) == sum(r["score"] >= 0.5 for r in everything)


@pytest.mark.parametrize("bad", ["score <", "__import__('os')", "nonexistent > 1", "score < image_url"])
def test_bad_where_is_a_clear_error(corpus, bad):
    with pytest.raises(CorpusError):
        sample_rows(corpus, 5, bad)


def test_rejects_by_reason_and_unknown_reason(corpus):
    assert read_rejects(corpus, "too_small")[0]["detail"] == "32x32"
    assert read_rejects(corpus, "FilterImages.too_small")[0]["image_url"].endswith("icon.png")
    with pytest.raises(CorpusError, match="too_small"):
        read_rejects(corpus, "language")


def test_not_a_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="lait run"):
        summarize(str(tmp_path))


def test_webdataset_export_reads_back_to_the_same_pairs(corpus, tmp_path):
    result = export_webdataset(corpus, str(tmp_path / "wds"), samples_per_shard=10, image_format="keep")
    assert result == {"shards": 3, "samples": 24, "reencoded": 0, "no_image": 0, "undecodable": 0,
                      "output": str(tmp_path / "wds")}
    pairs = {}
    for name in sorted(os.listdir(tmp_path / "wds")):
        with tarfile.open(tmp_path / "wds" / name) as tar:
            for member in tar.getmembers():
                key, ext = member.name.split(".", 1)
                pairs.setdefault(key, {})[ext] = tar.extractfile(member).read()
    rows = ds.dataset(corpus, format="parquet").to_table(columns=["image_sha1", "image", "text", "image_format"])
    assert len(pairs) == 24
    for row in rows.to_pylist():
        sample = pairs[row["image_sha1"]]
        assert sample["jpg" if row["image_format"] == "JPEG" else "png"] == image_bytes(row)
        assert sample["txt"].decode() == row["text"]
        assert json.loads(sample["json"])["image_sha1"] == row["image_sha1"]


def _chromium() -> str:
    path = shutil.which("chromium")  # .ci/run installs Debian's chromium
    if path is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    return path


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=1"]


def _open_in_chromium(page: str, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *extra,
                           f"file://{page}"], capture_output=True, text=True, timeout=120)


def _console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_console_check_catches_a_broken_page(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>notDefined()</script></body></html>")
    assert _console_messages(_open_in_chromium(str(page), tmp_path, "--dump-dom").stderr)


def test_html_report_loads_in_chromium_without_console_errors(corpus, tmp_path):
    report = write_html_report(corpus, str(tmp_path / "report.html"), max_rows=16)
    assert report["kept_shown"] == 16 and report["rejects_shown"] == 1 and report["bytes"] < 2 * 2**20
    dom = _open_in_chromium(report["path"], tmp_path, "--dump-dom")
    assert _console_messages(dom.stderr) == []
    assert dom.stdout.count('src="data:image/jpeg;base64,') == 16 and "Dropped: FilterImages.too_small" in dom.stdout
    shot = tmp_path / "shot.png"
    _open_in_chromium(report["path"], tmp_path, f"--screenshot={shot}", "--window-size=1200,2400")
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=float)
    # The gallery's photos make the lower part of the page far from a blank white page.
    assert pixels[1200:].std() > 30


@pytest.fixture(scope="module")
def training_run(tmp_path_factory) -> str:
    """A run folder as `lait train` leaves it: config.json and metrics.csv (validation every 20 steps)."""
    from lait.imagebert.run_log import RunLog

    run = tmp_path_factory.mktemp("run")
    (run / "config.json").write_text(json.dumps({"stage": 1, "max_steps": 200, "preset": "tiny"}))
    log = RunLog(run, 0, tensorboard=False)
    for step in range(10, 201, 10):
        record = {"step": step, "lr": 1e-4 * (1 - step / 200), "grad_norm": 2.0 + np.sin(step),
                  "loss": 9 - 3 * np.log10(step), "mlm": 5 - 2 * np.log10(step), "itm": 0.69 - step / 2000,
                  "samples_per_s": 80.0 + step % 7, "tokens_per_s": 3000.0, "stage": 1}
        if step % 20 == 0:
            record.update(val_loss=record["loss"] + 0.3, val_mlm=record["mlm"] + 0.2, val_itm=record["itm"] + 0.05)
        log.write(record)
    log.close()
    return str(run)


def test_inspect_of_a_training_run_shows_its_curves(training_run, capsys):
    from lait.pipeline.cli import main as lait

    assert lait(["inspect", training_run]) == 0
    out = capsys.readouterr().out
    assert "training run, stage 1, step 200 of 200, 20 records" in out
    loss = next(line for line in out.splitlines() if line.startswith("loss "))
    assert loss.split()[1:4] == ["6", "2.097", "2.097"] and loss.split()[-1][0] == "█"  # falls: a sparkline
    assert any(line.startswith("val_loss ") for line in out.splitlines())
    assert lait(["inspect", training_run, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["curves"]["val_loss"]["n"] == 10 and summary["curves"]["loss"]["last"] == 2.09691


def test_training_report_with_curves_loads_in_chromium_without_console_errors(training_run, tmp_path, capsys):
    from lait.pipeline.cli import main as lait

    path = tmp_path / "curves.html"
    assert lait(["inspect", training_run, "--html", str(path)]) == 0
    assert "7 charts" in capsys.readouterr().out  # loss, itm, mlm, lr, grad_norm, samples/s, tokens/s
    page = path.read_text()
    assert "<script" not in page and "http" not in page.replace("http://www.w3.org", "")
    dom = _open_in_chromium(str(path), tmp_path, "--dump-dom")
    assert _console_messages(dom.stderr) == []
    assert dom.stdout.count("<polyline") == 10  # 3 losses x (train, val), lr, grad_norm, samples/s, tokens/s
    assert dom.stdout.count("<figure") == 7 and "val_loss" not in dom.stdout
    shot = tmp_path / "curves.png"
    _open_in_chromium(str(path), tmp_path, f"--screenshot={shot}", "--window-size=1000,800")
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=int)
    blue = (abs(pixels - [0x4A, 0x7B, 0xB7]).sum(axis=2) < 60).sum()
    orange = (abs(pixels - [0xD9, 0x5F, 0x02]).sum(axis=2) < 60).sum()
    assert blue > 500 and orange > 300  # the training and validation lines are drawn


def test_where_that_matches_nothing_says_so_and_floats_print_short(corpus, capsys):
    from lait.pipeline.cli import main as lait

    assert lait(["inspect", corpus, "--where", "score > 5"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "no row matches --where 'score > 5'" in captured.err
    assert lait(["inspect", corpus, "--sample", "3"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["score"] for row in rows] == [0.1, 0.133, 0.167]  # float32 in the shards, no noise digits
