"""Region extraction: images/s per CPU core (and per GPU), bytes per image stored, dog-photo check (prints JSON).

    nice -n 10 python bench/bench_regions.py                    # 96 photos, CPU, 1 and 2 threads
    python bench/bench_regions.py --device cuda --images 1000   # on a GPU
    python bench/bench_regions.py --images 512 --job            # also `lait regions` end to end: rate, memory

Photos are the real Flickr8k JPEGs of ../shared/data/captions/images (224 x 224), taken in name
order, decoded from their bytes inside the timed part (as the Beam job does). The default
extractor keeps N = 100 regions at input size 320. "Per core" is images per CPU-second of this
process with torch limited to that many threads (CPU time, not wall time, because the machine
is shared); wall-clock rates are printed beside it. Bytes per image are those of regions shards
written as `lait regions` writes them (zstd Parquet), with and without the label distributions.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow.parquet as pq
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from lait.encoders.regions import EfficientNetRegionExtractor  # noqa: E402
from lait.imagebert.data import regions_table  # noqa: E402

SHARED = Path(os.environ.get("LAIT_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data" / "captions"
DOG_CLASSES = range(151, 269)


def load_photos(count: int) -> list[dict]:
    paths = sorted((SHARED / "images").glob("*.jpg"))[:count]
    if not paths:
        sys.exit(f"no photos under {SHARED / 'images'}")
    records = []
    for path in paths:
        data = path.read_bytes()
        records.append({"image_sha1": hashlib.sha1(data).hexdigest(), "image_url": path.name, "image_bytes": data})
    return records


def dog_photos(count: int) -> list[dict]:
    """Photos whose five captions all mention a dog."""
    mentions: dict[str, list[bool]] = {}
    with open(SHARED / "captions.tsv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            mentions.setdefault(row["image"], []).append(bool(re.search(r"\b(dog|dogs|puppy)\b", row["caption"].lower())))
    names = sorted(name for name, said in mentions.items() if all(said))[:count]
    return [{"image_sha1": name, "image_url": name, "image_bytes": (SHARED / "images" / name).read_bytes()}
            for name in names]


def time_extraction(extractor: EfficientNetRegionExtractor, records: list[dict]) -> dict:
    extractor.extract_records(records[:extractor.batch_size])  # warm-up: allocator, oneDNN kernels
    if extractor.device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    results = extractor.extract_records(records)
    if extractor.device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"images": len(records), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "images_per_s_wall": round(len(records) / wall, 2), "images_per_cpu_s": round(len(records) / cpu, 2),
            "regions_mean": round(float(np.mean([len(r) for r in results])), 1)}, results


def stored_bytes(records: list[dict], results: list, with_label_probs: bool) -> float:
    rows = [r.to_record(rec["image_sha1"]) for rec, r in zip(records, results)]
    if not with_label_probs:
        rows = [{**row, "label_probs": None} for row in rows]
    buffer = io.BytesIO()
    pq.write_table(regions_table(rows, with_label_probs=with_label_probs), buffer, row_group_size=64,
                   compression="zstd", use_dictionary=False)  # as lait.pipeline.regions.write_shard
    return len(buffer.getvalue()) / len(rows)


def time_job(records: list[dict], threads: int) -> dict:
    """`lait regions` (DirectRunner, in process) on a corpus shard of the same photos."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from lait.pipeline.regions import ExtractorSpec, RegionsJob, run
    from lait.pipeline.schema import to_row
    from lait.pipeline.write_shards import write_table

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp, "corpus")
        corpus.mkdir()
        write_table(str(corpus / "shard-00000-of-00001.parquet"),
                    [to_row({**r, "text": "a photo"}) for r in records])
        torch.set_num_threads(threads)
        spec = ExtractorSpec("efficientnet", options={"max_regions": 100})
        rss_before = psutil.Process().memory_info().rss
        peak = PeakMemory()
        wall, cpu = time.perf_counter(), time.process_time()
        with peak:
            funnel = run(RegionsJob(str(corpus), str(Path(tmp, "regions")), spec, images_per_shard=100),
                         PipelineOptions([]))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    written = funnel["stages"][-1]["out"]
    return {"images": written, "threads": threads, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "images_per_cpu_s": round(written / cpu, 2), "images_per_s_wall": round(written / wall, 2),
            "peak_rss_growth_mib": round((peak.peak - rss_before) / 2**20)}


class PeakMemory:
    """Samples this process's resident memory every 50 ms while in the `with` block."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, me.memory_info().rss)

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--input_size", type=int, default=320)
    parser.add_argument("--max_regions", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--dogs", type=int, default=48, help="dog photos for the label check (0 to skip)")
    parser.add_argument("--job", action="store_true", help="also time the Beam job end to end")
    args = parser.parse_args()

    records = load_photos(args.images)
    extractor = EfficientNetRegionExtractor(max_regions=args.max_regions, input_size=args.input_size,
                                            batch_size=args.batch_size, device=args.device)
    report = {"device": str(extractor.device), "torch": torch.__version__, "input_size": args.input_size,
              "max_regions": args.max_regions, "batch_size": args.batch_size, "runs": []}
    results = None
    threads = args.threads if extractor.device.type == "cpu" else [torch.get_num_threads()]
    for n in threads:
        torch.set_num_threads(n)
        timing, results = time_extraction(extractor, records)
        timing["threads"] = n
        if extractor.device.type == "cpu":
            timing["images_per_s_per_core"] = round(timing["images_per_cpu_s"], 2)
        report["runs"].append(timing)
        print(json.dumps(timing), file=sys.stderr)
    report["bytes_per_image"] = {"with_label_probs": round(stored_bytes(records, results, True)),
                                 "without_label_probs": round(stored_bytes(records, results, False))}
    if args.dogs:
        dogs = dog_photos(args.dogs)
        dog_results = extractor.extract_records(dogs)
        report["dog_photos"] = {
            "photos": len(dogs),
            "any_region_dog": round(float(np.mean([np.isin(r.labels, DOG_CLASSES).any() for r in dog_results])), 3),
            "top_region_dog": round(float(np.mean([int(r.labels[0]) in DOG_CLASSES for r in dog_results])), 3),
            "dog_region_share": round(float(np.mean([np.isin(r.labels, DOG_CLASSES).mean() for r in dog_results])), 3),
        }
    if args.job:
        report["job"] = time_job(records, threads=max(threads))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
