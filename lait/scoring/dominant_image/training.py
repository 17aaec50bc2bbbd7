"""Weak labels for the ranker: a page's og:image / twitter:image found again among its body images."""

from __future__ import annotations

import numpy as np

from lait.filters.page import Page
from lait.scoring.dominant_image.candidates import PageCandidates, extract_candidates
from lait.scoring.dominant_image.urls import rendition_key, site_image_url


def weak_labels(page: Page, hide_structured: bool = False) -> tuple[PageCandidates, np.ndarray] | None:
    """Training rows of a page: features with og/twitter meta hidden, 1 where a body image is the meta image.

    A body image matches when one of its names (src, srcset, lazy attributes) is the meta
    image's URL (compared with :func:`image_key`); failing that, when it is the only body
    image that is another rendition of it (:func:`rendition_key`). None when nothing matches,
    or the meta image looks like a site-wide image (logo, icon, placeholder): those would
    teach the ranker to pick logos.
    """
    visible = extract_candidates(page)
    meta = [c for c in visible.candidates if c.meta_rank < 99 and not site_image_url(c.url)]
    if not meta:
        return None
    shown = {c.element for c in meta if c.element is not None}
    hidden = extract_candidates(page, hide_meta=True, hide_structured=hide_structured)
    body = hidden.candidates[:hidden.n_body]
    labels = np.array([c.element in shown for c in body], dtype=np.int8)
    if not labels.any():
        wanted = {rendition_key(c.url) for c in meta} - {None}
        matches = [i for i, c in enumerate(body) if rendition_key(c.url) in wanted]
        if len(matches) != 1:
            return None
        labels[matches[0]] = 1
    return hidden, labels


def training_rows(page: Page) -> tuple[np.ndarray, np.ndarray] | None:
    """`(X, y)` of one page for :class:`DominantImageRanker`, or None when the page gives no label.

    JSON-LD, `<link rel=image_src>` and `itemprop` outside `<img>` are hidden too: where they
    name a usable image, :func:`choose_dominant` takes it before ranking, so the ranker only
    ever decides on pages without them and is trained in that condition.
    """
    labelled = weak_labels(page, hide_structured=True)
    if labelled is None:
        return None
    found, labels = labelled
    return found.features, labels
