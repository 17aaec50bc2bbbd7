"""Run the LAIT pipeline on WARC/ARC crawls and write Parquet shards.

Examples:
  lait run --input 'crawl/*.warc.gz' --output out/
  lait run --input crawl.warc.gz --output out/ --no-fetch --min_image_side 200
  lait run --input 'crawl/*.warc.gz' --output out/ --direct_num_workers 2 --direct_running_mode multi_processing
  lait run --input 'gs://bucket/crawl/*.warc.gz' --output gs://bucket/out --runner dataflow \\
      --project P --region R --temp_location gs://bucket/tmp --setup_file ./setup.py

Flags not listed here pass through to Beam's PipelineOptions (--runner, --direct_num_workers,
--project, ...). Without --runner the pipeline runs on Beam's in-process DirectRunner.
Writes DIR/shard-NNNNN-of-NNNNN.parquet, DIR/_funnel.json, DIR/_rejects/ and DIR/_run_config.json.
"""

from __future__ import annotations

import argparse
import os
import sys

from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.cli import UsageError
from pipeline.dask_runner import DASK_RUNNER, local_cluster
from pipeline.funnel import format_funnel, reconcile
from pipeline.options import LaitOptions

NAME = "run"
HELP = "run the pipeline: WARC/ARC in, Parquet image-text shards out"
ORDER = 20
PASS_THROUGH = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    LaitOptions._add_argparse_args(parser)
    parser.add_argument("--runner", default=None,
                        help="Beam runner: direct (default), dask, dataflow, flink, spark, or a runner class name")
    dask = parser.add_argument_group("Dask (--runner dask)")
    dask.add_argument("--dask_address", default=None, metavar="tcp://HOST:PORT",
                      help="address of a running dask scheduler (dask scheduler / dask-jobqueue / dask-kubernetes)")
    dask.add_argument("--dask_workers", type=int, default=None, metavar="N",
                      help="without --dask_address: start a local cluster of N worker processes for the run "
                      "(default: one per core) and stop it at the end")


def pipeline_options(args: argparse.Namespace, extra: list[str]) -> PipelineOptions:
    """Beam's own flags from `extra`, ours as already-parsed values (one PipelineOptions)."""
    ours = {k: v for k, v in vars(args).items()
            if k not in ("command", "dask_address", "dask_workers") and v is not None}
    return PipelineOptions(extra, **ours)


def main(args: argparse.Namespace, extra: list[str]) -> int:
    if not args.input:
        raise UsageError("--input is required: give one or more WARC/ARC files or glob patterns")
    if not args.output:
        raise UsageError("--output is required: a directory for the Parquet shards")
    unknown = [flag for flag in extra if flag.startswith("--") and flag.split("=")[0].lstrip("-").replace("-", "_")
               not in _known_beam_flags()]
    if unknown:
        raise UsageError(f"unknown option {unknown[0]}: see 'lait run --help' (Beam's own flags are passed through)")
    from pipeline.run import run

    if (args.runner or "").lower() in ("dask", DASK_RUNNER.lower()):
        funnel = _run_on_dask(args, extra, run)
    else:
        funnel = run(pipeline_options(args, extra))
    print(format_funnel(funnel))
    problems = reconcile(funnel)
    for problem in problems:
        print(f"warning: funnel does not reconcile: {problem}", file=sys.stderr)
    rows = funnel["stages"][-1]["out"]
    print(f"{rows} image-text pairs written to {args.output} in {funnel['seconds']} s")
    return 0


def _run_on_dask(args: argparse.Namespace, extra: list[str], run) -> dict:
    """On the scheduler at --dask_address, or on a local cluster started (and stopped) for this run."""
    if args.dask_address:
        return run(pipeline_options(args, [*extra, "--dask_client_address", args.dask_address]))
    workers = args.dask_workers or os.cpu_count() or 1
    with local_cluster(workers) as address:
        return run(pipeline_options(args, [*extra, "--dask_client_address", address]))


def _known_beam_flags() -> set[str]:
    """Every flag any registered PipelineOptions class defines (Beam's and ours)."""
    import apache_beam.options.pipeline_options as beam_options

    try:  # registers DaskOptions (--dask_address, ...) when dask is installed
        import apache_beam.runners.dask.dask_runner  # noqa: F401
    except ImportError:
        pass
    parser = argparse.ArgumentParser(add_help=False)
    for cls in beam_options.PipelineOptions.__subclasses__():
        try:
            cls._add_argparse_args(parser)
        except argparse.ArgumentError:
            continue
    return {action.dest for action in parser._actions} | {
        opt.lstrip("-").replace("-", "_") for action in parser._actions for opt in action.option_strings}
