"""The image-text relevance model: a calibrated gradient-boosted classifier over named features.

LAIT (Qi et al., 2020, "ImageBERT") filters web pairs with "a weak image-text semantic
model [...] over hundreds of features including text-only, image-content and text-image
cross-modal features". This module holds the two learned parts on top of
:mod:`lait.scoring.relevance_features`:

- :class:`ImageTextProjection`, the learned interaction between the MiniLM text embedding
  and the EfficientNet-Lite0 image embedding: two linear maps into a shared low-rank
  space trained contrastively (InfoNCE, as CLIP) on the supervised pairs; its cosine, and
  that cosine relative to reference images and captions, are features; a second one does the
  same for the image's wide look (its pooled embedding at 320 px);
- :class:`NeighbourBank`, the captions of the training photos nearest to the pair's image
  (and the photos of the captions nearest to its text): how close the text is to what
  people wrote about similar photos. It separates captions of look-alike photos (the hard
  negatives) better than the projection alone, and needs no labels of its own;
- :class:`LookAlikeCaptions`, the pair's projection cosine against the image's cosines with
  the captions of the training photos that look most like it;
- :class:`WordGrounding`, per caption word, a linear classifier of the image vector: how
  much more likely the image makes the text's words than their base rate;
- :class:`RelevanceModel`, scikit-learn's ``HistGradientBoostingClassifier`` wrapped in
  ``CalibratedClassifierCV`` (Platt sigmoid) and exported to plain arrays, so that the
  shipped file (``models/relevance.npz``) loads with ``numpy.load(allow_pickle=False)``:
  no pickle, no code runs on load.

>>> model = RelevanceModel.load()                                       # doctest: +SKIP
>>> extractor = model.feature_extractor()                               # doctest: +SKIP
>>> model.score_pairs(extractor, [{"text": "a dog on grass", "image_bytes": jpeg}])  # doctest: +SKIP
array([0.93], dtype=float32)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["ImageTextProjection", "NeighbourBank", "LookAlikeCaptions", "WordGrounding", "RelevanceModel",
           "INTERACTION_NAMES", "NEIGHBOUR_NAMES", "DEFAULT_MODEL_PATH"]

DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "models" / "relevance.npz"
FORMAT_VERSION = 4
NEIGHBOUR_NAMES = [
    "cross.neighbours.caption_similarity", "cross.neighbours.caption_similarity_max",
    "cross.neighbours.caption_similarity_z", "cross.neighbours.image_similarity",
]
LOOK_ALIKES = (30, 60)
LOOK_ALIKE_NAMES = [f"cross.look_alikes.z_vs_captions_of_{k}" for k in LOOK_ALIKES]
GROUNDING_NAMES = [
    "cross.grounding.gain_mean", "cross.grounding.gain_min", "cross.grounding.gain_sum", "cross.grounding.log_p_mean",
]
PROJECTION_NAMES = [
    "cross.interaction.similarity", "cross.interaction.z_vs_reference_images",
    "cross.interaction.z_vs_reference_texts", "cross.interaction.rank_vs_reference_images",
]
# The same cosine and z-scores from a second projection, of the image's wide look (WIDE_INPUT_SIZE).
WIDE_PROJECTION_NAMES = [
    "cross.wide_interaction.similarity", "cross.wide_interaction.z_vs_reference_images",
    "cross.wide_interaction.z_vs_reference_texts",
]
INTERACTION_NAMES = [*PROJECTION_NAMES, *NEIGHBOUR_NAMES, *LOOK_ALIKE_NAMES, *GROUNDING_NAMES, *WIDE_PROJECTION_NAMES]


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True).clip(1e-9)


class ImageTextProjection:
    """Low-rank bilinear image-text similarity, learned contrastively.

    ``similarity(img, txt) = cos(A · standardise(img), B · txt)`` with ``A`` [rank, 1792] (the
    image vector: EfficientNet-Lite0's pooled embedding and its detail) and ``B`` [rank, 384],
    trained with the symmetric InfoNCE loss of CLIP (Radford et al., 2021) over batches of
    distinct images, one random caption each.

    Parameters
    ----------
    rank : int, default=1024
        Size of the shared space.
    epochs : int, default=6
        Passes over the images. Few passes over a wide space generalise best on
        Flickr8k dev (tuned on dev pairs' AUC: 60 epochs at rank 128 gave 0.916 random /
        0.767 hard, 6 at rank 1024 about 0.962 / 0.80).
    batch_size : int, default=256
    lr : float, default=2e-3
    weight_decay : float, default=0.05
        AdamW decoupled weight decay (the training set is small).
    temperature : float, default=0.05
    seed : int, default=0

    Attributes
    ----------
    image_mean_, image_scale_ : ndarray [1792]
    image_weight_ : ndarray [rank, 1792]
    text_weight_ : ndarray [rank, 384]
    """

    def __init__(self, rank: int = 1024, epochs: int = 6, batch_size: int = 256, lr: float = 2e-3,
                 weight_decay: float = 0.05, temperature: float = 0.05, seed: int = 0):
        self.rank = rank
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.temperature = temperature
        self.seed = seed

    def fit(self, image_emb: np.ndarray, captions_emb: Sequence[np.ndarray]) -> ImageTextProjection:
        """Fit on image vectors [N, 1792] and, per image, its captions' embeddings [k_i, 384]."""
        import torch

        gen = torch.Generator().manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.image_mean_ = image_emb.mean(0)
        self.image_scale_ = image_emb.std(0) + 1e-6
        images = torch.from_numpy(((image_emb - self.image_mean_) / self.image_scale_).astype(np.float32))
        a = torch.nn.Linear(images.shape[1], self.rank, bias=False)
        b = torch.nn.Linear(captions_emb[0].shape[1], self.rank, bias=False)
        for layer in (a, b):
            torch.nn.init.normal_(layer.weight, std=layer.in_features ** -0.5, generator=gen)
        opt = torch.optim.AdamW([a.weight, b.weight], lr=self.lr, weight_decay=self.weight_decay)
        n = len(images)
        for _ in range(self.epochs):
            order = rng.permutation(n)
            for start in range(0, n, self.batch_size):
                rows = order[start : start + self.batch_size]
                if len(rows) < 2:
                    continue
                caps = torch.from_numpy(np.stack([captions_emb[r][rng.integers(len(captions_emb[r]))] for r in rows]))
                zi = torch.nn.functional.normalize(a(images[rows]), dim=1)
                zt = torch.nn.functional.normalize(b(caps), dim=1)
                logits = zi @ zt.T / self.temperature
                target = torch.arange(len(rows))
                loss = 0.5 * (torch.nn.functional.cross_entropy(logits, target)
                              + torch.nn.functional.cross_entropy(logits.T, target))
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.image_weight_ = a.weight.detach().numpy().astype(np.float32)
        self.text_weight_ = b.weight.detach().numpy().astype(np.float32)
        return self

    def project_images(self, image_emb: np.ndarray) -> np.ndarray:
        x = (image_emb - self.image_mean_) / self.image_scale_
        return _normalise(x @ self.image_weight_.T).astype(np.float32)

    def project_texts(self, text_emb: np.ndarray) -> np.ndarray:
        return _normalise(text_emb @ self.text_weight_.T).astype(np.float32)

    def to_arrays(self, prefix: str = "projection.") -> dict[str, np.ndarray]:
        # float16 halves the file; the cosine it gives differs by about 1e-3.
        return {prefix + "image_mean": self.image_mean_, prefix + "image_scale": self.image_scale_,
                prefix + "image_weight": self.image_weight_.astype(np.float16),
                prefix + "text_weight": self.text_weight_.astype(np.float16)}

    @classmethod
    def from_arrays(cls, arrays, prefix: str = "projection.") -> ImageTextProjection:
        proj = cls(rank=int(arrays[prefix + "image_weight"].shape[0]))
        for k in ("image_mean", "image_scale", "image_weight", "text_weight"):
            setattr(proj, k + "_", np.asarray(arrays[prefix + k], dtype=np.float32))
        return proj


class NeighbourBank:
    """Captioned photos as a retrieval memory: does the text read like captions of photos like this one?

    Images are compared in a PCA space of the standardised image vector (EfficientNet-Lite0's
    embedding and detail); each bank photo keeps the normalised mean of its captions' MiniLM embeddings. For a
    pair, the `k` bank photos nearest to the image give a softmax-weighted caption
    centroid; its cosine with the text (raw, best single neighbour, and as a z-score
    against the text's similarity to the whole bank, so that generic texts gain nothing)
    and, the other way round, the cosine of the image with the photos of the `k` captions
    nearest to the text, are the features (``NEIGHBOUR_NAMES``).

    Parameters
    ----------
    k : int, default=10
    components : int, default=256
        PCA dimensions kept for image-image similarity (the file stays small).
    temperature : float, default=0.05
        Softmax temperature over the neighbours' image similarities.

    Attributes
    ----------
    mean_, scale_ : ndarray [1792]
    components_ : ndarray [components, 1792]
    images_ : ndarray [n, components], L2-normalised
    captions_ : ndarray [n, 384], L2-normalised caption centroids
    """

    def __init__(self, k: int = 10, components: int = 256, temperature: float = 0.05):
        self.k = k
        self.components = components
        self.temperature = temperature

    def fit(self, image_emb: np.ndarray, captions_emb: Sequence[np.ndarray]) -> NeighbourBank:
        """Fit on image vectors [N, 1792] and, per image, its captions' embeddings [k_i, 384]."""
        self.mean_ = image_emb.mean(0)
        self.scale_ = image_emb.std(0) + 1e-6
        x = (image_emb - self.mean_) / self.scale_
        _, _, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
        self.components_ = vt[: self.components].astype(np.float32)
        self.images_ = self.project_images(image_emb)
        self.captions_ = _normalise(np.stack([c.mean(0) for c in captions_emb])).astype(np.float32)
        return self

    def project_images(self, image_emb: np.ndarray) -> np.ndarray:
        return _normalise(((image_emb - self.mean_) / self.scale_) @ self.components_.T).astype(np.float32)

    def features(self, image_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
        """[N, len(NEIGHBOUR_NAMES)] for pairs (row i: image i with text i), NaN where the image is missing."""
        out = np.full((len(text_emb), len(NEIGHBOUR_NAMES)), np.nan, dtype=np.float32)
        ok = np.isfinite(image_emb).all(1)
        if not ok.any():
            return out
        k = min(self.k, len(self.images_))
        zi = self.project_images(image_emb[ok])
        zt = np.asarray(text_emb[ok], dtype=np.float32)
        image_sims = zi @ self.images_.T  # [n, bank]
        text_sims = zt @ self.captions_.T  # [n, bank]
        near = np.argpartition(-image_sims, k - 1, axis=1)[:, :k]
        near_sims = np.take_along_axis(image_sims, near, 1)
        weights = np.exp((near_sims - near_sims.max(1, keepdims=True)) / self.temperature)
        weights /= weights.sum(1, keepdims=True)
        centroid = _normalise(np.einsum("nk,nkd->nd", weights, self.captions_[near]))
        similarity = (centroid * zt).sum(1)
        out[ok, 0] = similarity
        out[ok, 1] = np.take_along_axis(text_sims, near, 1).max(1)
        out[ok, 2] = (similarity - text_sims.mean(1)) / text_sims.std(1).clip(1e-6)
        by_text = np.argpartition(-text_sims, k - 1, axis=1)[:, :k]
        out[ok, 3] = np.take_along_axis(image_sims, by_text, 1).mean(1)
        return out

    def to_arrays(self, prefix: str = "neighbours.") -> dict[str, np.ndarray]:
        return {prefix + "mean": self.mean_, prefix + "scale": self.scale_,
                prefix + "components": self.components_.astype(np.float16),
                prefix + "images": self.images_.astype(np.float16), prefix + "captions": self.captions_.astype(np.float16),
                prefix + "settings": np.array([self.k, self.temperature])}

    @classmethod
    def from_arrays(cls, arrays, prefix: str = "neighbours.") -> NeighbourBank:
        k, temperature = (float(v) for v in arrays[prefix + "settings"])
        bank = cls(k=int(k), components=int(arrays[prefix + "components"].shape[0]), temperature=temperature)
        for name in ("mean", "scale", "components", "images", "captions"):
            setattr(bank, name + "_", np.asarray(arrays[prefix + name], dtype=np.float32))
        return bank


class LookAlikeCaptions:
    """Is the text closer to the image than the captions of photos that look like it?

    A hard negative is a look-alike photo's caption: its cosine with the image in the
    projection's space is high, but no higher than the image's cosines with the captions of
    its look-alikes. For each `k` of ``LOOK_ALIKES``, the feature is the pair's cosine as a
    z-score against the image's cosines with the caption centroids of the `k` training photos
    nearest to it, all in the projection's space.

    Attributes
    ----------
    photos_ : ndarray [n, rank]
        The projected training photos.
    captions_ : ndarray [n, rank]
        Per photo, the normalised mean of its projected captions.
    """

    def fit(self, projection: ImageTextProjection, image_emb: np.ndarray,
            captions_emb: Sequence[np.ndarray]) -> LookAlikeCaptions:
        """Fit on image vectors [N, 1792] and, per image, its captions' embeddings [k_i, 384]."""
        self.photos_ = projection.project_images(image_emb)
        self.captions_ = _normalise(np.stack([projection.project_texts(c).mean(0) for c in captions_emb]))
        return self

    def features(self, zi: np.ndarray, similarity: np.ndarray) -> np.ndarray:
        """[N, len(LOOK_ALIKES)] for projected images `zi` [N, rank] and the pairs' cosines [N]."""
        vs_photos, vs_captions = zi @ self.photos_.T, zi @ self.captions_.T
        out = np.empty((len(zi), len(LOOK_ALIKES)), dtype=np.float32)
        for j, k in enumerate(LOOK_ALIKES):
            k = min(k, vs_photos.shape[1])
            nearest = np.argpartition(-vs_photos, k - 1, axis=1)[:, :k]
            reference = np.take_along_axis(vs_captions, nearest, 1)
            out[:, j] = (similarity - reference.mean(1)) / reference.std(1).clip(1e-6)
        return out

    def to_arrays(self, prefix: str = "look_alikes.") -> dict[str, np.ndarray]:
        return {prefix + "photos": self.photos_.astype(np.float16), prefix + "captions": self.captions_.astype(np.float16)}

    @classmethod
    def from_arrays(cls, arrays, prefix: str = "look_alikes.") -> LookAlikeCaptions:
        parts = cls()
        parts.photos_, parts.captions_ = (np.asarray(arrays[prefix + n], dtype=np.float32) for n in ("photos", "captions"))
        return parts


class WordGrounding:
    """How much more likely the image makes the text's words than they are anywhere.

    Per caption word (stem) that the captions of at least `min_photos` training photos use, a
    linear classifier of the standardised image vector says whether a caption of the photo
    uses it (multi-label logistic regression, trained with AdamW). For a pair, over the text's
    words that have a classifier: the mean, minimum and sum of log P(word | image) minus the
    word's log base rate, and the mean log P (``GROUNDING_NAMES``; NaN when no word has one).

    Attributes
    ----------
    vocabulary_ : list of str
    weight_ : ndarray [words, 1792]
    bias_, log_rate_ : ndarray [words]
    mean_, scale_ : ndarray [1792]
    """

    def __init__(self, min_photos: int = 8, epochs: int = 30, seed: int = 0):
        self.min_photos = min_photos
        self.epochs = epochs
        self.seed = seed

    def fit(self, image_emb: np.ndarray, photo_stems: Sequence[set[str]]) -> WordGrounding:
        """Fit on image vectors [N, 1792] and, per image, the stems its captions use."""
        import torch

        counts = Counter(s for stems in photo_stems for s in stems)
        self._set_vocabulary(sorted(w for w, c in counts.items() if c >= self.min_photos))
        y = np.zeros((len(image_emb), len(self.vocabulary_)), dtype=np.float32)
        for r, stems in enumerate(photo_stems):
            y[r, self._word_ids(stems)] = 1.0
        rate = y.mean(0).clip(1e-4, 0.99)
        self.log_rate_ = np.log(rate).astype(np.float32)
        self.mean_, self.scale_ = image_emb.mean(0), image_emb.std(0) + 1e-6
        x = torch.from_numpy(((image_emb - self.mean_) / self.scale_).astype(np.float32))
        target = torch.from_numpy(y)
        torch.manual_seed(self.seed)
        linear = torch.nn.Linear(x.shape[1], y.shape[1])
        with torch.no_grad():
            linear.bias.copy_(torch.from_numpy(np.log(rate / (1 - rate))))
        optimiser = torch.optim.AdamW(linear.parameters(), lr=1e-3, weight_decay=1e-3)
        rng = np.random.default_rng(self.seed)
        for _ in range(self.epochs):
            order = rng.permutation(len(x))
            for start in range(0, len(x), 256):
                rows = order[start : start + 256]
                loss = torch.nn.functional.binary_cross_entropy_with_logits(linear(x[rows]), target[rows])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        self.weight_ = linear.weight.detach().numpy().astype(np.float32)
        self.bias_ = linear.bias.detach().numpy().astype(np.float32)
        return self

    def features(self, image_emb: np.ndarray, text_stems: Sequence[set[str]]) -> np.ndarray:
        """[N, len(GROUNDING_NAMES)] for pairs (row i: image i with the stems of text i)."""
        out = np.full((len(image_emb), len(GROUNDING_NAMES)), np.nan, dtype=np.float32)
        rows = [r for r in range(len(text_stems)) if np.isfinite(image_emb[r]).all()]
        if not rows:
            return out
        logits = ((image_emb[rows] - self.mean_) / self.scale_) @ self.weight_.T + self.bias_
        log_p = -np.logaddexp(0.0, -logits)
        for j, r in enumerate(rows):
            ids = self._word_ids(text_stems[r])
            if ids:
                gain = log_p[j, ids] - self.log_rate_[ids]
                out[r] = [gain.mean(), gain.min(), gain.sum(), log_p[j, ids].mean()]
        return out

    def _set_vocabulary(self, words: list[str]) -> None:
        self.vocabulary_ = words
        self._index = {w: i for i, w in enumerate(words)}

    def _word_ids(self, stems: set[str]) -> list[int]:
        # Sorted: a set's order changes with the process's string hashing, and so would the sums.
        return sorted(self._index[s] for s in stems if s in self._index)

    def to_arrays(self, prefix: str = "grounding.") -> dict[str, np.ndarray]:
        return {prefix + "vocabulary": np.frombuffer("\n".join(self.vocabulary_).encode(), dtype=np.uint8),
                prefix + "weight": self.weight_.astype(np.float16), prefix + "bias": self.bias_,
                prefix + "log_rate": self.log_rate_, prefix + "mean": self.mean_, prefix + "scale": self.scale_}

    @classmethod
    def from_arrays(cls, arrays, prefix: str = "grounding.") -> WordGrounding:
        grounding = cls()
        grounding._set_vocabulary(bytes(arrays[prefix + "vocabulary"]).decode().split("\n"))
        for name in ("weight", "bias", "log_rate", "mean", "scale"):
            setattr(grounding, name + "_", np.asarray(arrays[prefix + name], dtype=np.float32))
        return grounding


@dataclass
class LearnedParts:
    """The parts fitted on captioned photos that give the learned (``INTERACTION_NAMES``) features.

    The raw projection cosine depends on how "generic" a caption or an image is; comparing it
    with the same text against reference images (and the same image against reference
    captions) removes that (the hubness correction of cross-modal retrieval).
    """

    projection: ImageTextProjection
    reference_images: np.ndarray  # [R, rank] projected
    reference_texts: np.ndarray  # [R, rank] projected
    neighbours: NeighbourBank
    look_alikes: LookAlikeCaptions
    grounding: WordGrounding
    wide_projection: ImageTextProjection  # of the wide look's embedding, with its own references
    wide_reference_images: np.ndarray
    wide_reference_texts: np.ndarray

    def features(self, image_emb: np.ndarray, text_emb: np.ndarray, text_stems: Sequence[set[str]],
                 wide_emb: np.ndarray) -> np.ndarray:
        """[N, len(INTERACTION_NAMES)] for pairs (row i: image i, its wide look `wide_emb[i]`, with text i),
        NaN where the image is missing."""
        # Columns in the order of INTERACTION_NAMES: projection, neighbours, look-alikes, grounding, wide projection.
        projection = np.full((len(text_emb), len(PROJECTION_NAMES)), np.nan, dtype=np.float32)
        look_alikes = np.full((len(text_emb), len(LOOK_ALIKE_NAMES)), np.nan, dtype=np.float32)
        wide = np.full((len(text_emb), len(WIDE_PROJECTION_NAMES)), np.nan, dtype=np.float32)
        ok = np.isfinite(image_emb).all(1)
        if ok.any():
            zi, sim, projection[ok] = _projection_columns(self.projection, self.reference_images,
                                                          self.reference_texts, image_emb[ok], text_emb[ok])
            look_alikes[ok] = self.look_alikes.features(zi, sim)
        ok &= np.isfinite(wide_emb).all(1)
        if ok.any():
            wide[ok] = _projection_columns(self.wide_projection, self.wide_reference_images, self.wide_reference_texts,
                                           wide_emb[ok], text_emb[ok], rank=False)[2]
        return np.hstack([projection, self.neighbours.features(image_emb, text_emb), look_alikes,
                          self.grounding.features(image_emb, text_stems), wide])

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {**self.projection.to_arrays(), **self.neighbours.to_arrays(), **self.look_alikes.to_arrays(),
                **self.grounding.to_arrays(), "reference.images": self.reference_images.astype(np.float16),
                "reference.texts": self.reference_texts.astype(np.float16),
                **self.wide_projection.to_arrays("wide_projection."),
                "wide_reference.images": self.wide_reference_images.astype(np.float16),
                "wide_reference.texts": self.wide_reference_texts.astype(np.float16)}

    @classmethod
    def from_arrays(cls, arrays) -> LearnedParts:
        def array(name: str) -> np.ndarray:
            return np.asarray(arrays[name], dtype=np.float32)

        return cls(ImageTextProjection.from_arrays(arrays), array("reference.images"), array("reference.texts"),
                   NeighbourBank.from_arrays(arrays), LookAlikeCaptions.from_arrays(arrays),
                   WordGrounding.from_arrays(arrays), ImageTextProjection.from_arrays(arrays, "wide_projection."),
                   array("wide_reference.images"), array("wide_reference.texts"))


def _projection_columns(projection: ImageTextProjection, reference_images: np.ndarray, reference_texts: np.ndarray,
                        image_emb: np.ndarray, text_emb: np.ndarray,
                        rank: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(projected images, cosines, columns)`: each pair's cosine, its z-scores against the text with
    reference images and the image with reference captions, and (`rank`) its rank there: the
    columns of PROJECTION_NAMES, or without the rank those of WIDE_PROJECTION_NAMES."""
    zi = projection.project_images(image_emb)
    zt = projection.project_texts(text_emb)
    sim = (zi * zt).sum(1)
    vs_images = zt @ reference_images.T  # [n, R]
    vs_texts = zi @ reference_texts.T
    columns = [sim, (sim - vs_images.mean(1)) / vs_images.std(1).clip(1e-6),
               (sim - vs_texts.mean(1)) / vs_texts.std(1).clip(1e-6)]
    if rank:
        columns.append((vs_images < sim[:, None]).mean(1))
    return zi, sim, np.stack(columns, axis=1)


# ----------------------------------------------------------------------------- trees as arrays

_NODE_FIELDS = ("feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf", "value")


def export_calibrated_hgb(calibrated) -> dict[str, np.ndarray]:
    """Plain arrays of a fitted ``CalibratedClassifierCV(HistGradientBoostingClassifier, method="sigmoid")``."""
    nodes = {f: [] for f in _NODE_FIELDS}
    roots, folds, baselines, a, b = [], [], [], [], []
    offset = 0
    for fold, member in enumerate(calibrated.calibrated_classifiers_):
        est = member.estimator
        if getattr(est, "is_categorical_", None) is not None and np.any(est.is_categorical_):
            raise ValueError("categorical features are not supported by the exported predictor")
        baselines.append(float(np.ravel(est._baseline_prediction)[0]))
        a.append(float(member.calibrators[0].a_))
        b.append(float(member.calibrators[0].b_))
        for (predictor,) in est._predictors:
            tree = predictor.nodes
            roots.append(offset)
            folds.append(fold)
            for f in _NODE_FIELDS:
                column = tree[f].astype(np.float64 if f in ("num_threshold", "value") else np.int64)
                if f in ("left", "right"):
                    column = column + offset
                nodes[f].append(column)
            offset += len(tree)
    arrays = {"trees." + f: np.concatenate(v) for f, v in nodes.items()}
    arrays["trees.feature_idx"] = arrays["trees.feature_idx"].astype(np.int32)
    arrays["trees.left"] = arrays["trees.left"].astype(np.int32)
    arrays["trees.right"] = arrays["trees.right"].astype(np.int32)
    arrays["trees.missing_go_to_left"] = arrays["trees.missing_go_to_left"].astype(bool)
    arrays["trees.is_leaf"] = arrays["trees.is_leaf"].astype(bool)
    arrays["trees.roots"] = np.array(roots, dtype=np.int32)
    arrays["trees.fold"] = np.array(folds, dtype=np.int32)
    arrays["calibration.baseline"] = np.array(baselines)
    arrays["calibration.a"] = np.array(a)
    arrays["calibration.b"] = np.array(b)
    return arrays


class _TreeEnsemble:
    """Numpy predictor over exported trees: raw margins per fold, then Platt calibration."""

    def __init__(self, arrays):
        for f in (*_NODE_FIELDS, "roots", "fold"):
            setattr(self, f, np.asarray(arrays["trees." + f]))
        self.baseline = np.asarray(arrays["calibration.baseline"])
        self.a = np.asarray(arrays["calibration.a"])
        self.b = np.asarray(arrays["calibration.b"])
        self.n_folds = len(self.baseline)

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Leaf node index [N, T] of every sample in every tree."""
        idx = np.broadcast_to(self.roots, (len(X), len(self.roots))).copy()
        rows = np.arange(len(X))[:, None]
        while True:
            active = ~self.is_leaf[idx]
            if not active.any():
                return idx
            x = X[rows, self.feature_idx[idx]]
            go_left = np.where(np.isnan(x), self.missing_go_to_left[idx], x <= self.num_threshold[idx])
            nxt = np.where(go_left, self.left[idx], self.right[idx])
            idx = np.where(active, nxt, idx)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(relevant) [N], the mean of the calibrated folds (as CalibratedClassifierCV)."""
        X = np.asarray(X, dtype=np.float64)
        if len(X) == 0:
            return np.zeros(0)
        values = self.value[self.leaves(X)]  # [N, T]
        probs = np.zeros(len(X))
        for fold in range(self.n_folds):
            raw = self.baseline[fold] + values[:, self.fold == fold].sum(1)
            probs += 1.0 / (1.0 + np.exp(self.a[fold] * raw + self.b[fold]))
        return probs / self.n_folds


class RelevanceModel:
    """Projection + calibrated trees + the reference banks and metadata needed to score pairs.

    Built by ``lait train-relevance`` (:mod:`lait.pipeline.commands.train_relevance`), saved to
    and loaded from one ``.npz`` holding only numeric arrays and a JSON string.

    Attributes
    ----------
    feature_names : list of str
        Columns the classifier expects: the extractor's names then ``INTERACTION_NAMES``.
    meta : dict
        Training facts (sizes, held-out figures, sources).
    """

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict):
        self.arrays = arrays
        self.meta = meta
        self.feature_names = list(meta["feature_names"])
        self.parts = LearnedParts.from_arrays(arrays)
        self.label_embeddings = np.asarray(arrays["label_embeddings"], dtype=np.float32)
        self.medians = np.asarray(arrays["feature_medians"], dtype=np.float64)
        self.trees = _TreeEnsemble(arrays)

    # -- persistence -------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        payload = dict(self.arrays)
        payload["meta_json"] = np.frombuffer(json.dumps(self.meta, sort_keys=True).encode(), dtype=np.uint8)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            np.savez_compressed(f, **payload)

    @classmethod
    def load(cls, path: str | Path | None = None) -> RelevanceModel:
        """Load a model file (default: the one shipped in ``lait/scoring/models``); no code is executed."""
        path = Path(path) if path else DEFAULT_MODEL_PATH
        if not path.exists():
            raise FileNotFoundError(f"no relevance model at {path} (train one with `lait train-relevance`)")
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files if k != "meta_json"}
            meta = json.loads(bytes(data["meta_json"]).decode())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: model format {meta.get('format_version')}, this lait reads {FORMAT_VERSION}")
        return cls(arrays, meta)

    # -- scoring -------------------------------------------------------------------------

    def feature_extractor(self, device: str | None = None, **models):
        """A :class:`~lait.scoring.relevance_features.RelevanceFeatures` matching this model."""
        from lait.scoring.relevance_features import RelevanceFeatures

        extractor = RelevanceFeatures(device=device, label_embeddings=self.label_embeddings, **models)
        expected = self.feature_names[: len(self.feature_names) - len(INTERACTION_NAMES)]
        if extractor.names != expected:
            raise ValueError("the relevance model was trained on other features than this code extracts; retrain it")
        return extractor

    def interaction(self, image_emb: np.ndarray, text_emb: np.ndarray, text_stems: Sequence[set[str]],
                    wide_emb: np.ndarray) -> np.ndarray:
        return self.parts.features(image_emb, text_emb, text_stems, wide_emb)

    def feature_matrix(self, extractor, pairs: Sequence[dict]) -> np.ndarray:
        """All classifier inputs [N, F] of `pairs`."""
        texts, images, titles = extractor.encode(pairs)
        base = extractor.pair_features(pairs, texts, images, page_titles=titles)
        from lait.scoring.relevance_features import content_stems

        return np.hstack([base, self.interaction(images.embeddings, texts.embeddings,
                                                 [content_stems(words) for words in texts.words], images.wide)])

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.trees.predict_proba(X).astype(np.float32)

    def score_pairs(self, extractor, pairs: Sequence[dict]) -> np.ndarray:
        """Relevance in [0, 1] of each pair (``text`` and ``image_bytes``; other keys optional)."""
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        return self.predict_proba(self.feature_matrix(extractor, pairs))

    def top_features(self, x: np.ndarray, k: int = 5) -> list[dict]:
        """The `k` features that move this pair's score most when set to their training median."""
        x = np.asarray(x, dtype=np.float64)
        base = float(self.trees.predict_proba(x[None])[0])
        probes = np.repeat(x[None], len(x), axis=0)
        probes[np.arange(len(x)), np.arange(len(x))] = self.medians
        effect = base - self.trees.predict_proba(probes)
        order = np.argsort(-np.abs(effect))[:k]
        return [{"feature": self.feature_names[j], "value": None if np.isnan(x[j]) else round(float(x[j]), 4),
                 "effect": round(float(effect[j]), 4)} for j in order]
