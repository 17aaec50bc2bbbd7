"""Look at a corpus written by `lait run`: its size, funnel and some rows.

Examples:
  lait inspect out/
  lait inspect out/ --sample 5
"""

from __future__ import annotations

import argparse
import glob
import json
import os

import pyarrow.dataset as ds

from pipeline.cli import UsageError
from pipeline.funnel import format_funnel

NAME = "inspect"
HELP = "summarise a corpus directory: shards, rows, funnel, sample rows"
ORDER = 30
SAMPLE_COLUMNS = ["text", "image_url", "page_url", "width", "height", "score", "text_source"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", help="output directory of 'lait run'")
    parser.add_argument("--sample", type=int, default=0, metavar="N", help="print the first N rows")


def main(args: argparse.Namespace, extra: list[str]) -> int:
    shards = sorted(glob.glob(os.path.join(args.directory, "shard-*.parquet")))
    if not shards:
        raise UsageError(f"no shard-*.parquet files in {args.directory}: run 'lait run --output {args.directory}' first")
    dataset = ds.dataset(shards, format="parquet")
    size = sum(os.path.getsize(path) for path in shards)
    print(f"{len(shards)} shards, {dataset.count_rows()} rows, {size / 2**20:.1f} MiB")
    funnel_path = os.path.join(args.directory, "_funnel.json")
    if os.path.exists(funnel_path):
        with open(funnel_path) as f:
            print(format_funnel(json.load(f)))
    if args.sample:
        table = dataset.head(args.sample, columns=SAMPLE_COLUMNS)
        for row in table.to_pylist():
            print(json.dumps(row, ensure_ascii=False))
    return 0
