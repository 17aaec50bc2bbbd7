"""The corpus schema: the one definition of what a shard row holds.

Every Parquet shard that ``lait run`` writes has exactly these columns, in this order.
``WriteShards`` hands :data:`CORPUS_SCHEMA` to pyarrow, the trainer and ``lait inspect``
read it from here, and the README's column table is generated from :data:`COLUMNS`.

Inside the pipeline a record is a plain ``dict``: each stage adds the keys it owns
(listed in :data:`STAGE_FIELDS`) and ``WriteShards`` keeps the schema's columns. A
column no stage filled is written as null, so a partly configured pipeline still writes
readable shards.
"""

from __future__ import annotations

import pyarrow as pa

# (name, type, description). Order is the column order in every shard.
COLUMNS: list[tuple[str, pa.DataType, str]] = [
    ("image_sha1", pa.string(), "SHA-1 (hex) of `image_bytes`; the key the trainer joins regions on"),
    ("image_bytes", pa.binary(), "the image file as acquired (JPEG, PNG, WebP, GIF...), not re-encoded"),
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
    ("page_title", pa.string(), "`<title>` (or `og:title`) of the page"),
    ("width", pa.int32(), "decoded width in pixels (after EXIF orientation)"),
    ("height", pa.int32(), "decoded height in pixels"),
    ("image_format", pa.string(), "Pillow format name: JPEG, PNG, WEBP, GIF..."),
    ("image_phash", pa.string(), "64-bit perceptual hash, 16 hex digits"),
    ("score", pa.float32(), "image-text relevance in [0, 1] (ScoreRelevance)"),
    ("dominant_score", pa.float32(), "how sure DetectDominantImage is that this is the page's main image"),
    ("dominant_source", pa.string(), "where the dominant image was found: img, meta, ..."),
    ("nsfw_score", pa.float32(), "NSFW score in [0, 1] (FilterImages)"),
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

CORPUS_SCHEMA = pa.schema([pa.field(name, dtype) for name, dtype, _ in COLUMNS])
COLUMN_NAMES = [name for name, _, _ in COLUMNS]

# Which stage owns which record keys. Keys not in COLUMNS are intermediate and are not written.
STAGE_FIELDS: dict[str, list[str]] = {
    "ReadCrawl": ["url", "content", "http_headers", "warc_path", "warc_offset", "fetch_time"],
    "ParsePages": ["page_url", "page_title", "page_language", "page_language_score", "candidates",
                   "og_title", "og_description", "og_image_alt"],
    "DetectDominantImage": [
        "image_url", "image_urls", "dominant_score", "dominant_source",
        "alt", "title", "figcaption", "og_image_alt", "context", "headline", "og_title", "og_description",
    ],
    "CleanText": ["text", "text_source", "text_language_score"],
    "AcquireImages": ["image_bytes", "image_source"],
    "FilterImages": ["width", "height", "image_format", "nsfw_score", "natural_score", "image_sha1", "image_phash",
                     "efficientnet_embedding", "efficientnet_probs"],  # the last two: for ScoreRelevance only
    "ScoreRelevance": ["score"],
    "Aggregate": ["n_pages", "n_texts"],
}


def to_row(record: dict) -> dict:
    """The shard row for a pipeline record: schema columns only, missing ones null."""
    return {name: record.get(name) for name in COLUMN_NAMES}


def columns_markdown() -> str:
    """The README's column table."""
    lines = ["| column | type | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{name}` | {dtype} | {doc} |" for name, dtype, doc in COLUMNS]
    return "\n".join(lines)
