"""How a command picks its Beam runner: the --runner and Dask flags, and checks on Beam's own flags.

Shared by the commands that run a pipeline (`run`, `import-pairs`, `regions`).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
from collections.abc import Callable, Iterator

from lait import progress
from lait.errors import UsageError
from lait.pipeline import beam_worker
from lait.pipeline.checks import Number
from lait.pipeline.cli import suggest
from lait.pipeline.dask_runner import DASK_RUNNER, local_cluster


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runner", default=None,
                        help="Beam runner: direct (default), dask, dataflow, flink, spark, or a runner class name")
    dask = parser.add_argument_group("Dask (--runner dask)")
    dask.add_argument("--dask_address", default=None, metavar="tcp://HOST:PORT",
                      help="address of a running dask scheduler (dask scheduler / dask-jobqueue / dask-kubernetes)")
    dask.add_argument("--dask_workers", type=Number(int, 1), default=None, metavar="N",
                      help="without --dask_address: start a local cluster of N worker processes for the run "
                      "(default: one per core) and stop it at the end")


class _BeamFlagParser(argparse.ArgumentParser):
    """Every flag of the registered PipelineOptions classes; a bad value is a UsageError."""

    def error(self, message: str):
        raise UsageError(message)


@functools.cache
def beam_flag_parser() -> argparse.ArgumentParser:
    """A parser of Beam's own flags: those of every registered PipelineOptions class but lait's, built once."""
    import apache_beam.options.pipeline_options as beam_options

    try:  # registers DaskOptions (--dask_client_address, ...) when dask is installed
        import apache_beam.runners.dask.dask_runner  # noqa: F401
    except ImportError:
        pass
    parser = _BeamFlagParser(add_help=False, allow_abbrev=False)
    for cls in beam_options.PipelineOptions.__subclasses__():
        if cls.__module__.startswith("pipeline."):
            continue  # lait's options are the command's own flags, not Beam's
        try:
            cls._add_argparse_args(parser)
        except argparse.ArgumentError:
            continue
    return parser


def check_beam_flags(extra: list[str], command: str, own_options: list[str] = ()) -> None:
    """A misspelt flag, a stray argument or a bad value is a one-line error, before anything starts
    (not a flag Beam silently drops, nor Beam's whole usage text once a cluster is up)."""
    parser = beam_flag_parser()
    try:
        _, unknown = parser.parse_known_args(extra)
    except UsageError as error:
        raise UsageError(f"{error}: see 'lait {command} --help'") from None
    if unknown:
        options = [*own_options, *(option for action in parser._actions for option in action.option_strings)]
        what = "option" if unknown[0].startswith("-") else "argument"
        raise UsageError(f"unknown {what} {unknown[0]}{suggest(unknown[0], options)}: see 'lait {command} --help' "
                         "(Beam's own flags are passed through)")


def is_dask(runner: str | None) -> bool:
    return (runner or "").lower() in ("dask", DASK_RUNNER.lower())


def stage_display(title: str, stages: list[str], enabled: bool = True,
                  totals: dict[str, tuple[str, int]] | None = None) -> contextlib.AbstractContextManager:
    """The live display of a pipeline command's stages (:class:`lait.progress.StageDisplay`);
    enter it before :func:`runner_flags`, so that a local cluster's workers report to it."""
    return progress.StageDisplay(title, stages, totals) if enabled else contextlib.nullcontext()


@contextlib.contextmanager
def runner_flags(args: argparse.Namespace, extra: list[str]) -> Iterator[list[str]]:
    """Beam flags for the chosen runner: with Dask, the scheduler's address (a local cluster
    of --dask_workers processes when no --dask_address is given, stopped on exit) and a
    partition count that keeps every worker busy."""
    beam_worker.install()  # quiet worker processes for --direct_running_mode multi_processing
    if not is_dask(args.runner):
        yield list(extra)
    elif args.dask_address:
        yield [*extra, "--dask_client_address", args.dask_address,
               *partition_flags(extra, lambda: cluster_threads(args.dask_address))]
    else:
        if args.dask_workers is not None and args.dask_workers < 1:
            # A cluster without workers would take the job and wait for ever (argparse checks it too).
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

    try:
        with Client(address, timeout=30) as client:
            return sum(client.nthreads().values())
    except (OSError, TimeoutError) as error:
        raise UsageError(f"cannot reach the dask scheduler at --dask_address {address}: {error}") from None
