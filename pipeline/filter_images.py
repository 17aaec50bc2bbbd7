"""FilterImages: keep images large enough to learn from, and hash them.

First version: decode the header with Pillow, drop images whose sides are not larger than
--min_image_side, compute the SHA-1 of the bytes. The Images issue adds safe full decoding,
NSFW and naturalness scores and the perceptual hash.
"""

from __future__ import annotations

import hashlib
import io

import apache_beam as beam
from PIL import Image, UnidentifiedImageError

from pipeline.funnel import Reject, StageDoFn, StageOutput, apply_stage


class FilterImagesFn(StageDoFn):
    stage = "FilterImages"

    def __init__(self, min_image_side: int):
        super().__init__()
        self.min_image_side = min_image_side

    def run(self, pair: dict):
        try:
            with Image.open(io.BytesIO(pair["image_bytes"])) as image:
                width, height, image_format = image.width, image.height, image.format
        except (UnidentifiedImageError, OSError, ValueError) as error:
            yield Reject("corrupt_image", pair, str(error))
            return
        if min(width, height) <= self.min_image_side:
            yield Reject("too_small", {**pair, "width": width, "height": height}, f"{width}x{height}")
            return
        yield {**pair, "width": width, "height": height, "image_format": image_format,
               "image_sha1": hashlib.sha1(pair["image_bytes"]).hexdigest()}


class FilterImages(beam.PTransform):
    """Pair records with bytes -> pair records that pass the image filters."""

    def __init__(self, options):
        super().__init__()
        self.dofn = FilterImagesFn(options.min_image_side)

    def expand(self, pairs: beam.PCollection) -> StageOutput:
        return apply_stage(pairs, "Filter", self.dofn)
