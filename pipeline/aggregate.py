"""Aggregate: one text per image, and no text shared by too many images.

Two groupings, both Beam GroupByKeys so nothing needs global state on a cluster:
1. by normalised text: a text used by more than --max_images_per_text distinct images
   drops all its pairs (`shared_text`);
2. by image (SHA-1 of the bytes): the best-scored pair is kept with `n_pages` and
   `n_texts`; the others are dropped as `duplicate_image`.
The pure rules live in `filters.duplicates`.
"""

from __future__ import annotations

import apache_beam as beam

from filters.duplicates import best_pair, normalize_text
from pipeline.funnel import Reject, StageDoFn, StageOutput, apply_stage

STAGE = "Aggregate"


class KeyByTextFn(StageDoFn):
    stage = STAGE

    def __init__(self):
        super().__init__(count_in=True, count_out=False)

    def run(self, pair: dict):
        yield normalize_text(pair["text"]), pair


class DropSharedTextFn(StageDoFn):
    stage = STAGE

    def __init__(self, max_images_per_text: int):
        super().__init__(count_in=False, count_out=False)
        self.max_images_per_text = max_images_per_text

    def run(self, keyed: tuple):
        text, pairs = keyed
        pairs = list(pairs)
        images = {p["image_sha1"] for p in pairs}
        for pair in pairs:
            if len(images) > self.max_images_per_text:
                yield Reject("shared_text", pair, f"{len(images)} images share {text[:80]!r}")
            else:
                yield pair["image_sha1"], pair


class BestPairPerImageFn(StageDoFn):
    stage = STAGE

    def __init__(self):
        super().__init__(count_in=False, count_out=True)

    def run(self, keyed: tuple):
        _, pairs = keyed
        kept, others = best_pair(list(pairs))
        pages = {p["page_url"] for p in [kept, *others]}
        texts = {normalize_text(p["text"]) for p in [kept, *others]}
        yield {**kept, "n_pages": len(pages), "n_texts": len(texts)}
        for other in others:
            yield Reject("duplicate_image", other, f"kept text from {kept['page_url']}")


class Aggregate(beam.PTransform):
    """Pair records -> the best pair per image, minus texts shared by too many images."""

    def __init__(self, options):
        super().__init__()
        self.max_images_per_text = options.max_images_per_text

    def expand(self, pairs: beam.PCollection) -> StageOutput:
        by_text = apply_stage(pairs, "KeyByText", KeyByTextFn())
        unshared = apply_stage(by_text.main | "GroupByText" >> beam.GroupByKey(), "DropSharedText",
                               DropSharedTextFn(self.max_images_per_text))
        best = apply_stage(unshared.main | "GroupByImage" >> beam.GroupByKey(), "BestPerImage",
                           BestPairPerImageFn())
        parts = (by_text, unshared, best)
        drops = [p.drops for p in parts] | "FlattenDrops" >> beam.Flatten()
        counts = [p.counts for p in parts] | "FlattenCounts" >> beam.Flatten()
        return StageOutput(best.main, drops, counts)
