"""Training and evaluation of the relevance model (``lait train-relevance``).

The labelled set is built from a small supervised one, as LAIT's recipe says, plus real web
pairs:

- Flickr8k (Hodosh et al., 2013): the human captions of the train photos with their own
  photo (positives), captions of *other* photos, random ones and hard ones (a photo whose
  EfficientNet-Lite0 top-1 class is the same, else the same coarse group), as negatives;
- real junk alt texts from web pages (``shared/data/alts``, label ``junk``) on real photos;
- web pairs of the labelled webcrawl (:mod:`lait.scoring.relevance_web`): lead photos with
  the page texts that describe them (names, places, events), with the page's other texts,
  and with another page's describing text.

The learned features (projection, neighbour bank) see Flickr8k train photos only, out of
fold by photo. The Flickr8k dev photos are never trained on: :func:`evaluate` reports
ROC-AUC on them. Source-grouped figures (each webcrawl site and alts repository held out in
turn, thresholds fitted inside the folds) come from :mod:`lait.scoring.relevance_grouped_cv`.

Flickr8k captions are tokenised ("edge ."); they are detokenised first so that spacing
before punctuation cannot tell captions from web text. Context keys that captions lack
(``text_source``, file name) are filled the same way for positives and negatives, so the
classifier cannot read the label off them: ``text_source`` at random, and in a share of
pairs a file name made of words of *another* caption of the pair's photo (a file named
after what the photo shows, whatever the text). Page titles stay missing, on web pairs too:
the captions have no pages, so the page features carry no learned weight.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import re
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold

from lait.scoring.relevance import (
    FORMAT_VERSION,
    INTERACTION_NAMES,
    ImageTextProjection,
    LearnedParts,
    LookAlikeCaptions,
    NeighbourBank,
    RelevanceModel,
    WordGrounding,
    export_calibrated_hgb,
)
from lait.scoring.relevance_features import (
    IMAGE_VECTOR_DIM,
    WIDE_INPUT_SIZE,
    ImageEncoding,
    RelevanceFeatures,
    TextEncoding,
    content_stems,
    image_statistics,
    label_prompts,
    stem,
    words_of,
)
from lait.scoring.relevance_web import WEB_KINDS, WebPairs, collect_web_pairs

__all__ = ["Corpus", "load_corpus", "train", "evaluate", "detokenize"]

REFERENCE_SIZE = 256
# Learned features of training rows come from parts fitted without the row's photo: with ten
# folds those parts see nine tenths of the photos, close to the final parts that score new pairs.
INTERACTION_FOLDS = 10
CALIBRATION_FOLDS = 3
JUNK_EVAL_SHARE = 0.3
JUNK_IMAGES_PER_TEXT = 8
SOURCE_MIX = (("alt", 0.6), ("figcaption", 0.25), ("title", 0.1), ("og_image_alt", 0.05))
FILE_NAME_SHARE = 0.25
# Web file names are as often slugs of the page's own text as names of what the photo
# shows; without such pairs the model trusted any file-name/text overlap (a boilerplate
# "reader-photo-10.jpg" / "Reader photo of the week" pair scored 0.7).
FILE_NAME_FROM_TEXT_SHARE = 0.15
# Pairs whose image is missing or undecodable: never relevant (nothing to describe).
NO_IMAGE = "<no image>"
NO_IMAGE_PAIRS = 500
# Page titles are headlines, not captions: filling them from another caption of the photo
# (tried: 20% of pairs) taught the model to punish real titles that merely differ from the
# text (true web pairs fell from 0.95 to 0.3). The captions have no pages, so none.
PAGE_TITLE_SHARE = 0.0
# Web pairs are few (about 900 from 5 sites) beside 25,000 caption pairs but are what the
# pipeline scores: each counts this many caption pairs.
WEB_WEIGHT = 8.0


def detokenize(caption: str) -> str:
    """Undo Flickr8k's tokenisation: "edge ." -> "edge.", "dog 's" -> "dog's"."""
    text = re.sub(r"\s+([.,!?;:])", r"\1", caption.strip())
    return re.sub(r"\s+('s|n't|'re|'m|'ll|'ve|'d)\b", r"\1", text)


@dataclass
class Corpus:
    """Captioned photos and junk alts, encoded once."""

    images: list[str]  # file names
    split: dict[str, str]  # image -> train/dev
    captions: dict[str, list[str]]  # image -> detokenised captions
    junk_train: list[str]
    junk_eval: list[str]
    image_dir: Path
    junk_source: dict[str, str] = field(default_factory=dict)  # junk text -> source repository

    @property
    def junk(self) -> list[str]:
        return self.junk_train + self.junk_eval


def load_corpus(captions_dir: Path, alts_file: Path | None, max_photos: int | None = None) -> Corpus:
    """Captions (detokenised) by photo and the junk alts split by page; `max_photos` per split for smoke runs."""
    captions: dict[str, list[str]] = defaultdict(list)
    split: dict[str, str] = {}
    with open(captions_dir / "captions.tsv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            captions[row["image"]].append(detokenize(row["caption"]))
            split[row["image"]] = row["split"]
    junk_train, junk_eval, junk_source = [], [], {}
    if alts_file is not None and alts_file.exists():
        with open(alts_file, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                if row["label"] != "junk" or not (row["text"] or "").strip():
                    continue  # CleanText drops empty texts before ScoreRelevance sees them
                page = row.get("page_url") or row.get("source_path") or ""
                bucket = int(hashlib.sha1(page.encode()).hexdigest(), 16) % 1000 / 1000
                (junk_eval if bucket < JUNK_EVAL_SHARE else junk_train).append(row["text"])
                junk_source.setdefault(row["text"], row.get("source_repo") or "unknown")
    images = sorted(captions)
    if max_photos:
        images = [n for sp in ("train", "dev") for n in [m for m in images if split[m] == sp][:max_photos]]
    return Corpus(images, split, {n: captions[n] for n in images}, junk_train, junk_eval, captions_dir / "images",
                  junk_source)


class EncodingCache:
    """Encodes each unique text and image once; optionally keeps them in an .npz between runs."""

    def __init__(self, extractor: RelevanceFeatures, cache_dir: Path | None, log=print):
        self.extractor = extractor
        self.cache_dir = cache_dir
        self.log = log

    def images(self, corpus: Corpus):
        # The vector's width and the wide look's side in the key: another encoding's cache is not read.
        key = hashlib.sha1("\n".join([*corpus.images, str(IMAGE_VECTOR_DIM), f"wide {WIDE_INPUT_SIZE}"]).encode())
        path = self.cache_dir / f"images-{key.hexdigest()[:12]}.npz" if self.cache_dir else None
        if path and path.exists():
            with np.load(path) as d:
                return ImageEncoding(*(d[name] for name in IMAGE_ENCODING_FIELDS))
        started = time.time()
        chunks = []
        for start in range(0, len(corpus.images), 256):
            names = corpus.images[start : start + 256]
            chunks.append(self.extractor.encode_images([(corpus.image_dir / n).read_bytes() for n in names]))
            self.log(f"  images {start + len(names)}/{len(corpus.images)} ({time.time() - started:.0f} s)")
        enc = _concat_images(*chunks)
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, **{name: getattr(enc, name) for name in IMAGE_ENCODING_FIELDS})
        return enc


    def texts(self, texts: list[str]) -> TextEncoding:
        key = hashlib.sha1("\n".join(texts).encode()).hexdigest()[:12]
        path = self.cache_dir / f"texts-{key}.npz" if self.cache_dir else None
        if path and path.exists():
            with np.load(path) as d:
                words = [words_of(t) for t in texts]
                return TextEncoding(d["embeddings"], d["statistics"], d["language"],
                                    [frozenset(stem(w) for w in ws) for ws in words], words)
        self.log(f"encoding {len(texts)} texts")
        enc = self.extractor.encode_texts(texts)
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, embeddings=enc.embeddings, statistics=enc.statistics, language=enc.language)
        return enc


@dataclass
class PairSet:
    """Pairs as indices into the encoded texts and images, plus the pair dicts for context."""

    pairs: list[dict]
    text_index: np.ndarray
    image_index: np.ndarray
    labels: np.ndarray
    kinds: list[str]  # positive, random, hard, junk


def _hard_partner(i: int, images: list[int], top1: np.ndarray, group: np.ndarray, rng) -> int:
    same = [j for j in images if j != i and top1[j] == top1[i]]
    if not same:
        same = [j for j in images if j != i and group[j] == group[i]]
    if not same:
        same = [j for j in images if j != i]
    return int(same[rng.integers(len(same))])


def build_pairs(corpus: Corpus, split: str, image_rows: dict[str, int], text_rows: dict[str, int],
                probs: np.ndarray, membership: np.ndarray, junk: list[str], seed: int,
                context: bool = True, no_image_pairs: int = 0) -> PairSet:
    """Positive, random, hard and junk pairs over the images of `split`."""
    rng = np.random.default_rng(seed)
    names = [n for n in corpus.images if corpus.split[n] == split]
    rows = [image_rows[n] for n in names]
    top1 = np.nan_to_num(probs, nan=0).argmax(1)
    group = (np.nan_to_num(probs, nan=0) @ membership).argmax(1)
    pairs, ti, ii, labels, kinds = [], [], [], [], []

    def add(name: str, text: str, label: int, kind: str) -> None:
        sources, weights = zip(*SOURCE_MIX)
        pair = {"text": text, "image_url": f"https://example.org/photos/{name}",
                "text_source": sources[rng.choice(len(sources), p=weights)]}
        if context:
            others = [c for c in corpus.captions.get(name, []) if c != text]
            draw = rng.random()
            source = None
            if others and draw < FILE_NAME_SHARE:
                source = others[rng.integers(len(others))]
            elif draw < FILE_NAME_SHARE + FILE_NAME_FROM_TEXT_SHARE:
                source = text
            content = [w for w in words_of(source) if len(w) > 2][:4] if source else []
            if content:
                pair["image_url"] = f"https://example.org/photos/{'-'.join(content)}.jpg"
            if others and rng.random() < PAGE_TITLE_SHARE:
                pair["page_title"] = others[rng.integers(len(others))]
        pairs.append(pair)
        ti.append(text_rows[text])
        ii.append(image_rows[name])
        labels.append(label)
        kinds.append(kind)

    for k, name in enumerate(names):
        partner_random = names[(k + 1 + rng.integers(len(names) - 1)) % len(names)]
        partner_hard = corpus.images[_hard_partner(image_rows[name], rows, top1, group, rng)]
        for c, caption in enumerate(corpus.captions[name]):
            add(name, caption, 1, "positive")
            other = names[(k + 1 + rng.integers(len(names) - 1)) % len(names)] if c else partner_random
            add(name, corpus.captions[other][rng.integers(len(corpus.captions[other]))], 0, "random")
            add(name, corpus.captions[partner_hard][c % len(corpus.captions[partner_hard])], 0, "hard")
    for text in junk:
        for name in rng.choice(names, size=min(JUNK_IMAGES_PER_TEXT, len(names)), replace=False):
            add(str(name), text, 0, "junk")
    if no_image_pairs and NO_IMAGE in image_rows:
        texts = [c for n in names for c in corpus.captions[n]] + list(junk)
        for t in rng.choice(len(texts), size=no_image_pairs, replace=False):
            add(NO_IMAGE, texts[t], 0, "no_image")
    return PairSet(pairs, np.array(ti), np.array(ii), np.array(labels), kinds)


def _reference_banks(projection: ImageTextProjection, image_emb: np.ndarray, caption_emb: np.ndarray, seed: int):
    rng = np.random.default_rng(seed)
    imgs = image_emb[rng.choice(len(image_emb), size=min(REFERENCE_SIZE, len(image_emb)), replace=False)]
    txts = caption_emb[rng.choice(len(caption_emb), size=min(REFERENCE_SIZE, len(caption_emb)), replace=False)]
    return projection.project_images(imgs), projection.project_texts(txts)


def _captions_by_image(corpus: Corpus, names: list[str], text_emb: np.ndarray, text_rows: dict[str, int]):
    return [text_emb[[text_rows[c] for c in corpus.captions[n]]] for n in names]


@dataclass
class Encoded:
    """Every image and text of the training sets, encoded once; rows by file name / URL and by text."""

    images: ImageEncoding
    texts: TextEncoding
    image_rows: dict[str, int]
    text_rows: dict[str, int]


def fit_learned_parts(corpus: Corpus, enc: Encoded, names: list[str], seed: int, epochs: int) -> LearnedParts:
    """Projection, reference banks, neighbour bank, look-alike captions and word grounding fitted on
    the photos `names` and their captions."""
    rows = [enc.image_rows[n] for n in names]
    image_emb, wide_emb = enc.images.embeddings[rows], enc.images.wide[rows]
    captions = _captions_by_image(corpus, names, enc.texts.embeddings, enc.text_rows)
    all_captions = np.concatenate(captions)
    projection = ImageTextProjection(epochs=epochs, seed=seed).fit(image_emb, captions)
    ref_i, ref_t = _reference_banks(projection, image_emb, all_captions, seed)
    wide_projection = ImageTextProjection(epochs=epochs, seed=seed).fit(wide_emb, captions)
    photo_stems = [set().union(*(content_stems(enc.texts.words[enc.text_rows[c]]) for c in corpus.captions[n]))
                   for n in names]
    return LearnedParts(projection, ref_i, ref_t, NeighbourBank().fit(image_emb, captions),
                        LookAlikeCaptions().fit(projection, image_emb, captions),
                        WordGrounding(seed=seed).fit(image_emb, photo_stems), wide_projection,
                        *_reference_banks(wide_projection, wide_emb, all_captions, seed))


def learned_features(parts: LearnedParts, enc: Encoded, image_index: np.ndarray, text_index: np.ndarray) -> np.ndarray:
    """The learned columns of the pairs (image_index[i], text_index[i])."""
    return parts.features(enc.images.embeddings[image_index], enc.texts.embeddings[text_index],
                          [content_stems(enc.texts.words[t]) for t in text_index], enc.images.wide[image_index])


def _concat_texts(a: TextEncoding, b: TextEncoding) -> TextEncoding:
    return TextEncoding(np.vstack([a.embeddings, b.embeddings]), np.vstack([a.statistics, b.statistics]),
                        np.concatenate([a.language, b.language]), a.stems + b.stems, a.words + b.words)


IMAGE_ENCODING_FIELDS = tuple(f.name for f in dataclasses.fields(ImageEncoding))


def _concat_images(*parts: ImageEncoding) -> ImageEncoding:
    return ImageEncoding(*(np.concatenate([getattr(p, f) for p in parts]) for f in IMAGE_ENCODING_FIELDS))


def encode_sets(extractor: RelevanceFeatures, corpus: Corpus, web: WebPairs | None, cache_dir: Path | None,
                log=print) -> Encoded:
    """Encode the captioned photos, the junk alts and the web pairs (plus one undecodable image row)."""
    cache = EncodingCache(extractor, cache_dir, log)
    images = cache.images(corpus)
    image_names = list(corpus.images)
    texts_list = sorted({c for cs in corpus.captions.values() for c in cs} | set(corpus.junk))
    texts = cache.texts(texts_list)
    parts = [images]
    if web is not None and web.pairs:
        urls = sorted(web.images)
        parts.append(extractor.encode_images([web.images[u] for u in urls], [{"image_url": u} for u in urls]))
        image_names += urls
        web_texts = sorted({p["text"] for p in web.pairs} - set(texts_list))
        texts = _concat_texts(texts, extractor.encode_texts(web_texts))
        texts_list += web_texts
    no_image = ImageEncoding(np.full((1, images.embeddings.shape[1]), np.nan, np.float32),
                             np.full((1, images.probs.shape[1]), np.nan, np.float32),
                             np.array([image_statistics(None, None, {})], dtype=np.float32), np.array([False]),
                             np.full((1, images.wide.shape[1]), np.nan, np.float32))
    image_names.append(NO_IMAGE)
    return Encoded(_concat_images(*parts, no_image), texts, {n: i for i, n in enumerate(image_names)},
                   {t: i for i, t in enumerate(texts_list)})


def web_pair_set(web: WebPairs, enc: Encoded) -> PairSet:
    """The web pairs as a :class:`PairSet` over `enc` (page titles left out, as for the captions)."""
    pairs = [{k: p[k] for k in ("text", "text_source", "image_url")} for p in web.pairs]
    return PairSet(pairs, np.array([enc.text_rows[p["text"]] for p in web.pairs], dtype=np.int64),
                   np.array([enc.image_rows[p["image_url"]] for p in web.pairs], dtype=np.int64),
                   web.labels, [p["kind"] for p in web.pairs])


def feature_rows(extractor: RelevanceFeatures, ps: PairSet, enc: Encoded, parts: LearnedParts | None) -> np.ndarray:
    """Classifier inputs of `ps`; the learned columns stay NaN when `parts` is None (filled out of fold)."""
    base = extractor.pair_features(ps.pairs, enc.texts, enc.images, ps.text_index, ps.image_index)
    learned = np.full((len(ps.pairs), len(INTERACTION_NAMES)), np.nan, dtype=np.float32)
    if parts is not None:
        learned = learned_features(parts, enc, ps.image_index, ps.text_index)
    return np.hstack([base, learned])


@dataclass
class TrainingRows:
    """The classifier's rows: features, labels, kind and source group of each."""

    X: np.ndarray
    y: np.ndarray
    kinds: np.ndarray
    groups: np.ndarray  # "flickr8k", an alts repository (junk rows) or a webcrawl site
    photos: np.ndarray  # image row, for calibration folds grouped by photo


def build_training_rows(extractor: RelevanceFeatures, corpus: Corpus, enc: Encoded, web: WebPairs | None,
                        seed: int, epochs: int, log=print) -> tuple[TrainingRows, LearnedParts]:
    """Flickr8k train pairs with learned features out of fold, junk alts and web pairs; and the final learned parts."""
    started = time.time()
    train_set = build_pairs(corpus, "train", enc.image_rows, enc.text_rows, enc.images.probs, extractor.membership,
                            corpus.junk, seed, no_image_pairs=NO_IMAGE_PAIRS)
    X = feature_rows(extractor, train_set, enc, None)
    # Learned features out of fold: a projection or neighbour bank never sees the photo it scores.
    train_names = [n for n in corpus.images if corpus.split[n] == "train"]
    train_rows = np.array([enc.image_rows[n] for n in train_names])
    fold_of = {}
    for fold, (_, test) in enumerate(GroupKFold(INTERACTION_FOLDS).split(train_rows, groups=train_rows)):
        fold_of.update({int(r): fold for r in train_rows[test]})
    pair_fold = np.array([fold_of.get(int(r), 0) for r in train_set.image_index])
    for fold in range(INTERACTION_FOLDS):
        parts = fit_learned_parts(corpus, enc, [n for n in train_names if fold_of[enc.image_rows[n]] != fold],
                                  seed, epochs)
        mask = pair_fold == fold
        X[mask, -len(INTERACTION_NAMES):] = learned_features(parts, enc, train_set.image_index[mask],
                                                             train_set.text_index[mask])
        log(f"  learned features, fold {fold + 1}/{INTERACTION_FOLDS} ({time.time() - started:.0f} s)")
    final = fit_learned_parts(corpus, enc, train_names, seed, epochs)
    kinds = np.array(train_set.kinds)
    groups = np.array(["flickr8k"] * len(kinds), dtype=object)
    junk_rows = kinds == "junk"
    groups[junk_rows] = [corpus.junk_source.get(train_set.pairs[i]["text"], "unknown") for i in np.flatnonzero(junk_rows)]
    rows = TrainingRows(X, train_set.labels, kinds, groups, train_set.image_index)
    if web is not None and web.pairs:
        ws = web_pair_set(web, enc)
        rows = TrainingRows(np.vstack([X, feature_rows(extractor, ws, enc, final)]),
                            np.concatenate([rows.y, ws.labels]), np.concatenate([kinds, ws.kinds]),
                            np.concatenate([groups, web.sites.astype(object)]),
                            np.concatenate([rows.photos, ws.image_index]))
    log(f"  training rows {rows.X.shape} ({time.time() - started:.0f} s)")
    return rows, final


def sample_weights(kinds: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Junk alts count double and web pairs `WEB_WEIGHT` times, then the classes are balanced.

    Junk alts and web pairs are few but are what the pipeline meets; balancing makes a
    calibrated 0.5 mean "as likely related as not", not the training set's share of positives.
    """
    weights = np.where(kinds == "junk", 2.0, 1.0)
    weights[np.isin(kinds, WEB_KINDS)] = WEB_WEIGHT
    weights[y == 1] *= weights[y == 0].sum() / weights[y == 1].sum()
    return weights


def make_classifier(seed: int, max_iter: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=0.06, max_leaf_nodes=31,
                                          min_samples_leaf=40, l2_regularization=1.0, early_stopping=False,
                                          random_state=seed)


def fit_classifier(rows: TrainingRows, seed: int, max_iter: int, keep: np.ndarray | None = None):
    """Calibrated trees on the rows `keep` (all by default); calibration folds grouped by photo."""
    from sklearn.calibration import CalibratedClassifierCV
    from threadpoolctl import threadpool_limits

    keep = np.ones(len(rows.y), dtype=bool) if keep is None else keep
    X, y = rows.X[keep], rows.y[keep]
    splits = list(GroupKFold(CALIBRATION_FOLDS).split(X, y, groups=rows.photos[keep]))
    with threadpool_limits(1):  # spinning OpenMP threads are slower on a shared machine
        return CalibratedClassifierCV(make_classifier(seed, max_iter), method="sigmoid", cv=splits).fit(
            X, y, sample_weight=sample_weights(rows.kinds[keep], y))


def constant_columns(X: np.ndarray) -> np.ndarray:
    """Columns the training rows never fill (keys the labelled sets lack): set to 0, never split on."""
    return np.isnan(X).all(0)


@dataclass
class TrainingSet:
    """What the classifier is fitted on: the labelled sets, their encodings, the rows and the learned parts."""

    corpus: Corpus
    web: WebPairs | None
    extractor: RelevanceFeatures
    enc: Encoded
    rows: TrainingRows
    parts: LearnedParts


def build_training_set(captions_dir: Path, alts_file: Path | None, cache_dir: Path | None = None, seed: int = 0,
                       log=print, projection_epochs: int = 6, max_photos: int | None = None,
                       webcrawl_records: Iterable | None = None, webcrawl_labels: Path | None = None) -> TrainingSet:
    """Load and encode the labelled sets and build the training rows (as :func:`train` and the benches do)."""
    corpus = load_corpus(captions_dir, alts_file, max_photos)
    web = collect_web_pairs(webcrawl_records, webcrawl_labels, seed) if webcrawl_records and webcrawl_labels else None
    log(f"corpus: {len(corpus.images)} photos, {len(corpus.junk)} junk alts, "
        f"{len(web.pairs) if web else 0} web pairs")
    extractor = RelevanceFeatures()
    enc = encode_sets(extractor, corpus, web, cache_dir, log)
    rows, parts = build_training_rows(extractor, corpus, enc, web, seed, projection_epochs, log)
    return TrainingSet(corpus, web, extractor, enc, rows, parts)


def train(captions_dir: Path, alts_file: Path | None, output: Path, cache_dir: Path | None = None,
          seed: int = 0, log=print, projection_epochs: int = 6, max_iter: int = 300,
          max_photos: int | None = None, webcrawl_records: Iterable | None = None,
          webcrawl_labels: Path | None = None) -> dict:
    """Build the labelled sets, fit learned parts and classifier, evaluate on held-out data, save.

    Returns the model's metadata (with the held-out report). Runs torch on one thread:
    on a shared machine more threads only spin.
    """
    import torch

    torch.set_num_threads(1)
    started = time.time()
    data = build_training_set(captions_dir, alts_file, cache_dir, seed, log, projection_epochs, max_photos,
                              webcrawl_records, webcrawl_labels)
    corpus, extractor, enc, rows, parts = data.corpus, data.extractor, data.enc, data.rows, data.parts
    never_seen = constant_columns(rows.X)
    rows.X[:, never_seen] = 0.0
    classifier = fit_classifier(rows, seed, max_iter)
    log(f"classifier fitted ({time.time() - started:.0f} s)")

    arrays = export_calibrated_hgb(classifier)
    arrays.update(parts.to_arrays())
    arrays["label_embeddings"] = extractor.label_embeddings.astype(np.float16)
    arrays["feature_medians"] = np.nanmedian(np.where(np.isfinite(rows.X), rows.X, np.nan), axis=0)
    names = extractor.names + INTERACTION_NAMES
    meta = {
        "format_version": FORMAT_VERSION,
        "feature_names": names,
        "label_prompt_example": label_prompts(["tench"])[0],
        "training": {
            "captions": str(captions_dir), "alts": str(alts_file), "webcrawl_labels": str(webcrawl_labels),
            "seed": seed, "pairs": len(rows.y), "positives": int(rows.y.sum()),
            "features_constant_in_training": [n for n, c in zip(names, never_seen) if c],
            "by_kind": {k: int((rows.kinds == k).sum()) for k in sorted(set(rows.kinds))},
            "web_sites": sorted({str(g) for g, k in zip(rows.groups, rows.kinds) if k in WEB_KINDS}),
            "web_weight": WEB_WEIGHT,
            "classifier": "CalibratedClassifierCV(HistGradientBoostingClassifier, method=sigmoid, cv=3 groups by photo)",
            "hgb_params": {k: v for k, v in classifier.estimator.get_params().items()
                           if isinstance(v, int | float | str | None)},
            "projection": {"rank": parts.projection.rank, "epochs": parts.projection.epochs,
                           "temperature": parts.projection.temperature},
            "neighbours": {"k": parts.neighbours.k, "components": parts.neighbours.components},
            "grounding": {"words": len(parts.grounding.vocabulary_), "min_photos": parts.grounding.min_photos},
        },
    }
    model = RelevanceModel(arrays, meta)
    # The exported predictor must agree with scikit-learn's before anything is shipped.
    sample = rows.X[:: max(1, len(rows.X) // 2000)]
    gap = float(np.abs(model.predict_proba(sample) - classifier.predict_proba(sample)[:, 1]).max())
    if gap > 1e-4:
        raise RuntimeError(f"exported trees disagree with scikit-learn by {gap}")
    meta["training"]["export_max_abs_diff"] = gap
    # Dev photos are never trained on; the junk alts all are (their grouped figures: bench/bench_relevance_grouped.py).
    report = evaluate_encoded(model, extractor, corpus, enc, seed)
    meta["held_out"] = report
    meta["training"]["seconds"] = round(time.time() - started, 1)
    model.meta = meta
    model.save(output)
    log(json.dumps(report, indent=2))
    return meta


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(labels, scores)), 4)


def dev_pair_set(extractor: RelevanceFeatures, corpus: Corpus, enc: Encoded, junk: list[str], seed: int) -> PairSet:
    """Dev photos: own captions, random and hard other captions, `junk` alts; no context hints."""
    return build_pairs(corpus, "dev", enc.image_rows, enc.text_rows, enc.images.probs, extractor.membership,
                       junk, seed + 1, context=False)


def evaluate_encoded(model: RelevanceModel, extractor: RelevanceFeatures, corpus: Corpus, enc: Encoded,
                     seed: int) -> dict:
    """ROC-AUC on dev photos: true caption vs random / hard other captions, and junk alts (in sample)."""
    dev = dev_pair_set(extractor, corpus, enc, corpus.junk, seed)
    base = extractor.pair_features(dev.pairs, enc.texts, enc.images, dev.text_index, dev.image_index)
    inter = learned_features(model.parts, enc, dev.image_index, dev.text_index)
    scores = model.predict_proba(np.hstack([base, inter]))
    kinds = np.array(dev.kinds)
    pos = kinds == "positive"
    report = {"dev_photos": int(len({int(i) for i in dev.image_index})), "positives": int(pos.sum())}
    for kind in ("random", "hard", "junk"):
        sel = pos | (kinds == kind)
        report[f"auc_{kind}"] = roc_auc(dev.labels[sel], scores[sel])
        report[f"n_{kind}"] = int((kinds == kind).sum())
    report["junk_alts"] = "in sample: every junk alt is trained on (grouped figures: bench/bench_relevance_grouped.py)"
    report["auc_all"] = roc_auc(dev.labels, scores)
    report["mean_score_positive"] = round(float(scores[pos].mean()), 4)
    for kind in ("random", "hard", "junk"):
        report[f"mean_score_{kind}"] = round(float(scores[kinds == kind].mean()), 4)
    report["kept_at_0.5"] = {k: round(float((scores[kinds == k] >= 0.5).mean()), 4)
                             for k in ("positive", "random", "hard", "junk")}
    return report


def evaluate(model_path: Path | None, captions_dir: Path, alts_file: Path | None, cache_dir: Path | None = None,
             seed: int = 0, log=print) -> dict:
    """Dev-photo figures of a saved model (same protocol as at training time)."""
    model = RelevanceModel.load(model_path)
    extractor = model.feature_extractor()
    corpus = load_corpus(captions_dir, alts_file)
    return evaluate_encoded(model, extractor, corpus, encode_sets(extractor, corpus, None, cache_dir, log), seed)
