"""HTTP image fetch throughput from a local server with 2 worker processes (prints JSON).

    python bench/bench_fetch.py                    # 3000 images: process pool, Beam stage, polite
    python bench/bench_fetch.py --images 500 --modes pool

The server is a `ThreadingHTTPServer` (HTTP/1.1, keep-alive) in its own process, serving
robots.txt and the same real photo (scikit-learn's `china.jpg` as a JPEG) under distinct
URLs; it shares the machine's cores with the workers, so the figures are a lower bound of
the fetcher's own speed. Every fetch goes the whole way: address check, robots.txt (cached),
per-host gate, streamed body, magic bytes.

Modes:
- `pool`: a process pool of `--processes` workers, each with one `ImageFetcher` and
  `--threads` threads, per-host limits relaxed (concurrency = threads, no delay);
- `beam`: the `AcquireImages` stage on the DirectRunner in multi_processing mode with
  `--processes` workers (empty crawl, so every image is downloaded), same relaxed limits;
  run at a third of `--images` and at `--images`: the difference gives the rate without
  Beam's fixed start-up cost;
- `polite`: the pool again against `--hosts` loopback addresses (127.0.0.1, .2, ...) with the
  default politeness (2 in flight and 0.5 s between requests per host): the rate is bounded
  by hosts x 2 / s per worker by design.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image
from sklearn.datasets import load_sample_image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from lait.pipeline.fetch import ImageFetcher  # noqa: E402

UA = "lait-bench/0.1"
ROBOTS = b"User-agent: *\nDisallow: /private/\n"


def photo_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(load_sample_image("china.jpg")).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def serve(addresses: list[str], port: int, body: bytes, ready) -> None:
    """Serve robots.txt and /img/*.jpg on each address until killed (runs in its own process)."""
    import threading

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            payload, kind = (ROBOTS, "text/plain") if self.path == "/robots.txt" else (body, "image/jpeg")
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    servers = []
    for address in addresses:
        server = ThreadingHTTPServer((address, port), Handler)
        server.daemon_threads = True
        servers.append(server)
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    ready.set()
    servers[0].serve_forever()


def fetch_chunk(args: tuple) -> dict:
    """One worker: fetch `urls` with one fetcher and a thread pool; counts and seconds."""
    urls, threads, concurrency, delay = args
    fetcher = ImageFetcher(UA, timeout=10.0, retries=1, per_host_concurrency=concurrency, per_host_delay=delay,
                           allow_private_networks=True)
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(fetcher.fetch, urls))
    seconds = time.perf_counter() - started
    return {"ok": sum(r.ok for r in results), "bytes": sum(len(r.content or b"") for r in results),
            "reasons": Counter(r.reason for r in results if not r.ok), "seconds": seconds}


def run_pool(urls: list[str], processes: int, threads: int, concurrency: int, delay: float) -> dict:
    size = -(-len(urls) // processes)
    chunks = [urls[i * size:(i + 1) * size] for i in range(processes)]  # blocks: each worker sees every host
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        pool.map(abs, range(processes))  # workers started (and imports done) before the clock
        started = time.perf_counter()
        parts = pool.map(fetch_chunk, [(chunk, threads, concurrency, delay) for chunk in chunks])
        seconds = time.perf_counter() - started
    ok = sum(p["ok"] for p in parts)
    reasons = sum((p["reasons"] for p in parts), Counter())
    return {"images": len(urls), "ok": ok, "failed": dict(reasons), "seconds": round(seconds, 2),
            "images_per_s": round(ok / seconds, 1), "mib_per_s": round(sum(p["bytes"] for p in parts) / seconds / 2**20, 1)}


def run_beam(urls: list[str], processes: int, threads: int) -> dict:
    import apache_beam as beam

    from lait.pipeline.acquire_images import AcquireImages
    from lait.pipeline.options import LaitOptions

    flags = ["--runner=DirectRunner", f"--direct_num_workers={processes}", "--direct_running_mode=multi_processing",
             "--allow_private_networks", "--per_host_delay=0", f"--per_host_concurrency={threads}",
             f"--fetch_threads={threads}", f"--fetch_user_agent={UA}"]
    options = LaitOptions(flags)
    ok_path = os.path.join(tempfile.mkdtemp(prefix="bench-fetch-"), "ok")
    pairs = [{"page_url": f"http://pages.invalid/{i}", "image_url": url, "text": "a photo"} for i, url in enumerate(urls)]
    started = time.perf_counter()
    with beam.Pipeline(options=options) as p:
        crawl = p | "NoCrawl" >> beam.Create([{"url": "http://none.invalid/x.jpg", "content": b""}])
        acquired = p | "Pairs" >> beam.Create(pairs) | AcquireImages(options, crawl)
        (acquired.main | beam.Map(lambda r: len(r["image_bytes"])) | beam.combiners.Count.Globally()
         | beam.Map(lambda n, path=ok_path: open(path, "w").write(str(n))))
    seconds = time.perf_counter() - started
    ok = int(open(ok_path).read())
    return {"images": len(urls), "ok": ok, "seconds": round(seconds, 2), "images_per_s": round(ok / seconds, 1),
            "note": "includes Beam start-up, the CoGroupByKey and batching"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--polite_images", type=int, default=160)
    parser.add_argument("--modes", nargs="+", default=["pool", "beam", "polite"], choices=["pool", "beam", "polite"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    body = photo_jpeg()
    addresses = [f"127.0.0.{i + 1}" for i in range(max(1, args.hosts))]
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    port = 18000 + os.getpid() % 20000
    server = ctx.Process(target=serve, args=(addresses, port, body, ready), daemon=True)
    server.start()
    ready.wait(30)
    runs = {}
    try:
        urls = [f"http://127.0.0.1:{port}/img/{i}.jpg" for i in range(args.images)]
        if "pool" in args.modes:
            runs["pool"] = run_pool(urls, args.processes, args.threads, args.threads, 0.0)
        if "beam" in args.modes:  # two sizes: the difference is the rate without Beam's fixed cost
            small = run_beam([u.replace("/img/", "/beam1/") for u in urls[:len(urls) // 3]], args.processes, args.threads)
            large = run_beam([u.replace("/img/", "/beam2/") for u in urls], args.processes, args.threads)
            marginal = (large["ok"] - small["ok"]) / max(1e-9, large["seconds"] - small["seconds"])
            runs["beam"] = {"small": small, "large": large, "marginal_images_per_s": round(marginal, 1)}
        if "polite" in args.modes:
            polite = [f"http://{addresses[i % len(addresses)]}:{port}/polite/{i}.jpg" for i in range(args.polite_images)]
            runs["polite"] = {**run_pool(polite, args.processes, args.threads, 2, 0.5), "hosts": len(addresses),
                              "bound_images_per_s": 2 * len(addresses) * args.processes}
    finally:
        server.kill()
    print(json.dumps({"bench": "fetch", "cores": os.cpu_count(), "processes": args.processes,
                      "threads_per_process": args.threads, "image_bytes": len(body), "runs": runs}))


if __name__ == "__main__":
    main()
