"""The output folder: a corpus appears whole or not at all, and lait removes only what it wrote.

    OUTPUT/
      shard-NNNNN-of-NNNNN.parquet, _rejects/STAGE.REASON.jsonl, _funnel.json, _run_config.json,
      README.md                 the dataset card (lait/pipeline/dataset_card.py)
      _SUCCESS                  written last: the manifest (every file above, run id, rows)
      _tmp-ID/                  a run in progress; removed once it has committed
        _RUN.json               the run: id, input files, their parts
        parts/part-NNNNN/       one group of input files: record files, then _DONE.json last
        fetched/                the images downloaded so far, a record file per batch (a resumed
                                run does not download them again)
        final/                  the new corpus, before it moves
        _COMMIT.json            the move in progress: the old corpus's files, the new files

A run writes under `_tmp-ID/` only, and :func:`commit` moves its corpus into place at the end:
the old `_SUCCESS` goes first (a reader then sees an unfinished corpus, never a mixed one
that looks whole), then the files the old manifest lists, then the new files are renamed
into place, and `_SUCCESS` is written last. A run killed before the commit leaves the
previous corpus as it was; one killed during the commit leaves `_COMMIT.json`, and the next
`lait run` in that folder finishes the move first (:func:`finish_interrupted_commit`).

Files of a previous corpus are removed only when they are listed in its `_SUCCESS`: a
user's own `shard-x.parquet` beside a corpus is never touched.

OUTPUT may be any URL of :mod:`lait.storage` (``s3://``, ``gs://``...). The guarantee
is the same there, with one difference: an object store cannot rename, so each file of the
new corpus is copied to its place and then deleted from `_tmp-ID/final/`. While the commit
runs, a reader that trusts only a corpus with `_SUCCESS` (as `lait inspect`, `export`,
`regions` and `train` do) sees no corpus, never a mixed one; a reader that lists
`shard-*.parquet` without looking at `_SUCCESS` can see some new shards beside old ones
for that time.
"""

from __future__ import annotations

import json
import re
import struct
import uuid
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from lait import storage
from lait.errors import UsageError

SUCCESS = "_SUCCESS"
TMP_PREFIX = "_tmp-"
RUN_FILE = "_RUN.json"
COMMIT_FILE = "_COMMIT.json"
DONE_FILE = "_DONE.json"
FINAL = "final"
FETCHED = "fetched"
# What a corpus holds, as glob patterns relative to its folder.
CORPUS_PATTERNS = ("shard-*.parquet", "_funnel.json", "_run_config.json", "_rejects/*.jsonl", "README.md")
# The names lait gives its files: found without a manifest, they are an older lait's corpus.
LAIT_NAME = re.compile(r"(shard-\d{5}-of-\d{5}\.parquet|_funnel\.json|_run_config\.json|_rejects/[^/]+\.jsonl)")


def join(directory: str, *names: str) -> str:
    """A folder and a relative name that may hold "/", joined as the folder's filesystem joins."""
    return storage.join(directory, *names)


def read_json(path: str) -> dict | None:
    """The JSON object in `path`; None when it is missing or not whole (a write that was cut)."""
    try:
        if not storage.isfile(path):
            return None
        data = json.loads(storage.read_bytes(path))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: str, data: dict) -> None:
    storage.write_bytes(path, (json.dumps(data, indent=1, sort_keys=True, default=str) + "\n").encode())


def delete_existing(paths: list[str]) -> None:
    storage.delete(paths)


def delete_folder(directory: str) -> None:
    """Delete a folder lait made and everything in it."""
    storage.delete_tree(directory)


def list_files(directory: str, patterns: tuple[str, ...] = CORPUS_PATTERNS) -> list[str]:
    """Names, relative to `directory`, of the files that match `patterns` there, sorted."""
    prefix = join(directory, "x")[:-1]
    names = set()
    for pattern in patterns:
        for path in storage.glob(join(directory, pattern)):
            if path.startswith(prefix):
                names.add(path[len(prefix):].replace("\\", "/"))
    return sorted(names)


def read_manifest(output: str) -> dict | None:
    """What `_SUCCESS` says of the corpus in `output` (its `files`, `run_id`, `rows`); None without one."""
    manifest = read_json(join(output, SUCCESS))
    if manifest is None or not isinstance(manifest.get("files"), list):
        return None
    return manifest


def tmp_dir(output: str, run_id: str) -> str:
    return join(output, TMP_PREFIX + run_id)


def prepare_output(output: str) -> None:
    """Make `output` if it is missing; a folder lait cannot make is a one-line error."""
    try:
        storage.makedirs(output)
    except OSError as error:
        raise UsageError(f"cannot create --output {output}: {str(error).splitlines()[0]}") from None


def check_previous(output: str, overwrite: bool) -> dict | None:
    """The manifest of the corpus already in `output`, which this run may replace; None when there is none.

    A corpus there without `--overwrite`, or one without a manifest (an older lait's: which of
    its files lait wrote is not known), is a :class:`UsageError`, raised before any work.
    """
    manifest = read_manifest(output)
    ours = [name for name in list_files(output) if LAIT_NAME.fullmatch(name)]
    if manifest is None and not ours:
        return None
    if not overwrite:
        raise UsageError(f"{output} already holds a corpus: add --overwrite to replace it once this run has "
                         "succeeded, or choose another --output")
    if manifest is None:
        raise UsageError(f"{output} holds corpus files ({ours[0]}...) but no {SUCCESS} manifest (an older lait "
                         "wrote them), and lait removes only files it recorded writing: delete them yourself "
                         "or choose another --output")
    return manifest


def commit(output: str, tmp: str, manifest: dict, previous: dict | None) -> None:
    """Move the corpus in `tmp/final/` into `output`, replacing `previous`, and write `_SUCCESS` last."""
    final = join(tmp, FINAL)
    new = list_files(final)
    old = set(previous["files"]) if previous else set()
    in_the_way = [name for name in new if name not in old and storage.exists(join(output, name))]
    if in_the_way:
        raise UsageError(f"{join(output, in_the_way[0])} is in the way and lait did not write it: move it away and "
                         f"run again with --resume (this run's work is kept in {tmp})")
    journal = {"old": sorted(old), "new": new, "manifest": {**manifest, "files": new}}
    write_json(join(tmp, COMMIT_FILE), journal)
    _apply_commit(output, tmp, journal)


def _apply_commit(output: str, tmp: str, journal: dict) -> None:
    """The commit's steps; each may be repeated after a kill, so the whole can be run again."""
    final = join(tmp, FINAL)
    new = set(journal["new"])
    waiting = {name for name in new if storage.isfile(join(final, name))}
    delete_existing([join(output, SUCCESS)])
    # An old name that the new corpus reuses and has already moved in is the new file now.
    delete_existing([join(output, name) for name in journal["old"] if name not in new or name in waiting])
    for name in sorted(waiting):
        storage.move(join(final, name), join(output, name))
    write_json(join(output, SUCCESS), journal["manifest"])
    delete_folder(tmp)


def finish_interrupted_commit(output: str) -> list[str]:
    """Finish every commit in `output` that a kill cut short; returns the run folders finished."""
    finished = []
    for path in storage.glob(join(output, TMP_PREFIX + "*", COMMIT_FILE)):
        journal = read_json(path)
        if journal and isinstance(journal.get("new"), list) and isinstance(journal.get("old"), list):
            tmp = path[: -len(COMMIT_FILE)].rstrip("/\\")
            _apply_commit(output, tmp, journal)
            finished.append(tmp)
    return finished


def unfinished_runs(output: str) -> list[str]:
    """Run folders (`_tmp-ID/`) in `output` of runs that have not committed."""
    return sorted({path[: -len(RUN_FILE)].rstrip("/\\")
                   for path in storage.glob(join(output, TMP_PREFIX + "*", RUN_FILE))})


# ---- record files of a part: Beam's own coder for "any" values, each record length-prefixed

_CODER = beam.coders.FastPrimitivesCoder()
_LENGTH = struct.Struct("<Q")


def _read_exactly(f, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = f.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_records(path: str) -> Iterator:
    """The records of one record file, streamed; a cut file is an error (its part is redone)."""
    with storage.open(path, "rb") as f:
        while True:
            head = _read_exactly(f, _LENGTH.size)
            if not head:
                return
            if len(head) < _LENGTH.size:
                raise OSError(f"{path}: cut short")
            (size,) = _LENGTH.unpack(head)
            data = _read_exactly(f, size)
            if len(data) < size:
                raise OSError(f"{path}: cut short")
            yield _CODER.decode(data)


def encode_record(record) -> bytes:
    """One record in the format of :func:`read_records`: its length, then Beam's encoding of it."""
    data = _CODER.encode(record)
    return _LENGTH.pack(len(data)) + data


def encode_records(records: list) -> bytes:
    """Records in the format of :func:`read_records`."""
    return b"".join(map(encode_record, records))


class WriteRecordsFn(beam.DoFn):
    """Writes each bundle's records to a new file in `directory`; emits `(kind, file name)` once it is whole.

    Only the names this DoFn emits (those of bundles Beam committed) are listed in the part's
    `_DONE.json`: a file of a bundle that failed and was retried is never read.
    """

    def __init__(self, directory: str, kind: str):
        self.directory = directory
        self.kind = kind

    def start_bundle(self) -> None:
        self._file = None
        self._name = None

    def process(self, record) -> None:
        if self._file is None:
            self._name = f"{self.kind}-{uuid.uuid4().hex}.rec"
            self._file = storage.open(join(self.directory, self._name), "wb")
        self._file.write(encode_record(record))

    def finish_bundle(self):
        if self._file is not None:
            self._file.close()
            yield GlobalWindows.windowed_value((self.kind, self._name))
            self._file = None


class ReadRecords(beam.PTransform):
    """Record files -> their records, files spread over workers."""

    def __init__(self, paths: list[str]):
        super().__init__()
        self.paths = list(paths)

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (pbegin
                | "Files" >> beam.Create(self.paths)
                | "Spread" >> beam.Reshuffle()
                | "Read" >> beam.FlatMap(read_records))


def part_dir(tmp: str, index: int) -> str:
    return join(tmp, "parts", f"part-{index:05d}")


def write_done(part: str, inputs: list[str], written: list) -> str:
    """The part's marker, its last file: inputs, its record files by kind, and its stages' counts."""
    files: dict[str, list[str]] = {}
    counts = []
    for item in written:
        if item[0] == "count":
            (stage, key), n = item[1]
            counts.append([stage, key, n])
        else:
            files.setdefault(item[0], []).append(item[1])
    path = join(part, DONE_FILE)
    write_json(path, {"inputs": inputs, "files": {k: sorted(v) for k, v in files.items()}, "counts": sorted(counts)})
    return path


def read_done(part: str, inputs: list[str]) -> dict | None:
    """The part's marker when the part is done for exactly `inputs`; None otherwise."""
    done = read_json(join(part, DONE_FILE))
    if not done or done.get("inputs") != inputs or not isinstance(done.get("files"), dict):
        return None
    return done
