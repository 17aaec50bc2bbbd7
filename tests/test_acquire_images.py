"""AcquireImages in a real Beam pipeline: crawl join, one download per image, a real local server."""

from __future__ import annotations

import os
from collections import Counter
from functools import partial
from urllib.parse import urlsplit

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that

from lait.errors import UsageError
from lait.pipeline.acquire_images import AcquireImages, crawl_image_problem, journal_files
from lait.pipeline.funnel import funnel_from_counts, reconcile
from lait.pipeline.in_process_runner import InProcessRunner
from lait.pipeline.options import LaitOptions
from lait.pipeline.output_dir import read_records
from tests.image_server import HTML, JPEG, ImageServer, make_jpeg

OLD_JPEG = make_jpeg(color=(0, 0, 255))
UA = "lait/0.1 (+https://github.com/lait-project/lait)"


@pytest.fixture
def server():
    srv = ImageServer().start()
    yield srv
    srv.stop()


def crawl_image(url: str, content: bytes, fetch_time: str, **headers: str) -> dict:
    headers = {"content-type": "image/jpeg", **{k.replace("_", "-"): v for k, v in headers.items()}}
    return {"url": url, "content": content, "http_headers": headers, "warc_path": "crawl-00.warc.gz",
            "warc_offset": len(fetch_time) * 100, "fetch_time": fetch_time}


def pair(page: str, image_url: str) -> dict:
    return {"page_url": f"http://pages.invalid/{page}", "image_url": image_url, "text": f"text of {page}"}


# What the pipeline's matchers saw. `_keep` is a module-level function, pickled by reference,
# so the runner's copy of it writes to this very dict (the DirectRunner runs in-process).
_SEEN: dict[str, list] = {}


def _keep(name: str, items) -> None:
    _SEEN[name] = list(items)


def run_stage(pairs: list[dict], images: list[dict], *flags: str, journal: str | None = None) -> tuple[list, list, dict]:
    """Outputs, reject entries and the stage's funnel entry of one AcquireImages run."""
    options = LaitOptions(["--runner=DirectRunner", "--per_host_delay", "0", "--fetch_timeout", "2", "--fetch_retries", "0",
                           "--fetch_threads", "4", *flags])
    seen = _SEEN
    seen.clear()
    with beam.Pipeline(runner=InProcessRunner(), options=options) as p:
        crawl = p | "Images" >> beam.Create(images)
        out = p | "Pairs" >> beam.Create(pairs) | AcquireImages(options, crawl, journal)
        assert_that(out.main, partial(_keep, "main"), label="Main")
        assert_that(out.drops, partial(_keep, "drops"), label="Drops")
        assert_that(out.counts | beam.CombinePerKey(sum), partial(_keep, "counts"), label="Counts")
    funnel = funnel_from_counts(seen["counts"])
    stage = next(s for s in funnel["stages"] if s["name"] == "AcquireImages")
    assert not [p for p in reconcile({"stages": [stage]})], stage
    return seen["main"], seen["drops"], stage


def test_each_image_is_acquired_once_from_the_crawl_or_over_http(server):
    cat = "http://shop.invalid/cat.jpg"
    images = [
        crawl_image(cat, JPEG, "2024-05-01T00:00:00Z"),
        crawl_image(cat, OLD_JPEG, "2021-01-01T00:00:00Z"),  # an older capture of the same image
        crawl_image("http://shop.invalid/optout.jpg", JPEG, "2024-05-01T00:00:00Z", x_robots_tag="noai"),
        crawl_image("http://shop.invalid/soft404.jpg", HTML, "2024-05-01T00:00:00Z", content_type="text/html"),
        crawl_image("http://shop.invalid/unused.jpg", JPEG, "2024-05-01T00:00:00Z"),
    ]
    pairs = [
        pair("a", cat), pair("b", "HTTP://Shop.invalid:80/img/../cat.jpg"), pair("c", cat + "#zoom"),
        pair("d", server.url("/img/fetched.jpg")), pair("e", server.url("/img/./fetched.jpg")),
        pair("f", server.url("/missing.jpg")), pair("g", server.url("/missing.jpg")),
        pair("h", server.url("/private/hidden.jpg")),
        pair("i", "http://shop.invalid/optout.jpg"),
        pair("j", "http://shop.invalid/soft404.jpg"),  # not an image in the crawl, and the host is gone
        pair("k", "data:image/png;base64,iVBORw0KGgo="),
    ]
    main, drops, stage = run_stage(pairs, images, "--allow_private_networks")

    by_page = {r["page_url"].rsplit("/", 1)[1]: r for r in main}
    assert sorted(by_page) == ["a", "b", "c", "d", "e"]
    for page in "abc":
        assert by_page[page]["image_source"] == "crawl" and by_page[page]["image_bytes"] == JPEG  # the newest
    for page in "de":
        assert by_page[page]["image_source"] == "http" and by_page[page]["image_bytes"] == JPEG
        assert by_page[page]["text"] == f"text of {page}"  # the pair's own keys are kept
    # Two pages, one download; same for the 404.
    assert server.hits["/img/fetched.jpg"] == 1 and server.hits["/missing.jpg"] == 1
    assert server.hits["/private/hidden.jpg"] == 0
    # Sent as a browser would from the page (pages.invalid), cross-origin: the origin only.
    assert [h.get("Referer") for _, path, h in server.log if path == "/img/fetched.jpg"] == ["http://pages.invalid/"]

    reasons = Counter(d["reason"] for d in drops)
    assert reasons == {"http_404": 2, "robots": 1, "noai": 1, "dns_error": 1, "bad_url": 1}
    assert all(d["stage"] == "AcquireImages" and "image_bytes" not in d for d in drops)
    assert stage["in"] == 11 and stage["out"] == 5 and stage["dropped"] == dict(reasons)


def test_a_resumed_run_takes_saved_downloads_instead_of_fetching_again(server, tmp_path):
    journal = str(tmp_path / "fetched")
    pairs = [pair(str(i), server.url(f"/img/{i}.jpg")) for i in range(10)]
    pairs += [pair("x", server.url("/missing.jpg")), pair("y", server.url("/private/no.jpg"))]
    flags = ("--allow_private_networks", "--fetch_threads", "1")  # batches of 4 keys, one file each
    first = run_stage(pairs, [], *flags, journal=journal)
    saved = journal_files(journal)
    assert len(saved) == 3

    # As a stopped run leaves it: every batch saved but the last one.
    lost = {urlsplit(record["key"]).path for record in read_records(saved[0])}
    os.remove(saved[0])
    before = Counter(server.hits)
    again = run_stage(pairs, [], *flags, journal=journal)

    def rows(result):
        main, drops, stage = result
        return (sorted((r["page_url"], r["image_url"], r["image_source"], r["image_bytes"]) for r in main),
                sorted((d["reason"], d["page_url"], d["detail"]) for d in drops), stage)

    assert rows(again) == rows(first)  # failures too: the 404 and the robots.txt refusal
    asked_again = {path for path, n in (Counter(server.hits) - before).items() if n and path != "/robots.txt"}
    assert asked_again == lost - {"/private/no.jpg"}


def test_without_fetch_only_the_crawl_is_used_and_nothing_is_requested(server):
    images = [crawl_image("http://shop.invalid/cat.jpg", JPEG, "2024-05-01T00:00:00Z")]
    pairs = [pair("a", "http://shop.invalid/cat.jpg"), pair("b", server.url("/img/x.jpg")),
             pair("c", server.url("/img/x.jpg")),
             pair("d", "http://shop.invalid/bad.jpg")]
    images.append(crawl_image("http://shop.invalid/bad.jpg", HTML, "2024-05-01T00:00:00Z"))
    main, drops, stage = run_stage(pairs, images, "--no-fetch", "--allow_private_networks")
    assert [r["image_source"] for r in main] == ["crawl"]
    assert Counter(d["reason"] for d in drops) == {"not_in_crawl": 2, "not_image": 1}
    assert sum(server.hits.values()) == 0
    assert stage == {"name": "AcquireImages", "in": 4, "out": 1, "dropped": {"not_in_crawl": 2, "not_image": 1}}


def test_private_addresses_are_refused_by_default(server):
    main, drops, _ = run_stage([pair("a", server.url("/img/x.jpg"))], [])
    assert main == [] and [d["reason"] for d in drops] == ["private_address"]
    assert sum(server.hits.values()) == 0


def test_crawl_records_pass_the_same_checks_as_downloads():
    record = crawl_image("http://a.invalid/x.jpg", JPEG, "2024")
    assert crawl_image_problem(record, 10**6, UA) is None
    assert crawl_image_problem({**record, "http_headers": {}}, 10**6, UA) is None  # ARC: no headers, magic decides
    assert crawl_image_problem(record, 100, UA)[0] == "too_large"
    assert crawl_image_problem(crawl_image("u", JPEG, "t", x_robots_tag="noimageai"), 10**6, UA)[0] == "noai"
    assert crawl_image_problem(crawl_image("u", HTML, "t"), 10**6, UA)[0] == "not_image"
    assert crawl_image_problem(crawl_image("u", JPEG, "t", content_type="text/html"), 10**6, UA)[0] == "not_image"


@pytest.mark.parametrize("name, value", [("fetch_threads", 0), ("per_host_concurrency", 0), ("fetch_timeout", 0),
                                         ("max_image_bytes", -1), ("fetch_user_agent", " ")])
def test_bad_options_are_a_usage_error_at_construction(name, value):
    options = LaitOptions([])
    setattr(options, name, value)  # past the command line's own checks: options made in code
    with pytest.raises(UsageError, match="--"):
        AcquireImages(options, None)


def test_renditions_take_the_one_the_crawl_holds_else_fall_back_on_download(server):
    held = "http://shop.invalid/2011/02/heron.jpg?w=640"
    images = [crawl_image(held, JPEG, "2024-05-01T00:00:00Z")]
    in_crawl = pair("a", "http://cdn.invalid/2011/02/heron.jpg")
    in_crawl["image_urls"] = ["http://cdn.invalid/2011/02/heron.jpg", held]
    fetched = pair("b", server.url("/missing.jpg"))
    fetched["image_urls"] = [server.url("/missing.jpg"), server.url("/img/fetched.jpg")]
    main, drops, _ = run_stage([in_crawl, fetched], images, "--allow_private_networks")
    by_page = {r["page_url"].rsplit("/", 1)[1]: r for r in main}
    assert by_page["a"]["image_url"] == held and by_page["a"]["image_source"] == "crawl"
    assert by_page["b"]["image_url"] == server.url("/img/fetched.jpg") and by_page["b"]["image_source"] == "http"
    assert server.hits["/missing.jpg"] == 1 and drops == []
