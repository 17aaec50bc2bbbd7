"""Pure rules of the Aggregate stage: text identity, the best text of an image.

The LAIT recipe: an image found on several pages keeps only its best-scored text; a text
shared by too many images is dropped from all of them (boilerplate such as "Photo of the
day" describes none of them).
"""

from __future__ import annotations

import re
import unicodedata

_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalize_text(text: str) -> str:
    """Case-, whitespace- and punctuation-insensitive key of a description."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    return " ".join(_NOT_WORD.sub(" ", text).split())


def pair_rank(pair: dict) -> tuple:
    """Sort key that puts the best pair of one image first.

    Highest `score` wins (a missing score ranks below any score); ties go to the longer clean
    text, then the smallest page URL, so the choice never depends on arrival order.
    """
    score = pair.get("score")
    return (
        -(score if score is not None else -1.0),
        -len(pair.get("text") or ""),
        pair.get("page_url") or "",
        pair.get("image_url") or "",
    )


def best_pair(pairs: list[dict]) -> tuple[dict, list[dict]]:
    """(the kept pair, the others) for the pairs of one image."""
    ranked = sorted(pairs, key=pair_rank)
    return ranked[0], ranked[1:]
