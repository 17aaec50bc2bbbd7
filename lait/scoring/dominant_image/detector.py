"""The decision: the page's meta image when it is sound, else the ranker's best body image, else none."""

from __future__ import annotations

import numpy as np

from lait.filters.page import Page
from lait.filters.urls import normalize_url
from lait.scoring.dominant_image.candidates import (
    Candidate,
    PageCandidates,
    excluded_body_rows,
    extract_candidates,
    unusable_body_rows,
)
from lait.scoring.dominant_image.features import FEATURE_INDEX
from lait.scoring.dominant_image.ranker import DominantImageRanker
from lait.scoring.dominant_image.urls import site_image_url


def choose_dominant(found: PageCandidates, scores: np.ndarray, min_score: float = 0.5,
                    meta_score: float = 0.9, excluded: np.ndarray | None = None,
                    unusable: np.ndarray | None = None) -> tuple[Candidate | None, float, str]:
    """`(candidate, score, source)` of the page's dominant image, or `(None, best_score, reason)`.

    1. The first image the page's metadata names (og, then twitter, then `<link rel=image_src>`,
       JSON-LD, `itemprop`) that passes the sanity checks (:func:`_sound_named`) wins with score
       `max(meta_score, its ranker score)`; but where it is not shown in the body and another
       meta image is, and that one is the ranker's best body image, the one the page shows wins.
    2. Else the ranker's best body candidate that is not excluded, if it scores at least `min_score`.
    3. Else a `<video poster>`: where a page's lead is a video, its poster frame is its picture.

    Reasons: `no_image` (the page names no usable image), `low_score`.
    """
    body_index = {id(c): i for i, c in enumerate(found.candidates[:found.n_body])}
    excluded = excluded_body_rows(found) if excluded is None else excluded
    unusable = unusable_body_rows(found) if unusable is None else unusable
    named = [c for c in found.candidates if c.meta_rank < 99]
    named.sort(key=lambda c: c.meta_rank)
    for kind in ("link", "jsonld", "itemprop"):
        named += [c for c in found.candidates if kind in c.sources and c not in named]
    named = [c for c in named if _sound_named(c, body_index.get(id(c)), unusable)]
    masked = np.where(excluded, -1.0, scores) if found.n_body else np.zeros(0)
    best = int(np.argmax(masked)) if found.n_body else -1
    if named:
        cand = named[0]
        shown = [c for c in named if c.meta_rank < 99 and body_index.get(id(c)) == best and not excluded[best]]
        if id(cand) not in body_index and shown:
            cand = shown[0]
        i = body_index.get(id(cand))
        source = "meta" if cand.meta_rank < 99 else next(s for s in ("link", "jsonld", "itemprop") if s in cand.sources)
        score = max(meta_score, float(scores[i])) if i is not None else meta_score
        return cand, score, source
    if best >= 0 and not excluded[best] and masked[best] >= min_score:
        cand = found.candidates[best]
        return cand, float(masked[best]), cand.sources[0]
    poster = next((c for c in found.candidates if "poster" in c.sources and not site_image_url(c.url)), None)
    if poster is not None:
        return poster, meta_score, "poster"
    if best < 0 or excluded[best]:
        # Every body image is marked as chrome by its markup: an author's photo on a personal page,
        # not small and not an ad, logo or icon, is still the page's image.
        f, x = FEATURE_INDEX, found.features
        chrome = (x[:, f["own_ad"]] > 0) | (x[:, f["own_logo"]] > 0) | (x[:, f["own_icon"]] > 0)
        usable = np.flatnonzero(~unusable & ~chrome & (x[:, f["is_small"]] == 0))
        if len(usable):
            cand = found.candidates[int(usable[0])]
            return cand, 0.0, cand.sources[0]
        return None, 0.0, "no_image"
    return None, float(masked[best]), "low_score"


def _sound_named(cand: Candidate, body_row: int | None, unusable: np.ndarray) -> bool:
    """Whether an image the metadata names can be the page's picture: not a site-wide image by its
    URL, not declared under 100 px, and, where the body shows it, not a pixel or an icon there.

    The markup around it (an avatar's or an ad slot's class) does not rule it out: the
    publisher named it.
    """
    if site_image_url(cand.url) or (body_row is not None and unusable[body_row]):
        return False
    return not (0 < cand.meta_width < 100 or 0 < cand.meta_height < 100)


def page_scores(ranker: DominantImageRanker, found: PageCandidates, floor: float = 0.05,
                excluded: np.ndarray | None = None) -> np.ndarray:
    """Scores of a page's body candidates: the probability that each is the page's main image.

    :meth:`DominantImageRanker.page_probability` answers "which image is the main one"; a
    candidate whose own pointwise probability is under `floor` is scaled down by
    `probability / floor` ("is it any good at all"). Excluded candidates score 0.
    """
    if not found.n_body:
        return np.zeros(0)
    excluded = excluded_body_rows(found) if excluded is None else excluded
    scores = np.zeros(found.n_body)
    kept = ~excluded
    if kept.any():
        raw_kept = ranker.decision_function(found.features[kept])
        prob = 1.0 / (1.0 + np.exp(-raw_kept))
        scores[kept] = ranker.page_probability(raw_kept) * np.minimum(1.0, prob / floor)
    return scores


def dominant_record(found: PageCandidates, cand: Candidate, score: float, source: str) -> dict:
    """The stage's output keys for a chosen candidate (see `lait/pipeline/schema.py`)."""
    is_meta = any(key == cand.key for key, _ in found.meta)
    # A pick made from metadata reports the URL the metadata gives (the publisher's chosen rendition).
    url = cand.named_url if source in ("meta", "link", "jsonld", "itemprop", "poster") and cand.named_url else cand.url
    # Other renditions, tried in order where the first cannot be had (not in the crawl, 404).
    urls = [url] if url != cand.url else []
    urls += [*cand.full_size_urls, cand.url, cand.named_url]
    urls = list(dict.fromkeys(normalize_url(u) or u for u in urls if u))
    return {
        "image_url": urls[0], "image_urls": urls, "dominant_score": round(score, 4), "dominant_source": source,
        "alt": cand.alt or None, "title": cand.title or None, "figcaption": cand.figcaption or None,
        "og_image_alt": found.info.get("og_image_alt") if is_meta else None,
        "context": cand.context or None,
        # Without a heading above the image, CleanText's headline is the page's og:title or title
        # (lait.filters.description): the one place that decides it.
        "headline": cand.headline or None,
        "next_sentence": cand.next_sentence or None,
        "og_title": found.info.get("og_title"), "og_description": found.info.get("og_description"),
    }


class DominantImageDetector:
    """Candidates, ranking and decision for parsed pages; the model loads once.

    Parameters
    ----------
    model_path : str, optional
        A model saved by :meth:`DominantImageRanker.save`; the shipped one by default.
    min_score : float, default=0.5
        A page whose best body image scores below this yields no image (`low_score`).
    """

    def __init__(self, model_path: str | None = None, min_score: float = 0.5):
        self.ranker = DominantImageRanker.load(model_path)
        self.min_score = min_score

    def detect_found(self, found: PageCandidates) -> dict:
        """Decision over extracted candidates: the record keys plus `candidates`, or `image_url` None and `reason`."""
        unusable = unusable_body_rows(found)
        excluded = excluded_body_rows(found, unusable)
        scores = page_scores(self.ranker, found, excluded=excluded)
        cand, score, source = choose_dominant(found, scores, self.min_score, excluded=excluded, unusable=unusable)
        n = len(found.candidates)
        if cand is None:
            return {"image_url": None, "dominant_score": round(score, 4), "dominant_source": None,
                    "reason": source, "candidates": n, **{k: found.info.get(k) for k in ("og_title", "og_description")}}
        return {**dominant_record(found, cand, score, source), "candidates": n}

    def detect(self, page: Page) -> dict:
        """:meth:`detect_found` of a parsed page."""
        return self.detect_found(extract_candidates(page))
