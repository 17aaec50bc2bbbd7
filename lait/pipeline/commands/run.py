"""Run the LAIT pipeline on WARC/ARC crawls and write Parquet shards.

Examples:
  lait run --input 'crawl/*.warc.gz' --output out/
  lait run --input crawl.warc.gz --output out/ --no-fetch --min_image_side 200
  lait run --input 'crawl/*.warc.gz' --output out/ --overwrite        # replace out/'s corpus once this run succeeds
  lait run --input 'crawl/*.warc.gz' --output out/ --resume           # continue a run that was stopped
  lait run --input 'crawl/*.warc.gz' --output out/ --direct_num_workers 2 --direct_running_mode multi_processing
  lait run --input 's3://bucket/crawl/*.warc.gz' --output s3://bucket/corpus   # lait[s3]; AWS_* variables
  lait run --input 'gs://bucket/crawl/*.warc.gz' --output gs://bucket/out --runner dataflow \\
      --project P --region R --temp_location gs://bucket/tmp --setup_file ./setup.py

Flags not listed here pass through to Beam's PipelineOptions (--runner, --direct_num_workers,
--project, ...). Without --runner the pipeline runs on Beam's in-process DirectRunner.
Writes DIR/shard-NNNNN-of-NNNNN.parquet, DIR/_funnel.json, DIR/_rejects/ and DIR/_run_config.json,
then DIR/_SUCCESS last (the list of those files). The run works in DIR/_tmp-ID/ and moves its corpus
into DIR at the end: a stopped run leaves DIR's previous corpus as it was.
"""

from __future__ import annotations

import argparse
import sys

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from lait import progress, storage
from lait.errors import UsageError
from lait.pipeline.commands._runner import add_runner_arguments, check_beam_flags, runner_flags, stage_display
from lait.pipeline.funnel import STAGES, format_funnel, reconcile
from lait.pipeline.options import LaitOptions

NAME = "run"
HELP = "run the pipeline: WARC/ARC in, Parquet image-text shards out"
ORDER = 20
PASS_THROUGH = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    LaitOptions._add_argparse_args(parser)
    add_runner_arguments(parser)


def pipeline_options(args: argparse.Namespace, extra: list[str]) -> PipelineOptions:
    """Beam's own flags from `extra`, ours as already-parsed values (one PipelineOptions)."""
    ours = {k: v for k, v in vars(args).items()
            if k not in ("command", "dask_address", "dask_workers", "quiet", "verbose", "config") and v is not None}
    return PipelineOptions(extra, **ours)


# Linux refuses to start a process with an environment string over 128 KiB (MAX_ARG_STRLEN).
MAX_OPTIONS_CHARS = 100_000


def check_options_fit_workers(inputs: list[str], extra: list[str]) -> None:
    """The multi-processing DirectRunner hands every option to its workers in one environment
    variable: thousands of paths make exec fail and the run wait forever, so say so first."""
    multi = any(flag.endswith("multi_processing") for flag in extra)
    if multi and sum(len(path) + 4 for path in inputs) > MAX_OPTIONS_CHARS:
        raise UsageError(f"{len(inputs)} --input paths are too long a list for --direct_running_mode "
                         "multi_processing: give a glob pattern instead, e.g. --input 'crawl/*.warc.gz'")


def main(args: argparse.Namespace, extra: list[str]) -> int:
    if not args.input:
        raise UsageError("--input is required: give one or more WARC/ARC files or glob patterns")
    if not args.output:
        raise UsageError("--output is required: a directory for the Parquet shards")
    check_beam_flags(extra, NAME)
    check_options_fit_workers(args.input, extra)
    for pattern in args.input:
        if storage.is_url(pattern):
            storage.check_pattern(pattern, "--input")
    use_beam_filesystems(pipeline_options(args, extra))
    from lait.pipeline.run import run

    with stage_display("lait run", STAGES, args.progress, _file_total(args)), runner_flags(args, extra) as flags:
        funnel = run(pipeline_options(args, flags))
    if progress.verbosity() > progress.QUIET:
        print(format_funnel(funnel))
    problems = reconcile(funnel)
    for problem in problems:
        print(f"warning: funnel does not reconcile: {problem}", file=sys.stderr)
    rows = funnel["stages"][-1]["out"]
    print(f"{rows} image-text pairs written to {args.output} in {funnel['seconds']} s")
    return 0


def use_beam_filesystems(options: PipelineOptions) -> None:
    """Give Beam's filesystems the run's options before a pipeline exists: the input files are
    matched first, and Beam's S3 filesystem cannot start without options (its --s3_* flags, or
    boto3's AWS_* variables when they are not given)."""
    FileSystems.set_options(options)


def _file_total(args: argparse.Namespace) -> dict:
    """ReadCrawl's file count for the display (none when resuming: done parts are not read again)."""
    if args.resume or not args.progress or progress.mode() == "off":
        return {}
    from lait.pipeline.read_crawl import expand_patterns

    try:
        return {"ReadCrawl": ("files", len(expand_patterns(args.input)))}
    except Exception:  # noqa: BLE001 - the run itself says what is wrong with the inputs
        return {}
