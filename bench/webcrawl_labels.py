"""Labels of the shared webcrawl set (`bench/labels/webcrawl.jsonl`) and the judge that scores
pairs against them.

One JSON object per page, keyed by page URL and image URL; no page content is stored. A
describing text is kept only as the hashes of its words (`text_key`), enough to tell whether
an output text is made of that description's words and not of page chrome, but not to read it
back.

    {"page_url": "...", "warc": "FILE.warc.gz", "site": "idlermag.com", "english": true,
     "lead_photo": "https://.../photo.jpg" | null,
     "renditions": ["https://.../photo.jpg?w=300", ...],
     "describing": [[word hash, ...], ...],
     "note": "why, in a few words (no page text)"}

`lead_photo` is the image the page is about when it is a real photograph over 300 px on both
sides in the crawl, else null. `renditions` are other URLs of the same photo (crops, sizes).
`describing` holds one key per text on the page that says what or who the photo shows (alt,
title, figcaption, the caption line under it, a sentence beside it, a headline that names what
the photo shows); an output text describes the photo when most of its words come from one of
them (`text_describes`).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from pathlib import Path

LABELS_PATH = Path(__file__).parent / "labels" / "webcrawl.jsonl"

# Words too common to say whether a text is a page's description or its chrome.
_STOPWORDS = frozenset(
    "a an the and or of in on at to for with by from as is are was were be been this that these "
    "those it its his her their our your my we you he she they i s".split()
)
_WORD = re.compile(r"[a-z0-9]+")

# Share of an output text's content words that must come from one describing text.
MIN_WORD_PRECISION = 0.75


def words(text: str) -> list[str]:
    """Lower-case ASCII-folded content words of `text` (stop-words left out)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return [w for w in _WORD.findall(folded) if w not in _STOPWORDS]


def _hash(word: str) -> str:
    return hashlib.blake2b(word.encode(), digest_size=4).hexdigest()


def text_key(text: str) -> list[str]:
    """The stored form of a describing text: sorted unique hashes of its content words."""
    return sorted({_hash(w) for w in words(text)})


def text_describes(text: str, describing: list[list[str]]) -> bool:
    """True when most content words of `text` belong to one of the labelled describing texts."""
    output = {_hash(w) for w in words(text)}
    if not output:
        return False
    for key in describing:
        shared = len(output & set(key))
        if shared >= min(2, len(key)) and shared / len(output) >= MIN_WORD_PRECISION:
            return True
    return False


def load_labels(path: Path = LABELS_PATH) -> dict[str, dict]:
    """Labels by page URL."""
    with open(path, encoding="utf-8") as lines:
        return {label["page_url"]: label for label in map(json.loads, lines)}


def photo_urls(label: dict) -> set[str]:
    """Every URL that counts as the page's lead photo (empty when it has none)."""
    if not label.get("lead_photo"):
        return set()
    return {label["lead_photo"], *label.get("renditions", [])}


def judge(label: dict, image_url: str, text: str) -> str:
    """'good' when the pair is the page's lead photo with a describing text; else why not."""
    if image_url not in photo_urls(label):
        return "wrong_image" if label.get("lead_photo") else "no_photo_page"
    if not text_describes(text, label.get("describing", [])):
        return "wrong_text"
    return "good"
