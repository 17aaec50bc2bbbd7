"""No run loses a corpus: output is replaced only by a run that succeeded, a stopped run resumes.

The crawl is the first 36 records of the sample crawl (7 pages, their images), dealt out
record by record into 3 WARC files, so pages and their images sit in different files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.warcwriter import WARCWriter

from lait.pipeline import output_dir
from lait.pipeline.cli import main as lait
from lait.sample_crawl import write_sample_crawl

LAIT = [sys.executable, "-m", "lait.pipeline.cli"]
RECORDS, FILES = 36, 3


def deal_records(source: Path, folder: Path, files: int, limit: int) -> list[Path]:
    """The first `limit` records of `source`, dealt out in turn into `files` WARC files."""
    folder.mkdir()
    paths = [folder / f"crawl-{i}.warc.gz" for i in range(files)]
    outs = [open(path, "wb") for path in paths]
    writers = [WARCWriter(out, gzip=True) for out in outs]
    with open(source, "rb") as f:
        for i, record in enumerate(ArchiveIterator(f, arc2warc=False)):
            if i == limit:
                break
            writers[i % files].write_record(record)
    for out in outs:
        out.close()
    return paths


def run_lait(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LAIT, "run", *args], capture_output=True, text=True, timeout=600)


def snapshot(folder: Path) -> dict[str, str]:
    """SHA-1 of every file in `folder`, a run's working folder aside."""
    return {str(path.relative_to(folder)): hashlib.sha1(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*"))
            if path.is_file() and not path.relative_to(folder).parts[0].startswith(output_dir.TMP_PREFIX)}


def corpus_rows(folder: Path) -> list[dict]:
    manifest = json.loads((folder / "_SUCCESS").read_text())
    shards = [folder / name for name in manifest["files"] if name.startswith("shard-")]
    return sorted((row for shard in shards for row in pq.read_table(shard).to_pylist()),
                  key=lambda row: (row["image_sha1"], row["page_url"]))


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-2000:]
    return lines[0]


@pytest.fixture(scope="module")
def crawl(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("crawl")
    write_sample_crawl(str(root / "sample.warc.gz"))
    return [str(path) for path in deal_records(root / "sample.warc.gz", root / "files", FILES, RECORDS)]


@pytest.fixture(scope="module")
def previous(crawl, tmp_path_factory) -> dict:
    """A corpus from one uninterrupted run, all files in one part."""
    out = tmp_path_factory.mktemp("previous") / "corpus"
    result = run_lait("--input", *crawl, "--output", str(out), "--no-fetch", "--progress", "false",
                      "--files_per_part", str(FILES))
    assert result.returncode == 0, result.stderr[-3000:]
    return {"dir": out, "files": snapshot(out), "rows": corpus_rows(out),
            "funnel": json.loads((out / "_funnel.json").read_text())}


def test_rerun_into_a_corpus_without_overwrite_is_a_one_line_error(crawl, previous):
    result = run_lait("--input", *crawl, "--output", str(previous["dir"]), "--no-fetch")
    assert result.returncode == 2
    assert "already holds a corpus" in one_line(result.stderr) and "--overwrite" in result.stderr
    assert snapshot(previous["dir"]) == previous["files"]
    manifest = json.loads((previous["dir"] / "_SUCCESS").read_text())
    assert sorted(manifest["files"]) == sorted(name for name in previous["files"] if name != "_SUCCESS")
    assert manifest["rows"] == len(previous["rows"]) > 0


def test_killed_run_keeps_the_corpus_and_resume_gives_the_uninterrupted_rows(crawl, previous, tmp_path):
    out = tmp_path / "corpus"
    shutil.copytree(previous["dir"], out)
    # A file of the user's that looks like a shard, and one the previous run listed as its own.
    shutil.copy(out / "shard-00000-of-00001.parquet", out / "shard-x.parquet")
    (out / "_rejects" / "Old.gone.jsonl").write_text("{}\n")
    manifest = json.loads((out / "_SUCCESS").read_text())
    (out / "_SUCCESS").write_text(json.dumps({**manifest, "files": [*manifest["files"], "_rejects/Old.gone.jsonl"]}))
    before = snapshot(out)

    # Three parts of one file each; killed once the first part is done.
    args = ["--input", *crawl, "--output", str(out), "--no-fetch", "--progress", "false", "--overwrite",
            "--files_per_part", "1"]
    process = subprocess.Popen([*LAIT, "run", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not list(out.glob("_tmp-*/parts/part-00000/_DONE.json")) and process.poll() is None:
        assert time.time() < deadline
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert snapshot(out) == before  # the same files, the same bytes: nothing new under a final name
    assert not [p for p in out.rglob("*") if p.is_file() and p.stat().st_size == 0]

    result = run_lait(*args, "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming: 1 of 3 parts done" in result.stderr or "resuming: 2 of 3 parts done" in result.stderr
    after = snapshot(out)
    assert corpus_rows(out) == previous["rows"]
    assert json.loads((out / "_funnel.json").read_text()) == previous["funnel"]
    same = [name for name in previous["files"] if name not in ("_SUCCESS", "_run_config.json")]
    assert {name: after[name] for name in same} == {name: previous["files"][name] for name in same}
    assert after["shard-x.parquet"] == before["shard-x.parquet"]  # the user's file stays
    assert "_rejects/Old.gone.jsonl" not in after  # the previous corpus's own file is gone
    assert not list(out.glob("_tmp-*"))
    config = json.loads((out / "_run_config.json").read_text())
    assert config["files_per_part"] == 1 and config["input_files"] == sorted(crawl)
    assert json.loads((out / "_SUCCESS").read_text())["run_id"] == config["run_id"] != manifest["run_id"]


def _folder_with(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_commit_stopped_midway_is_finished_by_the_next_run(tmp_path):
    out = tmp_path / "out"
    old = _folder_with(out / "_tmp-old" / "final", {"shard-00000-of-00002.parquet": "old0",
                                                    "shard-00001-of-00002.parquet": "old1", "_funnel.json": "{}"})
    output_dir.commit(str(out), str(old.parent), {"run_id": "old"}, None)
    (out / "shard-x.parquet").write_text("the user's")
    new = _folder_with(out / "_tmp-new" / "final", {"shard-00000-of-00001.parquet": "new0", "_funnel.json": "[]",
                                                    "_rejects/A.b.jsonl": "{}\n"})
    previous = output_dir.read_manifest(str(out))
    journal = {"old": previous["files"], "new": ["_funnel.json", "_rejects/A.b.jsonl", "shard-00000-of-00001.parquet"],
               "manifest": {"run_id": "new", "files": []}}
    journal["manifest"]["files"] = journal["new"]
    output_dir.write_json(str(new.parent / output_dir.COMMIT_FILE), journal)
    # Stopped after: the old _SUCCESS gone, one old shard gone, the new _funnel.json moved in.
    (out / "_SUCCESS").unlink()
    (out / "shard-00000-of-00002.parquet").unlink()
    os.replace(new / "_funnel.json", out / "_funnel.json")

    assert output_dir.finish_interrupted_commit(str(out)) == [str(new.parent)]
    files = {str(p.relative_to(out)): p.read_text() for p in out.rglob("*") if p.is_file()}
    assert files.pop("_SUCCESS") and files == {
        "_funnel.json": "[]", "_rejects/A.b.jsonl": "{}\n", "shard-00000-of-00001.parquet": "new0",
        "shard-x.parquet": "the user's"}
    assert output_dir.read_manifest(str(out))["run_id"] == "new"


def test_overwrite_refuses_a_corpus_lait_did_not_record(crawl, tmp_path, capsys):
    out = _folder_with(tmp_path / "old", {"shard-00000-of-00001.parquet": "x", "_funnel.json": "{}"})
    assert lait(["run", "--input", crawl[0], "--output", str(out), "--no-fetch", "--overwrite"]) == 2
    assert "no _SUCCESS manifest" in one_line(capsys.readouterr().err)
    assert sorted(p.name for p in out.iterdir()) == ["_funnel.json", "shard-00000-of-00001.parquet"]


def test_inspect_on_an_unfinished_corpus_is_one_line(previous, tmp_path, capsys):
    unfinished = tmp_path / "unfinished"
    shutil.copytree(previous["dir"], unfinished)
    (unfinished / "_SUCCESS").unlink()
    assert lait(["inspect", str(unfinished)]) == 0
    assert "has no _SUCCESS" in one_line(capsys.readouterr().err)

    running = _folder_with(tmp_path / "running", {"_tmp-abc/_RUN.json": "{}"})
    assert lait(["inspect", str(running)]) == 2
    assert "--resume" in one_line(capsys.readouterr().err)

    for name, data in (("empty", b""), ("damaged", b"PAR1 not a parquet file")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "shard-00000-of-00001.parquet").write_bytes(data)
        assert lait(["inspect", str(folder), "--sample", "2"]) == 2
        assert "shard-00000-of-00001.parquet" in one_line(capsys.readouterr().err)


def test_training_log_has_each_step_once_after_a_resume(tmp_path):
    import torch

    from lait.imagebert.train import TrainConfig, save_checkpoint, train
    from tests.conftest import shared_path
    from tests.imagebert_fixtures import flickr_captions, write_pairs, write_small_vocab

    torch.set_num_threads(1)
    captions = flickr_captions(shared_path("captions", "captions.tsv"), images=4)
    corpus, regions = write_pairs(tmp_path, captions)
    vocab = write_small_vocab(tmp_path / "vocab.txt", [t for texts in captions.values() for t in texts])

    def run(**changes) -> None:
        config = TrainConfig(data=str(corpus), regions=str(regions), out=str(tmp_path / "run"), preset="tiny",
                             vocab_file=str(vocab), batch_size=8, max_text_len=16, max_regions=8, shuffle_buffer=16,
                             num_workers=0, max_steps=6, log_interval=1, checkpoint_interval=1000, **changes)
        train(config)

    def logged() -> list[int]:
        return [json.loads(line)["step"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]

    run(stop_after=3)  # checkpoint at step 3
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    run(stop_after=2, resume=True)  # logs steps 4 and 5...
    save_checkpoint(tmp_path / "run" / "last.pt", saved)  # ...and is stopped before its checkpoint
    assert logged() == [1, 2, 3, 4, 5]
    with open(tmp_path / "run" / "log.jsonl", "a") as f:
        f.write('{"step": 6, "lo')  # a line cut by the stop
    run(resume=True)
    assert logged() == [1, 2, 3, 4, 5, 6]
    run(stop_after=2)  # a fresh run in the same folder starts a new log
    assert logged() == [1, 2]


def test_automatic_parts_are_cut_by_bytes():
    from lait.pipeline.options import MAX_PART_BYTES, MIN_PART_BYTES, PARTS
    from lait.pipeline.run import split_parts

    files = [f"f{i:03d}" for i in range(100)]
    # Small files: one part, whose set-up costs more than redoing it.
    assert split_parts(files, 0, [2**20] * 100) == [files]
    # Common Crawl sized files: about PARTS parts of equal bytes, every file once, in order.
    parts = split_parts(files, 0, [2**30] * 100)
    assert len(parts) in (PARTS, PARTS + 1) and sum(parts, []) == files
    # One huge file among small ones: the parts follow the bytes, not the file count.
    sizes = [MIN_PART_BYTES] * 99 + [50 * MIN_PART_BYTES]
    parts = split_parts(files, 0, sizes)
    assert len(parts[0]) == 19 and len(parts[-1]) < 19 and sum(parts, []) == files
    # Many large files: no part over MAX_PART_BYTES (plus the file that crosses it).
    sizes = [2**30] * 1000
    parts = split_parts([str(i) for i in range(1000)], 0, sizes)
    assert max(len(p) for p in parts) * 2**30 <= MAX_PART_BYTES + 2**30
    # An explicit --files_per_part is kept as given.
    assert [len(p) for p in split_parts(files, 30)] == [30, 30, 30, 10]
