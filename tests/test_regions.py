"""Regions: the default EfficientNet extractor on real photos, NMS and RoI pooling against references,
the bottom-up-attention .npz reader, and the `lait regions` Beam job read back by the trainer's reader."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from lait.encoders.region_files import NpzRegionReader, npz_candidates, read_npz, write_npz
from lait.encoders.regions import EfficientNetRegionExtractor, Failure, Regions, box_iou, nms
from lait.imagebert.data import PairStream, parquet_files, read_regions_meta
from lait.pipeline.schema import to_row
from lait.pipeline.write_shards import write_table
from tests.conftest import shared_path

DOG_CLASSES = range(151, 269)  # ILSVRC-2012 indices 151 (Chihuahua) .. 268 (Mexican hairless)


def captioned_images(dogs: bool, count: int) -> list:
    """Flickr8k photos whose captions all mention a dog (or none mentions a dog/puppy), in name order."""
    captions = shared_path("captions", "captions.tsv")
    mentions: dict[str, list[bool]] = {}
    with open(captions, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            mentions.setdefault(row["image"], []).append(bool(re.search(r"\b(dog|dogs|puppy)\b", row["caption"].lower())))
    names = sorted(name for name, said in mentions.items() if (all(said) if dogs else not any(said)))
    return [shared_path("captions", "images", name) for name in names[:count]]


@pytest.fixture(scope="module")
def extractor() -> EfficientNetRegionExtractor:
    return EfficientNetRegionExtractor(max_regions=100, device="cpu")


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    images = [Image.open(p).convert("RGB") for p in captioned_images(True, 3)]
    wide = images[0].resize((448, 160))  # not square: the letterbox leaves padding below
    tall = images[1].crop((40, 0, 150, 224))  # narrow: padding to the right
    return [images[2], wide, tall]


def test_boxes_inside_the_image_normalised_and_features_finite(extractor, photos):
    results = extractor.extract(photos)
    assert len(results) == 3
    for regions in results:
        n = len(regions)
        assert 50 <= n <= 100
        assert regions.boxes.shape == (n, 5) and regions.boxes.dtype == np.float32
        assert regions.features.shape == (n, 1280) and regions.features.dtype == np.float16
        assert regions.labels.shape == (n,) and regions.labels.dtype == np.int32
        assert regions.label_probs.shape == (n, 1000) and regions.label_probs.dtype == np.float16
        x1, y1, x2, y2, area = regions.boxes.T
        assert (regions.boxes >= 0).all() and (regions.boxes <= 1).all()
        assert (x2 > x1).all() and (y2 > y1).all()
        assert np.allclose(area, (x2 - x1) * (y2 - y1), atol=1e-6)
        assert np.isfinite(regions.features.astype(np.float32)).all() and (regions.features >= 0).all()
        assert np.allclose(regions.label_probs.astype(np.float32).sum(1), 1, atol=0.02)
        assert (regions.labels == regions.label_probs.astype(np.float32).argmax(1)).mean() > 0.95
        confidence = regions.label_probs.astype(np.float32).max(1)
        assert (np.diff(confidence) <= 1e-2).all(), "regions must come most confident first"
        assert any(np.allclose(box[:4], [0, 0, 1, 1], atol=1e-6) for box in regions.boxes), "the whole image"
        # no two kept boxes of the same label overlap more than the NMS threshold (the whole image is kept anyway)
        iou = box_iou(torch.from_numpy(regions.boxes[:, :4])).numpy()
        same = regions.labels[:, None] == regions.labels[None, :]
        np.fill_diagonal(same, False)
        whole = np.isclose(regions.boxes[:, :4], [0, 0, 1, 1], atol=1e-6).all(1)
        same[whole] = same[:, whole] = False
        assert (iou[same] <= extractor.nms_iou + 1e-5).all()


def _encode(image: Image.Image, format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format)
    return buffer.getvalue()


def test_odd_images_give_valid_regions_or_a_decode_failure(extractor, photos):
    """1-pixel, 100:1 strips, grey-scale, CMYK, palette GIF: valid regions; truncated bytes: a Failure."""
    photo = photos[0]
    odd = [_encode(Image.new("RGB", (1, 1), "red"), "PNG"), _encode(photo.resize((2000, 20)), "JPEG"),
           _encode(photo.resize((8, 900)), "PNG"), _encode(photo.convert("L"), "PNG"),
           _encode(photo.convert("CMYK"), "JPEG"), _encode(photo.convert("P"), "GIF")]
    truncated = _encode(photo, "JPEG")[:3000]
    results = extractor.extract_records([{"image_bytes": data} for data in [*odd, truncated, b""]])
    for regions in results[:len(odd)]:
        assert isinstance(regions, Regions) and len(regions) > 0
        assert np.isfinite(regions.features.astype(np.float32)).all()
        assert (regions.boxes >= 0).all() and (regions.boxes <= 1).all()
        assert (regions.boxes[:, 2] > regions.boxes[:, 0]).all() and (regions.boxes[:, 3] > regions.boxes[:, 1]).all()
    assert [r.reason for r in results[len(odd):]] == ["decode_error", "decode_error"]


def test_pooled_logits_are_the_classifier_of_the_pooled_feature(extractor, photos):
    """Pooling the logit map is exact: each region's distribution is the ImageNet head applied to its feature."""
    for regions in extractor.extract(photos[1:]):
        features = torch.from_numpy(regions.features.astype(np.float32))
        probs = torch.softmax(extractor.network.classify_pooled(features), dim=1).numpy()
        assert np.abs(probs - regions.label_probs.astype(np.float32)).max() < 0.02


def test_deterministic_and_independent_of_the_batch(extractor, photos):
    first = extractor.extract(photos)
    second = extractor.extract(photos)
    for a, b in zip(first, second):
        assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.features, b.features)
        assert np.array_equal(a.labels, b.labels) and np.array_equal(a.label_probs, b.label_probs)
    alone = extractor.extract(photos[:1])[0]
    assert np.allclose(alone.boxes, first[0].boxes, atol=1e-5)
    assert np.allclose(alone.features.astype(np.float32), first[0].features.astype(np.float32), atol=0.02)


def test_dog_photos_get_dog_regions(extractor):
    """Photos whose five captions all mention a dog: their regions include ImageNet dog classes,
    and many more of their regions are dogs than on photos no caption says has a dog."""
    dogs = [Image.open(p) for p in captioned_images(True, 16)]
    others = [Image.open(p) for p in captioned_images(False, 16)]
    dog_results, other_results = extractor.extract(dogs), extractor.extract(others)

    def dog_share(regions: Regions) -> float:
        return float(np.isin(regions.labels, DOG_CLASSES).mean())

    with_dog = [dog_share(r) > 0 for r in dog_results]
    assert np.mean(with_dog) >= 0.8, np.mean(with_dog)
    top_is_dog = [int(r.labels[0]) in DOG_CLASSES for r in dog_results]
    assert np.mean(top_is_dog) >= 0.5, np.mean(top_is_dog)
    assert np.mean([dog_share(r) for r in dog_results]) > 3 * np.mean([dog_share(r) for r in other_results])


def test_roi_pooling_equals_grid_sample_bilinear_sampling(extractor):
    """The separable weight-matrix pooling gives what sampling each point with grid_sample gives."""
    generator = torch.Generator().manual_seed(0)
    maps = torch.randn(2, 7, 10, 10, generator=generator)
    corners = torch.rand(2, 30, 4, generator=generator)
    boxes = torch.cat([torch.minimum(corners[..., :2], corners[..., 2:]),
                       torch.maximum(corners[..., :2], corners[..., 2:])], dim=-1)
    extent = torch.tensor([[1.0, 0.75], [0.6, 1.0]])
    s = extractor.samples_per_side
    steps = (torch.arange(s) + 0.5) / s
    x = (boxes[..., 0, None] + (boxes[..., 2] - boxes[..., 0])[..., None] * steps) * extent[:, 0, None, None]
    y = (boxes[..., 1, None] + (boxes[..., 3] - boxes[..., 1])[..., None] * steps) * extent[:, 1, None, None]
    grid = torch.stack([x[..., None, :].expand(-1, -1, s, -1), y[..., :, None].expand(-1, -1, -1, s)], -1)
    reference = F.grid_sample(maps, grid.flatten(2, 3) * 2 - 1, mode="bilinear", padding_mode="border",
                              align_corners=False).mean(-1).permute(0, 2, 1)
    assert torch.allclose(extractor._roi_pool(maps, boxes, extent), reference, atol=1e-5)


def _greedy_nms_reference(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    kept: list[int] = []
    for i in order:
        if np.isfinite(scores[i]) and all(_iou(boxes[i], boxes[j]) <= threshold for j in kept):
            kept.append(i)
    return kept


def _iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


def test_nms_matches_greedy_reference_per_image_and_per_group():
    rng = np.random.default_rng(1)
    centres = rng.uniform(0.2, 0.8, (3, 60, 2))
    sizes = rng.uniform(0.05, 0.4, (3, 60, 2))
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], -1).astype(np.float32)
    scores = rng.uniform(size=(3, 60)).astype(np.float32)
    scores[2, :10] = -np.inf  # missing boxes are never kept
    kept = nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5).numpy()
    for b in range(3):
        assert [int(i) for i in kept[b] if i >= 0] == _greedy_nms_reference(boxes[b], scores[b], 0.5)
    groups = torch.from_numpy(rng.integers(0, 3, (3, 60)))
    by_group = nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5, groups=groups).numpy()
    for b in range(3):
        expected = []
        for g in range(3):
            members = np.flatnonzero(groups[b].numpy() == g)
            expected += [int(members[i]) for i in _greedy_nms_reference(boxes[b, members], scores[b, members], 0.5)]
        got = [int(i) for i in by_group[b] if i >= 0]
        assert sorted(got) == sorted(expected)
        assert list(scores[b, got]) == sorted(scores[b, got], reverse=True)


# -- precomputed .npz ---------------------------------------------------------------------------------


def _random_regions(rng, n: int, dim: int, labels: int, with_probs: bool = True) -> Regions:
    corners = rng.uniform(0, 1, (n, 4)).astype(np.float32)
    boxes = np.concatenate([np.minimum(corners[:, :2], corners[:, 2:]), np.maximum(corners[:, :2], corners[:, 2:])], 1)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    logits = rng.normal(size=(n, labels)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    order = np.argsort(-probs.max(1), kind="stable")
    return Regions(np.concatenate([boxes, area[:, None]], 1)[order].astype(np.float32),
                   rng.normal(size=(n, dim)).astype(np.float16)[order], probs.argmax(1).astype(np.int32)[order],
                   probs.astype(np.float16)[order] if with_probs else None)


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    regions = _random_regions(rng, 36, 2048, 1601)
    path = tmp_path / "image.npz"
    write_npz(path, regions, image_w=640, image_h=480)
    back, num_labels = read_npz(path)
    assert num_labels == 1601
    assert np.allclose(back.boxes, regions.boxes, atol=1e-6)
    assert np.array_equal(back.features, regions.features)
    assert np.array_equal(back.labels, regions.labels)
    assert np.array_equal(back.label_probs, regions.label_probs)


def test_npz_uniter_layout_and_sorting(tmp_path):
    """UNITER's files: norm_bb (x1, y1, x2, y2, w, h), soft_labels, conf; regions come out most confident first."""
    rng = np.random.default_rng(2)
    features = rng.normal(size=(5, 768)).astype(np.float16)
    norm_bb = np.array([[0.1, 0.1, 0.5, 0.5, 0.4, 0.4]] * 5, dtype=np.float32)
    conf = np.array([0.1, 0.9, 0.5, 0.7, 0.3], dtype=np.float32)
    soft = rng.dirichlet(np.ones(11), size=5).astype(np.float32)
    np.savez(tmp_path / "a.npz", features=features, norm_bb=norm_bb, conf=conf, soft_labels=soft)
    regions, num_labels = read_npz(tmp_path / "a.npz")
    assert num_labels == 11 and regions.features.shape == (5, 768)
    assert np.array_equal(regions.features, features[[1, 3, 2, 4, 0]])
    assert np.allclose(regions.boxes[0], [0.1, 0.1, 0.5, 0.5, 0.16])
    np.savez(tmp_path / "b.npz", features=features, norm_bb=norm_bb, objects_id=np.arange(5))
    with pytest.raises(ValueError, match="label count"):
        read_npz(tmp_path / "b.npz")
    assert read_npz(tmp_path / "b.npz", num_labels=5)[0].label_probs is None
    np.savez(tmp_path / "c.npz", features=features, norm_bb=norm_bb[:3], soft_labels=soft)
    with pytest.raises(ValueError, match="5 features but 3 boxes"):
        read_npz(tmp_path / "c.npz")


def test_npz_reader_finds_files_by_sha1_url_stem_or_url_sha1(tmp_path):
    rng = np.random.default_rng(3)
    url = "https://example.com/images/COCO_val2014_000000000042.jpg?size=large"
    assert npz_candidates("ab" * 20, url) == ["ab" * 20 + ".npz", "COCO_val2014_000000000042.npz",
                                              hashlib.sha1(url.encode()).hexdigest() + ".npz"]
    (tmp_path / "objects_vocab.txt").write_text("".join(f"object{i}\n" for i in range(9)))
    write_npz(tmp_path / "COCO_val2014_000000000042.npz", _random_regions(rng, 120, 64, 10), 100, 80)
    write_npz(tmp_path / ("cd" * 20 + ".npz"), _random_regions(rng, 7, 64, 10), 100, 80)
    write_npz(tmp_path / ("ef" * 20 + ".npz"), _random_regions(rng, 7, 32, 10), 100, 80)
    reader = NpzRegionReader(tmp_path, max_regions=100)
    assert (reader.feature_dim, reader.num_labels) == (64, 10)
    assert reader.label_names[0] == "__background__" and reader.label_names[9] == "object8"
    results = reader.extract_records([
        {"image_sha1": "00" * 20, "image_url": url},
        {"image_sha1": "cd" * 20, "image_url": None},
        {"image_sha1": "ef" * 20, "image_url": None},
        {"image_sha1": "11" * 20, "image_url": "https://example.com/other.jpg"},
    ])
    assert len(results[0]) == 100  # 120 regions in the file, the 100 most confident kept
    assert len(results[1]) == 7
    assert isinstance(results[2], Failure) and results[2].reason == "npz_mismatch"
    assert isinstance(results[3], Failure) and results[3].reason == "npz_missing"


# -- the Beam job, read back by the trainer -------------------------------------------------------------


def _tiny_corpus(directory, paths) -> dict[str, str]:
    """Corpus shards: two texts per real photo, one undecodable image, one row without bytes."""
    rows, sha1_of = [], {}
    for path in paths:
        data = path.read_bytes()
        sha1 = sha1_of[path.name] = hashlib.sha1(data).hexdigest()
        for text in ("a dog runs on the grass", "an animal outdoors"):
            rows.append({"image_sha1": sha1, "image_bytes": data, "image_url": f"http://photos.test/{path.name}",
                         "text": text})
    broken = b"\xff\xd8\xff\xe0 not really a jpeg"
    rows.append({"image_sha1": hashlib.sha1(broken).hexdigest(), "image_bytes": broken,
                 "image_url": "http://photos.test/broken.jpg", "text": "a broken file"})
    rows.append({"image_sha1": "12" * 20, "image_bytes": None, "image_url": "http://photos.test/gone.jpg",
                 "text": "an image that was never fetched"})
    directory.mkdir()
    rows = [to_row(r) for r in rows]
    # Two shards; the two texts of the first photo land in different ones.
    write_table(str(directory / "shard-00000-of-00002.parquet"), rows[1::2])
    write_table(str(directory / "shard-00001-of-00002.parquet"), rows[0::2])
    return sha1_of


def _stream(corpus, regions, max_regions: int) -> PairStream:
    from lait.encoders.minilm import minilm_model_dir
    from lait.encoders.wordpiece import WordPieceTokenizer

    tokenizer = WordPieceTokenizer.from_vocab_file(minilm_model_dir() / "vocab.txt")
    return PairStream(corpus, regions, tokenizer, batch_size=2, max_text_len=16, max_regions=max_regions)


def test_regions_job_writes_shards_the_trainer_reads(tmp_path):
    from apache_beam.options.pipeline_options import PipelineOptions

    from lait.pipeline.funnel import reconcile
    from lait.pipeline.regions import ExtractorSpec, RegionsJob, run, shard_name

    paths = captioned_images(True, 4)
    corpus, output = tmp_path / "corpus", tmp_path / "regions"
    sha1_of = _tiny_corpus(corpus, paths)
    spec = ExtractorSpec("efficientnet", options={"max_regions": 20, "input_size": 224, "batch_size": 4})
    job = RegionsJob(str(corpus), str(output), spec, max_regions=20, images_per_shard=3, batch_size=4)
    funnel = run(job, PipelineOptions([]))

    stages = {s["name"]: s for s in funnel["stages"]}
    assert list(stages) == ["ReadImages", "OnePerImage", "ExtractRegions", "WriteRegions"]
    assert stages["ReadImages"]["dropped"] == {"no_image_bytes": 1}
    assert stages["OnePerImage"]["dropped"] == {"same_image": 4}
    assert stages["ExtractRegions"]["dropped"] == {"decode_error": 1}
    assert stages["WriteRegions"]["out"] == 4 and not reconcile(funnel)
    rejects = [json.loads(line) for line in (output / "_rejects" / "ExtractRegions.decode_error.jsonl").open()]
    assert rejects[0]["image_url"] == "http://photos.test/broken.jpg"

    meta = read_regions_meta(output)
    assert (meta["feature_dim"], meta["num_labels"], meta["max_regions"]) == (1280, 1000, 20)
    assert meta["label_names"][207] == "golden retriever"
    files = parquet_files(output)
    assert all(re.fullmatch(r"regions-[0-9a-f]{20}\.parquet", f.name) for f in files)

    stream = _stream(corpus, output, max_regions=20)
    assert stream.num_pairs == 8  # 4 images x 2 texts; the broken and missing images have no regions
    batch = next(iter(stream))
    assert batch["features"].shape[0] == 2 and batch["features"].shape[2] == 1280
    assert batch["label_probs"].shape[2] == 1000
    assert torch.isfinite(batch["features"]).all() and batch["region_mask"].sum() == 40

    # At most images_per_shard rows per shard, sorted by SHA-1, each image once, the name from the keys.
    keys = [_sha1s(path) for path in files]
    assert all(0 < len(k) <= 3 and k == sorted(k) for k in keys)
    assert sorted(sum(keys, [])) == sorted(sha1_of.values())
    assert all(path.name == shard_name([{"image_sha1": k} for k in shard]) for path, shard in zip(files, keys))


def _sha1s(path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=["image_sha1"]).column(0).to_pylist()


def test_regions_job_with_precomputed_features(tmp_path):
    """2048-d, 1601-label bottom-up-attention files found by URL stem: the width comes from the data."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from lait.pipeline.regions import ExtractorSpec, RegionsJob, run

    paths = captioned_images(True, 3)
    corpus, output, npz_dir = tmp_path / "corpus", tmp_path / "regions", tmp_path / "npz"
    _tiny_corpus(corpus, paths)
    npz_dir.mkdir()
    rng = np.random.default_rng(4)
    for path in paths[:2]:  # the third photo has no file: a counted npz_missing drop
        write_npz(npz_dir / (path.stem + ".npz"), _random_regions(rng, 12, 2048, 1601), 500, 375)
    spec = ExtractorSpec("npz", npz_dir=str(npz_dir), options={"max_regions": 10})
    funnel = run(RegionsJob(str(corpus), str(output), spec, max_regions=10), PipelineOptions([]))
    stages = {s["name"]: s for s in funnel["stages"]}
    assert stages["ReadImages"]["dropped"] == {}  # bytes are not read, so the row without them is fine
    assert stages["ExtractRegions"]["dropped"] == {"npz_missing": 3}
    meta = read_regions_meta(output)
    assert (meta["feature_dim"], meta["num_labels"]) == (2048, 1601)
    batch = next(iter(_stream(corpus, output, max_regions=10)))
    assert batch["features"].shape == (2, 10, 2048) and batch["region_mask"].all()


def test_cli_bad_paths_are_one_line_errors(tmp_path, capsys):
    from lait.pipeline.cli import main

    assert main(["regions", "--data", str(tmp_path / "missing"), "--output", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lait regions: error: no shard-*.parquet files") and "\n" not in err
    _tiny_corpus(tmp_path / "corpus", captioned_images(True, 1))
    assert main(["regions", "--data", str(tmp_path / "corpus"), "--output", str(tmp_path / "r"),
                 "--extractor", "npz"]) == 2
    assert "--extractor npz needs --npz_dir" in capsys.readouterr().err
    assert main(["regions", "--data", str(tmp_path / "corpus"), "--output", str(tmp_path / "r"),
                 "--extractor", "npz", "--npz_dir", str(tmp_path)]) == 2
    assert "no .npz files" in capsys.readouterr().err
    assert main(["regions", "--data", str(tmp_path / "corpus"), "--output", str(tmp_path / "r"),
                 "--max_regionz", "5"]) == 2
    assert "unknown option --max_regionz" in capsys.readouterr().err
