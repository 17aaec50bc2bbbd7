"""What the benches measure with: peak resident memory of a process tree, sampled; the code of a
baseline revision to run beside this checkout; the JSON report they write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import psutil

MIB = 2**20


class PeakMemory:
    """Samples the resident memory of a process and its children (worker processes included).

    `peak` is the largest summed memory of the tree; `peak_process` the largest of any one
    process in it other than the root (a worker), or the root when it has no children.
    """

    def __init__(self, pid: int | None = None, interval: float = 0.1):
        self.process = psutil.Process(pid)
        self.interval, self.peak, self.peak_process = interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _rss(self, process: psutil.Process) -> int:
        try:
            return process.memory_info().rss
        except psutil.Error:
            return 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                children = self.process.children(recursive=True)
            except psutil.Error:
                children = []
            root, workers = self._rss(self.process), [self._rss(child) for child in children]
            self.peak = max(self.peak, root + sum(workers))
            self.peak_process = max(self.peak_process, max(workers, default=root))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def baseline_checkout(root: str, revision: str, folder: str) -> None:
    """`revision`'s `lait` package extracted into `folder`, its C extension built where it has one
    (as `make install` builds this checkout's): the code a bench runs beside this checkout."""
    archive = subprocess.run(["git", "-C", root, "archive", revision, "lait", "setup.py", "README.md"],
                             capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
    if any(name.endswith(".pyx") for _, _, names in os.walk(os.path.join(folder, "lait")) for name in names):
        subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=folder, capture_output=True,
                       check=True)


def write_report(report: dict, path: str) -> None:
    """Write `report` as indented JSON to `path` (its folder made) and print it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(json.dumps(report, indent=2))
