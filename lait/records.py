"""The records that travel between the stages of `lait run`, one definition each.

A record is a plain ``dict`` (Beam pickles dicts cheaply and a stage copies only what it
changes); these ``TypedDict`` classes say which keys it holds at each point, for readers and
type checkers. Each stage adds the keys of one ``*Fields`` class, and
:data:`lait.pipeline.schema.STAGE_FIELDS` is read from :data:`FIELDS_OF_STAGE` here. The
shard's columns (what is written, and how) are :mod:`lait.pipeline.schema`'s.

    crawl file --ReadCrawl--> CrawlRecord --ParsePages--> PageRecord
      --DetectDominantImage--> PairRecord (then each later stage adds its fields to it)
"""

from __future__ import annotations

from typing import Any, TypedDict


class ProvenanceFields(TypedDict):
    """Where a page came from; every record of the page carries it to the shard."""

    warc_path: str
    warc_offset: int
    fetch_time: str | None


class CrawlRecord(ProvenanceFields):
    """A page or image response of a crawl file (ReadCrawl), its body decoded."""

    kind: str  # "page" or "image"
    url: str
    content: bytes
    http_headers: dict[str, str]


class PageFields(TypedDict, total=False):
    """What ParsePages reads off a page (kept with every pair of the page)."""

    page_url: str
    page_title: str | None
    page_language: str
    page_language_score: float
    og_title: str | None
    og_description: str | None


class ParsedPageFields(PageFields, total=False):
    """ParsePages' keys: the page's and, until DetectDominantImage uses them, its image candidates."""

    candidates: list[dict[str, Any]]  # lait.scoring.dominant_image's candidate records
    og_image_alt: str | None


class PageRecord(ProvenanceFields, ParsedPageFields, total=False):
    """A parsed page in a kept language (ParsePages)."""


class DominantImageFields(TypedDict, total=False):
    """The page's dominant image and the texts around it (DetectDominantImage)."""

    image_url: str
    image_urls: list[str]  # renditions, tried in order
    dominant_score: float
    dominant_source: str
    alt: str | None
    title: str | None
    figcaption: str | None
    og_image_alt: str | None
    context: str | None
    headline: str | None
    next_sentence: str | None
    og_title: str | None
    og_description: str | None


class TextFields(TypedDict, total=False):
    """The chosen, cleaned description (CleanText)."""

    text: str
    text_source: str
    text_language_score: float | None
    needs_face: bool  # a page text kept because it names a person (never written)


class AcquiredImageFields(TypedDict, total=False):
    """The image file (AcquireImages): from the crawl or downloaded."""

    image_bytes: bytes
    image_source: str


class ImageCheckFields(TypedDict, total=False):
    """What FilterImages measured; the last three are for ScoreRelevance only, never written."""

    width: int
    height: int
    image_format: str
    nsfw_score: float
    face_score: float
    natural_score: float
    image_sha1: str
    image_phash: str
    efficientnet_embedding: Any
    efficientnet_probs: Any
    efficientnet_detail: Any


# The EfficientNet-Lite0 outputs FilterImages hands ScoreRelevance (float32 bytes), in the
# order of lait.encoders.efficientnet.NetworkOutputs.
NETWORK_OUTPUT_KEYS = ("efficientnet_embedding", "efficientnet_probs", "efficientnet_detail")


class RelevanceFields(TypedDict, total=False):
    """Image-text relevance (ScoreRelevance)."""

    score: float


class AggregateFields(TypedDict, total=False):
    """How many pages and texts shared the image (Aggregate)."""

    n_pages: int
    n_texts: int


class PairRecord(ProvenanceFields, PageFields, DominantImageFields, TextFields, AcquiredImageFields,
                 ImageCheckFields, RelevanceFields, AggregateFields, total=False):
    """A page's dominant image with its texts, from DetectDominantImage to WriteShards."""


# The keys each stage adds, in the order the funnel lists the stages.
FIELDS_OF_STAGE: dict[str, type] = {
    "ReadCrawl": CrawlRecord,
    "ParsePages": ParsedPageFields,
    "DetectDominantImage": DominantImageFields,
    "CleanText": TextFields,
    "AcquireImages": AcquiredImageFields,
    "FilterImages": ImageCheckFields,
    "ScoreRelevance": RelevanceFields,
    "Aggregate": AggregateFields,
}


def keys_of(record_type: type) -> list[str]:
    """The keys of a record type, inherited ones first."""
    return list(record_type.__annotations__)
