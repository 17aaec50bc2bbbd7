"""`lait run` end to end on the sample crawl and on a real crawl from another project's tests."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from copy import deepcopy

import pyarrow.dataset as ds
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from lait.pipeline.funnel import STAGES, reconcile
from lait.pipeline.inspect import shard_paths
from lait.pipeline.options import LaitOptions
from lait.pipeline.run import ReusedViews
from lait.pipeline.schema import CORPUS_SCHEMA, EXTENSIONS
from lait.sample_crawl import EXPECTED, SHARED_CAPTION, expected_text_matches, write_sample_crawl
from tests.conftest import shared_path

LAIT = [sys.executable, "-m", "lait.pipeline.cli"]


def lait_run(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([*LAIT, "run", *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    crawl = root / "sample.warc.gz"
    write_sample_crawl(str(crawl))
    result = lait_run("--input", str(crawl), "--output", str(root / "corpus"), "--no-fetch")
    rows = ds.dataset(shard_paths(str(root / "corpus")), format="parquet").to_table().to_pylist()
    funnel = json.loads((root / "corpus" / "_funnel.json").read_text())
    return {"dir": root / "corpus", "rows": rows, "funnel": funnel, "stdout": result.stdout}


def _expected(outcome: str) -> list[dict]:
    return [e for e in EXPECTED if e["outcome"] == outcome]


def test_funnel_reconciles_and_is_printed(sample_run):
    funnel = sample_run["funnel"]
    assert [s["name"] for s in funnel["stages"]] == STAGES
    assert reconcile(funnel) == []
    assert funnel["stages"][-1]["out"] == len(sample_run["rows"])
    assert "ReadCrawl" in sample_run["stdout"] and "WriteShards" in sample_run["stdout"]


def test_good_article_photos_are_kept_with_their_descriptions(sample_run):
    by_page = {row["page_url"]: row for row in sample_run["rows"]}
    kept = _expected("kept")
    found = [e for e in kept if e["page_url"] in by_page and by_page[e["page_url"]]["image_url"] in e["image_urls"]]
    described = [e for e in found if expected_text_matches(e, by_page[e["page_url"]]["text"])]
    assert len(found) >= len(kept) - 4, [e["case"] for e in kept if e not in found]
    assert len(described) >= len(found) - 2


def test_logos_icons_ads_and_pixels_never_become_rows(sample_run):
    photos = {url for e in EXPECTED for url in e["image_urls"]}
    clutter = [row["image_url"] for row in sample_run["rows"] if row["image_url"] not in photos]
    assert clutter == []
    assert all(row["width"] > 300 and row["height"] > 300 for row in sample_run["rows"])


def test_foreign_pages_shared_captions_and_duplicates_are_dropped(sample_run):
    pages = {row["page_url"] for row in sample_run["rows"]}
    for outcome in ("language", "shared_text", "no_image", "not_in_crawl", "too_small", "not_natural"):
        assert not pages & {e["page_url"] for e in _expected(outcome)}, outcome
    for copy in _expected("duplicate"):  # one photo, one row: the copy's page or the original's, not both
        assert len(pages & {copy["page_url"], copy["duplicate_of"]}) <= 1, copy["case"]
    dropped = {s["name"]: s["dropped"] for s in sample_run["funnel"]["stages"]}
    assert dropped["ParsePages"]["language"] == len(_expected("language"))
    # The shared caption's pairs that the relevance filter let through all go as shared_text.
    low = sample_run["dir"] / "_rejects" / "ScoreRelevance.low_relevance.jsonl"
    low_shared = sum(json.loads(line)["text"] == SHARED_CAPTION for line in low.read_text().splitlines()) \
        if low.exists() else 0
    assert dropped["Aggregate"]["shared_text"] == len(_expected("shared_text")) - low_shared > 0
    assert dropped["AcquireImages"]["not_in_crawl"] >= len(_expected("not_in_crawl"))


def test_shards_follow_the_schema_and_rejects_explain_drops(sample_run):
    dataset = ds.dataset(shard_paths(str(sample_run["dir"])), format="parquet")
    assert dataset.schema.equals(CORPUS_SCHEMA)
    assert all(row["image_sha1"] and row["image"]["bytes"] and row["text"] for row in sample_run["rows"])
    assert all(row["image"]["path"] == f"{row['image_sha1']}.{EXTENSIONS[row['image_format']]}"
               for row in sample_run["rows"])
    rejects = sorted(p.name for p in (sample_run["dir"] / "_rejects").iterdir())
    assert "ParsePages.language.jsonl" in rejects and "Aggregate.shared_text.jsonl" in rejects
    entry = json.loads((sample_run["dir"] / "_rejects" / "ParsePages.language.jsonl").read_text().splitlines()[0])
    assert entry["stage"] == "ParsePages" and entry["reason"] == "language" and entry["url"].startswith("http")


def test_real_crawl_from_another_project_gives_readable_shards(tmp_path):
    warc = shared_path("warc", "archivesunleashed+aut", "src", "test", "resources", "warc", "example.warc.gz")
    lait_run("--input", str(warc), "--output", str(tmp_path / "out"))
    funnel = json.loads((tmp_path / "out" / "_funnel.json").read_text())
    assert reconcile(funnel) == []
    assert funnel["stages"][0]["in"] > 800 and funnel["stages"][1]["in"] > 50
    table = ds.dataset(shard_paths(str(tmp_path / "out")), format="parquet").to_table()
    assert table.num_rows == funnel["stages"][-1]["out"]


def _row_hashes(directory) -> list[str]:
    table = ds.dataset(shard_paths(str(directory)), format="parquet").to_table()
    return sorted(hashlib.sha1(json.dumps(row, sort_keys=True, default=lambda b: b.hex()).encode()).hexdigest()
                  for row in table.to_pylist())


def test_dask_cluster_gives_the_same_rows_and_funnel_as_direct_runner(sample_run, tmp_path):
    crawl = sample_run["dir"].parent / "sample.warc.gz"
    result = lait_run("--input", str(crawl), "--output", str(tmp_path / "dask"), "--no-fetch",
                      "--runner", "dask", "--dask_workers", "2")
    assert "Traceback" not in result.stderr
    assert json.loads((tmp_path / "dask" / "_funnel.json").read_text()) == sample_run["funnel"]
    assert _row_hashes(tmp_path / "dask") == _row_hashes(sample_run["dir"])


def test_reused_views_are_live_and_deep_copies_stay_apart():
    options = PipelineOptions(["--runner", "DirectRunner"], rejects_per_reason=7).view_as(ReusedViews)
    standard = options.view_as(StandardOptions)
    assert options.view_as(StandardOptions) is standard
    assert standard.runner == "DirectRunner" and options.view_as(LaitOptions).rejects_per_reason == 7
    options.view_as(LaitOptions).rejects_per_reason = 9
    assert options.view_as(LaitOptions).rejects_per_reason == 9
    # beam.Pipeline deep-copies its options: the copy's views must follow the copy, not the original.
    copied = deepcopy(options)
    copied.view_as(StandardOptions).runner = "DaskRunner"
    assert copied.view_as(StandardOptions).runner == "DaskRunner"
    assert copied.get_all_options()["runner"] == "DaskRunner"
    assert standard.runner == "DirectRunner"
