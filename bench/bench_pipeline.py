"""Foundation bench: ReadCrawl, ReadCrawl+ParsePages and `lait run` end to end (prints one JSON object).

    python bench/bench_pipeline.py                  # shared WARC files x5 for the stage figures
    python bench/bench_pipeline.py --repeat 1 --no-e2e

Input: every file under ../shared/data/warc (141 real WARC/ARC files, 11 MB, many broken),
linked `--repeat` times into a temporary folder so the figures are not all start-up;
and the sample crawl from `lait sample-crawl` when that command exists. Figures:

- `reader`: `iter_crawl_records` in a plain loop (no Beam): records/s, pages/s, MB/s.
- `read_crawl`, `read_crawl_parse_pages`: the stages in a Beam pipeline on the in-process
  DirectRunner, wall time from pipeline construction to the end of the run.
- `e2e`: `lait run --no-fetch` as a subprocess, in-process DirectRunner and
  `--direct_num_workers 2 --direct_running_mode multi_processing`, pages = ParsePages in.

With `--baseline REV`: only `lait run` end to end on one process, this checkout and REV's
`lait` (extracted with `git archive`) in turns, `--rounds` times each, with their funnels
compared. Each run starts in its own tree's folder: `python -m` puts the working directory
first on `sys.path`, so a run started here imports this checkout's `lait` whatever
PYTHONPATH says.

Peak memory is the largest summed resident memory of the process tree (the bench or the
`lait run` subprocess and its worker processes), sampled every 0.1 s, plus `ru_maxrss`.
Every figure also comes per CPU second (user + system time of the process tree), which
holds on a busy machine where wall-clock rates do not; `load_average` says how busy it was.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import apache_beam as beam
import psutil
from apache_beam.options.pipeline_options import PipelineOptions

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.measure import MIB, PeakMemory, baseline_checkout  # noqa: E402
from lait.pipeline.in_process_runner import InProcessRunner  # noqa: E402
from lait.pipeline.options import LaitOptions  # noqa: E402
from lait.pipeline.parse_pages import ParsePages  # noqa: E402
from lait.pipeline.read_crawl import ReadCrawl, iter_crawl_records  # noqa: E402

SHARED_WARC = Path(os.environ.get("LAIT_SHARED", ROOT.parent / "shared")) / "data" / "warc"


def link_inputs(folder: Path, repeat: int) -> list[str]:
    """Every shared WARC/ARC file linked `repeat` times into `folder`, flat, with distinct names."""
    sources = sorted(p for p in SHARED_WARC.rglob("*") if p.is_file() and p.name != "README.md")
    paths = []
    for copy in range(repeat):
        for i, source in enumerate(sources):
            link = folder / f"c{copy}-{i:03d}-{source.name}"
            link.symlink_to(source)
            paths.append(str(link))
    return paths


def input_megabytes(paths: list[str]) -> float:
    return sum(os.path.getsize(p) for p in paths) / 1e6


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _rates(pages: int, seconds: float, cpu: float) -> dict:
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "pages_per_s": round(pages / seconds, 1),
            "pages_per_cpu_s": round(pages / cpu, 1)}


def bench_reader(paths: list[str]) -> dict:
    records = pages = images = 0
    cpu = _cpu_self()
    started = time.perf_counter()
    for path in paths:
        for item in iter_crawl_records(path):
            records += 1
            if isinstance(item, dict):
                pages += item["kind"] == "page"
                images += item["kind"] == "image"
    seconds, cpu = time.perf_counter() - started, _cpu_self() - cpu
    return {"files": len(paths), "mb": round(input_megabytes(paths), 1), "records": records, "pages": pages,
            "images": images, **_rates(pages, seconds, cpu), "records_per_cpu_s": round(records / cpu),
            "mb_per_cpu_s": round(input_megabytes(paths) / cpu, 1)}


def _write_count(path: str, n: int) -> None:
    Path(path).write_text(str(n))


def bench_stages(paths: list[str], parse: bool, out: Path) -> dict:
    """ReadCrawl (and ParsePages) on the runner of `lait run --runner direct`; pages/s over the whole run."""
    options = PipelineOptions(["--runner=DirectRunner"])
    counted = out / ("parsed" if parse else "pages")
    before = psutil.Process().memory_info().rss
    cpu = _cpu_self()
    started = time.perf_counter()
    with PeakMemory() as memory:
        with beam.Pipeline(runner=InProcessRunner(), options=options) as pipeline:
            crawl = pipeline | "ReadCrawl" >> ReadCrawl(paths, progress=False)
            result = crawl.pages
            if parse:
                result = (crawl.pages | "ParsePages" >> ParsePages(options.view_as(LaitOptions))).main
            (crawl.pages | "CountPages" >> beam.combiners.Count.Globally()
             | "WritePages" >> beam.Map(lambda n: _write_count(str(out / "pages"), n)))
            if parse:
                (result | "CountParsed" >> beam.combiners.Count.Globally()
                 | "WriteParsed" >> beam.Map(lambda n: _write_count(str(counted), n)))
    seconds, cpu = time.perf_counter() - started, _cpu_self() - cpu
    pages = int((out / "pages").read_text())
    figures = {"files": len(paths), "pages": pages, **_rates(pages, seconds, cpu), "peak_rss_mib": round(memory.peak / MIB),
               "rss_before_mib": round(before / MIB)}  # what the bench process held already (imported models...)
    if parse:
        figures["pages_parsed_kept"] = int(counted.read_text())
    return figures


def bench_lait_run(inputs: list[str], out: Path, workers: int, runner: str = "direct", code_root: Path = ROOT) -> dict:
    """`lait run --no-fetch` in a subprocess; pages/s = pages read (ParsePages in) / wall seconds.

    runner "direct": in-process for 1 worker, multi_processing for more; "dask": a local dask
    cluster of `workers` processes started by `lait run --dask_workers`. `code_root`: the tree
    whose `lait` runs (the subprocess starts there).
    """
    command = [sys.executable, "-m", "lait.pipeline.cli", "run", "--input", *inputs, "--output", str(out),
               "--no-fetch", "--progress", "false", "--overwrite"]
    if runner == "dask":
        command += ["--runner", "dask", "--dask_workers", str(workers)]
    elif workers > 1:
        command += ["--direct_num_workers", str(workers), "--direct_running_mode", "multi_processing"]
    cpu = _cpu_children()
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    process = subprocess.Popen(command, cwd=code_root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    with PeakMemory(process.pid) as memory:
        stdout, stderr = process.communicate()
    seconds, cpu = time.perf_counter() - started, _cpu_children() - cpu  # includes its worker processes
    if process.returncode != 0:
        return {"runner": runner, "workers": workers, "error": (stderr or stdout).strip().splitlines()[-1:]}
    funnel = json.loads((out / "_funnel.json").read_text())
    stages = {s["name"]: s for s in funnel["stages"]}
    pages = stages["ParsePages"]["in"]
    return {"runner": runner, "workers": workers, "pages": pages, "rows": stages["WriteShards"]["out"],
            "funnel": [(s["name"], s["in"], s["out"]) for s in funnel["stages"]],
            **_rates(pages, seconds, cpu), "peak_rss_mib": round(memory.peak / MIB),
            "peak_rss_per_process_mib": round(memory.peak_process / MIB)}


def e2e_beside_baseline(inputs: list[str], folder: Path, baseline: str, rounds: int) -> dict:
    """One-process `lait run` of `baseline`'s code and of this checkout, in turns (a busy spell
    hits both alike): pages per CPU second of every run, and whether every funnel was equal."""
    code = folder / "baseline"
    code.mkdir()
    baseline_checkout(str(ROOT), baseline, str(code))
    runs: dict[str, list[dict]] = {baseline: [], "this_tree": []}
    for round_ in range(rounds):
        for name, root in ((baseline, code), ("this_tree", ROOT)):
            runs[name].append(bench_lait_run(inputs, folder / f"e2e-{round_}-{len(runs[name])}-{name}", 1,
                                             code_root=root))
    funnels = {json.dumps(r.get("funnel")) for results in runs.values() for r in results}
    return {"pages_per_cpu_s": {name: [r.get("pages_per_cpu_s") for r in results] for name, results in runs.items()},
            "errors": [r["error"] for results in runs.values() for r in results if "error" in r],
            "funnels_equal": len(funnels) == 1}


RUNNERS = (("direct", 1), ("direct", 2), ("dask", 1), ("dask", 2))


def compare_runners(inputs: list[str], folder: Path, rounds: int) -> list[dict]:
    """Each runner's fastest of `rounds` runs (interleaved, so a busy spell hits all alike), with every wall time."""
    runs = {config: [] for config in RUNNERS}
    for _ in range(rounds):
        for runner, workers in RUNNERS:
            runs[runner, workers].append(bench_lait_run(inputs, folder / f"{runner}-{workers}", workers, runner))
    best = []
    for results in runs.values():
        ok = [r for r in results if "error" not in r]
        fastest = dict(min(ok, key=lambda r: r["seconds"])) if ok else results[0]
        fastest["walls"] = [r.get("seconds") for r in results]
        best.append(fastest)
    return best


# Pure-Python work of a few seconds, the kind of load a pipeline worker puts on a core.
_SPIN = "s = 0\nfor i in range(25_000_000):\n    s += i"


def _wall(processes: int) -> float:
    started = time.perf_counter()
    running = [subprocess.Popen([sys.executable, "-c", _SPIN]) for _ in range(processes)]
    for process in running:
        process.wait()
    return time.perf_counter() - started


def two_process_ceiling(repeats: int = 3) -> dict:
    """The speed-up two identical CPU-bound processes get over one on this machine: the most
    two workers can reach. On a VM whose two vCPUs share a physical core or a busy host it
    is well under 2."""
    speedups = []
    for _ in range(repeats):
        one = _wall(1)
        speedups.append(round(2 * one / _wall(2), 2))
    return {"speedups": speedups, "median": sorted(speedups)[len(speedups) // 2]}


def sample_crawl(folder: Path) -> tuple[str | None, str | None]:
    """The sample crawl's path, or None and why not."""
    path = folder / "sample.warc.gz"
    result = subprocess.run([sys.executable, "-m", "lait.pipeline.cli", "sample-crawl", str(path)], cwd=ROOT,
                            capture_output=True, text=True)
    if result.returncode != 0 or not path.exists():
        return None, ((result.stderr or result.stdout).strip().splitlines() or ["lait sample-crawl failed"])[-1]
    return str(path), None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=None,
                        help="times each shared file is read (default 5; 20 with --cluster, so that the workers' "
                        "start-up, the same whatever the input, is not most of the run)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --cluster: runs of each runner, interleaved; the fastest of each is reported; "
                        "with --baseline: runs of each tree")
    parser.add_argument("--no-e2e", dest="e2e", action="store_false", help="skip the `lait run` figures")
    parser.add_argument("--baseline", help="git revision: only one-process `lait run`, its code and this checkout's "
                        "in turns, --rounds times each (default 20 copies of the shared files)")
    parser.add_argument("--cluster", action="store_true",
                        help="only the runner comparison on the shared files: DirectRunner in-process and 2 "
                        "processes, Dask with 1 and 2 workers, the Dask speed-up from 1 to 2 workers, and "
                        "the speed-up two plain CPU-bound processes get on this machine (its ceiling)")
    args = parser.parse_args()
    if args.repeat is None:
        args.repeat = 20 if args.cluster or args.baseline else 5
    logging.basicConfig(level=logging.ERROR)
    if not SHARED_WARC.is_dir():
        sys.exit(f"needs the shared WARC files in {SHARED_WARC}")
    report = {"bench": "pipeline", "cores": os.cpu_count(), "runner": "DirectRunner",
              "load_average_before": round(os.getloadavg()[0], 1)}
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        tmp = Path(tmp)
        (tmp / "once").mkdir()
        (tmp / "repeated").mkdir()
        once = link_inputs(tmp / "once", 1)
        repeated = link_inputs(tmp / "repeated", args.repeat)
        # `lait run` gets one glob, not thousands of paths: the multi-processing DirectRunner hands
        # its options to each worker in one environment variable, and exec refuses one over 128 KiB.
        repeated_glob = [str(tmp / "repeated" / "*")]
        report["input"] = {"shared_files": len(once), "shared_mb": round(input_megabytes(once), 1),
                           "repeat": args.repeat}
        if args.baseline:
            report["e2e_beside_baseline"] = {"baseline": args.baseline,
                                             **e2e_beside_baseline(repeated_glob, tmp, args.baseline, args.rounds)}
            print(json.dumps(report))
            return
        if args.cluster:
            report["runners"] = compare_runners(repeated_glob, tmp, args.rounds)
            dask = {r["workers"]: r for r in report["runners"] if r["runner"] == "dask" and "error" not in r}
            if len(dask) == 2:
                report["dask_speedup_1_to_2"] = round(dask[2]["pages_per_s"] / dask[1]["pages_per_s"], 2)
                # Runs of the same round follow each other: their ratio is the least hit by the
                # VM's speed drifting over minutes.
                report["dask_speedup_per_round"] = [round(one / two, 2) for one, two in
                                                    zip(dask[1]["walls"], dask[2]["walls"]) if one and two]
            report["two_process_ceiling"] = two_process_ceiling()
            print(json.dumps(report))
            return
        report["reader"] = bench_reader(repeated)
        report["read_crawl"] = bench_stages(repeated, parse=False, out=tmp)
        report["read_crawl_parse_pages"] = bench_stages(repeated, parse=True, out=tmp)
        if args.e2e:
            report["e2e"] = {"shared_warc": [bench_lait_run(repeated_glob, tmp / f"e2e-shared-{w}", w) for w in (1, 2)]}
            sample, why = sample_crawl(tmp)
            if sample:
                report["e2e"]["sample_crawl"] = [bench_lait_run([sample], tmp / f"e2e-sample-{w}", w) for w in (1, 2)]
            else:
                report["e2e"]["sample_crawl"] = {"skipped": why}
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report["load_average_after"] = round(os.getloadavg()[0], 1)
    report["ru_maxrss_mib"] = {"bench": round(usage[0] / 1024), "largest_child": round(usage[1] / 1024)}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
