"""Look at a corpus written by `lait run`: summary, funnel, samples, rejects, an HTML report.

Examples:
  lait inspect out/                                   # shards, rows, funnel, distributions, domains
  lait inspect out/ --sample 5 --where 'score < 0.3'  # rows matching a filter on columns
  lait inspect out/ --rejects too_small               # dropped examples of one reason
  lait inspect out/ --html report.html                # self-contained report with thumbnails
  lait inspect out/ --json                            # the summary as JSON
  lait inspect s3://bucket/corpus                     # any fsspec URL (pip install 'lait[s3]'; AWS_* variables)
  lait inspect runs/stage1                            # a training run: its curves as sparklines
  lait inspect runs/stage1 --html curves.html         # ... as charts (training and validation losses)

--where takes comparisons of columns with numbers or quoted strings, joined by
and / or / not: 'width > 800 and text_source == "figcaption"'.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np
import pyarrow as pa

from lait import storage
from lait.errors import UsageError
from lait.pipeline import inspect as corpus

NAME = "inspect"
HELP = "summarise a corpus: funnel, distributions, samples, rejects, HTML report"
ORDER = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", help="output directory of 'lait run', or a run directory of 'lait train'")
    parser.add_argument("--sample", type=int, default=0, metavar="N", help="print N rows (text, URLs, scores)")
    parser.add_argument("--where", metavar="EXPR", help="only rows matching EXPR, e.g. 'score < 0.3'")
    parser.add_argument("--rejects", metavar="REASON", help="print dropped examples of REASON (or STAGE.REASON)")
    parser.add_argument("--html", metavar="FILE", help="write a self-contained HTML report to FILE")
    parser.add_argument("--max_rows", type=int, default=200, help="kept pairs shown in the HTML report (default 200)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def main(args: argparse.Namespace, extra: list[str]) -> int:
    from lait.pipeline import run_report

    if storage.is_url(args.directory):
        storage.check_readable(args.directory, "DIRECTORY", "dir")
    if run_report.is_run_dir(args.directory):
        return _training_run(args, run_report)
    try:
        lines = list(_report(args))
    except corpus.CorpusError as error:
        raise UsageError(str(error)) from None
    except (pa.ArrowException, OSError) as error:
        # A damaged shard (cut short by a stopped run of an older lait, or changed since).
        raise UsageError(f"cannot read {args.directory}: {str(error).splitlines()[0] if str(error) else error!r}") \
            from None
    warning = corpus.corpus_warning(args.directory)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if not lines and args.where and not args.rejects:
        print(f"no row matches --where {args.where!r}", file=sys.stderr)
    for line in lines:
        print(line)
    return 0


def _training_run(args: argparse.Namespace, run_report) -> int:
    """`lait inspect RUN`: the curves of a training run (text, --json, or an --html report)."""
    if args.sample or args.where or args.rejects:
        raise UsageError(f"{args.directory} is a training run: --sample, --where and --rejects read a corpus")
    if args.html:
        report = run_report.write_run_report(args.directory, args.html)
        print(f"wrote {report['path']}: {report['charts']} charts, {report['bytes'] / 2**10:.0f} KiB")
    elif args.json:
        print(json.dumps(run_report.summarize_run(args.directory)))
    else:
        print(run_report.format_run_summary(args.directory))
    return 0


def _clean(value):
    """A float32 value as its shortest float32 decimal (0.9634, not 0.9634000062942505), recursively."""
    if isinstance(value, float) and math.isfinite(value) and float(np.float32(value)) == value:
        return float(np.format_float_positional(np.float32(value), unique=True, trim="-"))
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _report(args: argparse.Namespace):
    """The lines to print; nothing is printed before the corpus has been read without an error."""
    if args.rejects:
        for entry in corpus.read_rejects(args.directory, args.rejects, args.sample or None):
            entry.pop("thumbnail", None)
            yield json.dumps(_clean(entry), ensure_ascii=False)
    elif args.sample or args.where:
        for row in corpus.sample_rows(args.directory, args.sample or 10, args.where):
            yield json.dumps(_clean(row), ensure_ascii=False)
    elif args.html:
        report = corpus.write_html_report(args.directory, args.html, max_rows=args.max_rows)
        yield (f"wrote {report['path']}: {report['kept_shown']} kept pairs, {report['rejects_shown']} "
               f"rejects, {report['bytes'] / 2**20:.1f} MiB")
    else:
        summary = corpus.summarize(args.directory)
        yield json.dumps(summary) if args.json else corpus.format_summary(summary)
