"""`lait import-pairs`: JSONL, CC3M TSV and Parquet pair lists into corpus shards."""

from __future__ import annotations

import csv
import functools
import json
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from lait.pipeline.funnel import reconcile
from lait.pipeline.inspect import shard_paths
from lait.pipeline.schema import CORPUS_SCHEMA
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def flickr():
    root = shared_path("captions")
    with open(root / "captions.tsv", encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if r["split"] == "dev"]
    images = sorted({r["image"] for r in rows})[:4]
    return root, [r for r in rows if r["image"] in images and int(r["caption_index"]) < 2]


@pytest.fixture(scope="module")
def photo_server(flickr):
    root, _ = flickr
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root / "images"))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def import_pairs(list_path, output, *flags) -> dict:
    result = subprocess.run([sys.executable, "-m", "lait.pipeline.cli", "import-pairs", "--input", str(list_path),
                             "--output", str(output), "--min_image_side", "200", *flags],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    funnel = json.loads((output / "_funnel.json").read_text())
    assert reconcile(funnel) == []
    return {s["name"]: s for s in funnel["stages"]}


def test_jsonl_with_local_paths_keeps_every_caption(flickr, tmp_path):
    root, rows = flickr
    lines = [json.dumps({"image": str(root / "images" / r["image"]), "caption": r["caption"]}) for r in rows]
    lines += ['{"image": "no-such-photo.jpg", "caption": "A dog runs on the beach"}', "not json at all"]
    (tmp_path / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    stages = import_pairs(tmp_path / "pairs.jsonl", tmp_path / "out")
    assert stages["ReadPairs"]["dropped"] == {"bad_line": 1}
    assert stages["AcquireImages"]["dropped"] == {"file_error": 1}
    table = ds.dataset(shard_paths(str(tmp_path / "out")), format="parquet").to_table()
    assert table.schema.equals(CORPUS_SCHEMA) and table.num_rows == len(rows) == 8
    assert sorted(table.column("text").to_pylist()) == sorted(" ".join(r["caption"].split()) for r in rows)
    assert set(table.column("image_source").to_pylist()) == {"file"}
    assert len(set(table.column("image_sha1").to_pylist())) == 4
    assert "lait import-pairs --input" in (tmp_path / "out" / "README.md").read_text()  # the dataset card

    # The shards just written are a list of pairs too: `image` is an Image() column {bytes, path}.
    stages = import_pairs(tmp_path / "out" / "shard-00000-of-00001.parquet", tmp_path / "again")
    again = ds.dataset(shard_paths(str(tmp_path / "again")), format="parquet").to_table()
    assert stages["ReadPairs"]["out"] == 8 and again.num_rows == 8
    assert sorted(again.column("image_url").to_pylist()) == sorted(table.column("image_url").to_pylist())
    assert sorted(again.column("image").to_pylist(), key=str) == sorted(table.column("image").to_pylist(), key=str)


def test_cc3m_tsv_and_parquet_lists_download_over_http(flickr, photo_server, tmp_path):
    _, rows = flickr
    tsv = "".join(f"{r['caption']}\t{photo_server}/{r['image']}\n" for r in rows[:4])
    tsv += f"A missing photo of a cat\t{photo_server}/missing.jpg\n"
    (tmp_path / "cc3m.tsv").write_text(tsv)
    stages = import_pairs(tmp_path / "cc3m.tsv", tmp_path / "tsv", "--allow_private_networks")
    assert stages["AcquireImages"]["dropped"] == {"http_404": 1} and stages["WriteShards"]["out"] == 4
    sources = ds.dataset(shard_paths(str(tmp_path / "tsv")), format="parquet").to_table().column("image_source").to_pylist()
    assert sources == ["http"] * 4

    table = pa.table({"url": [f"{photo_server}/{r['image']}" for r in rows[:2]], "caption": [r["caption"] for r in rows[:2]]})
    pq.write_table(table, tmp_path / "pairs.parquet")
    stages = import_pairs(tmp_path / "pairs.parquet", tmp_path / "pq", "--allow_private_networks")
    assert stages["WriteShards"]["out"] == 2


def test_unknown_list_format_is_a_one_line_error(tmp_path):
    (tmp_path / "pairs.csv").write_text("a,b\n")
    result = subprocess.run([sys.executable, "-m", "lait.pipeline.cli", "import-pairs", "--input", str(tmp_path / "pairs.csv"),
                             "--output", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "pairs.csv" in result.stderr and "Traceback" not in result.stderr
