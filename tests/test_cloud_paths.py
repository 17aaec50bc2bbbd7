"""Cloud paths end to end: run, inspect, export, regions and train on s3:// against a real S3 server.

The server is moto's (``python -m moto.server``), one process for the module on a free port of
127.0.0.1; the commands run as subprocesses with the standard ``AWS_*`` variables pointing at
it, as a user's would, and their results are compared with a local run of the same crawl.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request

import pyarrow.parquet as pq
import pytest

pytest.importorskip("moto", reason="the cloud path tests need moto[server]: pip install -e '.[dev]'")
pytest.importorskip("s3fs", reason="the cloud path tests need s3fs: pip install -e '.[dev]' (or 'lait[s3]')")

from lait.errors import UsageError  # noqa: E402
from lait.pipeline import output_dir  # noqa: E402
from lait.pipeline.cli import main as lait  # noqa: E402
from lait.pipeline.inspect import summarize  # noqa: E402

LAIT = [sys.executable, "-m", "lait.pipeline.cli"]
BUCKET = "lait-test"
CORPUS = f"s3://{BUCKET}/corpus"
REGIONS = f"s3://{BUCKET}/regions"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, server: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"moto server exited with status {server.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto server did not answer at {url} within {seconds} s")


@pytest.fixture(scope="module")
def s3():
    """`(environment for the commands, s3fs filesystem)` of a moto server with the bucket BUCKET."""
    import fsspec

    port = _free_port()
    aws = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | aws
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    saved = {k: os.environ.get(k) for k in aws}
    os.environ.update(aws)  # this process reads the bucket too (and lait.storage's s3fs is made here)
    try:
        _wait_until_up(aws["AWS_ENDPOINT_URL"], server)
        fs = fsspec.filesystem("s3", skip_instance_cache=True)
        fs.mkdir(BUCKET)
        yield env, fs
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.terminate()
        server.wait(timeout=30)


def _lait(env: dict, cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LAIT, *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd)


def _ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _rows(paths, fs=None) -> list[tuple]:
    """(image_sha1, text, page_url) of every row of the shards, sorted."""
    rows = []
    for path in paths:
        with (fs.open(path, "rb") if fs else open(path, "rb")) as f:
            table = pq.read_table(f, columns=["image_sha1", "text", "page_url"])
        rows += zip(*(table.column(name).to_pylist() for name in table.column_names))
    return sorted(rows)


@pytest.fixture(scope="module")
def runs(s3, tmp_path_factory):
    """The demo crawl run twice, at once: from and to the bucket, and locally (the reference)."""
    env, fs = s3
    root = tmp_path_factory.mktemp("cloud")
    crawl = root / "sample.warc.gz"
    _ok(_lait(env, root, "sample-crawl", str(crawl)))
    fs.put(str(crawl), f"{BUCKET}/crawl/sample.warc.gz")
    local = subprocess.Popen([*LAIT, "run", "--input", str(crawl), "--output", str(root / "local"), "--no-fetch",
                              "-q"], env=env, cwd=root, stderr=subprocess.PIPE, text=True)
    remote = _lait(env, root, "run", "--input", f"s3://{BUCKET}/crawl/*.warc.gz", "--output", CORPUS, "--no-fetch")
    assert local.wait(timeout=300) == 0, local.stderr.read()[-3000:]
    local.stderr.close()
    _ok(remote)
    return {"root": root, "crawl": crawl, "local": root / "local", "stdout": remote.stdout,
            "local_rows": _rows(sorted((root / "local").glob("shard-*.parquet")))}


def test_run_reads_crawl_from_s3_and_commits_the_corpus_there(s3, runs):
    _, fs = s3
    names = sorted(path.split("/corpus/", 1)[1] for path in fs.find(f"{BUCKET}/corpus"))
    assert "_SUCCESS" in names and "README.md" in names and "_funnel.json" in names
    assert not [name for name in names if name.startswith(output_dir.TMP_PREFIX)]  # the run folder is gone
    manifest = json.loads(fs.cat(f"{BUCKET}/corpus/_SUCCESS"))
    assert sorted(manifest["files"]) == [name for name in names if name != "_SUCCESS"]
    shards = [f"{BUCKET}/corpus/{name}" for name in names if name.startswith("shard-")]
    rows = _rows(shards, fs)
    assert len(rows) > 5 and rows == runs["local_rows"]
    funnel = json.loads(fs.cat(f"{BUCKET}/corpus/_funnel.json"))
    local_funnel = json.loads((runs["local"] / "_funnel.json").read_text())
    assert funnel["stages"] == local_funnel["stages"]
    assert f"{len(rows)} image-text pairs written to {CORPUS}" in runs["stdout"]
    assert not (runs["root"] / "s3:").exists()


def test_inspect_reads_the_corpus_summary_samples_rejects_and_writes_a_report(s3, runs, capsys):
    env, fs = s3
    summary = json.loads(_ok(_lait(env, runs["root"], "inspect", CORPUS, "--json")).stdout)
    local = summarize(str(runs["local"]))
    assert summary["rows"] == local["rows"] == len(runs["local_rows"]) and summary["shards"] == local["shards"]
    assert summary["distributions"] == local["distributions"] and summary["funnel"] == local["funnel"]
    # The other views in this process (the bucket's variables are set here too): one CLI start each is slow.
    assert lait(["inspect", CORPUS, "--sample", "3"]) == 0
    sample = capsys.readouterr().out.splitlines()
    assert len(sample) == 3 and all(json.loads(line)["text"] for line in sample)
    reason = sorted(p.name for p in (runs["local"] / "_rejects").glob("*.jsonl"))[0][: -len(".jsonl")]
    assert lait(["inspect", CORPUS, "--rejects", reason]) == 0
    rejects = capsys.readouterr().out.splitlines()
    assert len(rejects) == len((runs["local"] / "_rejects" / f"{reason}.jsonl").read_text().splitlines()) > 0
    assert lait(["inspect", CORPUS, "--html", f"s3://{BUCKET}/report/index.html"]) == 0
    assert fs.cat(f"{BUCKET}/report/index.html").startswith(b"<!doctype html>")


def test_export_from_s3_writes_webdataset_tars_to_s3(s3, runs):
    env, fs = s3
    result = _ok(_lait(env, runs["root"], "export", CORPUS, "--output", f"s3://{BUCKET}/wds",
                       "--samples_per_shard", "5"))
    tars = sorted(fs.find(f"{BUCKET}/wds"))
    n = len(runs["local_rows"])
    assert [t.rsplit("/", 1)[1] for t in tars] == [f"{i:05d}.tar" for i in range(-(-n // 5))]
    keys = []
    for path in tars:
        with tarfile.open(fileobj=io.BytesIO(fs.cat(path))) as tar:
            keys += [name[: -len(".txt")] for name in tar.getnames() if name.endswith(".txt")]
    assert sorted(keys) == sorted(sha1 for sha1, _, _ in runs["local_rows"])
    assert result.stdout.startswith(f"wrote {n} pairs in {len(tars)} tar shards to s3://{BUCKET}/wds")
    assert not (runs["root"] / "s3:").exists()  # no local folder named after the URL


def test_regions_train_and_eval_read_the_corpus_from_s3_and_train_writes_its_run_there(s3, runs):
    env, fs = s3
    _ok(_lait(env, runs["root"], "regions", "--data", CORPUS, "--output", REGIONS, "--max_regions", "8",
              "--input_size", "128", "--no_label_probs"))
    names = [path.rsplit("/", 1)[1] for path in fs.find(f"{BUCKET}/regions")]
    assert "_meta.json" in names and any(name.startswith("regions-") for name in names)
    shards = [f"{BUCKET}/regions/{name}" for name in names if name.endswith(".parquet")]
    with fs.open(shards[0], "rb") as f:
        assert pq.read_metadata(f).num_rows == len({sha1 for sha1, _, _ in runs["local_rows"]})

    # The run folder is a URL too: trained 2 steps, then resumed from the bucket to 4.
    run = f"s3://{BUCKET}/runs/stage1"
    train = ["train", "--preset", "tiny", "--data", CORPUS, "--regions", REGIONS, "--out", run, "--batch-size", "2",
             "--num-workers", "0", "--val-fraction", "0", "--set", "max_regions=8", "--set", "log_interval=1"]
    _ok(_lait(env, runs["root"], *train, "--max-steps", "4", "--set", "stop_after=2"))
    names = sorted(path.rsplit("/", 1)[1] for path in fs.find(f"{BUCKET}/runs/stage1"))
    assert {"config.json", "last.pt", "log.jsonl", "metrics.csv"} <= set(names), names
    assert not [name for name in names if name.endswith(".tmp") or ".partial-" in name]
    resumed = _ok(_lait(env, runs["root"], *train, "--max-steps", "4", "--resume"))
    assert "resumed" in resumed.stdout and "at step 2" in resumed.stdout
    log = [json.loads(line) for line in fs.cat(f"{BUCKET}/runs/stage1/log.jsonl").decode().splitlines()]
    assert [record["step"] for record in log if "loss" in record] == [1, 2, 3, 4]
    assert not (runs["root"] / "s3:").exists()  # no local folder named after the URL
    summary = json.loads(_ok(_lait(env, runs["root"], "inspect", run, "--json")).stdout)
    assert summary["steps"] == 4 and summary["records"] == 4 and "loss" in summary["curves"]
    _ok(_lait(env, runs["root"], "inspect", run, "--html", f"{run}/report.html"))
    fs.invalidate_cache()
    assert b"<svg" in fs.cat(f"{BUCKET}/runs/stage1/report.html")

    # eval-retrieval reads the checkpoint from the bucket, with its progress (a plain line per update off a terminal).
    result = _ok(_lait({**env, "LAIT_PROGRESS_INTERVAL": "0"}, runs["root"], "eval-retrieval", "--ckpt", run,
                       "--data", CORPUS, "--regions", REGIONS, "--n", "3"))
    metrics = json.loads(result.stdout.splitlines()[-1])
    assert metrics["n_images"] == 3
    done = metrics["n_images"] * metrics["n_texts"]
    assert re.search(rf"^lait eval-retrieval: \d+/{done} pairs \(\d+%\)", result.stderr, re.M), result.stderr


def test_overwrite_on_s3_replaces_only_the_files_its_manifest_lists(s3):
    """The commit's guarantee on an object store: old files listed in `_SUCCESS` go, the user's stay,
    the new ones are copied in and `_SUCCESS` comes last; a stopped commit is finished next time."""
    _, fs = s3
    out = f"s3://{BUCKET}/safe"
    for name, data in {"shard-00000-of-00001.parquet": b"old", "_funnel.json": b"{}", "notes.txt": b"mine",
                       "shard-x.parquet": b"mine too"}.items():
        fs.pipe(f"{BUCKET}/safe/{name}", data)
    fs.pipe(f"{BUCKET}/safe/_SUCCESS", json.dumps({"files": ["shard-00000-of-00001.parquet", "_funnel.json"],
                                                    "run_id": "old"}).encode())
    with pytest.raises(UsageError, match="already holds a corpus"):
        output_dir.check_previous(out, overwrite=False)
    previous = output_dir.check_previous(out, overwrite=True)
    new = ["_funnel.json", "_rejects/Stage.reason.jsonl", "shard-00000-of-00002.parquet", "shard-00001-of-00002.parquet"]
    for name in new:
        fs.pipe(f"{BUCKET}/safe/_tmp-new/final/{name}", name.encode())
    output_dir.commit(out, f"{out}/_tmp-new", {"run_id": "new"}, previous)

    def listing() -> dict[str, bytes]:
        fs.invalidate_cache()
        return {path.split("/safe/", 1)[1]: fs.cat(path) for path in fs.find(f"{BUCKET}/safe")}

    after = listing()
    assert sorted(after) == sorted([*new, "_SUCCESS", "notes.txt", "shard-x.parquet"])
    assert all(after[name] == name.encode() for name in new)
    assert output_dir.read_manifest(out) == {"files": new, "run_id": "new"}

    # A commit stopped after its journal: the next run finishes it, from the journal alone.
    fs.pipe(f"{BUCKET}/safe/_tmp-next/final/shard-00000-of-00001.parquet", b"next")
    journal = {"old": new, "new": ["shard-00000-of-00001.parquet"],
               "manifest": {"files": ["shard-00000-of-00001.parquet"], "run_id": "next"}}
    fs.pipe(f"{BUCKET}/safe/_tmp-next/{output_dir.COMMIT_FILE}", json.dumps(journal).encode())
    assert output_dir.finish_interrupted_commit(out) == [f"{out}/_tmp-next"]
    after = listing()
    assert sorted(after) == ["_SUCCESS", "notes.txt", "shard-00000-of-00001.parquet", "shard-x.parquet"]
    assert after["shard-00000-of-00001.parquet"] == b"next"


def test_user_mistakes_with_urls_are_one_line_errors(s3, runs, tmp_path, capsys):
    gone = "s3://no-such-bucket"
    mistakes = [
        ["inspect", f"{gone}/corpus"],
        ["export", CORPUS, "--output", f"{gone}/wds"],
        ["run", "--input", f"{gone}/crawl/*.warc.gz", "--output", str(tmp_path / "out")],
        ["run", "--input", str(runs["crawl"]), "--output", f"{gone}/corpus"],
        ["regions", "--data", f"{gone}/corpus", "--output", f"s3://{BUCKET}/elsewhere"],
        ["train", "--data", f"{gone}/corpus", "--regions", REGIONS, "--out", str(tmp_path / "run")],
        ["inspect", "nosuchprotocol://bucket/corpus"],
    ]
    for argv in mistakes:
        assert lait(argv) == 2, argv
        errors = capsys.readouterr().err.strip().splitlines()
        assert len(errors) == 1 and errors[0].startswith(f"lait {argv[0]}: error:"), (argv, errors)
        assert "no-such-bucket" in errors[0] or "unknown protocol" in errors[0], errors[0]


def test_a_url_whose_filesystem_is_not_installed_names_the_extra(capsys):
    import importlib.util

    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed: its missing-package message cannot be seen here")
    assert lait(["inspect", "gs://bucket/corpus"]) == 2
    assert "pip install 'lait[gcs]'" in capsys.readouterr().err


def test_an_upload_that_fails_midway_leaves_no_object(s3, tmp_path, monkeypatch):
    from lait import storage

    _, fs = s3
    source = tmp_path / "last.pt"
    source.write_bytes(os.urandom(12 * 2**20))  # above s3fs's 5 MiB block: a multipart upload is under way
    real_copy = storage.shutil.copyfileobj

    def cut(reader, writer, length):
        writer.write(reader.read(7 * 2**20))
        raise ConnectionError("the network went away")

    monkeypatch.setattr(storage.shutil, "copyfileobj", cut)
    with pytest.raises(ConnectionError):
        storage.copy_file(str(source), f"s3://{BUCKET}/cut/last.pt")
    fs.invalidate_cache()
    assert not fs.exists(f"{BUCKET}/cut/last.pt")
    monkeypatch.setattr(storage.shutil, "copyfileobj", real_copy)
    storage.copy_file(str(source), f"s3://{BUCKET}/cut/last.pt")
    assert fs.cat(f"{BUCKET}/cut/last.pt") == source.read_bytes()
