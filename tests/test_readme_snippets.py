"""README's "Reading the shards" snippets, run as written on the demo corpus; the corpus's dataset card.

The demo corpus is what a new user makes first: `lait sample-crawl`, `lait run --no-fetch` and
`lait export`, in a folder of its own, so the snippets' relative paths (`corpus/`, `wds/`) hold.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile

import datasets
import huggingface_hub
import pytest
import yaml

from lait.pipeline.schema import COLUMN_NAMES
from tests.conftest import ROOT

LAIT = [sys.executable, "-m", "lait.pipeline.cli"]
# Runs each snippet in a fresh namespace, as a reader pasting it would.
RUNNER = """
import json, sys
for i, code in enumerate(json.load(sys.stdin), start=1):
    exec(compile(code, f"<README snippet {i}>", "exec"), {"__name__": "__main__"})
    print(f"snippet {i} ran", flush=True)
"""


def lait(*args: str, cwd) -> subprocess.CompletedProcess:
    result = subprocess.run([*LAIT, *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def reading_snippets() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("### Reading the shards")
    section = readme[start:readme.index("\n## ", start)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    lait("sample-crawl", "sample.warc.gz", cwd=root)
    lait("run", "--input", "sample.warc.gz", "--output", "corpus", "--no-fetch", "--progress", "false", cwd=root)
    exported = lait("export", "corpus/", "--output", "wds/", cwd=root)
    return {"root": root, "corpus": root / "corpus", "export": exported.stdout,
            "manifest": json.loads((root / "corpus" / "_SUCCESS").read_text())}


def test_every_reading_snippet_runs_on_the_demo_corpus(demo):
    snippets = reading_snippets()
    assert len(snippets) >= 6 and any("load_dataset" in s for s in snippets) and any("webdataset" in s for s in snippets)
    root = demo["root"]
    env = {**os.environ, "HF_HOME": str(root / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(snippets), cwd=root, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"snippet {len(snippets)} ran" in result.stdout
    assert "Image(mode=None, decode=True)" in result.stdout  # the datasets snippet prints the feature


def test_load_dataset_shows_image_on_the_demo_corpus(demo, tmp_path):
    corpus, rows = demo["corpus"], demo["manifest"]["rows"]
    assert rows > 5
    loaded = datasets.load_dataset("parquet", data_files=str(corpus / "shard-*.parquet"), split="train",
                                   cache_dir=str(tmp_path / "a"))
    assert loaded.features["image"] == datasets.Image() and loaded.num_rows == rows
    assert loaded[0]["image"].size == (loaded[0]["width"], loaded[0]["height"])
    # The folder itself: the card's `configs` point datasets at the shards and nothing else there.
    folder = datasets.load_dataset(str(corpus), split="train", cache_dir=str(tmp_path / "b"))
    assert folder.features == loaded.features and folder.num_rows == rows


def test_the_dataset_card_is_written_before_the_commit_and_listed(demo):
    corpus, manifest = demo["corpus"], demo["manifest"]
    assert "README.md" in manifest["files"]
    text = (corpus / "README.md").read_text(encoding="utf-8")
    _, front, body = text.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["license"] == "other" and meta["language"] == ["en"] and meta["size_categories"] == ["n<1K"]
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "shard-*.parquet"}]}]
    features = meta["dataset_info"]["features"]
    assert [f["name"] for f in features] == COLUMN_NAMES and {"name": "image", "dtype": "image"} in features
    assert meta["dataset_info"]["splits"][0]["num_examples"] == manifest["rows"]
    assert huggingface_hub.DatasetCard.load(corpus / "README.md").data.license == "other"  # the Hub's own parser
    assert "belong to their owners" in body and "grants no licence" in body
    config = json.loads((corpus / "_run_config.json").read_text())
    assert f"lait {config['lait']}" in body
    assert "lait run --input sample.warc.gz --output corpus --no-fetch\n" in body  # options that differ from defaults
    for stage in json.loads((corpus / "_funnel.json").read_text())["stages"]:
        assert f"| {stage['name']} | {stage['in']} | {stage['out']} |" in body
    assert "run_id" not in text and config["run_id"] not in text  # the same inputs and options, the same card


def test_exported_demo_samples_all_have_a_jpg(demo):
    tars = sorted((demo["root"] / "wds").glob("*.tar"))
    keys: dict[str, set[str]] = {}
    for path in tars:
        with tarfile.open(path) as tar:
            for name in tar.getnames():
                key, ext = name.split(".", 1)
                keys.setdefault(key, set()).add(ext)
    assert len(keys) == demo["manifest"]["rows"] and set(map(frozenset, keys.values())) == {frozenset({"jpg", "txt", "json"})}
    assert f"wrote {len(keys)} pairs" in demo["export"]
