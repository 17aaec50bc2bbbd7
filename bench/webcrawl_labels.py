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
the photo shows); an output text describes the photo when most of its words, the words of
the site's host name left out, come from one of them (`text_describes`).
"""

from __future__ import annotations

import json
from pathlib import Path

from lait.scoring.relevance_web import describes, text_key  # noqa: F401 - text_key: how labels are made

LABELS_PATH = Path(__file__).parent / "labels" / "webcrawl.jsonl"

# The judge of a text (its words against a describing text's key) is the package's, which the
# relevance model's web pairs use too.
text_describes = describes


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
    if not text_describes(text, label.get("describing", []), label["page_url"]):
        return "wrong_text"
    return "good"
