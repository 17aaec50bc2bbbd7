"""ParsePages + DetectDominantImage: pages/s per core of this tree beside a baseline commit, their
decisions compared record by record, and the parts' limits, all in one run.

    python bench/bench_dominant_image_speed.py --baseline ab60ad9
    python bench/bench_dominant_image_speed.py --baseline ab60ad9 --rounds 5 --output bench/results/dominant_image_speed.json
    python bench/bench_dominant_image_speed.py --baseline ab60ad9 --rounds 7 --side-by-side

Timing: ../shared/data/mainimage (rows without `doubt`), one process per measurement, the
work of bench_dominant_image.py's `run_lait` (decode, parse, language identification,
candidates and features, record round trip, ranking, decision). Baseline and this tree run
alternately, `--rounds` times each; each process reports the CPU time of its fastest of
`--passes` passes over the pages, and the best of the rounds is kept: other processes on a
shared machine slow a pass down, they never speed one up. `round_ratios` are this tree's pages/s
over the baseline's, round by round, and `median_round_ratio` their median.

`--side-by-side` times the two trees at once instead, each process pinned to its own core (swapped
every round). On a shared VM whose speed moves by a third from one minute to the next, trees
taking turns see different machines, and a ratio of bests reads whichever tree had the lucky
round; side by side they see the same minutes. The cores still differ from round to round (the
host's other tenants), so read the median of the round ratios, beside the instruction counts.

Limits, measured on the same pages in this process: decoding alone, lxml parsing alone
(the HTML parser ParsePages uses), selectolax/Lexbor parsing alone (when installed), the
body scan (visible text and image positions) alone, compiled (`body_scan`, where lait's C
extension is built) and in Python (`body_scan_python`), fastText on the language samples alone.

Both trees run with their C extensions built where they have them (:func:`measure.baseline_checkout`
builds the baseline's); `compiled` in the report lists the modules each ran compiled.
`selectolax_lexbor_body_scan` is the scan's bookkeeping over a Lexbor tree through selectolax's
node API (:func:`lexbor_body_scan`): what a port of the DOM code to Lexbor would pay for it.

Instructions (`--instructions`, needs valgrind): the instructions one pass over the timing pages
executes in each tree, counted by valgrind's cachegrind as the difference between a process
making two passes and one making one, string hashing seeded alike. Unlike CPU time, the count
does not move with other processes on the machine: an A/B on a busy machine reads it first.

Decisions: every page of ../shared/data/mainimage, ../shared/data/pages and the sample crawl
(`lait sample-crawl`) through both trees; the DetectDominantImage output fields
(:data:`OUTPUT_KEYS`) and the page fields must be equal. The candidate records passed between
the stages are compared too and reported apart: they may differ where a candidate can never be
chosen.

The modules of setup.py's COMPILED_SOURCES run compiled from their own `.py` where built; an
edit since the build runs the `.py` (lait.extensions.run_current_sources).

Tried and not kept, with the page walks in C (224 pages/s in the same runs):
- Blanking the contents of `<script>` and `<style>` (not JSON-LD) before parsing: lxml parses
  the rest 0.03 ms a page faster, the regular expression costs 0.59 ms.
- lxml parser options (comments kept, `compact`, `huge_tree`, `recover`, `default_doctype`,
  the feed interface): 1.31-1.37 ms a page, all alike.
- Python's garbage collector off or frozen after set-up: within 1%.
- `remove_blank_text` (libxml2's HTML_PARSE_NOBLANKS): a fifth fewer text nodes, but the parse
  takes 5-8% longer (its test of each blank run for being ignorable costs more than the nodes
  save), and the trees the ranker was trained on would change.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("LAIT_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
MAINIMAGE = os.path.join(DATA, "data", "mainimage")
PAGES = os.path.join(DATA, "data", "pages")
OUTPUT_KEYS = ("image_url", "image_urls", "dominant_score", "dominant_source", "alt", "title", "figcaption",
               "context", "headline", "og_title", "og_description", "og_image_alt", "reason", "candidates")


def mainimage_pages() -> list[tuple[bytes, str]]:
    with open(os.path.join(MAINIMAGE, "labels.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    pages = []
    for row in rows:
        if not row.get("doubt"):
            with open(os.path.join(MAINIMAGE, row["path"]), "rb") as f:
                pages.append((f.read(), row["url"]))
    return pages


def all_pages(sample_crawl: str):
    """`(id, content, url, content_type)` of every page the decisions are compared on."""
    from lait.pipeline.read_crawl import iter_crawl_records

    for folder, prefix in ((MAINIMAGE, "mainimage"), (PAGES, "pages")):
        index = "labels.jsonl" if folder == MAINIMAGE else "index.jsonl"
        with open(os.path.join(folder, index), encoding="utf-8") as f:
            for row in map(json.loads, f):
                with open(os.path.join(folder, row["path"]), "rb") as page:
                    content = page.read()
                yield f"{prefix}:{row['id']}", gzip.decompress(content) if row["path"].endswith(".gz") else content, \
                    row["url"], None
    for record in iter_crawl_records(sample_crawl):
        if isinstance(record, dict) and record.get("kind") == "page":
            yield (f"sample:{record['url']}", record["content"], record["url"],
                   (record.get("http_headers") or {}).get("content-type"))


def stage_work():
    """`work(content, url, content_type) -> (page fields, candidate records, detector result)` of the tree on sys.path."""
    import inspect

    from lait.filters.page import PageParser
    from lait.scoring.dominant_image import (
        DominantImageDetector,
        candidates_from_record,
        extract_candidates,
        page_record_candidates,
    )

    parser = PageParser(languages=None, identify=True)
    detector = DominantImageDetector()
    # What ParsePages passes, where the tree knows it.
    parameters = inspect.signature(extract_candidates).parameters
    extract = {name: False for name in ("describe_unusable", "texts_of_unusable") if name in parameters}

    def work(content: bytes, url: str, content_type: str | None = None):
        page = parser.parse(content, url, content_type)
        if isinstance(page, tuple):
            return {"reject": list(page)}, None, None
        candidates, texts = page_record_candidates(extract_candidates(page, **extract))
        fields = {"page_title": page.title or texts.get("og_title"), "page_language": page.language,
                  "page_language_score": page.language_score, **texts}
        return fields, candidates, detector.detect_found(candidates_from_record(candidates, fields))

    return work


def child_time(passes: int) -> None:
    """Print the pages/s per core of the tree on sys.path (run in a child process)."""
    work = stage_work()
    pages = mainimage_pages()
    best = float("inf")
    for _ in range(passes):
        started = time.process_time()
        for content, url in pages:
            work(content, url)
        best = min(best, time.process_time() - started)
    print(json.dumps({"pages": len(pages), "cpu_seconds": best, "pages_per_s_per_core": len(pages) / best,
                      "compiled": compiled_modules()}))


def compiled_modules() -> list[str]:
    """The lait modules this process imported from a compiled file."""
    from importlib.machinery import EXTENSION_SUFFIXES

    return sorted(name for name, module in sys.modules.items()
                  if name.startswith("lait.") and str(getattr(module, "__file__", "")).endswith(tuple(EXTENSION_SUFFIXES)))


def child_decisions(sample_crawl: str, out_path: str) -> None:
    """Write one JSON line per page: page fields, detector output and candidate records."""
    work = stage_work()
    with open(out_path, "w", encoding="utf-8") as out:
        for page_id, content, url, content_type in all_pages(sample_crawl):
            fields, candidates, result = work(content, url, content_type)
            row = {"id": page_id, "fields": fields, "candidates": candidates,
                   "output": {k: result.get(k) for k in OUTPUT_KEYS} if result else None}
            out.write(json.dumps(row, sort_keys=True, default=lambda b: b.hex()) + "\n")


def _child_command(*args: str) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), "--child", *args]


def _child_env(tree: str, wrapper: tuple[str, ...] = ()) -> dict:
    env = {**os.environ, "PYTHONPATH": tree, "PYTHONWARNINGS": "ignore"}
    if wrapper:  # string hashing moves set orders and with them a count by a percent or two
        env["PYTHONHASHSEED"] = "0"
    return env


def run_child(tree: str, *args: str, wrapper: tuple[str, ...] = ()) -> str:
    """The last line the child prints (stderr's too with a `wrapper` such as valgrind, which writes there)."""
    done = subprocess.run([*wrapper, *_child_command(*args)], env=_child_env(tree, wrapper), cwd=tree,
                          capture_output=True, text=True, check=True)
    out = (done.stdout + done.stderr) if wrapper else done.stdout
    return out.strip().splitlines()[-1] if out.strip() else ""


def time_side_by_side(trees: dict[str, str], passes: int, round_number: int) -> dict[str, dict]:
    """Time the two trees at once, each pinned to its own core (swapped from round to round), and
    return each child's report: on a shared VM whose speed moves by a third from minute to
    minute, both then run in the same minutes, where taking turns they would not."""
    cores = sorted(os.sched_getaffinity(0))[:2]
    if round_number % 2:
        cores.reverse()
    children = {}
    for (name, tree), core in zip(trees.items(), cores):
        children[name] = subprocess.Popen(
            _child_command("time", str(passes)), env=_child_env(tree), cwd=tree, stdout=subprocess.PIPE, text=True,
            preexec_fn=lambda core=core: os.sched_setaffinity(0, {core}))
    reports = {}
    for name, child in children.items():
        out, _ = child.communicate()
        if child.returncode:
            raise subprocess.CalledProcessError(child.returncode, child.args)
        reports[name] = json.loads(out.strip().splitlines()[-1])
    return reports


def instructions_per_page(tree: str) -> float:
    """Instructions of one pass over the timing pages, per page (valgrind's count, two passes minus one)."""
    counts = []
    for passes in (1, 2):
        line = run_child(tree, "time", str(passes),
                         wrapper=("valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"))
        counts.append(int(line.split("refs:")[1].replace(",", "")))
    return (counts[1] - counts[0]) / len(mainimage_pages())


def compare_decisions(old_path: str, new_path: str) -> dict:
    with open(old_path, encoding="utf-8") as f:
        old = [json.loads(line) for line in f]
    with open(new_path, encoding="utf-8") as f:
        new = [json.loads(line) for line in f]
    assert [r["id"] for r in old] == [r["id"] for r in new]
    differing = [a["id"] for a, b in zip(old, new) if (a["fields"], a["output"]) != (b["fields"], b["output"])]
    return {"pages": len(old), "pages_with_a_pick": sum(bool(r["output"] and r["output"]["image_url"]) for r in new),
            "output_or_page_fields_differ": len(differing), "differing_ids": differing[:20],
            "candidate_records_differ": sum(a["candidates"] != b["candidates"] for a, b in zip(old, new))}


def lexbor_body_scan(tree, max_chars: int = 100_000, min_paragraph_chars: int = 80) -> tuple:
    """`scan_body`'s bookkeeping (visible text, image offsets, paragraph spans) over a Lexbor tree,
    walked in Python through selectolax's node API: what the scan would cost after a port."""
    from lait.filters.page import _BLOCK_TEXT_TAGS, IMAGE_TAGS, INLINE_TAGS, INVISIBLE_TAGS

    body = tree.body
    if body is None:
        return "", [], []
    chunks, images, paragraphs, size, order = [], [], [], 0, 0
    open_elements = [(body, 0)]  # (element, text offset at its start)
    node = body.child
    while node is not None:
        tag, following = node.tag, None
        if tag == "-text":
            text = node.text_content if size < max_chars else None
            if text:
                chunks.append(text)
                size += len(text)
        elif not tag.startswith(("-", "_")):  # comments, doctype
            order += 1
            if tag not in INVISIBLE_TAGS:
                if tag in IMAGE_TAGS:
                    images.append((node, size, order))
                if tag not in INLINE_TAGS:
                    chunks.append(" ")
                    size += 1
                if node.child is not None:
                    open_elements.append((node, size))
                    node = node.child
                    continue
                if tag not in INLINE_TAGS:
                    chunks.append(" ")
                    size += 1
        following = node.next
        while following is None and len(open_elements) > 1:
            element, start = open_elements.pop()
            if element.tag in _BLOCK_TEXT_TAGS and size - start >= min_paragraph_chars:
                paragraphs.append((start, size - start))
            if element.tag not in INLINE_TAGS:
                chunks.append(" ")
                size += 1
            following = element.next
        node = following
    return "".join(chunks), images, paragraphs


def limits(repeats: int = 3) -> dict:
    """Pages/s per core of each part alone, on the timing pages (best of `repeats`)."""
    from lait.filters.language import LanguageIdentifier
    from lait.filters.page import body_of, decode_html, language_sample, parse_html, scan_body, walk_body

    pages = mainimage_pages()
    texts = [decode_html(content)[0] for content, _ in pages]
    roots = [parse_html(text) for text in texts]
    samples = [language_sample(scan_body(root)) for root in roots if root is not None]
    identifier = LanguageIdentifier()
    parts = {"decode": lambda: [decode_html(content) for content, _ in pages],
             "lxml_parse": lambda: [parse_html(text) for text in texts],
             "body_scan": lambda: [scan_body(root) for root in roots if root is not None],
             "body_scan_python": lambda: [walk_body(body_of(root)) for root in roots if root is not None],
             "fasttext": lambda: [identifier.identify(sample) for sample in samples]}
    try:
        from selectolax.lexbor import LexborHTMLParser

        parts["selectolax_lexbor_parse"] = lambda: [LexborHTMLParser(text) for text in texts]
        trees = [LexborHTMLParser(text) for text in texts]
        parts["selectolax_lexbor_body_scan"] = lambda: [lexbor_body_scan(tree) for tree in trees]
    except ImportError:
        pass
    result = {}
    for name, run in parts.items():
        best = float("inf")
        for _ in range(repeats):
            started = time.process_time()
            run()
            best = min(best, time.process_time() - started)
        result[name] = round(len(pages) / best, 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=False, help="git revision to compare with (e.g. ab60ad9)")
    parser.add_argument("--rounds", type=int, default=3, help="timing processes per tree, run alternately")
    parser.add_argument("--passes", type=int, default=3, help="passes over the pages in each timing process")
    parser.add_argument("--output", default=os.path.join(ROOT, "out", "bench", "dominant_image_speed.json"))
    parser.add_argument("--instructions", action="store_true",
                        help="also count each tree's instructions per page with valgrind (minutes)")
    parser.add_argument("--side-by-side", action="store_true",
                        help="time the two trees at once, one per core, instead of in turns (needs 2 cores)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, os.getcwd())
        if args.child[0] == "time":
            child_time(int(args.child[1]))
        else:
            child_decisions(args.child[1], args.child[2])
        return 0
    if not args.baseline:
        parser.error("--baseline is required")
    if args.side_by_side and len(os.sched_getaffinity(0)) < 2:
        parser.error("--side-by-side needs two cores; without it the trees take turns on one")
    if args.instructions and not shutil.which("valgrind"):
        parser.error("--instructions needs valgrind on PATH (apt-get install valgrind)")
    if not os.path.isdir(MAINIMAGE):
        print(json.dumps({"skipped": f"needs {MAINIMAGE} (the shared test data beside the repo)"}))
        return 0
    sys.path.insert(0, ROOT)
    from bench.measure import baseline_checkout, write_report

    with tempfile.TemporaryDirectory() as workdir:
        baseline = os.path.join(workdir, "baseline")
        os.makedirs(baseline)
        baseline_checkout(ROOT, args.baseline, baseline)
        sample = os.path.join(workdir, "sample.warc.gz")
        subprocess.run([sys.executable, "-m", "lait", "sample-crawl", sample], cwd=ROOT, capture_output=True, check=True)
        trees = {"baseline": baseline, "this_tree": ROOT}
        timings: dict = {name: [] for name in trees}
        compiled: dict = {}
        for round_number in range(args.rounds):
            if args.side_by_side:
                reports = time_side_by_side(trees, args.passes, round_number)
            else:
                reports = {name: json.loads(run_child(tree, "time", str(args.passes))) for name, tree in trees.items()}
            for name, timed in reports.items():
                timings[name].append(timed["pages_per_s_per_core"])
                compiled[name] = timed.get("compiled", False)
        for name, tree in trees.items():
            run_child(tree, "decisions", sample, os.path.join(workdir, f"{name}.jsonl"))
        instructions = {name: instructions_per_page(tree) for name, tree in trees.items()} if args.instructions else {}
        decisions = compare_decisions(os.path.join(workdir, "baseline.jsonl"), os.path.join(workdir, "this_tree.jsonl"))
    sys.path.insert(0, ROOT)
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    report = {
        "pages": len(mainimage_pages()),
        "pages_per_s_per_core": {name: max(values) for name, values in timings.items()},
        "rounds": {name: [round(v, 1) for v in values] for name, values in timings.items()},
        "baseline": args.baseline, "this_tree": head.strip(), "compiled": compiled,
        "limits_pages_per_s_per_core": limits(),
        "decisions": decisions,
        "load_average_1min": round(os.getloadavg()[0], 2), "cores": os.cpu_count(),
    }
    report["pages_per_s_per_core"] = {k: round(v, 1) for k, v in report["pages_per_s_per_core"].items()}
    report["speedup"] = round(report["pages_per_s_per_core"]["this_tree"] / report["pages_per_s_per_core"]["baseline"], 2)
    ratios = [new / old for old, new in zip(timings["baseline"], timings["this_tree"])]
    report["timing"] = "side by side, one core each" if args.side_by_side else "in turns"
    report["round_ratios"] = [round(r, 3) for r in ratios]
    report["median_round_ratio"] = round(statistics.median(ratios), 3)
    if instructions:
        report["instructions_per_page"] = {name: round(value) for name, value in instructions.items()}
        report["instructions_ratio"] = round(instructions["this_tree"] / instructions["baseline"], 3)
    write_report(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
