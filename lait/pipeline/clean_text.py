"""CleanText: choose and clean each image's description.

Thin Beam wiring over :mod:`lait.filters.description` (which candidate wins: alt, figcaption,
og:image:alt, title, context), :mod:`lait.filters.text_rules` (the named cleaning rules) and
:mod:`lait.filters.caption_quality` (the learned caption score, after the hard rules). A pair
keeps its raw candidates and gains `text`, `text_source` and `text_language_score`; a pair
with no usable description becomes a `Reject` whose reason is the rule that stopped its best
candidate (`file_name`, `too_short`, `language`, `low_caption_score` with the score in the
detail...), or `no_text`.

Pairs are batched (`BatchElements`, as `RunInference` does) so that the rules run over a batch
and fastText then scores the batch's survivors in one go, which keeps its model in the CPU cache.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam

from lait.filters.description import PAGE_SOURCES, SOURCES, DescriptionChooser
from lait.filters.text_rules import TextCleaner
from lait.pipeline.funnel import IN, Reject, StageDoFn, StageOutput, apply_stage
from lait.records import PairRecord


class CleanTextFn(StageDoFn):
    """A batch of pair records -> each record with its description, or a Reject."""

    stage = "CleanText"

    def __init__(self, min_words: int, max_words: int, max_rare_word_ratio: float, min_language_score: float,
                 headline_text: bool, min_caption_score: float | None):
        super().__init__(count_in=False)  # a batch is many pairs: `run` counts them
        self.order = SOURCES if headline_text else tuple(s for s in SOURCES if s not in PAGE_SOURCES)
        self.min_words = min_words
        self.max_words = max_words
        self.max_rare_word_ratio = max_rare_word_ratio
        self.min_language_score = min_language_score
        self.min_caption_score = min_caption_score

    @classmethod
    def from_options(cls, options) -> CleanTextFn:
        """The stage's settings from :class:`LaitOptions`, where each default is defined."""
        return cls(options.min_words, options.max_words, options.max_rare_word_ratio,
                   options.min_text_language_score, options.headline_text, options.min_caption_score)

    def setup(self) -> None:
        # fastText, the vocabulary and the caption model load once per worker, not per bundle.
        cleaner = TextCleaner(min_words=self.min_words, max_words=self.max_words,
                              max_rare_word_ratio=self.max_rare_word_ratio,
                              min_language_score=self.min_language_score,
                              min_caption_score=self.min_caption_score).load()
        self.chooser = DescriptionChooser(cleaner, order=self.order)

    def run(self, pairs: list[PairRecord]) -> Iterator[PairRecord | Reject]:
        self.count(IN, len(pairs))
        for pair, description in zip(pairs, self.chooser.choose_batch(pairs)):
            if description.kept:
                yield {**pair, "text": description.text, "text_source": description.source,
                       "text_language_score": description.language_score, "needs_face": description.needs_face}
            else:
                yield Reject(description.reason, pair, description.detail)


class CleanText(beam.PTransform):
    """Pair records -> pair records with a clean `text` and its `text_source`."""

    def __init__(self, options, max_batch_size: int = 256):
        super().__init__()
        self.max_batch_size = max_batch_size
        self.dofn = CleanTextFn.from_options(options)

    def expand(self, pairs: beam.PCollection) -> StageOutput:
        batches = pairs | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=self.max_batch_size)
        return apply_stage(batches, "Clean", self.dofn)
