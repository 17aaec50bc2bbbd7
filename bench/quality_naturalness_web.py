"""Naturalness on real pages: the classifier against the labelled images of the shared webcrawl set.

    python bench/quality_naturalness_web.py                     # the shipped model: AUC, accuracy, per kind/site
    python bench/quality_naturalness_web.py --model other.json  # another model file
    python bench/quality_naturalness_web.py --cv --cache /tmp/natweb.npz
        # + grouped cross-validation of the training recipes on natural/ and the webcrawl images
    python bench/quality_naturalness_web.py --cv --cache /tmp/natweb.npz --extras /tmp/natural_extra
        # + the recipes trained with the generated game frames and collages as well
    python bench/quality_naturalness_web.py --charts matplotlib-3.11.2.tar.gz
        # + matplotlib's baseline charts (its sdist from PyPI) as held-out non-photos
    python bench/quality_naturalness_web.py --training_folder /tmp/natural_web [--extras /tmp/natural_extra]
        # write natural/ (symlinks) + the webcrawl images (+ the extras) as one folder for `lait train-naturalness`

Labels: `bench/labels/webcrawl_images.jsonl`, every image record of the 7 WARCs of
../shared/data/webcrawl larger than 300 px on both sides (309), looked at one by one: `photo`
(a camera photograph, film and TV stills included) or `other` with its kind (game, comic,
illustration, poster, collage, cover, text, logo, screenshot, chart). Images are decoded as
`lait run` decodes them (lait.filters.image_decode; no aspect-ratio limit, so that every labelled
image is scored).

`--cv` compares training recipes by leave-one-group-out cross-validation, every fit inside the
folds: each webcrawl site is predicted by a model that saw no image of that site, each source
of natural/ (a repository or package) by one that saw nothing of that source. Recipes:

- `before`: the format-1 model (statistics + embedding, statistics_weight 1), natural/ only;
  on the webcrawl images this is simply the model fitted on all of natural/;
- `before_features_web_data`: the same features, natural/ + webcrawl images;
- `class_features_natural_only`: statistics + ImageNet class features + embedding,
  statistics_weight 4, natural/ only;
- `after`: that, natural/ + webcrawl images (what ships; trained by
  `lait train-naturalness FOLDER --statistics_weight 4` on the `--training_folder`);
- with `--extras FOLDER` (made by `naturalness_extra_images.py`: video-game frames and photo
  collages, the two kinds natural/ lacks), `after_with_extras` (the generated game frames and
  the collages), `after_with_collages` and `after_with_game_renders` (the real renders of Debian's
  game packages, `--only render`): `after` with those images always in training. A collage is
  left out of a natural/ fold whose source gave its photos. `extras_leave_one_source_out`: each
  source of the extras scored by a model trained without it (does a game teach about another
  game?).

The extras are not in the shipped model: they raise the webcrawl figure but cost natural/ photos
(the figures are in naturalness_extra_images.py and the JSON), and 3-D game renders still pass
as photos. Also tried, with an earlier folder of extras, not kept: single photos with caption bands as more photos (natural/
AUC 0.9957, webcrawl 0.9503), the extras weighted 0.1 to 0.5, balanced class weights, C 0.03 to
0.3, collages with gutters of 4 px or more, and 160 collages of three other seeds (natural/
accuracy 0.971 to 0.978, webcrawl photo recall 0.88 to 0.94).

Two more tries at the 3-D game renders, recipe `after`, not kept:
- 42 statistics of the full-resolution pixels that tell computer graphics from photographs in
  the forensics literature (Lyu and Farid: spread, mean magnitude, kurtosis and near-zero share
  of 3 levels of Haar subbands; the residual's spread in the flattest 30% of the image; the
  correlation of the colour channels' residuals, which demosaicing leaves in camera images),
  as more weighted columns: webcrawl 0.9183 (weight 1) to 0.9108 (weight 4), natural/ 0.9987
  to 0.9972. No single column separates the game frames from the webcrawl photos (AUC 0.31 to
  0.69): at web sizes and JPEG qualities the photos have lost their sensor noise too.
- 120 frames of textured 3-D scenes rendered by `pip:panda3d` (its bundled terrain and models,
  the software renderer, random cameras, lights and fog) as more non-photos: webcrawl 0.9230,
  webcrawl photo recall 0.967 -> 0.930, natural/ accuracy 0.9825 -> 0.9785; Portal and Mass
  Effect still score 0.98 to 1.0.
Real renders of three games from Debian's packages do teach it (recipe `after_with_game_renders`:
webcrawl 0.9613, Portal under 0.5, each game held out 20% scored photo) at the price of 1 in 20
photos of natural/: figures in naturalness_extra_images.py.

Flickr8k's 1,500 train photos (../shared/data/captions) as more training photos, recipe `after`,
not kept either: natural/ AUC 0.9986 -> 0.9992, but webcrawl 0.9179 -> 0.9072 (300 of them:
0.9148), the game frames' mean score 0.515 -> 0.591. More photos of rooms and people make a
3-D render look more like a photo, not less.

Seams, for the collages, not kept: per boundary between two pixel columns (rows) in the middle
70% of the image, the median and the 25th percentile over the rows (columns) of the step across
it, against the image's median step, and full-height uniform gutters between textured columns
(grey image, longer side 256 px). The 25th percentile ranks the 11 collages above the webcrawl
photos at AUC 0.98, but as weighted columns of recipe `after` they move nothing (webcrawl 0.9170
to 0.9212 at weights 1 to 4, collage mean score 0.60 -> 0.55 at best; natural/ 0.9985-0.9986),
and as a rule at the 99.5th percentile of natural/ photos it catches 4 of the 11 collages and
drops 2 of the 213 webcrawl photos.

`held_out_photos`: the model (shipped or --model) on the 2,500 Flickr8k photos of
../shared/data/captions, a photo source that neither natural/ nor the webcrawl labels draw from:
its photo recall at the threshold and the lowest-scored files. `held_out_charts` (`--charts`): the
same model on a non-photo source none of them draws from, the baseline images of matplotlib's test
suite of a size and shape FilterImages passes (charts, plots, colour maps: 538 in 3.11.2), and their AUC
against those Flickr8k photos. The shipped model rejects all 538 (the highest score 0.399, a
colour bar); AUC 1.0.

Beside it the 5-fold StratifiedGroupKFold by source that `lait train-naturalness` reports, and
the in-sample figures of the recipe fitted on everything (optimistic, labelled so).
Results go to `bench/results/quality_naturalness_web.json`. Without ../shared the script says
so and exits 0.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHARED = Path(os.environ.get("LAIT_SHARED", ROOT.parent / "shared")) / "data"
WEBCRAWL = SHARED / "webcrawl"
NATURAL = SHARED / "natural"
CAPTION_PHOTOS = SHARED / "captions" / "images"
LABELS = ROOT / "bench" / "labels" / "webcrawl_images.jsonl"
RESULTS = ROOT / "bench" / "results" / "quality_naturalness_web.json"
PHOTO = "photo"

RECIPES = {
    "before": {"classes": (), "statistics_weight": 1.0, "web_data": False},
    "before_features_web_data": {"classes": (), "statistics_weight": 1.0, "web_data": True},
    "class_features_natural_only": {"classes": None, "statistics_weight": 4.0, "web_data": False},
    "after": {"classes": None, "statistics_weight": 4.0, "web_data": True},
}
# Recipes that also train on the images of naturalness_extra_images.py, by their `kind` column.
# `extra_sources`, where given, keeps only rows whose source starts with one of them.
EXTRA_RECIPES = {
    "after_with_extras": {**RECIPES["after"], "extra_kinds": ("game", "collage"), "extra_sources": ("pip:", "collage:")},
    "after_with_collages": {**RECIPES["after"], "extra_kinds": ("collage",)},
    "after_with_game_renders": {**RECIPES["after"], "extra_kinds": ("game",), "extra_sources": ("deb:",)},
}


def load_labels(path: Path = LABELS) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def webcrawl_images(labels: list[dict], folder: Path = WEBCRAWL) -> list[bytes]:
    """The bytes of each labelled image record, in label order."""
    from lait.pipeline.read_crawl import iter_crawl_records

    wanted = {(row["warc"], row["image_url"]) for row in labels}
    found: dict[tuple[str, str], bytes] = {}
    for warc in sorted({row["warc"] for row in labels}):
        for record in iter_crawl_records(str(folder / warc)):
            if isinstance(record, dict) and record["kind"] == "image" and (warc, record["url"]) in wanted:
                found[(warc, record["url"])] = record["content"]
    missing = [key for key in wanted if key not in found]
    if missing:
        raise SystemExit(f"{len(missing)} labelled images are not in the WARCs, e.g. {missing[0]}")
    return [found[(row["warc"], row["image_url"])] for row in labels]


def natural_rows(folder: Path = NATURAL) -> list[dict]:
    with open(folder / "labels.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def network_outputs(blobs: list[bytes], net, batch_size: int = 32) -> dict[str, np.ndarray]:
    """Statistics [n, 24], embeddings [n, 1280], ImageNet probabilities [n, 1000] of image files."""
    from lait.filters.image_decode import decode_image
    from lait.filters.naturalness import image_statistics

    stats, embeddings, probs, batch = [], [], [], []

    def flush() -> None:
        e, p = net.embed_and_classify(batch)
        embeddings.append(e)
        probs.append(p)
        batch.clear()

    for blob in blobs:
        decoded = decode_image(blob, min_side=0, max_aspect_ratio=0)
        if not decoded.ok:
            raise SystemExit(f"an image does not decode: {decoded.reason} {decoded.detail or ''}")
        stats.append(image_statistics(decoded.image))
        batch.append(decoded.image)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return {"stats": np.stack(stats), "emb": np.concatenate(embeddings), "probs": np.concatenate(probs)}


def extra_images(folder: Path, net) -> dict[str, np.ndarray]:
    """Network outputs, labels, groups and kinds of a folder made by naturalness_extra_images.py."""
    rows = natural_rows(folder)
    outputs = network_outputs([(folder / row["path"]).read_bytes() for row in rows], net)
    return {**outputs, "y": np.array([row["label"] == PHOTO for row in rows], dtype=int),
            "groups": np.array([row["source_repo"] for row in rows]), "kinds": np.array([row["kind"] for row in rows])}


def photo_scores(model, outputs: dict[str, np.ndarray]) -> np.ndarray:
    """The model's photo probability for each image of `network_outputs`."""
    return model.predict_proba(model.features(outputs["stats"], outputs["emb"], outputs["probs"]))[:, 1]


def held_out_photos(model, net, folder: Path = CAPTION_PHOTOS, lowest: int = 5) -> tuple[dict, np.ndarray]:
    """The model on photos of a source that neither natural/ nor the webcrawl labels draw from (Flickr8k):
    `(summary, scores)`."""
    paths = sorted(folder.glob("*.jpg"))
    scores = photo_scores(model, network_outputs([p.read_bytes() for p in paths], net))
    order = np.argsort(scores)[:lowest]
    return {"folder": str(folder.relative_to(SHARED)) if folder.is_relative_to(SHARED) else str(folder),
            "photos": len(paths),
            "photo_recall": round(float((scores >= model.threshold).mean()), 4),
            "mean_score": round(float(scores.mean()), 4),
            "lowest": [{"image": paths[i].name, "score": round(float(scores[i]), 3)} for i in order]}, scores


def baseline_charts(sdist: Path) -> dict[str, bytes]:
    """matplotlib's test baseline images (charts, plots, colour maps) of a size and shape FilterImages
    lets through, by path, from its sdist (.tar.gz) or that unpacked."""
    from PIL import Image

    from lait.filters.image_decode import size_refusal

    def wanted(path: str) -> bool:
        return "/tests/baseline_images/" in path and path.endswith(".png")

    if sdist.is_dir():
        blobs = {str(p.relative_to(sdist)): p.read_bytes() for p in sorted(sdist.rglob("*.png")) if wanted(str(p))}
    else:
        with tarfile.open(sdist) as tar:
            blobs = {m.name: tar.extractfile(m).read() for m in tar if m.isfile() and wanted(m.name)}
    return {path: blob for path, blob in sorted(blobs.items())
            if size_refusal(*Image.open(io.BytesIO(blob)).size) is None}


def held_out_charts(model, net, charts: dict[str, bytes], source: str, flickr_scores: np.ndarray) -> dict:
    """The model on non-photos of a source none of its training draws from (matplotlib's charts, from
    :func:`baseline_charts`), and their AUC against the Flickr8k photos: both sides held out."""
    from sklearn.metrics import roc_auc_score

    scores = photo_scores(model, network_outputs(list(charts.values()), net))
    y = np.concatenate([np.ones(len(flickr_scores)), np.zeros(len(scores))])
    top, paths = np.argsort(-scores)[:5], list(charts)
    return {"source": source, "charts": len(charts),
            "other_rejected": round(float((scores < model.threshold).mean()), 4),
            "roc_auc_against_flickr8k_photos": round(float(roc_auc_score(y, np.concatenate([flickr_scores, scores]))), 4),
            "highest": [{"image": paths[i], "score": round(float(scores[i]), 3)} for i in top]}


def _metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict:
    from sklearn.metrics import roc_auc_score

    correct = (p >= threshold) == (y == 1)
    out = {"n": int(len(y)), "photos": int(y.sum())}
    if 0 < y.sum() < len(y):
        out["roc_auc"] = round(float(roc_auc_score(y, p)), 4)
    out["accuracy"] = round(float(correct.mean()), 4)
    if (y == 1).any():
        out["photo_recall"] = round(float(correct[y == 1].mean()), 4)
    if (y == 0).any():
        out["other_rejected"] = round(float(correct[y == 0].mean()), 4)
    return out


def breakdown(labels: list[dict], scores: np.ndarray, threshold: float = 0.5) -> dict:
    """AUC and accuracy overall, per kind and per site; the wrong ones by URL."""
    y = np.array([row["label"] == PHOTO for row in labels], dtype=int)
    kinds = np.array([row["kind"] for row in labels])
    sites = np.array([row["site"] for row in labels])
    per_kind = {}
    for kind in sorted(set(kinds)):
        s = kinds == kind
        per_kind[kind] = {**_metrics(y[s], scores[s], threshold), "mean_score": round(float(scores[s].mean()), 3)}
    wrong = [{"image_url": row["image_url"], "kind": row["kind"], "score": round(float(score), 3)}
             for row, score in zip(labels, scores) if (score >= threshold) != (row["label"] == PHOTO)]
    return {"all": _metrics(y, scores, threshold), "per_kind": per_kind,
            "per_site": {site: _metrics(y[sites == site], scores[sites == site], threshold) for site in sorted(set(sites))},
            "wrong": sorted(wrong, key=lambda w: w["score"])}


def cross_validate(nat: dict, web: dict, recipe: dict, extra: dict | None = None) -> dict:
    """Leave-one-group-out scores of a recipe: natural/ by source, webcrawl by site.

    `extra` (network outputs, `y`, `groups`, `kinds`) are training-only rows: the recipe's
    `extra_kinds` of them join every fit, except that a natural/ fold leaves out the rows whose
    group is `collage:SOURCE` of its own source."""
    from sklearn.model_selection import StratifiedGroupKFold

    from lait.filters.naturalness import CLASS_FEATURES, NaturalnessClassifier

    classes = CLASS_FEATURES if recipe["classes"] is None else recipe["classes"]

    def make() -> NaturalnessClassifier:
        return NaturalnessClassifier(C=0.1, statistics_weight=recipe["statistics_weight"], class_features=classes)

    model = make()
    Xn = model.features(nat["stats"], nat["emb"], nat["probs"]).astype(np.float64)
    Xw = model.features(web["stats"], web["emb"], web["probs"]).astype(np.float64)
    yn, yw, gn, gw = nat["y"], web["y"], nat["groups"], web["groups"]
    use_web = recipe["web_data"]
    Xe, ye, ge = np.zeros((0, Xn.shape[1])), np.zeros(0, dtype=int), np.zeros(0, dtype=str)
    if extra is not None:
        kept = np.isin(extra["kinds"], recipe.get("extra_kinds", ()))
        if "extra_sources" in recipe:
            kept &= np.array([str(group).startswith(recipe["extra_sources"]) for group in extra["groups"]], dtype=bool)
        Xe = model.features(extra["stats"], extra["emb"], extra["probs"]).astype(np.float64)[kept]
        ye, ge = extra["y"][kept], extra["groups"][kept]

    def fit(X, y, extra_rows=slice(None)):
        return make().fit(np.vstack([X, Xe[extra_rows]]), np.concatenate([y, ye[extra_rows]]))

    pn, pw = np.zeros(len(yn)), np.zeros(len(yw))
    for group in sorted(set(gn)):
        s = gn == group
        X, y = (np.vstack([Xn[~s], Xw]), np.concatenate([yn[~s], yw])) if use_web else (Xn[~s], yn[~s])
        pn[s] = fit(X, y, ge != f"collage:{group}").predict_proba(Xn[s])[:, 1]
    if use_web:
        for group in sorted(set(gw)):
            s = gw == group
            pw[s] = fit(np.vstack([Xn, Xw[~s]]), np.concatenate([yn, yw[~s]])).predict_proba(Xw[s])[:, 1]
    else:
        pw = fit(Xn, yn).predict_proba(Xw)[:, 1]

    # What `lait train-naturalness` reports: 5-fold StratifiedGroupKFold by source over its data.
    X = np.vstack([Xn, Xw]) if use_web else Xn
    y = np.concatenate([yn, yw]) if use_web else yn
    g = np.concatenate([gn, gw]) if use_web else gn
    p5 = np.zeros(len(y))
    for train, test in StratifiedGroupKFold(5, shuffle=True, random_state=0).split(X, y, g):
        collages_of_test = ~np.isin(ge, [f"collage:{group}" for group in set(g[test])])
        p5[test] = fit(X[train], y[train], collages_of_test).predict_proba(X[test])[:, 1]
    everything = fit(X, y)
    # Each extra source scored by a model that saw natural/, the webcrawl images and the other extras:
    # whether what they teach carries to a source of the same kind it never saw.
    extras_out = {}
    for group in sorted(set(ge)):
        s = ge == group
        p = fit(np.vstack([Xn, Xw]) if use_web else Xn, np.concatenate([yn, yw]) if use_web else yn, ~s)
        extras_out[group] = {"n": int(s.sum()),
                             "scored_photo": round(float((p.predict_proba(Xe[s])[:, 1] >= 0.5).mean()), 4)}
    return {
        "recipe": {**recipe, "classes": list(classes), "C": 0.1, "extra_rows": int(len(ye))},
        "natural_leave_one_source_out": _metrics(yn, pn),
        "webcrawl_leave_one_site_out": _metrics(yw, pw),
        "stratified_group_5fold_by_source": {"natural": _metrics(yn, p5[:len(yn)]),
                                             **({"webcrawl": _metrics(yw, p5[len(yn):])} if use_web else {})},
        "in_sample_optimistic": {"natural": _metrics(yn, everything.predict_proba(Xn)[:, 1]),
                                 "webcrawl": _metrics(yw, everything.predict_proba(Xw)[:, 1])},
        **({"extras_leave_one_source_out": extras_out} if extras_out else {}),
        "_webcrawl_scores": pw,
    }


def linked_rows(folder: Path, name: str, source: Path) -> list[dict]:
    """The rows of `source`/labels.csv, each image symlinked under `folder`/`name`."""
    rows = []
    for row in natural_rows(source):
        link = folder / name / row["path"]
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(source.resolve() / row["path"])
        rows.append({"path": f"{name}/{row['path']}", "label": row["label"], "kind": row["kind"],
                     "source_repo": row["source_repo"]})
    return rows


def write_training_folder(folder: Path, labels: list[dict], blobs: list[bytes], extras: Path | None = None) -> None:
    """natural/ (symlinked) + the webcrawl images (+ the extras, symlinked), with one labels.csv."""
    from lait.pipeline.commands.train_naturalness import LABEL_COLUMNS

    folder.mkdir(parents=True, exist_ok=True)
    rows = linked_rows(folder, "natural", NATURAL) + (linked_rows(folder, "extras", extras) if extras else [])
    (folder / "webcrawl").mkdir(exist_ok=True)
    for i, (row, blob) in enumerate(zip(labels, blobs)):
        path = f"webcrawl/{i:04d}.img"
        (folder / path).write_bytes(blob)
        rows.append({"path": path, "label": row["label"], "kind": row["kind"], "source_repo": row["site"]})
    with open(folder / "labels.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=LABEL_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {folder}: {len(rows)} images; train with\n"
          f"  lait train-naturalness {folder} --statistics_weight 4")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model file (default: the shipped one)")
    parser.add_argument("--cv", action="store_true", help="also cross-validate the training recipes")
    parser.add_argument("--cache", default=None, help="npz file caching the network outputs of both image sets")
    parser.add_argument("--training_folder", default=None, help="write the combined training folder here and stop")
    parser.add_argument("--extras", default=None,
                        help="a folder of naturalness_extra_images.py: with --cv, the recipes trained on it too; "
                             "with --training_folder, its images in that folder too")
    parser.add_argument("--charts", default=None,
                        help="matplotlib's sdist (.tar.gz, or that unpacked): its baseline charts as held-out non-photos")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()
    charts = {}
    if args.charts:  # read first: a wrong file is a one-line error, not a traceback after the photos
        try:
            charts = baseline_charts(Path(args.charts))
        except (OSError, tarfile.TarError) as error:
            parser.error(f"cannot read {args.charts} ({type(error).__name__}): give matplotlib's sdist, "
                         "e.g. matplotlib-3.11.2.tar.gz")
        if not charts:
            parser.error(f"{args.charts} has no test baseline images: give matplotlib's sdist, e.g. matplotlib-3.11.2.tar.gz")
    if args.extras and not (Path(args.extras) / "labels.csv").is_file():
        parser.error(f"{args.extras} has no labels.csv: make it with bench/naturalness_extra_images.py")
    if not WEBCRAWL.is_dir() or not NATURAL.is_dir():
        print(f"skipped: needs {WEBCRAWL} and {NATURAL} (the shared data beside the repo), absent here")
        return 0
    import torch

    from lait.encoders.efficientnet import EfficientNetLite0
    from lait.filters.naturalness import MODEL_FILE, NaturalnessClassifier

    torch.set_num_threads(min(2, torch.get_num_threads()))
    started = time.time()
    labels = load_labels()
    blobs = webcrawl_images(labels)
    if args.training_folder:
        write_training_folder(Path(args.training_folder), labels, blobs, Path(args.extras) if args.extras else None)
        return 0
    cache = Path(args.cache) if args.cache else None
    if cache and cache.exists():
        stored = np.load(cache)
        web = {k: stored[f"web_{k}"] for k in ("stats", "emb", "probs")}
        nat = {k: stored[f"nat_{k}"] for k in ("stats", "emb", "probs")} if "nat_stats" in stored else None
    else:
        web, nat = None, None
    net = None
    if web is None:
        net = EfficientNetLite0(device="cpu")
        web = network_outputs(blobs, net)
    rows = natural_rows()
    if args.cv and nat is None:
        net = net or EfficientNetLite0(device="cpu")
        nat = network_outputs([(NATURAL / row["path"]).read_bytes() for row in rows], net)
    if cache and not cache.exists():
        np.savez(cache, **{f"web_{k}": v for k, v in web.items()},
                 **({f"nat_{k}": v for k, v in nat.items()} if nat else {}))

    model_path = Path(args.model) if args.model else MODEL_FILE
    model = NaturalnessClassifier.load(model_path)
    scores = photo_scores(model, web)
    result = {"labels": str(LABELS.relative_to(ROOT)), "model": str(model_path.relative_to(ROOT))
              if model_path.is_relative_to(ROOT) else str(model_path),
              "threshold": model.threshold,
              "note": "the shipped model is trained on natural/ plus these webcrawl images, so model_on_webcrawl "
                      "is IN-SAMPLE for it (optimistic); judge recipes by cross_validation (leave-one-site-out)",
              "model_on_webcrawl": breakdown(labels, scores, model.threshold)}
    overall = result["model_on_webcrawl"]["all"]
    print(f"{model_path.name} on {overall['n']} webcrawl images ({overall['photos']} photos; in-sample if it was "
          f"trained on them, as the shipped one is): "
          f"AUC {overall.get('roc_auc')}, accuracy {overall['accuracy']} at {model.threshold}")
    for kind, m in result["model_on_webcrawl"]["per_kind"].items():
        print(f"  {kind:13s} n={m['n']:3d} accuracy {m['accuracy']:.3f} mean score {m['mean_score']:.3f}")

    if CAPTION_PHOTOS.is_dir():
        net = net or EfficientNetLite0(device="cpu")
        result["held_out_photos"], flickr_scores = held_out_photos(model, net)
        print(f"{model_path.name} on {result['held_out_photos']['photos']} Flickr8k photos (a source it never saw): "
              f"photo recall {result['held_out_photos']['photo_recall']}")
        if charts:
            result["held_out_charts"] = held_out_charts(model, net, charts, Path(args.charts).name, flickr_scores)
            charts = result["held_out_charts"]
            print(f"  and on {charts['charts']} matplotlib baseline charts (never seen either): rejected "
                  f"{charts['other_rejected']}, AUC against the Flickr8k photos {charts['roc_auc_against_flickr8k_photos']}")

    if args.cv:
        web["y"] = np.array([row["label"] == PHOTO for row in labels], dtype=int)
        web["groups"] = np.array(["webcrawl:" + row["site"] for row in labels])
        nat["y"] = np.array([row["label"] == PHOTO for row in rows], dtype=int)
        nat["groups"] = np.array([row["source_repo"] for row in rows])
        extra = extra_images(Path(args.extras), net or EfficientNetLite0(device="cpu")) if args.extras else None
        recipes = {**RECIPES, **(EXTRA_RECIPES if extra else {})}
        if extra:
            kinds, counts = np.unique(extra["kinds"], return_counts=True)
            made = Path(args.extras) / "made.json"
            result["extras"] = {"folder": args.extras, "images_by_kind": dict(zip(kinds.tolist(), counts.tolist())),
                                "made_by": json.loads(made.read_text()) if made.exists() else None}
        result["cross_validation"] = {}
        print(f"{'recipe':26s} {'natural LOSO AUC/acc':>21s} {'webcrawl LOSO AUC/acc':>22s} "
              f"{'web photo recall/other rejected':>32s} {'natural 5-fold AUC':>19s}")
        for name, recipe in recipes.items():
            cv = cross_validate(nat, web, recipe, extra)
            cv["webcrawl_leave_one_site_out_breakdown"] = breakdown(labels, cv.pop("_webcrawl_scores"))
            result["cross_validation"][name] = cv
            n, w = cv["natural_leave_one_source_out"], cv["webcrawl_leave_one_site_out"]
            print(f"{name:26s} {n['roc_auc']:>14.4f}/{n['accuracy']:.4f} {w['roc_auc']:>15.4f}/{w['accuracy']:.4f} "
                  f"{w['photo_recall']:>25.4f}/{w['other_rejected']:.4f} "
                  f"{cv['stratified_group_5fold_by_source']['natural']['roc_auc']:>19.4f}", flush=True)
    result["seconds"] = round(time.time() - started, 1)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
