"""Caption quality: a learned score of how likely a cleaned image description says what its
image shows (a caption), rather than being page furniture (junk).

The named rules of :mod:`lait.filters.text_rules` were tuned on the same sources they were scored
on, and on other sources they dropped real captions (names of people and places in Title Case)
and kept UI strings (plugin prompts, rating widgets, "follow us" links, pagination). This
module replaces the brittle ones with a logistic regression over features that carry across
sources (:data:`FEATURE_NAMES`):

- length: characters and words, word-count bins, mean word length;
- word frequency (``wordfreq``, English): share of words among the 1k / 10k / 100k most
  frequent, mean and minimum Zipf frequency, share of unknown words;
- function words (``data/stopwords_en.txt``), casing (capitalised, all-caps and lower-case
  words, Title Case, upper-case letters, non-ASCII letters), digits and punctuation, commas,
  separators (" | ", " - "), sentence end, distinct words;
- a lexicon of UI phrases (``data/ui_phrases.txt``: plugin prompts, ratings, social widgets,
  buttons, pagination, badges), as hits, coverage and a leading phrase;
- fastText's probability that the text is English (the caller passes its page's score for a
  text made mostly of names, see :class:`lait.filters.description.DescriptionChooser`);
- which edits the cleaner made (a stripped photo credit or dateline marks a news caption) and
  which of the old structural rules fire (``title_case``, ``keyword_list``, ``rare_words``,
  ``all_caps``): the rules became features, weighed against everything else;
- where the text came from (alt, title, figcaption);
- optionally, hashed character 3-4-grams (``HashingVectorizer``), when the grouped
  cross-validation picks them.

Training data: ``alts.jsonl`` (alt, title and figcaption strings labelled caption, weak or
junk, from six source repositories). Positives are English captions, negatives junk and
non-English captions; ``weak`` strings (bare names, headlines, credits) are left out of the
fit: they are neither what must be kept nor what must go, and as negatives they cost captions
under grouped cross-validation. The regularisation, the hashed n-grams and the threshold are
chosen by leave-one-source-out cross-validation (:func:`select_and_fit`), never on held-in
data; ``bench/quality_text.py`` nests that whole choice inside an outer leave-one-source-out
loop to report held-out figures.

The model ships as JSON (``data/caption_quality.json``: plain numbers, loaded without executing
code) and is loaded once per worker by :meth:`lait.filters.text_rules.TextCleaner.load`.

Examples
--------
>>> model = CaptionQualityModel.load()
>>> score = model.score([CaptionInput("A man rides a bicycle past the Capitol in the rain", 0.95)])[0]
>>> bool(score >= model.threshold_)
True
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lait.filters.text_lexicon import DATA_DIR, edge_stripped_tokens, load_sections, load_word_list, words_of

MODEL_FILE = DATA_DIR / "caption_quality.json"
MODEL_FORMAT = "lait-caption-quality-logreg/1"

# Candidate sources mapped to the three attributes of the training data.
SOURCE_GROUPS = {"alt": "alt", "og_image_alt": "alt", "title": "title", "headline": "title",
                 "figcaption": "figcaption", "context": "figcaption", "next_sentence": "figcaption"}
# Old soft rules of TextCleaner that the model weighs instead of obeying: the structural ones.
# `logo` and `navigation` are left out: their word lists were grown on the training sources,
# and the UI lexicon (written from general web vocabulary) does as well under grouped CV.
SIGNALS = ("all_caps", "rare_words", "keyword_list", "title_case")
EDITS = ("credit", "dateline", "label", "site_name", "sentences", "url", "file_name", "repair")
WORD_BINS = ((1, 1), (2, 2), (3, 3), (4, 6), (7, 15), (16, 1_000_000))
UI_SECTIONS = ("prompt", "rating", "social", "action", "pagination", "badge")
SENTENCE_END = (".", "!", "?", ".\"", ".”", ".)")
SEPARATORS = (" | ", " - ", " – ", " — ", " :: ", " / ", " · ", " • ")
PUNCTUATION = re.compile(r"[^\w\s]")
DIGIT = re.compile(r"\d")
VOCABULARY_SIZE = 100_000

FEATURE_NAMES = (
    ["log_chars", "log_words"] + [f"words_{lo}_{hi}" if hi < 1000 else f"words_{lo}_up" for lo, hi in WORD_BINS]
    + ["mean_word_length", "top1k_share", "top10k_share", "top100k_share", "mean_zipf", "min_zipf", "unknown_share"]
    + ["function_share", "capitalised_share", "all_caps_share", "lower_share", "first_upper", "title_case",
       "upper_letter_share", "non_ascii_letter_share"]
    + ["digit_share", "punctuation_share", "ends_sentence", "has_comma", "comma_share", "has_separator",
       "unique_word_share"]
    + ["ui_hits", "ui_share", "ui_start"] + [f"ui_{s}" for s in UI_SECTIONS]
    + ["language_score"]
    + [f"edit_{e}" for e in EDITS] + [f"signal_{s}" for s in SIGNALS]
    + ["source_alt", "source_title", "source_figcaption"]
)


@dataclass(frozen=True)
class CaptionInput:
    """What the model reads about one cleaned description.

    Attributes
    ----------
    text : str
        The cleaned text (after :class:`lait.filters.text_rules.TextCleaner`'s edits).
    language_score : float or None
        fastText probability that `text` is English (or its page's, for a text of names).
    source : str or None
        alt, title, figcaption, og_image_alt, context or headline.
    edits : tuple of str
        Edits the cleaner made (``credit``, ``dateline``...).
    signals : tuple of str
        Old soft rules that fire on the text (:data:`SIGNALS`).
    """

    text: str
    language_score: float | None = None
    source: str | None = None
    edits: tuple[str, ...] = ()
    signals: tuple[str, ...] = ()


@functools.lru_cache(maxsize=1)
def _word_table() -> dict[str, tuple[int, float]]:
    """`{word: (rank, Zipf frequency)}` of the most frequent English words of wordfreq."""
    import wordfreq

    table: dict[str, tuple[int, float]] = {}
    for bucket, words in enumerate(wordfreq.get_frequency_list("en")):
        zipf = 9.0 - bucket / 100  # bucket i holds words of frequency 10 ** (-i / 100)
        for word in words:
            if len(table) >= VOCABULARY_SIZE:
                return table
            table.setdefault(word, (len(table), zipf))
    return table


@functools.lru_cache(maxsize=1)
def _ui_lexicon() -> dict[str, tuple[frozenset[str], tuple[str, ...]]]:
    """`{section: (single words, phrases)}` of ``data/ui_phrases.txt``."""
    return {section: (frozenset(e for e in entries if " " not in e), tuple(e for e in entries if " " in e))
            for section, entries in load_sections("ui_phrases.txt").items()}


@functools.lru_cache(maxsize=1)
def _function_words() -> frozenset[str]:
    return frozenset(load_word_list("stopwords_en.txt"))


def caption_features(item: CaptionInput) -> np.ndarray:
    """The feature row of one description, in the order of :data:`FEATURE_NAMES`."""
    table, stop, ui = _word_table(), _function_words(), _ui_lexicon()
    text = item.text or ""
    words = words_of(text)
    lowered = [w.lower() for w in words]
    n = max(len(words), 1)
    f: dict[str, float] = {"log_chars": math.log1p(len(text)), "log_words": math.log1p(len(words))}
    for (lo, hi), name in zip(WORD_BINS, FEATURE_NAMES[2:2 + len(WORD_BINS)]):
        f[name] = float(lo <= len(words) <= hi)
    f["mean_word_length"] = sum(map(len, words)) / n / 10
    known = [table.get(w) for w in lowered]
    ranks = [k[0] if k else VOCABULARY_SIZE for k in known]
    zipfs = [k[1] if k else 0.0 for k in known]
    f["top1k_share"] = sum(r < 1_000 for r in ranks) / n
    f["top10k_share"] = sum(r < 10_000 for r in ranks) / n
    f["top100k_share"] = sum(r < VOCABULARY_SIZE for r in ranks) / n
    f["mean_zipf"] = sum(zipfs) / n / 7
    f["min_zipf"] = min(zipfs, default=0.0) / 7
    f["unknown_share"] = sum(k is None for k in known) / n

    f["function_share"] = sum(w in stop for w in lowered) / n
    f["capitalised_share"] = sum(w[0].isupper() for w in words) / n
    f["all_caps_share"] = sum(len(w) > 1 and w.isupper() for w in words) / n
    f["lower_share"] = sum(w[0].islower() for w in words) / n
    f["first_upper"] = float(bool(words) and words[0][0].isupper())
    content = [w for w, low in zip(words, lowered) if low not in stop]
    f["title_case"] = float(len(content) >= 2 and all(w[0].isupper() for w in content)
                            and not any(w[0].islower() for w, low in zip(words[1:], lowered[1:]) if low in stop))
    letters = [c for c in text if c.isalpha()]
    n_letters = max(len(letters), 1)
    f["upper_letter_share"] = sum(c.isupper() for c in letters) / n_letters
    f["non_ascii_letter_share"] = sum(not c.isascii() for c in letters) / n_letters

    n_chars = max(len(text) - text.count(" "), 1)
    f["digit_share"] = len(DIGIT.findall(text)) / n_chars
    f["punctuation_share"] = len(PUNCTUATION.findall(text)) / n_chars
    f["ends_sentence"] = float(text.endswith(SENTENCE_END))
    f["has_comma"] = float("," in text)
    f["comma_share"] = min(text.count(",") / n, 1.0)
    f["has_separator"] = float(any(s in text for s in SEPARATORS))
    f["unique_word_share"] = len(set(lowered)) / n

    tokens = edge_stripped_tokens(text)[1] if text else ()
    joined = " " + " ".join(tokens) + " "
    hits = covered = 0
    start = 0.0
    for section in UI_SECTIONS:
        singles, phrases = ui.get(section, (frozenset(), ()))
        section_hits = sum(t in singles for t in tokens)
        section_covered = section_hits
        for phrase in phrases:
            count = joined.count(" " + phrase + " ")
            section_hits += count
            section_covered += count * (phrase.count(" ") + 1)
        f[f"ui_{section}"] = float(section_hits > 0)
        hits += section_hits
        covered += section_covered
        if tokens and (tokens[0] in singles or any(joined.startswith(" " + p + " ") for p in phrases)):
            start = 1.0
    f["ui_hits"] = min(hits, 3) / 3
    f["ui_share"] = min(covered / max(len(tokens), 1), 1.0)
    f["ui_start"] = start

    # Unknown (the language rule is off): the training mean is put in its place by the model.
    f["language_score"] = float("nan") if item.language_score is None else float(item.language_score)
    for edit in EDITS:
        f[f"edit_{edit}"] = float(edit in item.edits)
    for signal in SIGNALS:
        f[f"signal_{signal}"] = float(signal in item.signals)
    group = SOURCE_GROUPS.get(item.source or "alt", "alt")
    for name in ("alt", "title", "figcaption"):
        f[f"source_{name}"] = float(group == name)
    return np.array([f[name] for name in FEATURE_NAMES], dtype=np.float64)


def feature_matrix(items: Sequence[CaptionInput]) -> np.ndarray:
    """[n, len(FEATURE_NAMES)] rows of :func:`caption_features`."""
    if not items:
        return np.zeros((0, len(FEATURE_NAMES)))
    return np.stack([caption_features(item) for item in items])


class CaptionQualityModel:
    """Logistic regression on standardised :func:`caption_features` (and hashed n-grams).

    Parameters
    ----------
    C : float, default=0.1
        Inverse L2 regularisation strength.
    n_hash_features : int, default=0
        Hashed character 3-4-gram features (``HashingVectorizer``, l2-normalised) added to the
        dense features; 0 leaves them out.
    hash_weight : float, default=0.5
        Scale of the hashed block against the standardised dense features.
    threshold : float, default=0.5
        Score below which a text fails as ``low_caption_score`` (see `threshold_`).
    random_state : int, default=0

    Attributes
    ----------
    mean_, scale_ : ndarray of shape (n_features,)
        Standardisation of the dense features, learned in `fit`.
    coef_ : ndarray of shape (n_features + n_hash_features,)
    intercept_ : float
    threshold_ : float
        The threshold in use: `threshold` after `fit`, the grouped-CV choice after
        :func:`select_and_fit` or :meth:`load`.
    """

    def __init__(self, C: float = 0.1, n_hash_features: int = 0, hash_weight: float = 0.5,
                 threshold: float = 0.5, random_state: int = 0) -> None:
        self.C = C
        self.n_hash_features = n_hash_features
        self.hash_weight = hash_weight
        self.threshold = threshold
        self.random_state = random_state

    @functools.cached_property
    def _hasher(self):
        from sklearn.feature_extraction.text import HashingVectorizer

        return HashingVectorizer(analyzer="char_wb", ngram_range=(3, 4), n_features=self.n_hash_features,
                                 alternate_sign=False, norm="l2", lowercase=True)

    def _design(self, X: np.ndarray, texts: Sequence[str]):
        X = np.asarray(X, dtype=np.float64)
        if np.isnan(X).any():  # an unknown feature adds nothing: its training mean
            X = np.where(np.isnan(X), self.mean_, X)
        dense = (X - self.mean_) / self.scale_
        if not self.n_hash_features:
            return dense
        import scipy.sparse as sp

        hashed = self._hasher.transform(list(texts)) * self.hash_weight
        return sp.hstack([sp.csr_matrix(dense), hashed]).tocsr()

    def fit(self, items: Sequence[CaptionInput], y: Sequence[int], X: np.ndarray | None = None) -> CaptionQualityModel:
        """Fit on descriptions `items` and labels `y` (1 = caption); `X` = their precomputed feature rows."""
        from sklearn.linear_model import LogisticRegression

        X = feature_matrix(items) if X is None else np.asarray(X, dtype=np.float64)
        self.mean_ = np.nan_to_num(np.nanmean(X, axis=0)) if len(X) else np.zeros(X.shape[1])
        self.scale_ = np.nan_to_num(np.nanstd(X, axis=0))
        self.scale_[self.scale_ < 1e-8] = 1.0
        model = LogisticRegression(C=self.C, max_iter=5000, random_state=self.random_state)
        model.fit(self._design(X, [item.text for item in items]), np.asarray(y, dtype=int))
        self.coef_ = model.coef_.ravel().copy()
        self.intercept_ = float(model.intercept_[0])
        self.threshold_ = self.threshold
        return self

    def decision_function(self, items: Sequence[CaptionInput], X: np.ndarray | None = None) -> np.ndarray:
        X = feature_matrix(items) if X is None else X
        design = self._design(X, [item.text for item in items])
        return np.asarray(design @ self.coef_).ravel() + self.intercept_

    def score(self, items: Sequence[CaptionInput], X: np.ndarray | None = None) -> np.ndarray:
        """Probability that each description is a caption (0-1)."""
        if not len(items):
            return np.zeros(0)
        return 1.0 / (1.0 + np.exp(-np.clip(self.decision_function(items, X), -50, 50)))

    def to_dict(self) -> dict:
        return {
            "format": MODEL_FORMAT,
            "params": {"C": self.C, "n_hash_features": self.n_hash_features, "hash_weight": self.hash_weight,
                       "threshold": self.threshold, "random_state": self.random_state},
            "feature_names": FEATURE_NAMES, "threshold": self.threshold_,
            "mean": self.mean_.tolist(), "scale": self.scale_.tolist(),
            "coef": [round(c, 8) for c in self.coef_.tolist()], "intercept": self.intercept_,
        }

    def save(self, path: str | Path = MODEL_FILE, **metadata) -> None:
        """Write the fitted parameters (and `metadata`: training data, CV figures) as JSON."""
        state = self.to_dict()
        state["metadata"] = metadata
        Path(path).write_text(json.dumps(state, separators=(",", ":")) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path | None = None) -> CaptionQualityModel:
        """Read a model written by `save` (default: the shipped one); numbers only, nothing is executed."""
        path = path or MODEL_FILE
        state = json.loads(Path(path).read_text(encoding="utf-8"))
        if state.get("format") != MODEL_FORMAT:
            raise ValueError(f"{path} is not a {MODEL_FORMAT} model (format {state.get('format')!r})")
        if state["feature_names"] != FEATURE_NAMES:
            raise ValueError(f"{path} was trained with other features; retrain it: "
                             "python bench/quality_text.py --write_model")
        model = cls(**state["params"])
        model.mean_ = np.asarray(state["mean"], dtype=np.float64)
        model.scale_ = np.asarray(state["scale"], dtype=np.float64)
        model.coef_ = np.asarray(state["coef"], dtype=np.float64)
        model.intercept_ = float(state["intercept"])
        model.threshold_ = float(state["threshold"])
        model.metadata_ = state.get("metadata", {})
        return model


# ---------------------------------------------------------------- grouped model selection
# Hyper-parameters tried by `select_and_fit`, each scored by leave-one-group-out.
PARAM_GRID = [{"C": C, "n_hash_features": n} for C in (0.03, 0.1, 0.3, 1.0) for n in (0, 2048)]
THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.01), 2)


@dataclass(frozen=True)
class Targets:
    """What the threshold must reach on held-out groups; then captions kept are maximised.

    The margins are tighter than the goal (junk dropped >= 0.97, junk share of kept <= 0.03)
    because a threshold chosen on some sources is then applied to others. `weak_penalty`
    weighs the share of weak texts kept against captions kept.
    """

    min_junk_dropped: float = 0.98
    max_junk_share: float = 0.02
    weak_penalty: float = 0.25


def rates(labels: Sequence[str], kept: np.ndarray) -> dict:
    """Captions kept, junk dropped, junk and weak shares of what is kept.

    `labels`: ``caption`` (English caption: must be kept), ``junk`` (must go), ``weak`` or
    ``other`` (e.g. a non-English caption) per text; `kept`: booleans.
    """
    labels = np.asarray(labels)
    kept = np.asarray(kept, dtype=bool)
    n_kept = int(kept.sum())

    def share(label: str) -> float | None:
        mask = labels == label
        return round(float(kept[mask].mean()), 4) if mask.any() else None

    junk = share("junk")
    return {
        "captions_kept": share("caption"),
        "junk_dropped": None if junk is None else round(1 - junk, 4),
        "junk_share_of_kept": round(float((kept & (labels == "junk")).sum() / n_kept), 4) if n_kept else 0.0,
        "weak_share_of_kept": round(float((kept & (labels == "weak")).sum() / n_kept), 4) if n_kept else 0.0,
        "weak_kept": share("weak"),
        "kept": n_kept,
    }


def choose_threshold(labels: Sequence[str], scores: np.ndarray, passed: np.ndarray,
                     targets: Targets = Targets()) -> tuple[float, float]:
    """(threshold, objective): the threshold over out-of-fold `scores` that meets `targets` and
    keeps the most captions (less `weak_penalty` x weak kept); when none meets them, the one
    nearest to meeting them. `passed`: the texts that reached the model (the rest are dropped)."""
    best = None
    for threshold in THRESHOLDS:
        r = rates(labels, passed & (scores >= threshold))
        junk_dropped = r["junk_dropped"] if r["junk_dropped"] is not None else 1.0
        ok = junk_dropped >= targets.min_junk_dropped and r["junk_share_of_kept"] <= targets.max_junk_share
        if ok:
            value = (r["captions_kept"] or 0.0) - targets.weak_penalty * (r["weak_kept"] or 0.0)
        else:
            value = -r["junk_share_of_kept"] - (1 - junk_dropped) - 1.0
        if best is None or (ok, value) > best[0]:
            best = ((ok, value), float(threshold))
    return best[1], best[0][1]


def _training_target(labels: np.ndarray, weak: str = "exclude") -> tuple[np.ndarray, np.ndarray]:
    """(mask of texts the fit uses, y): captions 1, junk and non-English captions 0; weak texts
    left out (`weak="exclude"`, the grouped CV's choice), 0 (``"negative"``) or 1 (``"positive"``)."""
    mask = labels != "weak" if weak == "exclude" else np.ones(len(labels), dtype=bool)
    positive = ("caption", "weak") if weak == "positive" else ("caption",)
    return mask, np.isin(labels[mask], positive).astype(int)


def out_of_group_scores(items: Sequence[CaptionInput], X: np.ndarray, labels: Sequence[str], groups: Sequence[str],
                        passed: np.ndarray, params: dict, weak: str = "exclude") -> np.ndarray:
    """Scores of each text from a model fitted without its group (the texts that passed)."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    scores = np.zeros(len(labels))
    for group in sorted(set(groups[passed])):
        train = passed & (groups != group)
        test = passed & (groups == group)
        mask, y = _training_target(labels[train], weak)
        index = np.flatnonzero(train)[mask]
        model = CaptionQualityModel(**params).fit([items[i] for i in index], y, X[index])
        test_index = np.flatnonzero(test)
        scores[test_index] = model.score([items[i] for i in test_index], X[test_index])
    return scores


def select_and_fit(items: Sequence[CaptionInput], X: np.ndarray, labels: Sequence[str], groups: Sequence[str],
                   passed: np.ndarray, grid: Sequence[dict] = PARAM_GRID,
                   targets: Targets = Targets(), weak: str = "exclude") -> tuple[CaptionQualityModel, dict]:
    """Choose the parameters and the threshold by leave-one-group-out, then fit on every group.

    Parameters
    ----------
    items, X : the descriptions and their feature rows (:func:`feature_matrix`).
    labels : ``caption`` (English), ``junk``, ``weak`` or ``other`` per text.
    groups : the source of each text (repository, site): no fold sees its own source.
    passed : bool array, the texts that passed the hard rules (only they reach the model).
    grid : parameter dicts of :class:`CaptionQualityModel` to try.
    targets : what the threshold must meet.
    weak : how ``weak`` texts enter the fit: ``"exclude"``, ``"negative"`` or ``"positive"``.

    Returns
    -------
    (model, report): the model fitted on all passed texts with `threshold_` set, and the
    held-out objective of each grid point.
    """
    labels, passed = np.asarray(labels), np.asarray(passed, dtype=bool)
    tried = []
    for params in grid:
        scores = out_of_group_scores(items, X, labels, groups, passed, params, weak)
        threshold, value = choose_threshold(labels, scores, passed, targets)
        tried.append({"params": params, "threshold": threshold, "objective": round(value, 4)})
    best = max(tried, key=lambda t: t["objective"])
    mask, y = _training_target(labels[passed], weak)
    index = np.flatnonzero(passed)[mask]
    model = CaptionQualityModel(**best["params"], threshold=best["threshold"])
    model.fit([items[i] for i in index], y, X[index])
    return model, {"chosen": best, "tried": tried}
