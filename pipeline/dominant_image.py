"""DetectDominantImage: one image per page, the one the page is about.

First version: the page's `og:image`, else its first `<img>` that carries a description
and no logo/icon/ad tokens. The Dominant image issue replaces this with a learned ranker.
"""

from __future__ import annotations

import re

import apache_beam as beam

from pipeline.funnel import Reject, StageDoFn, StageOutput, apply_stage

_CLUTTER = re.compile(r"logo|icon|avatar|banner|\bad\b|ad-|sprite|pixel|social|share", re.I)


class DetectDominantImageFn(StageDoFn):
    stage = "DetectDominantImage"

    def run(self, page: dict):
        images = [c for c in page["candidates"] if c["source"] == "img"]
        by_url = {c["url"]: c for c in images}
        meta = next((c for c in page["candidates"] if c["source"] == "meta"), None)
        chosen = by_url.get(meta["url"], meta) if meta else None
        if chosen is None:
            chosen = next((c for c in images if (c.get("alt") or c.get("figcaption"))
                           and not _CLUTTER.search(c.get("class", "") + " " + c["url"])), None)
        if chosen is None:
            yield Reject("no_image", page)
            return
        record = {k: v for k, v in page.items() if k != "candidates"}
        record.update({
            "image_url": chosen["url"], "dominant_score": None, "dominant_source": chosen["source"],
            "alt": chosen.get("alt"), "title": chosen.get("title"), "figcaption": chosen.get("figcaption"),
        })
        yield record


class DetectDominantImage(beam.PTransform):
    """Parsed page records -> one (page, dominant image, texts) pair record per page."""

    def __init__(self, options):
        super().__init__()
        self.dofn = DetectDominantImageFn()

    def expand(self, pages: beam.PCollection) -> StageOutput:
        return apply_stage(pages, "Detect", self.dofn)
