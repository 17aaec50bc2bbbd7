"""The crawl readers' warnings, collected per file instead of printed.

    with reader_warnings.collect() as warnings:
        ...read one file with warcio...
    # warnings: ["warcio: WARNING: Record not followed by newline, ... Offset: 4764 ...", ...]

warcio writes some warnings straight to ``sys.stderr`` (a record whose Content-Length
does not end at a blank line; a gzip member that stops decompressing part-way; a digest
mismatch) and logs others on its ``warcio`` logger (spaces replaced in a WARC-Target-URI).
On the shared broken test files that was dozens of lines per run, once per worker that read
a file, and nothing in the funnel. ReadCrawl counts each as a ``reader_warning`` drop.

The stderr writes are caught by giving warcio's modules a stand-in for their ``sys`` name
whose ``stderr`` collects them (warcio has no option to silence them): a private detail of
warcio, which tests/test_read_crawl.py checks on a file that makes warcio warn. Collection
is per thread, so concurrent readers in one process keep their own lists; outside
``collect()`` the messages go to stderr as before. fastwarc prints nothing.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import threading
from collections.abc import Iterator

__all__ = ["collect"]

# warcio's modules that write warnings to sys.stderr themselves.
WARCIO_MODULES = ("warcio.archiveiterator", "warcio.bufferedreaders", "warcio.digestverifyingreader")
_local = threading.local()
_installed = False


def _sink() -> list[str] | None:
    return getattr(_local, "sink", None)


class _Stderr:
    """warcio's stderr: into the reading thread's list inside `collect()`, else to the real stderr."""

    def write(self, text: str) -> int:
        sink = _sink()
        if sink is None:
            return sys.stderr.write(text)
        if text.strip():
            sink.append("warcio: " + " ".join(text.split()))
        return len(text)

    def flush(self) -> None:
        if _sink() is None:
            sys.stderr.flush()


class _Sys:
    """The `sys` module as warcio's modules see it: the real one but for `stderr`."""

    stderr = _Stderr()

    def __getattr__(self, name: str):
        return getattr(sys, name)


class _Handler(logging.Handler):
    """warcio's log records: into the reading thread's list inside `collect()`, else to stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        sink = _sink()
        if sink is None:
            sys.stderr.write(f"{record.levelname} {record.name}: {record.getMessage()}\n")
        else:
            sink.append(f"warcio: {record.getMessage()}")


def _install() -> None:
    global _installed
    if _installed:
        return
    for name in WARCIO_MODULES:
        importlib.import_module(name).sys = _Sys()
    logger = logging.getLogger("warcio")
    logger.addHandler(_Handler())
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    _installed = True


@contextlib.contextmanager
def collect() -> Iterator[list[str]]:
    """A list that receives, one line each, the warnings warcio gives in this thread until the block ends."""
    _install()
    previous = _sink()
    _local.sink = sink = []
    try:
        yield sink
    finally:
        _local.sink = previous
