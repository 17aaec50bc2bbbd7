"""Extract object regions (ImageBERT's image tokens) for every image of a corpus.

Examples:
  lait regions --data out/ --output regions/                       # offline EfficientNet-Lite0 regions
  lait regions --data out/ --output regions/ --max_regions 36 --no_label_probs
  lait regions --data out/ --output regions/ --extractor npz --npz_dir bua_features/
  lait regions --data out/ --output regions/ --direct_num_workers 2 --direct_running_mode multi_processing
  lait regions --data out/ --output regions/ --runner dask --dask_workers 2
  lait regions --data s3://bucket/corpus --output s3://bucket/regions      # any fsspec URL (lait[s3])

Writes REGIONS_DIR/regions-HASH.parquet (one row per image, keyed by image_sha1: boxes,
features, labels, label_probs, num_regions), _meta.json (extractor, feature_dim, num_labels,
max_regions, label_names), _funnel.json and _rejects/. `lait train --regions REGIONS_DIR` joins them
with the corpus texts by image_sha1.

--extractor npz reads bottom-up-attention files, one per image, named IMAGE_SHA1.npz, URL_FILE_STEM.npz
(e.g. COCO_val2014_000000000042.npz) or SHA1_OF_URL.npz, with `features`, `boxes` (pixels, with
`image_w`/`image_h`) or `norm_bb`, and `cls_prob`/`soft_labels` or `objects_id`. Feature width and
label count come from the files; label names from --label_names or NPZ_DIR/objects_vocab.txt.

Flags not listed here pass through to Beam's PipelineOptions (--runner, --direct_num_workers, ...).
Without --runner the job runs on Beam's in-process DirectRunner.
"""

from __future__ import annotations

import argparse
import os
import sys

from lait import progress, storage
from lait.errors import UsageError
from lait.pipeline import checks
from lait.pipeline.checks import Number
from lait.pipeline.commands._runner import add_runner_arguments, check_beam_flags, runner_flags, stage_display

NAME = "regions"
HELP = "extract object-region features per image (ImageBERT's image tokens)"
ORDER = 40
PASS_THROUGH = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="CORPUS_DIR", help="corpus directory (shard-*.parquet)")
    parser.add_argument("--output", required=True, metavar="REGIONS_DIR", help="directory for the regions shards")
    parser.add_argument("--extractor", choices=["efficientnet", "npz"], default="efficientnet",
                        help="efficientnet: offline EfficientNet-Lite0 regions (default); "
                             "npz: precomputed bottom-up-attention .npz files from --npz_dir")
    parser.add_argument("--npz_dir", default=None, metavar="DIR", help="directory of .npz files (--extractor npz)")
    parser.add_argument("--label_names", default=None, metavar="FILE",
                        help="label names, one per line (--extractor npz; default NPZ_DIR/objects_vocab.txt)")
    parser.add_argument("--max_regions", type=Number(int, 1), default=100, help="regions kept per image, most confident first "
                                                                      "(default 100, as ImageBERT)")
    parser.add_argument("--input_size", type=Number(int, 64), default=320,
                        help="longer image side fed to EfficientNet, a multiple of 32 (default 320: a 10x10 feature map)")
    parser.add_argument("--nms_iou", type=Number(float, maximum=1, above=0), default=0.3,
                        help="per-label NMS IoU threshold of the EfficientNet extractor (default 0.3, as bottom-up attention)")
    parser.add_argument("--no_label_probs", action="store_true",
                        help="store only each region's top label, not its 1000-class distribution "
                             "(about 60%% fewer bytes: 112 KB instead of 268 KB per image; the trainer's MOC then uses the labels)")
    parser.add_argument("--device", default="", metavar="DEVICE",
                        help="torch device of the extractor: cpu, cuda or cuda:N (default: cuda on a worker that "
                             "has one, else cpu)")
    parser.add_argument("--batch_size", type=Number(int, 1), default=16, help="images per model call (default 16)")
    parser.add_argument("--images_per_shard", type=Number(int, 1), default=500, help="images per regions shard (default 500)")
    parser.add_argument("--rejects_per_reason", type=Number(int, 0), default=20,
                        help="dropped images kept per reason in _rejects/ (default 20)")
    add_runner_arguments(parser)


def _check(args: argparse.Namespace, extra: list[str]) -> None:
    checks.corpus_dir(args.data, "--data")
    checks.output_dir(args.output, "--output")
    if storage.same_location(args.output, args.data):
        raise UsageError("--output must differ from --data")
    if args.max_regions < 1:
        raise UsageError(f"--max_regions must be at least 1, got {args.max_regions}")
    if args.input_size < 64 or args.input_size % 32:
        raise UsageError(f"--input_size must be a multiple of 32 and at least 64, got {args.input_size}")
    if not 0 < args.nms_iou <= 1:
        raise UsageError(f"--nms_iou must be in (0, 1], got {args.nms_iou}")
    if args.batch_size < 1 or args.images_per_shard < 1:
        raise UsageError("--batch_size and --images_per_shard must be at least 1")
    if args.extractor == "npz" and not args.npz_dir:
        raise UsageError("--extractor npz needs --npz_dir DIR (the .npz files)")
    if args.npz_dir and not os.path.isdir(args.npz_dir):
        raise UsageError(f"--npz_dir {args.npz_dir} is not a directory")
    if args.label_names:
        checks.readable_file(args.label_names, "--label_names")
    if args.device:
        checks.torch_device(args.device, "--device")
    if args.extractor == "npz":
        from lait.encoders.region_files import NpzRegionReader

        try:  # reads one file: the width and label count of all
            NpzRegionReader(args.npz_dir, label_names=_label_names(args.label_names))
        except ValueError as error:
            raise UsageError(f"--npz_dir {args.npz_dir}: {error}") from None
    if args.runner:
        from lait.pipeline.options import check_runner

        check_runner(args.runner)
    check_beam_flags(extra, NAME)


def _label_names(path: str | None) -> list[str] | None:
    if not path:
        return None
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def main(args: argparse.Namespace, extra: list[str]) -> int:
    _check(args, extra)
    from apache_beam.options.pipeline_options import PipelineOptions

    from lait.pipeline.funnel import format_funnel, reconcile
    from lait.pipeline.regions import STAGES, ExtractorSpec, RegionsJob, run

    if args.extractor == "npz":
        names = _label_names(args.label_names)
        spec = ExtractorSpec("npz", npz_dir=args.npz_dir, label_names=tuple(names) if names else None,
                             options={"max_regions": args.max_regions})
    else:
        spec = ExtractorSpec("efficientnet", options={
            "max_regions": args.max_regions, "input_size": args.input_size, "batch_size": args.batch_size,
            "nms_iou": args.nms_iou, "with_label_probs": not args.no_label_probs, "device": args.device or None})
    job = RegionsJob(args.data, args.output, spec, max_regions=args.max_regions,
                     images_per_shard=args.images_per_shard, batch_size=args.batch_size,
                     rejects_per_reason=args.rejects_per_reason)
    with stage_display("lait regions", STAGES), runner_flags(args, extra) as flags:
        funnel = run(job, PipelineOptions(flags, **({"runner": args.runner} if args.runner else {})))
    if progress.verbosity() > progress.QUIET:
        print(format_funnel(funnel))
    for problem in reconcile(funnel):
        print(f"warning: funnel does not reconcile: {problem}", file=sys.stderr)
    written = funnel["stages"][-1]["out"]
    print(f"regions of {written} images written to {args.output}")
    return 0
