"""Import published (image, caption) lists as corpus shards, through AcquireImages and FilterImages.

For ImageBERT's second pre-training stage (Conceptual Captions, SBU) or any list of pairs:
  lait import-pairs --input cc3m_train.tsv --output cc3m/                 # caption<TAB>url
  lait import-pairs --input pairs.jsonl --output corpus/ --min_image_side 200
                    # {"image": URL or local path, "caption": "..."} per line
  lait import-pairs --input pairs.parquet --output corpus/              # columns image/url, caption/text

Images are downloaded politely (robots.txt, per-host limits; see 'lait run --help' for the
AcquireImages options) or read from disk, then filtered like crawled images. Every pair is
kept as given (five captions of one image give five rows). Beam flags pass through.
"""

from __future__ import annotations

import argparse
import sys

from lait import progress, storage
from lait.errors import UsageError
from lait.pipeline.checks import parquet_footers
from lait.pipeline.commands._runner import check_beam_flags, runner_flags, stage_display
from lait.pipeline.commands.run import add_arguments as add_run_arguments
from lait.pipeline.commands.run import pipeline_options, use_beam_filesystems
from lait.pipeline.funnel import format_funnel, reconcile
from lait.pipeline.options import check_run_args

NAME = "import-pairs"
HELP = "import (image URL or file, caption) lists as corpus shards (stage-2 data: CC3M, SBU)"
ORDER = 25
PASS_THROUGH = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)


def _list_files(patterns: list[str]) -> list[str]:
    from lait.pipeline.import_pairs import list_format

    files = []
    for pattern in patterns:
        if storage.is_url(pattern):
            storage.check_pattern(pattern, "--input")
        matched = [path for path in storage.glob(pattern) if storage.isfile(path)]
        if not matched:
            raise UsageError(f"--input {pattern!r} matches no file: give .jsonl, .tsv or .parquet pair lists")
        files += matched
    for path in files:
        try:
            list_format(path)
        except ValueError as error:
            raise UsageError(str(error)) from None
    parquet_footers([path for path in files if list_format(path) == "parquet"], "--input")
    return sorted(set(files))


def main(args: argparse.Namespace, extra: list[str]) -> int:
    if not args.input or not args.output:
        raise UsageError("--input LIST... and --output DIR are required")
    check_run_args(args, crawl_input=False)
    from lait.pipeline.import_pairs import IMPORT_STAGES, ImportPairs
    from lait.pipeline.run import run

    lists = _list_files(args.input)
    check_beam_flags(extra, NAME)
    use_beam_filesystems(pipeline_options(args, extra))

    def build(pipeline, options):
        pipeline | "ImportPairs" >> ImportPairs(lists, options)

    with stage_display("lait import-pairs", IMPORT_STAGES, args.progress), runner_flags(args, extra) as flags:
        funnel = run(pipeline_options(args, flags), build)
    if progress.verbosity() > progress.QUIET:
        print(format_funnel(funnel))
    for problem in reconcile(funnel):
        print(f"warning: funnel does not reconcile: {problem}", file=sys.stderr)
    print(f"{funnel['stages'][-1]['out']} image-text pairs written to {args.output} in {funnel['seconds']} s")
    return 0
