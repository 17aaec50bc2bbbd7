"""How long `lait inspect` takes on about 1 GB of shards (prints JSON).

    python bench/bench_inspect.py [--gib 1.0]

Builds shards of real-size JPEG rows (noise images of ~250 KB) in a temporary folder, then
times the summary (column projection: image bytes are never read), a filtered sample and
the HTML report (which decodes only the thumbnails it shows).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from lait.pipeline.inspect import sample_rows, summarize, write_html_report  # noqa: E402
from lait.pipeline.schema import to_row  # noqa: E402
from lait.pipeline.write_shards import shard_path, write_table  # noqa: E402


def noise_jpeg(rng: np.random.Generator) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)).save(out, "JPEG", quality=90)
    return out.getvalue()


def build_corpus(directory: str, gib: float, rows_per_shard: int = 1000) -> int:
    rng = np.random.default_rng(0)
    images = [noise_jpeg(rng) for _ in range(16)]
    n_rows = int(gib * 2**30 / len(images[0]))
    n_shards = -(-n_rows // rows_per_shard)
    for shard in range(n_shards):
        rows = []
        for i in range(shard * rows_per_shard, min(n_rows, (shard + 1) * rows_per_shard)):
            data = images[i % len(images)] + i.to_bytes(8, "little")  # unique bytes: no dictionary dedup
            rows.append(to_row({"image_sha1": hashlib.sha1(str(i).encode()).hexdigest(), "image_bytes": data,
                         "image_url": f"https://img{i % 50}.example.com/{i}.jpg", "page_url": f"https://s{i % 300}.example.org/{i}",
                         "text": f"A photo number {i} of a street at night", "text_source": "alt",
                         "width": 640, "height": 480, "image_format": "JPEG", "score": float(rng.random()), "n_pages": 1}))
        write_table(shard_path(directory, shard, n_shards), rows)
    return n_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=1.0)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="bench-inspect-")
    try:
        rows = build_corpus(directory, args.gib)
        size = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))
        timings = {}
        for name, call in (("summary_s", lambda: summarize(directory)),
                           ("sample_where_s", lambda: sample_rows(directory, 20, "score < 0.1")),
                           ("html_report_s", lambda: write_html_report(directory, os.path.join(directory, "r.html")))):
            started = time.time()
            call()
            timings[name] = round(time.time() - started, 2)
        print(json.dumps({"bench": "inspect", "rows": rows, "corpus_mib": round(size / 2**20), **timings}))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
