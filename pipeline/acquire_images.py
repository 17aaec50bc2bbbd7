"""AcquireImages: get each dominant image's bytes once, from the crawl itself.

First version: pairs and the crawl's image records are keyed by normalised URL and joined
with CoGroupByKey (no global state); a pair whose image the crawl lacks is dropped with
reason `not_in_crawl`. The Images issue adds polite HTTP fetching.
"""

from __future__ import annotations

import apache_beam as beam

from filters.urls import normalize_url
from pipeline.funnel import Reject, StageDoFn, StageOutput, apply_stage


class KeyPairsByImageFn(StageDoFn):
    stage = "AcquireImages"

    def __init__(self):
        super().__init__(count_in=True, count_out=False)

    def run(self, pair: dict):
        yield normalize_url(pair["image_url"]) or pair["image_url"], pair


class JoinImagesFn(StageDoFn):
    stage = "AcquireImages"

    def __init__(self):
        super().__init__(count_in=False, count_out=True)

    def run(self, joined: tuple):
        _, grouped = joined
        images = sorted(grouped["images"], key=lambda r: (r["fetch_time"] or "", r["warc_path"], r["warc_offset"]))
        for pair in grouped["pairs"]:
            if not images:
                yield Reject("not_in_crawl", pair)
            else:
                yield {**pair, "image_bytes": images[-1]["content"], "image_source": "crawl"}


class AcquireImages(beam.PTransform):
    """Pair records -> pair records with `image_bytes`, joined with the crawl's image records."""

    def __init__(self, options, crawl_images: beam.PCollection):
        super().__init__()
        self.options = options
        self.crawl_images = crawl_images

    def expand(self, pairs: beam.PCollection) -> StageOutput:
        keyed = apply_stage(pairs, "KeyPairs", KeyPairsByImageFn())
        images = self.crawl_images | "KeyImages" >> beam.Map(lambda r: (normalize_url(r["url"]) or r["url"], r))
        joined = {"pairs": keyed.main, "images": images} | "JoinByUrl" >> beam.CoGroupByKey()
        out = apply_stage(joined, "Join", JoinImagesFn())
        drops = (keyed.drops, out.drops) | "FlattenDrops" >> beam.Flatten()
        counts = (keyed.counts, out.counts) | "FlattenCounts" >> beam.Flatten()
        return StageOutput(out.main, drops, counts)
