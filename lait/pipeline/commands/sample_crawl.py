"""Write the sample crawl: a small deterministic WARC of realistic pages and their images.

About 50 HTML pages (English articles with lead photos among logos, ad banners, social icons,
tracking pixels, lazy-loaded images and thumbnails; German, French and Spanish pages; a gallery
whose photos share one caption; pages without a photo; a windows-1252 page; broken markup) and
their image response records, one gzip member per record. The same bytes on every run.

Example:
  lait sample-crawl out/sample.warc.gz
  lait run --input out/sample.warc.gz --output out/sample --no-fetch

What each page should give is listed in lait.sample_crawl.EXPECTED.
"""

from __future__ import annotations

import argparse
import os

NAME = "sample-crawl"
HELP = "write a small deterministic WARC of realistic pages and images (for demos and tests)"
ORDER = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT.warc.gz", help="file to write; parent folders are created")


def main(args: argparse.Namespace, extra: list[str]) -> int:
    from lait.errors import UsageError
    from lait.sample_crawl import write_sample_crawl

    out = args.out
    if os.path.isdir(out):
        raise UsageError(f"{out} is a folder; give a file name such as {os.path.join(out, 'sample.warc.gz')}")
    if not out.endswith(".warc.gz"):
        raise UsageError(f"{out}: the sample crawl is a gzipped WARC; name it *.warc.gz")
    parent = os.path.dirname(os.path.abspath(out))
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UsageError(f"cannot write {out}: {parent} is a file, not a folder")
    try:
        summary = write_sample_crawl(out)
    except OSError as error:
        raise UsageError(f"cannot write {out}: {error.strerror or error}") from None
    print(f"wrote {summary['path']}: {summary['pages']} pages, {summary['images']} images, "
          f"{summary['records']} records, {summary['bytes'] / 2**20:.2f} MiB")
    return 0
