"""Running lait on Dask: Beam's own DaskRunner, a local cluster when no scheduler is given.

Beam's runner (apache_beam.runners.dask) does the translation; the few translations lait must
replace for correct results and a bounded memory are :mod:`lait.pipeline.dask_patches`,
installed by :func:`install_fixes` before a Dask run.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"


def install_fixes() -> None:
    """Patch Beam's Dask runner (:func:`lait.pipeline.dask_patches.install`) for every pipeline it runs."""
    from lait.pipeline import dask_patches

    dask_patches.install()


@contextlib.contextmanager
def local_cluster(workers: int) -> Iterator[str]:
    """A dask LocalCluster of `workers` processes (one thread each) for one run; yields its address.

    The cluster starts in the background: its address is known at once (a free port picked
    here), so the caller builds and translates its pipeline while the worker processes
    start and import lait, and the Beam client's connection waits for the scheduler.
    """
    from dask.distributed import LocalCluster

    port = _free_port()
    with ThreadPoolExecutor(1, thread_name_prefix="lait-dask-cluster") as pool:
        starting = pool.submit(LocalCluster, n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", scheduler_port=port, dashboard_address=None, silence_logs=40,
                               preload=[WORKER_PRELOAD])
        try:
            yield f"tcp://127.0.0.1:{port}"
        finally:
            # A failed start raises here: the cause of whatever the caller saw (a connection timeout).
            starting.result().close()


# Run by each worker of a local cluster as it starts (dask takes a preload's source text): Beam
# and lait's stages are loaded while the client still builds the pipeline, not when the first
# task arrives, after lait's logging set-up, which keeps Beam's import-time warnings quiet.
WORKER_PRELOAD = "from lait.pipeline.cli import configure_logging\nconfigure_logging()\nimport lait.pipeline.run\n"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
