"""FilterImages: naturalness cross-validation, NSFW false positives, throughput per core (prints JSON).

    python bench/bench_filter_images.py                  # everything (several minutes on 2 cores)
    python bench/bench_filter_images.py --skip_cv        # only NSFW false positives and throughput
    python bench/bench_filter_images.py --throughput_images 40 --nsfw_limit 300   # a quick run
    python bench/bench_filter_images.py --skip_cv --unseen_photos 0 --nsfw_limit 100 \
        --verdicts out/bench/verdicts.json --compare OLD_VERDICTS.json --out bench/results/filter_images.json

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
  NudeNet with its preprocessing, each network alone on ready input, the classifier), and the
  limits they set: images/s/core if only the two networks ran, and if every part ran once
  with nothing in between.
- verdicts (--verdicts FILE): every image of ../shared/data/natural checked with
  `score_all`, its scores and kept/dropped written to FILE; --compare OLD compares them with
  an earlier FILE (another version of the code): decisions that differ, largest score change.
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
sys.path.insert(0, str(ROOT))
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
    image_filter.check(files[:4])  # warm-up
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


def _cpu_ms(function, n: int, repeats: int = 2) -> float:
    """CPU milliseconds per image of `function()` over `n` images (best of `repeats`: the machine is shared)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        function()
        best = min(best, time.process_time() - started)
    return round(1000 * best / n, 2)


def bench_components(n: int) -> dict:
    """CPU ms per image of each part of ImageFilter.check, and the limits the parts set."""
    from lait.filters.image_hashes import phash, sha1_hex
    from lait.filters.naturalness import image_statistics
    from lait.filters.nsfw import _square_input

    torch.set_num_threads(1)  # per core, whatever an earlier part set
    files = large_photos(n)
    image_filter = ImageFilter(threads=1)
    image_filter.load_models()
    natural, nsfw = image_filter._natural, image_filter._nsfw
    net = natural.net
    images = [decode_image(data).image for data in files]
    chunks = [images[i:i + 16] for i in range(0, len(images), 16)]
    net.embed_and_classify(chunks[0][:4])
    nsfw.score(chunks[0][:4])
    net_inputs = [net.preprocess(chunk) for chunk in chunks]
    nsfw_inputs = [np.stack([_square_input(image) for image in chunk]) for chunk in chunks]
    statistics = np.stack([image_statistics(image) for image in images])
    embeddings, probs = net.embed_and_classify(images)
    ms = {
        "check": _cpu_ms(lambda: [image_filter.check(files[i:i + 16]) for i in range(0, len(files), 16)], n),
        "decode": _cpu_ms(lambda: [decode_image(data) for data in files], n),
        "hashes": _cpu_ms(lambda: [(sha1_hex(data), phash(image)) for data, image in zip(files, images)], n),
        "statistics": _cpu_ms(lambda: [image_statistics(image) for image in images], n),
        "efficientnet": _cpu_ms(lambda: [net.embed_and_classify(chunk) for chunk in chunks], n),
        "efficientnet_network_only": _cpu_ms(lambda: [net.feature_map(batch) for batch in net_inputs], n),
        "classifier": _cpu_ms(lambda: natural.classifier.predict_proba(
            natural.classifier.features(statistics, embeddings, probs)), n),
        "nudenet": _cpu_ms(lambda: [nsfw.score(chunk) for chunk in chunks], n),
        "nudenet_network_only": _cpu_ms(lambda: [nsfw.session.run(None, {nsfw.input_name: batch})
                                                 for batch in nsfw_inputs], n),
    }
    parts = ("decode", "hashes", "statistics", "efficientnet", "classifier", "nudenet")
    per_second = {name: round(1000 / value, 1) for name, value in ms.items() if value}
    return {"photos": n, "ms_per_image_cpu": ms, "images_per_cpu_second": per_second,
            "limit_networks_only_images_per_cpu_second":
                round(1000 / (ms["efficientnet_network_only"] + ms["nudenet_network_only"]), 1),
            "limit_sum_of_parts_images_per_cpu_second": round(1000 / sum(ms[name] for name in parts), 1)}


def natural_folder_files() -> list[Path]:
    folder = SHARED / "natural"
    return sorted(path for path in folder.rglob("*") if path.is_file() and path.suffix.lower() != ".md"
                  and path.name != "labels.csv")


def bench_verdicts(path: str, compare: str | None) -> dict:
    """Scores and decisions on every image of ../shared/data/natural; compared with an older run."""
    image_filter = ImageFilter(score_all=True)
    paths = natural_folder_files()
    rows = {}
    for start in range(0, len(paths), 16):
        chunk = paths[start:start + 16]
        for file, verdict in zip(chunk, image_filter.check([p.read_bytes() for p in chunk])):
            rows[str(file.relative_to(SHARED))] = {
                "natural_score": verdict.natural_score, "nsfw_score": verdict.nsfw_score,
                "image_phash": verdict.image_phash, "reasons": verdict.reasons}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(rows, indent=0) + "\n", encoding="utf-8")
    result = {"images": len(rows), "file": path}
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
    parser.add_argument("--verdicts", help="write every natural/ image's scores and decision to this JSON file")
    parser.add_argument("--compare", help="an earlier --verdicts file to compare decisions and scores with")
    parser.add_argument("--out", help="also write the result JSON to this file")
    args = parser.parse_args()
    if not SHARED.exists():
        sys.exit(f"needs {SHARED} (the shared data beside the repo)")
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
    if args.component_images:
        result["components"] = bench_components(args.component_images)
    if args.verdicts:
        result["verdicts"] = bench_verdicts(args.verdicts, args.compare)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
