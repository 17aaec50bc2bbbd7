"""Train the image-text relevance model and write the file `lait run` ships with.

Examples:
  lait train-relevance                                   # ../shared/data -> lait/scoring/models/relevance.npz
  lait train-relevance --captions DIR --alts FILE --output my_relevance.npz
  lait train-relevance --webcrawl ''                     # without the labelled web pairs
  lait run ... --relevance_model my_relevance.npz        # use it in the pipeline

Positives are human captions of Flickr8k train photos (DIR/captions.tsv, DIR/images/);
negatives are captions of other photos (random, and hard ones whose photo has the same
predicted ImageNet class) and junk alt texts from web pages (FILE, lines with
"label": "junk") shown with real photos. Web pairs come from the labelled webcrawl
(WARCS with their images, LABELS from bench/labels/webcrawl.jsonl): each labelled lead photo
with the texts of its page that describe it (positives), with the page's other texts, and
with another page's describing text (negatives). The dev photos are held out and only
measured: the figures are printed and stored in the model; the source-grouped figures come
from bench/bench_relevance_grouped.py.
The model file holds numeric arrays and JSON only (loaded with numpy, allow_pickle=False).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lait.errors import UsageError
from lait.pipeline import checks
from lait.pipeline.checks import Number

NAME = "train-relevance"
HELP = "train the image-text relevance model (Flickr8k captions, junk alt texts, labelled web pairs)"
ORDER = 60

_REPO = Path(__file__).resolve().parents[3]
_SHARED = _REPO.parent / "shared" / "data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--captions", type=Path, default=_SHARED / "captions",
                        help="folder with captions.tsv (image, split, caption_index, caption) and images/ "
                             "(default ../shared/data/captions)")
    parser.add_argument("--alts", type=Path, default=_SHARED / "alts" / "alts.jsonl",
                        help="JSON lines with text and label; label junk becomes a negative (default ../shared/data/alts/alts.jsonl)")
    parser.add_argument("--webcrawl", default=str(_SHARED / "webcrawl"),
                        help="folder of labelled WARC files with their images (default ../shared/data/webcrawl; "
                             "'' for no web pairs)")
    parser.add_argument("--webcrawl_labels", type=Path, default=_REPO / "bench" / "labels" / "webcrawl.jsonl",
                        help="labels of --webcrawl (default bench/labels/webcrawl.jsonl)")
    parser.add_argument("--output", type=Path, default=None,
                        help="model file to write (default: lait/scoring/models/relevance.npz, the shipped model)")
    parser.add_argument("--cache", default="out/relevance_cache",
                        help="folder for image encodings reused between runs (default out/relevance_cache; '' for none)")
    parser.add_argument("--seed", type=Number(int, 0), default=0, help="random seed for pair sampling and training (default 0)")
    parser.add_argument("--max_iter", type=Number(int, 1), default=300, help="boosting iterations (default 300)")
    parser.add_argument("--projection_epochs", type=Number(int, 1), default=6,
                        help="epochs of the image-text projection (default 6)")
    parser.add_argument("--max_photos", type=Number(int, 1), default=None,
                        help="use only the first N photos of each split (a quick smoke run, not for shipping)")
    parser.add_argument("--evaluate_only", action="store_true",
                        help="do not train: print the held-out figures of --output (or the shipped model)")


def main(args: argparse.Namespace, extra: list[str]) -> int:
    from lait.scoring.relevance import DEFAULT_MODEL_PATH
    from lait.scoring.relevance_training import evaluate, train

    if not (args.captions / "captions.tsv").exists():
        raise UsageError(f"{args.captions} has no captions.tsv: give --captions DIR (see ../shared/data/captions/README.md)")
    if args.alts and not args.alts.exists():
        raise UsageError(f"no alt-text file at {args.alts}: give --alts FILE")
    checks.readable_file(args.alts, "--alts")
    warcs = sorted(Path(args.webcrawl).glob("*.warc.gz")) if args.webcrawl else []
    if args.webcrawl and not warcs:
        raise UsageError(f"no .warc.gz files in {args.webcrawl}: give --webcrawl DIR, or --webcrawl '' for none")
    if warcs:
        checks.readable_file(args.webcrawl_labels, "--webcrawl_labels")
    cache = Path(checks.output_dir(args.cache, "--cache")) if args.cache else None
    output = args.output or DEFAULT_MODEL_PATH
    if args.evaluate_only:
        if not output.exists():
            raise UsageError(f"no model at {output}")
        from lait.scoring.relevance import RelevanceModel

        checks.model_file(output, "--output", RelevanceModel.load)
        print(json.dumps(evaluate(output, args.captions, args.alts, cache, args.seed), indent=2))
        return 0
    checks.output_file(output, "--output")
    meta = train(args.captions, args.alts, output, cache, seed=args.seed, max_iter=args.max_iter,
                 projection_epochs=args.projection_epochs, max_photos=args.max_photos,
                 webcrawl_records=crawl_records(warcs) if warcs else None,
                 webcrawl_labels=args.webcrawl_labels if warcs else None)
    print(f"wrote {output} ({output.stat().st_size / 2**20:.1f} MiB, {len(meta['feature_names'])} features)")
    return 0


def crawl_records(warcs: list[Path]):
    """The page and image records of `warcs`, read as `lait run` reads them."""
    from lait.pipeline.read_crawl import iter_crawl_records

    for warc in sorted(warcs):
        yield from iter_crawl_records(str(warc))
