"""Export a corpus to WebDataset tar shards (`KEY.jpg` + `KEY.txt` + `KEY.json` per pair).

WebDataset and img2dataset users load such tars directly, usually with one image key for
every sample (`to_tuple("jpg", "txt")`), so by default every image is stored as `KEY.jpg`:
a JPEG file as it was acquired, any other format (PNG, WebP, GIF...) re-encoded to JPEG.
`image_format` chooses:

- ``"jpg"`` (default): every image under `jpg`; non-JPEG files re-encoded (quality 95, RGB,
  transparency flattened on white, EXIF orientation applied, an animation's first frame);
- ``"png"``: every image under `png`; non-PNG files re-encoded losslessly to PNG;
- ``"keep"``: every file as acquired, under the extension of its format (`jpg`, `png`,
  `webp`, ...), so the image key differs between samples.

`KEY` is the image's `image_sha1`, the SHA-1 of the file as acquired (also for a re-encoded
image), and `KEY.json` holds every column but the image, `image_format` the original format.
A row without an image, or one whose image cannot be re-encoded, is left out and counted.
"""

from __future__ import annotations

import io
import json
import tarfile

from PIL import Image, ImageOps

from lait import storage
from lait.pipeline.inspect import CorpusError, shard_paths
from lait.pipeline.schema import COLUMN_NAMES, EXTENSIONS, image_bytes, image_column_problem

IMAGE_FORMATS = ("jpg", "png", "keep")
METADATA_COLUMNS = [name for name in COLUMN_NAMES if name != "image"]
JPEG_QUALITY = 95  # img2dataset's default encode quality
_PIL_FORMAT = {"jpg": "JPEG", "png": "PNG"}


class _TarWriter(tarfile.TarFile):
    """A tar written as a stream to a local path or URL (an object store takes it as one upload)."""

    def __init__(self, path: str):
        self._target = storage.open(path, "wb")
        super().__init__(fileobj=self._target, mode="w")

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._target.close()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def reencode(data: bytes, image_format: str) -> bytes:
    """`data` (any format Pillow reads) as a JPEG (``"jpg"``) or PNG (``"png"``) file; raises OSError."""
    with Image.open(io.BytesIO(data)) as opened:
        image = ImageOps.exif_transpose(opened)  # upright pixels: the re-encoded file has no EXIF
        if image_format == "jpg":
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                rgba = image.convert("RGBA")
                image = Image.new("RGB", rgba.size, "white")
                image.paste(rgba, mask=rgba.getchannel("A"))
            elif image.mode not in ("RGB", "L"):
                image = image.convert("RGB")
        elif image.mode not in ("RGB", "RGBA", "L", "LA", "P", "1", "I;16"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        out = io.BytesIO()
        options = {"quality": JPEG_QUALITY} if image_format == "jpg" else {"optimize": False}
        image.save(out, _PIL_FORMAT[image_format], **options)
    return out.getvalue()


def image_file(row: dict, image_format: str) -> tuple[str, bytes, bool] | None:
    """`(key extension, file, re-encoded?)` of a row's image in `image_format`; None when it has none.

    Raises OSError (or ValueError) when the image has to be re-encoded and cannot be decoded.
    """
    data = image_bytes(row)
    if not data:
        return None
    original = EXTENSIONS.get(row.get("image_format") or "", "img")
    if image_format == "keep":
        return original, data, False
    if original == image_format:
        return image_format, data, False
    return image_format, reencode(data, image_format), True


def _rows(path: str):
    for batch in storage.parquet_file(path).iter_batches(batch_size=256):
        yield from batch.to_pylist()


def sample_key(row: dict, seen: dict[str, int]) -> str:
    """The row's tar key: its `image_sha1`, then `SHA1-1`, `SHA1-2`... for further rows of that image.

    A corpus from `lait import-pairs` keeps each caption of an image as its own row, and
    WebDataset reads consecutive files that share a key as one sample. `seen` counts the
    keys given so far (one shard holds every row of an image).
    """
    base = row.get("image_sha1") or "no-sha1"
    n = seen[base] = seen.get(base, -1) + 1
    return base if n == 0 else f"{base}-{n}"


def export_webdataset(directory: str, output: str, samples_per_shard: int = 10_000, image_format: str = "jpg",
                      on_row=None) -> dict:
    """Write `OUTPUT/00000.tar`, ... with `samples_per_shard` pairs each; returns counts.

    `on_row()`, when given, is called once per corpus row read (the command's progress bar).

    The counts: `shards`, `samples` written, `reencoded` (images converted to `image_format`),
    `no_image` and `undecodable` (rows left out), and the `output` folder.
    """
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {', '.join(IMAGE_FORMATS)}, got {image_format!r}")
    paths = shard_paths(directory)
    for path in paths:  # before anything is written
        problem = image_column_problem(path, storage.parquet_file(path).schema_arrow)
        if problem:
            raise CorpusError(problem)
    storage.makedirs(output)
    tar, shards = None, []
    counts = {"samples": 0, "reencoded": 0, "no_image": 0, "undecodable": 0}
    try:
        for path in paths:
            seen: dict[str, int] = {}
            for row in _rows(path):
                if on_row is not None:
                    on_row()
                key = sample_key(row, seen)
                try:
                    image = image_file(row, image_format)
                except (OSError, ValueError, Image.DecompressionBombError):
                    counts["undecodable"] += 1
                    continue
                if image is None:
                    counts["no_image"] += 1
                    continue
                if counts["samples"] % samples_per_shard == 0:
                    if tar:
                        tar.close()
                    shards.append(storage.join(output, f"{len(shards):05d}.tar"))
                    tar = _TarWriter(shards[-1])
                extension, data, reencoded = image
                counts["reencoded"] += reencoded
                _add(tar, f"{key}.{extension}", data)
                _add(tar, f"{key}.txt", (row["text"] or "").encode("utf-8"))
                meta = {k: row[k] for k in METADATA_COLUMNS}
                _add(tar, f"{key}.json", json.dumps(meta, ensure_ascii=False).encode("utf-8"))
                counts["samples"] += 1
    finally:
        if tar:
            tar.close()
    return {"shards": len(shards), **counts, "output": output}
