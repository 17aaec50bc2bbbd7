"""Aggregate: one text per image, near-duplicate images merged, shared texts dropped.

The LAIT recipe: an image found on several pages keeps only its best-scored text; if too
many images share one description, all those pairs are removed. Every step is a Beam
grouping, so nothing needs global state or all-pairs comparison on a cluster:

1. Image identity. Exact copies share `image_sha1`. Near-duplicates (resized or re-encoded
   copies) have perceptual hashes within --phash_distance bits; LSH banding turns that into
   grouping keys (`lait.filters.duplicates.phash_bands`), candidate pairs are verified inside each
   bucket, and every image takes the smallest SHA-1 within two hops of its links as its
   `image_id`.
2. Shared text: pairs grouped by normalised text; a text used by more than
   --max_images_per_text distinct images drops all its pairs (`shared_text`).
3. Best text: pairs grouped by `image_id`; the best-scored pair is kept with `n_pages` and
   `n_texts`, the others are dropped as `duplicate_image`.

Only the small fields go through these groupings; image bytes (one copy per SHA-1, combined
before the shuffle) are joined back to the kept pairs at the end, so the bytes of a crawl
cross the network once, not three times.
"""

from __future__ import annotations

import apache_beam as beam

from lait.filters.duplicates import best_pair, near_duplicate_links, normalize_text, phash_bands
from lait.pipeline.funnel import Reject, StageDoFn, StageOutput, apply_stage

STAGE = "Aggregate"


class KeyByImageFn(StageDoFn):
    stage = STAGE

    def __init__(self):
        super().__init__(count_in=True, count_out=False)

    def run(self, pair: dict):
        yield pair["image_sha1"], pair


class DropSharedTextFn(StageDoFn):
    stage = STAGE

    def __init__(self, max_images_per_text: int):
        super().__init__(count_in=False, count_out=False)
        self.max_images_per_text = max_images_per_text

    def run(self, keyed: tuple):
        text, grouped = keyed
        pairs = list(grouped["pairs"])
        # Images that reach Aggregate, or (when known) every image the text described before
        # the image and relevance filters thinned them out: boilerplate is boilerplate either way.
        images = max(len({p["image_id"] for p in pairs}), max(grouped["described"], default=0))
        for pair in pairs:
            if images > self.max_images_per_text:
                yield Reject("shared_text", pair, f"{images} images share {text[:80]!r}")
            else:
                yield pair["image_id"], pair


class BestPairPerImageFn(StageDoFn):
    stage = STAGE

    def __init__(self):
        super().__init__(count_in=False, count_out=True)

    def run(self, keyed: tuple):
        _, pairs = keyed
        kept, others = best_pair(list(pairs))
        everyone = [kept, *others]
        result = {k: v for k, v in kept.items() if k != "image_id"}
        result["n_pages"] = len({p["page_url"] for p in everyone})
        result["n_texts"] = len({normalize_text(p["text"]) for p in everyone})
        yield result
        for other in others:
            yield Reject("duplicate_image", other, f"kept the text from {kept['page_url']}")


def _without_bytes(pair: dict) -> dict:
    return {k: v for k, v in pair.items() if k != "image_bytes"}


def _first(values):
    return next(iter(values), None)


def _with_bytes(joined: tuple):
    _, grouped = joined
    data = next(iter(grouped["bytes"]), None)
    for pair in grouped["pairs"]:
        yield {**pair, "image_bytes": data}


def _second_hop(joined: tuple):
    """Every image whose first-hop representative is `rep` takes min(rep, rep's own representative)."""
    rep, grouped = joined
    own = min(grouped["own"], default=rep)
    for member in grouped["members"]:
        yield member, min(rep, own)


def _with_image_id(joined: tuple):
    _, grouped = joined
    image_id = grouped["image_id"][0]
    for pair in grouped["pairs"]:
        yield {**pair, "image_id": image_id}


class ImagesPerText(beam.PTransform):
    """Pair records -> (normalised text, number of distinct image URLs it describes), for Aggregate."""

    def expand(self, pairs: beam.PCollection) -> beam.PCollection:
        return (
            pairs
            | "TextAndImage" >> beam.Map(lambda p: (normalize_text(p["text"]), p["image_url"]))
            | "Distinct" >> beam.Distinct()
            | "CountImages" >> beam.combiners.Count.PerKey()
        )


class ImageIdentity(beam.PTransform):
    """(sha1, pair) -> pairs with `image_id`: the representative SHA-1 of its near-duplicate group."""

    def __init__(self, max_distance: int):
        super().__init__()
        self.max_distance = max_distance

    def expand(self, keyed_pairs: beam.PCollection) -> beam.PCollection:
        d = self.max_distance
        images = (
            keyed_pairs
            | "ImageHashes" >> beam.Map(lambda kv: (kv[0], kv[1].get("image_phash") or ""))
            | "DistinctImages" >> beam.Distinct()
        )
        links = (
            images
            | "BandKeys" >> beam.FlatMap(lambda im: [(band, im) for band in phash_bands(im[1], d)] if im[1] else [])
            | "GroupByBand" >> beam.GroupByKey()
            | "VerifyBucket" >> beam.FlatMap(lambda kv: near_duplicate_links(list(kv[1]), d))
            | "BothWays" >> beam.FlatMap(lambda ab: [ab, ab[::-1]])
        )
        selves = images | "Self" >> beam.Map(lambda im: (im[0], im[0]))
        first_hop = (links, selves) | "Neighbours" >> beam.Flatten() | "MinNeighbour" >> beam.CombinePerKey(min)
        members = first_hop | "Invert" >> beam.Map(lambda kv: (kv[1], kv[0]))
        image_ids = (
            {"own": first_hop, "members": members}
            | "JoinRepresentatives" >> beam.CoGroupByKey()
            | "SecondHop" >> beam.FlatMap(_second_hop)
        )
        return (
            {"pairs": keyed_pairs, "image_id": image_ids}
            | "JoinImageIds" >> beam.CoGroupByKey()
            | "WithImageId" >> beam.FlatMap(_with_image_id)
        )


class Aggregate(beam.PTransform):
    """Pair records -> the best pair per image, near-duplicates merged, shared texts dropped."""

    def __init__(self, options, described: beam.PCollection | None = None):
        super().__init__()
        self.max_images_per_text = options.max_images_per_text
        self.phash_distance = options.phash_distance
        self.described = described

    def expand(self, pairs: beam.PCollection) -> StageOutput:
        keyed = apply_stage(pairs, "KeyByImage", KeyByImageFn())
        # The groupings below move only the small fields; each image's bytes travel once, to
        # the pairs that are kept.
        light = keyed.main | "WithoutBytes" >> beam.MapTuple(lambda sha1, pair: (sha1, _without_bytes(pair)))
        image_bytes = (keyed.main
                       | "BytesBySha1" >> beam.MapTuple(lambda sha1, pair: (sha1, pair.get("image_bytes")))
                       | "OneCopyPerImage" >> beam.CombinePerKey(_first))
        identified = light | "ImageIdentity" >> ImageIdentity(self.phash_distance)
        by_text = identified | "KeyByText" >> beam.Map(lambda p: (normalize_text(p["text"]), p))
        described = self.described if self.described is not None else (
            by_text.pipeline | "NothingDescribed" >> beam.Create([]))
        grouped = {"pairs": by_text, "described": described} | "GroupByText" >> beam.CoGroupByKey()
        unshared = apply_stage(grouped | "TextsInUse" >> beam.Filter(lambda kv: bool(kv[1]["pairs"])),
                               "DropSharedText", DropSharedTextFn(self.max_images_per_text))
        best = apply_stage(unshared.main | "GroupByImage" >> beam.GroupByKey(), "BestPerImage",
                           BestPairPerImageFn())
        kept = (
            {"pairs": best.main | "KeyKept" >> beam.Map(lambda p: (p["image_sha1"], p)), "bytes": image_bytes}
            | "JoinBytes" >> beam.CoGroupByKey()
            | "WithBytes" >> beam.FlatMap(_with_bytes)
        )
        parts = (keyed, unshared, best)
        drops = [p.drops for p in parts] | "FlattenDrops" >> beam.Flatten()
        counts = [p.counts for p in parts] | "FlattenCounts" >> beam.Flatten()
        return StageOutput(kept, drops, counts)
