"""Naturalness: the statistics, the JSON model format, and the shipped model on unseen images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from filters.image_decode import decode_image
from filters.naturalness import (
    MODEL_FILE,
    STATISTIC_NAMES,
    NaturalnessClassifier,
    NaturalnessScorer,
    image_statistics,
)
from tests.conftest import shared_path
from tests.synthetic_images import NON_PHOTOS, encode


@pytest.fixture(scope="module")
def scorer() -> NaturalnessScorer:
    return NaturalnessScorer(device="cpu")


def _flickr_photos(n: int) -> list[Image.Image]:
    """Flickr8k photos: real photos from a source the classifier was not trained on."""
    paths = sorted(shared_path("captions", "images").glob("*.jpg"))[:n]
    return [Image.open(p).convert("RGB") for p in paths]


def _decoded(image: Image.Image) -> Image.Image:
    """The image as the pipeline sees it: encoded, then decoded (alpha on white)."""
    return decode_image(encode(image, "PNG"), min_side=0).image


def test_statistics_separate_flat_graphics_from_noisy_photos():
    chart = image_statistics(NON_PHOTOS["bar_chart"]())
    rng = np.random.default_rng(0)
    textured = Image.fromarray(rng.normal(120, 30, (300, 400, 3)).clip(0, 255).astype(np.uint8))
    photo_like = image_statistics(textured)
    assert chart.shape == (len(STATISTIC_NAMES),) and chart.dtype == np.float32
    stat = dict(zip(STATISTIC_NAMES, chart))
    other = dict(zip(STATISTIC_NAMES, photo_like))
    assert stat["top8_colour_share"] > 0.9 > other["top8_colour_share"]
    assert stat["flat_block_share"] > 0.5 > other["flat_block_share"]
    assert stat["noise_level"] < other["noise_level"]
    assert stat["log_colours"] < other["log_colours"]


def test_model_round_trips_through_json_without_pickle(tmp_path):
    rng = np.random.default_rng(1)
    n_features = len(STATISTIC_NAMES) + 1280
    X = rng.normal(size=(60, n_features))
    y = (X[:, 0] + X[:, 30] > 0).astype(int)
    model = NaturalnessClassifier(C=1.0).fit(X, y)
    path = tmp_path / "natural.json"
    model.save(path, note="test")
    state = json.loads(path.read_text())  # plain JSON numbers
    assert state["metadata"] == {"note": "test"} and len(state["coef"]) == n_features
    loaded = NaturalnessClassifier.load(path)
    assert np.allclose(loaded.predict_proba(X), model.predict_proba(X))
    assert (loaded.predict(X) == y).mean() > 0.9
    path.write_text(json.dumps({"format": "pickle"}))
    with pytest.raises(ValueError, match="not a"):
        NaturalnessClassifier.load(path)


def test_shipped_model_is_json():
    state = json.loads(MODEL_FILE.read_text())
    assert state["statistic_names"] == STATISTIC_NAMES
    assert state["metadata"]["cross_validation"]["by_source"]["roc_auc"] >= 0.98


def test_unseen_photos_are_natural_and_drawn_graphics_are_not(scorer):
    photos = scorer.score(_flickr_photos(24))
    graphics = scorer.score([_decoded(make(seed=2)) for make in NON_PHOTOS.values()])
    assert (photos >= scorer.threshold).mean() >= 0.9, photos
    assert (graphics < scorer.threshold).all(), dict(zip(NON_PHOTOS, graphics))
    assert float(np.median(photos)) > 0.9 and float(np.median(graphics)) < 0.1
