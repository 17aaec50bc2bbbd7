"""Export a corpus to WebDataset tar shards (`KEY.jpg` + `KEY.txt` + `KEY.json` per pair).

WebDataset and img2dataset users load such tars directly. The image is written as it was
acquired (no re-encoding), under the extension of its format (`.jpg`, `.png`, `.webp`...).
"""

from __future__ import annotations

import io
import json
import os
import tarfile

import pyarrow.parquet as pq

from pipeline.inspect import shard_paths
from pipeline.schema import COLUMN_NAMES

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tiff"}
METADATA_COLUMNS = [name for name in COLUMN_NAMES if name not in ("image_bytes",)]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def export_webdataset(directory: str, output: str, samples_per_shard: int = 10_000) -> dict:
    """Write `OUTPUT/00000.tar`, ... with `samples_per_shard` pairs each; returns counts."""
    os.makedirs(output, exist_ok=True)
    tar, shards, samples = None, [], 0
    try:
        for path in shard_paths(directory):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=256):
                for row in batch.to_pylist():
                    if samples % samples_per_shard == 0:
                        if tar:
                            tar.close()
                        shards.append(os.path.join(output, f"{len(shards):05d}.tar"))
                        tar = tarfile.open(shards[-1], "w")
                    key = row["image_sha1"]
                    _add(tar, f"{key}.{EXTENSIONS.get(row['image_format'], 'img')}", row["image_bytes"] or b"")
                    _add(tar, f"{key}.txt", (row["text"] or "").encode("utf-8"))
                    meta = {k: row[k] for k in METADATA_COLUMNS}
                    _add(tar, f"{key}.json", json.dumps(meta, ensure_ascii=False).encode("utf-8"))
                    samples += 1
    finally:
        if tar:
            tar.close()
    return {"shards": len(shards), "samples": samples, "output": output}
