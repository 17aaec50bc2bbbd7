"""Naturalness: is this image a natural photo, or a logo, icon, chart, diagram, screenshot,
clip art, text image, flat illustration, emoji or map?

LAIT keeps only natural, realistic photos ("a binary classifier removes non-natural,
non-realistic and unlearnable images"). Our classifier is a logistic regression over three
feature groups:

- cheap image statistics (:func:`image_statistics`): colour counts and the share of the
  dominant colours, histogram entropies, saturation, gradient and edge statistics, the
  share of flat areas, sensor-noise level, pure white/black share. Graphics are made of few
  flat colours and sharp edges; photos have noise, smooth shading and many colours;
- the log-probabilities that EfficientNet-Lite0 gives a few ImageNet classes of printed or
  displayed matter (:data:`CLASS_FEATURES`: comic book, book jacket, web site, menu, screen...)
  and of their sum: the softmax makes them a non-linear view of the embedding that names
  comic panels, covers, posters and screens, which the plain photos-vs-graphics data shows
  too rarely (chosen by meaning, not fitted; judged by leave-one-site-out CV on real pages,
  ``bench/quality_naturalness_web.py``);
- the pooled embedding of the ImageNet-pretrained EfficientNet-Lite0 (1280 values), which
  knows what photos of objects look like.

The model is trained by ``lait train-naturalness`` and ships as JSON (plain numbers, loaded
without executing code, unlike pickle).
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from lait.encoders.efficientnet import NetworkOutputs
from lait.encoders.efficientnet_onnx import load_efficientnet
from lait.encoders.image_resize import resized_planes

MODEL_FILE = Path(__file__).resolve().parent.parent / "scoring" / "models" / "naturalness.json"
MODEL_FORMAT = "lait-naturalness-logreg/2"
# Format 1: [statistics, embedding], no ImageNet class features; still loaded.
READABLE_FORMATS = ("lait-naturalness-logreg/1", MODEL_FORMAT)
# Statistics are computed on the image shrunk to this longer side: enough for texture and
# noise, cheap, and the same for every source size.
STATS_SIDE = 256
STATISTIC_NAMES = [
    "log_colours", "top1_colour_share", "top8_colour_share", "top32_colour_share",
    "grey_entropy", "colour_entropy", "saturation_mean", "saturation_std", "grey_share",
    "brightness_mean", "brightness_std", "white_share", "black_share",
    "gradient_mean", "gradient_std", "zero_gradient_share", "strong_edge_share",
    "weak_edge_share", "gradient_entropy", "flat_block_share", "textured_block_share",
    "noise_level", "log_noise_level", "hue_entropy",
]
# ImageNet classes (names as in lait.encoders.efficientnet.IMAGENET_CLASSES) whose probability says
# "printed or displayed matter, not a scene": each gives log(p + CLASS_EPSILON), and one more
# feature is log(sum of their p + CLASS_EPSILON).
CLASS_FEATURES = (
    "web site", "comic book", "book jacket", "menu", "crossword puzzle", "jigsaw puzzle", "envelope",
    "packet", "screen", "monitor", "television", "scoreboard", "street sign",
)
CLASS_EPSILON = 1e-4
EMBEDDING_DIM = 1280


def image_statistics(image: Image.Image) -> np.ndarray:
    """The cheap statistics of an RGB image, in the order of :data:`STATISTIC_NAMES`."""
    red, green, blue = _statistics_planes(image)
    n = red.size
    counts = _colour_counts(red, green, blue)
    top = np.maximum(np.maximum(red, green), blue)
    bottom = np.minimum(np.minimum(red, green), blue)
    saturation = _saturation(top, bottom)
    grey = (0.299 * red + 0.587 * green + 0.114 * blue).astype(np.float32)
    grey_hist = np.bincount(grey.astype(np.uint8).ravel(), minlength=256) / n
    return np.array([
        *_colour_shares(counts, n),
        _entropy(grey_hist), _entropy(_coarse_colour_counts(counts) / n),
        saturation.mean(), saturation.std(), _share(saturation < 0.08),
        grey.mean() / 255, grey.std() / 255, _share(bottom >= 245), _share(top <= 10),
        *_gradient_statistics(grey),
        _hue_entropy(red, green, blue, saturation),
    ], dtype=np.float32)


def _statistics_planes(image: Image.Image) -> np.ndarray:
    """Red, green and blue of `image` shrunk to :data:`STATS_SIDE` on its longer side, as Pillow's
    `thumbnail` shrinks it (bilinear), as contiguous uint8 [h, w] planes: every statistic reads
    whole planes, several times faster than the strided channels of an [h, w, 3] array."""
    size = _thumbnail_size(image.width, image.height, STATS_SIDE)
    return resized_planes(image, size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def _thumbnail_size(width: int, height: int, side: int) -> tuple[int, int]:
    """The size Pillow's ``thumbnail((side, side))`` gives a `width` x `height` image: the aspect
    ratio kept as closely as whole pixels allow, the longer side at most `side`."""
    if width <= side and height <= side:
        return width, height
    aspect = width / height
    if aspect <= 1:
        return _closest(side * aspect, lambda n: abs(aspect - n / side)), side
    return side, _closest(side / aspect, lambda n: 0 if n == 0 else abs(aspect - side / n))


def _closest(number: float, error) -> int:
    """Pillow's rounding in `thumbnail`: floor or ceiling of `number`, whichever errs less, at least 1."""
    return max(min(math.floor(number), math.ceil(number), key=error), 1)


def _share(mask: np.ndarray) -> float:
    """The share of True in `mask` (the same float as ``mask.mean()``, counted without a float sum)."""
    return np.count_nonzero(mask) / mask.size


# Colour codes keep 5 bits per channel so that JPEG noise on a flat logo does not count as colours.
_COLOUR_BITS = 5


def _colour_counts(red: np.ndarray, green: np.ndarray, blue: np.ndarray) -> np.ndarray:
    """Pixels per 5-bit colour, [32 ** 3] indexed by r << 10 | g << 5 | b."""
    shift = 8 - _COLOUR_BITS
    codes = (red.astype(np.uint16) >> shift) << 2 * _COLOUR_BITS
    codes |= (green.astype(np.uint16) >> shift) << _COLOUR_BITS
    codes |= blue.astype(np.uint16) >> shift
    return np.bincount(codes.ravel(), minlength=1 << 3 * _COLOUR_BITS)


@functools.cache
def _saturation_table() -> np.ndarray:
    """(top - bottom) / top of every (top, bottom) pair of channel values, [256 * 256] float32
    (0 where top is 0), computed with the very float32 operations a per-pixel formula uses."""
    values = np.arange(256, dtype=np.float32)
    top, bottom = values[:, None], values[None, :]
    return ((top - bottom) / np.maximum(top, np.float32(1))).ravel()


def _saturation(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """Saturation of each pixel from its largest and smallest channel (uint8): a table look-up."""
    pairs = top.astype(np.intp) << 8
    pairs |= bottom
    return _saturation_table()[pairs]


def _colour_shares(counts: np.ndarray, n: int) -> list[float]:
    """log_colours and the shares of the 1, 8 and 32 most frequent colours among `n` pixels."""
    present = counts[counts > 0]
    # Only the 32 largest counts matter: partition the colours present (a few thousand of the
    # 32768), sort the largest 32 and pad with zeros: the same values in the same order as the
    # first 32 of a full descending sort.
    largest = np.zeros(32, dtype=counts.dtype)
    top = np.partition(present, len(present) - 32)[-32:] if len(present) > 32 else present
    largest[:len(top)] = np.sort(top)[::-1]
    share = largest / n
    return [np.log1p(len(present)) / np.log1p(n), share[0], share[:8].sum(), share[:32].sum()]


def _coarse_colour_counts(counts: np.ndarray) -> np.ndarray:
    """Pixels per 4-bit colour (r << 8 | g << 4 | b), summed from the 5-bit counts."""
    # Dropping the low bit of one channel at a time adds pairs of neighbouring counts: three
    # additions of halves instead of numpy's slower reduction over three strided axes.
    for pairs_per_run in (1 << 10, 1 << 5, 1):  # red, green, blue
        halves = counts.reshape(-1, 2, pairs_per_run)
        counts = halves[:, 0] + halves[:, 1]
    return counts.ravel()


def _gradient_statistics(grey: np.ndarray) -> list[float]:
    """Gradient, edge, flat-block and noise statistics of the grey image."""
    if min(grey.shape) < 2:  # a line of pixels (a spacer, a rule): np.gradient needs two along each axis
        grey = np.pad(grey, [(0, max(0, 2 - side)) for side in grey.shape], mode="edge")
    gy, gx = np.gradient(grey)
    magnitude = np.hypot(gx, gy)
    grad_hist = np.bincount(np.minimum(magnitude, 255).astype(np.int32).ravel(), minlength=256) / magnitude.size
    block_std = _block_std(grey, 8)
    # Sensor noise: median absolute second difference (a Laplacian), near 0 on rendered graphics.
    laplacian = grey[1:-1, 1:-1] * 4
    for neighbour in (grey[:-2, 1:-1], grey[2:, 1:-1], grey[1:-1, :-2], grey[1:-1, 2:]):
        laplacian -= neighbour
    np.abs(laplacian, out=laplacian)
    noise = _median_of_non_negative(laplacian) if laplacian.size else 0.0
    return [
        magnitude.mean() / 255, magnitude.std() / 255, _share(magnitude < 0.5),
        _share(magnitude > 60), _share((magnitude > 2) & (magnitude <= 20)), _entropy(grad_hist),
        _share(block_std < 1.0) if block_std.size else 1.0,
        _share(block_std > 12.0) if block_std.size else 0.0,
        noise / 10, np.log1p(noise),
    ]


def _median_of_non_negative(values: np.ndarray) -> float:
    """``float(np.median(values))`` of non-negative float32 values, in a few linear passes.

    The bit patterns of non-negative floats sort as the floats do, so a histogram of their high
    16 bits finds the bin holding each middle element, and only that bin is partitioned.
    """
    bits = np.ascontiguousarray(values, dtype=np.float32).ravel().view(np.uint32)
    high = bits >> 16
    below = np.cumsum(np.bincount(high))  # elements in bins up to and including each bin
    middle = []
    for rank in sorted({(bits.size - 1) // 2, bits.size // 2}):
        bin_index = int(np.searchsorted(below, rank, side="right"))
        rank_in_bin = rank - (int(below[bin_index - 1]) if bin_index else 0)
        middle.append(np.partition(bits[high == bin_index], rank_in_bin)[rank_in_bin])
    if len(middle) == 1:  # odd count: np.median's middle element
        middle *= 2
    # The mean of the two middle values as np.median takes it (a float32 mean).
    return float(np.mean(np.array(middle, dtype=np.uint32).view(np.float32)))


def _entropy(probabilities: np.ndarray) -> float:
    p = probabilities[probabilities > 0]
    return float(-(p * np.log2(p)).sum())


def _block_std(grey: np.ndarray, block: int) -> np.ndarray:
    """Standard deviation of each `block` x `block` tile."""
    h, w = (grey.shape[0] // block) * block, (grey.shape[1] // block) * block
    # Each tile's pixels gathered into one contiguous row: a reduction along the last axis,
    # much faster than over two strided axes (the sums differ from those in the last bits).
    tiles = grey[:h, :w].reshape(h // block, block, w // block, block).transpose(0, 2, 1, 3)
    return tiles.reshape(-1, block * block).std(axis=1)


@functools.cache
def _hue_bins() -> np.ndarray:
    """The 10-degree hue bin of every (g - b, 2r - g - b) pair, [511 * 1021] uint8.

    The hue depends on the pixel only through these two differences, so a table computed once
    replaces an arctan2 per coloured pixel; its entries are the very floats that formula gives.
    """
    g_minus_b = np.arange(-255, 256, dtype=np.float32)[:, None]
    two_r_minus_g_b = np.arange(-510, 511, dtype=np.float32)[None, :]
    hue = np.degrees(np.arctan2(np.sqrt(3) * g_minus_b, two_r_minus_g_b)) % 360
    return (hue // 10).astype(np.uint8).ravel()


def _hue_entropy(red: np.ndarray, green: np.ndarray, blue: np.ndarray, saturation: np.ndarray) -> float:
    """Entropy of the hue of coloured pixels (36 bins); 0 for grey images."""
    coloured = saturation > 0.15
    if not coloured.any():
        return 0.0
    r, g, b = (channel[coloured].astype(np.int32) for channel in (red, green, blue))
    rows, columns = g - b + 255, 2 * r - g - b + 510
    bins = _hue_bins()[rows * 1021 + columns]
    return _entropy(np.bincount(bins, minlength=36) / bins.size)


def class_features(probs: np.ndarray, classes: tuple[str, ...] | list[str] = CLASS_FEATURES) -> np.ndarray:
    """[n, len(classes) + 1]: log(p + eps) of each class, then log(sum of their p + eps); [n, 0] for no class."""
    probs = np.asarray(probs, dtype=np.float64).reshape(-1, 1000)
    if not classes:
        return np.zeros((len(probs), 0), dtype=np.float32)
    from lait.encoders.efficientnet import IMAGENET_CLASSES

    unknown = [name for name in classes if name not in IMAGENET_CLASSES]
    if unknown:
        raise ValueError(f"not ImageNet class names: {unknown}")
    chosen = probs[:, [IMAGENET_CLASSES.index(name) for name in classes]]
    return np.log(np.hstack([chosen, chosen.sum(axis=1, keepdims=True)]) + CLASS_EPSILON).astype(np.float32)


def class_feature_names(classes: tuple[str, ...] | list[str] = CLASS_FEATURES) -> list[str]:
    if not classes:
        return []
    return [f"log_p_{name.replace(' ', '_')}" for name in classes] + ["log_p_any_of_them"]


def assemble_features(statistics: np.ndarray, embeddings: np.ndarray, probs: np.ndarray,
                      classes: tuple[str, ...] | list[str] = CLASS_FEATURES) -> np.ndarray:
    """Feature rows [n, 24 + k + 1280]: statistics, class features (k = len(classes) + 1, or 0), embedding."""
    return np.hstack([np.asarray(statistics, np.float32).reshape(len(embeddings), -1),
                      class_features(probs, classes), embeddings]).astype(np.float32)


class NaturalnessClassifier:
    """Logistic regression on standardised [image statistics, class features, EfficientNet embedding].

    Parameters
    ----------
    C : float, default=0.1
        Inverse L2 regularisation strength of the logistic regression.
    statistics_weight : float, default=4.0
        The standardised statistics and class features are multiplied by this before the
        regression so that a few dozen values are not drowned by 1280 embedding dimensions
        under one L2 penalty.
    threshold : float, default=0.5
        Probability of "natural photo" at or above which `predict` says natural.
    random_state : int, default=0
    class_features : sequence of str, default=CLASS_FEATURES
        ImageNet classes whose log-probabilities are features (see :func:`class_features`);
        empty for the format-1 layout [statistics, embedding].

    Attributes
    ----------
    mean_, scale_ : ndarray of shape (n_features,)
        Standardisation learned in `fit`.
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    """

    def __init__(self, C: float = 0.1, statistics_weight: float = 4.0, threshold: float = 0.5,
                 random_state: int = 0, class_features: tuple[str, ...] | list[str] = CLASS_FEATURES) -> None:
        self.C = C
        self.statistics_weight = statistics_weight
        self.threshold = threshold
        self.random_state = random_state
        self.class_features = tuple(class_features)

    @property
    def n_front(self) -> int:
        """How many leading features (statistics, class features) `statistics_weight` scales."""
        return len(STATISTIC_NAMES) + len(class_feature_names(self.class_features))

    @property
    def n_features(self) -> int:
        return self.n_front + EMBEDDING_DIM

    def features(self, statistics: np.ndarray, embeddings: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """This model's feature rows from the statistics, embeddings and ImageNet probabilities."""
        return assemble_features(statistics, embeddings, probs, self.class_features)

    def _weights(self, n_features: int) -> np.ndarray:
        weights = np.ones(n_features, dtype=np.float64)
        weights[:self.n_front] = self.statistics_weight
        return weights

    def fit(self, X: np.ndarray, y: np.ndarray) -> NaturalnessClassifier:
        """Fit on features `X` [n, 24 + k + 1280] (:meth:`features`) and labels `y` (1 = natural photo)."""
        from sklearn.linear_model import LogisticRegression

        X = np.asarray(X, dtype=np.float64)
        if X.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} features (24 statistics, "
                             f"{self.n_front - len(STATISTIC_NAMES)} class features, {EMBEDDING_DIM} embedding), "
                             f"got {X.shape[1]}")
        self.mean_ = X.mean(axis=0)
        self.scale_ = X.std(axis=0)
        self.scale_[self.scale_ < 1e-8] = 1.0
        model = LogisticRegression(C=self.C, max_iter=5000, random_state=self.random_state)
        model.fit(self._standardise(X), np.asarray(y, dtype=int))
        self.coef_ = model.coef_.ravel().copy()
        self.intercept_ = float(model.intercept_[0])
        return self

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_ * self._weights(X.shape[1])

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self._standardise(np.asarray(X, dtype=np.float64)) @ self.coef_ + self.intercept_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """[n, 2] probabilities of (other, natural photo)."""
        natural = 1.0 / (1.0 + np.exp(-np.clip(self.decision_function(X), -50, 50)))
        return np.column_stack([1 - natural, natural])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= self.threshold).astype(int)

    def to_dict(self) -> dict:
        return {
            "format": MODEL_FORMAT,
            "params": {"C": self.C, "statistics_weight": self.statistics_weight,
                       "threshold": self.threshold, "random_state": self.random_state,
                       "class_features": list(self.class_features)},
            "statistic_names": STATISTIC_NAMES,
            "class_feature_names": class_feature_names(self.class_features),
            "mean": self.mean_.tolist(), "scale": self.scale_.tolist(),
            "coef": self.coef_.tolist(), "intercept": self.intercept_,
        }

    def save(self, path: str | Path, **metadata) -> None:
        """Write the fitted parameters (and `metadata`, e.g. training figures) as JSON."""
        state = self.to_dict()
        state["metadata"] = metadata
        Path(path).write_text(json.dumps(state, separators=(",", ":")) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path = MODEL_FILE) -> NaturalnessClassifier:
        """Read a model written by `save`: numbers only, nothing is executed."""
        state = json.loads(Path(path).read_text(encoding="utf-8"))
        if state.get("format") not in READABLE_FORMATS:
            raise ValueError(f"{path} is not a {MODEL_FORMAT} model (format {state.get('format')!r})")
        if state["statistic_names"] != STATISTIC_NAMES:
            raise ValueError(f"{path} was trained with other image statistics; retrain it "
                             "with `lait train-naturalness`")
        params = dict(state["params"])
        params["class_features"] = tuple(params.get("class_features", ()))  # format 1: none
        model = cls(**params)
        if len(state["coef"]) != model.n_features:
            raise ValueError(f"{path} has {len(state['coef'])} coefficients for {model.n_features} features")
        model.mean_ = np.asarray(state["mean"], dtype=np.float64)
        model.scale_ = np.asarray(state["scale"], dtype=np.float64)
        model.coef_ = np.asarray(state["coef"], dtype=np.float64)
        model.intercept_ = float(state["intercept"])
        return model


def naturalness_features(images: list[Image.Image], net,
                         classes: tuple[str, ...] | list[str] = CLASS_FEATURES) -> np.ndarray:
    """Feature rows [n, 24 + k + 1280] for RGB images: statistics, class features, EfficientNet embedding.

    `net` is a :class:`lait.encoders.efficientnet.EfficientNetLite0`; `classes` as
    :attr:`NaturalnessClassifier.class_features` (the default matches a default classifier).
    """
    return _features_and_network_outputs(images, net, classes)[0]


def _features_and_network_outputs(images: list[Image.Image], net, classes: tuple[str, ...] | list[str] = CLASS_FEATURES,
                                  ) -> tuple[np.ndarray, NetworkOutputs]:
    """(feature rows, the network's outputs: embeddings [n, 1280], probabilities [n, 1000], detail [n, 512])."""
    if not images:
        n_features = len(STATISTIC_NAMES) + len(class_feature_names(classes)) + EMBEDDING_DIM
        return np.zeros((0, n_features), dtype=np.float32), NetworkOutputs.empty()
    statistics = np.stack([image_statistics(image) for image in images])
    outputs = net.encode(images)
    return assemble_features(statistics, outputs.embeddings, outputs.probs, classes), outputs


class NaturalnessScorer:
    """`score(images) -> np.ndarray`: probability that each RGB image is a natural photo.

    Loads EfficientNet-Lite0 and the shipped classifier once. On the CPU the network runs on
    ONNX Runtime (:class:`lait.encoders.efficientnet_onnx.OnnxEfficientNetLite0`, the same
    outputs up to float rounding, in less time), on a GPU on PyTorch.

    Parameters
    ----------
    model_path : str, Path or None, default=None
        The classifier's JSON file; None means the shipped one.
    device : str or None, default=None
        Torch device; None picks CUDA when available, else the CPU.
    net : object or None, default=None
        A network with ``encode(images)`` (EfficientNetLite0's) to use instead of loading one.
    threads : int, default=1
        ONNX Runtime intra-op threads on the CPU.
    """

    def __init__(self, model_path: str | Path | None = None, device: str | None = None, net=None,
                 threads: int = 1) -> None:
        self.classifier = NaturalnessClassifier.load(model_path or MODEL_FILE)
        self.net = net or load_efficientnet(device, threads)

    @property
    def threshold(self) -> float:
        return self.classifier.threshold

    def score(self, images: list[Image.Image]) -> np.ndarray:
        return self.score_with_network_outputs(images)[0]

    def score_with_network_outputs(self, images: list[Image.Image]) -> tuple[np.ndarray, NetworkOutputs]:
        """(scores, the network's outputs): later stages reuse the outputs."""
        if not images:
            return np.zeros(0, dtype=np.float32), NetworkOutputs.empty()
        features, outputs = _features_and_network_outputs(images, self.net, self.classifier.class_features)
        return self.classifier.predict_proba(features)[:, 1].astype(np.float32), outputs
