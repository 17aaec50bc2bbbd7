"""Web pairs for the relevance model: real pages' lead photos with the texts lait finds beside them.

Flickr8k captions describe scenes ("a dog runs on the grass"); the web's captions name people,
places, events and products ("Maha Abdallah at her graduation in NUI Galway"). This module
turns a labelled crawl (WARC files with their images, and per page the labels of
``bench/labels/webcrawl.jsonl``: the lead photo, its renditions and the word-hash keys of the
texts that describe it) into labelled pairs, grouped by site:

- ``web_positive``: the lead photo with a text of its page that describes it (most of its
  content words, the site's name left out, come from one labelled describing text: the judge
  of the webcrawl bench);
- ``web_page_text``: the lead photo with any other text lait's parsing finds on its page
  (alt, title, figcaption, caption-like context and headline of every image, og:title,
  og:description, the page title): chrome, bylines, other images' captions;
- ``web_swap``: a describing text with the lead photo of another labelled page (one of the
  same site where there is one, one of another site): a real caption, the wrong photo.

Texts are found with the pipeline's own parser and candidate extraction
(:class:`lait.filters.page.PageParser`, :func:`lait.scoring.dominant_image.extract_candidates`),
so the model learns on the texts it will be shown. The labels hold no page text; the pairs
are built in memory and never written out.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

__all__ = ["WebPairs", "collect_web_pairs", "describes", "text_key", "WEB_KINDS"]

WEB_KINDS = ("web_positive", "web_page_text", "web_swap")
# The pipeline's CleanText drops longer texts before ScoreRelevance sees them.
MAX_TEXT_CHARS = 300
# Record keys of a dominant-image record and the text_source lait gives each.
_FIELD_SOURCE = {"alt": "alt", "title": "title", "figcaption": "figcaption", "context": "context",
                 "headline": "headline", "og_image_alt": "og_image_alt", "og_title": "headline",
                 "og_description": "context", "page_title": "headline"}

# The webcrawl labels' judge (bench/webcrawl_labels.py reads it from here). Words too common to
# say whether a text is a page's description or its chrome:
_STOPWORDS = frozenset(
    "a an the and or of in on at to for with by from as is are was were be been this that these "
    "those it its his her their our your my we you he she they i s".split()
)
_WORD = re.compile(r"[a-z0-9]+")
# Share of a text's content words that must come from one describing text.
MIN_WORD_PRECISION = 0.75


def content_words(text: str) -> list[str]:
    """Lower-case ASCII-folded content words of `text` (stop-words left out)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return [w for w in _WORD.findall(folded) if w not in _STOPWORDS]


def word_hash(word: str) -> str:
    return hashlib.blake2b(word.encode(), digest_size=4).hexdigest()


def text_key(text: str) -> list[str]:
    """The stored form of a describing text: sorted unique hashes of its content words."""
    return sorted({word_hash(w) for w in content_words(text)})


def _site_word_hashes(page_url: str | None) -> frozenset[str]:
    """The hashed words of a page's host name ("idlermag", "com" for https://idlermag.com/...).

    Every label of the host, not only the brand that lait.filters.description.site_names gives
    ("idlermag"): a labelled title ends in "Idlermag.com", and its "com" must not count either."""
    try:
        host = urlsplit(page_url or "").hostname or ""
    except ValueError:  # an unclosed IPv6 bracket in a crawled URL: no site name to leave out
        host = ""
    return frozenset(word_hash(w) for w in _WORD.findall(host.lower()))


def describes(text: str, describing: list[list[str]], page_url: str | None = None) -> bool:
    """True when most content words of `text` belong to one labelled describing text (a `text_key`).

    The words of the page's host name (`page_url`), in the text and in the keys, do not count:
    a describing headline often ends with the site's name ("Homemade soup | Idlermag.com"), and
    the bare site name, which the page shows as its banner, says nothing about the photo."""
    ignored = _site_word_hashes(page_url)
    words = {word_hash(w) for w in content_words(text)} - ignored
    if not words:
        return False
    for key in describing:
        kept = set(key) - ignored
        shared = len(words & kept)
        if shared >= min(2, len(kept)) and shared / len(words) >= MIN_WORD_PRECISION:
            return True
    return False


@dataclass
class WebPairs:
    """Labelled web pairs (dicts as ScoreRelevance gets them, plus ``label``, ``kind``, ``site``) and their images."""

    pairs: list[dict] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)  # lead photo URL -> bytes

    @property
    def labels(self) -> np.ndarray:
        return np.array([p["label"] for p in self.pairs], dtype=np.int64)

    @property
    def sites(self) -> np.ndarray:
        return np.array([p["site"] for p in self.pairs])


def _page_texts(page, found) -> list[tuple[str, str]]:
    """(text_source, text) of every text lait's parsing finds on the page, deduplicated."""
    seen: dict[str, str] = {}
    for cand in found.candidates:
        for name in ("alt", "title", "figcaption", "context", "headline"):
            seen.setdefault(" ".join((getattr(cand, name, "") or "").split()), _FIELD_SOURCE[name])
    for name in ("og_image_alt", "og_title", "og_description"):
        seen.setdefault(" ".join((found.info.get(name) or "").split()), _FIELD_SOURCE[name])
    seen.setdefault(" ".join((page.title or "").split()), "headline")
    return [(source, text) for text, source in seen.items() if text and len(text) <= MAX_TEXT_CHARS]


def _lead_photo(label: dict, images: dict[str, bytes]) -> str | None:
    from lait.filters.urls import normalize_url

    for url in (label["lead_photo"], *label.get("renditions", [])):
        key = normalize_url(url) or url
        if key in images:
            return key
    return None


def _crawl(crawl_records: Iterable, pages_wanted: set[str]) -> tuple[list[dict], dict[str, bytes]]:
    from lait.filters.urls import normalize_url

    pages, images = [], {}
    for record in crawl_records:
        if not isinstance(record, dict):
            continue  # a record the reader dropped (lait.pipeline.funnel.Reject)
        if record["kind"] == "image":
            images[normalize_url(record["url"]) or record["url"]] = record["content"]
        elif record["url"] in pages_wanted:
            pages.append(record)
    return pages, images


def collect_web_pairs(crawl_records: Iterable, labels_path: Path, seed: int = 0) -> WebPairs:
    """Positive and negative pairs of every labelled page with a lead photo in the crawl (see module docstring).

    `crawl_records` are the webcrawl's page and image records as ReadCrawl reads them
    (:func:`lait.pipeline.read_crawl.iter_crawl_records`, which the caller runs: scoring reads no files).
    """
    from lait.filters.page import PageParser
    from lait.scoring.dominant_image import extract_candidates

    with open(labels_path, encoding="utf-8") as lines:
        labels = {label["page_url"]: label for label in map(json.loads, lines) if label.get("lead_photo")}
    records, all_images = _crawl(crawl_records, set(labels))
    parser = PageParser(languages=None, identify=False)
    out = WebPairs()
    describing_texts = []  # (site, page, source, text)
    for record in sorted(records, key=lambda r: r["url"]):
        label = labels[record["url"]]
        photo = _lead_photo(label, all_images)
        page = parser.parse(record["content"], record["url"], (record.get("http_headers") or {}).get("content-type"))
        if photo is None or isinstance(page, tuple):
            continue
        out.images[photo] = all_images[photo]
        for source, text in _page_texts(page, extract_candidates(page)):
            positive = describes(text, label.get("describing", []), record["url"])
            out.pairs.append({"text": text, "text_source": source, "image_url": photo, "page_url": record["url"],
                              "site": label["site"], "label": int(positive),
                              "kind": "web_positive" if positive else "web_page_text"})
            if positive:
                describing_texts.append((label["site"], record["url"], source, text))
    rng = np.random.default_rng(seed)
    photo_of_page = {pair["page_url"]: pair["image_url"] for pair in out.pairs}
    photos_by_site: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for pair in out.pairs:
        photos_by_site[pair["site"]].append((pair["page_url"], pair["image_url"]))
    photos_by_site = {site: sorted(set(v)) for site, v in photos_by_site.items()}
    for site, page_url, source, text in describing_texts:
        # Another page of the same site may show the same photo: that is no negative.
        same = [p for p in photos_by_site[site] if p[0] != page_url and p[1] != photo_of_page[page_url]]
        other = [p for s, ps in photos_by_site.items() if s != site for p in ps]
        for pool in (same, other):
            if pool:
                _, photo = pool[rng.integers(len(pool))]
                out.pairs.append({"text": text, "text_source": source, "image_url": photo, "page_url": page_url,
                                  "site": site, "label": 0, "kind": "web_swap"})
    return out

