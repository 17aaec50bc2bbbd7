"""Find the dominant image of an HTML page (or of a list of pages) the way `lait run` does.

Prints one JSON object:
  {"image_url": URL or null, "score": ..., "source": "meta"|"img"|"source"|"jsonld"|"link"|...,
   "alt": ..., "title": ..., "figcaption": ..., "context": ..., "headline": ..., "next_sentence": ...,
   "candidates": N}
plus "reason" (no_image, low_score, language, parse_error...) when there is no image. With
--batch, one such object per input line (each line {"path": ..., "url": ...}), with "path" added.
Language is not checked unless --languages is given.

Examples:
  lait dominant-image saved_page.html --url https://example.com/news/story
  lait dominant-image --batch pages.jsonl --min_dominant_score 0.3 > images.jsonl
"""

from __future__ import annotations

import argparse
import gzip
import json
import zlib

from lait import progress
from lait.errors import UsageError
from lait.pipeline.checks import FRACTION, http_url, readable_file
from lait.pipeline.cli import read_bytes
from lait.pipeline.commands._lines import page_list

NAME = "dominant-image"
HELP = "print the dominant image of an HTML page and its texts, as JSON"
ORDER = 35
OUTPUT_KEYS = ("image_url", "score", "source", "alt", "title", "figcaption", "og_image_alt", "context",
               "headline", "next_sentence", "og_title", "og_description", "candidates")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lait.pipeline.options import LaitOptions

    defaults = LaitOptions(flags=[])
    parser.add_argument("file", nargs="?", default=None, metavar="FILE.html", help="the page (.html or .html.gz)")
    parser.add_argument("--url", default=None, help="the page's URL (relative image URLs resolve against it)")
    parser.add_argument("--batch", metavar="LIST.jsonl", default=None,
                        help="read lines {\"path\": ..., \"url\": ...} ('-' is stdin); paths relative to the list")
    parser.add_argument("--min_dominant_score", type=FRACTION, default=defaults.min_dominant_score,
                        help=f"a page whose best image scores below this yields none (default {defaults.min_dominant_score})")
    parser.add_argument("--dom_model", default=None, help="ranker file (default: the shipped model)")
    parser.add_argument("--languages", default=None,
                        help="comma-separated languages to keep (default: any; `lait run` keeps en)")
    parser.add_argument("--min_language_score", type=FRACTION, default=defaults.min_language_score,
                        help=f"minimum fastText confidence with --languages (default {defaults.min_language_score})")


def _read(path: str) -> bytes:
    data = read_bytes(path, f"cannot read {path}")
    try:
        return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (OSError, EOFError, zlib.error) as error:
        raise UsageError(f"cannot read {path}: not a whole gzip file ({error})") from None


def _output(result: dict) -> dict:
    out = {"image_url": result.get("image_url"), "score": result.get("dominant_score"),
           "source": result.get("dominant_source")}
    out.update({k: result.get(k) for k in OUTPUT_KEYS if k not in out})
    if result.get("reason"):
        out["reason"] = result["reason"]
    return out


class _Detector:
    def __init__(self, args: argparse.Namespace):
        from lait.filters.page import PageParser
        from lait.scoring.dominant_image import DominantImageDetector

        languages = [c.strip() for c in args.languages.split(",")] if args.languages else None
        self.parser = PageParser(languages=languages, min_language_score=args.min_language_score)
        try:
            self.detector = DominantImageDetector(args.dom_model, args.min_dominant_score)
        except (OSError, ValueError) as error:
            raise UsageError(f"cannot load the model {args.dom_model}: {error}") from None

    def __call__(self, content: bytes, url: str) -> dict:
        page = self.parser.parse(content, url)
        if isinstance(page, tuple):
            return {"image_url": None, "score": None, "source": None, "candidates": 0, "reason": page[1]}
        return _output(self.detector.detect(page))


def _batch(args: argparse.Namespace, detect: _Detector) -> None:
    with progress.Bar(desc="lait dominant-image", unit="pages", leave=False) as bar:
        for listed, path, url in page_list(args.batch):
            result = detect(_read(path), url)
            bar.write(json.dumps({"path": listed, **result}, ensure_ascii=False))
            bar.update(1)


def main(args: argparse.Namespace, extra: list[str]) -> int:
    if bool(args.file) == bool(args.batch):
        raise UsageError("give one FILE.html (with --url) or --batch LIST.jsonl")
    if args.file and not args.url:
        raise UsageError("--url is needed: relative image URLs resolve against the page URL")
    if args.url:
        http_url(args.url, "--url")
    if args.file:
        readable_file(args.file, "FILE.html")
    elif args.batch != "-":
        readable_file(args.batch, "--batch")
    if args.languages:
        from lait.pipeline.options import check_languages

        check_languages(args.languages)
    detect = _Detector(args)
    if args.batch:
        _batch(args, detect)
    else:
        print(json.dumps(detect(_read(args.file), args.url), ensure_ascii=False))
    return 0
