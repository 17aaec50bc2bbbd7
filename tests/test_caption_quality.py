"""The caption-quality model (lait/filters/caption_quality.py) and its place in TextCleaner."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lait.filters.caption_quality import (
    FEATURE_NAMES,
    MODEL_FILE,
    SIGNALS,
    CaptionInput,
    CaptionQualityModel,
    Targets,
    caption_features,
    choose_threshold,
    feature_matrix,
    rates,
    select_and_fit,
)
from lait.filters.description import DescriptionChooser
from lait.filters.text_rules import SOFT_RULES, TextCleaner


@pytest.fixture(scope="module")
def cleaner() -> TextCleaner:
    return TextCleaner().load()


def feature(item: CaptionInput, name: str) -> float:
    return float(caption_features(item)[FEATURE_NAMES.index(name)])


# ------------------------------------------------------------------ features
def test_features_have_their_names_and_are_finite():
    row = caption_features(CaptionInput("A man rides a bicycle past the Capitol in the rain.", 0.95, "alt"))
    assert row.shape == (len(FEATURE_NAMES),) and len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert np.isfinite(row).all()
    assert feature_matrix([]).shape == (0, len(FEATURE_NAMES))


def test_length_frequency_and_function_word_features():
    item = CaptionInput("A man rides a bicycle past the Capitol in the rain.", 0.95)
    assert feature(item, "log_words") == pytest.approx(math.log1p(11))
    assert feature(item, "words_7_15") == 1.0 and feature(item, "words_1_1") == 0.0
    assert feature(item, "function_share") == pytest.approx(6 / 11)  # a, a, past, the, in, the
    assert feature(item, "top100k_share") == 1.0 and feature(item, "unknown_share") == 0.0
    assert feature(item, "ends_sentence") == 1.0
    rare = CaptionInput("qwzxv blorptang fnordic")
    assert feature(rare, "unknown_share") == 1.0 and feature(rare, "mean_zipf") == 0.0


def test_casing_digit_and_punctuation_features():
    assert feature(CaptionInput("Patriots Quarterback Speaks About Friendship"), "title_case") == 1.0
    assert feature(CaptionInput("Ann Lee and Bo Chan at the Forum"), "title_case") == 0.0
    assert feature(CaptionInput("GET THE BEST DEALS"), "all_caps_share") == 1.0
    assert feature(CaptionInput("12/03/2019 15:30"), "digit_share") > 0.5
    assert feature(CaptionInput("film, movie, shakespeare, queen"), "comma_share") == 0.75


def test_ui_lexicon_features():
    follow = CaptionInput("Follow us on Twitter")
    assert feature(follow, "ui_social") == 1.0 and feature(follow, "ui_start") == 1.0
    assert feature(follow, "ui_share") == pytest.approx(0.75)  # "follow us" + "twitter" of 4 tokens
    assert feature(CaptionInput("Rate this article"), "ui_rating") == 1.0
    assert feature(CaptionInput("Older posts"), "ui_pagination") == 1.0
    caption = CaptionInput("Two cribs in a small nursery space")
    assert feature(caption, "ui_hits") == 0.0 and feature(caption, "ui_start") == 0.0


def test_signals_edits_source_and_unknown_language():
    item = CaptionInput("text here", None, "context", ("credit",), ("title_case",))
    assert feature(item, "signal_title_case") == 1.0 and feature(item, "signal_keyword_list") == 0.0
    assert feature(item, "edit_credit") == 1.0
    assert feature(item, "source_figcaption") == 1.0  # a context caption is read like a figcaption
    assert math.isnan(feature(item, "language_score"))  # the model puts its training mean there
    assert set(SIGNALS) <= SOFT_RULES


# ------------------------------------------------------------------ the shipped model
def test_the_shipped_model_loads_from_plain_json():
    state = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    assert state["format"] == "lait-caption-quality-logreg/1" and state["feature_names"] == FEATURE_NAMES
    model = CaptionQualityModel.load()
    assert 0.0 < model.threshold_ < 1.0 and model.coef_.shape[0] == len(FEATURE_NAMES) + model.n_hash_features
    cv = model.metadata_["grouped_cv"]  # chosen and measured by leave-one-source-out
    assert cv["captions_kept"] >= 0.92 and cv["junk_dropped"] >= 0.97 and cv["junk_share_of_kept"] <= 0.03


def test_a_model_of_other_features_is_refused(tmp_path):
    state = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    state["feature_names"] = state["feature_names"][:-1]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(state), encoding="utf-8")
    with pytest.raises(ValueError, match="other features"):
        CaptionQualityModel.load(path)


@pytest.mark.parametrize("text", [
    "A man rides a bicycle past the Capitol in the rain",
    "Barack Obama and Angela Merkel at the G7 Summit in Biarritz",  # names in Title Case, a caption
    "Minister Joe Costello with King Letsie III of Lesotho",
    "Protesters gather outside the Hong Kong Legislative Council",
])
def test_a_clear_caption_is_kept_with_its_score(cleaner, text):
    result = cleaner.clean(text)
    assert result.kept, result.reasons
    assert result.caption_score >= cleaner.caption_threshold
    assert result.to_dict()["caption_score"] == round(result.caption_score, 3)


@pytest.mark.parametrize("text", [
    "Follow us on Facebook and Twitter for more",
    "Rate this article: 4 out of 5",
    "Older posts and newer posts",
    "Please enable JavaScript to view the comments",
    "Sign up for our weekly newsletter",
    "Download our free app on the App Store",
    "Patriots Quarterback Speaks About Friendship With President",  # a headline
])
def test_ui_strings_and_headlines_fail_with_low_caption_score(cleaner, text):
    result = cleaner.clean(text)
    assert result.reasons == ["low_caption_score"]
    assert result.caption_score < cleaner.caption_threshold


def test_the_threshold_can_be_set_and_the_model_turned_off():
    text = "Vote this comment down"
    assert TextCleaner(min_language_score=-1, min_caption_score=0.0).clean(text).kept
    off = TextCleaner(min_language_score=-1, min_caption_score=-1)
    result = off.clean(text)
    assert result.reasons == ["navigation"] and result.caption_score is None and off.caption_threshold is None


def test_the_chooser_reports_the_score_of_a_dropped_candidate(cleaner):
    d = DescriptionChooser(cleaner).choose({"alt": "Follow us on Facebook and Twitter for more",
                                            "page_url": "https://www.example.com/a"})
    assert d.reason == "low_caption_score"
    assert d.detail.startswith(f"alt: score {d.caption_score:.3f} < {cleaner.caption_threshold:.3f}: Follow us")


def test_a_headline_is_judged_by_the_rules_not_the_model(cleaner):
    # The chooser admits a headline only where the image's file name confirms it.
    result = cleaner.clean("The border virtues of Buddy Cole", source="headline")
    assert result.kept and result.caption_score is None


# ------------------------------------------------------------------ fitting and choosing
def _toy_set(seed: int = 0):
    rng = np.random.default_rng(seed)
    captions = ["A dog runs along a sandy beach", "Two children play in the snow near a lake",
                "A woman reads a book on a park bench", "Firefighters battle a blaze above the town"]
    junk = ["Follow us on Twitter", "Share on Facebook", "Older posts", "Rate this article"]
    items, labels, groups = [], [], []
    for g in range(3):
        for text in captions:
            items.append(CaptionInput(text, float(rng.uniform(0.7, 1.0)), "alt"))
            labels.append("caption")
            groups.append(f"g{g}")
        for text in junk:
            items.append(CaptionInput(text, float(rng.uniform(0.5, 0.9)), "alt"))
            labels.append("junk")
            groups.append(f"g{g}")
        items.append(CaptionInput("Barack Obama", 0.6, "alt"))
        labels.append("weak")
        groups.append(f"g{g}")
    return items, np.array(labels), np.array(groups)


def test_fit_save_and_load_give_the_same_scores(tmp_path):
    items, labels, _ = _toy_set()
    mask = labels != "weak"
    model = CaptionQualityModel(C=1.0).fit([i for i, m in zip(items, mask) if m], (labels[mask] == "caption"))
    path = tmp_path / "model.json"
    model.save(path, note="toy")
    again = CaptionQualityModel.load(path)
    assert np.allclose(model.score(items), again.score(items), atol=1e-6)
    assert again.metadata_ == {"note": "toy"}


def test_select_and_fit_chooses_parameters_and_threshold_by_held_out_groups():
    items, labels, groups = _toy_set()
    X = feature_matrix(items)
    passed = np.ones(len(items), dtype=bool)
    grid = [{"C": 0.1, "n_hash_features": 0}, {"C": 1.0, "n_hash_features": 64}]
    model, report = select_and_fit(items, X, labels, groups, passed, grid)
    assert len(report["tried"]) == 2 and report["chosen"]["params"] in grid
    assert model.threshold_ == report["chosen"]["threshold"]
    kept = model.score(items, X) >= model.threshold_
    r = rates(labels, kept)
    assert r["captions_kept"] == 1.0 and r["junk_dropped"] == 1.0


def test_rates_and_threshold_choice():
    labels = np.array(["caption", "caption", "junk", "junk", "weak", "other"])
    r = rates(labels, np.array([True, False, True, False, True, True]))
    assert r["captions_kept"] == 0.5 and r["junk_dropped"] == 0.5
    assert r["junk_share_of_kept"] == 0.25 and r["weak_share_of_kept"] == 0.25 and r["kept"] == 4
    scores = np.array([0.9, 0.8, 0.3, 0.1, 0.5, 0.95])
    threshold, _ = choose_threshold(labels, scores, np.ones(6, dtype=bool), Targets(1.0, 0.0, 0.0))
    assert 0.3 < threshold <= 0.8  # every caption kept, no junk
