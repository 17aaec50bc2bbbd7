"""FilterImages: naturalness cross-validation, NSFW false positives, throughput per core (prints JSON).

    python bench/bench_filter_images.py                  # everything (several minutes on 2 cores)
    python bench/bench_filter_images.py --skip_cv        # only NSFW false positives and throughput
    python bench/bench_filter_images.py --throughput_images 40 --nsfw_limit 300   # a quick run
    python bench/bench_filter_images.py --skip_cv --unseen_photos 0 --nsfw_limit 100 \
        --verdicts out/bench/verdicts.json --compare OLD_VERDICTS.json --out bench/results/filter_images.json
    git worktree add /tmp/lait_base OLD_COMMIT && ln -s $PWD/.venv /tmp/lait_base/.venv
    python bench/bench_filter_images.py ... --baseline /tmp/lait_base   # + throughput of OLD_COMMIT, in turns

- naturalness: ../shared/data/natural, cross-validated three ways with the shipped model's
  parameters (stratified 5-fold; folds grouped by source repository; folds grouped by kind,
  photos by source): ROC-AUC and accuracy at the shipped threshold, accuracy per kind.
- unseen photos: share of Flickr8k photos (../shared/data/captions/images, a source the
  classifier never saw) that the shipped model calls natural.
- nsfw: share of real photos (../shared/data/captions/images and natural/photo) scored
  above --max_nsfw (0.5): all of them are ordinary photos, so that share is the false-positive rate.
- throughput: `ImageFilter.check` (decode + hashes + naturalness + NSFW, batches of 16) on
  real photos larger than 300 px, with torch and onnxruntime on one thread: images per
  second of CPU time (= per core) and per second of wall time; and the `FilterImages` Beam
  stage on DirectRunner in-process over the same files.
- components: CPU milliseconds per image of each part of `ImageFilter.check` on the same
  files, one at a time (decode, hashes, statistics, EfficientNet with its preprocessing,
  NudeNet with its preprocessing, each network alone on ready input, the classifier), the
  parts taking turns in each of --component_rounds rounds (best round kept: the machine is
  shared). The networks as they ran before (EfficientNet on PyTorch, the whole NudeNet
  detector) are measured beside the ones `check` runs now, and `check` itself with each pair;
  the limits they set: images/s/core if only the two networks ran, and if every part ran once
  with nothing in between.
- throughput beside a baseline (--baseline CHECKOUT): the throughput figures of the code in
  another checkout and of this one, each in a fresh process, taking turns for
  --baseline_rounds rounds (best round of each, and every round's figure: the spread says how
  noisy the shared machine was); and the components of both, one after the other, each in a
  fresh process.
- verdicts (--verdicts FILE): every image of ../shared/data/natural and the 309 labelled
  webcrawl images (bench/labels/webcrawl_images.jsonl, read from the WARCs) checked with
  `score_all`, their scores and kept/dropped written to FILE, and the ROC-AUC of the natural
  score on the webcrawl labels; --compare OLD compares them with an earlier FILE (another
  version of the code): decisions that differ, largest score change, the AUC before.

Tried and not kept: NudeNet's cut model quantised to int8 by ONNX Runtime (static, calibrated on
50 photos of natural/, per-channel weights; QOperator or QDQ; the detection head, or the whole
neck too, left in float). On this AVX2 machine it runs at 13-17 ms instead of 21 ms per image,
but its NSFW scores move by up to 0.44 on ordinary photos (correlation 0.45 with the float
model's), which would change verdicts at --max_nsfw.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
# LAIT_CODE_ROOT: import lait from another checkout (--baseline runs this script on the older code).
sys.path.insert(0, os.environ.get("LAIT_CODE_ROOT", str(ROOT)))
from lait.filters.image_decode import decode_image  # noqa: E402
from lait.filters.image_filter import ImageFilter  # noqa: E402
from lait.filters.naturalness import MODEL_FILE, NaturalnessClassifier  # noqa: E402
from lait.filters.nsfw import NsfwScorer  # noqa: E402

SHARED = Path(os.environ.get("LAIT_SHARED", ROOT.parent / "shared")) / "data"


def bench_naturalness(folds: int) -> dict:
    from lait.encoders.efficientnet import EfficientNetLite0
    from lait.pipeline.commands.train_naturalness import PHOTO_LABEL, cv_report, extract_features, read_labels

    shipped = NaturalnessClassifier.load(MODEL_FILE)
    params = {"C": shipped.C, "statistics_weight": shipped.statistics_weight, "threshold": shipped.threshold}
    folder = SHARED / "natural"
    started = time.time()
    X, rows = extract_features(folder, read_labels(folder), EfficientNetLite0(device="cpu"))
    y = np.array([r["label"] == PHOTO_LABEL for r in rows], dtype=int)
    report = cv_report(X, y, rows, lambda: NaturalnessClassifier(**params), shipped.threshold, folds)
    return {"images": len(y), "photos": int(y.sum()), "params": params, "folds": folds,
            "seconds": round(time.time() - started, 1), **report}


def bench_unseen_photos(limit: int) -> dict:
    from lait.filters.naturalness import NaturalnessScorer

    paths = sorted((SHARED / "captions" / "images").glob("*.jpg"))
    paths = paths[:: max(1, len(paths) // limit)][:limit]
    scorer = NaturalnessScorer(device="cpu")
    images = [decode_image(p.read_bytes(), min_side=0, max_aspect_ratio=0).image for p in paths]
    scores = np.concatenate([scorer.score(images[i:i + 32]) for i in range(0, len(images), 32)])
    natural = scores >= scorer.threshold
    return {"photos": len(paths), "threshold": scorer.threshold, "natural_rate": round(float(natural.mean()), 4),
            "median_score": round(float(np.median(scores)), 4),
            "not_natural": [p.name for p in np.array(paths)[~natural]][:20]}


def bench_nsfw(limit: int | None, max_nsfw: float) -> dict:
    paths = sorted((SHARED / "captions" / "images").glob("*.jpg")) + sorted((SHARED / "natural" / "photo").iterdir())
    if limit:
        paths = paths[:: max(1, len(paths) // limit)][:limit]
    images = [decode_image(p.read_bytes(), min_side=0, max_aspect_ratio=0).image for p in paths]
    scorer = NsfwScorer()
    started = time.process_time()
    scores = scorer.score(images)
    cpu = time.process_time() - started
    flagged = scores > max_nsfw
    return {"photos": len(paths), "max_nsfw": max_nsfw, "false_positives": int(flagged.sum()),
            "false_positive_rate": round(float(flagged.mean()), 4),
            "fpr_at": {str(t): round(float((scores > t).mean()), 4) for t in (0.3, 0.4, 0.6, 0.7)},
            "median_score": round(float(np.median(scores)), 4),
            "flagged": [str(p.relative_to(SHARED)) for p in np.array(paths)[flagged]][:20],
            "nsfw_images_per_cpu_second": round(len(paths) / cpu, 1)}


def large_photos(n: int) -> list[bytes]:
    found = []
    for path in sorted((SHARED / "natural" / "photo").glob("*.jpg")):
        with Image.open(path) as image:
            if min(image.size) > 300:
                found.append(path.read_bytes())
        if len(found) == n:
            break
    return found


def bench_throughput(n: int) -> dict:
    files = large_photos(n)
    image_filter = ImageFilter()
    image_filter.load_models()
    # Warm-up with a whole batch: ONNX Runtime plans and allocates its buffers on the first run
    # of each batch shape, a cost that belongs to start-up, not to every batch.
    image_filter.check(files[:16])
    wall, cpu = time.perf_counter(), time.process_time()
    verdicts = []
    for start in range(0, len(files), 16):
        verdicts += image_filter.check(files[start:start + 16])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stage_seconds = bench_stage(files)
    return {"photos": len(files), "kept": sum(v.kept for v in verdicts),
            "mean_bytes": int(np.mean([len(f) for f in files])),
            "mean_size": [int(np.mean([v.width for v in verdicts])), int(np.mean([v.height for v in verdicts]))],
            "images_per_cpu_second": round(len(files) / cpu, 2), "images_per_wall_second": round(len(files) / wall, 2),
            "ms_per_image_cpu": round(1000 * cpu / len(files), 1),
            "beam_stage_images_per_wall_second": round(len(files) / stage_seconds, 2)}


class _FullDetectorNsfw:
    """NSFW scores from the whole NudeNet detector (box branch, all classes): the scorer before the cut."""

    def __init__(self) -> None:
        from lait.encoders.onnx_sessions import cpu_session
        from lait.filters.nsfw import nudenet_model_path

        self.session = cpu_session(nudenet_model_path())
        self.input_name = self.session.get_inputs()[0].name

    def scores(self, images: list) -> tuple[np.ndarray, np.ndarray]:
        """`(nsfw, face)`, the best box of the explicit and of the face classes, read off the detector's
        output here so that the bench runs against older checkouts (--baseline) too."""
        from lait.filters.nsfw import EXPLICIT_CLASSES, NUDENET_CLASSES, _square_input

        outputs = [self.run(np.stack([_square_input(image) for image in images[i:i + 16]]))
                   for i in range(0, len(images), 16)]
        if not outputs:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        output = np.concatenate(outputs)
        return tuple(np.clip(output[:, [4 + NUDENET_CLASSES.index(name) for name in classes]].max(axis=(1, 2)), 0.0, 1.0)
                     for classes in (EXPLICIT_CLASSES, ("FACE_FEMALE", "FACE_MALE")))

    def score(self, images: list) -> np.ndarray:
        return self.scores(images)[0]

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


def _cpu_ms_interleaved(functions: dict, n: int, rounds: int) -> dict:
    """CPU milliseconds per image of each function over `n` images: best of `rounds`, the functions
    taking turns within each round so that other load on the shared machine falls on all of them."""
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(rounds):
        for name, function in functions.items():
            started = time.process_time()
            function()
            best[name] = min(best[name], time.process_time() - started)
    return {name: round(1000 * seconds / n, 2) for name, seconds in best.items()}


def bench_components(n: int, rounds: int) -> dict:
    """CPU ms per image of each part of ImageFilter.check, and the limits the parts set.

    The networks as they ran before (EfficientNet on PyTorch, folded and channels-last; the whole
    NudeNet detector) are measured beside the ones `check` runs now (EfficientNet and the cut
    NudeNet on ONNX Runtime), in the same rounds; `check_before_networks` is `check` with the
    networks of before.
    """
    from lait.encoders.efficientnet import EfficientNetLite0
    from lait.filters.image_hashes import phash, sha1_hex
    from lait.filters.naturalness import NaturalnessScorer, image_statistics
    from lait.filters.nsfw import _square_input

    torch.set_num_threads(1)  # per core, whatever an earlier part set
    files = large_photos(n)
    image_filter = ImageFilter(threads=1)
    image_filter.load_models()
    natural, nsfw = image_filter._natural, image_filter._nsfw
    onnx_net, torch_net, full_nsfw = natural.net, EfficientNetLite0(device="cpu"), _FullDetectorNsfw()
    before = ImageFilter(threads=1)
    before._natural, before._nsfw = NaturalnessScorer(net=torch_net), full_nsfw
    images = [decode_image(data).image for data in files]
    chunks = [images[i:i + 16] for i in range(0, len(images), 16)]
    file_chunks = [files[i:i + 16] for i in range(0, len(files), 16)]
    torch_inputs = [torch_net.preprocess(chunk) for chunk in chunks]
    onnx_inputs = [onnx_net.preprocess(chunk) for chunk in chunks]
    nsfw_inputs = [np.stack([_square_input(image) for image in chunk]) for chunk in chunks]
    statistics = np.stack([image_statistics(image) for image in images])
    embeddings, probs = onnx_net.embed_and_classify(images)
    for scorer in (image_filter, before):  # warm-up, a whole batch as in bench_throughput
        scorer.check(files[:16])
    ms = _cpu_ms_interleaved({
        "check": lambda: [image_filter.check(chunk) for chunk in file_chunks],
        "check_before_networks": lambda: [before.check(chunk) for chunk in file_chunks],
        "decode": lambda: [decode_image(data) for data in files],
        "hashes": lambda: [(sha1_hex(data), phash(image)) for data, image in zip(files, images)],
        "statistics": lambda: [image_statistics(image) for image in images],
        "efficientnet_torch": lambda: [torch_net.embed_and_classify(chunk) for chunk in chunks],
        "efficientnet_torch_network_only": lambda: [torch_net.feature_map(batch) for batch in torch_inputs],
        "efficientnet_onnx": lambda: [onnx_net.embed_and_classify(chunk) for chunk in chunks],
        "efficientnet_onnx_network_only": lambda: [onnx_net.session.run(None, {"images": batch})
                                                   for batch in onnx_inputs],
        "classifier": lambda: natural.classifier.predict_proba(natural.classifier.features(statistics, embeddings, probs)),
        "nudenet_whole": lambda: [full_nsfw.score(chunk) for chunk in chunks],
        "nudenet_whole_network_only": lambda: [full_nsfw.run(batch) for batch in nsfw_inputs],
        "nudenet_cut": lambda: [nsfw.score(chunk) for chunk in chunks],
        "nudenet_cut_network_only": lambda: [nsfw.session.run(None, {nsfw.input_name: batch}) for batch in nsfw_inputs],
    }, n, rounds)
    common = ("decode", "hashes", "statistics", "classifier")
    per_second = {name: round(1000 / value, 1) for name, value in ms.items() if value}

    def limits(efficientnet: str, nudenet: str) -> dict:
        return {"networks_only": round(1000 / (ms[f"{efficientnet}_network_only"] + ms[f"{nudenet}_network_only"]), 1),
                "sum_of_parts": round(1000 / sum(ms[name] for name in (*common, efficientnet, nudenet)), 1)}

    return {"photos": n, "rounds": rounds, "ms_per_image_cpu": ms, "images_per_cpu_second": per_second,
            "limits_images_per_cpu_second": {"now": limits("efficientnet_onnx", "nudenet_cut"),
                                             "before_networks": limits("efficientnet_torch", "nudenet_whole")}}


def natural_folder_files() -> list[Path]:
    folder = SHARED / "natural"
    return sorted(path for path in folder.rglob("*") if path.is_file() and path.suffix.lower() != ".md"
                  and path.name != "labels.csv")


def _verdict_rows(named_files: list[tuple[str, bytes]]) -> dict:
    """{name: scores, phash and reasons} of each file, checked with `score_all` in batches of 16."""
    image_filter = ImageFilter(score_all=True)
    rows = {}
    for start in range(0, len(named_files), 16):
        chunk = named_files[start:start + 16]
        for (name, _), verdict in zip(chunk, image_filter.check([data for _, data in chunk])):
            rows[name] = {"natural_score": verdict.natural_score, "nsfw_score": verdict.nsfw_score,
                          "image_phash": verdict.image_phash, "reasons": verdict.reasons}
    return rows


def webcrawl_files() -> tuple[list[tuple[str, bytes]], dict]:
    """The labelled webcrawl images (bench/labels/webcrawl_images.jsonl) as (name, bytes), and their labels."""
    from bench.quality_naturalness_web import load_labels, webcrawl_images

    labels = load_labels()
    names = [f"webcrawl/{row['warc']}/{row['image_url']}" for row in labels]
    return list(zip(names, webcrawl_images(labels))), {name: row["label"] for name, row in zip(names, labels)}


def _natural_auc(rows: dict, labels: dict) -> float:
    from sklearn.metrics import roc_auc_score

    names = sorted(labels)
    return round(float(roc_auc_score([labels[name] == "photo" for name in names],
                                     [rows[name]["natural_score"] for name in names])), 4)


def bench_verdicts(path: str, compare: str | None) -> dict:
    """Scores and decisions on every image of ../shared/data/natural and the labelled webcrawl images;
    compared with an older run."""
    natural = [(str(p.relative_to(SHARED)), p.read_bytes()) for p in natural_folder_files()]
    web, web_labels = webcrawl_files()
    rows = _verdict_rows(natural + web)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(rows, indent=0) + "\n", encoding="utf-8")
    result = {"images": len(rows), "natural_folder": len(natural), "webcrawl_labelled": len(web), "file": path,
              "webcrawl_natural_score_roc_auc": _natural_auc(rows, web_labels)}
    if compare:
        old = json.loads(Path(compare).read_text(encoding="utf-8"))
        common = sorted(set(old) & set(rows))

        def largest(key: str) -> float:
            changes = [abs(rows[k][key] - old[k][key]) for k in common
                       if rows[k][key] is not None and old[k][key] is not None]
            return round(max(changes, default=0.0), 6)

        result["compared_with"] = {
            "file": compare, "images": len(common),
            "decisions_differ": [k for k in common if rows[k]["reasons"] != old[k]["reasons"]],
            "phash_differ": sum(rows[k]["image_phash"] != old[k]["image_phash"] for k in common),
            "max_natural_score_change": largest("natural_score"), "max_nsfw_score_change": largest("nsfw_score")}
        if set(web_labels) <= set(old):
            result["compared_with"]["webcrawl_natural_score_roc_auc"] = _natural_auc(old, web_labels)
    return result


def bench_stage(files: list[bytes]) -> float:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from lait.pipeline.filter_images import FilterImages
    from lait.pipeline.options import LaitOptions

    options = PipelineOptions(["--runner=DirectRunner"])
    pairs = [{"image_url": f"https://example.com/{i}.jpg", "image_bytes": data} for i, data in enumerate(files)]
    started = time.perf_counter()
    with beam.Pipeline(options=options) as p:
        result = p | beam.Create(pairs) | FilterImages(options.view_as(LaitOptions))
        result.main | beam.combiners.Count.Globally()
    return time.perf_counter() - started


def _in_turns(baseline: str, flags: list[str], rounds: int) -> dict:
    """{"baseline": [...], "this": [...]}: this script run with `flags` on the code in `baseline`
    and on this checkout, each in a fresh process, taking turns for `rounds` rounds."""
    import subprocess

    runs = {"baseline": [], "this": []}
    for _ in range(rounds):
        for name, code_root in (("baseline", baseline), ("this", str(ROOT))):
            env = {**os.environ, "LAIT_CODE_ROOT": code_root, "LAIT_SHARED": str(SHARED.parent)}
            out = subprocess.run([sys.executable, __file__, *flags], env=env, capture_output=True, text=True,
                                 check=True)
            runs[name].append(json.loads(out.stdout))
    return runs


def throughput_beside_baseline(baseline: str, n: int, rounds: int) -> dict:
    """`bench_throughput` of the code in `baseline` (another checkout) and of this one, in turns:
    each in a fresh process, `rounds` times; the best round of each and all rounds' figures."""
    runs = _in_turns(baseline, ["--throughput_only", "--throughput_images", str(n)], rounds)
    best = {name: max(found, key=lambda run: run["images_per_cpu_second"]) for name, found in runs.items()}
    for name, found in runs.items():
        best[name]["images_per_cpu_second_each_round"] = [run["images_per_cpu_second"] for run in found]
        best[name]["beam_stage_images_per_wall_second_each_round"] = [
            run["beam_stage_images_per_wall_second"] for run in found]
    best["baseline"]["code_root"] = baseline
    return best


def components_beside_baseline(baseline: str, n: int, rounds: int) -> dict:
    """`bench_components` of the code in `baseline` and of this one, one after the other, each in a
    fresh process (each figure already the best of `rounds` rounds)."""
    runs = _in_turns(baseline, ["--components_only", "--component_images", str(n),
                                "--component_rounds", str(rounds)], 1)
    return {name: found[0] for name, found in runs.items()} | {"baseline_code_root": baseline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip_cv", action="store_true", help="skip the naturalness cross-validation")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--unseen_photos", type=int, default=500,
                        help="Flickr8k photos scored for naturalness (0 skips)")
    parser.add_argument("--nsfw_limit", type=int, default=0, help="score only this many photos (0: all)")
    parser.add_argument("--max_nsfw", type=float, default=0.5)
    parser.add_argument("--throughput_images", type=int, default=160)
    parser.add_argument("--component_images", type=int, default=64,
                        help="photos for the per-component CPU times (0 skips)")
    parser.add_argument("--component_rounds", type=int, default=3,
                        help="rounds of the per-component times; each figure is the best round")
    parser.add_argument("--verdicts", help="write every natural/ image's scores and decision to this JSON file")
    parser.add_argument("--compare", help="an earlier --verdicts file to compare decisions and scores with")
    parser.add_argument("--out", help="also write the result JSON to this file")
    parser.add_argument("--baseline", help="another checkout (git worktree of an older commit): its throughput "
                                           "is measured in turns with this one's")
    parser.add_argument("--baseline_rounds", type=int, default=3)
    parser.add_argument("--throughput_only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--components_only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not SHARED.exists():
        sys.exit(f"needs {SHARED} (the shared data beside the repo)")
    if args.throughput_only:  # one round of --baseline, in its own process
        torch.set_num_threads(1)
        print(json.dumps(bench_throughput(args.throughput_images)))
        return
    if args.components_only:  # --baseline's components, in their own process
        print(json.dumps(bench_components(args.component_images, args.component_rounds)))
        return
    # One thread each: the figures are per core, and a Beam worker runs one process per core.
    torch.set_num_threads(1)
    import subprocess

    import onnxruntime

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    result = {"bench": "filter_images", "commit": commit.strip() or None, "cpu_count": os.cpu_count(),
              "load_average": os.getloadavg(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__}
    if not args.skip_cv:
        result["naturalness"] = bench_naturalness(args.folds)
    if args.unseen_photos:
        result["naturalness_unseen_photos"] = bench_unseen_photos(args.unseen_photos)
    result["nsfw"] = bench_nsfw(args.nsfw_limit or None, args.max_nsfw)
    result["throughput"] = bench_throughput(args.throughput_images)
    if args.baseline:
        result["throughput_beside_baseline"] = throughput_beside_baseline(args.baseline, args.throughput_images,
                                                                          args.baseline_rounds)
    if args.component_images:
        result["components"] = bench_components(args.component_images, args.component_rounds)
        if args.baseline:
            result["components_beside_baseline"] = components_beside_baseline(
                args.baseline, args.component_images, args.component_rounds)
    if args.verdicts:
        result["verdicts"] = bench_verdicts(args.verdicts, args.compare)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
