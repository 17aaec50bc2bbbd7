"""Naturalness: the statistics, the JSON model format, and the shipped model on unseen images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lait.encoders.efficientnet import IMAGENET_CLASSES
from lait.filters.image_decode import decode_image
from lait.filters.naturalness import (
    CLASS_FEATURES,
    EMBEDDING_DIM,
    MODEL_FILE,
    STATISTIC_NAMES,
    NaturalnessClassifier,
    NaturalnessScorer,
    class_feature_names,
    class_features,
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
    n_features = len(STATISTIC_NAMES) + len(CLASS_FEATURES) + 1 + EMBEDDING_DIM
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


def test_class_features_are_log_probabilities_of_the_named_classes():
    probs = np.full((2, 1000), 0.5 / 995)
    comic, jacket = IMAGENET_CLASSES.index("comic book"), IMAGENET_CLASSES.index("book jacket")
    probs[0, comic], probs[0, jacket] = 0.3, 0.2
    features = class_features(probs)
    names = class_feature_names()
    assert features.shape == (2, len(CLASS_FEATURES) + 1) and len(names) == features.shape[1]
    row = dict(zip(names, features[0]))
    assert row["log_p_comic_book"] == pytest.approx(np.log(0.3 + 1e-4), abs=1e-5)
    assert row["log_p_any_of_them"] > row["log_p_comic_book"] > row["log_p_web_site"]
    assert features[1, -1] < -3  # no printed matter: a small sum
    assert class_features(probs, ()).shape == (2, 0)
    with pytest.raises(ValueError, match="not ImageNet"):
        class_features(probs, ("poster",))


def test_features_put_class_features_between_statistics_and_embedding():
    rng = np.random.default_rng(2)
    stats, emb = rng.normal(size=(3, len(STATISTIC_NAMES))), rng.normal(size=(3, EMBEDDING_DIM))
    probs = rng.dirichlet(np.ones(1000), size=3)
    model = NaturalnessClassifier()
    X = model.features(stats, emb, probs)
    k = len(CLASS_FEATURES) + 1
    assert X.shape == (3, model.n_features) and model.n_front == len(STATISTIC_NAMES) + k
    assert np.allclose(X[:, :len(STATISTIC_NAMES)], stats) and np.allclose(X[:, -EMBEDDING_DIM:], emb)
    assert np.allclose(X[:, len(STATISTIC_NAMES):model.n_front], class_features(probs))
    weights = model._weights(X.shape[1])  # statistics_weight scales statistics and class features
    assert (weights[:model.n_front] == model.statistics_weight).all() and (weights[model.n_front:] == 1).all()
    with pytest.raises(ValueError, match="expected"):
        model.fit(np.hstack([stats, emb]), np.array([0, 1, 1]))


def test_format_1_models_without_class_features_still_load(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, len(STATISTIC_NAMES) + EMBEDDING_DIM))
    y = (X[:, 1] > 0).astype(int)
    old = NaturalnessClassifier(class_features=()).fit(X, y)
    state = old.to_dict()
    state["format"] = "lait-naturalness-logreg/1"
    del state["params"]["class_features"], state["class_feature_names"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(state))
    loaded = NaturalnessClassifier.load(path)
    assert loaded.class_features == () and np.allclose(loaded.predict_proba(X), old.predict_proba(X))
    stats, emb = X[:, :len(STATISTIC_NAMES)], X[:, len(STATISTIC_NAMES):]
    assert np.allclose(loaded.features(stats, emb, np.full((40, 1000), 1e-3)), X)


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


def test_webcrawl_image_labels_are_well_formed():
    """bench/labels/webcrawl_images.jsonl: URLs and labels only, one row per image record."""
    path = MODEL_FILE.parents[3] / "bench" / "labels" / "webcrawl_images.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    kinds = {"photo", "game", "comic", "illustration", "poster", "text", "logo", "screenshot", "chart",
             "collage", "cover", "other"}
    assert len(rows) > 200
    assert len({(r["warc"], r["image_url"]) for r in rows}) == len(rows)
    for row in rows:
        assert set(row) - {"note"} == {"image_url", "warc", "site", "label", "kind"}, row
        assert row["label"] in ("photo", "other") and row["kind"] in kinds, row
        assert (row["label"] == "photo") == (row["kind"] == "photo"), row
        assert row["image_url"].startswith("http") and row["warc"].endswith(".warc.gz"), row
    assert {r["label"] for r in rows} == {"photo", "other"}


def test_fast_median_and_hue_table_give_numpys_values():
    from lait.filters.naturalness import _hue_bins, _median_of_non_negative

    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 32, 33, 4001):
        for values in (rng.random(n) * 900, rng.integers(0, 4, n), np.zeros(n)):
            values = values.astype(np.float32)
            assert _median_of_non_negative(values) == float(np.median(values))
    r, g, b = (rng.integers(0, 256, 5000).astype(np.float32) for _ in range(3))
    hue = np.degrees(np.arctan2(np.sqrt(3) * (g - b), 2 * r - g - b)) % 360
    rows, columns = (g - b + 255).astype(int), (2 * r - g - b + 510).astype(int)
    assert np.array_equal(_hue_bins()[rows * 1021 + columns], (hue // 10).astype(np.int32))


def test_saturation_table_and_coarse_counts_give_the_plain_formulas_values():
    from lait.filters.naturalness import _block_std, _coarse_colour_counts, _colour_counts, _saturation

    rng = np.random.default_rng(4)
    red, green, blue = (rng.integers(0, 256, (40, 56), dtype=np.uint8) for _ in range(3))
    red[0, :3] = green[0, :3] = blue[0, :3] = 0  # black: no saturation
    top, bottom = np.maximum(np.maximum(red, green), blue), np.minimum(np.minimum(red, green), blue)
    top_f, bottom_f = top.astype(np.float32), bottom.astype(np.float32)
    plain = np.where(top_f > 0, (top_f - bottom_f) / np.maximum(top_f, 1), 0.0)
    assert np.array_equal(_saturation(top, bottom), plain) and plain.dtype == np.float32
    counts = _colour_counts(red, green, blue)
    assert np.array_equal(_coarse_colour_counts(counts), counts.reshape(16, 2, 16, 2, 16, 2).sum(axis=(1, 3, 5)).ravel())
    grey = rng.random((43, 61)).astype(np.float32) * 255
    tiles = grey[:40, :56].reshape(5, 8, 7, 8)
    assert np.allclose(_block_std(grey, 8), tiles.std(axis=(1, 3)).ravel(), rtol=1e-5)
