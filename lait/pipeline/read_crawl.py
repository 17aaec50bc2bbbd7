"""ReadCrawl: stream WARC/ARC files into page and image records, every other record a Reject.

    >>> for item in iter_crawl_records("crawl.warc.gz"):
    ...     print(item["kind"], item["url"]) if isinstance(item, dict) else print(item.reason)

Readers: fastwarc (fast, C++) reads WARC files; warcio reads ARC files and takes over where
fastwarc raises on a file (the shared test files show each reader failing on files the other
reads), continuing after the last record fastwarc gave. Where the better reader fails too, or
a record does not end where its Content-Length says (the file ends inside it, or it takes in
the records after it), reading goes on from the next record start after the break (a
`WARC/1.x` line, or a gzip member that inflates to one), and the file yields ONE `read_error`
reject, last, naming the path, the first break and where reading went on. Bodies are read
only for records that are kept (or need sniffing), and are de-chunked and content-decoded
(gzip, deflate, br) here, leniently (crawlers often store an already decoded body under the
original headers), and at most `--max_page_bytes` of a page, `--max_image_bytes` of an image,
stored or decoded: memory stays bounded whatever a record holds.

Reject reasons: `not_response` (warcinfo, request, metadata, continuation...), `revisit`,
`http_status` (non-2xx), `not_html_or_image`, `empty_body`, `bad_content_encoding`
(a compressed body that does not decompress), `page_too_large` / `too_large` (a page / image
stored over its cap: not read further), `decoded_too_large` (a body whose content-encoding
inflates it past the cap: decoding stops there), `read_error` (the file is broken),
`empty_file` (0 bytes), `reader_warning` (one per warning a reader gave, e.g. warcio's "Record
not followed by newline": counted, not printed). :func:`unread_inputs` says when no file gave a record.
"""


from __future__ import annotations

import os
import re
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import TaggedOutput

from lait import storage
from lait.errors import UsageError
from lait.pipeline.crawl_decoding import IMAGE, PAGE, DecodedTooLarge, decode_body
from lait.pipeline.crawl_records import BodyLimits, iter_crawl_records
from lait.pipeline.funnel import IN, OUT, StageDoFn, apply_stage
from lait.pipeline.options import LaitOptions
from lait.progress import add as live_count

# The stage, and the pure reading it runs (crawl_records, crawl_decoding), importable from here.
__all__ = ["BodyLimits", "CrawlOutput", "DecodedTooLarge", "IMAGE", "PAGE", "ReadCrawl", "decode_body", "expand_patterns",
           "iter_crawl_records", "unread_inputs"]

IMAGES = "images"  # tagged output of the read DoFn



class ReadCrawlFilesFn(StageDoFn):
    """File path -> page records (main), image records (tag `images`), rejects and counts."""

    stage = "ReadCrawl"

    def __init__(self, total_files: int, progress: bool, limits: BodyLimits | None = None):
        # "in" is records seen and "out" records kept, both counted per record below: counting
        # kept records downstream would Flatten pages and images, which the DirectRunner
        # materialises (memory grows with the crawl).
        super().__init__(count_in=False, count_out=False)
        self.total_files = total_files
        self.progress = progress
        self.limits = limits or BodyLimits()

    def run(self, path: str):
        for item in iter_crawl_records(path, limits=self.limits):
            self.count(IN)
            if isinstance(item, dict):
                self.count(OUT)
            if isinstance(item, dict) and item["kind"] == IMAGE:
                yield TaggedOutput(IMAGES, item)
            else:
                yield item
                if self.progress and isinstance(item, dict):
                    live_count(self.stage, "pages")
        if self.progress:
            live_count(self.stage, "files")  # the run's display shows files n/N (lait.progress)


@dataclass
class CrawlOutput:
    """What ReadCrawl gives: page and image records, and the funnel's drops and counts."""

    pages: beam.PCollection
    images: beam.PCollection
    drops: beam.PCollection
    counts: beam.PCollection

    @property
    def main(self) -> beam.PCollection:
        """The pages, so `FunnelCollector.add(crawl)` returns them."""
        return self.pages


def _is_folder(path: str) -> bool:
    # Object stores have no folders to match; a local folder path matches itself.
    return not storage.is_url(path) and os.path.isdir(path)


_GLOB_CHARS = re.compile(r"[*?[]")


def _is_glob(pattern: str) -> bool:
    # Beam reads a trailing slash as "everything in it".
    return bool(_GLOB_CHARS.search(pattern)) or pattern.endswith(("/", "\\"))


def expand_patterns(patterns: list[str]) -> list[str]:
    """Every file the glob patterns match, sorted, once; UsageError for a pattern that matches nothing.

    Plain paths are only checked for existence: a shell-expanded glob hands over thousands
    of them, and Beam's `match` compiles a regular expression for each, on the client, before
    any worker gets a task.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    if not patterns:
        raise UsageError("no --input given: name WARC/ARC files or glob patterns")
    files: set[str] = set()
    globs = []
    for pattern in patterns:
        if _is_folder(pattern):
            raise UsageError(f"--input {pattern!r} is a folder: name the crawl files in it, "
                             f"e.g. '{pattern.rstrip('/')}/*.warc.gz'")
        if _is_glob(pattern):
            globs.append(pattern)
        elif FileSystems.exists(pattern):
            files.add(pattern)
        else:
            raise _matches_nothing(pattern)
    for pattern, result in zip(globs, FileSystems.match(globs) if globs else [], strict=True):
        if not result.metadata_list:
            raise _matches_nothing(pattern)
        files.update(m.path for m in result.metadata_list)
    return sorted(files)


def _matches_nothing(pattern: str) -> UsageError:
    return UsageError(f"--input {pattern!r} matches no file: check the path, "
                      "and quote glob patterns so that the shell does not expand them")


UNREAD = ("read_error", "empty_file", "reader_warning")  # drops that are not records of the file


def unread_inputs(funnel: dict) -> str | None:
    """A one-line summary when the run read not one record from any input file (else None)."""
    read = next((stage for stage in funnel.get("stages", []) if stage.get("name") == "ReadCrawl"), None)
    if read is None:
        return None
    failures = {reason: read["dropped"].get(reason, 0) for reason in UNREAD[:2] if read["dropped"].get(reason)}
    if not failures or read["in"] != sum(read["dropped"].get(reason, 0) for reason in UNREAD):
        return None
    counts = ", ".join(f"{reason} {n}" for reason, n in failures.items())
    return (f"no input file could be read ({counts}): are they WARC/ARC files? "
            "The reasons are in the funnel and _rejects/")


class ReadCrawl(beam.PTransform):
    """WARC/ARC glob patterns -> :class:`CrawlOutput` (pages, images, drops, counts).

    The patterns are expanded when the transform is built, so a pattern that matches
    nothing fails at once with a one-line :class:`UsageError`. Files are spread over
    workers with a Reshuffle; each is streamed by :func:`iter_crawl_records`, which reads
    at most `max_page_bytes` of a page's body and `max_image_bytes` of an image's, stored
    or decoded (None: the pipeline's `--max_page_bytes` / `--max_image_bytes`).

    Example::

        crawl = pipeline | "ReadCrawl" >> ReadCrawl(["crawl/*.warc.gz"])
        pages = funnel.add(crawl)          # drops and counts go to the funnel
        images = crawl.images
    """

    def __init__(self, patterns: list[str], progress: bool = True, max_page_bytes: int | None = None,
                 max_image_bytes: int | None = None):
        super().__init__()
        try:
            self.files = expand_patterns(patterns)
        except UsageError:
            raise
        except Exception as error:  # noqa: BLE001 - e.g. an unknown filesystem scheme
            raise UsageError(f"--input {patterns!r}: {error}") from error
        self.progress = progress
        self.max_page_bytes = max_page_bytes
        self.max_image_bytes = max_image_bytes

    def expand(self, pbegin: beam.pvalue.PBegin) -> CrawlOutput:
        options = pbegin.pipeline.options.view_as(LaitOptions)
        limits = BodyLimits(page=self.max_page_bytes or options.max_page_bytes,
                            image=self.max_image_bytes or options.max_image_bytes)
        files = pbegin | "ListFiles" >> beam.Create(self.files) | "SpreadFiles" >> beam.Reshuffle()
        read = apply_stage(files, "ReadFiles", ReadCrawlFilesFn(len(self.files), self.progress, limits),
                           outputs=(IMAGES,))
        return CrawlOutput(read.main, read.extra[IMAGES], read.drops, read.counts)
