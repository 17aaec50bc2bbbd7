"""ScoreRelevance: how well each text describes its image.

First version: passes pairs through with `score` left null (no relevance model yet);
the Relevance issue adds the model and the --min_relevance filter.
"""

from __future__ import annotations

import apache_beam as beam

from pipeline.funnel import StageDoFn, StageOutput, apply_stage


class ScoreRelevanceFn(StageDoFn):
    stage = "ScoreRelevance"

    def run(self, pair: dict):
        yield pair


class ScoreRelevance(beam.PTransform):
    """Pair records -> pair records with a relevance `score`."""

    def __init__(self, options):
        super().__init__()
        self.dofn = ScoreRelevanceFn()

    def expand(self, pairs: beam.PCollection) -> StageOutput:
        return apply_stage(pairs, "Score", self.dofn)
