"""ScoreRelevance: how well each text describes its image, and the --min_relevance filter.

Each pair gets `score`, the calibrated probability of the relevance model
(:mod:`lait.scoring.relevance`, LAIT's "weak image-text semantic model" over text, image and
cross-modal features). Pairs below --min_relevance are dropped with reason
`low_relevance` (their score is kept in the reject entry). Before that, a pair whose text
CleanText kept only because it names a person (`needs_face`) is dropped as `no_face` when
its image's face score is below --min_face: the text says who is shown, and no one is. Pairs are scored in batches
(`BatchElements`), and each worker loads the models once, in `DoFn.setup`.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
from apache_beam.utils import shared

from lait.pipeline.funnel import IN, Reject, StageDoFn, StageOutput, apply_stage
from lait.records import NETWORK_OUTPUT_KEYS, PairRecord

MIN_BATCH, MAX_BATCH = 8, 64
# Scores are rounded so that float noise of batched kernels cannot change a shard's bytes.
SCORE_DECIMALS = 4


class _Scorer:
    """The model and its feature extractor (a class so that `shared.Shared` can hold it)."""

    def __init__(self, model_path: str | None, device: str | None):
        from lait.encoders.efficientnet import default_device
        from lait.scoring.relevance import RelevanceModel

        self.model = RelevanceModel.load(model_path)
        self.extractor = self.model.feature_extractor(device=device or default_device())


class ScoreRelevanceFn(StageDoFn):
    """Scores a batch of pairs; yields kept pairs with `score` and `low_relevance` rejects."""

    stage = "ScoreRelevance"

    def __init__(self, min_relevance: float, model_path: str | None = None, device: str | None = None,
                 min_face: float = 0.5):
        super().__init__(count_in=False)  # input is counted per pair, not per batch
        self.min_relevance = min_relevance
        self.min_face = min_face
        self.model_path = model_path
        self.device = device  # None: cuda where the worker has one, resolved on the worker
        # One copy of the models per worker process, whatever the number of DoFn threads.
        self._shared = shared.Shared()

    def setup(self) -> None:
        # The models (about 3 CPU-seconds per worker) load with the first batch, as FilterImages'
        # do: a run whose images all fell out before this stage never needs them.
        self._scorer = None

    def _load(self) -> _Scorer:
        if self._scorer is None:
            # Shared keeps a weak reference: holding the scorer keeps it alive.
            self._scorer = self._shared.acquire(lambda: _Scorer(self.model_path, self.device),
                                                tag=f"{self.model_path}@{self.device}")
        return self._scorer

    def _scores(self, pairs: list[dict]) -> list[float | Exception]:
        scorer = self._load()
        return self.results_or_errors(lambda batch: [float(s) for s in scorer.model.score_pairs(scorer.extractor, batch)],
                                      pairs)

    def run(self, batch: list[PairRecord]) -> Iterator[PairRecord | Reject]:
        self.count(IN, len(batch))
        scorable = []
        for pair in batch:
            face = pair.get("face_score") or 0.0
            if pair.get("needs_face") and face < self.min_face:
                yield Reject("no_face", pair, f"face_score {face:.3f} < {self.min_face}: "
                                              f"the {pair.get('text_source')} names a person")
            else:
                scorable.append(pair)
        if not scorable:
            return
        for pair, score in zip(scorable, self._scores(scorable)):
            if isinstance(score, Exception):
                yield Reject("relevance_error", pair, f"{type(score).__name__}: {score}")
                continue
            # The network outputs FilterImages handed over are spent: later stages do not carry them.
            scored = {k: v for k, v in pair.items() if k not in NETWORK_OUTPUT_KEYS}
            scored["score"] = round(score, SCORE_DECIMALS)
            if scored["score"] < self.min_relevance:
                yield Reject("low_relevance", scored, f"score {scored['score']:.3f} < {self.min_relevance}")
            else:
                yield scored


class ScoreRelevance(beam.PTransform):
    """Pair records -> pair records with a relevance `score` in [0, 1], low ones dropped."""

    def __init__(self, options):
        super().__init__()
        if not 0.0 <= options.min_relevance <= 1.0:
            raise ValueError(f"--min_relevance must be in [0, 1], got {options.min_relevance}")
        self.dofn = ScoreRelevanceFn(options.min_relevance, options.relevance_model, options.device or None,
                                     options.min_face)

    def expand(self, pairs: beam.PCollection) -> StageOutput:
        batches = pairs | "Batch" >> beam.BatchElements(min_batch_size=MIN_BATCH, max_batch_size=MAX_BATCH)
        return apply_stage(batches, "Score", self.dofn)
