"""The shards as other tools load them: Hugging Face `datasets` (Image()), WebDataset tars, the README's table."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from PIL import Image

from lait.errors import UsageError
from lait.pipeline.export import export_webdataset
from lait.pipeline.inspect import CorpusError, sample_with_images
from lait.pipeline.regions import corpus_row_groups
from lait.pipeline.schema import COLUMNS, CORPUS_SCHEMA, columns_markdown, image_bytes, to_row
from lait.pipeline.write_shards import shard_path, write_table
from tests.conftest import ROOT


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _photo(seed: int, size=(360, 320)) -> Image.Image:
    rng = np.random.default_rng(seed)
    gradient = np.linspace(0, 255, size[0], dtype=np.float32)[None, :, None]
    pixels = np.clip(gradient + rng.normal(0, 20, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def _images() -> list[tuple[str, bytes, tuple[int, int]]]:
    """(Pillow format, file, decoded size) of every kind of file a crawl gives."""
    rgba = _photo(2).convert("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 128))
    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF orientation: rotate 90 degrees when shown
    files = [
        ("JPEG", _encode(_photo(1), "JPEG", quality=90)),
        ("PNG", _encode(rgba, "PNG")),
        ("WEBP", _encode(_photo(3), "WEBP")),
        ("GIF", _encode(_photo(4).convert("P", palette=Image.Palette.ADAPTIVE), "GIF", transparency=0)),
        ("JPEG", _encode(_photo(5).convert("CMYK"), "JPEG")),
        ("PNG", _encode(_photo(6, (300, 360)), "PNG", exif=exif)),
        ("PNG", _encode(_photo(7).convert("L"), "PNG")),
    ]
    sizes = [(360, 320)] * 5 + [(360, 300), (360, 320)]  # the EXIF-rotated one is upright once decoded
    return [(fmt, data, size) for (fmt, data), size in zip(files, sizes, strict=True)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two shards of mixed formats; the first image has a second caption; one row has no image."""
    directory = tmp_path_factory.mktemp("mixed")
    records = []
    for i, (fmt, data, (width, height)) in enumerate(_images()):
        records.append({"image_sha1": hashlib.sha1(data).hexdigest(), "image_bytes": data, "image_format": fmt,
                        "width": width, "height": height, "text": f"photo {i}", "image_url": f"https://x.org/{i}"})
    records.append({**records[0], "text": "photo 0, another caption"})
    records.append({"image_sha1": "ab" * 20, "image_bytes": None, "text": "never fetched"})
    rows = sorted((to_row(r) for r in records), key=lambda r: r["image_sha1"])
    write_table(shard_path(str(directory), 0, 2), rows[:5])
    write_table(shard_path(str(directory), 1, 2), rows[5:])
    return {"dir": directory, "records": records, "rows": rows}


def test_the_image_column_is_a_datasets_image_feature():
    features = datasets.Features.from_arrow_schema(CORPUS_SCHEMA)
    assert features["image"] == datasets.Image()
    assert list(features) == [name for name, _, _ in COLUMNS]
    assert features["score"] == datasets.Value("float32") and features["warc_offset"] == datasets.Value("int64")
    assert features.arrow_schema.equals(CORPUS_SCHEMA)  # the same types, field by field
    assert to_row({"image_bytes": b"x", "image_sha1": "ab", "image_format": "WEBP"})["image"] == \
        {"bytes": b"x", "path": "ab.webp"}
    assert to_row({"image_bytes": None})["image"] is None


def test_load_dataset_and_from_parquet_give_image_and_pil_images(corpus, tmp_path):
    files = sorted(str(p) for p in corpus["dir"].glob("shard-*.parquet"))
    assert pq.read_schema(files[0]).metadata[b"huggingface"] == CORPUS_SCHEMA.metadata[b"huggingface"]
    loaded = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf"))
    assert "'image': Image(" in repr(loaded.features) and loaded.features["image"] == datasets.Image()
    assert loaded.num_rows == len(corpus["rows"])
    for row, expected in zip(loaded, [r for f in files for r in pq.read_table(f).to_pylist()], strict=True):
        if expected["image"] is None:
            assert row["image"] is None
        else:
            assert isinstance(row["image"], Image.Image) and row["image"].size[0] == 360
    one = datasets.Dataset.from_parquet(files[0], cache_dir=str(tmp_path / "hf2"))
    assert one.features["image"] == datasets.Image()


def _tar_samples(folder) -> dict[str, dict[str, bytes]]:
    samples = {}
    for name in sorted(os.listdir(folder)):
        with tarfile.open(os.path.join(folder, name)) as tar:
            for member in tar.getmembers():
                key, ext = member.name.split(".", 1)
                samples.setdefault(key, {})[ext] = tar.extractfile(member).read()
    return samples


@pytest.mark.parametrize("image_format", ["jpg", "png"])
def test_webdataset_export_gives_every_sample_the_same_image_key(corpus, tmp_path, image_format):
    out = tmp_path / "wds"
    result = export_webdataset(str(corpus["dir"]), str(out), samples_per_shard=3, image_format=image_format)
    n_images = len(corpus["records"]) - 1
    original = {"jpg": "JPEG", "png": "PNG"}[image_format]
    as_acquired = sum(r["image_format"] == original for r in corpus["records"][:-1])
    assert result == {"shards": 3, "samples": n_images, "reencoded": n_images - as_acquired, "no_image": 1,
                      "undecodable": 0, "output": str(out)}
    samples = _tar_samples(out)
    assert {frozenset(s) for s in samples.values()} == {frozenset({image_format, "txt", "json"})}
    sha1 = corpus["records"][0]["image_sha1"]
    assert {sha1, f"{sha1}-1"} <= set(samples)  # two captions of one image: two samples
    by_text = {r["text"]: r for r in corpus["records"]}
    # What users write: one key for every sample, decoded by WebDataset's own decoder.
    pipeline = wds.WebDataset(sorted(str(p) for p in out.glob("*.tar")), shardshuffle=False)
    decoded = list(pipeline.decode("pil").to_tuple(image_format, "txt", "json"))
    assert len(decoded) == n_images
    for image, text, meta in decoded:
        record = by_text[text]
        assert meta["image_sha1"] == record["image_sha1"] and meta["image_format"] == record["image_format"]
        if record["image_format"] != original:  # re-encoded: upright (EXIF applied), the size the schema gives
            assert image.size == (record["width"], record["height"])
    for sample in samples.values():
        record = by_text[sample["txt"].decode()]
        if record["image_format"] == original:
            assert sample[image_format] == record["image_bytes"]  # never re-encoded when already that format
        else:
            assert Image.open(io.BytesIO(sample[image_format])).format == original


def test_webdataset_keep_writes_every_file_as_acquired(corpus, tmp_path):
    result = export_webdataset(str(corpus["dir"]), str(tmp_path / "keep"), image_format="keep")
    assert result["reencoded"] == 0 and result["samples"] == len(corpus["records"]) - 1
    extensions = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
    files = {data for sample in _tar_samples(tmp_path / "keep").values() for ext, data in sample.items()
             if ext in extensions.values()}
    assert files == {r["image_bytes"] for r in corpus["records"][:-1]}
    with pytest.raises(ValueError, match="image_format"):
        export_webdataset(str(corpus["dir"]), str(tmp_path / "x"), image_format="jpeg")


def test_an_image_that_cannot_be_reencoded_is_left_out_and_counted(tmp_path):
    broken = b"\x89PNG\r\n\x1a\n not really a png"
    good = _encode(_photo(9), "JPEG")
    records = [{"image_sha1": hashlib.sha1(d).hexdigest(), "image_bytes": d, "image_format": f, "text": t}
               for d, f, t in [(broken, "PNG", "broken"), (good, "JPEG", "good")]]
    write_table(shard_path(str(tmp_path / "c"), 0, 1), [to_row(r) for r in records])
    result = export_webdataset(str(tmp_path / "c"), str(tmp_path / "wds"))
    assert (result["samples"], result["undecodable"]) == (1, 1)
    assert image_bytes(to_row(records[1])) == good


def test_readme_column_table_is_the_schema():
    readme = (ROOT / "README.md").read_text()
    output = readme[readme.index("### Output"):readme.index("### Inspecting a corpus")]
    table = "\n".join(line for line in output.splitlines() if line.startswith("|"))
    assert table == columns_markdown()
    assert not re.search(r"<\w+:", table)  # no angle brackets that Markdown would take for HTML


def test_shards_of_an_older_lait_are_a_clear_error(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    data = _encode(_photo(10), "JPEG")
    pq.write_table(pa.table({"image_sha1": [hashlib.sha1(data).hexdigest()], "image_bytes": [data], "text": ["a"]}),
                   old / "shard-00000-of-00001.parquet")
    with pytest.raises(CorpusError, match="older lait .*image_bytes"):
        export_webdataset(str(old), str(tmp_path / "wds"))
    assert not (tmp_path / "wds").exists()
    with pytest.raises(CorpusError, match="older lait"):
        sample_with_images(str(old), 10)
    with pytest.raises(UsageError, match="older lait"):
        corpus_row_groups(str(old))  # lait regions, before any work
