"""NSFW scores with NudeNet 320n: low on ordinary photos of people, batch-independent."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest
from PIL import Image

from lait.filters.nsfw import EXPLICIT_CLASSES, FACE_CLASSES, NUDENET_CLASSES, NsfwScorer
from tests.conftest import shared_path

PEOPLE = re.compile(r"\b(man|woman|people|girl|boy|swimmer|beach)\b")


@pytest.fixture(scope="module")
def scorer() -> NsfwScorer:
    return NsfwScorer(batch_size=8)


def _people_photos(n: int) -> list[Image.Image]:
    """The first `n` Flickr8k dev photos whose captions mention people (or a beach)."""
    folder = shared_path("captions")
    with open(folder / "captions.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    names = sorted({r["image"] for r in rows if r["split"] == "dev" and PEOPLE.search(r["caption"].lower())})
    return [Image.open(folder / "images" / name).convert("RGB") for name in names[:n]]


def test_only_explicit_classes_count():
    assert set(EXPLICIT_CLASSES) <= set(NUDENET_CLASSES)
    assert all(name.endswith("_EXPOSED") for name in EXPLICIT_CLASSES)
    assert not {"FACE_FEMALE", "FACE_MALE", "FEET_EXPOSED", "BELLY_EXPOSED", "MALE_BREAST_EXPOSED"} & set(EXPLICIT_CLASSES)


def test_ordinary_photos_of_people_score_low(scorer):
    scores = scorer.score(_people_photos(40))
    assert scores.shape == (40,) and scores.dtype == np.float32
    assert float(scores.max()) < 0.5, scores  # none would be dropped at the default --max_nsfw
    assert float(np.median(scores)) < 0.05


def test_scores_do_not_depend_on_the_batch(scorer):
    photos = _people_photos(10) + [Image.new("RGB", (640, 200), (200, 180, 160)), Image.new("L", (300, 900), 90)]
    together = scorer.score(photos)
    alone = np.concatenate([scorer.score([photo]) for photo in photos])
    assert np.allclose(together, alone, atol=1e-4)
    assert ((together >= 0) & (together <= 1)).all()
    assert together[-2] < 0.05 and together[-1] < 0.05  # flat images hold no body parts
    assert scorer.score([]).shape == (0,)


def test_the_cut_model_gives_the_whole_detectors_score(scorer):
    """NsfwScorer runs 320n.onnx without its box branch and with the explicit classes only: the scores
    are those of the whole detector (fails if a new NudeNet file changes the graph's layout)."""
    from lait.encoders.onnx_sessions import cpu_session
    from lait.filters.nsfw import _square_input, class_score_of_detections, nudenet_model_path

    photos = _people_photos(8) + [Image.new("RGB", (500, 320), (230, 190, 170))]
    batch = np.stack([_square_input(photo) for photo in photos])
    (detections,) = cpu_session(nudenet_model_path()).run(None, {"images": batch})
    whole = np.clip(class_score_of_detections(detections), 0, 1)
    whole_face = np.clip(class_score_of_detections(detections, FACE_CLASSES), 0, 1)
    assert detections.shape[:2] == (len(photos), 4 + len(NUDENET_CLASSES))
    nsfw, face = scorer.scores(photos)
    assert np.allclose(scorer.score(photos), whole, rtol=0, atol=1e-6)
    assert np.allclose(nsfw, whole, rtol=0, atol=1e-6) and np.allclose(face, whole_face, rtol=0, atol=1e-6)
    assert face[:8].max() > 0.5 > face[-1]  # people photos show faces; a flat image none
