"""Small real-format training data for the ImageBERT tests: Flickr8k captions with learnable regions.

The texts are real (Flickr8k train captions from ../shared/data/captions). The regions follow the
regions-shard format exactly but their features are made up, because no detector runs in a unit
test: each test image is one whose captions name exactly one scene concept (dog, snow, water...),
and gets a few regions of that concept (the concept's prototype feature plus noise, labelled
with it) and some background regions. That makes all four
tasks learnable in a few hundred steps on CPU, which is what the tests check.
"""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lait.encoders.minilm import minilm_model_dir
from lait.encoders.wordpiece import SPECIAL_TOKENS, WordPieceTokenizer
from lait.imagebert.data import write_regions_meta, write_regions_shard
from lait.pipeline.schema import CORPUS_SCHEMA

# Scene concepts and the caption words that name them; each test image shows exactly one.
CONCEPTS = {
    "dog": {"dog", "dogs", "puppy"}, "snow": {"snow", "snowy", "skier", "skiing"},
    "bike": {"bike", "bicycle", "biker", "bikes", "bmx"},
    "water": {"water", "pool", "lake", "ocean", "swimming", "beach", "waves", "river"},
    "ball": {"ball", "soccer", "football", "basketball"}, "street": {"street", "city", "sidewalk", "road"},
    "grass": {"grass", "grassy", "field"}, "rock": {"rock", "rocks", "cliff", "climbing", "climber"},
}
BACKGROUND = len(CONCEPTS)  # label of regions that show none of the concepts


def concept_of(texts: list[str]) -> int | None:
    """The one concept the captions name, or None when they name none or several."""
    words = set(re.findall(r"[a-z]+", " ".join(texts).lower()))
    named = [i for i, names in enumerate(CONCEPTS.values()) if words & names]
    return named[0] if len(named) == 1 else None


def flickr_captions(captions_tsv: Path, split: str = "train", images: int = 64) -> dict[str, list[str]]:
    """``image file -> its captions`` for ``images`` images of a split whose captions name one concept,
    as many of each concept as possible."""
    grouped: dict[str, list[str]] = {}
    with open(captions_tsv, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if row["split"] == split:
                grouped.setdefault(row["image"], []).append(row["caption"])
    by_concept: dict[int, list[str]] = {}
    for image, texts in sorted(grouped.items()):
        concept = concept_of(texts)
        if concept is not None:
            by_concept.setdefault(concept, []).append(image)
    per_concept = -(-images // len(CONCEPTS))
    chosen = [image for c in sorted(by_concept) for image in by_concept[c][:per_concept]][:images]
    return {image: grouped[image] for image in sorted(chosen)}


def write_small_vocab(path: Path, texts: list[str]) -> Path:
    """A vocab.txt with BERT's special tokens and only the WordPiece pieces of ``texts``.

    Keeps the tiny test model's vocabulary projection small (a few hundred tokens, not 30,522).
    """
    full = WordPieceTokenizer.from_vocab_file(minilm_model_dir() / "vocab.txt")
    pieces = sorted({piece for text in texts for piece in full.tokenize(text)})
    path.write_text("\n".join([*SPECIAL_TOKENS, *(p for p in pieces if p not in SPECIAL_TOKENS)]) + "\n")
    return path


def write_pairs(root: Path, captions: dict[str, list[str]], feature_dim: int = 32, seed: int = 0,
                shards: int = 2, with_label_probs: bool = False, copies: int = 4, noise: float = 0.1) -> tuple[Path, Path]:
    """Write ``root/corpus`` (corpus schema) and ``root/regions`` (regions format); returns both dirs."""
    rng = np.random.default_rng(seed)
    prototypes = rng.normal(size=(len(CONCEPTS) + 1, feature_dim)).astype(np.float32)
    corpus, regions = root / "corpus", root / "regions"
    corpus.mkdir(parents=True, exist_ok=True)
    regions.mkdir(parents=True, exist_ok=True)
    items = sorted(captions.items())
    for shard in range(shards):
        rows, region_records = [], []
        for image, texts in items[shard::shards]:
            sha1 = hashlib.sha1(image.encode()).hexdigest()
            rows += [{"image_sha1": sha1, "image_url": f"file:///{image}", "text": t, "text_source": "caption"}
                     for t in texts]
            region_records.append(_regions(sha1, texts, prototypes, rng, with_label_probs, copies, noise))
        table = pa.Table.from_pylist([{name: row.get(name) for name in CORPUS_SCHEMA.names} for row in rows],
                                     schema=CORPUS_SCHEMA)
        pq.write_table(table, corpus / f"shard-{shard:05d}-of-{shards:05d}.parquet")
        write_regions_shard(regions / f"regions-{shard:05d}.parquet", region_records, row_group_size=8)
    write_regions_meta(regions, "synthetic-test", feature_dim, len(CONCEPTS) + 1, 16, [*CONCEPTS, "background"])
    return corpus, regions


def _regions(sha1: str, texts: list[str], prototypes: np.ndarray, rng: np.random.Generator, with_probs: bool,
             copies: int, noise: float) -> dict:
    concept = concept_of(texts)
    labels = [concept] * copies if concept is not None else []
    labels = (labels + [BACKGROUND] * int(rng.integers(2, 5)))[:16]
    n = len(labels)
    features = prototypes[labels] + noise * rng.normal(size=(n, prototypes.shape[1]))
    corners = np.sort(rng.uniform(size=(n, 2, 2)), axis=1)  # (x1, x2), (y1, y2) sorted
    x1, x2, y1, y2 = corners[:, 0, 0], corners[:, 1, 0], corners[:, 0, 1], corners[:, 1, 1]
    boxes = np.stack([x1, y1, x2, y2, (x2 - x1) * (y2 - y1)], axis=1)
    record = {"image_sha1": sha1, "boxes": boxes, "features": features, "labels": np.array(labels)}
    if with_probs:
        probs = np.full((n, len(prototypes)), 0.1 / (len(prototypes) - 1))
        probs[np.arange(n), labels] = 0.9
        record["label_probs"] = probs
    return record
