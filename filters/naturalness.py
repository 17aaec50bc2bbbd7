"""Naturalness: is this image a natural photo, or a logo, icon, chart, diagram, screenshot,
clip art, text image, flat illustration, emoji or map?

LAIT keeps only natural, realistic photos ("a binary classifier removes non-natural,
non-realistic and unlearnable images"). Our classifier is a logistic regression over two
feature groups:

- cheap image statistics (:func:`image_statistics`): colour counts and the share of the
  dominant colours, histogram entropies, saturation, gradient and edge statistics, the
  share of flat areas, sensor-noise level, pure white/black share. Graphics are made of few
  flat colours and sharp edges; photos have noise, smooth shading and many colours;
- the pooled embedding of the ImageNet-pretrained EfficientNet-Lite0 (1280 values), which
  knows what photos of objects look like.

The model is trained by ``lait train-naturalness`` and ships as JSON (plain numbers, loaded
without executing code, unlike pickle).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

MODEL_FILE = Path(__file__).resolve().parent.parent / "scoring" / "models" / "naturalness.json"
MODEL_FORMAT = "lait-naturalness-logreg/1"
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


def image_statistics(image: Image.Image) -> np.ndarray:
    """The cheap statistics of an RGB image, in the order of :data:`STATISTIC_NAMES`."""
    small = image.convert("RGB")
    if max(small.size) > STATS_SIDE:
        small = small.copy()
        small.thumbnail((STATS_SIDE, STATS_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    rgb = np.asarray(small, dtype=np.uint8)
    pixels = rgb.reshape(-1, 3).astype(np.int32)
    n = len(pixels)

    # Colours, 5 bits per channel so that JPEG noise on a flat logo does not count as colours.
    codes = (pixels[:, 0] >> 3) << 10 | (pixels[:, 1] >> 3) << 5 | (pixels[:, 2] >> 3)
    counts = np.sort(np.bincount(codes, minlength=1 << 15))[::-1]
    colours = int((counts > 0).sum())
    share = counts / n

    grey = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).astype(np.float32)
    grey_hist = np.bincount(grey.astype(np.uint8).ravel(), minlength=256) / n
    colour_hist = np.bincount((pixels[:, 0] >> 4) << 8 | (pixels[:, 1] >> 4) << 4 | (pixels[:, 2] >> 4),
                              minlength=1 << 12)  # 4 bits per channel
    top = rgb.max(axis=2).astype(np.float32)
    bottom = rgb.min(axis=2).astype(np.float32)
    saturation = np.where(top > 0, (top - bottom) / np.maximum(top, 1), 0.0)
    hue_hist = _hue_histogram(rgb, saturation)

    gy, gx = np.gradient(grey)
    magnitude = np.hypot(gx, gy)
    grad_hist = np.bincount(np.minimum(magnitude, 255).astype(np.int32).ravel(), minlength=256) / magnitude.size
    block_std = _block_std(grey, 8)
    # Sensor noise: median absolute second difference (a Laplacian), near 0 on rendered graphics.
    laplacian = np.abs(grey[1:-1, 1:-1] * 4 - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:])
    noise = float(np.median(laplacian)) if laplacian.size else 0.0

    return np.array([
        np.log1p(colours) / np.log1p(n),
        share[0], share[:8].sum(), share[:32].sum(),
        _entropy(grey_hist), _entropy(colour_hist / n),
        saturation.mean(), saturation.std(), (saturation < 0.08).mean(),
        grey.mean() / 255, grey.std() / 255, (bottom >= 245).mean(), (top <= 10).mean(),
        magnitude.mean() / 255, magnitude.std() / 255, (magnitude < 0.5).mean(),
        (magnitude > 60).mean(), ((magnitude > 2) & (magnitude <= 20)).mean(), _entropy(grad_hist),
        (block_std < 1.0).mean() if block_std.size else 1.0,
        (block_std > 12.0).mean() if block_std.size else 0.0,
        noise / 10, np.log1p(noise), hue_hist,
    ], dtype=np.float32)


def _entropy(probabilities: np.ndarray) -> float:
    p = probabilities[probabilities > 0]
    return float(-(p * np.log2(p)).sum())


def _block_std(grey: np.ndarray, block: int) -> np.ndarray:
    """Standard deviation of each `block` x `block` tile."""
    h, w = (grey.shape[0] // block) * block, (grey.shape[1] // block) * block
    tiles = grey[:h, :w].reshape(h // block, block, w // block, block)
    return tiles.std(axis=(1, 3)).ravel()


def _hue_histogram(rgb: np.ndarray, saturation: np.ndarray) -> float:
    """Entropy of the hue of coloured pixels (36 bins); 0 for grey images."""
    coloured = saturation > 0.15
    if not coloured.any():
        return 0.0
    r, g, b = (rgb[..., i][coloured].astype(np.float32) for i in range(3))
    hue = np.degrees(np.arctan2(np.sqrt(3) * (g - b), 2 * r - g - b)) % 360
    hist = np.bincount((hue // 10).astype(np.int32), minlength=36) / hue.size
    return _entropy(hist)


class NaturalnessClassifier:
    """Logistic regression on standardised [image statistics, EfficientNet embedding] features.

    Parameters
    ----------
    C : float, default=0.1
        Inverse L2 regularisation strength of the logistic regression.
    statistics_weight : float, default=4.0
        The standardised statistics are multiplied by this before the regression so that
        24 statistics are not drowned by 1280 embedding dimensions under one L2 penalty.
    threshold : float, default=0.5
        Probability of "natural photo" at or above which `predict` says natural.
    random_state : int, default=0

    Attributes
    ----------
    mean_, scale_ : ndarray of shape (n_features,)
        Standardisation learned in `fit`.
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    """

    def __init__(self, C: float = 0.1, statistics_weight: float = 4.0, threshold: float = 0.5,
                 random_state: int = 0) -> None:
        self.C = C
        self.statistics_weight = statistics_weight
        self.threshold = threshold
        self.random_state = random_state

    def _weights(self, n_features: int) -> np.ndarray:
        weights = np.ones(n_features, dtype=np.float64)
        weights[:len(STATISTIC_NAMES)] = self.statistics_weight
        return weights

    def fit(self, X: np.ndarray, y: np.ndarray) -> NaturalnessClassifier:
        """Fit on features `X` [n, 24 + 1280] and labels `y` (1 = natural photo)."""
        from sklearn.linear_model import LogisticRegression

        X = np.asarray(X, dtype=np.float64)
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
                       "threshold": self.threshold, "random_state": self.random_state},
            "statistic_names": STATISTIC_NAMES,
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
        if state.get("format") != MODEL_FORMAT:
            raise ValueError(f"{path} is not a {MODEL_FORMAT} model (format {state.get('format')!r})")
        if state["statistic_names"] != STATISTIC_NAMES:
            raise ValueError(f"{path} was trained with other image statistics; retrain it "
                             "with `lait train-naturalness`")
        model = cls(**state["params"])
        model.mean_ = np.asarray(state["mean"], dtype=np.float64)
        model.scale_ = np.asarray(state["scale"], dtype=np.float64)
        model.coef_ = np.asarray(state["coef"], dtype=np.float64)
        model.intercept_ = float(state["intercept"])
        return model


def naturalness_features(images: list[Image.Image], net) -> np.ndarray:
    """Feature rows [n, 24 + 1280] for RGB images: statistics then the EfficientNet embedding.

    `net` is a :class:`scoring.efficientnet.EfficientNetLite0`.
    """
    return _features_and_network_outputs(images, net)[0]


def _features_and_network_outputs(images: list[Image.Image], net) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(feature rows, EfficientNet embeddings [n, 1280], ImageNet probabilities [n, 1000])."""
    if not images:
        return (np.zeros((0, len(STATISTIC_NAMES) + 1280), dtype=np.float32),
                np.zeros((0, 1280), dtype=np.float32), np.zeros((0, 1000), dtype=np.float32))
    statistics = np.stack([image_statistics(image) for image in images])
    embeddings, probs = net.embed_and_classify(images)
    return np.hstack([statistics, embeddings]).astype(np.float32), embeddings, probs


class NaturalnessScorer:
    """`score(images) -> np.ndarray`: probability that each RGB image is a natural photo.

    Loads EfficientNet-Lite0 and the shipped classifier once.
    """

    def __init__(self, model_path: str | Path | None = None, device: str | None = None, net=None) -> None:
        from scoring.efficientnet import EfficientNetLite0

        self.classifier = NaturalnessClassifier.load(model_path or MODEL_FILE)
        self.net = net or EfficientNetLite0(device=device)

    @property
    def threshold(self) -> float:
        return self.classifier.threshold

    def score(self, images: list[Image.Image]) -> np.ndarray:
        return self.score_with_network_outputs(images)[0]

    def score_with_network_outputs(self, images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scores, EfficientNet embeddings, ImageNet probabilities): later stages reuse the last two."""
        if not images:
            return np.zeros(0, dtype=np.float32), np.zeros((0, 1280), np.float32), np.zeros((0, 1000), np.float32)
        features, embeddings, probs = _features_and_network_outputs(images, self.net)
        return self.classifier.predict_proba(features)[:, 1].astype(np.float32), embeddings, probs
