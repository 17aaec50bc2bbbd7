"""Zero-shot image and text retrieval R@1/5/10 of an ImageBERT checkpoint, with the ITM head.

Examples:
  lait eval-retrieval --ckpt runs/stage1/last.pt --data out/flickr_dev --regions out/flickr_dev_regions
  lait eval-retrieval --ckpt runs/stage1 --data out/dev --regions out/dev_regions --n 100 --texts-per-image 1

Takes the first N images of the regions shards that have texts in the corpus, with all their
texts (Flickr: 5 each), and scores every (image, text) pair: N x texts forward passes, so on a
CPU keep N small (100 images x 500 texts is about 50,000 passes). Prints a table with rows R@1,
R@5, R@10 (image retrieval: a text finds its image; text retrieval: an image finds one of its
texts) next to chance, then one JSON line.
"""

from __future__ import annotations

import argparse
import json

from lait.errors import UsageError
from lait.pipeline import checks
from lait.pipeline.checks import Number

NAME = "eval-retrieval"
HELP = "zero-shot image/text retrieval R@1/5/10 of an ImageBERT checkpoint"
ORDER = 61


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", required=True, help="checkpoint: RUN/last.pt or the run directory")
    parser.add_argument("--data", required=True, help="corpus shard directory with the evaluation texts")
    parser.add_argument("--regions", required=True, help="regions shard directory of the evaluation images")
    parser.add_argument("--n", type=Number(int, 1), default=1000, help="images to rank (default 1000, the paper's 1k test)")
    parser.add_argument("--texts-per-image", type=Number(int, 0), default=0, help="texts kept per image (0 = all)")
    parser.add_argument("--batch-size", type=Number(int, 1), default=256, help="pairs per forward pass")
    parser.add_argument("--device", default="", help="cpu or cuda (default: cuda when available)")


def main(args: argparse.Namespace, extra: list[str]) -> int:
    from lait.imagebert.evaluate import evaluate_retrieval, format_table

    checks.checkpoint(args.ckpt, "--ckpt")
    checks.parquet_dir(args.data, "--data")
    checks.regions_dir(args.regions, "--regions")
    if args.device:
        checks.torch_device(args.device, "--device")
    try:
        metrics = evaluate_retrieval(args.ckpt, args.data, args.regions, args.n, args.texts_per_image,
                                     args.batch_size, args.device)
    except ValueError as error:
        raise UsageError(str(error)) from None
    print(format_table(metrics, metrics["chance"]))
    print(json.dumps(metrics))
    return 0
