"""CleanText: choose and clean each image's description.

First version: the figcaption, else the alt text, whitespace-normalised, within the word
bounds. The Alt text issue replaces this with the full rule set.
"""

from __future__ import annotations

import apache_beam as beam

from pipeline.funnel import Reject, StageDoFn, StageOutput, apply_stage


class CleanTextFn(StageDoFn):
    stage = "CleanText"

    def __init__(self, min_words: int, max_words: int):
        super().__init__()
        self.min_words = min_words
        self.max_words = max_words

    def run(self, pair: dict):
        for source in ("figcaption", "alt", "title"):
            text = " ".join((pair.get(source) or "").split())
            if text:
                break
        else:
            yield Reject("no_text", pair)
            return
        words = len(text.split())
        if words < self.min_words:
            yield Reject("too_short", pair, text)
        elif words > self.max_words:
            yield Reject("too_long", pair, text)
        else:
            yield {**pair, "text": text, "text_source": source}


class CleanText(beam.PTransform):
    """Pair records -> pair records with a clean `text` and its `text_source`."""

    def __init__(self, options):
        super().__init__()
        self.dofn = CleanTextFn(options.min_words, options.max_words)

    def expand(self, pairs: beam.PCollection) -> StageOutput:
        return apply_stage(pairs, "Clean", self.dofn)
