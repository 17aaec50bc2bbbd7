"""How a command picks its Beam runner: the --runner and Dask flags, and checks on Beam's own flags.

Shared by the commands that run a pipeline (`run`, `import-pairs`, `regions`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterator

from pipeline.cli import UsageError
from pipeline.dask_runner import DASK_RUNNER, local_cluster


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runner", default=None,
                        help="Beam runner: direct (default), dask, dataflow, flink, spark, or a runner class name")
    dask = parser.add_argument_group("Dask (--runner dask)")
    dask.add_argument("--dask_address", default=None, metavar="tcp://HOST:PORT",
                      help="address of a running dask scheduler (dask scheduler / dask-jobqueue / dask-kubernetes)")
    dask.add_argument("--dask_workers", type=int, default=None, metavar="N",
                      help="without --dask_address: start a local cluster of N worker processes for the run "
                      "(default: one per core) and stop it at the end")


class _BeamFlagParser(argparse.ArgumentParser):
    """Every flag of the registered PipelineOptions classes; a bad value is a UsageError."""

    def error(self, message: str):
        raise UsageError(message)


def beam_flag_parser() -> argparse.ArgumentParser:
    """A parser of every flag any registered PipelineOptions class defines (Beam's and ours)."""
    import apache_beam.options.pipeline_options as beam_options

    try:  # registers DaskOptions (--dask_client_address, ...) when dask is installed
        import apache_beam.runners.dask.dask_runner  # noqa: F401
    except ImportError:
        pass
    parser = _BeamFlagParser(add_help=False)
    for cls in beam_options.PipelineOptions.__subclasses__():
        try:
            cls._add_argparse_args(parser)
        except argparse.ArgumentError:
            continue
    return parser


def check_beam_flags(extra: list[str], command: str) -> None:
    """A misspelt flag or a bad value is a one-line error, before anything starts (not a flag Beam
    silently drops, nor Beam's whole usage text once a cluster is up)."""
    parser = beam_flag_parser()
    known = {action.dest for action in parser._actions} | {
        opt.lstrip("-").replace("-", "_") for action in parser._actions for opt in action.option_strings}
    unknown = [flag for flag in extra if flag.startswith("--") and flag.split("=")[0].lstrip("-").replace("-", "_")
               not in known]
    if unknown:
        raise UsageError(f"unknown option {unknown[0]}: see 'lait {command} --help' (Beam's own flags are passed through)")
    try:
        parser.parse_known_args(extra)
    except UsageError as error:
        raise UsageError(f"{error}: see 'lait {command} --help'") from None


def is_dask(runner: str | None) -> bool:
    return (runner or "").lower() in ("dask", DASK_RUNNER.lower())


@contextlib.contextmanager
def runner_flags(args: argparse.Namespace, extra: list[str]) -> Iterator[list[str]]:
    """Beam flags for the chosen runner: with Dask, the scheduler's address (a local cluster
    of --dask_workers processes when no --dask_address is given, stopped on exit) and a
    partition count that keeps every worker busy."""
    if not is_dask(args.runner):
        yield list(extra)
    elif args.dask_address:
        yield [*extra, "--dask_client_address", args.dask_address,
               *partition_flags(extra, lambda: cluster_threads(args.dask_address))]
    else:
        if args.dask_workers is not None and args.dask_workers < 1:
            # A cluster without workers would take the job and wait for ever.
            raise UsageError(f"--dask_workers must be at least 1, got {args.dask_workers}")
        workers = args.dask_workers or os.cpu_count() or 1
        with local_cluster(workers) as address:
            yield [*extra, "--dask_client_address", address, *partition_flags(extra, lambda: workers)]


PARTITIONS_PER_THREAD = 1


def partition_flags(extra: list[str], threads: Callable[[], int]) -> list[str]:
    """``--dask_npartitions`` for ``PARTITIONS_PER_THREAD`` partitions per worker thread, unless given
    (`threads` is only asked then: for a remote cluster it connects to the scheduler).

    Beam's Dask runner cuts each `Create` into partitions of 128 elements and every later step
    keeps that partitioning, so a crawl of 141 files ran as two partitions (128 + 13 files) and
    one worker did nine tenths of the work. One partition per thread keeps every worker busy
    (crawl files take similar times); each extra one adds a task to every step, and 4 per
    thread made 2,820 files 20% slower on 2 workers.
    """
    if any(flag.split("=")[0] in ("--dask_npartitions", "--dask_partition_size") for flag in extra):
        return []
    return ["--dask_npartitions", str(PARTITIONS_PER_THREAD * max(1, threads()))]


def cluster_threads(address: str) -> int:
    """Worker threads of the dask cluster at `address`."""
    from dask.distributed import Client

    with Client(address, timeout=30) as client:
        return sum(client.nthreads().values())
