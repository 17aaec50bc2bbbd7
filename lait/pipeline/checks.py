"""Checks on command-line values, made before any work starts; each mistake is one line.

    parser.add_argument("--max_shard_bytes", type=Number(int, 1), ...)  # parse time
    output_dir(args.output, "--output")                                # once parsed

:class:`Number` is an argparse type; the path checks are called once the arguments are
parsed: a readable file or folder, a writable output, a corpus or regions folder whose
Parquet files are whole, a checkpoint that is a whole torch file, a model file that loads.
Every failure is a :class:`UsageError` naming the flag. URLs (``s3://``, ``gs://``...) are
checked through :mod:`lait.storage`: the filesystem's package is installed, the bucket
exists, the file or folder is there.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import zipfile
from collections.abc import Callable

from lait import storage
from lait.errors import UsageError

__all__ = ["Number", "FRACTION", "name_numbers", "readable_file", "readable_dir", "output_dir", "output_file", "corpus_dir",
           "regions_dir", "checkpoint", "model_file", "http_url", "torch_device"]


class Number:
    """argparse type: a number of `kind` from `minimum` to `maximum` (None: unbounded), or above `above`.

    `off` is a value outside the range that is accepted too, because it disables a check (-1 for
    most of the text rules, 0 for the image size checks). NaN and infinity are refused.

    A bad value raises UsageError, "argument --flag: must be ..." once :func:`name_numbers` has
    told each Number its flag: not argparse's own error, which would print Beam's whole usage
    and exit where Beam parses lait's options (``PipelineOptions([...]).view_as(LaitOptions)``).
    """

    def __init__(self, kind: type = int, minimum: float | None = None, maximum: float | None = None, *,
                 above: float | None = None, off: float | None = None):
        self.kind, self.minimum, self.maximum, self.above, self.off = kind, minimum, maximum, above, off
        self.flag = None
        self.__name__ = kind.__name__  # argparse names the type in some messages

    def describe(self) -> str:
        what = "a whole number" if self.kind is int else "a number"
        if self.minimum is not None and self.maximum is not None:
            what += f" from {self.minimum:g} to {self.maximum:g}"
        elif self.minimum is not None:
            what += f" of at least {self.minimum:g}"
        elif self.maximum is not None:
            what += f" of at most {self.maximum:g}"
        if self.above is not None:
            what += f" above {self.above:g}"
        if self.off is not None:
            what += f" (or {self.off:g} to turn it off)"
        return what

    def __call__(self, text: str | float) -> float:
        where = f"argument {self.flag}: " if self.flag else ""
        try:
            value = self.kind(text)
        except (TypeError, ValueError):
            raise UsageError(f"{where}expected {self.describe()}, got {text!r}") from None
        if value == self.off:
            return value
        if (not math.isfinite(value) or (self.minimum is not None and value < self.minimum)
                or (self.maximum is not None and value > self.maximum)
                or (self.above is not None and value <= self.above)):
            raise UsageError(f"{where}must be {self.describe()}, got {text}")
        return value

    def __repr__(self) -> str:
        return f"Number({self.describe()})"


FRACTION = Number(float, 0, 1)  # thresholds on probabilities and shares


def name_numbers(parser: argparse.ArgumentParser) -> None:
    """Give every Number-typed option of `parser` its own copy of the Number, told its flag."""
    for action in parser._actions:
        if isinstance(action.type, Number) and action.option_strings:
            action.type = copy.copy(action.type)
            action.type.flag = action.option_strings[0]


def _why(error: OSError) -> str:
    return error.strerror or str(error)


def readable_file(path, flag: str) -> str:
    """`path` is a file this process can read."""
    return _readable(str(path), flag, "file")


def readable_dir(path, flag: str) -> str:
    """`path` is a folder this process can list and read."""
    return _readable(str(path), flag, "dir")


def _readable(path: str, flag: str, kind: str) -> str:
    if storage.is_url(path):
        return storage.check_readable(path, flag, kind)
    noun, other = ("file", "folder") if kind == "file" else ("folder", "file")
    if not os.path.exists(path):
        raise UsageError(f"cannot read {flag} {path}: no such {noun}")
    if os.path.isdir(path) != (kind == "dir"):
        raise UsageError(f"cannot read {flag} {path}: it is a {other}, give a {noun}")
    if not os.access(path, os.R_OK if kind == "file" else os.R_OK | os.X_OK):
        raise UsageError(f"cannot read {flag} {path}: permission denied")
    return path


def _writable_parent(path: str, flag: str) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UsageError(f"cannot write {flag} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {flag} {path}: {parent} is not writable")


def output_dir(path, flag: str) -> str:
    """`path` is a folder that exists and is writable, or one that can be created."""
    path = str(path)
    if storage.is_url(path):
        return storage.check_writable(path, flag)
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise UsageError(f"{flag} {path} is a file: give a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"cannot write {flag} {path}: permission denied")
        return path
    _writable_parent(path, flag)
    return path


def output_file(path, flag: str) -> str:
    """`path` names a file that can be written (its folder is created where missing)."""
    path = str(path)
    if storage.is_url(path):
        return storage.check_writable(path, flag)
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a folder: give a file name")
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            raise UsageError(f"cannot write {flag} {path}: permission denied")
        return path
    _writable_parent(path, flag)
    return path


def parquet_footers(paths, flag: str) -> None:
    """Every Parquet file's footer reads (a truncated, empty or foreign file fails here, not mid-run)."""
    import pyarrow as pa

    for path in paths:
        try:
            storage.parquet_file(str(path))
        except (OSError, pa.ArrowException) as error:
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise UsageError(f"{flag}: {path} is not a readable Parquet file ({first})") from None


def corpus_dir(path, flag: str) -> list[str]:
    """The shards of the corpus folder `path` (written by `lait run`), each with a whole footer."""
    from lait.pipeline.inspect import CorpusError, shard_paths

    if storage.is_url(path) or os.path.exists(str(path)):
        readable_dir(path, flag)
    try:
        shards = shard_paths(str(path))
    except CorpusError as error:  # it names the folder and what to run
        raise UsageError(str(error)) from None
    parquet_footers(shards, flag)
    return shards


def parquet_dir(path, flag: str) -> list:
    """The Parquet files of a folder read by the trainer (or the file itself), each with a whole footer."""
    from lait.imagebert.data import parquet_files

    if storage.isfile(str(path)):
        readable_file(path, flag)
    else:
        readable_dir(path, flag)
    try:
        files = parquet_files(path)
    except ValueError:  # none there
        files = []
    if not files:
        raise UsageError(f"{flag} {path} holds no .parquet files")
    parquet_footers(files, flag)
    return files


def regions_dir(path, flag: str) -> dict:
    """The `_meta.json` of a regions folder written by `lait regions`, whose shards are whole."""
    import json

    from lait.imagebert.data import META_FILE

    readable_dir(path, flag)
    meta_path = storage.join(str(path), META_FILE)
    if not storage.isfile(meta_path):
        raise UsageError(f"{flag} {path} has no {META_FILE}: give a folder written by 'lait regions'")
    try:
        meta = json.loads(storage.read_bytes(meta_path))
        int(meta["feature_dim"]), int(meta["num_labels"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{flag}: {meta_path} is not a regions _meta.json ({type(error).__name__}: {error})") from None
    parquet_dir(path, flag)
    return meta


def checkpoint(path, flag: str) -> str:
    """A lait checkpoint file (or RUN/last.pt of a run folder, local or a URL) that is a whole torch zip archive."""
    path = str(path)
    folder = storage.isdir(path)
    file = storage.join(path, "last.pt") if folder else path
    if folder and not storage.exists(file):
        raise UsageError(f"{flag} {path}: no last.pt in this folder")
    readable_file(file, flag)
    if not _passes(lambda: _holds_torch_data(file), zipfile.BadZipFile, OSError):
        raise UsageError(f"{flag} {file} is not a whole checkpoint (truncated, or not written by torch.save)")
    return file


def _holds_torch_data(file: str) -> bool:
    """Whether a zip archive holds torch.save's data.pkl (a truncated file has no central directory)."""
    with storage.open(file, "rb") as f, zipfile.ZipFile(f) as archive:
        return any(name.endswith("/data.pkl") or name == "data.pkl" for name in archive.namelist())


def _passes(test: Callable[[], bool], *errors: type[BaseException]) -> bool:
    """`test()`, or False where it raises one of `errors` (a probe that fails says no)."""
    try:
        return test()
    except errors:
        return False


def http_url(url: str, flag: str) -> str:
    """`url` is an absolute http(s) URL with a host."""
    from urllib.parse import urlsplit

    def absolute() -> bool:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)

    if not _passes(absolute, ValueError):
        raise UsageError(f"{flag} {url!r} is not an http(s) URL: give the full address, e.g. https://example.com/page")
    return url


def torch_device(device: str, flag: str) -> str:
    """`device` names a torch device this machine has (cpu, cuda, cuda:N, mps)."""
    import torch

    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise UsageError(f"{flag} {device!r} is not a torch device: give cpu, cuda or cuda:N") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"{flag} {device}: no CUDA device here (give cpu)")
    return device


def model_file(path, flag: str, load: Callable[[str], object]) -> object:
    """The model `load(path)` reads from `path`: any failure is one line naming the file."""
    readable_file(path, flag)
    try:
        return load(str(path))
    except Exception as error:  # noqa: BLE001 - whatever a broken model file raises, say which file
        raise UsageError(f"{flag} {path} is not a model file lait can load ({type(error).__name__}: {error})"[:400]) from None
