"""Train the dominant-image ranker from real pages and write the model file.

Weak labels come free with real pages: where a page's og:image / twitter:image is also an image
in its body, that body image is the positive and the page's other body images are negatives.
The meta tags are hidden from the features, so the model learns to find the main image from
the DOM alone. Pages without such a match give no rows.

PAGES may be:
  DIR          a folder with an index.jsonl (as ../shared/data/pages): lines {"path", "url"}
  LIST.jsonl   lines {"path": HTML or HTML.gz file (relative to the list), "url": page URL}
  FILE.warc.gz WARC/ARC files: every HTML response, with its WARC target URL
  FILE.html    an HTML (or .html.gz) file; its URL from <link rel=canonical> or og:url

Examples:
  lait train-dom ../shared/data/pages                  # rebuilds lait/scoring/models/dominant_image.json
  lait train-dom crawl/*.warc.gz --output my_dom.json  # then: lait run --dom_model my_dom.json
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
import time
import zlib
from collections.abc import Iterator

from lait import progress
from lait.errors import UsageError
from lait.pipeline import checks
from lait.pipeline.checks import Number
from lait.pipeline.commands._lines import page_list

NAME = "train-dom"
HELP = "train the dominant-image ranker from HTML/WARC pages (weak labels from og:image)"
ORDER = 61


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pages", nargs="+", metavar="PAGES", help="folders with index.jsonl, .jsonl lists, WARC/ARC or HTML files")
    parser.add_argument("--output", default=None,
                        help="model file to write (default: the shipped lait/scoring/models/dominant_image.json)")
    parser.add_argument("--n_estimators", type=Number(int, 1), default=500, help="number of trees (default 500)")
    parser.add_argument("--max_depth", type=Number(int, 1), default=3, help="depth of each tree (default 3)")
    parser.add_argument("--learning_rate", type=Number(float, above=0), default=0.05, help="shrinkage (default 0.05)")
    parser.add_argument("--max_page_bytes", type=Number(int, 1), default=5 * 2**20,
                        help="pages larger than this are skipped (default 5 MiB)")


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read()
        return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (OSError, EOFError, zlib.error) as error:
        raise UsageError(f"cannot read {path}: {error}") from None


def _from_list(path: str) -> Iterator[tuple[str, bytes, str | None, str]]:
    for _, page_path, url in page_list(path):
        yield url, _read(page_path), None, page_path


def _from_warc(path: str) -> Iterator[tuple[str, bytes, str | None, str]]:
    from lait.pipeline.read_crawl import iter_crawl_records

    for record in iter_crawl_records(path):
        if isinstance(record, dict) and record.get("kind") == "page":
            yield record["url"], record["content"], record.get("http_headers", {}).get("content-type"), path


def _from_html(path: str) -> Iterator[tuple[str, bytes, str | None, str]]:
    import lxml.html

    content = _read(path)
    root = lxml.html.fromstring(content)
    found = root.xpath("//link[@rel='canonical']/@href | //meta[@property='og:url']/@content")
    if not found:
        print(f"lait train-dom: {path}: no canonical or og:url, skipped", file=sys.stderr)
        return
    yield found[0], content, None, path


def iter_pages(inputs: list[str]) -> Iterator[tuple[str, bytes, str | None, str]]:
    """`(url, content, content_type, where)` for every page the inputs name."""
    for item in inputs:
        if os.path.isdir(item):
            index = os.path.join(item, "index.jsonl")
            if not os.path.exists(index):
                raise UsageError(f"{item}: a folder needs an index.jsonl with lines {{'path', 'url'}}")
            yield from _from_list(index)
        elif not os.path.exists(item):
            raise UsageError(f"{item}: no such file or folder")
        elif item.endswith(".jsonl"):
            yield from _from_list(item)
        elif item.endswith((".warc", ".warc.gz", ".arc", ".arc.gz")):
            yield from _from_warc(item)
        else:
            yield from _from_html(item)


def main(args: argparse.Namespace, extra: list[str]) -> int:
    import numpy as np

    from lait.filters.page import PageParser
    from lait.scoring.dominant_image import DEFAULT_MODEL_PATH, FEATURE_NAMES, DominantImageRanker, training_rows

    for item in args.pages:  # each named input, before the first page is parsed
        if os.path.isdir(item) and not os.path.isfile(os.path.join(item, "index.jsonl")):
            raise UsageError(f"{item}: a folder needs an index.jsonl with lines {{'path', 'url'}}")
        checks.readable_file(os.path.join(item, "index.jsonl") if os.path.isdir(item) else item, "PAGES")
    if args.output:
        checks.output_file(args.output, "--output")
    parser = PageParser(languages=None, max_page_bytes=args.max_page_bytes)
    xs, ys = [], []
    seen = labelled = 0
    digest = hashlib.sha1()
    started = time.time()
    with progress.Bar(desc="lait train-dom: pages", unit="pages", leave=False) as bar:
        for url, content, content_type, _ in iter_pages(args.pages):
            seen += 1
            bar.update(1, labelled=labelled)
            page = parser.parse(content, url, content_type)
            if isinstance(page, tuple):
                continue
            rows = training_rows(page)
            if rows is None:
                continue
            labelled += 1
            digest.update(url.encode("utf-8", "replace"))
            xs.append(rows[0])
            ys.append(rows[1])
    if labelled < 10:
        raise UsageError(f"only {labelled} of {seen} pages have an og:image/twitter:image shown in the body; need 10+")
    X, y = np.concatenate(xs), np.concatenate(ys)
    groups = np.concatenate([np.full(len(rows), page) for page, rows in enumerate(ys)])
    ranker = DominantImageRanker(n_estimators=args.n_estimators, max_depth=args.max_depth,
                                 learning_rate=args.learning_rate).fit(X, y, groups, FEATURE_NAMES)
    output = args.output or DEFAULT_MODEL_PATH
    info = {"pages": labelled, "pages_read": seen, "rows": int(len(y)), "positives": int(y.sum()),
            "page_urls_sha1": digest.hexdigest(), "command": "lait train-dom " + " ".join(args.pages)}
    ranker.save(output, info)
    print(json.dumps({"model": output, **info, "seconds": round(time.time() - started, 1)}))
    return 0
