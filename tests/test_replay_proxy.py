"""The Common Crawl path end to end: HTML-only WARCs, every image fetched through the replay proxy.

The sample crawl (47 pages, 109 images) is split into its page records, `bench/replay_crawl.py
serve` runs as a separate process serving the full WARC's images at their original (https)
URLs, and `lait run` over the HTML-only WARC, fetching through it with the default politeness
and no `--allow_private_networks`, must write the rows that `lait run --no-fetch` writes over
the full WARC.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pyarrow.dataset as ds
import pytest
from warcio.archiveiterator import ArchiveIterator

from bench.replay_crawl import Archive, ReplayServer, split_warc
from lait.filters.urls import normalize_url
from lait.pipeline.fetch import ImageFetcher
from lait.pipeline.inspect import shard_paths
from lait.pipeline.output_dir import read_records
from lait.pipeline.read_crawl import iter_crawl_records
from lait.sample_crawl import write_sample_crawl
from tests.conftest import ROOT

UA = "lait/0.1 (+https://github.com/lait-project/lait)"
# Columns that differ by design: how the bytes came (crawl / http), and the page's file and
# offset (the HTML-only copy is another file, without the image records in between).
DIFFERENT_BY_DESIGN = ("image_source", "warc_path", "warc_offset")


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay")
    (root / "full").mkdir()
    full = root / "full" / "sample.warc.gz"
    write_sample_crawl(str(full))
    split = split_warc(str(full), str(root / "html"))
    ca = root / "replay-ca.pem"
    with open(root / "serve.log", "w") as log:
        server = subprocess.Popen([sys.executable, "bench/replay_crawl.py", "serve", str(full), "--ca_cert", str(ca)],
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = server.stdout.readline()  # the server's first line, once it listens
        assert line, (root / "serve.log").read_text()[-2000:]
        yield {"root": root, "full": full, "split": split, "ca": str(ca), "server": server, **json.loads(line)}
    finally:
        server.terminate()
        server.wait(10)


def proxied_fetcher(replay, **kwargs) -> ImageFetcher:
    settings = dict(user_agent=UA, proxy=replay["proxy"], verify=replay["ca"], per_host_delay=0.0, retries=0)
    return ImageFetcher(**{**settings, **kwargs})


def test_split_keeps_the_warcinfo_and_the_pages_byte_for_byte(replay):
    split = replay["split"]
    with open(split["output"], "rb") as f:
        types = [record.rec_type for record in ArchiveIterator(f)]
    assert types == ["warcinfo"] + ["response"] * 47
    full_pages = {r["warc_offset"]: r for r in iter_crawl_records(str(replay["full"])) if isinstance(r, dict)
                  and r["kind"] == "page"}
    html = [r for r in iter_crawl_records(split["output"]) if isinstance(r, dict)]
    assert [r["kind"] for r in html] == ["page"] * 47
    by_new_offset = {new: old for old, new in split["offsets"].items()}
    for page in html:
        original = full_pages[by_new_offset[page["warc_offset"]]]
        assert (page["url"], page["content"], page["fetch_time"]) == (
            original["url"], original["content"], original["fetch_time"])


def test_replay_proxy_serves_images_robots_and_404_over_connect(replay):
    images = {r["url"]: r for r in iter_crawl_records(str(replay["full"])) if isinstance(r, dict)
              and r["kind"] == "image"}
    urls = sorted(u for u in images if images[u]["http_headers"]["content-type"].startswith("image/jpeg"))[:24]
    assert all(u.startswith("https://") for u in urls)  # so every fetch below goes through CONNECT
    f = proxied_fetcher(replay)
    with ThreadPoolExecutor(12) as pool:  # many at once, a few hosts
        results = list(pool.map(f.fetch, urls))
    assert [(r.reason, r.content) for r in results] == [(None, images[u]["content"]) for u in urls]
    assert results[0].headers["Content-Type"] == images[urls[0]]["http_headers"]["content-type"]
    assert f.fetch("https://cdn.example-news.com/not-in-the-crawl.jpg").reason == "http_404"
    # The crawl's robots.txt of www.example-news.com disallows /search; other hosts get a permissive one.
    assert not f.allowed_by_robots("https://www.example-news.com/search/photo.jpg")
    assert f.allowed_by_robots("https://cdn.example-news.com/search/photo.jpg")
    untrusted = proxied_fetcher(replay, verify=True).fetch(urls[0])
    assert untrusted.reason == "ssl_error"  # the replay CA is trusted only when given


def lait_run(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lait.pipeline.cli", "run", "--progress", "false", *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen) -> None:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]


def test_fetching_through_the_replay_proxy_gives_the_no_fetch_rows(replay):
    root = replay["root"]
    # Both at once: the same code and models, half the wall time.
    no_fetch = lait_run("--input", str(replay["full"]), "--output", str(root / "no-fetch"), "--no-fetch")
    fetched = lait_run("--input", replay["split"]["output"], "--output", str(root / "fetched"),
                       "--proxy", replay["proxy"], "--fetch_ca_bundle", replay["ca"])
    finished(no_fetch)
    finished(fetched)
    expected = ds.dataset(shard_paths(str(root / "no-fetch")), format="parquet").to_table().to_pylist()
    got = ds.dataset(shard_paths(str(root / "fetched")), format="parquet").to_table().to_pylist()
    assert len(expected) >= 10
    assert {r["image_source"] for r in expected} == {"crawl"} and {r["image_source"] for r in got} == {"http"}
    to_split_offset = replay["split"]["offsets"]  # a page's offset in the full WARC -> in the HTML-only one

    def comparable(rows: list[dict], offset_of=lambda offset: offset) -> list[tuple]:
        keyed = [((r["page_url"], r["image_url"], offset_of(r["warc_offset"])),
                  {k: v for k, v in r.items() if k not in DIFFERENT_BY_DESIGN}) for r in rows]
        return sorted(keyed, key=lambda pair: pair[0])

    assert comparable(got) == comparable(expected, to_split_offset.__getitem__)
    # The pages whose photo the crawl lacks: not_in_crawl without fetching, the proxy's 404 with it.
    drops = {}
    for name in ("no-fetch", "fetched"):
        funnel = json.loads((root / name / "_funnel.json").read_text())
        drops[name] = next(s for s in funnel["stages"] if s["name"] == "AcquireImages")["dropped"]
    assert drops["no-fetch"] == {"not_in_crawl": 2} and drops["fetched"] == {"http_404": 2}


def test_a_run_stopped_while_fetching_resumes_without_fetching_again(replay, tmp_path):
    server = ReplayServer(Archive.load([str(replay["full"])]), ca_cert=str(tmp_path / "ca.pem")).start()
    try:
        out = tmp_path / "corpus"
        args = ["--input", replay["split"]["output"], "--output", str(out), "--proxy", server.url,
                "--fetch_ca_bundle", str(tmp_path / "ca.pem"), "--fetch_threads", "1"]  # a saved file per 4 images
        no_fetch = lait_run("--input", str(replay["full"]), "--output", str(tmp_path / "no-fetch"), "--no-fetch")
        stopped = lait_run(*args)
        saved_files = out.glob("_tmp-*/fetched/fetched-*.rec")
        deadline = time.time() + 300
        while len(list(saved_files)) < 3 and stopped.poll() is None:
            assert time.time() < deadline
            time.sleep(0.05)
            saved_files = out.glob("_tmp-*/fetched/fetched-*.rec")
        os.kill(stopped.pid, signal.SIGKILL)
        stopped.wait()
        saved = {record["key"] for path in out.glob("_tmp-*/fetched/fetched-*.rec") for record in read_records(str(path))}
        assert len(saved) >= 12 and not list(out.glob("shard-*"))
        asked_before = Counter(server.asked)

        resumed = lait_run(*args, "--resume")
        finished(resumed)
        finished(no_fetch)
        asked_again = {normalize_url(url) for url in Counter(server.asked) - asked_before}
        assert asked_again and not asked_again & saved  # the rest of the images, and none of those saved
        expected = ds.dataset(shard_paths(str(tmp_path / "no-fetch")), format="parquet").to_table().to_pylist()
        got = ds.dataset(shard_paths(str(out)), format="parquet").to_table().to_pylist()
        assert sorted((r["page_url"], r["image_url"], r["text"], r["image_sha1"]) for r in got) == sorted(
            (r["page_url"], r["image_url"], r["text"], r["image_sha1"]) for r in expected)
    finally:
        server.stop()
