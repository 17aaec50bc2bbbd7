"""Memory bench: peak RSS of `lait run` on crawls made to exhaust memory (prints one JSON object).

    python bench/bench_memory.py                               # 250 unused 4 MB images, 1 GB bombs
    python bench/bench_memory.py --unused 50 --bomb_mib 256    # quicker

Three runs of `lait run --no-fetch` (in-process DirectRunner) as a subprocess, each into a new
output folder:

- `baseline`: the sample crawl of `lait sample-crawl` (real pages and their images);
- `unused_images`: the same records, then `--unused` image records of 4 MB that no page names
  (random bytes after a JPEG header: they do not compress). Before AcquireImages filtered the
  crawl's images by the pairs' URLs, every one of them went into the join (5.3 GB for 250);
- `bombs`: the sample crawl, and a second WARC.gz holding an HTML response whose gzip
  Content-Encoding inflates to `--bomb_mib` MiB and an image response whose br one does
  (written streaming into the temporary folder: the file is a few hundred KB). Before
  ReadCrawl decoded with a cap, a 5.8 KB WARC of this kind took 6.4 GB.

Figures per run: wall and CPU seconds, peak resident memory of the process tree (sampled every
0.1 s by `bench.measure.PeakMemory`), rows written, whether they equal the baseline's (every
column but `warc_path`, which names the input file), ReadCrawl's drops and AcquireImages' in
and out. `ok` is true when both extra runs peak at or under `--limit_mib` (1 GiB) and write
the baseline's rows. The JSON goes to stdout and to bench/results/bench_memory.json.

`--dask` adds the baseline and the unused images on a local Dask cluster of one worker. A Dask
task holds a partition's outputs as a list (lait/pipeline/dask_runner.py), so there a worker's peak
follows the largest input file's kept records, not the whole crawl.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import brotli
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.measure import MIB, PeakMemory  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "bench_memory.json"
IMAGE_BYTES = 4 * 10**6
JPEG_HEAD = bytes.fromhex("ffd8ffe000104a46494600010100000100010000")  # SOI + JFIF APP0


def warc_record(url: str, content_type: str, body_length: int, **headers: str) -> tuple[bytes, bytes]:
    """The WARC and HTTP headers of a response whose HTTP body (`body_length` bytes) follows them."""
    http = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {body_length}\r\n"
    http += "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    warc = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: {url}\r\nWARC-Date: 2024-05-01T00:00:00Z\r\n"
            f"WARC-Record-ID: <urn:uuid:{random.getrandbits(128):032x}>\r\n"
            f"Content-Type: application/http; msgtype=response\r\n"
            f"Content-Length: {len(http) + body_length}\r\n\r\n")
    return warc.encode(), http.encode()


def with_unused_images(sample: Path, path: Path, count: int) -> None:
    """`sample`'s records, then `count` image records of IMAGE_BYTES that no page names."""
    shutil.copyfile(sample, path)
    rng = random.Random(0)
    with open(path, "ab") as out:
        for i in range(count):
            body = JPEG_HEAD + rng.randbytes(IMAGE_BYTES - len(JPEG_HEAD))
            warc, http = warc_record(f"https://unused.example/photos/{i:04d}.jpg", "image/jpeg", len(body))
            out.write(gzip.compress(warc + http + body + b"\r\n\r\n", compresslevel=1))


def _stream_bomb(path: Path, coding: str, inflated: int) -> None:
    """`inflated` bytes (an HTML or JPEG start, then zeros) compressed with `coding` into `path`, a MiB at a time."""
    head = b"<!doctype html><html><body>" if coding == "gzip" else JPEG_HEAD
    packer = zlib.compressobj(9, zlib.DEFLATED, 31) if coding == "gzip" else brotli.Compressor(quality=5)
    pack = packer.compress if coding == "gzip" else packer.process
    with open(path, "wb") as out:
        out.write(pack(head))
        block = bytes(MIB)
        for _ in range((inflated - len(head)) // MIB):
            out.write(pack(block))
        out.write(packer.flush() if coding == "gzip" else packer.finish())


def bombs(path: Path, inflated: int, tmp: Path) -> dict:
    """A WARC.gz of two responses whose Content-Encoding (gzip, br) inflates each to `inflated` bytes."""
    sizes = {}
    with gzip.open(path, "wb", compresslevel=9) as out:  # one member, written as it streams
        for coding, url, content_type in (("gzip", "https://bomb.example/story.html", "text/html"),
                                          ("br", "https://bomb.example/photo.jpg", "image/jpeg")):
            body = tmp / f"bomb.{coding}"
            _stream_bomb(body, coding, inflated)
            sizes[coding] = body.stat().st_size
            warc, http = warc_record(url, content_type, sizes[coding], content_encoding=coding)
            out.write(warc + http)
            with open(body, "rb") as f:
                shutil.copyfileobj(f, out, MIB)
            out.write(b"\r\n\r\n")
            body.unlink()
    return {"http_body_bytes": sizes, "warc_gz_bytes": path.stat().st_size, "inflated_bytes_each": inflated}


def rows(output: Path) -> list[tuple]:
    """Every row of the corpus but `warc_path` and the image bytes (their SHA-1 stays), sorted."""
    table = [row for shard in sorted(output.glob("shard-*.parquet")) for row in pq.read_table(shard).to_pylist()]
    return sorted(tuple(sorted((k, repr(v)) for k, v in row.items() if k not in ("warc_path", "image")))
                  for row in table)


def differing_columns(expected: list[tuple], got: list[tuple]) -> dict:
    """Per column, how many rows (matched by page and image URL) differ; rows only one side has."""
    def by_key(table):
        return {(row["page_url"], row["image_url"]): row for row in map(dict, table)}
    a, b = by_key(expected), by_key(got)
    counts: dict = {"rows_only_in_baseline": len(a.keys() - b.keys()), "rows_only_here": len(b.keys() - a.keys())}
    for key in a.keys() & b.keys():
        for column, value in a[key].items():
            if b[key].get(column) != value:
                counts[column] = counts.get(column, 0) + 1
    return counts


def lait_run(inputs: list[Path], output: Path, dask: bool = False) -> tuple[dict, list[tuple]]:
    command = [sys.executable, "-m", "lait.pipeline.cli", "run", "--input", *map(str, inputs), "--output", str(output),
               "--no-fetch", "--progress", "false"]
    if dask:
        command += ["--runner", "dask", "--dask_workers", "1"]
    cpu = os.times()
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with PeakMemory(process.pid) as memory:
        stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    cpu = (os.times().children_user - cpu.children_user) + (os.times().children_system - cpu.children_system)
    figures = {"input_mb": round(sum(p.stat().st_size for p in inputs) / 1e6, 1), "seconds": round(seconds, 1),
               "cpu_seconds": round(cpu, 1), "peak_rss_mib": round(memory.peak / MIB),
               "peak_rss_per_process_mib": round(memory.peak_process / MIB)}
    if process.returncode != 0:
        return {**figures, "error": (stderr or stdout).strip().splitlines()[-3:]}, []
    stages = {s["name"]: s for s in json.loads((output / "_funnel.json").read_text())["stages"]}
    written = rows(output)
    figures.update({"rows": len(written), "read_crawl": {k: stages["ReadCrawl"][k] for k in ("in", "out", "dropped")},
                    "acquire_images": {k: stages["AcquireImages"][k] for k in ("in", "out", "dropped")}})
    return figures, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--unused", type=int, default=250, help="unused 4 MB image records (default 250)")
    parser.add_argument("--bomb_mib", type=int, default=1024, help="what each bomb inflates to, MiB (default 1024)")
    parser.add_argument("--limit_mib", type=int, default=1024, help="the peak RSS a run may reach (default 1024)")
    parser.add_argument("--dask", action="store_true",
                        help="also run the baseline and the unused images on a local Dask cluster of one worker "
                             "(peak_rss_per_process_mib is the worker's)")
    parser.add_argument("--no-save", dest="save", action="store_false", help=f"do not write {RESULTS.name}")
    args = parser.parse_args()
    report = {"bench": "memory", "cores": os.cpu_count(), "runner": "DirectRunner (in-process)",
              "load_average_before": round(os.getloadavg()[0], 1), "limit_mib": args.limit_mib}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        tmp = Path(tmp)
        sample = tmp / "sample.warc.gz"
        made = subprocess.run([sys.executable, "-m", "lait.pipeline.cli", "sample-crawl", str(sample)], cwd=ROOT,
                              capture_output=True, text=True)
        if made.returncode != 0:
            sys.exit(f"lait sample-crawl failed: {(made.stderr or made.stdout).strip()}")
        unused = tmp / "sample-and-unused-images.warc.gz"
        with_unused_images(sample, unused, args.unused)
        bomb = tmp / "bombs.warc.gz"
        report["input"] = {"sample_crawl": made.stdout.strip(),
                           "unused_images": {"records": args.unused, "bytes_each": IMAGE_BYTES},
                           "bombs": bombs(bomb, args.bomb_mib * MIB, tmp)}
        runs, baseline = {}, None
        plan = [("baseline", [sample], False), ("unused_images", [unused], False), ("bombs", [sample, bomb], False)]
        if args.dask:
            plan += [("baseline_dask", [sample], True), ("unused_images_dask", [unused], True)]
        for name, inputs, dask in plan:
            runs[name], written = lait_run(inputs, tmp / f"out-{name}", dask)
            if name == "baseline":
                baseline = written
            else:
                runs[name]["rows_equal_baseline"] = bool(written) and written == baseline
                if written != baseline:
                    runs[name]["columns_that_differ"] = differing_columns(baseline, written)
            shutil.rmtree(tmp / f"out-{name}", ignore_errors=True)
        report["runs"] = runs
    report["ok"] = all(runs[name].get("rows_equal_baseline") and runs[name]["peak_rss_mib"] <= args.limit_mib
                       for name in ("unused_images", "bombs"))
    report["load_average_after"] = round(os.getloadavg()[0], 1)
    text = json.dumps(report)
    if args.save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    main()
