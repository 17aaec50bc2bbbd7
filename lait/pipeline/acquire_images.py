"""AcquireImages: get each dominant image's bytes once, from the crawl or over HTTP.

    pairs ─┬─ WantedImageKeys ── Distinct ──> side input: every URL a pair may use
           │                                       │
           │   crawl images ── KeyWantedImages <───┘ ──┬── CrawlImageKeys ──> side input of KeyPairs
           │                   (URL, crawl record)     │
           └─ KeyPairs ── (URL, pair) ─────────────────┴── JoinByUrl (CoGroupByKey)
                                                             ── UsedImages ── Batch ── Acquire ──> pairs + image_bytes

1. Pairs and the crawl's image records are keyed by `lait.filters.urls.normalize_url`, so an
   image that many pages name (in any spelling) is one key, and joined with CoGroupByKey:
   no global state, any runner. Only the crawl images that some pair names (any of its
   renditions) reach the join: the others are dropped where they are read, against a side
   input of the wanted keys (URLs, not bytes), so the join's memory follows the pairs' images,
   not the crawl's image bytes. The `AcquireImages` Beam metrics `crawl_images_joined` and
   `crawl_images_unused` count both.
2. A key with a crawl record takes its newest capture that passes the same checks as a
   download (`X-Robots-Tag` opt-out, size, Content-Type and magic bytes agree). A key
   without a usable capture is downloaded with :class:`lait.pipeline.fetch.ImageFetcher` when
   `--fetch` is on (never when the newest capture opted out with `noai`); otherwise its
   pairs are dropped with the capture's reason, or `not_in_crawl` when there is none.
3. Every pair of the key gets the same bytes (`image_source` = `crawl` or `http`), or
   the same drop reason: a failed URL counts one drop per pair, so the funnel's
   `in` (pairs) = `out` + dropped.

A killed run does not download again what it had downloaded: with a `journal` folder (the
run's `_tmp-ID/fetched/`), each batch's download outcomes (the bytes, or the failure's reason)
are saved there as one record file once the batch is done (or holds JOURNAL_FILE_BYTES),
written whole or not at all. A resumed run reads them back as a third input of the join, and a
key with a saved outcome takes it instead of a download: the same rows and drop reasons as a
run that was never stopped, and at most one batch per worker fetched twice.

Throughput and politeness: keys are batched (`BatchElements`, fixed size of four times
`--fetch_threads`) and each batch's downloads run on a thread pool of `--fetch_threads`
that the DoFn makes in `setup`. One `ImageFetcher` per worker process is shared by all
DoFn instances and threads there (`apache_beam.utils.shared.Shared`), so the per-host
concurrency limit, per-host delay, robots.txt cache and connection pools hold per process.
Keys come out of the CoGroupByKey in hash order, not crawl order, so a batch mixes hosts
and the threads rarely queue behind one host's delay. Crawl hits in a batch are emitted
at once, before its downloads finish.

With `--proxy URL` every download and robots.txt request goes through that HTTP forward proxy
(`--fetch_ca_bundle` for one that intercepts TLS); the image hosts are still checked by the
address guard, the proxy's own address is not (see :mod:`lait.pipeline.fetch`).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils.shared import Shared

from lait import storage
from lait.errors import UsageError
from lait.filters.urls import normalize_url
from lait.pipeline import output_dir
from lait.pipeline.fetch import ImageFetcher, content_type_problem, image_problem, proxy_problem, x_robots_opt_out
from lait.pipeline.funnel import Reject, StageDoFn, StageOutput, apply_stage

log = logging.getLogger(__name__)

STAGE = "AcquireImages"
CRAWL, HTTP = "crawl", "http"
BATCH_PER_THREAD = 4
# Failures after which the next rendition of the image is tried: this URL is missing, not the image.
RENDITION_FALLBACK = frozenset(["http_404", "http_410", "http_403", "not_image"])
JOURNAL_FILES = "fetched-*.rec"
JOURNAL_FILE_BYTES = 64 * 2**20


def fetcher_settings(options) -> dict:
    """`ImageFetcher` keyword arguments from the `AcquireImages` group of `LaitOptions`."""
    return {
        "user_agent": options.fetch_user_agent,
        "timeout": options.fetch_timeout,
        "retries": options.fetch_retries,
        "max_bytes": options.max_image_bytes,
        "per_host_concurrency": options.per_host_concurrency,
        "per_host_delay": options.per_host_delay,
        "respect_robots": not options.ignore_robots,
        "allow_private_networks": options.allow_private_networks,
        "proxy": options.proxy or None,
        "verify": options.fetch_ca_bundle or True,
    }


def check_options(options) -> None:
    """Raise UsageError for an `AcquireImages` option no fetcher could work with (here, not on a worker)."""
    minimums = {"fetch_threads": 1, "per_host_concurrency": 1, "max_image_bytes": 1, "fetch_retries": 0,
                "per_host_delay": 0}
    for name, minimum in minimums.items():
        if getattr(options, name) < minimum:
            raise UsageError(f"--{name} must be at least {minimum}, got {getattr(options, name)}")
    if not options.fetch_timeout > 0:
        raise UsageError(f"--fetch_timeout must be above 0 seconds, got {options.fetch_timeout}")
    if not (options.fetch_user_agent or "").strip():
        raise UsageError("--fetch_user_agent must not be empty: sites need to know who fetches")
    if options.proxy and proxy_problem(options.proxy):
        raise UsageError(f"--{proxy_problem(options.proxy)}")
    if options.fetch_ca_bundle and not os.path.isfile(options.fetch_ca_bundle):
        raise UsageError(f"--fetch_ca_bundle {options.fetch_ca_bundle}: no such file")


def crawl_image_problem(record: dict, max_bytes: int, user_agent: str) -> tuple[str, str] | None:
    """(reason, detail) when a crawl image record may not be used, else None: the fetcher's checks."""
    headers = {str(k).lower(): str(v) for k, v in (record.get("http_headers") or {}).items()}
    opt_out = x_robots_opt_out([headers["x-robots-tag"]] if "x-robots-tag" in headers else [], user_agent)
    if opt_out:
        return "noai", f"X-Robots-Tag: {opt_out} (crawl record)"
    content = record.get("content") or b""
    if len(content) > max_bytes:
        return "too_large", f"{len(content)} bytes > {max_bytes} (crawl record)"
    problem = content_type_problem(headers.get("content-type")) or image_problem(headers.get("content-type"), content)
    if problem:
        return "not_image", problem + " (crawl record)"
    return None


class KeyPairsByImageFn(StageDoFn):
    """pair -> (normalised image URL, pair); counts the stage's input.

    A pair whose image has other renditions (`image_urls`) takes the first one the crawl
    holds, else the first: the download then falls back along the same order, so a crawl with
    its images and the same crawl fetched through a proxy agree.
    """

    stage = STAGE

    def __init__(self):
        super().__init__(count_in=True, count_out=False)

    def run(self, pair: dict, crawl_keys: dict):
        urls = pair.get("image_urls") or []
        if len(urls) > 1:
            held = next((url for url in urls if normalize_url(url) in crawl_keys), urls[0])
            pair = {**pair, "image_url": held}
        key = normalize_url(pair.get("image_url") or "")
        if key is None:
            yield Reject("bad_url", pair, f"not an http(s) URL: {str(pair.get('image_url'))[:200]}")
        else:
            yield key, pair


def _wanted_keys(pair: dict) -> Iterator[str]:
    """Every key a pair may be joined on: its image URL and each of its renditions."""
    for url in {pair.get("image_url") or "", *(pair.get("image_urls") or [])}:
        key = normalize_url(url)
        if key is not None:
            yield key


class KeyWantedImagesFn(beam.DoFn):
    """crawl image record -> (normalised URL, record) when a pair may use it; the others are counted, not kept."""

    def __init__(self):
        self.joined = Metrics.counter(STAGE, "crawl_images_joined")
        self.unused = Metrics.counter(STAGE, "crawl_images_unused")

    def process(self, record: dict, wanted: dict) -> Iterator[tuple[str, dict]]:
        key = normalize_url(record.get("url") or "")
        if key is not None and key in wanted:  # a crawl image nobody can name is no pair's image
            self.joined.inc()
            yield key, record
        else:
            self.unused.inc()


def _first_named(pair: dict) -> tuple[str, str]:
    return pair["image_url"], pair.get("page_url") or ""


def _used(joined: tuple) -> bool:
    return bool(joined[1]["pairs"])


class AcquireFn(StageDoFn):
    """A batch of (key, {"pairs", "images", "fetched"}) -> pairs with `image_bytes`, or their Rejects."""

    stage = STAGE

    def __init__(self, fetch: bool, settings: dict, threads: int, shared: Shared, journal: str | None = None):
        super().__init__(count_in=False, count_out=True)
        self.fetch = fetch
        self.settings = settings
        self.threads = threads
        self.shared = shared
        self.journal = journal

    def setup(self) -> None:
        self.fetcher = None
        self.pool = None
        if self.fetch:
            # One fetcher per process, whatever the number of DoFn instances there.
            self.fetcher = self.shared.acquire(lambda: ImageFetcher(**self.settings), tag=repr(sorted(self.settings.items())))
            self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="lait-fetch")

    def teardown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def run(self, batch: list):
        to_fetch = []
        for key, grouped in batch:
            pairs = list(grouped["pairs"])
            outcome = self._from_crawl(list(grouped["images"]))
            saved = next(iter(grouped.get("fetched") or []), None)
            if outcome is not None and not isinstance(outcome, Reject):
                yield from ({**pair, "image_bytes": outcome, "image_source": CRAWL} for pair in pairs)
            elif outcome is not None and (outcome.reason == "noai" or not self.fetch):
                yield from (Reject(outcome.reason, pair, outcome.detail) for pair in pairs)
            elif not self.fetch:
                yield from (Reject("not_in_crawl", pair) for pair in pairs)
            elif saved is not None:  # downloaded by an earlier attempt of this run
                yield from _downloaded(pairs, saved)
            else:
                to_fetch.append((key, pairs))
        if not to_fetch:
            return
        # A URL as a page wrote it, not the key (normalising re-quotes, which a server may not
        # treat alike), with that page as the Referer.
        futures = {self.pool.submit(self._download, min(pairs, key=_first_named)): (key, pairs)
                   for key, pairs in to_fetch}
        outcomes, held = [], 0
        for future in as_completed(futures):
            (url, result), (key, pairs) = future.result(), futures[future]
            outcomes.append({"key": key, "url": url, "content": result.content if result.ok else None,
                             "reason": result.reason, "detail": result.detail})
            yield from _downloaded(pairs, outcomes[-1])
            held += len(outcomes[-1]["content"] or b"")
            if held >= JOURNAL_FILE_BYTES:  # a worker holds at most this much for the journal
                self._save(outcomes)
                outcomes, held = [], 0
        self._save(outcomes)

    def _save(self, outcomes: list[dict]) -> None:
        """Download outcomes as one whole record file of the journal."""
        if not self.journal or not outcomes:
            return
        path = storage.join(self.journal, JOURNAL_FILES.replace("*", uuid.uuid4().hex))
        try:
            storage.write_whole(path, output_dir.encode_records(outcomes))
        except OSError as error:  # the run goes on; only a resume would download these again
            log.warning("could not save %d download outcomes to %s: %s", len(outcomes), path, error)

    def _download(self, pair: dict):
        """`(url, FetchResult)`: the pair's image, else its next rendition while the last is missing."""
        urls = pair.get("image_urls") or [pair["image_url"]]
        urls = urls[urls.index(pair["image_url"]):] if pair["image_url"] in urls else [pair["image_url"], *urls]
        for url in urls:
            result = self.fetcher.fetch(url, pair.get("page_url") or "")
            if result.ok or result.reason not in RENDITION_FALLBACK:
                return url, result
        return url, result

    def _from_crawl(self, images: list[dict]) -> bytes | Reject | None:
        """The newest usable capture's bytes, the newest capture's Reject when none is usable, None when none."""
        if not images:
            return None
        images.sort(key=lambda r: (r.get("fetch_time") or "", r.get("warc_path") or "", r.get("warc_offset") or 0),
                    reverse=True)
        first_problem = None
        for record in images:
            problem = crawl_image_problem(record, self.settings["max_bytes"], self.settings["user_agent"])
            if problem is None:
                return record["content"]
            first_problem = first_problem or problem
            if problem[0] == "noai":  # the newest capture's opt-out stands; older ones do not lift it
                break
        return Reject(first_problem[0], {}, first_problem[1])


def _downloaded(pairs: list[dict], outcome: dict) -> Iterator[dict | Reject]:
    """The pairs of one key with a download's bytes, or dropped with its reason."""
    if outcome["reason"] is None:
        yield from ({**pair, "image_url": outcome["url"], "image_bytes": outcome["content"], "image_source": HTTP}
                    for pair in pairs)
    else:
        yield from (Reject(outcome["reason"], pair, outcome["detail"]) for pair in pairs)


def journal_files(journal: str | None) -> list[str]:
    """The record files a stopped attempt of the run saved in `journal` (none when there is none)."""
    if not journal or not storage.exists(journal):
        return []
    return storage.glob(storage.join(journal, JOURNAL_FILES))


class AcquireImages(beam.PTransform):
    """Pair records -> pair records with `image_bytes` and `image_source` (`crawl` or `http`).

    Parameters
    ----------
    options : LaitOptions
        Reads the `AcquireImages` group: `fetch`, `fetch_user_agent`, `fetch_timeout`,
        `fetch_retries`, `max_image_bytes`, `per_host_concurrency`, `per_host_delay`,
        `ignore_robots`, `allow_private_networks`, `fetch_threads`, `proxy`, `fetch_ca_bundle`.
    crawl_images : PCollection of dict
        ReadCrawl's image records (`url`, `content`, `http_headers`, `warc_path`,
        `warc_offset`, `fetch_time`).
    journal : str, optional
        A folder where download outcomes are saved, and read back when the run is resumed.
    """

    def __init__(self, options, crawl_images: beam.PCollection, journal: str | None = None):
        super().__init__()
        check_options(options)
        self.crawl_images = crawl_images
        self.journal = journal
        self.batch_size = BATCH_PER_THREAD * options.fetch_threads
        self.dofn = AcquireFn(options.fetch, fetcher_settings(options), options.fetch_threads, Shared(), journal)

    def expand(self, pairs: beam.PCollection) -> StageOutput:
        wanted = (pairs
                  | "WantedImageKeys" >> beam.FlatMap(_wanted_keys)
                  | "DistinctWanted" >> beam.Distinct()
                  | "AsWanted" >> beam.Map(lambda key: (key, True)))
        images = self.crawl_images | "KeyWantedImages" >> beam.ParDo(KeyWantedImagesFn(), beam.pvalue.AsDict(wanted))
        crawl_keys = images | "CrawlImageKeys" >> beam.Map(lambda keyed: (keyed[0], True))
        keyed = apply_stage(pairs, "KeyPairs", KeyPairsByImageFn(), beam.pvalue.AsDict(crawl_keys))
        fetched = (pairs.pipeline
                   | "ReadFetched" >> output_dir.ReadRecords(journal_files(self.journal))
                   | "KeyFetched" >> beam.Map(lambda outcome: (outcome["key"], outcome)))
        joined = {"pairs": keyed.main, "images": images, "fetched": fetched} | "JoinByUrl" >> beam.CoGroupByKey()
        batches = (joined
                   | "UsedImages" >> beam.Filter(_used)
                   | "Batch" >> beam.BatchElements(min_batch_size=self.batch_size, max_batch_size=self.batch_size))
        acquired = apply_stage(batches, "Acquire", self.dofn)
        drops = (keyed.drops, acquired.drops) | "FlattenDrops" >> beam.Flatten()
        counts = (keyed.counts, acquired.counts) | "FlattenCounts" >> beam.Flatten()
        return StageOutput(acquired.main, drops, counts)
