"""Run the image filters of `lait run` (FilterImages) on image files and say what they decide.

One JSON line per file, in order:
  {"path", "width", "height", "format", "nsfw", "face", "natural", "sha1", "phash", "kept", "reasons"}
`reasons` lists why the file would be dropped (too_small, aspect_ratio, decompression_bomb,
corrupt_image, unsupported_format, not_natural, nsfw); `kept` is true when it is empty.
Thresholds are the same options, with the same defaults, as `lait run`. Every file that
decodes is scored and all its reasons are listed (the pipeline stops at the first: it does
not decode images that fail the size checks, nor run NSFW on non-natural ones).

Examples:
  lait filter-image photo.jpg logo.png
  lait filter-image crawl_images/*.jpg --min_image_side 0 --min_natural 0.7
"""

from __future__ import annotations

import argparse
import json
import os

from apache_beam.options.pipeline_options import PipelineOptions

from lait import progress
from lait.errors import UsageError
from lait.pipeline.checks import FRACTION, Number, model_file, torch_device

NAME = "filter-image"
HELP = "check image files with the FilterImages filters (size, NSFW, naturalness); one JSON line each"
ORDER = 45
BATCH_SIZE = 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lait.pipeline.options import LaitOptions

    defaults = PipelineOptions([]).view_as(LaitOptions)
    parser.add_argument("files", nargs="+", metavar="FILE", help="image files")
    parser.add_argument("--min_image_side", type=Number(int, 0), default=defaults.min_image_side,
                        help=f"width and height must both be larger (default {defaults.min_image_side}; 0 disables)")
    parser.add_argument("--max_aspect_ratio", type=Number(float, 1, off=0), default=defaults.max_aspect_ratio,
                        help=f"longer / shorter side above this fails (default {defaults.max_aspect_ratio:g}; 0 disables)")
    parser.add_argument("--max_image_pixels", type=Number(int, 1), default=defaults.max_image_pixels,
                        help=f"more pixels is a decompression bomb (default {defaults.max_image_pixels})")
    parser.add_argument("--max_nsfw", type=FRACTION, default=defaults.max_nsfw,
                        help=f"NSFW score above this fails (default {defaults.max_nsfw:g})")
    parser.add_argument("--min_natural", type=FRACTION, default=defaults.min_natural,
                        help=f"natural-photo probability below this fails (default {defaults.min_natural:g})")
    parser.add_argument("--naturalness_model", default=None,
                        help="naturalness model file (default: the model shipped with lait)")
    parser.add_argument("--device", default=defaults.device, metavar="DEVICE",
                        help="torch device of EfficientNet-Lite0: cpu, cuda or cuda:N (default: cuda when there is one)")


def main(args: argparse.Namespace, extra: list[str]) -> int:
    from lait.filters.image_filter import ImageFilter
    from lait.pipeline.filter_images import filter_settings

    missing = [path for path in args.files if not os.path.isfile(path)]
    if missing:
        raise UsageError(f"no such file: {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if args.device:
        torch_device(args.device, "--device")
    unreadable = [path for path in args.files if not os.access(path, os.R_OK)]
    if unreadable:
        raise UsageError(f"cannot read {unreadable[0]}: permission denied")
    if args.naturalness_model:
        from lait.filters.naturalness import NaturalnessClassifier

        model_file(args.naturalness_model, "--naturalness_model", NaturalnessClassifier.load)
    image_filter = ImageFilter(**filter_settings(args), score_all=True, naturalness_model=args.naturalness_model)
    with progress.Bar(total=len(args.files), desc="lait filter-image", unit="images", leave=False) as bar:
        for start in range(0, len(args.files), BATCH_SIZE):
            paths = args.files[start:start + BATCH_SIZE]
            files = []
            for path in paths:
                with open(path, "rb") as f:
                    files.append(f.read())
            for path, verdict in zip(paths, image_filter.check(files)):
                bar.write(json.dumps({
                    "path": path, "width": verdict.width, "height": verdict.height, "format": verdict.image_format,
                    "nsfw": verdict.nsfw_score, "face": verdict.face_score, "natural": verdict.natural_score,
                    "sha1": verdict.image_sha1, "phash": verdict.image_phash, "kept": verdict.kept,
                    "reasons": verdict.reasons,
                }))
            bar.update(len(paths))
    return 0
