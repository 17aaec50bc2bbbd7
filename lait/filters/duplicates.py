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


def phash_distance(a: str, b: str) -> int:
    """Hamming distance between two 64-bit perceptual hashes written as 16 hex digits."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def phash_bands(phash: str, max_distance: int) -> list[str]:
    """LSH keys of a 64-bit hash: `max_distance + 1` bands of its bits, each tagged with its index.

    Two hashes within `max_distance` bits differ in at most `max_distance` bands (pigeonhole),
    so they share at least one band key: grouping by band keys finds every near-duplicate
    pair without comparing all pairs.
    """
    bits = f"{int(phash, 16):064b}"
    n_bands = max_distance + 1
    edges = [round(i * 64 / n_bands) for i in range(n_bands + 1)]
    return [f"{i}:{bits[edges[i]:edges[i + 1]]}" for i in range(n_bands)]


def near_duplicate_links(images: list[tuple[str, str]], max_distance: int, max_bucket: int = 2000) -> list[tuple[str, str]]:
    """Pairs (sha1, sha1) of distinct images in one LSH bucket whose hashes are within `max_distance`.

    `images` are (sha1, phash). A bucket larger than `max_bucket` (a flat or blank image whose
    band is shared by very many) only links identical hashes, which keeps the work linear.
    """
    images = sorted(set(images))
    if len(images) > max_bucket:
        by_hash: dict[str, list[str]] = {}
        for sha1, phash in images:
            by_hash.setdefault(phash, []).append(sha1)
        return [(group[0], other) for group in by_hash.values() for other in group[1:]]
    links = []
    for i, (sha1_a, hash_a) in enumerate(images):
        for sha1_b, hash_b in images[i + 1:]:
            if sha1_a != sha1_b and phash_distance(hash_a, hash_b) <= max_distance:
                links.append((sha1_a, sha1_b))
    return links
