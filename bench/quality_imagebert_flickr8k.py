"""Quality: stage-1 pre-training on Flickr8k train pairs, zero-shot retrieval on the Flickr8k dev images.

The issue's measurement, end to end through lait's own commands:

1. write the Flickr8k train and dev (image path, caption) lists from ../shared/data/captions as JSONL;
2. ``lait import-pairs`` each list into corpus shards (the images are 224 px: --min_image_side 200);
   where that command is not installed, the pairs are written as corpus shards directly
   (image bytes, SHA-1, caption; no filtering);
3. ``lait regions`` on both corpora (the default EfficientNet-Lite0 region extractor);
4. ``lait train --stage 1 --preset minilm`` on the train corpus;
5. ``lait eval-retrieval`` on the dev corpus: R@1/5/10 both ways, with chance beside.

Prints one JSON object (the eval's metrics plus the run's settings). The full protocol (1,000
dev images x 5,000 captions, 100 regions) wants a GPU; the CPU run of the closing notes (about
25 minutes of import and regions, 45 of training, 20 of scoring 200 x 1,000 pairs on 2 cores):

    nice -n 10 .venv/bin/python bench/quality_imagebert_flickr8k.py --work out/flickr8k \
        --max-steps 1500 --warmup-steps 100 --lr 1.5e-4 --extract-regions 36 --max-regions 16 \
        --max-text-len 32 --dev-images 200
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CAPTIONS = ROOT.parent / "shared" / "data" / "captions"


def caption_rows(limit: int, dev_limit: int = 0) -> list[dict]:
    """captions.tsv rows of the first ``limit`` images of each split (0 = all; ``dev_limit`` for dev)."""
    rows = list(csv.DictReader(open(CAPTIONS / "captions.tsv", encoding="utf-8", newline=""), delimiter="\t",
                               quoting=csv.QUOTE_NONE))
    limits = {"train": limit, "dev": dev_limit or limit}
    keep = {split: set(sorted({r["image"] for r in rows if r["split"] == split})[:limits[split] or None])
            for split in ("train", "dev")}
    return [r for r in rows if r["image"] in keep[r["split"]]]


def write_corpus(rows: list[dict], split: str, out: Path) -> None:
    """Corpus shards of (image, caption) pairs without lait import-pairs (no filtering)."""
    from lait.pipeline.schema import CORPUS_SCHEMA, to_row

    records = []
    for row in rows:
        if row["split"] == split:
            data = (CAPTIONS / "images" / row["image"]).read_bytes()
            records.append({"image_sha1": hashlib.sha1(data).hexdigest(), "image_bytes": data,
                            "image_url": f"file://{CAPTIONS / 'images' / row['image']}", "text": row["caption"],
                            "text_source": "caption", "image_format": "JPEG", "width": 224, "height": 224})
    out.mkdir(parents=True)
    table = pa.Table.from_pylist([to_row(r) for r in records], schema=CORPUS_SCHEMA)
    pq.write_table(table, out / "shard-00000-of-00001.parquet", row_group_size=256)


def write_lists(work: Path, rows: list[dict], names: dict[str, str]) -> dict[str, Path]:
    lists = {}
    for split in ("train", "dev"):
        path = work / f"{names[split]}.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for row in rows:
                if row["split"] == split:
                    f.write(json.dumps({"image": str(CAPTIONS / "images" / row["image"]), "caption": row["caption"]})
                            + "\n")
        lists[split] = path
    return lists


def lait(*args: str) -> str:
    command = [sys.executable, "-m", "lait.pipeline.cli", *args]
    print("+", " ".join(command), file=sys.stderr, flush=True)
    done = subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default="out/flickr8k", help="working directory")
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-n", type=int, default=1000, help="dev images to rank (5 captions each)")
    parser.add_argument("--texts-per-image", type=int, default=0, help="0 = all 5 captions")
    parser.add_argument("--limit", type=int, default=0, help="images per split (0 = all: 1,500 train, 1,000 dev)")
    parser.add_argument("--dev-images", type=int, default=0, help="dev images (the first by name; 0 = --limit)")
    parser.add_argument("--preset", default="minilm")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup-steps", type=int, default=0, help="0 = lait train's default (10%% of the steps)")
    parser.add_argument("--max-regions", type=int, default=100, help="regions per image the model reads")
    parser.add_argument("--extract-regions", type=int, default=0, help="regions per image extracted (0 = --max-regions)")
    parser.add_argument("--max-text-len", type=int, default=40, help="WordPiece tokens per caption")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    rows = caption_rows(args.limit, args.dev_images)
    names = {"train": "train", "dev": f"dev{args.dev_images}" if args.dev_images else "dev"}
    lists = write_lists(work, rows, names)
    have_import = importlib.util.find_spec("lait.pipeline.commands.import_pairs") is not None
    for split, path in lists.items():
        corpus, regions = work / f"{names[split]}_corpus", work / f"{names[split]}_regions"
        if not corpus.exists():
            if have_import:
                lait("import-pairs", "--input", str(path), "--output", str(corpus), "--min_image_side", "200")
            else:
                write_corpus(rows, split, corpus)
        if not regions.exists():
            lait("regions", "--data", str(corpus), "--output", str(regions),
                 "--max_regions", str(args.extract_regions or args.max_regions), "--no_label_probs")
    run = work / "stage1"
    warmup = ["--warmup-steps", str(args.warmup_steps)] if args.warmup_steps else []
    lait("train", "--stage", "1", "--preset", args.preset, "--set", f"max_regions={args.max_regions}",
         "--set", f"max_text_len={args.max_text_len}", "--data", str(work / "train_corpus"),
         "--regions", str(work / "train_regions"), "--out", str(run), "--max-steps", str(args.max_steps),
         *warmup, "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--resume")
    dev = names["dev"]
    out = lait("eval-retrieval", "--ckpt", str(run), "--data", str(work / f"{dev}_corpus"), "--regions",
               str(work / f"{dev}_regions"), "--n", str(args.eval_n), "--texts-per-image", str(args.texts_per_image))
    print(out.splitlines()[:-1] and "\n".join(out.splitlines()[:-1]), file=sys.stderr)
    metrics = json.loads(out.splitlines()[-1])
    metrics.update(bench="imagebert_flickr8k_quality", max_steps=args.max_steps, batch_size=args.batch_size,
                   preset=args.preset, max_regions=args.max_regions, extract_regions=args.extract_regions,
                   max_text_len=args.max_text_len, lr=args.lr, warmup_steps=args.warmup_steps, limit=args.limit,
                   dev_images=args.dev_images,
                   importer="lait import-pairs" if have_import else "direct corpus writer")
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
