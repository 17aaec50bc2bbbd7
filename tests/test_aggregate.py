"""Aggregate: best text per image, near-duplicates merged, shared texts dropped, deterministic."""

from __future__ import annotations

import hashlib
import json
import random

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from lait.filters.duplicates import near_duplicate_links, normalize_text, phash_bands, phash_distance
from lait.pipeline.aggregate import Aggregate, ImagesPerText
from lait.pipeline.funnel import funnel_from_counts
from lait.pipeline.in_process_runner import InProcessRunner
from lait.pipeline.options import LaitOptions


def _pair(image: str, page: str, text: str, score: float | None, phash: str | None = None) -> dict:
    return {"image_sha1": hashlib.sha1(image.encode()).hexdigest(), "image_phash": phash,
            "image_url": f"https://img.example.com/{image}.jpg", "page_url": page, "text": text, "score": score,
            "image_bytes": f"bytes of {image}".encode()}


def _flip_bits(phash: str, bits: list[int]) -> str:
    value = int(phash, 16)
    for bit in bits:
        value ^= 1 << bit
    return f"{value:016x}"


def run_aggregate(pairs: list[dict], tmp_path, *flags: str, described: list[dict] | None = None) -> tuple[list[dict], dict]:
    """Run Aggregate alone on DirectRunner; returns (kept rows, funnel entry).

    `described`: the pairs as CleanText saw them, before the image and relevance filters.
    """
    out = tmp_path / f"run-{random.random()}"
    out.mkdir()
    options = PipelineOptions(["--runner=DirectRunner", *flags])
    with beam.Pipeline(runner=InProcessRunner(), options=options) as p:
        seen = p | "Described" >> beam.Create(described) | ImagesPerText() if described is not None else None
        result = p | beam.Create(pairs) | Aggregate(options.view_as(LaitOptions), seen)
        (result.main | "Rows" >> beam.Map(lambda r: json.dumps(r, sort_keys=True, default=bytes.decode))
         | "WriteRows" >> beam.io.WriteToText(str(out / "rows"), shard_name_template=""))
        (result.counts | beam.combiners.ToList()
         | beam.Map(lambda c: (out / "funnel.json").write_text(json.dumps(funnel_from_counts(_sum(c))))))
    rows = sorted((json.loads(line) for line in (out / "rows").read_text().splitlines()), key=lambda r: r["image_sha1"])
    entry = next(s for s in json.loads((out / "funnel.json").read_text())["stages"] if s["name"] == "Aggregate")
    return rows, entry


def _sum(counts):
    totals = {}
    for key, n in counts:
        totals[key] = totals.get(key, 0) + n
    return list(totals.items())


def test_same_photo_on_several_pages_keeps_its_best_text(tmp_path):
    pairs = [
        _pair("harbour", "https://a.example.com/1", "Fishing boats moored in a small harbour at dawn", 0.91),
        _pair("harbour", "https://b.example.com/2", "Boats in the harbour", 0.62),
        _pair("harbour", "https://c.example.com/3", "Our trip last summer", 0.20),
        _pair("kite", "https://a.example.com/4", "A red kite flying over a beach", 0.80),
    ]
    rows, entry = run_aggregate(pairs, tmp_path)
    harbour = next(r for r in rows if r["image_url"].endswith("harbour.jpg"))
    assert harbour["text"] == "Fishing boats moored in a small harbour at dawn"
    assert (harbour["n_pages"], harbour["n_texts"]) == (3, 3)
    assert harbour["image_bytes"] == "bytes of harbour"  # joined back after the groupings
    assert entry["in"] == 4 and entry["out"] == 2 and entry["dropped"] == {"duplicate_image": 2}


def test_ties_are_broken_by_longer_text_then_smaller_page_url(tmp_path):
    pairs = [
        _pair("cat", "https://b.example.com/x", "A cat asleep on a sofa", 0.7),
        _pair("cat", "https://a.example.com/y", "A cat asleep on a sofa", 0.7),
        _pair("cat", "https://c.example.com/z", "A grey cat", 0.7),
    ]
    rows, _ = run_aggregate(pairs, tmp_path)
    assert [(r["page_url"], r["text"]) for r in rows] == [("https://a.example.com/y", "A cat asleep on a sofa")]


def test_near_duplicate_copies_are_merged_and_distinct_images_are_not(tmp_path):
    original = "c3a5f0e1b2d49687"
    pairs = [
        _pair("bridge", "https://a.example.com/1", "A stone bridge over a river in autumn", 0.9, original),
        _pair("bridge-resized", "https://b.example.com/2", "Bridge", 0.4, _flip_bits(original, [3, 17, 40])),
        _pair("bridge-reencoded", "https://c.example.com/3", "The bridge", 0.3, _flip_bits(original, [3, 17, 40, 63])),
        _pair("other", "https://d.example.com/4", "A lighthouse on a cliff", 0.8, _flip_bits(original, list(range(0, 64, 5)))),
    ]
    rows, entry = run_aggregate(pairs, tmp_path)
    texts = sorted(r["text"] for r in rows)
    assert texts == ["A lighthouse on a cliff", "A stone bridge over a river in autumn"]
    assert entry["dropped"] == {"duplicate_image": 2}


@pytest.mark.parametrize(("n_images", "kept"), [(11, 0), (10, 10)])
def test_text_shared_by_more_than_ten_images_is_dropped(tmp_path, n_images, kept):
    shared = "Reader photo of the week from our community gallery"
    pairs = [_pair(f"reader-{i}", f"https://news.example.com/gallery/{i}", shared if i % 2 else shared.upper() + "!", 0.8)
             for i in range(n_images)]
    rows, entry = run_aggregate(pairs, tmp_path)
    assert len(rows) == kept
    assert entry["dropped"].get("shared_text", 0) == n_images - kept


def test_shared_text_counts_images_seen_before_the_filters(tmp_path):
    shared = "Photo of the day from our readers"
    before = [_pair(f"reader-{i}", f"https://news.example.com/day/{i}", shared, 0.6) for i in range(12)]
    after = before[:4]  # the image and relevance filters let only four through
    rows, entry = run_aggregate(after, tmp_path, described=before)
    assert rows == [] and entry["dropped"] == {"shared_text": 4}
    rows, _ = run_aggregate(after, tmp_path, described=before[:10])
    assert len(rows) == 4


def _synthetic_pairs(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        image = f"img{rng.randrange(n // 3)}"
        phash = f"{int(hashlib.sha1(image.encode()).hexdigest()[:16], 16):016x}"
        pairs.append(_pair(image, f"https://site{rng.randrange(50)}.example.com/{i}",
                           rng.choice(["A dog on a beach", "Sunset over hills", f"Caption number {i}"]),
                           round(rng.random(), 2), phash))
    return pairs


def test_output_is_deterministic_across_runs_and_worker_counts(tmp_path):
    pairs = _synthetic_pairs(300)
    first, _ = run_aggregate(pairs, tmp_path)
    second, _ = run_aggregate(list(reversed(pairs)), tmp_path)
    multi, _ = run_aggregate(pairs, tmp_path, "--direct_num_workers=2", "--direct_running_mode=multi_processing")
    assert first == second == multi and len(first) > 50


def test_lsh_bands_find_every_pair_within_the_distance():
    rng = random.Random(1)
    for _ in range(200):
        a = f"{rng.getrandbits(64):016x}"
        b = _flip_bits(a, rng.sample(range(64), rng.randrange(5)))
        assert phash_distance(a, b) <= 4
        assert set(phash_bands(a, 4)) & set(phash_bands(b, 4))
        assert near_duplicate_links([("a", a), ("b", b)], 4) == [("a", "b")]


def test_normalized_text_ignores_case_spacing_and_punctuation():
    assert normalize_text("  Photo of the DAY! ") == normalize_text("photo of the day") == "photo of the day"
