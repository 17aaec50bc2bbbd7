"""The ranker: gradient-boosted trees fitted with scikit-learn, kept as flat arrays, scored in C or numpy, saved as JSON."""

from __future__ import annotations

import json
import math
import os

import numpy as np

from lait.extensions import compiled
from lait.scoring.dominant_image.features import FEATURE_NAMES

# The compiled tree walk (`_trees.pyx`), where it was built (lait.extensions); the numpy walk otherwise.
_trees = compiled("lait.scoring.dominant_image._trees")

DEFAULT_MODEL_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "models", "dominant_image.json")


class DominantImageRanker:
    """Gradient-boosted trees scoring how likely a candidate is its page's main image.

    Fitted with scikit-learn's `GradientBoostingClassifier`; the trees are then kept as flat
    arrays, scored in C (`_trees.pyx`, or with numpy where it is not built) and saved as JSON, so
    loading a model file runs no code (no pickle) and needs no scikit-learn.

    Parameters
    ----------
    n_estimators : int, default=500
        Number of trees. Choosing it (300 to 800) and the depth (3 or 4) inside source-grouped
        folds barely moves the held-out sources' top-1: `bench/bench_dominant_ranker_grouped.py`.
    max_depth : int, default=3
        Depth of each tree.
    learning_rate : float, default=0.05
        Shrinkage of each tree's contribution.
    subsample : float, default=0.8
        Fraction of rows each tree sees (stochastic gradient boosting).
    random_state : int, default=0
        Seed of the row sampling.
    calibration_folds : int, default=4
        Folds (of pages) for the out-of-fold scores the page-level calibration is fitted on.

    Attributes
    ----------
    feature_names_ : list of str
        The features the model was fitted on, in column order.
    init_ : float
        Log-odds every score starts from.
    feature_, threshold_, left_, right_, value_ : ndarray
        The nodes of all trees, concatenated; a leaf has feature -1 and points to itself.
    roots_ : ndarray
        Index of each tree's root node.
    depth_ : int
        Deepest path of any tree.
    calibration_ : list of float
        Weights of (log-odds, margin, log candidates) and intercept of :meth:`page_probability`.
    """

    def __init__(self, n_estimators: int = 500, max_depth: int = 3, learning_rate: float = 0.05,
                 subsample: float = 0.8, random_state: int = 0, calibration_folds: int = 4):
        self.calibration_folds = calibration_folds
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None,
            feature_names: list[str] | None = None) -> DominantImageRanker:
        """Fit on candidate rows `X` with labels `y` (1 = the page's main image).

        With `groups` (the page of each row), also fit the page-level calibration
        (:meth:`page_probability`) on out-of-fold scores of `calibration_folds` folds.
        """
        self._fit_trees(X, y)
        self.feature_names_ = list(feature_names or FEATURE_NAMES)
        self.calibration_ = [1.0, 0.0, 0.0, 0.0]  # identity on the log-odds until fitted
        if groups is not None:
            self._fit_calibration(X, y, np.asarray(groups))
        return self

    def _fit_calibration(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression

        pages = np.unique(groups)
        fold_of_page = dict(zip(pages, np.arange(len(pages)) % self.calibration_folds))
        fold = np.array([fold_of_page[g] for g in groups])
        raw = np.zeros(len(y))
        for k in range(self.calibration_folds):
            held = fold == k
            part = DominantImageRanker(self.n_estimators, self.max_depth, self.learning_rate, self.subsample,
                                       self.random_state)
            part._fit_trees(X[~held], y[~held])
            raw[held] = part.decision_function(X[held])
        rows = np.concatenate([_calibration_inputs(raw[groups == g]) for g in pages])
        labels = np.concatenate([y[groups == g] for g in pages])
        logistic = LogisticRegression(C=1.0).fit(rows, labels)
        self.calibration_ = [*map(float, logistic.coef_[0]), float(logistic.intercept_[0])]

    def page_probability(self, raw: np.ndarray) -> np.ndarray:
        """Probability that each candidate of ONE page is its main image, from the page's log-odds `raw`.

        A logistic regression over (log-odds, margin over the page's best other candidate,
        log number of candidates), fitted on out-of-fold scores: a pointwise probability
        falls as a page has more images; this does not.
        """
        w = self.calibration_
        z = _calibration_inputs(raw) @ np.asarray(w[:3]) + w[3]
        return 1.0 / (1.0 + np.exp(-z))

    def _fit_trees(self, X: np.ndarray, y: np.ndarray) -> None:
        from sklearn.ensemble import GradientBoostingClassifier

        model = GradientBoostingClassifier(n_estimators=self.n_estimators, max_depth=self.max_depth,
                                           learning_rate=self.learning_rate, subsample=self.subsample,
                                           random_state=self.random_state)
        model.fit(X, y)
        # Public, documented attributes only: `estimators_` and `init_` of GradientBoostingClassifier,
        # `class_prior_` of its DummyClassifier init, and each regression tree's `tree_` arrays
        # (node_count, children_left/right, feature, threshold, value, max_depth), which
        # scikit-learn documents in "Understanding the decision tree structure". A flat JSON of
        # those arrays loads without pickle or scikit-learn, unlike skops, which needs both.
        prior = float(model.init_.class_prior_[1])
        self.init_ = math.log(prior / (1 - prior))
        features, thresholds, lefts, rights, values, roots = [], [], [], [], [], []
        offset = 0
        for estimator in model.estimators_[:, 0]:
            tree = estimator.tree_
            roots.append(offset)
            leaf = tree.children_left == -1
            features.append(np.where(leaf, -1, tree.feature))
            thresholds.append(np.where(leaf, 0.0, tree.threshold))
            own = np.arange(tree.node_count) + offset
            lefts.append(np.where(leaf, own, tree.children_left + offset))
            rights.append(np.where(leaf, own, tree.children_right + offset))
            values.append(tree.value[:, 0, 0] * self.learning_rate)
            offset += tree.node_count
        self.feature_ = np.concatenate(features).astype(np.int32)
        self.threshold_ = np.concatenate(thresholds).astype(np.float64)
        self.left_ = np.concatenate(lefts).astype(np.int32)
        self.right_ = np.concatenate(rights).astype(np.int32)
        self.value_ = np.concatenate(values).astype(np.float64)
        self.roots_ = np.asarray(roots, dtype=np.int32)
        self.depth_ = int(max(e.tree_.max_depth for e in model.estimators_[:, 0]))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Log-odds per row."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        if not len(X):
            return np.zeros(0)
        return self.init_ + (self.leaf_values(X) if _trees is None else _trees.leaf_values(
            X, self.feature_, self.threshold_, self.left_, self.right_, self.value_, self.roots_, self.depth_)).sum(axis=1)

    def leaf_values(self, X: np.ndarray) -> np.ndarray:
        """`(rows, trees)`: the value of the leaf each row of float32 `X` reaches in each tree, all
        rows and trees at once (the definition `_trees.leaf_values` must equal)."""
        split_feature, children = self._walk_tables()
        flat = X.ravel()
        row_starts = (np.arange(len(X)) * X.shape[1])[:, None]
        node = np.broadcast_to(self.roots_, (len(X), len(self.roots_)))
        for _ in range(self.depth_):  # `take`, not indexing: the same values without fancy indexing's set-up
            go_left = flat.take(row_starts + split_feature.take(node)) <= self.threshold_.take(node)
            node = children.take(2 * node + go_left)
        return self.value_.take(node)

    def _walk_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """`(split feature, children)` of every node: the feature (0 at leaves) and, at `2 * node`
        and `2 * node + 1`, the right and left child, built once from `feature_`, `left_`, `right_`."""
        key = (id(self.feature_), id(self.left_), id(self.right_))
        if getattr(self, "_tables_key", None) != key:
            children = np.empty(2 * len(self.left_), dtype=np.intp)
            children[0::2], children[1::2] = self.right_, self.left_
            self._tables = (np.maximum(self.feature_, 0).astype(np.intp), children)
            self._tables_key = key
        return self._tables

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probability per row that it is the main image (1-D)."""
        return 1.0 / (1.0 + np.exp(-self.decision_function(X)))

    def to_dict(self) -> dict:
        return {"format": "lait-gbt-1", "feature_names": self.feature_names_, "init": self.init_,
                "calibration": self.calibration_,
                "depth": self.depth_, "params": {k: getattr(self, k) for k in
                                                 ("n_estimators", "max_depth", "learning_rate", "subsample",
                                                  "random_state", "calibration_folds")},
                "feature": self.feature_.tolist(), "threshold": self.threshold_.tolist(),
                "left": self.left_.tolist(), "right": self.right_.tolist(),
                "value": [round(v, 8) for v in self.value_.tolist()], "roots": self.roots_.tolist()}

    def save(self, path: str, extra: dict | None = None) -> None:
        """Write the model as JSON (plus `extra`, e.g. how it was trained)."""
        data = self.to_dict()
        data["training"] = extra or {}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"))
            f.write("\n")

    @classmethod
    def load(cls, path: str | None = None) -> DominantImageRanker:
        """Read a model saved by :meth:`save` (the shipped model by default)."""
        path = path or DEFAULT_MODEL_PATH
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("format") != "lait-gbt-1":
            raise ValueError(f"{path}: not a lait dominant-image model")
        model = cls(**data["params"])
        model.feature_names_ = data["feature_names"]
        if model.feature_names_ != FEATURE_NAMES:
            raise ValueError(f"{path}: model features differ from this lait version's; retrain with lait train-dom")
        model.init_ = float(data["init"])
        model.depth_ = int(data["depth"])
        model.feature_ = np.asarray(data["feature"], dtype=np.int32)
        model.threshold_ = np.asarray(data["threshold"], dtype=np.float64)
        model.left_ = np.asarray(data["left"], dtype=np.int32)
        model.right_ = np.asarray(data["right"], dtype=np.int32)
        model.value_ = np.asarray(data["value"], dtype=np.float64)
        model.roots_ = np.asarray(data["roots"], dtype=np.int32)
        model.calibration_ = [float(v) for v in data.get("calibration", [1.0, 0.0, 0.0, 0.0])]
        return model


def _calibration_inputs(raw: np.ndarray) -> np.ndarray:
    """Per candidate of one page: log-odds, margin over the best other candidate, log count."""
    n = len(raw)
    if n > 1:
        order = np.argsort(-raw)
        best, second = raw[order[0]], raw[order[1]]
        margin = raw - np.where(np.arange(n) == order[0], second, best)
    else:
        margin = np.full(n, 10.0)
    return np.column_stack([raw, np.clip(margin, -10.0, 10.0), np.full(n, math.log1p(n))])
