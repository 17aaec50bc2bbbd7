"""WriteShards: deterministic Parquet shards `DIR/shard-00000-of-000NN.parquet`.

Beam's own `WriteToParquet` assigns rows to shards at random and cannot size the shard
count from the data, so the same input would give different shards on each run. Here the
shard count is ceil(total image bytes / --max_shard_bytes), a row's shard is its
`image_sha1` modulo that count, and each shard is written sorted by `image_sha1` with
pyarrow through Beam's FileSystems (local, gs://, s3://...). Same input, same files.
"""

from __future__ import annotations

import math

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from lait.pipeline.funnel import Reject, StageDoFn, StageOutput, apply_stage
from lait.pipeline.schema import CORPUS_SCHEMA, image_bytes, to_row
from lait.records import PairRecord

ROW_GROUP_SIZE = 256  # rows; with ~100 KB images a reader holds ~25 MB per group


def shard_path(output_dir: str, index: int, count: int) -> str:
    return FileSystems.join(output_dir, f"shard-{index:05d}-of-{count:05d}.parquet")


def row_bytes(row: dict) -> int:
    return len(image_bytes(row) or b"") + len((row.get("text") or "").encode()) + 512


def write_table(path: str, rows: list[dict]) -> None:
    """One shard of schema rows (:func:`lait.pipeline.schema.to_row`), with the schema's `huggingface` metadata."""
    table = pa.Table.from_pylist(rows, schema=CORPUS_SCHEMA)
    with FileSystems.create(path) as f:
        pq.write_table(table, f, row_group_size=ROW_GROUP_SIZE, compression="zstd")


class ToRowFn(StageDoFn):
    """Schema columns only; a record whose values do not fit the schema is dropped.

    Its kept rows are the stage's "out": the shard writer below writes every row it is given
    or fails the job.
    """

    stage = "WriteShards"

    def run(self, record: PairRecord):
        row = to_row(record)
        try:
            pa.Table.from_pylist([row], schema=CORPUS_SCHEMA)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as error:
            yield Reject("schema_error", record, str(error))
            return
        yield row


class WriteShardFn(StageDoFn):
    stage = "WriteShards"

    def __init__(self, output_dir: str):
        super().__init__(count_in=False, count_out=False)
        self.output_dir = output_dir

    def run(self, keyed: tuple, num_shards: int):
        index, rows = keyed
        rows = sorted(rows, key=lambda r: (r["image_sha1"] or "", r["page_url"] or ""))
        path = shard_path(self.output_dir, index, num_shards)
        write_table(path, rows)
        yield path


def _num_shards(total_bytes: int, max_shard_bytes: int) -> int:
    return max(1, math.ceil(total_bytes / max_shard_bytes))


def _shard_of(row: dict, num_shards: int) -> int:
    return int(row["image_sha1"] or "0", 16) % num_shards


class WriteShards(beam.PTransform):
    """Records -> Parquet shards in `output_dir`; the output PCollection holds the paths written."""

    def __init__(self, output_dir: str, max_shard_bytes: int):
        super().__init__()
        self.output_dir = output_dir
        self.max_shard_bytes = max_shard_bytes

    def _write_empty(self, total_rows: int) -> list[str]:
        # Zero rows still give one readable (empty) shard, so readers need no special case.
        if total_rows:
            return []
        path = shard_path(self.output_dir, 0, 1)
        write_table(path, [])
        return [path]

    def expand(self, records: beam.PCollection) -> StageOutput:
        rows = apply_stage(records, "ToRow", ToRowFn())
        total = rows.main | "RowBytes" >> beam.Map(row_bytes) | "TotalBytes" >> beam.CombineGlobally(sum)
        num_shards = total | "NumShards" >> beam.Map(_num_shards, self.max_shard_bytes)
        shard_count = beam.pvalue.AsSingleton(num_shards)
        grouped = (
            rows.main
            | "KeyByShard" >> beam.Map(lambda row, n: (_shard_of(row, n), row), shard_count)
            | "GroupByShard" >> beam.GroupByKey()
        )
        written = apply_stage(grouped, "Write", WriteShardFn(self.output_dir), shard_count)
        empty = (
            rows.main
            | "CountRows" >> beam.combiners.Count.Globally()
            | "WriteEmpty" >> beam.FlatMap(self._write_empty)
        )
        paths = (written.main, empty) | "Paths" >> beam.Flatten()
        drops = (rows.drops, written.drops) | "FlattenDrops" >> beam.Flatten()
        counts = (rows.counts, written.counts) | "FlattenCounts" >> beam.Flatten()
        return StageOutput(paths, drops, counts)
