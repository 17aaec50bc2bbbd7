"""The LAIT image filters in one place: safe decode, size, NSFW, naturalness, hashes.

:class:`ImageFilter` is configured once (thresholds, models loaded lazily on first use)
and checks a batch of image files at a time, so both models run batched. Each file gets an
:class:`ImageVerdict`: its size, format, scores, hashes, and the reasons it fails (empty
when it is kept). `lait filter-image` prints verdicts; the `FilterImages` stage turns a
failing verdict into a `Reject` with its first reason.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from lait.filters.image_decode import decode_image, size_refusal
from lait.filters.image_hashes import phash, sha1_hex
from lait.records import NETWORK_OUTPUT_KEYS

NSFW, NOT_NATURAL = "nsfw", "not_natural"


@dataclass
class ImageVerdict:
    """What the filters say about one image file."""

    width: int | None = None
    height: int | None = None
    image_format: str | None = None
    nsfw_score: float | None = None
    face_score: float | None = None
    natural_score: float | None = None
    image_sha1: str | None = None
    image_phash: str | None = None
    reasons: list[str] = field(default_factory=list)
    detail: str | None = None
    # EfficientNet-Lite0 outputs computed for naturalness, handed to ScoreRelevance so the
    # network runs once per image (float32 bytes: 1280 embedding values, 1000 probabilities,
    # 512 detail values).
    efficientnet_embedding: bytes | None = None
    efficientnet_probs: bytes | None = None
    efficientnet_detail: bytes | None = None

    @property
    def kept(self) -> bool:
        return not self.reasons

    def fields(self) -> dict:
        """The record keys FilterImages owns (see lait.pipeline.schema.STAGE_FIELDS)."""
        fields = {"width": self.width, "height": self.height, "image_format": self.image_format,
                  "nsfw_score": self.nsfw_score, "face_score": self.face_score, "natural_score": self.natural_score,
                  "image_sha1": self.image_sha1, "image_phash": self.image_phash}
        if self.efficientnet_embedding is not None:
            fields.update({key: getattr(self, key) for key in NETWORK_OUTPUT_KEYS})
        return fields


class ImageFilter:
    """Decode, measure and score image files in batches.

    Parameters
    ----------
    min_side : int, default=300
        Width and height must both be larger (LAIT: "larger than 300 pixels").
    max_aspect_ratio : float, default=3.0
    max_pixels : int, default=60_000_000
        Larger images are decompression bombs, refused from the header.
    max_nsfw : float, default=0.5
        Images scoring above this are dropped as ``nsfw``.
    min_natural : float, default=0.5
        Images whose natural-photo probability is below this are dropped as ``not_natural``.
    score_all : bool, default=False
        Score every image that decodes and list all its reasons (`lait filter-image`). By
        default, as in the pipeline, images failing the size checks are not decoded and an
        image already `not_natural` is not scored for NSFW (`nsfw_score` and `face_score` stay None).
    naturalness_model : str or None, default=None
        Model file; None means the shipped `lait/scoring/models/naturalness.json`.
    device : str or None, default=None
        Torch device for EfficientNet-Lite0 (None: CUDA when available). On the CPU it runs on
        ONNX Runtime, as NudeNet always does.
    threads : int or None, default=None
        CPU threads of each network: onnxruntime's intra-op pools (both networks run on it on
        the CPU) and torch's (process-wide, for a GPU device). The FilterImages stage gives 1
        where a worker process runs per core; None leaves torch's setting as it is and runs
        onnxruntime on one thread.
    """

    def __init__(self, min_side: int = 300, max_aspect_ratio: float = 3.0, max_pixels: int = 60_000_000,
                 max_nsfw: float = 0.5, min_natural: float = 0.5, score_all: bool = False,
                 naturalness_model: str | None = None, device: str | None = None,
                 threads: int | None = None) -> None:
        self.min_side = min_side
        self.max_aspect_ratio = max_aspect_ratio
        self.max_pixels = max_pixels
        self.max_nsfw = max_nsfw
        self.min_natural = min_natural
        self.score_all = score_all
        self.naturalness_model = naturalness_model
        self.device = device
        self.threads = threads
        self._nsfw = None
        self._natural = None

    def load_models(self) -> None:
        """Load both models now (`check` does on the first image worth scoring); one copy per process."""
        if self._natural is None:
            if self.threads:
                import torch

                torch.set_num_threads(self.threads)
            self._natural, self._nsfw = _load_scorers(self.naturalness_model, self.device, self.threads or 1)

    def check(self, files: list[bytes]) -> list[ImageVerdict]:
        """One verdict per file, in order; models run once per batch."""
        verdicts, images, scored = [], [], []
        for data in files:
            if self.score_all:  # decode whatever size; size reasons are added, not terminal
                decoded = decode_image(data, 0, 0, self.max_pixels)
            else:
                decoded = decode_image(data, self.min_side, self.max_aspect_ratio, self.max_pixels)
            verdict = ImageVerdict(width=decoded.width or None, height=decoded.height or None,
                                   image_format=decoded.image_format, image_sha1=sha1_hex(data))
            if decoded.ok and self.score_all:
                refusal = size_refusal(decoded.width, decoded.height, self.min_side, self.max_aspect_ratio)
                verdict.reasons += [refusal] if refusal else []
            if decoded.ok:
                verdict.image_phash = phash(decoded.image)
                images.append(decoded.image)
                scored.append(verdict)
            else:
                verdict.reasons.append(decoded.reason)
                verdict.detail = decoded.detail
            verdicts.append(verdict)
        if images:
            self._score(images, scored)
        return verdicts

    def _score(self, images: list, verdicts: list[ImageVerdict]) -> None:
        self.load_models()
        natural, outputs = self._natural.score_with_network_outputs(images)
        for verdict, score, *image_outputs in zip(verdicts, natural, *outputs):
            verdict.natural_score = round(float(score), 4)
            for key, values in zip(NETWORK_OUTPUT_KEYS, image_outputs):
                setattr(verdict, key, np.asarray(values, dtype=np.float32).tobytes())
            if score < self.min_natural:
                verdict.reasons.append(NOT_NATURAL)
                verdict.detail = verdict.detail or f"natural_score {score:.4f} < {self.min_natural}"
        todo = [i for i, v in enumerate(verdicts) if self.score_all or v.kept]  # skip NSFW when dropped anyway
        if not todo:
            return
        nsfw, face = self._nsfw.scores([images[i] for i in todo])
        for i, score, face_score in zip(todo, nsfw, face):
            verdicts[i].nsfw_score = round(float(score), 4)
            verdicts[i].face_score = round(float(face_score), 4)
            if score > self.max_nsfw:
                verdicts[i].reasons.append(NSFW)
                verdicts[i].detail = verdicts[i].detail or f"nsfw_score {score:.4f} > {self.max_nsfw}"


@functools.lru_cache(maxsize=2)
def _load_scorers(naturalness_model: str | None, device: str | None, threads: int = 1) -> tuple:
    """The two models, loaded once per process and shared by every ImageFilter in it.

    DoFn instances, threads and successive in-process pipelines of a worker then hold one
    copy (about 100 MB) instead of one each; both models are safe to call from threads.
    """
    from lait.filters.naturalness import NaturalnessScorer
    from lait.filters.nsfw import NsfwScorer

    return NaturalnessScorer(naturalness_model, device=device, threads=threads), NsfwScorer(threads=threads)
