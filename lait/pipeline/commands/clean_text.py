"""Clean one image description (or a JSON-lines file of them) with the CleanText rules.

Prints {"text": cleaned text or null, "kept": true/false, "reasons": [reason codes]}; with
--batch, one such object per input line (each line {"text": ..., "source": optional}).
Every failing rule is listed, so this is the way to see why a caption was dropped.

Examples:
  lait clean-text "Two cribs in a small nursery space (AP Photo/Jane Doe)"
  lait clean-text "IMG_2041.JPG" --source alt
  lait clean-text --batch alts.jsonl --min_words 4 > cleaned.jsonl
"""

from __future__ import annotations

import argparse
import json

from lait import progress
from lait.errors import UsageError
from lait.pipeline.checks import Number, http_url, readable_file
from lait.pipeline.commands._lines import json_lines

NAME = "clean-text"
HELP = "clean an image description and say which rules drop it"
ORDER = 40
SOURCES = ("alt", "title", "figcaption", "og_image_alt", "context")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lait.pipeline.options import LaitOptions

    defaults = LaitOptions(flags=[])  # the same rules, with the same defaults, as `lait run`
    parser.add_argument("text", nargs="?", default=None, help="the description to clean")
    parser.add_argument("--source", default="alt", choices=SOURCES,
                        help="where the text came from (default alt); context keeps only its leading sentence(s)")
    parser.add_argument("--batch", metavar="FILE.jsonl", default=None,
                        help="read one JSON object per line with a 'text' key (and optional 'source'); '-' is stdin")
    parser.add_argument("--page_url", default=None,
                        help="URL of the page, so that its site name is recognised (\"SFGATE\" on sfgate.com)")
    parser.add_argument("--min_words", type=Number(int, 0), default=defaults.min_words,
                        help=f"shortest description kept, in words (default {defaults.min_words})")
    parser.add_argument("--max_words", type=Number(int, 1, off=-1), default=defaults.max_words,
                        help=f"longest description kept, in words (default {defaults.max_words})")
    parser.add_argument("--max_rare_word_ratio", type=Number(float, 0, 1, off=-1), default=defaults.max_rare_word_ratio,
                        help=f"largest share of out-of-vocabulary words (default {defaults.max_rare_word_ratio}; -1 disables)")
    parser.add_argument("--min_text_language_score", type=Number(float, 0, 1, off=-1),
                        default=defaults.min_text_language_score,
                        help="smallest fastText probability that the text is English "
                             f"(default {defaults.min_text_language_score}; -1 disables)")


def _cleaner(args: argparse.Namespace):
    from lait.filters.text_rules import TextCleaner

    return TextCleaner(min_words=args.min_words, max_words=args.max_words,
                       max_rare_word_ratio=args.max_rare_word_ratio,
                       min_language_score=args.min_text_language_score).load()


def main(args: argparse.Namespace, extra: list[str]) -> int:
    if (args.text is None) == (args.batch is None):
        raise UsageError('give either a TEXT or --batch FILE.jsonl (e.g. lait clean-text "A dog on a beach")')
    if args.max_words != -1 and args.max_words < args.min_words:
        raise UsageError(f"--max_words {args.max_words} is below --min_words {args.min_words}")
    if args.batch and args.batch != "-":
        readable_file(args.batch, "--batch")
    if args.page_url:
        http_url(args.page_url, "--page_url")
    from lait.filters.description import site_names

    cleaner = _cleaner(args)
    names = site_names(args.page_url)
    if args.text is not None:
        result = cleaner.clean(args.text, source=args.source, site_names=names, explain=True)
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0
    with progress.Bar(desc="lait clean-text", unit="texts", leave=False) as bar:
        for _, line in json_lines(args.batch):
            bar.write(json.dumps(_clean_line(cleaner, line, args.source, names), ensure_ascii=False))
            bar.update(1)
    return 0


def _clean_line(cleaner, line: str, default_source: str | None, names: tuple[str, ...]) -> dict:
    """The result of one --batch line ({"text": ..., "source": ..., "page_url": ...} or a bare string)."""
    from lait.filters.description import site_names

    try:
        item = json.loads(line)
    except json.JSONDecodeError:
        return {"text": None, "kept": False, "reasons": ["bad_json"]}
    if not isinstance(item, dict):
        item = {"text": item}
    source = item.get("source") if item.get("source") in SOURCES else default_source
    line_names = site_names(item.get("page_url")) or names
    return cleaner.clean(item.get("text"), source=source, site_names=line_names, explain=True).to_dict()
