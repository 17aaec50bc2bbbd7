"""Description quality, rules before and caption model after, judged on sources never seen.

    .venv/bin/python bench/quality_text.py [--data ../shared/data/alts/alts.jsonl] [--write_model]

On `alts.jsonl` (real alt, title and figcaption strings labelled caption, weak or junk, from
six source repositories) it prints and writes `bench/results/quality_text.json`: English
captions kept, junk dropped, junk share of kept and weak share of kept, for

- ``before``: the named rules alone (`TextCleaner(min_caption_score=-1)`);
- ``after``: the hard rules, then the caption-quality model (`lait/filters/caption_quality.py`);

each two ways:

- ``grouped_cv``: leave-one-source-out over the repositories. For each held-out repository
  everything is fitted on the other five: for the rules, their thresholds (a grid over
  min_words, the keyword-list and title-case rules and the navigation length, as in
  bench/bench_text.py); for the model, its regularisation, whether hashed n-grams help, and
  its threshold, each chosen by an inner leave-one-source-out over those five
  (:func:`lait.filters.caption_quality.select_and_fit`). The held-out predictions are pooled.
- ``in_sample``: the shipped defaults (rules) and the model fitted and thresholded on all six
  sources (its threshold from the inner leave-one-source-out), scored on the same rows.

Labels: a caption counts when fastText calls it English (`lang == "en"`, the corpus wants
English); junk must go; weak (names, headlines, credits) is neither. Goals (grouped CV):
English captions kept >= 0.92, junk dropped >= 0.97, junk share of kept <= 0.03.

`variants` compares design choices by the same grouped CV (dense features only, to keep it
fast): weak strings left out of the fit (shipped), as negatives, or as positives; the UI
lexicon (shipped) against the old `logo` and `navigation` rules as the UI feature; and the
length rule (`min_words` 4, hard) against leaving length to the model (`min_words` 1).

`external_flickr8k` is a check on a source no choice saw: the share of 1,000 Flickr8k captions
(`../shared/data/captions/captions.tsv`, human scene captions, seeded sample) kept by each.

`--write_model` fits the shipped model on every source and writes
`lait/filters/data/caption_quality.json`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lait.filters.caption_quality import (  # noqa: E402
    FEATURE_NAMES,
    MODEL_FILE,
    PARAM_GRID,
    CaptionInput,
    Targets,
    feature_matrix,
    rates,
    select_and_fit,
)
from lait.filters.description import site_names  # noqa: E402
from lait.filters.text_rules import TextCleaner  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "alts" / "alts.jsonl"
FLICKR8K = ROOT.parent / "shared" / "data" / "captions" / "captions.tsv"
RESULTS = ROOT / "bench" / "results" / "quality_text.json"
GOALS = {"captions_kept": 0.92, "junk_dropped": 0.97, "junk_share_of_kept": 0.03}
# Rule thresholds tuned inside each fold for the `before` grouped CV.
RULE_GRID = {
    "min_words": [2, 3, 4],
    "max_keyword_stopword_ratio": [-1, 0.05, 0.1, 0.15],
    "title_case_min_words": [-1, 3, 4, 5],
    "max_navigation_words": [4, 6, 8],
}
FIGURES = ("captions_kept", "junk_dropped", "junk_share_of_kept", "weak_share_of_kept")


class CachedLanguage:
    """fastText's English score of each distinct text, computed once for every cleaner here."""

    def __init__(self):
        from lait.filters.language import LanguageIdentifier

        self.identifier = LanguageIdentifier()
        self.cache: dict[tuple[str, str], float] = {}

    def score(self, text: str, language: str = "en") -> float:
        key = (text, language)
        if key not in self.cache:
            self.cache[key] = self.identifier.score(text, language)
        return self.cache[key]


class PassAll:
    """A stand-in caption model that keeps everything: used to collect the model's inputs."""

    threshold_ = 0.0

    def score(self, items, X=None):
        return np.ones(len(items))


def load_rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    for row in rows:
        row["site_names"] = site_names(row.get("page_url"))
        if row["label"] == "caption":
            row["target"] = "caption" if row.get("lang") == "en" else "other"
        else:
            row["target"] = row["label"]
    return rows


def clean_all(cleaner: TextCleaner, rows: list[dict]):
    return [cleaner.clean(r["text"], source=r["attr"], site_names=r["site_names"]) for r in rows]


def model_inputs(rows: list[dict], language, **cleaner_args) -> tuple[list[CaptionInput], np.ndarray, np.ndarray]:
    """(inputs, feature rows, passed): what the model reads of every row that passes the hard rules."""
    cleaner = TextCleaner(language_identifier=language, min_caption_score=0.0, caption_model=PassAll(), **cleaner_args)
    results = clean_all(cleaner, rows)
    passed = np.array([r.kept for r in results])
    items = [CaptionInput(r.text or "", r.language_score, r.source, tuple(r.edits), tuple(r.signals)) for r in results]
    X = np.zeros((len(items), len(feature_matrix([CaptionInput("x")])[0])))
    index = np.flatnonzero(passed)
    X[index] = feature_matrix([items[i] for i in index])
    return items, X, passed


# ---------------------------------------------------------------- before: the rules
def rules_grouped_cv(rows: list[dict], language, targets: Targets) -> tuple[dict, dict]:
    """Rule thresholds chosen on five repositories, scored on the sixth; pooled."""
    labels = np.array([r["target"] for r in rows])
    groups = np.array([r["source_repo"] for r in rows])
    keys = list(RULE_GRID)
    kept_by_point = {}
    for values in itertools.product(*(RULE_GRID[k] for k in keys)):
        params = dict(zip(keys, values))
        cleaner = TextCleaner(language_identifier=language, min_caption_score=-1, **params)
        kept_by_point[values] = np.array([r.kept for r in clean_all(cleaner, rows)])
    kept = np.zeros(len(rows), dtype=bool)
    chosen = {}
    for group in sorted(set(groups)):
        train, test = groups != group, groups == group
        best = max(kept_by_point, key=lambda v: _rule_objective(labels[train], kept_by_point[v][train], targets))
        kept[test] = kept_by_point[best][test]
        chosen[group] = dict(zip(keys, best))
    return rates(labels, kept), {"chosen_per_held_out_source": chosen, "per_source": _per_source(labels, groups, kept)}


def _rule_objective(labels: np.ndarray, kept: np.ndarray, targets: Targets) -> tuple:
    r = rates(labels, kept)
    ok = r["junk_dropped"] >= targets.min_junk_dropped and r["junk_share_of_kept"] <= targets.max_junk_share
    return ok, (r["captions_kept"] or 0) - targets.weak_penalty * (r["weak_kept"] or 0) if ok else \
        -r["junk_share_of_kept"] - (1 - r["junk_dropped"])


# ---------------------------------------------------------------- after: the model
def model_grouped_cv(items, X, passed, labels, groups, grid, targets: Targets, weak: str = "exclude") -> tuple[dict, dict]:
    """Outer leave-one-source-out around `select_and_fit` (parameters and threshold inside)."""
    kept = np.zeros(len(labels), dtype=bool)
    chosen = {}
    for group in sorted(set(groups)):
        train, test = groups != group, groups == group
        train_index, test_index = np.flatnonzero(train), np.flatnonzero(test)
        model, report = select_and_fit([items[i] for i in train_index], X[train_index], labels[train_index],
                                       groups[train_index], passed[train_index], grid, targets, weak=weak)
        scores = model.score([items[i] for i in test_index], X[test_index])
        kept[test_index] = passed[test_index] & (scores >= model.threshold_)
        chosen[group] = {**report["chosen"]["params"], "threshold": model.threshold_}
    return rates(labels, kept), {"chosen_per_held_out_source": chosen, "per_source": _per_source(labels, groups, kept)}


def flickr8k_kept(cleaners: dict, n: int = 1000) -> dict:
    """Share of a seeded sample of Flickr8k captions each cleaner keeps (all are English captions)."""
    import csv
    import random

    if not FLICKR8K.exists():
        return {"skipped": f"{FLICKR8K} not found"}
    with open(FLICKR8K, encoding="utf-8") as f:
        captions = [row["caption"] for row in csv.DictReader(f, delimiter="\t")]
    sample = random.Random(0).sample(captions, min(n, len(captions)))
    return {"captions": len(sample), **{name: round(sum(c.clean(t, source="alt").kept for t in sample) / len(sample), 4)
                                        for name, c in cleaners.items()}}


def _per_source(labels, groups, kept) -> dict:
    return {g: {k: v for k, v in rates(labels[groups == g], kept[groups == g]).items() if k in FIGURES + ("kept",)}
            for g in sorted(set(groups))}


def _summary(r: dict) -> dict:
    return {k: r[k] for k in FIGURES}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("LAIT_ALTS", DEFAULT_DATA)))
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"where to write the results (default {RESULTS})")
    parser.add_argument("--write_model", action="store_true",
                        help=f"fit the model on every source and write it to {MODEL_FILE}")
    parser.add_argument("--no-variants", dest="variants", action="store_false", help="skip the design comparisons")
    args = parser.parse_args()
    if not args.data.exists():
        print(json.dumps({"skipped": f"{args.data} not found (the shared data beside the repo)"}))
        return 0
    started = time.time()
    rows = load_rows(args.data)
    labels = np.array([r["target"] for r in rows])
    groups = np.array([r["source_repo"] for r in rows])
    language = CachedLanguage()
    targets = Targets()
    report: dict = {"data": str(args.data), "rows": len(rows), "labels": {k: int((labels == k).sum()) for k in
                                                                              ("caption", "other", "weak", "junk")},
                    "goals_grouped_cv": GOALS, "threshold_targets": targets.__dict__}

    rules_in = rates(labels, np.array([r.kept for r in clean_all(
        TextCleaner(language_identifier=language, min_caption_score=-1), rows)]))
    rules_cv, rules_detail = rules_grouped_cv(rows, language, targets)

    items, X, passed = model_inputs(rows, language)
    final, selection = select_and_fit(items, X, labels, groups, passed, PARAM_GRID, targets)
    model_in = rates(labels, passed & (final.score(items, X) >= final.threshold_))
    # The same model through the real code path (TextCleaner.clean) must give the same decisions.
    shipped_path = np.array([r.kept for r in clean_all(TextCleaner(language_identifier=language, caption_model=final), rows)])
    assert (shipped_path == (passed & (final.score(items, X) >= final.threshold_))).all()
    model_cv, model_detail = model_grouped_cv(items, X, passed, labels, groups, PARAM_GRID, targets)

    report["before"] = {"grouped_cv": _summary(rules_cv), "in_sample": _summary(rules_in)}
    report["after"] = {"grouped_cv": _summary(model_cv), "in_sample": _summary(model_in)}
    report["goals_met_grouped_cv"] = {
        "before": _goals_met(rules_cv), "after": _goals_met(model_cv)}
    report["detail"] = {"before_grouped_cv": rules_detail, "after_grouped_cv": model_detail,
                        "after_model": {"params": selection["chosen"]["params"], "threshold": final.threshold_,
                                        "inner_cv": selection["tried"]}}
    if args.variants:
        dense = [p for p in PARAM_GRID if not p["n_hash_features"]]
        variants = {}
        for weak in ("exclude", "negative", "positive"):
            variants[f"weak_{weak}"] = _summary(model_grouped_cv(items, X, passed, labels, groups, dense, targets, weak)[0])
        old = X.copy()  # the UI lexicon out, the old logo and navigation rules in its place
        ui = [i for i, name in enumerate(FEATURE_NAMES) if name.startswith("ui_")]
        old[:, ui] = 0.0
        old[:, ui[0]] = [("logo" in item.signals) + ("navigation" in item.signals) for item in items]
        variants["old_logo_navigation_rules_for_ui_lexicon"] = _summary(
            model_grouped_cv(items, old, passed, labels, groups, dense, targets)[0])
        items1, X1, passed1 = model_inputs(rows, language, min_words=1)
        variants["length_to_model_min_words_1"] = _summary(
            model_grouped_cv(items1, X1, passed1, labels, groups, dense, targets)[0])
        report["variants_grouped_cv_dense_only"] = variants
    report["external_flickr8k_captions_kept"] = flickr8k_kept({
        "before": TextCleaner(language_identifier=language, min_caption_score=-1),
        "after": TextCleaner(language_identifier=language, caption_model=final)})
    report["seconds"] = round(time.time() - started, 1)
    if args.write_model:
        final.save(MODEL_FILE, data=args.data.name, rows=len(rows), labels=report["labels"],
                   groups=sorted(set(groups)), selection=report["detail"]["after_model"],
                   grouped_cv=report["after"]["grouped_cv"], in_sample=report["after"]["in_sample"])
        report["model_written"] = str(MODEL_FILE.relative_to(ROOT))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _print_table(report)
    return 0


def _goals_met(r: dict) -> dict:
    return {"captions_kept": (r["captions_kept"] or 0) >= GOALS["captions_kept"],
            "junk_dropped": (r["junk_dropped"] or 0) >= GOALS["junk_dropped"],
            "junk_share_of_kept": r["junk_share_of_kept"] <= GOALS["junk_share_of_kept"]}


def _print_table(report: dict) -> None:
    print(f"{'':44s}{'captions kept':>15s}{'junk dropped':>14s}{'junk/kept':>11s}{'weak/kept':>11s}")
    print(f"{'goal (grouped CV)':44s}{'>= 0.92':>15s}{'>= 0.97':>14s}{'<= 0.03':>11s}{'':>11s}")
    for stage in ("before", "after"):
        for how in ("grouped_cv", "in_sample"):
            r = report[stage][how]
            print(f"{stage + ' ' + how.replace('_', ' '):44s}{r['captions_kept']:>15.3f}{r['junk_dropped']:>14.3f}"
                  f"{r['junk_share_of_kept']:>11.3f}{r['weak_share_of_kept']:>11.3f}")
    for name, r in report.get("variants_grouped_cv_dense_only", {}).items():
        print(f"{'  ' + name:44s}{r['captions_kept']:>15.3f}{r['junk_dropped']:>14.3f}"
              f"{r['junk_share_of_kept']:>11.3f}{r['weak_share_of_kept']:>11.3f}")
    flickr = report["external_flickr8k_captions_kept"]
    if "before" in flickr:
        print(f"{'Flickr8k captions kept':44s}{'before ' + format(flickr['before'], '.3f'):>15s}"
              f"{'after ' + format(flickr['after'], '.3f'):>14s}")
    print(f"model: {report['detail']['after_model']['params']}, threshold {report['detail']['after_model']['threshold']}")


if __name__ == "__main__":
    sys.exit(main())
