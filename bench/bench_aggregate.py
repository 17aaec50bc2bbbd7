"""Aggregate throughput and peak memory on synthetic pairs with duplicates (prints JSON).

    python bench/bench_aggregate.py                 # 100,000 and 1,000,000 pairs, 2 worker processes
    python bench/bench_aggregate.py --sizes 20000   # a quick run

Pairs are generated on the workers (not in the launcher) in chunks: about a third of the
images appear on several pages, 5% of images have a near-duplicate copy (a few pHash bits
flipped), and a few boilerplate texts are shared by many images. Each pair carries
`--payload` bytes standing in for the image, so the shuffles move realistic-sized records.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import sys
import tempfile
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.measure import MIB, PeakMemory  # noqa: E402
from lait.pipeline.aggregate import Aggregate  # noqa: E402
from lait.pipeline.options import LaitOptions  # noqa: E402

CHUNK = 5000
BOILERPLATE = ["Photo of the day", "Click to enlarge this image", "Image courtesy of our readers"]


def generate_chunk(chunk: int, n_pairs: int, payload: int) -> list[dict]:
    rng = random.Random(chunk)
    n_images = max(1, n_pairs * 2 // 3)
    pairs = []
    for i in range(chunk * CHUNK, min(n_pairs, (chunk + 1) * CHUNK)):
        image = rng.randrange(n_images)
        phash = int(hashlib.sha1(str(image).encode()).hexdigest()[:16], 16)
        sha1_key = str(image)
        if image % 20 == 0 and rng.random() < 0.5:  # a re-encoded copy: other bytes, close hash
            sha1_key += "-copy"
            phash ^= 1 << rng.randrange(64)
        text = rng.choice(BOILERPLATE) if rng.random() < 0.01 else f"A photo of scene {image} seen from page {i}"
        pairs.append({
            "image_sha1": hashlib.sha1(sha1_key.encode()).hexdigest(), "image_phash": f"{phash:016x}",
            "image_url": f"https://img{image % 97}.example.com/{sha1_key}.jpg",
            "page_url": f"https://site{i % 1013}.example.org/page/{i}", "text": text,
            "score": round(rng.random(), 3), "image_bytes": bytes(payload),
        })
    return pairs


def run_once(n_pairs: int, workers: int, payload: int) -> dict:
    flags = ["--runner=DirectRunner"]
    if workers > 1:
        flags += [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    options = PipelineOptions(flags)
    out = tempfile.mkdtemp(prefix="bench-aggregate-")
    chunks = (n_pairs + CHUNK - 1) // CHUNK
    started = time.time()
    with PeakMemory(os.getpid()) as memory:
        with beam.Pipeline(options=options) as p:
            result = (p | beam.Create(range(chunks)) | beam.Reshuffle()
                      | beam.FlatMap(generate_chunk, n_pairs, payload)
                      | Aggregate(options.view_as(LaitOptions)))
            (result.main | beam.combiners.Count.Globally()
             | beam.Map(lambda n: open(os.path.join(out, "kept"), "w").write(str(n))))
    seconds = time.time() - started
    kept = int(open(os.path.join(out, "kept")).read())
    return {"pairs": n_pairs, "workers": workers, "payload_bytes": payload, "kept": kept,
            "seconds": round(seconds, 1), "pairs_per_s": round(n_pairs / seconds),
            "peak_rss_total_mib": round(memory.peak / MIB), "peak_rss_worker_mib": round(memory.peak_process / MIB)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--payload", type=int, default=1024)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    runs = [run_once(n, args.workers, args.payload) for n in args.sizes]
    print(json.dumps({"bench": "aggregate", "runner": "DirectRunner", "cores": os.cpu_count(), "runs": runs}))


if __name__ == "__main__":
    main()
