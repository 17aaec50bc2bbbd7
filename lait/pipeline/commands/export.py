"""Export a corpus to other formats.

Example:
  lait export out/ --format webdataset --output wds/   # wds/00000.tar: KEY.jpg, KEY.txt, KEY.json
  lait export out/ --output wds/ --image_format keep  # images as acquired: KEY.jpg, KEY.png, KEY.webp...
  lait export s3://bucket/corpus --output s3://bucket/wds   # any fsspec URL, in or out (lait[s3], lait[gcs])
"""

from __future__ import annotations

import argparse

from lait import progress, storage
from lait.errors import UsageError
from lait.pipeline import checks
from lait.pipeline.checks import Number
from lait.pipeline.export import IMAGE_FORMATS, export_webdataset
from lait.pipeline.inspect import CorpusError

NAME = "export"
HELP = "export a corpus as WebDataset tar shards"
ORDER = 35


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", help="output directory of 'lait run'")
    parser.add_argument("--format", choices=["webdataset"], default="webdataset", help="output format")
    parser.add_argument("--output", required=True, help="directory for the tar shards")
    parser.add_argument("--samples_per_shard", type=Number(int, 1), default=10_000, help="pairs per tar (default 10000)")
    parser.add_argument("--image_format", choices=IMAGE_FORMATS, default="jpg",
                        help="jpg (default): every image as KEY.jpg, other formats re-encoded to JPEG; png: every "
                             "image as KEY.png; keep: each file as acquired, under its own extension")


def main(args: argparse.Namespace, extra: list[str]) -> int:
    checks.corpus_dir(args.directory, "DIRECTORY")
    checks.output_dir(args.output, "--output")
    if storage.same_location(args.output, args.directory):
        raise UsageError("--output must differ from the corpus DIRECTORY")
    try:
        with progress.Bar(total=_rows(args.directory), desc="lait export", unit="pairs", leave=False) as bar:
            result = export_webdataset(args.directory, args.output, args.samples_per_shard, args.image_format,
                                       on_row=bar.update)
    except CorpusError as error:
        raise UsageError(str(error)) from None
    print(f"wrote {result['samples']} pairs in {result['shards']} tar shards to {result['output']}"
          + (f" ({result['reencoded']} images re-encoded to {args.image_format})" if result["reencoded"] else ""))
    left_out = {reason: result[reason] for reason in ("no_image", "undecodable") if result[reason]}
    if left_out:
        print("left out: " + ", ".join(f"{n} {reason}" for reason, n in left_out.items()))
    return 0


def _rows(directory: str) -> int | None:
    """The corpus's row count from its shards' footers (the bar's total), None when unknown."""
    from lait.pipeline.inspect import shard_paths

    try:
        return sum(storage.parquet_file(path).metadata.num_rows for path in shard_paths(directory))
    except Exception:  # noqa: BLE001 - export itself reports what is wrong with the corpus
        return None
