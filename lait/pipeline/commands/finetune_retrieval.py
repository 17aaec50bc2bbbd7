"""Fine-tune an ImageBERT checkpoint for image-text retrieval (the paper's three losses).

Examples:
  lait finetune-retrieval --init-from runs/stage2/last.pt --data out/flickr_train \\
      --regions out/flickr_train_regions --out runs/finetune --max-steps 2000
  lait finetune-retrieval --init-from runs/stage2 --data ... --regions ... --out ... --group-size 8 --margin 0.2

Each matched pair is scored against P-1 in-batch negatives by the ITM head; the loss sums a
binary ITM loss, a multi-class loss over the P candidates and a triplet loss on the hardest
negative (weights: --set retrieval.weight_triplet=0.5 ...). Training flags are `lait train`'s;
evaluate the result with `lait eval-retrieval`.
"""

from __future__ import annotations

import argparse

from lait.errors import UsageError
from lait.pipeline.checks import Number
from lait.pipeline.commands import train as train_command

NAME = "finetune-retrieval"
HELP = "fine-tune an ImageBERT checkpoint for retrieval (binary + multi-class + triplet losses)"
ORDER = 62


def add_arguments(parser: argparse.ArgumentParser) -> None:
    train_command.add_arguments(parser)
    parser.add_argument("--group-size", type=Number(int, 2), default=4, help="P: one positive and P-1 negatives per pair")
    parser.add_argument("--margin", type=Number(float, 0), default=0.2, help="triplet margin on match probabilities")


def main(args: argparse.Namespace, extra: list[str]) -> int:
    from lait.imagebert.finetune import RetrievalConfig, finetune

    if not args.init_from:
        raise UsageError("--init-from is required: the pre-trained checkpoint (RUN/last.pt) to fine-tune")
    if args.group_size < 2:
        raise UsageError("--group-size must be at least 2 (one positive and a negative)")
    retrieval = RetrievalConfig(group_size=args.group_size, margin=args.margin)
    config = train_command.config_from_args(args, objective="retrieval", retrieval=retrieval.to_dict())
    try:
        finetune(config)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return 0
