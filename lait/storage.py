"""Where lait reads and writes: local paths, or any fsspec URL (``s3://``, ``gs://``, ``hf://``, ...).

    with storage.open("s3://bucket/corpus/_SUCCESS") as f: ...
    storage.glob("s3://bucket/crawl/*.warc.gz")        # full URLs, sorted
    storage.parquet_file("gs://bucket/corpus/shard-00000-of-00001.parquet").metadata

Every command opens, lists and writes its files through this module, the way pyarrow,
``datasets`` and img2dataset do: fsspec picks the filesystem from the URL's protocol (``s3fs``
for ``s3://``: ``pip install 'lait[s3]'``; ``gcsfs`` for ``gs://``: ``lait[gcs]``). Local paths
stay plain paths (nothing gains a ``file://``), and URLs come back as full URLs.

Credentials and endpoints come from where the filesystem's own library looks: for S3 the
standard ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``,
``AWS_ENDPOINT_URL`` (MinIO, Ceph, R2, ...) and ``~/.aws``; for GCS
``GOOGLE_APPLICATION_CREDENTIALS``; and fsspec's config (``FSSPEC_S3_ENDPOINT_URL``,
``~/.config/fsspec/*.json``) for anything else. Beam's S3 filesystem, which ``lait run``'s
pipeline stages use, reads the same ``AWS_*`` variables (through boto3).

A user's mistake (a protocol no installed package handles, a bucket that does not exist, no
credentials) is a :class:`lait.errors.UsageError` of one line saying what to do; see
:func:`check_readable` and :func:`check_writable`.

Object stores have no folders and no rename: :func:`move` is a copy then a delete there, and a
"folder" exists when a file has its prefix (:func:`makedirs` only checks that the bucket is there).
"""

from __future__ import annotations

import builtins
import contextlib
import glob as local_glob
import os
import shutil
import threading
from collections.abc import Iterator
from typing import IO

from lait.errors import UsageError

__all__ = ["is_url", "filesystem", "join", "same_location", "open", "exists", "isdir", "isfile", "size", "glob", "find", "makedirs",
           "delete", "delete_tree", "move", "copy_file", "read_bytes", "write_bytes", "parquet_file", "parquet_dataset",
           "check_readable", "check_pattern", "check_writable"]

# The package that serves a protocol, and lait's extra that installs it.
EXTRAS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs")}
# Stores of keys in buckets: no folders to make, no rename.
OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "oss"}


def is_url(path: str) -> bool:
    """Whether `path` is a URL with a protocol (fsspec's business), not a plain local path."""
    return "://" in str(path)


def protocol(path: str) -> str:
    return str(path).split("://", 1)[0].lower() if is_url(path) else "file"


def filesystem(path: str):
    """``(fsspec filesystem, path without its protocol)`` for a URL; a UsageError when none serves it."""
    import fsspec

    name = protocol(path)
    try:
        return fsspec.core.url_to_fs(str(path))
    except ImportError:
        package, extra = EXTRAS.get(name, (None, None))
        hint = f"pip install 'lait[{extra}]' (or {package})" if package else "install the fsspec package that serves it"
        raise UsageError(f"{path}: reading {name}:// paths needs {package or 'a filesystem package'}: {hint}") from None
    except ValueError as error:
        if "protocol" not in str(error).lower():
            raise
        raise UsageError(f"{path}: unknown protocol {name}://: give a local path or a URL fsspec knows "
                         "(s3://, gs://, az://, hf://, http://, ...)") from None


def _fresh(path: str):
    """The URL's filesystem, with its listing cache for `path` dropped: Beam's own filesystems (boto3
    for ``lait run``'s stages) write beside this one, and a cached listing would not show their files."""
    fs, inner = filesystem(path)
    fs.invalidate_cache(inner)
    return fs, inner


def join(base: str, *names: str) -> str:
    """`base` and relative `names` (which may hold "/") joined the way the path's filesystem joins."""
    parts = [part for name in names for part in str(name).split("/") if part]
    if is_url(base):
        return "/".join([str(base).rstrip("/"), *parts])
    return os.path.join(base, *parts)


def same_location(first: str, second: str) -> bool:
    """Whether two paths name the same place (a trailing "/" or a relative local path aside)."""
    if is_url(first) or is_url(second):
        return str(first).rstrip("/") == str(second).rstrip("/")
    return os.path.abspath(first) == os.path.abspath(second)


def open(path: str, mode: str = "rb") -> IO:  # noqa: A001 - the module's verb, like fsspec.open
    """A file object of `path`; writing creates missing local folders (object stores need none)."""
    if not is_url(path):
        if "w" in mode or "a" in mode:
            parent = os.path.dirname(path)
            if parent:
                os.makedirs(parent, exist_ok=True)
        return builtins.open(path, mode)
    fs, inner = filesystem(path)
    if "w" in mode:
        fs.invalidate_cache(inner)
    return fs.open(inner, mode)


def exists(path: str) -> bool:
    """A file or folder at `path` (on an object store: a key, or a prefix that holds one)."""
    return _ask(path, os.path.exists, "exists")


def isdir(path: str) -> bool:
    return _ask(path, os.path.isdir, "isdir")


def isfile(path: str) -> bool:
    return _ask(path, os.path.isfile, "isfile")


def _ask(path: str, local, method: str) -> bool:
    """`local(path)` for a local path, else the filesystem's `method` on a fresh listing."""
    if not is_url(path):
        return local(path)
    fs, inner = _fresh(path)
    return getattr(fs, method)(inner)


def size(path: str) -> int:
    if not is_url(path):
        return os.path.getsize(path)
    fs, inner = filesystem(path)
    return int(fs.size(inner))


def _url(fs, inner: str, like: str) -> str:
    """`inner` (a path fsspec listed) as a full URL with the protocol spelt as in `like`."""
    return f"{protocol(like)}://{inner.split('://', 1)[-1].lstrip('/')}" if protocol(like) != "file" else \
        fs.unstrip_protocol(inner)


def glob(pattern: str) -> list[str]:
    """The files and folders matching `pattern` (``*``, ``?``, ``[...]``; ``**`` spans folders), sorted."""
    if not is_url(pattern):
        return sorted(local_glob.glob(pattern, recursive=True))
    fs, inner = _fresh(pattern)
    return sorted(_url(fs, match, pattern) for match in fs.glob(inner))


def find(directory: str) -> list[str]:
    """Every file under `directory`, at any depth, sorted."""
    if not is_url(directory):
        return sorted(os.path.join(root, name) for root, _, names in os.walk(directory) for name in names)
    fs, inner = _fresh(directory)
    return sorted(_url(fs, found, directory) for found in fs.find(inner))


def makedirs(path: str) -> None:
    """Make the folder `path` and its parents; on an object store only its bucket must exist."""
    if not is_url(path):
        os.makedirs(path, exist_ok=True)
        return
    fs, inner = _fresh(path)
    if protocol(path) not in OBJECT_STORES:
        fs.makedirs(inner, exist_ok=True)
    elif not fs.exists(inner.split("/", 1)[0]):  # s3fs would create a missing bucket: lait never does
        raise FileNotFoundError(f"bucket {_bucket(path)} does not exist: create it first")


def delete(paths: list[str]) -> None:
    """Delete the files `paths` that exist (a missing one is no error)."""
    for path in paths:
        if not is_url(path):
            if os.path.isfile(path) or os.path.islink(path):
                os.remove(path)
            continue
        fs, inner = _fresh(path)
        if fs.isfile(inner):
            fs.rm_file(inner)


def delete_tree(path: str) -> None:
    """Delete the folder `path` and everything in it, if it exists."""
    if not is_url(path):
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
        return
    fs, inner = _fresh(path)
    if fs.exists(inner):
        fs.rm(inner, recursive=True)


def move(source: str, destination: str) -> None:
    """Move one file, replacing `destination`: a rename on a local disk, a copy then a delete on an
    object store (a reader may see both copies for a moment, never neither)."""
    if not is_url(source) and not is_url(destination):
        os.makedirs(os.path.dirname(destination) or ".", exist_ok=True)
        os.replace(source, destination)
        return
    if protocol(source) != protocol(destination):
        with open(source) as reader, open(destination, "wb") as writer:
            shutil.copyfileobj(reader, writer, 2**22)
        delete([source])
        return
    fs, inner = _fresh(source)
    _, target = _fresh(destination)
    fs.mv(inner, target)


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def write_whole(path: str, data: bytes) -> None:
    """Write `path` so that no reader ever sees part of it (see :func:`_whole_writer`)."""
    with _whole_writer(path) as writer:
        writer.write(data)


def copy_file(source: str, destination: str) -> None:
    """Copy one file between any two places (local or URL), streaming, whole or not at all."""
    with open(source) as reader, _whole_writer(destination) as writer:
        shutil.copyfileobj(reader, writer, 2**22)


@contextlib.contextmanager
def _whole_writer(path: str) -> Iterator[IO]:
    """A binary writer whose file appears at `path` whole when the block ends, and not at all when
    it raises: a local file is written beside its place and renamed there; an upload to an object
    store is committed by its close, and aborted on failure."""
    if not is_url(path):
        partial = f"{path}.partial-{os.getpid()}-{threading.get_ident()}"
        try:
            with open(partial, "wb") as writer:
                yield writer
            os.replace(partial, path)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
        return
    writer = open(path, "wb")
    try:
        yield writer
    except BaseException:
        # fsspec's close() would complete the upload with what it has: a partial object.
        # discard() aborts it (s3fs: the multipart upload); the file must never close after.
        getattr(writer, "discard", lambda: None)()
        writer.closed = True
        raise
    writer.close()


def _arrow_source(path: str):
    """``(path, filesystem)`` for pyarrow: a local path as it is, a URL through fsspec's filesystem."""
    if not is_url(path):
        return path, None
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    fs, inner = filesystem(path)
    return inner, PyFileSystem(FSSpecHandler(fs))


def parquet_file(path: str):
    """:class:`pyarrow.parquet.ParquetFile` of a local path or URL (reads the footer, then what is asked)."""
    import pyarrow.parquet as pq

    inner, fs = _arrow_source(path)
    return pq.ParquetFile(inner, filesystem=fs) if fs is not None else pq.ParquetFile(inner)


def parquet_dataset(paths: list[str]):
    """A :mod:`pyarrow.dataset` over Parquet files that all live on one filesystem."""
    import pyarrow.dataset as ds

    if not paths or not is_url(paths[0]):
        return ds.dataset(list(paths), format="parquet")
    sources = [_arrow_source(path) for path in paths]
    return ds.dataset([inner for inner, _ in sources], format="parquet", filesystem=sources[0][1])


# ---- checks made before a command starts: each problem is one line saying what to do


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:300]


def _bucket(path: str) -> str:
    return f"{protocol(path)}://{str(path).split('://', 1)[1].split('/', 1)[0]}"


def _reach(path: str, flag: str, what):
    """`what(fs, inner)` for the URL `path`; any failure to reach its store is one UsageError."""
    fs, inner = _fresh(path)
    try:
        return what(fs, inner)
    except UsageError:
        raise
    except (FileNotFoundError, NotADirectoryError) as error:
        raise UsageError(f"{flag} {path}: {_first_line(error)}") from None
    except PermissionError as error:
        raise UsageError(f"{flag} {path}: permission denied ({_first_line(error)}): check the credentials "
                         "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS)") from None
    except Exception as error:  # noqa: BLE001 - no credentials, endpoint unreachable...: one line, not a traceback
        raise UsageError(f"cannot reach {flag} {path}: {type(error).__name__}: {_first_line(error)} (check the "
                         "credentials and the endpoint, e.g. AWS_ENDPOINT_URL)") from None


def _bucket_exists(fs, inner: str, path: str, flag: str) -> None:
    bucket = inner.split("/", 1)[0]
    if bucket and not fs.exists(bucket):
        raise UsageError(f"{flag} {path}: bucket {_bucket(path)} does not exist (or these credentials cannot see "
                         "it): create it first, or check the name and AWS_ENDPOINT_URL")


def check_readable(path: str, flag: str, kind: str = "any") -> str:
    """The URL `path` names an existing file (`kind` "file"), folder ("dir") or either; else one UsageError."""
    def check(fs, inner):
        _bucket_exists(fs, inner, path, flag)
        if kind == "file" and not fs.isfile(inner):
            raise UsageError(f"cannot read {flag} {path}: no such file")
        if kind == "dir" and not fs.isdir(inner):
            raise UsageError(f"cannot read {flag} {path}: "
                             + ("it is a file, give a folder" if fs.isfile(inner) else "no such folder"))
        if kind == "any" and not fs.exists(inner):
            raise UsageError(f"cannot read {flag} {path}: no such file or folder")

    _reach(path, flag, check)
    return path


def check_pattern(pattern: str, flag: str) -> str:
    """The bucket of the URL glob `pattern` exists (what matches is the caller's to say); else one UsageError."""
    _reach(pattern, flag, lambda fs, inner: _bucket_exists(fs, inner, pattern, flag))
    return pattern


def check_writable(path: str, flag: str) -> str:
    """The URL `path` can be written: its bucket exists (objects need no folders); else one UsageError."""
    _reach(path, flag, lambda fs, inner: _bucket_exists(fs, inner, path, flag))
    return path
