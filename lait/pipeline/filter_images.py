"""FilterImages: keep natural, safe photos large enough to learn from, and hash them.

The LAIT recipe: both sides larger than 300 px, no pornographic or racy images, and a binary
classifier that removes non-natural, non-realistic images. The work is Beam-free in
`lait.filters.image_filter.ImageFilter` (safe decode, size and aspect ratio, NSFW, naturalness,
SHA-1 and perceptual hash); this module batches pairs (`BatchElements`, so both models run
on batches), loads the models once per worker process, with the first image worth scoring
(DoFn instances and threads of a process share one copy), and turns failing verdicts into
`Reject`s: too_small, aspect_ratio, decompression_bomb, corrupt_image, unsupported_format,
not_natural, nsfw. An image whose check raises all the same is dropped as `filter_error`
with the error, never taking its batch or the job down.
"""

from __future__ import annotations

import apache_beam as beam

from lait.filters.image_filter import ImageFilter
from lait.pipeline.funnel import IN, Reject, StageDoFn, StageOutput, apply_stage

BATCH_SIZE = 16


class FilterImagesFn(StageDoFn):
    """A batch of pair records with `image_bytes` -> the kept pairs, with the filter's fields."""

    stage = "FilterImages"

    def __init__(self, settings: dict):
        super().__init__(count_in=False, count_out=True)
        self.settings = settings

    def setup(self) -> None:
        # The models (about 1.5 s and 100 MB per worker) load with the first image that passes
        # the decode and size checks: a worker whose images are all too small or broken never
        # needs them. They load once per process all the same (ImageFilter shares one copy).
        self.image_filter = ImageFilter(**self.settings)

    def run(self, pairs: list[dict]):
        self.count(IN, len(pairs))
        files = [pair.get("image_bytes") or b"" for pair in pairs]
        for pair, verdict in zip(pairs, self.results_or_errors(self.image_filter.check, files)):
            if isinstance(verdict, Exception):
                yield Reject("filter_error", pair, f"{type(verdict).__name__}: {verdict}")
                continue
            record = {**pair, **verdict.fields()}
            if verdict.kept:
                yield record
            else:
                yield Reject(verdict.reasons[0], record, verdict.detail or ", ".join(verdict.reasons))


def filter_settings(options) -> dict:
    """ImageFilter keyword arguments from the FilterImages options group; bad values are a UsageError."""
    from lait.errors import UsageError

    for name in ("max_nsfw", "min_natural"):
        if not 0.0 <= getattr(options, name) <= 1.0:
            raise UsageError(f"--{name} must be between 0 and 1, got {getattr(options, name)}")
    for name in ("min_image_side", "max_aspect_ratio", "max_image_pixels"):
        if getattr(options, name) < 0:
            raise UsageError(f"--{name} must not be negative (0 disables the check), got {getattr(options, name)}")
    return {"min_side": options.min_image_side, "max_aspect_ratio": options.max_aspect_ratio,
            "max_pixels": options.max_image_pixels, "max_nsfw": options.max_nsfw,
            "min_natural": options.min_natural, "threads": worker_threads(options), "device": options.device or None}


def worker_threads(options) -> int | None:
    """Network threads per worker process: one where a worker process runs per core, else None.

    DirectRunner's multi_processing workers and other runners' workers (a process per core)
    get one thread each for torch and onnxruntime, so the workers together use each core once;
    before, every process ran torch on all cores. None (torch's own setting, onnxruntime on one
    thread) for DirectRunner in one process and for `lait filter-image`. Measured on 2 cores
    (EfficientNet, batches of 16): 2 threads instead of 1 cost 1.15 times the CPU per image for
    1.7 times the speed while the cores were free, and up to 6 times the CPU when other
    processes were busy on them (threads waiting on a shared core).
    """
    if not hasattr(options, "view_as"):
        return None
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

    runner = options.view_as(StandardOptions).runner
    if runner not in (None, "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner"):
        return 1
    direct = options.view_as(DirectOptions)
    return 1 if direct.direct_running_mode == "multi_processing" else None


class FilterImages(beam.PTransform):
    """Pair records with bytes -> pair records that pass the image filters."""

    def __init__(self, options):
        super().__init__()
        self.dofn = FilterImagesFn(filter_settings(options))

    def expand(self, pairs: beam.PCollection) -> StageOutput:
        batches = pairs | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=BATCH_SIZE)
        return apply_stage(batches, "Filter", self.dofn)
