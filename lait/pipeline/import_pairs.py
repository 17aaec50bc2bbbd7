"""ImportPairs: published (image, caption) lists -> corpus shards of the same schema.

ImageBERT's second pre-training stage uses Conceptual Captions and SBU, published as lists
of (image URL, caption). `lait import-pairs` turns such a list into corpus shards through the
same `AcquireImages` and `FilterImages` stages as `lait run`:

    ReadPairs -> AcquireImages -> FilterImages -> WriteShards

Input files, by extension:
- `.jsonl` / `.json`: one `{"image": URL or path, "caption": ...}` per line;
- `.tsv` / `.txt`: the CC3M layout, `caption<TAB>url` (SBU lists converted the same way);
- `.parquet`: columns `image` (or `url`) and `caption` (or `text`); `image` may also be a
  Hugging Face `Image()` column, `{bytes, path}` (a lait corpus's shards are such files), whose
  bytes are used as they are (`image_url` names the image when the file has that column).
A local path is read from disk (relative paths are relative to the list file, which may itself be
a URL of :mod:`lait.storage`, e.g. ``s3://bucket/lists/pairs.jsonl`` beside its images). Every pair is
kept as given: an image with five captions gives five rows (use `lait run` for LAIT's
one-text-per-image aggregation).
"""

from __future__ import annotations

import json
import os

import apache_beam as beam

from lait import storage
from lait.pipeline.acquire_images import AcquireImages
from lait.pipeline.filter_images import FilterImages
from lait.pipeline.funnel import FunnelCollector, Reject, StageDoFn, StageOutput, WriteFunnel, WriteRejects, apply_stage
from lait.pipeline.write_shards import WriteShards

IMPORT_STAGES = ["ReadPairs", "AcquireImages", "FilterImages", "WriteShards"]
FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".tsv": "tsv", ".txt": "tsv", ".parquet": "parquet"}


def list_format(path: str) -> str:
    for suffix, kind in FORMATS.items():
        if path.lower().endswith(suffix):
            return kind
    raise ValueError(f"{path}: unknown list format; use .jsonl, .tsv (CC3M: caption<TAB>url) or .parquet")


def _pair(image: str | None, caption: str | None, list_path: str, line: int) -> dict | Reject:
    where = {"url": f"{list_path}:{line}"}
    if not isinstance(image, str) or not image.strip():
        return Reject("no_image", where, "missing image")
    if not isinstance(caption, str) or not caption.strip():
        return Reject("no_text", {**where, "image_url": image}, "missing caption")
    image = image.strip()
    record = {"text": " ".join(caption.split()), "text_source": "caption", "page_url": None, "url": where["url"]}
    if image.startswith(("http://", "https://")):
        return {**record, "image_url": image}
    if "://" in image:
        return Reject("bad_url", {**where, "image_url": image}, "only http(s) URLs and local paths")
    if storage.is_url(list_path):  # beside a list in an object store
        path = storage.join(list_path.rsplit("/", 1)[0], image)
        return {**record, "image_url": path, "image_path": path}
    path = image if os.path.isabs(image) else os.path.join(os.path.dirname(list_path), image)
    return {**record, "image_url": "file://" + os.path.abspath(path), "image_path": path}


def _embedded(image: dict, caption: str | None, image_url: str | None, list_path: str, line: int) -> dict | Reject:
    """The pair of an `Image()` value `{bytes, path}`: its bytes when it has them, else its path."""
    if not image.get("bytes"):
        return _pair(image.get("path"), caption, list_path, line)
    where = f"{list_path}:{line}"
    if not isinstance(caption, str) or not caption.strip():
        return Reject("no_text", {"url": where, "image_url": image_url}, "missing caption")
    return {"text": " ".join(caption.split()), "text_source": "caption", "page_url": None, "url": where,
            "image_url": image_url or f"{_list_url(list_path)}#{line}",
            "image_path": None, "image_data": image["bytes"]}


def _list_url(list_path: str) -> str:
    return list_path if storage.is_url(list_path) else f"file://{os.path.abspath(list_path)}"


def iter_pairs(list_path: str):
    """Pair records (or Rejects) of one list file, streamed."""
    kind = list_format(list_path)
    if kind == "parquet":
        table = storage.parquet_file(list_path).read()
        image_col = "image" if "image" in table.column_names else "url"
        text_col = "caption" if "caption" in table.column_names else "text"
        url_col = ["image_url"] if "image_url" in table.column_names and image_col == "image" else []
        for i, row in enumerate(table.select([image_col, text_col, *url_col]).to_pylist(), start=1):
            if isinstance(row[image_col], dict):
                yield _embedded(row[image_col], row[text_col], row.get("image_url"), list_path, i)
            else:
                yield _pair(row[image_col], row[text_col], list_path, i)
        return
    with storage.open(list_path, "rb") as f:
        for i, raw in enumerate(f, start=1):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not line.strip():
                continue
            if kind == "tsv":
                caption, _, url = line.partition("\t")
                yield _pair(url, caption, list_path, i)
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as error:
                yield Reject("bad_line", {"url": f"{list_path}:{i}"}, str(error))
                continue
            if not isinstance(item, dict):
                yield Reject("bad_line", {"url": f"{list_path}:{i}"}, "not a JSON object")
                continue
            yield _pair(item.get("image") or item.get("url"), item.get("caption") or item.get("text"), list_path, i)


class ReadPairsFn(StageDoFn):
    """List file -> pair records; `in` counts the lines (rows) read."""

    stage = "ReadPairs"

    def __init__(self):
        super().__init__(count_in=False)

    def run(self, list_path: str):
        for result in iter_pairs(list_path):
            self.count("in")
            yield result


class ReadLocalImagesFn(StageDoFn):
    """Pairs whose image is a local file (or bytes in the list) -> pairs with its bytes (counted under AcquireImages)."""

    stage = "AcquireImages"

    def __init__(self, max_bytes: int):
        super().__init__()
        self.max_bytes = max_bytes

    def run(self, pair: dict):
        # Never mutate an input element: the runner may hand the same dict to other branches.
        path, data = pair["image_path"], pair.get("image_data")
        pair = {k: v for k, v in pair.items() if k not in ("image_path", "image_data")}
        if data is None:
            try:
                with storage.open(path, "rb") as f:
                    data = f.read(self.max_bytes + 1)
            except OSError as error:
                yield Reject("file_error", pair, str(error))
                return
        if len(data) > self.max_bytes:
            yield Reject("too_large", pair, f"over {self.max_bytes} bytes")
            return
        yield {**pair, "image_bytes": data, "image_source": "file"}


def _is_local(pair: dict) -> bool:
    return "image_path" in pair


class ImportPairs(beam.PTransform):
    """List files -> corpus shards, `_funnel.json` and `_rejects/` in `options.output`."""

    def __init__(self, list_paths: list[str], options):
        super().__init__()
        self.list_paths = list_paths
        self.options = options

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        options, funnel = self.options, FunnelCollector()
        lists = pbegin | "ListFiles" >> beam.Create(self.list_paths) | "Spread" >> beam.Reshuffle()
        pairs = funnel.add(apply_stage(lists, "ReadPairs", ReadPairsFn()))
        local = pairs | "LocalFiles" >> beam.Filter(_is_local)
        remote = pairs | "Urls" >> beam.Filter(lambda p: not _is_local(p))
        from_disk = apply_stage(local, "ReadLocal", ReadLocalImagesFn(options.max_image_bytes))
        no_crawl = pbegin | "NoCrawlImages" >> beam.Create([])
        fetched = remote | "AcquireImages" >> AcquireImages(options, no_crawl)
        funnel.add(StageOutput(None, from_disk.drops, from_disk.counts))
        funnel.add(StageOutput(None, fetched.drops, fetched.counts))
        acquired = (from_disk.main, fetched.main) | "Acquired" >> beam.Flatten()
        kept = funnel.add(acquired | "FilterImages" >> FilterImages(options))
        shards = funnel.add(kept | "WriteShards" >> WriteShards(options.output, options.max_shard_bytes))
        funnel_file = (funnel.counts | "FlattenCounts" >> beam.Flatten()
                       | "WriteFunnel" >> WriteFunnel(options.output, IMPORT_STAGES))
        rejects = funnel.drops | "WriteRejects" >> WriteRejects(options.output, options.rejects_per_reason)
        return (shards, funnel_file, rejects) | "AllWrites" >> beam.Flatten()
