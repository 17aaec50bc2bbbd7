"""Candidate features for hard-negative relevance, against the same rows without them. Writes JSON.

    python bench/bench_relevance_variants.py [--max_iter 300] [--json bench/results/relevance_variants.json]

A quick proxy of bench/bench_relevance_grouped.py: the training rows of `lait train-relevance`,
one grouped fold (its held-out sources left out of training), one uncalibrated classifier per
variant, and Flickr8k dev AUCs on the dev photos of even image row only (the selection half;
the odd half is kept for a final check of a chosen variant, ``--final``). Variants, each the
shipped features plus:

- ``word_label``: caption content words, each embedded as the label prompt "a photo of a
  <word>", against the image's ImageNet classes: per-word agreement (label-softmax of the
  word against the image's log-probabilities), expected and top-10 similarity, the share of
  words the top-10 classes explain, and the words' visual concreteness (best label similarity);
- ``word_concreteness``: only the three text-side columns of ``word_label`` (specificity);
- ``neighbour_words``: the share of the caption's content words that captions of the ten most
  similar train photos use (the photo itself left out).

Three earlier variants now ship (``lait.scoring.relevance``): ``look_alike_captions``
(:class:`LookAlikeCaptions`, the projection's cosine as a z-score against the image's cosines
with the caption centroids of its 30 and 60 most similar train photos), ``word_grounding``
(:class:`WordGrounding`, per caption word used by 8 or more train photos a linear image
classifier; mean, min and sum of log P(word | image) - log base rate, mean log P) and
``projection_320``, the wide look (``WIDE_PROJECTION_NAMES``: the shipped projection's cosine and
its z-scores against reference images and captions, from a second projection fitted on
EfficientNet's pooled embedding of the photo scaled to 320 px, which ScoreRelevance computes;
``projection_224_seed1``, the same columns from the 224 px input with another seed, was its
control: a second projection alone). The figures below name them as they were measured, as variants.

Seen (hard AUC, selection half / held-out odd half): shipped 0.8313 / 0.8184, the control
projection_224_seed1 0.8346 / 0.8200, projection_320 0.8481 / 0.8328, all three 0.8522 / 0.8416
(random 0.973 on the odd half, junk unchanged).

Those figures predate the detail in the image vector. Since then the vector is EfficientNet's
pooled embedding followed by its detail, the pooled outputs of the blocks ending the 192- and
320-channel stages (``lait.encoders.efficientnet.DETAIL_BLOCKS``), which the 224 px pass computes
anyway. The projection's cosine alone went from 0.800 to 0.814 hard (seeds 1 and 2: 0.796 ->
0.807, 0.799 -> 0.812; all five stages' outputs, or their spatial standard deviations too, no
better). In this bench: shipped features 0.8444 / 0.8312 (random 0.9705 / 0.9703),
look_alike_captions+word_grounding 0.8533 / 0.8439 (random 0.9718 / 0.9721).

With the detail, look-alikes and grounding shipped, measured again before the wide look shipped
(``bench/results/relevance_variants_wide_look.json``, both halves): shipped 0.8518 / 0.8439,
projection_320 0.8573 / 0.8486 (random 0.9750 / 0.9746), the control projection_224_seed1
0.8543 / 0.8427. The wide look is the one gain that held on both halves. Tried in the same
setting, not kept: the projection as an ensemble of three seeds (every learned feature reading
the mean of their cosines) 0.8565 / 0.8445, of two 0.8522 on the selection half; the classifier
with 150, 220 or 600 boosting iterations instead of 300: 0.8529, 0.8531, 0.8494 on the
selection half. With the wide look shipped (shipped features 0.8585 / 0.8485, random 0.9749 / 0.9741), the
wide embedding fed to the other learned parts too, each as extra columns: word grounding 0.8568,
look-alike captions of the wide projection 0.8593, a neighbour bank 0.8584: none kept. The wide
look at a smaller, cheaper size instead of 320 px (selection half): 288 px 0.8564, 256 px 0.8523.

Also tried with everything above shipped, not kept: both projections trained on augmented views of
each train photo (the photo, its mirror image and three crops of 85% of its shorter side, one
drawn per photo and step; the standardisation fitted on the photos as they are). The projection's
cosine alone rose a little on all dev photos (hard 0.811 -> 0.817 at 224 px, 0.811 -> 0.813 at
320 px, the mean of three seeds), but the classifier did not: hard 0.8582 -> 0.8539 on the
selection half, 0.8466 -> 0.8498 on the odd half (random 0.9745 -> 0.9728, 0.9741 -> 0.9743).

Also tried, without the detail, and not kept: NudeNet's 18 class scores of the image (faces
by sex, exposed and covered body parts; FilterImages runs that network anyway) beside
caption words for women, men, children, people, animals and bare skin, and their products:
0.8311 -> 0.8321 on the selection half. On these 224 px photos the face classes tell photos
captioned only with women from those captioned only with men at AUC 0.71.

The projection columns are fitted on train photos out of fold by photo (the folds of the
learned features of `build_training_rows`); web rows and dev photos get the parts fitted on
every train photo. ``--variants`` reruns some (with ``shipped_features``, the baseline of the
same run) and keeps the others' figures in the JSON.

Tried outside this bench, each alone on all dev photos (AUC hard; the shipped projection's
cosine gives 0.800, its z against reference captions 0.806, the classifier then 0.827 grouped), none
worth a variant: the projection trained on batches of same-class photos (hard in-batch negatives,
clusters of 8 or 32: 0.806), five projection seeds averaged (0.810), rank 256 or 3/12 epochs
(0.79-0.80), a ridge map image -> MiniLM (0.747), similarity to each caption of the 10 or 30
nearest photos in projection or standardised image space (0.66-0.73), and in the classifier,
hard negatives weighted x2 or x4 (+0.001 / -0.001 over ``look_alike_captions``), 600 boosting
iterations (-0.001 over ``look_alike_captions+word_grounding``), and that variant with
``look_alike_captions`` averaged over three projection seeds (+0.002). The ceiling is not the
captions: the most similar *other* human caption of the same dev photo (MiniLM) separates the
hard negatives at 0.965; what is missing is image detail the pooled EfficientNet-Lite0
embedding of 1,500 train photos does not align with text.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_relevance_grouped import log, print_and_save, shared_training_set  # noqa: E402
from lait.scoring import relevance_training as rt  # noqa: E402
from lait.scoring.relevance_features import (  # noqa: E402
    RelevanceFeatures,
    content_stems,
    content_words,
    label_prompts,
    stem,
)
from lait.scoring.relevance_grouped_cv import grouped_folds  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results" / "relevance_variants.json"
NEIGHBOURS = 10
# Best label similarity above which a word counts as naming a visual object.
CONCRETE = 0.6


def word_label_columns(extractor: RelevanceFeatures, enc: rt.Encoded, ti: np.ndarray, ii: np.ndarray) -> np.ndarray:
    words = enc.texts.words
    vocab = sorted({w for t in np.unique(ti) for w in content_words(words[t])})
    index = {w: i for i, w in enumerate(vocab)}
    sims = extractor.text_encoder.encode(label_prompts(vocab)) @ extractor.label_embeddings.T  # [V, 1000]
    soft = np.exp((sims - sims.max(1, keepdims=True)) / 0.05)
    soft /= soft.sum(1, keepdims=True)
    concrete = sims.max(1)
    probs = np.nan_to_num(enc.images.probs, nan=0.0)
    out = np.full((len(ti), 14), np.nan, dtype=np.float32)
    for r, (t, i) in enumerate(zip(ti, ii)):
        ids = np.array([index[w] for w in content_words(words[t])], dtype=np.int64)
        out[r, 0] = len(ids)
        if not len(ids):
            continue
        c = concrete[ids]
        out[r, 1:3] = c.mean(), (c > CONCRETE).sum()
        if not enc.images.decoded[i]:
            continue
        p = probs[i]
        top = np.argpartition(-p, 10)[:10]
        agree = soft[ids] @ np.log(p.clip(1e-8))
        expected = sims[ids] @ p
        top_sim = sims[ids][:, top].max(1)
        gap = top_sim - sims[ids].max(1)
        out[r, 3:] = [agree.mean(), agree.min(), agree.max(), (agree * c).sum() / c.sum(), expected.mean(),
                      expected.min(), top_sim.mean(), top_sim.min(), (gap > -0.05).mean(), gap.min(), gap.mean()]
    return out


def neighbour_word_columns(corpus: rt.Corpus, enc: rt.Encoded, ti: np.ndarray, ii: np.ndarray) -> np.ndarray:
    names = [n for n in corpus.images if corpus.split[n] == "train"]
    bank_rows = np.array([enc.image_rows[n] for n in names])
    emb = np.nan_to_num(enc.images.embeddings)
    mean, scale = emb[bank_rows].mean(0), emb[bank_rows].std(0) + 1e-6

    def unit(x):
        x = (x - mean) / scale
        return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-9)

    bank = unit(emb[bank_rows])
    bags = [Counter({stem(w) for cap in corpus.captions[n] for w in content_words(enc.texts.words[enc.text_rows[cap]])})
            for n in names]
    position = {int(r): k for k, r in enumerate(bank_rows)}
    images = np.unique(ii)
    sims = unit(emb[images]) @ bank.T
    for j, r in enumerate(images):
        if int(r) in position:
            sims[j, position[int(r)]] = -np.inf  # never the photo's own captions
    near = np.argsort(-sims, axis=1)[:, :NEIGHBOURS]
    seen = {int(r): sum((bags[k] for k in near[j]), Counter()) for j, r in enumerate(images)}
    out = np.full((len(ti), 4), np.nan, dtype=np.float32)
    for r, (t, i) in enumerate(zip(ti, ii)):
        stems = content_stems(enc.texts.words[t])
        if stems and enc.images.decoded[i]:
            share = np.array([seen[int(i)][w] for w in stems], dtype=np.float32) / NEIGHBOURS
            out[r] = [share.mean(), share.min(), (share > 0).mean(), share.max()]
    return out


def proxy_auc(rows: rt.TrainingRows, keep: np.ndarray, dev_X: np.ndarray, dev: rt.PairSet, photos: np.ndarray,
              seed: int, max_iter: int) -> dict:
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    X = rows.X.copy()
    X[:, rt.constant_columns(X)] = 0.0
    classifier = rt.make_classifier(seed, max_iter)
    with threadpool_limits(1):
        classifier.fit(X[keep], rows.y[keep], sample_weight=rt.sample_weights(rows.kinds[keep], rows.y[keep]))
    scores = classifier.predict_proba(dev_X)[:, 1]
    kinds = np.array(dev.kinds)
    out = {}
    for kind in ("random", "hard", "junk"):
        sel = photos & ((kinds == "positive") | (kinds == kind))
        out[f"auc_{kind}"] = round(float(roc_auc_score(dev.labels[sel], scores[sel])), 4)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max_iter", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--final", action="store_true", help="score the odd (held-out) half of the dev photos")
    parser.add_argument("--cache", type=Path, default=ROOT / "out" / "relevance_cache")
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--variants", nargs="+", default=None,
                        help="run only these (shipped_features is the baseline to run beside them); the other "
                             "variants' figures already in --json are kept")
    args = parser.parse_args()
    started = time.time()
    data = shared_training_set(args.cache, args.seed)
    if data is None:
        return 0
    corpus, web, extractor, enc, rows, parts = data.corpus, data.web, data.extractor, data.enc, data.rows, data.parts
    train_set = rt.build_pairs(corpus, "train", enc.image_rows, enc.text_rows, enc.images.probs, extractor.membership,
                               corpus.junk, args.seed, no_image_pairs=rt.NO_IMAGE_PAIRS)
    ws = rt.web_pair_set(web, enc)
    ti, ii = np.concatenate([train_set.text_index, ws.text_index]), np.concatenate([train_set.image_index, ws.image_index])
    assert len(ti) == len(rows.y)
    dev = rt.dev_pair_set(extractor, corpus, enc, corpus.junk, args.seed)
    dev_X = rt.feature_rows(extractor, dev, enc, parts)
    fold = grouped_folds(rows)[0]
    keep = ~np.isin(rows.groups, fold)
    photos = dev.image_index % 2 == (1 if args.final else 0)
    variants = {"shipped_features": lambda: (None, None)}
    variants["word_label"] = lambda: (word_label_columns(extractor, enc, ti, ii),
                                      word_label_columns(extractor, enc, dev.text_index, dev.image_index))
    variants["word_concreteness"] = lambda: tuple(c[:, :3] for c in variants["word_label"]())
    variants["neighbour_words"] = lambda: (neighbour_word_columns(corpus, enc, ti, ii),
                                           neighbour_word_columns(corpus, enc, dev.text_index, dev.image_index))
    chosen = args.variants or list(variants)
    results = {}
    for name in chosen:
        extra_tr, extra_dev = variants[name]()
        X, dX = (rows.X, dev_X) if extra_tr is None else (np.hstack([rows.X, extra_tr]), np.hstack([dev_X, extra_dev]))
        results[name] = proxy_auc(rt.TrainingRows(X, rows.y, rows.kinds, rows.groups, rows.photos), keep, dX, dev,
                                  photos, args.seed, args.max_iter)
        log(f"  {name}: {results[name]}")
    if args.variants and args.json.exists():  # keep the figures of the variants not rerun
        results = json.loads(args.json.read_text())["variants"] | results
    result = {"bench": "relevance_variants", "max_iter": args.max_iter, "seed": args.seed,
              "held_out_fold": fold, "dev_photos": "odd image rows (held out)" if args.final else "even image rows",
              "dev_pairs_scored": int(photos.sum()), "variants": results, "seconds": round(time.time() - started, 1)}
    print_and_save(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
