"""Relevance model: held-out ROC-AUC and scoring throughput per core. Prints JSON.

    python bench/bench_relevance.py [--pairs 256] [--model FILE] [--no-auc] [--cache out/relevance_cache]

- AUC: Flickr8k dev photos (never trained on): each true caption against a caption of
  another photo (random), of a photo with the same predicted ImageNet class (hard), and
  junk alt texts on the same photos (in sample: the model trains on every junk alt; the
  source-grouped figures are bench/bench_relevance_grouped.py's).
- Throughput: `--pairs` dev pairs, each with its own photo (nothing cached), scored in
  batches of 64 on ONE torch thread: pairs/s per core (pairs / CPU seconds of the
  process, so other load on the machine does not count) including JPEG decode, both
  networks (EfficientNet twice: at 224 px and the wide look at 320 px), all features and the
  classifier, with the CPU time of each part.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lait.scoring.relevance import RelevanceModel  # noqa: E402
from lait.scoring.relevance_features import (  # noqa: E402
    WIDE_INPUT_SIZE,
    ImageEncoding,
    TextEncoding,
    content_stems,
    decode_image,
    image_statistics,
)
from lait.scoring.relevance_training import detokenize, evaluate  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def dev_pairs(n: int) -> list[dict]:
    root = SHARED / "captions"
    rows = []
    with open(root / "captions.tsv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if row["split"] == "dev" and row["caption_index"] == "0":
                rows.append(row)
    return [{"text": detokenize(r["caption"]), "image_bytes": (root / "images" / r["image"]).read_bytes(),
             "image_url": f"https://example.org/{r['image']}", "text_source": "alt", "page_title": "Flickr photos"}
            for r in rows[:n]]


def throughput(model: RelevanceModel, n: int, batch: int = 64) -> dict:
    torch.set_num_threads(1)
    started = time.perf_counter()
    extractor = model.feature_extractor()
    load_s = time.perf_counter() - started
    pairs = dev_pairs(n)
    extractor.features(pairs[:8])  # warm-up (first-call allocations)
    parts = dict.fromkeys(("text_minilm", "text_statistics_and_language", "page_title_minilm", "image_decode",
                           "image_efficientnet", "image_efficientnet_wide", "image_statistics", "pair_features",
                           "interaction", "classifier"), 0.0)

    def timed(key, fn, *a):
        t = time.process_time()
        out = fn(*a)
        parts[key] += time.process_time() - t
        return out

    total_start, cpu_start = time.perf_counter(), time.process_time()
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        texts = [p["text"] for p in chunk]
        emb = timed("text_minilm", extractor.text_encoder.encode, texts)
        stats = timed("text_statistics_and_language", extractor.encode_texts_without_embeddings, texts)
        text_enc = TextEncoding(emb, *stats)
        title_emb = timed("page_title_minilm", extractor.text_encoder.encode, [p["page_title"] for p in chunk])
        titles = TextEncoding(title_emb, np.zeros((len(chunk), 0)), np.zeros(len(chunk)), [], [])
        decoded = timed("image_decode", lambda c: [decode_image(p["image_bytes"]) for p in c], chunk)
        e, pr, detail = timed("image_efficientnet", extractor.image_model.encode, decoded)
        wide = timed("image_efficientnet_wide", lambda d: extractor.image_model.encode(d, size=WIDE_INPUT_SIZE)[0],
                     decoded)
        st = timed("image_statistics", lambda d, c: np.array([image_statistics(im, p["image_bytes"], p)
                                                              for im, p in zip(d, c)], dtype=np.float32), decoded, chunk)
        images = ImageEncoding(np.hstack([e, detail]), pr, st, np.ones(len(chunk), dtype=bool), wide)
        X = timed("pair_features", extractor.pair_features, chunk, text_enc, images, None, None, titles)
        inter = timed("interaction", model.interaction, images.embeddings, emb,
                      [content_stems(words) for words in text_enc.words], wide)
        timed("classifier", model.predict_proba, np.hstack([X, inter]))
    wall, cpu = time.perf_counter() - total_start, time.process_time() - cpu_start
    return {
        "pairs": len(pairs), "batch": batch, "torch_threads": 1,
        "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        # One thread: CPU seconds are core seconds, whatever else shares the machine.
        "pairs_per_s_per_core": round(len(pairs) / cpu, 1),
        "pairs_per_s_wall": round(len(pairs) / wall, 1),
        # When FilterImages hands over its EfficientNet-Lite0 outputs (efficientnet_embedding/probs/detail);
        # the wide look (WIDE_INPUT_SIZE) is ScoreRelevance's own.
        "pairs_per_s_per_core_reusing_efficientnet": round(len(pairs) / (cpu - parts["image_efficientnet"]), 1),
        "model_load_s": round(load_s, 2),
        "share_of_cpu": {k: round(v / cpu, 3) for k, v in parts.items()},
        "cpu_ms_per_pair": {k: round(1000 * v / len(pairs), 2) for k, v in parts.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--cache", type=Path, default=ROOT / "out" / "relevance_cache")
    parser.add_argument("--no-auc", dest="auc", action="store_false")
    args = parser.parse_args()
    if not (SHARED / "captions" / "captions.tsv").exists():
        print(json.dumps({"skipped": f"needs {SHARED / 'captions'}"}))
        return 0
    model = RelevanceModel.load(args.model)
    result = {"bench": "relevance", "model": str(args.model or "shipped"),
              "training": {k: model.meta["training"].get(k) for k in ("pairs", "positives", "by_kind")}}
    result["throughput"] = throughput(model, args.pairs)
    if args.auc:
        result["held_out"] = evaluate(args.model, SHARED / "captions", SHARED / "alts" / "alts.jsonl",
                                      args.cache, log=lambda *a: print(*a, file=sys.stderr))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
