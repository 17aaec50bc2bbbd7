"""Precomputed regions: bottom-up-attention ``.npz`` files, one per image, read as :class:`Regions`.

The layout UNITER, ViLBERT and LXMERT users already have; :class:`NpzRegionReader` is the
region extractor that reads them instead of running a network.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np

from lait.encoders.regions import Failure, RegionExtractor, Regions, positions

# Array names used by the common bottom-up-attention dumps, first match wins.
_FEATURE_KEYS = ("features", "x")
_BOX_KEYS = ("boxes", "bbox")
_PROB_KEYS = ("cls_prob", "soft_labels")
_LABEL_KEYS = ("objects_id", "objects")
_CONF_KEYS = ("objects_conf", "conf", "cls_conf")
NPZ_SUFFIX = ".npz"


def npz_candidates(image_sha1: str | None, image_url: str | None) -> list[str]:
    """File names an image's ``.npz`` may have, in lookup order.

    ``SHA1.npz`` (the image bytes' SHA-1), ``STEM.npz`` (the URL's file name without extension,
    e.g. ``COCO_val2014_000000000042``: how most feature dumps are named) and ``URLSHA1.npz``
    (the SHA-1 of the URL string).
    """
    names = []
    if image_sha1:
        names.append(image_sha1 + NPZ_SUFFIX)
    if image_url:
        stem = Path(unquote(urlsplit(image_url).path)).stem
        if stem and stem not in (".", ".."):
            names.append(stem + NPZ_SUFFIX)
        names.append(hashlib.sha1(image_url.encode("utf-8")).hexdigest() + NPZ_SUFFIX)
    return names


def _first(arrays, keys: Sequence[str]):
    return next((arrays[k] for k in keys if k in arrays), None)


def read_npz(path: str | os.PathLike, num_labels: int | None = None) -> tuple[Regions, int]:
    """Regions from one bottom-up-attention ``.npz`` and the label count it implies.

    Reads ``features`` [N, D]; positions from ``norm_bb`` (normalised x1, y1, x2, y2, ...) or from
    ``boxes`` in pixels with ``image_w`` / ``image_h``; labels from ``cls_prob`` (or UNITER's
    ``soft_labels``) [N, K], else ``objects_id`` [N] (then ``num_labels`` must be given). Regions are
    sorted by confidence (``objects_conf``/``conf``, else the top probability); files without either
    keep their order. Nothing is unpickled. Raises ValueError with what is wrong.
    """
    with np.load(path, allow_pickle=False) as arrays:
        features = _first(arrays, _FEATURE_KEYS)
        if features is None:
            raise ValueError(f"no features array (one of {', '.join(_FEATURE_KEYS)})")
        features = np.asarray(features).reshape(len(features), -1)
        n = len(features)
        if "norm_bb" in arrays:
            boxes = np.asarray(arrays["norm_bb"], dtype=np.float32)[:, :4]
        else:
            pixels = _first(arrays, _BOX_KEYS)
            if pixels is None or "image_w" not in arrays or "image_h" not in arrays:
                raise ValueError("no norm_bb, and no boxes with image_w and image_h")
            size = np.array([arrays["image_w"], arrays["image_h"]] * 2, dtype=np.float32).reshape(4)
            if (size <= 0).any():
                raise ValueError(f"image size {size[:2].tolist()} is not positive")
            boxes = np.asarray(pixels, dtype=np.float32)[:, :4] / size
        probs = _first(arrays, _PROB_KEYS)
        label_ids = _first(arrays, _LABEL_KEYS)
        confidence = _first(arrays, _CONF_KEYS)
        if probs is not None:
            probs = np.asarray(probs, dtype=np.float32).reshape(n, -1)
            labels = probs.argmax(axis=1) if label_ids is None else np.asarray(label_ids).reshape(-1)
            num_labels = probs.shape[1]
            if confidence is None:
                confidence = probs.max(axis=1)
        elif label_ids is not None:
            if num_labels is None:
                raise ValueError("objects_id without cls_prob: the label count must come from a label list")
            labels = np.asarray(label_ids).reshape(-1)
        else:
            raise ValueError(f"no labels (one of {', '.join(_PROB_KEYS + _LABEL_KEYS)})")
    if len(boxes) != n or len(labels) != n:
        raise ValueError(f"{n} features but {len(boxes)} boxes and {len(labels)} labels")
    if n and (labels.min() < 0 or labels.max() >= num_labels):
        raise ValueError(f"label ids outside [0, {num_labels})")
    if not np.isfinite(features).all() or not np.isfinite(boxes).all():
        raise ValueError("features or boxes are not finite")
    order = np.argsort(-np.asarray(confidence, dtype=np.float64).reshape(-1), kind="stable") \
        if confidence is not None else np.arange(n)
    regions = Regions(
        boxes=positions(boxes[order]),
        features=features[order].astype(np.float16),
        labels=labels[order].astype(np.int32),
        label_probs=probs[order].astype(np.float16) if probs is not None else None,
    )
    return regions, int(num_labels)


def write_npz(path: str | os.PathLike, regions: Regions, image_w: int, image_h: int) -> None:
    """Write regions as a bottom-up-attention ``.npz``: ``features``, ``boxes`` (pixels), ``image_w``,
    ``image_h``, ``num_bbox``, ``objects_id``, ``objects_conf`` and ``cls_prob`` when there are label_probs."""
    arrays = {
        "features": np.asarray(regions.features),
        "boxes": np.asarray(regions.boxes, dtype=np.float32)[:, :4] * np.float32([image_w, image_h] * 2),
        "image_w": np.int64(image_w), "image_h": np.int64(image_h), "num_bbox": np.int64(len(regions)),
        "objects_id": np.asarray(regions.labels, dtype=np.int64),
    }
    if regions.label_probs is not None:
        probs = np.asarray(regions.label_probs, dtype=np.float32)
        arrays["cls_prob"] = probs
        arrays["objects_conf"] = probs.max(axis=1) if len(probs) else np.zeros(0, np.float32)
    np.savez_compressed(path, **arrays)


class NpzRegionReader(RegionExtractor):
    """Precomputed regions from a directory of bottom-up-attention ``.npz`` files.

    Parameters
    ----------
    directory : path
        Holds one ``.npz`` per image, named as :func:`npz_candidates` lists.
    max_regions : int, default=100
        The most confident regions kept per image.
    label_names : list of str, optional
        Names of the labels; by default read from ``objects_vocab.txt`` in ``directory`` when
        there (bottom-up attention's Visual Genome vocabulary, background not listed).

    The feature width and label count are those of the first file (in name order); a file that
    differs is a failure (``npz_mismatch``), as one regions directory has one width.
    """

    name = "bottom-up-attention-npz"
    needs_image_bytes = False

    def __init__(self, directory: str | os.PathLike, max_regions: int = 100,
                 label_names: list[str] | None = None) -> None:
        self.directory = Path(directory)
        self.max_regions = max_regions
        if not self.directory.is_dir():
            raise ValueError(f"{directory} is not a directory")
        first = next(iter(sorted(self.directory.glob("*" + NPZ_SUFFIX))), None)
        if first is None:
            raise ValueError(f"no .npz files in {directory}")
        vocab = self.directory / "objects_vocab.txt"
        if label_names is None and vocab.exists():
            label_names = [line.split(",")[0].strip() for line in vocab.read_text(encoding="utf-8").splitlines()
                           if line.strip()]
        probe, num_labels = read_npz(first, len(label_names) if label_names else None)
        self.feature_dim = probe.features.shape[1]
        self.with_label_probs = probe.label_probs is not None
        self.num_labels = num_labels
        if label_names and len(label_names) + 1 == num_labels:
            label_names = ["__background__", *label_names]  # Faster R-CNN's class 0
        self.label_names = list(label_names) if label_names and len(label_names) == num_labels else []

    def find(self, image_sha1: str | None, image_url: str | None) -> Path | None:
        """The image's ``.npz`` file, or None."""
        for name in npz_candidates(image_sha1, image_url):
            path = self.directory / name
            if path.is_file():
                return path
        return None

    def extract_records(self, records: Sequence[dict]) -> list[Regions | Failure]:
        return [self.read(record.get("image_sha1"), record.get("image_url")) for record in records]

    def read(self, image_sha1: str | None, image_url: str | None) -> Regions | Failure:
        """The image's regions (at most ``max_regions``), or the Failure saying why not."""
        path = self.find(image_sha1, image_url)
        if path is None:
            return Failure("npz_missing", f"none of {', '.join(npz_candidates(image_sha1, image_url))}")
        try:
            regions, num_labels = read_npz(path, self.num_labels)
        except (ValueError, OSError, KeyError, EOFError) as error:
            return Failure("npz_invalid", f"{path.name}: {error}")
        if regions.features.shape[1] != self.feature_dim or num_labels != self.num_labels:
            return Failure("npz_mismatch", f"{path.name}: width {regions.features.shape[1]} and {num_labels} labels, "
                                           f"not {self.feature_dim} and {self.num_labels}")
        if (regions.label_probs is not None) != self.with_label_probs:
            return Failure("npz_mismatch", f"{path.name}: label distributions "
                                           f"{'present' if regions.label_probs is not None else 'absent'}, "
                                           "unlike the first file")
        n = self.max_regions
        return Regions(regions.boxes[:n], regions.features[:n], regions.labels[:n],
                       None if regions.label_probs is None else regions.label_probs[:n])
