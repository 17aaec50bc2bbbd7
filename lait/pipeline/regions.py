"""The regions job: corpus shards in, one row of object regions per image out (``lait regions``).

    keys of every row -> ReadImages -> OnePerImage -> bytes of the kept rows
      -> BatchElements -> ExtractRegions -> WriteRegions

Rows that share an image (one image, several texts) become one image: only the small keys are
shuffled for that, then the kept rows' bytes are read (a precomputed-features reader never reads
them) and nothing large is shuffled again, so memory stays flat however big the corpus. The
extractor is built once per worker process in ``DoFn.setup`` and shared between the DoFn's
instances (``apache_beam.utils.shared``, as ``RunInference`` does), and sees batches from
``BatchElements``. An image that cannot be decoded or has no regions is a counted drop with a
reason, never a crash. The output is ``regions-HASH.parquet`` shards (rows sorted by SHA-1, the name
from the shard's image keys) in the format of :mod:`lait.imagebert.data`, plus ``_meta.json``,
``_funnel.json`` and ``_rejects/``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import apache_beam as beam
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils import shared

from lait import storage
from lait.encoders.region_files import NpzRegionReader
from lait.encoders.regions import EfficientNetRegionExtractor, Failure, RegionExtractor
from lait.errors import UsageError
from lait.imagebert.data import META_FILE, regions_table, write_regions_meta
from lait.pipeline.funnel import (
    FunnelCollector,
    Reject,
    StageDoFn,
    StageOutput,
    WriteFunnel,
    WriteRejects,
    apply_stage,
    funnel_from_counts,
)
from lait.pipeline.run import run_to_completion
from lait.pipeline.schema import image_bytes, image_bytes_column, image_column_problem

STAGES = ["ReadImages", "OnePerImage", "ExtractRegions", "WriteRegions"]
ROW_GROUP_SIZE = 64  # images; the unit the trainer reads and shuffles (as lait.imagebert.data writes)
OWN_PATTERNS = ("regions-*.parquet", META_FILE, "_funnel.json", "_rejects/*")


@dataclass(frozen=True)
class ExtractorSpec:
    """What extractor to build on each worker: picklable, and the key of the shared instance.

    ``kind`` is ``efficientnet`` (the offline default) or ``npz`` (precomputed bottom-up-attention
    files in ``npz_dir``); ``options`` are keyword arguments of the extractor's class.
    """

    kind: str = "efficientnet"
    npz_dir: str | None = None
    label_names: tuple[str, ...] | None = None
    options: dict = field(default_factory=dict)

    def build(self) -> RegionExtractor:
        if self.kind == "efficientnet":
            return EfficientNetRegionExtractor(**self.options)
        if self.kind == "npz":
            names = list(self.label_names) if self.label_names else None
            return NpzRegionReader(self.npz_dir, label_names=names, **self.options)
        raise ValueError(f"unknown extractor {self.kind!r}: efficientnet or npz")

    @property
    def tag(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)


class _SharedExtractor:
    """Holds an extractor for `shared.Shared` (which keeps weak references)."""

    def __init__(self, extractor: RegionExtractor):
        self.extractor = extractor


# -- stages ---------------------------------------------------------------------------------------------


def corpus_row_groups(data: str) -> list[tuple[str, int]]:
    """``(shard path, row group)`` of every row group of the corpus shards (footers only)."""
    from lait.pipeline.inspect import CorpusError, shard_paths

    try:
        paths = shard_paths(data)
    except CorpusError as error:
        raise UsageError(str(error)) from None
    units = []
    for path in paths:
        parquet = storage.parquet_file(path)
        problem = image_column_problem(path, parquet.schema_arrow)
        if problem:
            raise UsageError(problem)
        units += [(path, g) for g in range(parquet.num_row_groups)]
    return units


def read_keys(unit: tuple[str, int]):
    """Small rows ``{image_sha1, image_url, has_bytes, unit, row}`` of one row group (bytes only tested)."""
    path, group = unit
    table = storage.parquet_file(path).read_row_group(group, columns=["image_sha1", "image_url", "image"])
    has_bytes = pc.fill_null(pc.greater(pc.binary_length(image_bytes_column(table)), 0), False).to_pylist()
    for i, (sha1, url) in enumerate(zip(table.column("image_sha1").to_pylist(), table.column("image_url").to_pylist())):
        yield {"image_sha1": sha1, "image_url": url, "has_bytes": has_bytes[i], "unit": unit, "row": i}


def read_chosen_rows(grouped: tuple, columns: list[str]):
    """The chosen rows of one row group, with ``columns`` read; the ``image`` column becomes ``image_bytes``."""
    unit, chosen = grouped
    path, group = unit
    table = storage.parquet_file(path).read_row_group(group, columns=columns)
    for row in table.take(sorted(r["row"] for r in chosen)).to_pylist():
        if "image" in row:
            row["image_bytes"] = image_bytes(row)
            del row["image"]
        yield row


class ReadImagesFn(StageDoFn):
    """Corpus rows with an image key (and bytes, when the extractor needs them)."""

    stage = "ReadImages"

    def __init__(self, needs_image_bytes: bool):
        super().__init__()
        self.needs_image_bytes = needs_image_bytes

    def run(self, row: dict):
        if not row.get("image_sha1"):
            yield Reject("no_image_sha1", row)
        elif self.needs_image_bytes and not row["has_bytes"]:
            yield Reject("no_image_bytes", row)
        else:
            yield row["image_sha1"], row


def _row_order(row: dict) -> tuple:
    return row.get("image_url") or "", tuple(row["unit"]), row["row"]


class FirstRowFn(beam.CombineFn):
    """Per image: one row (the smallest ``image_url``, then the first in the corpus, so runs agree)
    and how many rows had it."""

    def create_accumulator(self):
        return None, 0

    def add_input(self, accumulator, row):
        kept, n = accumulator
        if kept is None or _row_order(row) < _row_order(kept):
            kept = row
        return kept, n + 1

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for kept, n in accumulators:
            if kept is not None:
                merged = self.add_input(merged, kept)
                merged = merged[0], merged[1] - 1 + n
        return merged

    def extract_output(self, accumulator):
        return accumulator


class OnePerImageFn(StageDoFn):
    """Counts every corpus row in, one row per image out; the others are ``same_image`` drops.

    Those drops are counted, not sampled into ``_rejects/``: the row's image gets its regions.
    """

    stage = "OnePerImage"

    def __init__(self):
        super().__init__(count_in=False)

    def run(self, keyed: tuple):
        _, (row, n) = keyed
        self.count("in", n)
        if n > 1:
            self.count("dropped.same_image", n - 1)
        yield row


class ExtractRegionsFn(StageDoFn):
    """Batches of image rows -> region records ``{image_sha1, boxes, features, labels, label_probs}``."""

    stage = "ExtractRegions"

    def __init__(self, spec: ExtractorSpec):
        super().__init__(count_in=False)
        self.spec = spec
        self._shared_handle = shared.Shared()
        self.extractor: RegionExtractor | None = None

    def setup(self) -> None:
        holder = self._shared_handle.acquire(lambda: _SharedExtractor(self.spec.build()), tag=self.spec.tag)
        self._holder = holder  # keeps the shared instance alive while this DoFn lives
        self.extractor = holder.extractor

    def run(self, batch: list[dict]):
        self.count("in", len(batch))
        try:
            results = self.extractor.extract_records(batch)
        except Exception as error:  # noqa: BLE001 - one bad image must not fail its batch: retry alone
            if len(batch) == 1:
                results = [Failure("extract_error", f"{type(error).__name__}: {error}")]
            else:
                results = [result for row in batch for result in self._extract_one(row)]
        for row, result in zip(batch, results):
            if isinstance(result, Failure):
                yield Reject(result.reason, row, f"{row['image_sha1']}: {result.detail}")
            elif len(result) == 0:
                yield Reject("no_regions", row, row["image_sha1"])
            else:
                yield result.to_record(row["image_sha1"])

    def _extract_one(self, row: dict) -> list:
        try:
            return self.extractor.extract_records([row])
        except Exception as error:  # noqa: BLE001
            return [Failure("extract_error", f"{type(error).__name__}: {error}")]


def write_shard(path: str, records: list[dict], with_label_probs: bool) -> None:
    """One regions shard, local or at a URL (:mod:`lait.storage`)."""
    table = regions_table(records, with_label_probs=with_label_probs)
    with storage.open(path, "wb") as f:
        # zstd: a quarter smaller than pyarrow's default snappy on float16 features. No dictionary
        # encoding: float16 values gain nothing from it, and it made writing 1.6 times and reading
        # 4 times slower (bench_regions).
        pq.write_table(table, f, row_group_size=ROW_GROUP_SIZE, compression="zstd", use_dictionary=False)


def shard_name(records: list[dict]) -> str:
    """``regions-HASH.parquet``, HASH from the shard's image keys: the same images give the same name."""
    keys = hashlib.sha1("".join(r["image_sha1"] for r in records).encode()).hexdigest()
    return f"regions-{keys[:20]}.parquet"


class WriteShardsFn(beam.DoFn):
    """Writes region records as they come, ``images_per_shard`` per file, sorted by ``image_sha1``.

    Records are never shuffled: region features are large (100 x 1280 float16 per image), and a
    runner that keeps a shuffle in memory (the in-process DirectRunner) would hold them all. A
    worker holds at most one shard's records. Outputs ``(path, rows)``.
    """

    def __init__(self, output_dir: str, images_per_shard: int, with_label_probs: bool):
        self.output_dir = output_dir
        self.images_per_shard = images_per_shard
        self.with_label_probs = with_label_probs

    def start_bundle(self) -> None:
        self._buffer: list[dict] = []

    def process(self, record: dict):
        self._buffer.append(record)
        if len(self._buffer) >= self.images_per_shard:
            yield self._flush()

    def finish_bundle(self):
        if self._buffer:
            yield GlobalWindows.windowed_value(self._flush())

    def _flush(self) -> tuple[str, int]:
        records = sorted(self._buffer, key=lambda r: r["image_sha1"])
        self._buffer = []
        path = storage.join(self.output_dir, shard_name(records))
        write_shard(path, records, self.with_label_probs)
        return path, len(records)


class WriteRegions(beam.PTransform):
    """Region records -> ``regions-HASH.parquet`` shards of at most ``images_per_shard`` images.

    Funnel: "in" counts the records, "out" the rows the shards hold. No images at all still
    gives one readable (empty) shard.
    """

    stage = "WriteRegions"

    def __init__(self, output_dir: str, images_per_shard: int, with_label_probs: bool):
        super().__init__()
        self.output_dir = output_dir
        self.images_per_shard = images_per_shard
        self.with_label_probs = with_label_probs

    def _write_empty(self, total: int) -> list[tuple[str, int]]:
        if total:
            return []
        path = storage.join(self.output_dir, shard_name([]))
        write_shard(path, [], self.with_label_probs)
        return [(path, 0)]

    def expand(self, records: beam.PCollection) -> StageOutput:
        stage = self.stage
        total = records | "CountIn" >> beam.combiners.Count.Globally()
        written = records | "Write" >> beam.ParDo(
            WriteShardsFn(self.output_dir, self.images_per_shard, self.with_label_probs))
        empty = total | "WriteEmpty" >> beam.FlatMap(self._write_empty)
        shards = (written, empty) | "Shards" >> beam.Flatten()
        counts = (
            total | "InKey" >> beam.Map(lambda n: ((stage, "in"), n)),
            shards | "OutKey" >> beam.Map(lambda shard: ((stage, "out"), shard[1])),
        ) | "Counts" >> beam.Flatten()
        drops = records.pipeline | "NoDrops" >> beam.Create([])
        return StageOutput(shards, drops, counts)


class WriteRegionsFunnel(WriteFunnel):
    """``_funnel.json`` listing only the regions job's stages."""

    def _write(self, counts: list) -> str:
        funnel = funnel_from_counts(counts)
        funnel["stages"] = [s for name in STAGES for s in funnel["stages"] if s["name"] == name]
        path = storage.join(self.output_dir, "_funnel.json")
        storage.write_bytes(path, (json.dumps(funnel, indent=2) + "\n").encode("utf-8"))
        return path


# -- the job --------------------------------------------------------------------------------------------


@dataclass
class RegionsJob:
    """One ``lait regions`` run.

    Parameters
    ----------
    data : str
        Corpus directory (``shard-*.parquet``).
    output : str
        Regions directory.
    spec : ExtractorSpec
    max_regions : int
    images_per_shard : int, default=500
        Upper bound on the images of one shard: about 135 MB with the EfficientNet extractor's label
        distributions (268 KB per image, bench_regions), 56 MB without.
    batch_size : int, default=16
        Images per extractor call (``BatchElements`` upper bound).
    rejects_per_reason : int, default=20
    """

    data: str
    output: str
    spec: ExtractorSpec
    max_regions: int = 100
    images_per_shard: int = 500
    batch_size: int = 16
    rejects_per_reason: int = 20

    def build(self, pipeline: beam.Pipeline, extractor_meta: dict) -> None:
        columns = ["image_sha1", "image_url"] + (["image"] if extractor_meta["needs_image_bytes"] else [])
        funnel = FunnelCollector()
        # Two reads, so image bytes are never shuffled: the small keys of every row first, to keep
        # one row per image, then the bytes of the kept rows, one row group at a time.
        keys = (
            pipeline
            | "ListRowGroups" >> beam.Create(corpus_row_groups(self.data))
            | "SpreadRowGroups" >> beam.Reshuffle()
            | "ReadKeys" >> beam.FlatMap(read_keys)
        )
        keyed = funnel.add(apply_stage(keys, "ReadImages", ReadImagesFn(extractor_meta["needs_image_bytes"])))
        unique = keyed | "FirstRowPerImage" >> beam.CombinePerKey(FirstRowFn())
        chosen = funnel.add(apply_stage(unique, "OnePerImage", OnePerImageFn()))
        images = (
            chosen
            | "KeyByRowGroup" >> beam.Map(lambda row: (tuple(row["unit"]), row))
            | "GroupByRowGroup" >> beam.GroupByKey()
            | "ReadChosenRows" >> beam.FlatMap(read_chosen_rows, columns)
        )
        # Full batches from the start: BatchElements' adaptive sizing would begin at one image per model call.
        batches = images | "Batch" >> beam.BatchElements(min_batch_size=self.batch_size, max_batch_size=self.batch_size)
        records = funnel.add(apply_stage(batches, "ExtractRegions", ExtractRegionsFn(self.spec)))
        shards = funnel.add(records | "WriteRegions" >> WriteRegions(self.output, self.images_per_shard,
                                                                        extractor_meta["with_label_probs"]))
        funnel_file = funnel.counts | "FlattenCounts" >> beam.Flatten() | "WriteFunnel" >> WriteRegionsFunnel(self.output)
        reject_files = funnel.drops | "WriteRejects" >> WriteRejects(self.output, self.rejects_per_reason)
        # One last step downstream of every sink: runners that compute only the final step's
        # ancestors (Beam's Dask runner does) still write everything.
        (shards, funnel_file, reject_files) | "AllWrites" >> beam.Flatten() | "Done" >> beam.combiners.Count.Globally()


def extractor_meta(spec: ExtractorSpec, max_regions: int) -> dict:
    """What ``_meta.json`` says and what the pipeline needs to know, without loading a network."""
    if spec.kind == "efficientnet":
        from lait.encoders.efficientnet import EMBEDDING_DIM, IMAGENET_CLASSES

        return {"extractor": EfficientNetRegionExtractor.name, "feature_dim": EMBEDDING_DIM,
                "num_labels": len(IMAGENET_CLASSES), "label_names": list(IMAGENET_CLASSES),
                "with_label_probs": spec.options.get("with_label_probs", True), "needs_image_bytes": True,
                "max_regions": max_regions}
    reader = spec.build()  # reads one file to learn the width and label count
    return {"extractor": reader.name, "feature_dim": reader.feature_dim, "num_labels": reader.num_labels,
            "label_names": reader.label_names, "with_label_probs": reader.with_label_probs,
            "needs_image_bytes": False, "max_regions": max_regions}


def clear_previous_output(output_dir: str) -> None:
    """Delete what an earlier ``lait regions`` wrote to ``output_dir`` (only its own files)."""
    storage.delete([path for pattern in OWN_PATTERNS for path in storage.glob(storage.join(output_dir, pattern))])


def save_meta(output_dir: str, meta: dict) -> None:
    """``_meta.json``, written by :func:`lait.imagebert.data.write_regions_meta`."""
    write_regions_meta(output_dir, meta["extractor"], meta["feature_dim"], meta["num_labels"], meta["max_regions"],
                       meta["label_names"])


def run(job: RegionsJob, pipeline_options: PipelineOptions) -> dict:
    """Run the job to completion; returns the funnel read back from ``_funnel.json``."""
    meta = extractor_meta(job.spec, job.max_regions)
    storage.makedirs(job.output)
    clear_previous_output(job.output)
    run_to_completion(pipeline_options, lambda pipeline: job.build(pipeline, meta))
    save_meta(job.output, meta)
    return json.loads(storage.read_bytes(storage.join(job.output, "_funnel.json")))
