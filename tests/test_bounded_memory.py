"""Bounded memory and honest counts on hostile crawls: decompression bombs, oversized bodies,
records whose Content-Length overstates them, and crawl images that no page uses."""

from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib

import apache_beam as beam
import brotli
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from lait.pipeline.acquire_images import AcquireImages
from lait.pipeline.funnel import Reject, WriteFunnel
from lait.pipeline.in_process_runner import InProcessRunner
from lait.pipeline.options import LaitOptions
from lait.pipeline.read_crawl import BodyLimits, DecodedTooLarge, ReadCrawl, decode_body, iter_crawl_records
from tests.image_server import JPEG

PAGE = b"<!doctype html><html><body><p>" + b"a kite over the bay " * 20 + b"</p></body></html>"
KIB = 1024
SMALL = BodyLimits(page=64 * KIB, image=64 * KIB)
BOMB_BYTES = 16 * 2**20  # each bomb inflates to this; the caps in these tests are 64 KiB


def packed(data: bytes, coding: str) -> bytes:
    if coding == "br":
        return brotli.compress(data, quality=1)
    packer = zlib.compressobj(1, zlib.DEFLATED, {"gzip": 31, "deflate": 15, "raw-deflate": -15}[coding])
    return packer.compress(data) + packer.flush()


def response(url: str, body: bytes, content_type: str = "text/html", over: int = 0, rec_type: str = "response",
             **headers: str) -> bytes:
    """One WARC record of an HTTP response; `over` bytes added to its WARC Content-Length (a lie)."""
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in headers.items())
    block = head.encode() + b"\r\n" + body
    if rec_type == "request":
        block = f"GET {url} HTTP/1.1\r\nHost: example.com\r\n\r\n".encode()
    warc = (f"WARC/1.0\r\nWARC-Type: {rec_type}\r\nWARC-Target-URI: {url}\r\nWARC-Date: 2024-05-01T00:00:00Z\r\n"
            f"WARC-Record-ID: <urn:uuid:{abs(hash((url, rec_type))):032x}>\r\n"
            f"Content-Type: application/http; msgtype={rec_type}\r\nContent-Length: {len(block) + over}\r\n\r\n")
    return warc.encode() + block + b"\r\n\r\n"


def write_warc(path, records: list[bytes], gz: bool) -> str:
    path.write_bytes(b"".join(gzip.compress(r) if gz else r for r in records))
    return str(path)


def read(path: str, limits: BodyLimits = SMALL) -> tuple[list[dict], list[Reject]]:
    kept, rejects = [], []
    for item in iter_crawl_records(path, limits=limits):
        (rejects if isinstance(item, Reject) else kept).append(item)
    return kept, [r for r in rejects if r.reason != "reader_warning"]


# ------------------------------------------------------------------ decoding, capped

@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate", "br"])
def test_decode_body_stops_at_the_cap_whatever_the_ratio(coding):
    bomb = packed(bytes(BOMB_BYTES), coding)
    name = "deflate" if coding == "raw-deflate" else coding
    tracemalloc.start()
    try:
        with pytest.raises(DecodedTooLarge, match=f"{name} body passes 65536 bytes once decoded"):
            decode_body(bomb, content_encoding=name, max_bytes=64 * KIB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20  # the 16 MiB never are in memory
    assert decode_body(packed(PAGE, coding), content_encoding=name, max_bytes=len(PAGE)) == PAGE


@pytest.mark.parametrize("gz", [False, True], ids=["warc", "warc.gz"])
def test_bombs_in_records_are_dropped_as_decoded_too_large_and_the_rest_is_read(tmp_path, gz):
    records = [
        response("https://example.com/gzip", packed(PAGE + bytes(BOMB_BYTES), "gzip"), content_encoding="gzip"),
        response("https://example.com/deflate.jpg", packed(JPEG + bytes(BOMB_BYTES), "deflate"), "image/jpeg",
                 content_encoding="deflate"),
        response("https://example.com/br", packed(PAGE + bytes(BOMB_BYTES), "br"), content_encoding="br"),
        response("https://example.com/sniffed", packed(bytes(BOMB_BYTES), "gzip"), "application/octet-stream",
                 content_encoding="gzip"),
        response("https://example.com/fine", packed(PAGE, "br"), content_encoding="br"),
    ]
    path = write_warc(tmp_path / ("bombs.warc" + (".gz" if gz else "")), records, gz)
    tracemalloc.start()
    try:
        kept, rejects = read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [r["url"] for r in kept] == ["https://example.com/fine"] and kept[0]["content"] == PAGE
    assert [(r.reason, r.record["url"].rsplit("/", 1)[1]) for r in rejects] == [
        ("decoded_too_large", "gzip"), ("decoded_too_large", "deflate.jpg"), ("decoded_too_large", "br"),
        ("decoded_too_large", "sniffed")]
    assert rejects[0].detail == "page: gzip body passes 65536 bytes once decoded (--max_page_bytes)"
    assert rejects[1].detail == "image: deflate body passes 65536 bytes once decoded (--max_image_bytes)"
    assert peak < 4 * 2**20  # four bombs of 16 MiB each


def test_bodies_stored_over_the_cap_are_not_read_further(tmp_path):
    big_page = PAGE + b" " * (200 * KIB)
    records = [response("https://example.com/big", big_page),
               response("https://example.com/big.jpg", JPEG + bytes(200 * KIB), "image/jpeg"),
               response("https://example.com/just-over", PAGE + b" " * (64 * KIB - len(PAGE) + 1)),
               response("https://example.com/fine", PAGE)]
    kept, rejects = read(write_warc(tmp_path / "big.warc.gz", records, gz=True))
    assert [r["url"] for r in kept] == ["https://example.com/fine"]
    assert [r.reason for r in rejects] == ["page_too_large", "too_large", "page_too_large"]
    assert rejects[0].detail.startswith("page: stored body over") and "--max_page_bytes 65536" in rejects[0].detail
    assert rejects[2].detail == "page: 65537 bytes > --max_page_bytes 65536"


def test_the_caps_come_from_the_pipeline_options(tmp_path):
    records = [response("https://example.com/bomb", packed(PAGE + bytes(BOMB_BYTES), "gzip"), content_encoding="gzip"),
               response("https://example.com/page", PAGE + b" " * (100 * KIB)),
               response("https://example.com/fine", PAGE)]
    path = write_warc(tmp_path / "c.warc.gz", records, gz=True)
    out = tmp_path / "out"
    options = PipelineOptions(["--runner=DirectRunner", "--max_page_bytes", str(64 * KIB)])
    with beam.Pipeline(runner=InProcessRunner(), options=options) as pipeline:
        crawl = pipeline | ReadCrawl([path], progress=False)
        crawl.counts | WriteFunnel(str(out))
    read_stage = json.loads((out / "_funnel.json").read_text())["stages"][0]
    assert read_stage["out"] == 1 and read_stage["dropped"] == {"decoded_too_large": 1, "page_too_large": 1}


# ------------------------------------------------------------------ Content-Length that overstates a record

PAGES = [f"https://example.com/p{i}" for i in range(5)]


@pytest.mark.parametrize("gz", [False, True], ids=["warc", "warc.gz"])
@pytest.mark.parametrize("over", [10, 700, 10**6], ids=["into-the-next", "past-the-next", "past-the-end"])
@pytest.mark.parametrize("liar", ["page", "request"])
def test_an_overstated_content_length_is_counted_and_the_records_after_it_are_read(tmp_path, gz, over, liar):
    records = [response(url, PAGE.replace(b"kite", url[-2:].encode())) for url in PAGES]
    if liar == "request":  # a record whose body is never read
        records.insert(2, response(PAGES[1], b"", rec_type="request", over=over))
    else:
        records[1] = response(PAGES[1], PAGE, over=over)
    kept, rejects = read(write_warc(tmp_path / "lie.warc", records, gz))
    assert [r["url"] for r in kept] == PAGES  # none swallowed, none twice
    assert all(r["content"].endswith(b"</html>") for r in kept)  # and none holding the next record
    errors = [r for r in rejects if r.reason == "read_error"]
    assert len(errors) == 1 and rejects[-1] is errors[0]
    assert "read on from offset" in errors[0].detail or "overstates" in errors[0].detail


def test_a_record_cut_by_the_end_of_the_file_is_a_read_error(tmp_path):
    whole = response(PAGES[0], PAGE) + response(PAGES[1], PAGE)
    path = tmp_path / "cut.warc"
    path.write_bytes(whole[:-200])
    kept, rejects = read(str(path))
    assert [r["url"] for r in kept] == PAGES[:1]
    assert [r.reason for r in rejects] == ["read_error"] and "the file ends" in rejects[0].detail


def test_a_record_whose_http_body_is_whole_is_kept_and_its_cut_counted(tmp_path):
    # Only the WARC length overstates the last record: its HTTP body is all there.
    path = tmp_path / "long.warc"
    path.write_bytes(response(PAGES[0], PAGE) + response(PAGES[1], PAGE, over=50)[:-4])
    kept, rejects = read(str(path))
    assert [r["url"] for r in kept] == PAGES[:2]
    assert [r.reason for r in rejects] == ["read_error"] and "its HTTP body is whole: kept" in rejects[0].detail


# ------------------------------------------------------------------ unused crawl images stay out of the join

def test_only_crawl_images_that_a_pair_names_reach_the_join():
    used = [f"http://shop.invalid/used{i}.jpg" for i in range(3)]
    images = [{"url": url, "content": JPEG, "http_headers": {"content-type": "image/jpeg"}, "warc_path": "w",
               "warc_offset": i, "fetch_time": "2024"} for i, url in enumerate(used)]
    images += [{**images[0], "url": f"http://shop.invalid/unused{i}.jpg", "content": JPEG + bytes(1000)}
               for i in range(40)]
    pairs = [{"page_url": "http://pages.invalid/a", "image_url": "HTTP://Shop.Invalid:80/used0.jpg"},  # another spelling
             {"page_url": "http://pages.invalid/b", "image_url": "http://cdn.invalid/used1.jpg",
              "image_urls": ["http://cdn.invalid/used1.jpg", used[1]]},  # a rendition the crawl holds
             {"page_url": "http://pages.invalid/c", "image_url": used[2]},
             {"page_url": "http://pages.invalid/d", "image_url": "http://shop.invalid/gone.jpg"}]
    options = LaitOptions(["--runner=DirectRunner", "--no-fetch"])
    pipeline = beam.Pipeline(runner=InProcessRunner(), options=options)
    crawl = pipeline | "Images" >> beam.Create(images)
    out = pipeline | "Pairs" >> beam.Create(pairs) | AcquireImages(options, crawl)
    assert_that(out.main | beam.Map(lambda r: (r["page_url"][-1], r["image_source"])),
                equal_to([("a", "crawl"), ("b", "crawl"), ("c", "crawl")]))
    assert_that(out.drops | beam.Map(lambda e: e["reason"]), equal_to(["not_in_crawl"]), label="Drops")
    result = pipeline.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed
                for c in result.metrics().query(MetricsFilter().with_namespace("AcquireImages"))["counters"]}
    assert counters["crawl_images_joined"] == 3 and counters["crawl_images_unused"] == 40
