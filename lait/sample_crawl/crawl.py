"""The sample crawl put together: its pages in crawl order, what each should give (EXPECTED), and the WARC writer."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import cache, lru_cache

from lait.sample_crawl.dropped_pages import (
    _foreign_pages,
    _gallery_pages,
    _missing_image_pages,
    _no_image_pages,
    _small_and_drawn_pages,
)
from lait.sample_crawl.kept_pages import _kept_articles
from lait.sample_crawl.pages import NEWS, _CrawlBuilder

# All records are dated from here, a few seconds apart, so the file never depends on the clock.
CRAWL_START = datetime(2024, 3, 15, 9, 0, 0, tzinfo=UTC)


def _extra_records() -> list[tuple[str, str, bytes]]:
    """Non-HTML responses a crawl holds besides pages and images: ReadCrawl must pass over them."""
    css = b"body{font-family:Georgia,serif;margin:0}.ad-slot{text-align:center}.site-logo{height:60px}\n"
    robots = b"User-agent: *\nDisallow: /search\nSitemap: https://www.example-news.com/sitemap.xml\n"
    return [(f"{NEWS.origin}/static/css/site.css", "text/css", css),
            (f"{NEWS.origin}/robots.txt", "text/plain", robots)]


@lru_cache(maxsize=1)
def _crawl() -> _CrawlBuilder:
    b = _CrawlBuilder()
    _kept_articles(b)
    _gallery_pages(b)
    _foreign_pages(b)
    _no_image_pages(b)
    _missing_image_pages(b)
    _small_and_drawn_pages(b)
    return b


EXPECTED: list[dict] = [page.expected for page in _crawl().pages]
"""One entry per HTML page, in crawl order: ``page_url``, ``case``, ``outcome`` (one of
:data:`OUTCOMES`), ``language``, ``image_url`` (the photo the page's pair should use, or None),
``image_urls`` (every URL that serves that photo on the page: equally right), ``text`` (the
preferred description) and ``texts`` (every acceptable one; compare with
:func:`expected_text_matches`), ``duplicate_of`` (for ``duplicate``: the page whose pair wins)
and ``note``."""


def _normalise(text: str) -> str:
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return " ".join(text.split()).strip(" .").casefold()


def expected_text_matches(entry: dict, text: str | None) -> bool:
    """Whether `text` is one of the entry's acceptable descriptions (ignoring case, spacing, curly quotes, a final dot)."""
    return text is not None and _normalise(text) in {_normalise(t) for t in entry["texts"]}


def not_in_crawl_images() -> dict[str, bytes]:
    """The image files the pages use but the crawl lacks (for serving them in a fetch test)."""
    return {url: image.render() for url, image in _crawl().missing.items()}


_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


def _record_id(kind: str, url: str) -> str:
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, kind + ' ' + url)}>"


def _warc_date(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class _WarcOut:
    """Writes records with fixed dates and URL-derived IDs, one gzip member each (warcio's WARCWriter)."""

    def __init__(self, stream, filename: str):
        from warcio.warcwriter import WARCWriter

        self.writer = WARCWriter(stream, gzip=True, warc_version="1.1")
        self.ticks = itertools.count()
        self.counts = {"pages": 0, "images": 0, "other": 0, "records": 0}
        info = b"software: lait sample-crawl\r\nformat: WARC File Format 1.1\r\ndescription: lait sample crawl\r\n"
        self._write("", "warcinfo", {"WARC-Filename": filename}, CRAWL_START, payload=info,
                    warc_content_type="application/warc-fields")

    def tick(self) -> datetime:
        return CRAWL_START + timedelta(seconds=3 * next(self.ticks))

    def _write(self, url: str, kind: str, headers: dict, when: datetime, **record_kw) -> None:
        payload = record_kw.pop("payload", None)
        if payload is not None:
            record_kw.update(payload=io.BytesIO(payload), length=len(payload))
        headers = {"WARC-Record-ID": _record_id(kind, url or headers.get("WARC-Filename", "")),
                   "WARC-Date": _warc_date(when), **headers}
        self.writer.write_record(self.writer.create_warc_record(url, kind, warc_headers_dict=headers, **record_kw))
        self.counts["records"] += 1

    def request(self, url: str, when: datetime) -> None:
        from warcio.statusandheaders import StatusAndHeaders

        host = url.split("/")[2]
        target = url.split(host, 1)[1] or "/"
        http = StatusAndHeaders(f"GET {target} HTTP/1.1", [("Host", host), ("User-Agent", "ExampleBot/1.0"),
                                                           ("Accept", "text/html,*/*;q=0.8")], is_http_request=True)
        self._write(url, "request", {}, when, http_headers=http)

    def response(self, url: str, mime: str, payload: bytes, kind: str, extra_headers=(), when=None) -> None:
        from warcio.statusandheaders import StatusAndHeaders

        when = when or self.tick()
        headers = [("Date", format_datetime(when, usegmt=True)), ("Server", "nginx"), ("Content-Type", mime),
                   ("Content-Length", str(len(payload))), *extra_headers]
        http = StatusAndHeaders("200 OK", headers, protocol="HTTP/1.1")
        self._write(url, "response", {}, when, payload=payload, http_headers=http)
        self.counts[kind] += 1


def write_sample_crawl(path: str) -> dict:
    """Write the sample crawl to `path` (a .warc.gz, one gzip member per record).

    Each page's response record is followed by the image records it is the first to use;
    every tenth page also gets its request record, as crawlers write them.

    Returns
    -------
    dict
        ``{"path", "pages", "images", "other", "records", "bytes"}``: HTML page records, image
        records, other responses (CSS, robots.txt), all records (with warcinfo and requests)
        and the file size.
    """
    crawl = _crawl()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    partial = f"{path}.part"  # renamed when complete, so a crash never leaves a truncated crawl behind
    with open(partial, "wb") as stream:
        out = _WarcOut(stream, os.path.basename(path))
        written: set[str] = set()
        for index, page in enumerate(crawl.pages):
            when = out.tick()
            if index % 10 == 0:
                out.request(page.url, when)
            out.response(page.url, page.content_type, page.html.encode(page.encoding), "pages",
                         [("Cache-Control", "max-age=300")], when)
            for url in page.images:
                if url not in written:
                    written.add(url)
                    payload = _rendered(url)
                    out.response(url, _MIME[crawl.images[url].format], payload, "images",
                                 [("ETag", f'"{hashlib.sha1(payload).hexdigest()[:16]}"'),
                                  ("Cache-Control", "public, max-age=31536000")])
        for url, mime, payload in _extra_records():
            out.response(url, mime, payload, "other")
    os.replace(partial, path)
    return {"path": path, **out.counts, "bytes": os.path.getsize(path)}


@cache
def _rendered(url: str) -> bytes:
    return _crawl().images[url].render()
