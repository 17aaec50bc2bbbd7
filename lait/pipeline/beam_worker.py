"""Beam's SDK worker process (``--direct_running_mode multi_processing``) with lait's logging.

The multi-processing DirectRunner starts each worker as ``python -m
apache_beam.runners.worker.sdk_worker_main``, which logs its start-up at INFO and warns about
every lait option it does not know ("Discarding unparseable args: [...]", one long line): some
twenty lines per worker and pipeline, and a run is several pipelines. :func:`install` makes the
runner start this module instead, which sends only errors to stderr (everything with ``lait -v``,
through ``LAIT_WORKER_LOG_LEVEL``) and then runs Beam's worker unchanged.

This is a patch of how Beam builds the worker's command line (the one place lait does so for
the DirectRunner); tests/test_progress.py fails when Beam's command line changes.
"""

from __future__ import annotations

import logging
import os
import sys

BEAM_WORKER = "-m apache_beam.runners.worker.sdk_worker_main"
LAIT_WORKER = "-m lait.pipeline.beam_worker"
ENV_LEVEL = "LAIT_WORKER_LOG_LEVEL"


def worker_command(command: str) -> str:
    """Beam's worker command line with this module in place of Beam's worker main."""
    return command.replace(BEAM_WORKER, LAIT_WORKER)


def install() -> bool:
    """Make the DirectRunner's worker processes start through this module; True once installed."""
    from apache_beam.transforms.environments import SubprocessSDKEnvironment

    current = SubprocessSDKEnvironment.__dict__.get("from_command_string")
    if not isinstance(current, classmethod):
        return False
    if getattr(current.__func__, "lait_worker", False):
        return True
    original = current.__func__

    def from_command_string(cls, command_string, *args, **kwargs):
        return original(cls, worker_command(command_string), *args, **kwargs)

    from_command_string.lait_worker = True
    SubprocessSDKEnvironment.from_command_string = classmethod(from_command_string)
    return True


def main() -> None:
    # Before Beam's imports: the first log call of a module without handlers would add one that
    # prints everything at the root's level (Beam sets INFO) to stderr.
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(os.environ.get(ENV_LEVEL, "ERROR"))
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    from apache_beam.runners.worker import sdk_worker_main

    sdk_worker_main.main(sys.argv)


if __name__ == "__main__":
    main()
