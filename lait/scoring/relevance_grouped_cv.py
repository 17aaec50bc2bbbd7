"""Source-grouped cross-validation of the relevance model (``bench/bench_relevance_grouped.py``).

Each fold holds out one webcrawl site with describing captions (and a share of the other sites
and alt-text repositories) and trains on the rest with the same settings as
:func:`lait.scoring.relevance_training.train`; Flickr8k dev photos are never trained on. The
``--min_relevance`` threshold is chosen inside the folds, from the other sites' scores.
"""

from __future__ import annotations

import numpy as np

from lait.scoring.relevance_features import RelevanceFeatures
from lait.scoring.relevance_training import (
    Corpus,
    Encoded,
    LearnedParts,
    TrainingRows,
    constant_columns,
    dev_pair_set,
    feature_rows,
    fit_classifier,
    roc_auc,
)
from lait.scoring.relevance_web import WEB_KINDS

# Share of describing web captions a --min_relevance threshold must keep on the sites it is fitted on.
THRESHOLD_RECALL = 0.9


def grouped_folds(rows: TrainingRows) -> list[list[str]]:
    """Held-out source groups per fold: one webcrawl site with positives each; the other sites and
    the alts repositories spread over the folds (smallest fold first)."""
    web = np.isin(rows.kinds, WEB_KINDS)
    positives = {str(g): int(((rows.groups == g) & (rows.y == 1)).sum()) for g in set(rows.groups[web])}
    folds = [[site] for site, n in sorted(positives.items(), key=lambda kv: (-kv[1], kv[0])) if n]
    others = sorted(g for g in set(map(str, rows.groups)) if g != "flickr8k" and g not in positives or
                    (g in positives and not positives[g]))
    for group in others:
        smallest = min(range(len(folds)), key=lambda f: (int(np.isin(rows.groups, folds[f]).sum()), f))
        folds[smallest].append(group)
    return folds


def threshold_for_recall(positive_scores: np.ndarray, recall: float = THRESHOLD_RECALL) -> float:
    """The highest threshold that keeps at least `recall` of `positive_scores` (4 decimals, rounded down)."""
    ordered = np.sort(positive_scores)
    value = float(ordered[int(np.floor((1.0 - recall) * len(ordered)))])
    return float(np.floor(value * 1e4) / 1e4)


def _kept_figures(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    kept = scores >= threshold
    return {"threshold": threshold, "recall": round(float(kept[labels == 1].mean()), 4) if (labels == 1).any() else None,
            "precision": round(float(labels[kept].mean()), 4) if kept.any() else None,
            "kept": int(kept.sum()), "pairs": len(labels)}


def grouped_cross_validation(extractor: RelevanceFeatures, corpus: Corpus, enc: Encoded, rows: TrainingRows,
                             parts: LearnedParts, seed: int, max_iter: int, log=print) -> dict:
    """Source-grouped figures: each fold trains without its held-out webcrawl site(s) and alts repositories.

    Returns per-site and pooled web AUCs, junk AUC per held-out repository, Flickr8k dev AUCs
    (dev photos are never trained on in any fold), and --min_relevance thresholds chosen inside
    the folds (from the other sites' out-of-fold scores).
    """
    X = rows.X.copy()
    X[:, constant_columns(X)] = 0.0
    dev = dev_pair_set(extractor, corpus, enc, corpus.junk, seed)
    dev_X = feature_rows(extractor, dev, enc, parts)
    dev_X[:, constant_columns(rows.X)] = 0.0
    dev_kinds = np.array(dev.kinds)
    dev_repo = np.array([corpus.junk_source.get(p["text"], "") if k == "junk" else "" for p, k in zip(dev.pairs, dev_kinds)])
    web = np.isin(rows.kinds, WEB_KINDS)
    oof = np.full(len(rows.y), np.nan)
    dev_junk_oof = np.full(len(dev_kinds), np.nan)
    folds, dev_figures = grouped_folds(rows), []
    held = TrainingRows(X, rows.y, rows.kinds, rows.groups, rows.photos)
    for f, groups in enumerate(folds):
        out = np.isin(rows.groups, groups)
        classifier = fit_classifier(held, seed, max_iter, keep=~out)
        oof[out & web] = classifier.predict_proba(X[out & web])[:, 1]
        dev_scores = classifier.predict_proba(dev_X)[:, 1]
        junk_out = (dev_kinds == "junk") & np.isin(dev_repo, groups)
        dev_junk_oof[junk_out] = dev_scores[junk_out]
        pos = dev_kinds == "positive"
        dev_figures.append({kind: roc_auc(dev.labels[pos | (dev_kinds == kind)], dev_scores[pos | (dev_kinds == kind)])
                            for kind in ("random", "hard")} | {"positive_scores": dev_scores[pos]})
        log(f"  grouped fold {f + 1}/{len(folds)} (held out {', '.join(groups)})")
    report = {"folds": folds, "flickr8k_dev": {}, "web": {"per_site": {}}, "junk_alts": {"per_repository": {}}}
    for kind in ("random", "hard"):
        values = [d[kind] for d in dev_figures]
        report["flickr8k_dev"][f"auc_{kind}"] = round(float(np.mean(values)), 4)
        report["flickr8k_dev"][f"auc_{kind}_per_fold"] = values
    pos = dev_kinds == "positive"
    # Dev captions score the same in every fold up to the held-out sources: their fold mean
    # stands against each repository's out-of-fold junk scores.
    dev_positive = np.mean([d["positive_scores"] for d in dev_figures], axis=0)
    junk_vs_captions = dev_junk_oof.copy()
    junk_vs_captions[pos] = dev_positive
    for repo in sorted(set(dev_repo[dev_kinds == "junk"])):
        sel = pos | ((dev_kinds == "junk") & (dev_repo == repo))
        report["junk_alts"]["per_repository"][repo] = {
            "auc": roc_auc(dev.labels[sel], junk_vs_captions[sel]),
            "n_junk": int(((dev_kinds == "junk") & (dev_repo == repo)).sum())}
    sel = pos | (dev_kinds == "junk")
    report["junk_alts"]["auc_pooled"] = roc_auc(dev.labels[sel], junk_vs_captions[sel])
    sites, y, kinds = rows.groups[web].astype(str), rows.y[web], rows.kinds[web]
    scores = oof[web]
    for site in sorted(set(sites)):
        here, others = sites == site, sites != site
        entry = {"positives": int(y[here].sum()), "negatives": int((1 - y[here]).sum())}
        if 0 < y[here].sum() < here.sum():
            entry["auc"] = roc_auc(y[here], scores[here])
            for kind in ("web_page_text", "web_swap"):
                sel = here & ((kinds == "web_positive") | (kinds == kind))
                if (kinds[sel] == kind).any():
                    entry[f"auc_{kind}"] = roc_auc(y[sel], scores[sel])
        # The threshold this site gets is fitted on the other sites' out-of-fold scores only.
        entry["held_out_at_fold_threshold"] = _kept_figures(
            y[here], scores[here], threshold_for_recall(scores[others & (y == 1)]))
        report["web"]["per_site"][site] = entry
    report["web"]["auc_pooled"] = roc_auc(y, scores)
    for kind in ("web_page_text", "web_swap"):
        sel = (kinds == "web_positive") | (kinds == kind)
        report["web"][f"auc_pooled_{kind}"] = roc_auc(y[sel], scores[sel])
    threshold = threshold_for_recall(scores[y == 1])
    report["proposed_min_relevance"] = {
        "rule": f"highest threshold keeping {THRESHOLD_RECALL:.0%} of describing web captions, out-of-fold scores",
        "value": threshold, "web_out_of_fold": _kept_figures(y, scores, threshold),
        "flickr8k_dev_positives_kept": round(float((dev_positive >= threshold).mean()), 4)}
    report["_web_scores"] = scores
    return report
