"""Train the naturalness classifier (natural photo vs logo, icon, chart, screenshot...) and write it.

DATA is a folder laid out like ../shared/data/natural: image files and a `labels.csv` with
columns `path` (relative to the folder), `label` (photo|other), `kind` and `source_repo`.
Images are decoded exactly as `lait run` decodes them (lait.filters.image_decode, no size
limits); features are the image statistics plus the EfficientNet-Lite0 embedding.

Before fitting on everything, the command cross-validates and prints ROC-AUC and accuracy
at the shipped threshold for three splits: stratified, grouped by source repository, and
grouped by kind (a whole kind of non-photo, or a whole photo source, held out at once).
Those figures are stored in the model file's metadata.

Examples:
  lait train-naturalness                        # ../shared/data/natural -> lait/scoring/models/naturalness.json
  lait train-naturalness my_labelled_images/ --output my_natural.json --C 0.3
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from lait import progress
from lait.errors import UsageError
from lait.pipeline import checks
from lait.pipeline.checks import FRACTION, Number

NAME = "train-naturalness"
HELP = "train the natural-photo classifier on a labelled image folder and write the model file"
ORDER = 62
DEFAULT_DATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "natural"
PHOTO_LABEL = "photo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="?", default=str(DEFAULT_DATA),
                        help=f"labelled image folder with labels.csv (default {DEFAULT_DATA})")
    parser.add_argument("--output", default=None,
                        help="model file to write (default: the shipped lait/scoring/models/naturalness.json)")
    parser.add_argument("--C", type=Number(float, above=0), default=0.1, help="inverse L2 strength of the regression (default 0.1)")
    parser.add_argument("--statistics_weight", type=Number(float, 0), default=1.0,
                        help="scale of the standardised image statistics against the embedding (default 1)")
    parser.add_argument("--threshold", type=FRACTION, default=0.5,
                        help="probability at which an image counts as natural (default 0.5, as --min_natural)")
    parser.add_argument("--folds", type=Number(int, 2, off=0), default=5,
                        help="cross-validation folds (default 5; 0 skips it)")
    parser.add_argument("--batch_size", type=Number(int, 1), default=32, help="images per EfficientNet batch (default 32)")


# The columns of a labelled image folder's labels.csv (as ../shared/data/natural has them).
LABEL_COLUMNS = ("path", "label", "kind", "source_repo")


def read_labels(folder: Path) -> list[dict]:
    """Rows of `labels.csv`; a missing file or column is a UsageError."""
    labels = folder / "labels.csv"
    if not labels.is_file():
        raise UsageError(f"{labels} not found: DATA must be a folder with labels.csv ({','.join(LABEL_COLUMNS)})")
    with open(labels, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    missing = set(LABEL_COLUMNS) - set(rows[0] if rows else {})
    if missing:
        raise UsageError(f"{labels} lacks column(s) {', '.join(sorted(missing))}")
    absent = [row["path"] for row in rows if not (folder / row["path"]).is_file()]
    if absent:
        raise UsageError(f"{labels} names {len(absent)} image(s) that are not in {folder}, e.g. {absent[0]}")
    return rows


def extract_features(folder: Path, rows: list[dict], net, batch_size: int = 32) -> tuple[np.ndarray, list[dict]]:
    """Feature matrix of the images that decode, and their rows (others are reported and skipped)."""
    from lait.filters.image_decode import decode_image
    from lait.filters.naturalness import naturalness_features

    kept, blocks, images = [], [], []
    with progress.Bar(total=len(rows), desc="lait train-naturalness: features", unit="images", leave=False) as bar:
        for row in rows:
            bar.update(1)
            decoded = decode_image((folder / row["path"]).read_bytes(), min_side=0, max_aspect_ratio=0)
            if not decoded.ok:
                bar.write(f"skipped {row['path']}: {decoded.reason} {decoded.detail or ''}", file=sys.stderr)
                continue
            kept.append(row)
            images.append(decoded.image)
            if len(images) == batch_size:
                blocks.append(naturalness_features(images, net))
                images = []
        if images:
            blocks.append(naturalness_features(images, net))
    return np.concatenate(blocks) if blocks else np.zeros((0, 0), np.float32), kept


def cross_validate(X: np.ndarray, y: np.ndarray, groups: np.ndarray | None, make_model, folds: int = 5,
                   seed: int = 0) -> np.ndarray:
    """Out-of-fold probabilities of "natural"; grouped folds keep each group in one fold."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if groups is None:
        splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y)
    else:
        splits = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(X, y, groups)
    probabilities = np.zeros(len(y), dtype=np.float64)
    for train, test in splits:
        probabilities[test] = make_model().fit(X[train], y[train]).predict_proba(X[test])[:, 1]
    return probabilities


def split_groups(rows: list[dict]) -> dict[str, np.ndarray | None]:
    """The three CV splits: stratified, by source repository, by kind (photos by source)."""
    source = np.array([r["source_repo"] for r in rows])
    kind = np.array([r["kind"] if r["label"] != PHOTO_LABEL else "photo:" + r["source_repo"] for r in rows])
    return {"stratified": None, "by_source": source, "by_kind": kind}


def cv_report(X: np.ndarray, y: np.ndarray, rows: list[dict], make_model, threshold: float, folds: int) -> dict:
    """ROC-AUC, accuracy at `threshold` and per-kind accuracy for each split."""
    from sklearn.metrics import roc_auc_score

    kinds = np.array([r["kind"] for r in rows])
    report = {}
    for name, groups in split_groups(rows).items():
        p = cross_validate(X, y, groups, make_model, folds)
        correct = (p >= threshold) == (y == 1)
        report[name] = {
            "roc_auc": round(float(roc_auc_score(y, p)), 4),
            "accuracy": round(float(correct.mean()), 4),
            "accuracy_per_kind": {k: round(float(correct[kinds == k].mean()), 3) for k in sorted(set(kinds))},
        }
    return report


def main(args: argparse.Namespace, extra: list[str]) -> int:
    from lait.encoders.efficientnet import EfficientNetLite0
    from lait.filters.naturalness import MODEL_FILE, NaturalnessClassifier

    folder = Path(checks.readable_dir(args.data, "DATA"))
    rows = read_labels(folder)
    if args.output:
        checks.output_file(args.output, "--output")
    started = time.time()
    X, rows = extract_features(folder, rows, EfficientNetLite0(device="cpu"), args.batch_size)
    y = np.array([r["label"] == PHOTO_LABEL for r in rows], dtype=int)
    if len(set(y)) < 2:
        raise UsageError(f"{folder}: need both '{PHOTO_LABEL}' and other labels, found {len(y)} rows of one class")
    features_s = time.time() - started

    def make_model() -> NaturalnessClassifier:
        return NaturalnessClassifier(C=args.C, statistics_weight=args.statistics_weight, threshold=args.threshold)

    report = cv_report(X, y, rows, make_model, args.threshold, args.folds) if args.folds > 1 else {}
    model = make_model().fit(X, y)
    output = Path(args.output) if args.output else MODEL_FILE
    output.parent.mkdir(parents=True, exist_ok=True)
    summary = {"data": str(folder), "images": len(y), "photos": int(y.sum()), "features_seconds": round(features_s, 1),
               "cross_validation": report, "output": str(output)}
    model.save(output, trained_on={"images": len(y), "photos": int(y.sum())}, cross_validation=report)
    print(json.dumps(summary, indent=2))
    return 0
