"""The corpus schema: the one definition of what a shard row holds.

Every Parquet shard that ``lait run`` writes has exactly these columns, in this order.
``WriteShards`` hands :data:`CORPUS_SCHEMA` to pyarrow, the trainer and ``lait inspect``
read it from here, and the README's column table is generated from :data:`COLUMNS`.

The image is the ``image`` column, a struct ``{bytes, path}``: the layout of Hugging Face
``datasets``' ``Image()`` feature, which the schema's ``huggingface`` metadata names, so
``datasets.load_dataset("parquet", ...)`` decodes it to a PIL image. ``bytes`` is the file as
acquired (never re-encoded) and ``path`` a file name for it, ``IMAGE_SHA1.EXT``.

Inside the pipeline a record is a plain ``dict``: each stage adds the keys it owns
(:mod:`lait.records` types them; :data:`STAGE_FIELDS` lists them) and ``WriteShards`` keeps the schema's columns
(:func:`to_row`; the record's ``image_bytes`` become the ``image`` column). A
column no stage filled is written as null, so a partly configured pipeline still writes
readable shards.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from lait.records import FIELDS_OF_STAGE, keys_of

# Hugging Face `datasets`' Image() storage type: it decodes `bytes`, else opens `path`.
IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
# File extension of each Pillow format name (the `path` of an image, the key in WebDataset tars).
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tiff"}

# (name, type, description). Order is the column order in every shard.
COLUMNS: list[tuple[str, pa.DataType, str]] = [
    ("image_sha1", pa.string(), "SHA-1 (hex) of the image file; the key the trainer joins regions on"),
    ("image", IMAGE_TYPE, "`bytes`: the image file as acquired (JPEG, PNG, WebP, GIF...), not re-encoded; "
                          "`path`: its name, `IMAGE_SHA1.EXT`. Hugging Face `datasets` loads it as `Image()`"),
    ("image_url", pa.string(), "absolute URL of the image"),
    ("page_url", pa.string(), "URL of the page whose text was kept for this image"),
    ("text", pa.string(), "the cleaned description"),
    ("text_source", pa.string(), "where `text` came from: alt, title, figcaption, og_image_alt, context, headline"),
    ("alt", pa.string(), "raw `alt` attribute of the image on that page"),
    ("title", pa.string(), "raw `title` attribute"),
    ("figcaption", pa.string(), "text of the enclosing `<figure>`'s `<figcaption>`"),
    ("og_image_alt", pa.string(), "`og:image:alt` of the page, when the image is the page's meta image"),
    ("context", pa.string(), "caption-like text beside the image in the DOM (line, block or sentence)"),
    ("headline", pa.string(), "the heading right above the image, when its article has one"),
    ("next_sentence", pa.string(), "first sentence of the body text right after the image, when it has no `context`"),
    ("page_title", pa.string(), "`<title>` (or `og:title`) of the page"),
    ("width", pa.int32(), "decoded width in pixels (after EXIF orientation)"),
    ("height", pa.int32(), "decoded height in pixels"),
    ("image_format", pa.string(), "Pillow format name: JPEG, PNG, WEBP, GIF..."),
    ("image_phash", pa.string(), "64-bit perceptual hash, 16 hex digits"),
    ("score", pa.float32(), "image-text relevance in [0, 1] (ScoreRelevance)"),
    ("dominant_score", pa.float32(), "how sure DetectDominantImage is that this is the page's main image"),
    ("dominant_source", pa.string(), "where the dominant image was found: img, meta, ..."),
    ("nsfw_score", pa.float32(), "NSFW score in [0, 1] (FilterImages)"),
    ("face_score", pa.float32(), "confidence in [0, 1] that the image shows a face (FilterImages, NudeNet)"),
    ("natural_score", pa.float32(), "probability that the image is a natural photo (FilterImages)"),
    ("page_language", pa.string(), "language of the page (fastText lid.176)"),
    ("page_language_score", pa.float32(), "confidence of `page_language`"),
    ("text_language_score", pa.float32(), "fastText confidence that `text` is English"),
    ("n_pages", pa.int32(), "how many pages used this image (Aggregate)"),
    ("n_texts", pa.int32(), "how many distinct texts this image had (Aggregate)"),
    ("image_source", pa.string(), "how the image bytes were acquired: crawl or http"),
    ("warc_path", pa.string(), "crawl file that held the page"),
    ("warc_offset", pa.int64(), "byte offset of the page's record in `warc_path`"),
    ("fetch_time", pa.string(), "crawl time of the page (WARC-Date, ISO 8601)"),
]

COLUMN_NAMES = [name for name, _, _ in COLUMNS]


def hf_features() -> dict:
    """The columns as Hugging Face `datasets` features (``Features.to_dict()``): ``image`` is an ``Image()``."""
    def feature(dtype: pa.DataType) -> dict:
        if dtype == IMAGE_TYPE:
            return {"_type": "Image"}
        return {"dtype": {pa.float32(): "float32"}.get(dtype, str(dtype)), "_type": "Value"}

    return {name: feature(dtype) for name, dtype, _ in COLUMNS}


# The `huggingface` schema metadata is where `datasets` looks for features (Features.from_arrow_schema).
CORPUS_SCHEMA = pa.schema([pa.field(name, dtype) for name, dtype, _ in COLUMNS],
                          metadata={"huggingface": json.dumps({"info": {"features": hf_features()}})})

# Which stage owns which record keys (their types: lait.records). Keys not in COLUMNS are
# intermediate and are not written.
STAGE_FIELDS: dict[str, list[str]] = {stage: keys_of(fields) for stage, fields in FIELDS_OF_STAGE.items()}


def image_value(data: bytes | None, sha1: str | None, image_format: str | None) -> dict | None:
    """The ``image`` column's value for an image file: ``{bytes, path}``, or None without bytes."""
    if not data:
        return None
    path = f"{sha1}.{EXTENSIONS.get(image_format or '', 'img')}" if sha1 else None
    return {"bytes": data, "path": path}


def to_row(record: dict) -> dict:
    """The shard row for a pipeline record: schema columns only, missing ones null.

    The record's ``image_bytes`` (with its ``image_sha1`` and ``image_format``) become ``image``.
    """
    row = {name: record.get(name) for name in COLUMN_NAMES}
    row["image"] = image_value(record.get("image_bytes"), record.get("image_sha1"), record.get("image_format"))
    return row


def image_column_problem(path: str, schema: pa.Schema) -> str | None:
    """Why the shard at `path` has no ``image`` column to read images from; None when it has one."""
    if "image" in schema.names and schema.field("image").type == IMAGE_TYPE:
        return None
    if "image_bytes" in schema.names:
        return (f"{path} is a shard of an older lait (an image_bytes column, not image): "
                "make the corpus again with 'lait run' or 'lait import-pairs'")
    return f"{path} has no image column {{bytes, path}}: not a lait corpus shard"


def image_bytes(row: dict) -> bytes | None:
    """The image file of a shard row read with ``to_pylist()`` (None when it has none)."""
    return (row.get("image") or {}).get("bytes")


def image_bytes_column(table: pa.Table) -> pa.ChunkedArray:
    """The image files of a table read with the ``image`` column, as one binary column."""
    return pc.struct_field(table.column("image"), "bytes")


def type_name(dtype: pa.DataType) -> str:
    """A column type as the README writes it (no angle brackets: Markdown would read them as HTML)."""
    if pa.types.is_struct(dtype):
        return "struct {" + ", ".join(f"{f.name}: {type_name(f.type)}" for f in dtype) + "}"
    return str(dtype)


def columns_markdown() -> str:
    """The README's column table."""
    lines = ["| column | type | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{name}` | {type_name(dtype)} | {doc} |" for name, dtype, doc in COLUMNS]
    return "\n".join(lines)
