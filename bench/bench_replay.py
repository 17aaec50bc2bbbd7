"""The Common Crawl path on the shared webcrawl set: fetched through the replay proxy vs `--no-fetch`.

    python bench/bench_replay.py                                  # writes bench/results/replay_webcrawl.json
    python bench/bench_replay.py --fetch_args "--per_host_delay 0" --json /tmp/replay.json

Steps:
1. `bench/replay_crawl.py split` of `../shared/data/webcrawl/*.warc.gz` into HTML-only WARCs;
2. `bench/replay_crawl.py serve` of the full WARCs, a separate process (the HTTP forward proxy);
3. per comparison (`defaults`: lait's options; `relaxed`: every filter after ParsePages
   opened, so that all the pairs that reach AcquireImages come out and are compared):
   `lait run --no-fetch` over the full WARCs, then `lait run` over the HTML-only WARCs with
   `--proxy` and `--fetch_ca_bundle`, the default fetch politeness (robots.txt, 2 requests in
   flight and 0.5 s between request starts per host) unless `--fetch_args` says otherwise
   (the JSON records them), and no `--allow_private_networks`. The two runs go at once
   (`--sequential`: one after the other, for timings that do not share the CPUs), so that
   both run the same code while others edit the working tree; `code_changed_during_runs`
   says whether the sources changed all the same.

The rows must be equal except `image_source` (crawl / http) and `warc_path` / `warc_offset`
(the page's record in the HTML-only copy; compared through the split's offset map). The JSON
says whether they are, the row and funnel counts of both runs, what the proxy answered, the
image hosts that resolve here (a host that resolves to a private address is refused by the
guard on the fetch path: on a machine with public DNS, `irishaidfellowships.ddev.site` does),
and the timings. Skips, with a message, when the webcrawl set is absent.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.dataset as ds

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.replay_crawl import split_warc  # noqa: E402
from lait.pipeline.fetch import AddressPolicy, PrivateAddressError  # noqa: E402

WEBCRAWL = Path(os.environ.get("LAIT_SHARED", ROOT.parent / "shared")) / "data" / "webcrawl"
DIFFERENT_BY_DESIGN = ("image_source", "warc_path", "warc_offset")


def lait_runs(*runs: list[str], at_once: bool) -> list[float]:
    """`lait run` with each argument list, all at once or one after the other; wall seconds of each."""
    started, processes, seconds = time.perf_counter(), [], []
    for args in runs:
        processes.append((args, subprocess.Popen([sys.executable, "-m", "lait.pipeline.cli", "run", "--progress", "false",
                                                  *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                 text=True)))
        if not at_once:
            seconds.append(finish(*processes[-1], started))
            started = time.perf_counter()
    return seconds if not at_once else [finish(args, process, started) for args, process in processes]


def finish(args: list[str], process: subprocess.Popen, started: float) -> float:
    _, stderr = process.communicate(timeout=3600)
    if process.returncode:
        raise SystemExit(f"lait run {' '.join(args)} failed:\n{stderr[-3000:]}")
    return time.perf_counter() - started


def code_fingerprint() -> str:
    """SHA-1 of the pipeline's Python sources as they are on disk (others may edit the working tree meanwhile)."""
    digest = hashlib.sha1()
    for path in sorted(p for folder in ("pipeline", "filters", "scoring", "imagebert") for p in (ROOT / folder).rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def read_rows(folder: Path, to_split_offset: dict | None) -> dict:
    """Rows by (page URL, image URL, page offset in the HTML-only WARC), without the columns that differ by design."""
    shards = sorted(str(path) for path in folder.glob("shard-*.parquet"))
    rows = ds.dataset(shards, format="parquet").to_table().to_pylist() if shards else []
    keyed = {}
    for row in rows:
        name, offset = os.path.basename(row["warc_path"]), row["warc_offset"]
        if to_split_offset is not None:
            offset = to_split_offset[name][offset]
        keyed[(row["page_url"], row["image_url"], name, offset)] = {
            k: v for k, v in row.items() if k not in DIFFERENT_BY_DESIGN}
    return {"rows": keyed, "sources": Counter(row["image_source"] for row in rows)}


def acquire_counts(folder: Path) -> dict:
    funnel = json.loads((folder / "_funnel.json").read_text())
    stage = next(s for s in funnel["stages"] if s["name"] == "AcquireImages")
    return {"in": stage["in"], "out": stage["out"], "dropped": stage["dropped"],
            "pairs_out": funnel["stages"][-1]["out"]}


def hosts_resolving_here(warcs: list[str]) -> dict:
    """Image hosts of the crawl that resolve on this machine: public, or refused by the guard."""
    from lait.pipeline.read_crawl import iter_crawl_records
    hosts = sorted({urlsplit(r["url"]).hostname for w in warcs for r in iter_crawl_records(w)
                    if isinstance(r, dict) and r["kind"] == "image"})
    policy, public, private = AddressPolicy(), [], []
    for host in hosts:
        try:
            policy.resolve(host, 443)
            public.append(host)
        except PrivateAddressError:
            private.append(host)
        except (socket.gaierror, UnicodeError):
            pass
    return {"image_hosts": len(hosts), "resolve_public": public, "resolve_private": private}


# Both runs of a comparison take these; "relaxed" opens every later filter, so that every image
# that reaches AcquireImages is compared, not only the few that make it to the output.
COMPARISONS = {
    "defaults": [],
    "relaxed": ["--min_dominant_score", "0", "--min_words", "1", "--max_words", "1000", "--max_rare_word_ratio", "1",
                "--min_text_language_score", "0", "--min_image_side", "0", "--max_aspect_ratio", "1000",
                "--min_natural", "0", "--max_nsfw", "1", "--min_relevance", "0", "--max_images_per_text", "1000000"],
}


def compare(tmp: Path, name: str, lait_args: list[str], warcs: list[str], proxy: dict, fetch_args: list[str],
            to_split_offset: dict, at_once: bool) -> dict:
    """`lait run --no-fetch` over the full WARCs and through the proxy over the HTML-only ones; rows compared."""
    out = {"lait_args": lait_args, "runs_at_once": at_once, "seconds": {}}
    no_fetch, fetched = tmp / f"{name}-no-fetch", tmp / f"{name}-fetched"
    code = code_fingerprint()
    seconds = lait_runs(["--input", *warcs, "--output", str(no_fetch), "--no-fetch", *lait_args],
                        ["--input", str(tmp / "html" / "*.warc.gz"), "--output", str(fetched), "--proxy", proxy["proxy"],
                         "--fetch_ca_bundle", proxy["ca_cert"], *lait_args, *fetch_args], at_once=at_once)
    out["seconds"] = {"no_fetch_run": round(seconds[0], 2), "fetch_run": round(seconds[1], 2)}
    out["code_changed_during_runs"] = code_fingerprint() != code
    expected, got = read_rows(no_fetch, to_split_offset), read_rows(fetched, None)
    differing = sorted(k for k in expected["rows"].keys() | got["rows"].keys()
                       if expected["rows"].get(k) != got["rows"].get(k))
    examples = []
    for key in differing[:10]:
        a, b = expected["rows"].get(key) or {}, got["rows"].get(key) or {}
        examples.append({"page_url": key[0], "image_url": key[1],
                         "columns": "row missing on one side" if not (a and b) else sorted(c for c in a if a[c] != b[c])})
    out["rows_equal"] = "yes" if not differing and expected["rows"] else "no"
    out["rows"] = {"no_fetch": len(expected["rows"]), "fetched": len(got["rows"]), "differing": len(differing),
                   "image_source_no_fetch": dict(expected["sources"]), "image_source_fetched": dict(got["sources"]),
                   "differing_examples": examples}
    out["acquire_images"] = {"no_fetch": acquire_counts(no_fetch), "fetched": acquire_counts(fetched)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "replay_webcrawl.json"))
    parser.add_argument("--fetch_args", default="", help="more `lait run` flags for the fetch runs, e.g. '--per_host_delay 0'")
    parser.add_argument("--comparisons", default=",".join(COMPARISONS), help=f"of {', '.join(COMPARISONS)}")
    parser.add_argument("--sequential", action="store_true",
                        help="run the two runs of a comparison one after the other (timings that do not share the CPUs; "
                             "default: at once, so that both run the same code while others edit the working tree)")
    args = parser.parse_args()
    warcs = sorted(str(p) for p in WEBCRAWL.glob("*.warc.gz"))
    if not warcs:
        print(f"skipped: no WARC files in {WEBCRAWL} (the shared webcrawl set beside the repo)")
        return 0
    fetch_args = shlex.split(args.fetch_args)
    result: dict = {"input": f"{WEBCRAWL}/*.warc.gz", "warcs": len(warcs), "cpus": os.cpu_count(),
                    "fetch_args": ["--proxy", "<replay>", "--fetch_ca_bundle", "<replay CA>", *fetch_args],
                    "politeness": "defaults (robots.txt, --per_host_concurrency 2, --per_host_delay 0.5)"
                                  + (f" overridden by {args.fetch_args}" if fetch_args else ""),
                    "allow_private_networks": False, "seconds": {}}
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        splits = [split_warc(w, str(tmp / "html")) for w in warcs]
        result["seconds"]["split"] = round(time.perf_counter() - started, 2)
        result["split"] = {k: sum(s[k] for s in splits) for k in ("records_in", "pages", "warcinfo", "bytes_in",
                                                                   "bytes_out")}
        to_split_offset = {os.path.basename(s["input"]): s["offsets"] for s in splits}
        result["dns"] = hosts_resolving_here(warcs)

        started = time.perf_counter()
        log = open(tmp / "serve.log", "w")  # noqa: SIM115 - open while the server runs
        server = subprocess.Popen([sys.executable, str(ROOT / "bench" / "replay_crawl.py"), "serve", *warcs,
                                   "--ca_cert", str(tmp / "ca.pem")], stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            line = server.stdout.readline()
            if not line:
                raise SystemExit(f"replay server did not start:\n{(tmp / 'serve.log').read_text()[-3000:]}")
            proxy = json.loads(line)
            result["seconds"]["serve_start"] = round(time.perf_counter() - started, 2)
            result["replay"] = {"images": proxy["images"], "robots_records": proxy["robots_records"]}
            for name in args.comparisons.split(","):
                result[name] = compare(tmp, name, COMPARISONS[name], warcs, proxy, fetch_args, to_split_offset,
                                       at_once=not args.sequential)
        finally:
            server.terminate()
            out, _ = server.communicate(timeout=30)
            log.close()
        served = [json.loads(x) for x in out.splitlines() if x.startswith('{"served"')]
        result["replay"]["answered"] = served[-1]["served"] if served else None
    result["rows_equal"] = "yes" if all(result[n]["rows_equal"] == "yes" for n in args.comparisons.split(",")) else "no"
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        f.write(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["rows_equal"] == "yes" else 1


if __name__ == "__main__":
    sys.exit(main())
