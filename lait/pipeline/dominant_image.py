"""DetectDominantImage: one image per page, the one the page is about.

Ranks the candidates ParsePages listed with the learned ranker (loaded once per worker in
`setup`), takes the page's meta image when it passes sanity checks, else the ranker's best
image when it scores at least --min_dominant_score (see `lait.scoring.dominant_image`), and emits
one pair record per page with every text a later stage may use.

Reject reasons: `no_image` (the page names no usable image), `low_score`.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam

from lait.pipeline.funnel import Reject, StageDoFn, StageOutput, apply_stage
from lait.records import PageRecord, PairRecord


class DetectDominantImageFn(StageDoFn):
    stage = "DetectDominantImage"

    def __init__(self, model_path: str | None, min_score: float):
        super().__init__()
        self.model_path = model_path
        self.min_score = min_score

    def setup(self) -> None:
        from lait.scoring.dominant_image import DominantImageDetector

        self.detector = DominantImageDetector(self.model_path, self.min_score)

    def run(self, page: PageRecord) -> Iterator[PairRecord | Reject]:
        from lait.scoring.dominant_image import candidates_from_record

        found = candidates_from_record(page["candidates"], page)
        result = self.detector.detect_found(found)
        if result["image_url"] is None:
            yield Reject(result["reason"], {**page, "dominant_score": result["dominant_score"]},
                         f"{result['candidates']} candidates")
            return
        record = {k: v for k, v in page.items() if k not in ("candidates", "og_image_alt")}
        record.update({k: v for k, v in result.items() if k != "candidates"})
        yield record


class DetectDominantImage(beam.PTransform):
    """Parsed page records -> one (page, dominant image, texts) pair record per page."""

    def __init__(self, options):
        super().__init__()
        self.dofn = DetectDominantImageFn(options.dom_model, options.min_dominant_score)

    def expand(self, pages: beam.PCollection) -> StageOutput:
        return apply_stage(pages, "Detect", self.dofn)
