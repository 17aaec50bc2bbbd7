"""Training data: corpus texts joined with region features by ``image_sha1``, streamed in batches.

Two kinds of Parquet shards meet here:

- **corpus shards** (``lait run`` / ``lait import-pairs``, schema in :mod:`lait.pipeline.schema`): one
  row per (image, text); only the ``image_sha1`` and ``text`` columns are read;
- **regions shards** (``lait regions``, written by :func:`write_regions_shard`): one row per image,
  keyed by ``image_sha1``, with the regions as flattened Parquet list columns::

      image_sha1   string
      boxes        list<float32>   N x 5 positions (x1/W, y1/H, x2/W, y2/H, area/(W*H)), row-major
      features     list<float16>   N x D region features, row-major
      labels       list<int32>     N detector labels (the MOC target)
      label_probs  list<float16>   N x K label distributions (optional column)
      num_regions  int32           N

  plus ``_meta.json`` with ``extractor``, ``feature_dim`` (D), ``num_labels`` (K),
  ``max_regions`` and ``label_names``.

Texts are small, region features are not (100 x 2048 float16 is 400 KB per image), so the texts
of the whole corpus are held in memory as a ``sha1 -> texts`` index and the regions shards are
streamed. The unit of work is a slice of one Parquet row group. For each epoch a seeded plan
deals the units to the global workers (DDP ranks x DataLoader workers) without overlap, lists each
worker's (image, text) samples and passes them through a shuffle buffer; every worker gets the
same number of batches, so DDP ranks never wait on each other. The plan is a pure function of
(seed, epoch, worker), which makes resuming exact and cheap: a worker jumps to batch ``b`` of its
stream without reading the data it skips (see :class:`PairStream`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from lait import storage

META_FILE = "_meta.json"
IGNORE_INDEX = -100  # the target value cross-entropy skips (torch's default ignore_index)


# -- the regions shard format ---------------------------------------------------------------------------


def regions_schema(with_label_probs: bool) -> pa.Schema:
    """The pyarrow schema of a regions shard (``label_probs`` only when the extractor gives them)."""
    fields = [
        pa.field("image_sha1", pa.string()),
        pa.field("boxes", pa.list_(pa.float32())),
        pa.field("features", pa.list_(pa.float16())),
        pa.field("labels", pa.list_(pa.int32())),
    ]
    if with_label_probs:
        fields.append(pa.field("label_probs", pa.list_(pa.float16())))
    fields.append(pa.field("num_regions", pa.int32()))
    return pa.schema(fields)


def regions_table(records: Iterable[dict], with_label_probs: bool | None = None) -> pa.Table:
    """A regions table from records ``{image_sha1, boxes [N,5], features [N,D], labels [N], label_probs? [N,K]}``.

    The arrays are flattened row-major into the list columns; ``num_regions`` is ``len(labels)``.
    """
    records = list(records)
    if with_label_probs is None:
        with_label_probs = bool(records) and records[0].get("label_probs") is not None
    columns: dict[str, list] = {name: [] for name in regions_schema(with_label_probs).names}
    for record in records:
        labels = np.asarray(record["labels"], dtype=np.int32).reshape(-1)
        n = len(labels)
        if np.size(record["boxes"]) != 5 * n:
            raise ValueError(f"{record['image_sha1']}: {n} labels but {np.size(record['boxes'])} box values")
        columns["image_sha1"].append(record["image_sha1"])
        columns["boxes"].append(np.asarray(record["boxes"], dtype=np.float32).reshape(-1))
        columns["features"].append(np.asarray(record["features"], dtype=np.float16).reshape(-1))
        columns["labels"].append(labels)
        if with_label_probs:
            columns["label_probs"].append(np.asarray(record["label_probs"], dtype=np.float16).reshape(-1))
        columns["num_regions"].append(n)
    schema = regions_schema(with_label_probs)
    arrays = [pa.array(columns[field.name], type=field.type) for field in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def write_regions_shard(path: str | Path, records: Iterable[dict], row_group_size: int = 64) -> int:
    """Write one regions shard; returns the number of rows.

    Row groups are kept small (64 images, about 25 MB at 100 x 2048 float16) because they are the
    unit the trainer reads and shuffles.
    """
    table = regions_table(records)
    pq.write_table(table, str(path), row_group_size=row_group_size)
    return table.num_rows


def write_regions_meta(directory: str | Path, extractor: str, feature_dim: int, num_labels: int,
                       max_regions: int, label_names: list[str] | None = None) -> None:
    """Write ``_meta.json`` beside the regions shards."""
    meta = {"extractor": extractor, "feature_dim": int(feature_dim), "num_labels": int(num_labels),
            "max_regions": int(max_regions), "label_names": list(label_names or [])}
    storage.write_bytes(storage.join(str(directory), META_FILE), json.dumps(meta, indent=1).encode("utf-8"))


def read_regions_meta(directory: str | Path) -> dict:
    """The regions ``_meta.json`` (local or a URL); ValueError with the path when it is missing."""
    path = storage.join(str(directory), META_FILE)
    if not storage.isfile(path):
        raise ValueError(f"{directory} has no {META_FILE}: is it a regions directory written by `lait regions`?")
    return json.loads(storage.read_bytes(path))


def parquet_files(directory: str | Path) -> list[Path] | list[str]:
    """The ``*.parquet`` files under a directory (recursively, sorted), or the file itself.

    Local paths come as :class:`~pathlib.Path`, URLs (``s3://...``, :mod:`lait.storage`) as strings.
    """
    if storage.is_url(directory):
        if storage.isfile(str(directory)):
            return [str(directory)]
        prefix = storage.join(str(directory), "x")[:-1]
        files = [p for p in storage.find(str(directory))
                 if p.endswith(".parquet") and not _hidden(p[len(prefix):].split("/"))]
    else:
        path = Path(directory)
        if path.is_file():
            return [path]
        files = sorted(p for p in path.rglob("*.parquet") if not _hidden(p.relative_to(path).parts))
    if not files:
        raise ValueError(f"no .parquet files under {directory}")
    return files


def _hidden(parts) -> bool:
    """Hidden and underscore entries at any depth: `_rejects/` holds rejected records, `_tmp-ID/` a run
    in progress; neither is data."""
    return any(part.startswith((".", "_")) for part in parts)


# -- the texts ------------------------------------------------------------------------------------------


def read_texts(corpus: str | Path) -> dict[str, list[str]]:
    """``image_sha1 -> [texts]`` from corpus shards (two columns read; null or blank texts skipped)."""
    texts: dict[str, list[str]] = {}
    for path in parquet_files(corpus):
        table = storage.parquet_file(str(path)).read(columns=["image_sha1", "text"])
        for sha1, text in zip(table.column("image_sha1").to_pylist(), table.column("text").to_pylist()):
            if sha1 and text and text.strip():
                bucket = texts.setdefault(sha1, [])
                if text not in bucket:
                    bucket.append(text)
    return texts


# -- reading regions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """A slice ``[start, stop)`` of one row group of one regions file: what a worker reads at once."""

    file: int
    row_group: int
    start: int
    stop: int


class RegionsBlock:
    """The decoded regions of one unit: flat numpy arrays plus offsets, sliced per row on demand."""

    def __init__(self, table: pa.Table, widths: dict[str, int], max_regions: int):
        self.widths = widths
        self.max_regions = max_regions
        self.sha1 = table.column("image_sha1").to_pylist()
        self._lists = {}
        for name in ("boxes", "features", "labels", "label_probs"):
            if name in table.column_names:
                column = table.column(name).combine_chunks()
                offsets = column.offsets.to_numpy()
                self._lists[name] = (offsets - offsets[0], column.flatten().to_numpy(zero_copy_only=False))

    def row(self, i: int) -> dict:
        """Row ``i`` as arrays, truncated to ``max_regions`` (regions come sorted by confidence)."""
        offsets, labels = self._lists["labels"]
        n = min(int(offsets[i + 1] - offsets[i]), self.max_regions)
        out = {"image_sha1": self.sha1[i], "labels": labels[offsets[i]:offsets[i] + n]}
        for name, width in self.widths.items():
            if name in self._lists:
                offsets, values = self._lists[name]
                out[name] = values[offsets[i]:offsets[i] + n * width].reshape(n, width)
        return out


# -- the stream -----------------------------------------------------------------------------------------


class PairStream(torch.utils.data.IterableDataset):
    """An endless stream of collated batches of (text, regions) pairs for one DDP rank.

    Parameters
    ----------
    corpus, regions : path
        Corpus shard directory (or file) and regions directory (with ``_meta.json``).
    tokenizer : WordPieceTokenizer
        Encodes a text to ids with ``[CLS]`` and ``[SEP]`` (in the workers).
    batch_size : int
        Pairs per yielded batch (a micro-batch of one rank).
    max_text_len, max_regions : int
        Texts are truncated to ``max_text_len`` tokens, images to their first ``max_regions`` regions.
    seed : int, default=0
        Seeds the plan; epoch ``e`` uses ``(seed, e)``.
    shuffle_buffer : int, default=2048
        Size of each worker's shuffle buffer, in pairs.
    rank, world_size : int
        This process's DDP rank and the number of ranks.
    num_workers : int
        The DataLoader workers of this rank (0 = read in the main process).
    start_batch : int, default=0
        Batches this rank already consumed (from a checkpoint): the stream continues after them.
    unit_rows : int, default=64
        At most this many images per unit.
    prepare : callable, optional
        ``prepare(batch, generator) -> batch`` run in the worker on each collated batch (the
        pre-training tasks' masking); the generator is seeded by the batch's place in the stream.
    texts : dict, optional
        The ``image_sha1 -> [texts]`` index to use instead of reading ``corpus`` (the trainer passes
        the training or the held-out part of it).

    Notes
    -----
    Use with ``DataLoader(stream, batch_size=None, num_workers=num_workers)``; the loader takes
    batches from its workers round-robin, which the stream relies on to resume in order.
    """

    def __init__(self, corpus, regions, tokenizer, batch_size: int, max_text_len: int, max_regions: int,
                 seed: int = 0, shuffle_buffer: int = 2048, rank: int = 0, world_size: int = 1,
                 num_workers: int = 0, start_batch: int = 0, unit_rows: int = 64, prepare=None,
                 texts: dict[str, list[str]] | None = None):
        super().__init__()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_text_len = max_text_len
        self.max_regions = max_regions
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer
        self.rank, self.world_size = rank, world_size
        self.num_workers = max(num_workers, 1)
        self.start_batch = start_batch
        self.prepare = prepare
        self.meta = read_regions_meta(regions)
        self.feature_dim = int(self.meta["feature_dim"])
        self.num_labels = int(self.meta["num_labels"])
        self.texts = read_texts(corpus) if texts is None else texts
        self.files = [str(p) for p in parquet_files(regions)]
        n_workers = self.world_size * self.num_workers
        self.units, self.unit_texts = self._index_units(unit_rows)
        while len(self.units) < n_workers and unit_rows > 1:  # small data: finer units, so every worker has some
            unit_rows //= 2
            self.units, self.unit_texts = self._index_units(unit_rows)
        if len(self.units) < n_workers:
            raise ValueError(f"the regions hold {len(self.units)} read units, fewer than the {n_workers} "
                             "workers (ranks x DataLoader workers): use fewer workers")
        self.batches_per_epoch = min(self._worker_sample_count(0, g) for g in range(n_workers)) // batch_size
        if self.batches_per_epoch == 0:
            raise ValueError(f"too few pairs with both text and regions for batches of {batch_size} per worker")

    # ---- index (main process, metadata and two small columns only)

    def _index_units(self, unit_rows: int) -> tuple[list[Unit], list[np.ndarray]]:
        """All units, and for each unit the number of texts of each of its rows."""
        units, unit_texts = [], []
        for f, path in enumerate(self.files):
            parquet = storage.parquet_file(path)
            for rg in range(parquet.num_row_groups):
                keys = parquet.read_row_group(rg, columns=["image_sha1"]).column(0).to_pylist()
                counts = np.array([len(self.texts.get(k, ())) for k in keys], dtype=np.int64)
                for start in range(0, len(keys), unit_rows):
                    stop = min(start + unit_rows, len(keys))
                    if counts[start:stop].sum():
                        units.append(Unit(f, rg, start, stop))
                        unit_texts.append(counts[start:stop])
        return units, unit_texts

    @property
    def num_pairs(self) -> int:
        """Pairs (image with regions, text) available per epoch before equalising the workers."""
        return int(sum(c.sum() for c in self.unit_texts))

    def _worker_units(self, epoch: int, worker: int) -> np.ndarray:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.units))
        return order[worker::self.world_size * self.num_workers]

    def _worker_sample_count(self, epoch: int, worker: int) -> int:
        return int(sum(self.unit_texts[u].sum() for u in self._worker_units(epoch, worker)))

    def plan(self, epoch: int, worker: int) -> np.ndarray:
        """The ``[n, 3]`` (unit, row, text) samples global worker ``worker`` yields in ``epoch``, in order."""
        incoming = [(u, r, t) for u in self._worker_units(epoch, worker)
                    for r, count in enumerate(self.unit_texts[u]) for t in range(count)]
        rng = np.random.default_rng([self.seed, epoch, worker])
        buffer, out = [], []
        for sample in incoming:  # the classic shuffle buffer: emit a random element, put the new one there
            if len(buffer) < self.shuffle_buffer:
                buffer.append(sample)
                continue
            j = int(rng.integers(len(buffer)))
            out.append(buffer[j])
            buffer[j] = sample
        rng.shuffle(buffer)
        out.extend(buffer)
        keep = self.batches_per_epoch * self.batch_size
        # The epoch's length is fixed (from epoch 0) so that a batch count says where a run is, but
        # another epoch's draw of units can give this worker a few samples fewer: it starts over.
        while out and len(out) < keep:
            out.extend(out[:keep - len(out)])
        return np.array(out[:keep], dtype=np.int64).reshape(-1, 3)

    # ---- reading (workers)

    def _read_unit(self, u: int, parquet_cache: dict) -> RegionsBlock:
        unit = self.units[u]
        if unit.file not in parquet_cache:
            parquet_cache.clear()  # one open file at a time per worker
            parquet_cache[unit.file] = storage.parquet_file(self.files[unit.file])
        table = parquet_cache[unit.file].read_row_group(unit.row_group)
        widths = {"boxes": 5, "features": self.feature_dim, "label_probs": self.num_labels}
        return RegionsBlock(table.slice(unit.start, unit.stop - unit.start), widths, self.max_regions)

    def _samples(self, epoch: int, worker: int, start: int) -> Iterator[dict]:
        """Samples of ``plan(epoch, worker)[start:]``; each unit is read once and dropped after its last use."""
        plan = self.plan(epoch, worker)
        last_use = {int(u): i for i, u in enumerate(plan[:, 0])}
        blocks: dict[int, RegionsBlock] = {}
        parquet_cache: dict = {}
        for i in range(start, len(plan)):
            u, r, t = (int(x) for x in plan[i])
            if u not in blocks:
                blocks[u] = self._read_unit(u, parquet_cache)
            sample = blocks[u].row(r)
            sample["text"] = self.texts[sample["image_sha1"]][t]
            if last_use[u] == i:
                del blocks[u]
            yield sample

    def _worker_role(self) -> tuple[int, int]:
        """(global worker id, batches it already yielded), resuming the loader's round-robin in order."""
        info = torch.utils.data.get_worker_info()
        local = info.id if info is not None else 0
        w = self.num_workers
        role = (local + self.start_batch) % w  # the loader starts at worker 0: rotate so order is kept
        done = self.start_batch // w + (1 if role < self.start_batch % w else 0)
        return self.rank * w + role, done

    def __iter__(self) -> Iterator[dict]:
        worker, done = self._worker_role()
        epoch, batch_in_epoch = divmod(done, self.batches_per_epoch)
        generator = torch.Generator()
        while True:
            samples = self._samples(epoch, worker, batch_in_epoch * self.batch_size)
            for b in range(batch_in_epoch, self.batches_per_epoch):
                batch = self.collate([next(samples) for _ in range(self.batch_size)])
                if self.prepare is not None:
                    generator.manual_seed(hash((self.seed, epoch, worker, b)) & (2**63 - 1))
                    batch = self.prepare(batch, generator)
                yield batch
            epoch, batch_in_epoch = epoch + 1, 0

    # ---- batching

    def collate(self, samples: list[dict]) -> dict:
        """Tokenise and pad one batch (text to its longest, regions to the most regions)."""
        return collate_pairs(samples, self.tokenizer, self.max_text_len, self.feature_dim)


def image_key(sha1: str) -> int:
    """A 60-bit integer id of an image (to tell whether two pairs share an image)."""
    return int(sha1[:15], 16)


def collate_pairs(samples: list[dict], tokenizer, max_text_len: int, feature_dim: int) -> dict:
    """A padded batch from samples ``{image_sha1, text, boxes, features, labels, label_probs?}``.

    Returns tensors ``input_ids [B,T]``, ``text_mask [B,T]`` (bool), ``features [B,R,D]``,
    ``boxes [B,R,5]``, ``region_mask [B,R]``, ``labels [B,R]`` (``IGNORE_INDEX`` on padding),
    ``label_probs [B,R,K]`` when present, and ``image_key [B]``.
    """
    ids = [tokenizer.encode(s["text"], max_length=max_text_len, add_special_tokens=True) for s in samples]
    b, t = len(samples), max(len(x) for x in ids)
    r = max(max(len(s["labels"]) for s in samples), 1)
    input_ids = torch.full((b, t), tokenizer.pad_id, dtype=torch.long)
    text_mask = torch.zeros(b, t, dtype=torch.bool)
    features = torch.zeros(b, r, feature_dim)
    boxes = torch.zeros(b, r, 5)
    region_mask = torch.zeros(b, r, dtype=torch.bool)
    labels = torch.full((b, r), IGNORE_INDEX, dtype=torch.long)
    with_probs = all(s.get("label_probs") is not None for s in samples)
    label_probs = torch.zeros(b, r, samples[0]["label_probs"].shape[-1]) if with_probs else None
    for i, (s, x) in enumerate(zip(samples, ids)):
        input_ids[i, :len(x)] = torch.tensor(x)
        text_mask[i, :len(x)] = True
        n = len(s["labels"])
        features[i, :n] = torch.from_numpy(s["features"].astype(np.float32))
        boxes[i, :n] = torch.from_numpy(s["boxes"].astype(np.float32))
        region_mask[i, :n] = True
        labels[i, :n] = torch.from_numpy(s["labels"].astype(np.int64))
        if with_probs:
            label_probs[i, :n] = torch.from_numpy(s["label_probs"].astype(np.float32))
    batch = {"input_ids": input_ids, "text_mask": text_mask, "features": features, "boxes": boxes,
             "region_mask": region_mask, "labels": labels,
             "image_key": torch.tensor([image_key(s["image_sha1"]) for s in samples])}
    if with_probs:
        batch["label_probs"] = label_probs
    return batch


def tokens_in(batch: dict) -> int:
    """Text tokens plus regions in a batch (padding excluded): what tokens/s counts."""
    return int(batch["text_mask"].sum() + batch["region_mask"].sum())
