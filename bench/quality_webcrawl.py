"""Quality on real pages: `lait run` on the shared webcrawl set, judged against its labels.

    python bench/quality_webcrawl.py                      # run lait, print the table, write JSON
    python bench/quality_webcrawl.py --corpus out/wc      # judge an existing corpus (with _rejects/)

Prints pages in, English pages, pairs out, precision (share of output pairs whose image is a
labelled lead photo and whose text describes it, :mod:`bench.webcrawl_labels`), recall (share
of labelled good pages, lead photo with a describing text, that yield such a pair), per site;
and for every lost good page the stage and reason that dropped it. Beside it, on the same
pages, two baselines:

(a) `og_or_first`: the page's og:image, else its first `<img>`, when the crawl holds it and it
    is larger than 300 px on both sides, paired with its alt text (og:image:alt for og:image);
    no other filter.
(b) `every_alt`: what cc2dataset + img2dataset give: every `<img>` with a non-empty alt whose
    image is larger than 300 px on both sides.

The run keeps every reject (`--rejects_per_reason` large), so each lost page has its reason.
Results go to `bench/results/quality_webcrawl.json`.
"""

from __future__ import annotations

import argparse
import collections
import glob
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lxml.html
import pyarrow.parquet as pq
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.webcrawl_labels import judge, load_labels  # noqa: E402
from lait.filters.page import decode_html  # noqa: E402
from lait.filters.urls import normalize_url  # noqa: E402
from lait.pipeline.read_crawl import iter_crawl_records  # noqa: E402

SHARED = Path(os.environ.get("LAIT_SHARED", ROOT.parent / "shared")) / "data" / "webcrawl"
RESULTS = ROOT / "bench" / "results" / "quality_webcrawl.json"
MIN_SIDE = 300


def run_lait(inputs: str, corpus: Path, extra: list[str]) -> float:
    """`lait run --no-fetch` over `inputs` into `corpus`, every reject kept; returns seconds."""
    started = time.time()
    command = [str(ROOT / ".venv" / "bin" / "lait") if (ROOT / ".venv").exists() else "lait", "run",
               "--input", inputs, "--output", str(corpus), "--no-fetch", "--rejects_per_reason", "1000000", *extra]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.time() - started


def read_pairs(corpus: Path) -> list[dict]:
    rows = []
    for shard in sorted(corpus.glob("shard-*.parquet")):
        rows += pq.read_table(shard, columns=["page_url", "image_url", "text", "text_source", "score"]).to_pylist()
    return rows


def read_drops(corpus: Path) -> dict[str, tuple[str, str, str]]:
    """`{page URL: (stage, reason, detail)}` from `_rejects/`, the latest stage that dropped the page."""
    order = ["ReadCrawl", "ParsePages", "DetectDominantImage", "CleanText", "AcquireImages", "FilterImages",
             "ScoreRelevance", "Aggregate"]
    drops: dict[str, tuple[str, str, str]] = {}
    for path in (corpus / "_rejects").glob("*.jsonl"):
        for entry in map(json.loads, path.open(encoding="utf-8")):
            page = entry.get("page_url") or entry.get("url")
            found = (entry["stage"], entry["reason"], str(entry.get("detail") or entry.get("text") or "")[:160])
            if page and (page not in drops or order.index(found[0]) > order.index(drops[page][0])):
                drops[page] = found
    return drops


def _normalized(label: dict) -> dict:
    urls = [label["lead_photo"], *label.get("renditions", [])] if label.get("lead_photo") else []
    urls = [normalize_url(u) or u for u in urls]
    return {**label, "lead_photo": urls[0] if urls else None, "renditions": urls[1:]}


def score(pairs: list[dict], labels: dict[str, dict]) -> dict:
    """Precision, recall and the verdict of every pair (pairs: page_url, image_url, text)."""
    verdicts = []
    recalled = set()
    by_photo = collections.defaultdict(set)  # a photo that Aggregate kept from another page counts for both
    for url, label in labels.items():
        if label.get("lead_photo") and label.get("describing"):
            by_photo[label["lead_photo"]].add(url)
            for rendition in label["renditions"]:
                by_photo[rendition].add(url)
    for pair in pairs:
        label = labels.get(pair["page_url"], {"lead_photo": None})
        image = normalize_url(pair["image_url"]) or pair["image_url"]
        verdict = judge(label, image, pair["text"] or "")
        verdicts.append({**pair, "verdict": verdict, "score": pair.get("score") or 0.0})
        if verdict == "good":
            recalled.add(pair["page_url"])
            recalled |= {page for page in by_photo.get(image, ()) if judge(labels[page], image, pair["text"] or "") == "good"}
    good_pages = {url for url, label in labels.items() if label.get("lead_photo") and label.get("describing")}
    n_good = sum(v["verdict"] == "good" for v in verdicts)
    return {
        "pairs": len(pairs), "good_pairs": n_good,
        "precision": round(n_good / len(pairs), 3) if pairs else None,
        "recall": round(len(recalled & good_pages) / len(good_pages), 3) if good_pages else None,
        "verdicts": dict(collections.Counter(v["verdict"] for v in verdicts)),
        "_recalled": recalled & good_pages, "_verdicts": verdicts,
    }


def _image_sizes(paths: list[str]) -> dict[str, tuple[int, int]]:
    sizes = {}
    for path in paths:
        for record in iter_crawl_records(path):
            if not isinstance(record, dict) or record.get("kind") != "image":
                continue
            try:
                with Image.open(io.BytesIO(record["content"])) as image:
                    sizes[normalize_url(record["url"]) or record["url"]] = image.size
            except Exception:  # noqa: BLE001 - a broken image is simply not usable
                continue
    return sizes


def baseline_pairs(paths: list[str]) -> dict[str, list[dict]]:
    """Pairs of the two baselines (see the module docstring) over the crawl's pages."""
    sizes = _image_sizes(paths)

    def big(url: str | None) -> str | None:
        key = normalize_url(url) if url else None
        width, height = sizes.get(key, (0, 0)) if key else (0, 0)
        return key if width > MIN_SIDE and height > MIN_SIDE else None

    out = {"og_or_first": [], "every_alt": []}
    for path in paths:
        for record in iter_crawl_records(path):
            if not isinstance(record, dict) or record.get("kind") != "page":
                continue
            page = record["url"]
            try:
                text, _ = decode_html(record["content"], (record.get("http_headers") or {}).get("content-type"))
                root = lxml.html.fromstring(text.encode("utf-8"), base_url=page)
            except Exception:  # noqa: BLE001 - an unparseable page gives no pair
                continue
            root.make_links_absolute(page, resolve_base_href=True, handle_failures="discard")
            images = [(img.get("src"), " ".join((img.get("alt") or "").split())) for img in root.iter("img")]
            og = root.xpath("//meta[@property='og:image']/@content")
            og_alt = root.xpath("//meta[@property='og:image:alt']/@content")
            chosen = None
            if og and big(og[0]):
                alt = og_alt[0] if og_alt else next((a for s, a in images if s and big(s) == big(og[0])), "")
                chosen = (big(og[0]), alt)
            else:
                chosen = next(((big(s), a) for s, a in images if s and big(s)), None)
            if chosen and chosen[1].strip():
                out["og_or_first"].append({"page_url": page, "image_url": chosen[0], "text": chosen[1]})
            out["every_alt"] += [{"page_url": page, "image_url": big(s), "text": a}
                                 for s, a in dict(images).items() if s and a and big(s)]
    return out


def per_site(verdicts: list[dict], labels: dict[str, dict], recalled: set) -> dict:
    sites: dict[str, dict] = collections.defaultdict(lambda: collections.Counter())
    for url, label in labels.items():
        site = sites[label["site"]]
        site["pages"] += 1
        site["english"] += bool(label.get("english"))
        site["good_pages"] += bool(label.get("lead_photo") and label.get("describing"))
        site["recalled"] += url in recalled
    for v in verdicts:
        site = sites[labels.get(v["page_url"], {"site": "?"})["site"]]
        site["pairs"] += 1
        site["good_pairs"] += v["verdict"] == "good"
    return {name: dict(counts) for name, counts in sorted(sites.items())}


THRESHOLDS = (0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def _pick_threshold(verdicts: list[dict], min_precision: float) -> float:
    """The threshold keeping most good pairs at `min_precision`, else the most precise one (ties: lowest)."""
    def figures(t):
        kept = [v for v in verdicts if v["score"] >= t]
        good = sum(v["verdict"] == "good" for v in kept)
        return (good / len(kept) if kept else 0.0), good
    feasible = [(figures(t)[1], -t) for t in THRESHOLDS if figures(t)[0] >= min_precision]
    if feasible:
        return -max(feasible)[1]
    return max(THRESHOLDS, key=lambda t: (figures(t)[0], -t))


def relevance_threshold_cv(verdicts: list[dict], labels: dict[str, dict], min_precision: float = 0.9) -> dict:
    """--min_relevance chosen by leave-one-site-out: fitted on the other sites' pairs, applied to the held-out one.

    Needs a run with `--min_relevance 0` (every scored pair in the output).
    """
    site_of = {url: label["site"] for url, label in labels.items()}
    sites = sorted({site_of.get(v["page_url"], "?") for v in verdicts})
    folds, kept = {}, []
    for site in sites:
        train = [v for v in verdicts if site_of.get(v["page_url"], "?") != site]
        threshold = _pick_threshold(train, min_precision)
        folds[site] = threshold
        kept += [v for v in verdicts if site_of.get(v["page_url"], "?") == site and v["score"] >= threshold]
    good = sum(v["verdict"] == "good" for v in kept)
    return {"fold_thresholds": folds, "held_out_pairs": len(kept), "held_out_good": good,
            "held_out_precision": round(good / len(kept), 3) if kept else None,
            "in_sample_threshold": _pick_threshold(verdicts, min_precision)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", default=str(SHARED / "*.warc.gz"))
    parser.add_argument("--labels", default=str(ROOT / "bench" / "labels" / "webcrawl.jsonl"))
    parser.add_argument("--corpus", help="judge this existing corpus instead of running lait")
    parser.add_argument("--json", default=str(RESULTS))
    parser.add_argument("--show", action="store_true", help="print every output pair with its verdict")
    parser.add_argument("lait_args", nargs="*", help="extra `lait run` flags (after --)")
    args = parser.parse_args()
    paths = sorted(glob.glob(args.input))
    if not paths:
        sys.exit(f"no input matches {args.input}: the shared webcrawl set is absent")
    labels = {url: _normalized(label) for url, label in load_labels(Path(args.labels)).items()}

    seconds = None
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(args.corpus) if args.corpus else Path(tmp) / "corpus"
        if not args.corpus:
            seconds = run_lait(args.input, corpus, args.lait_args)
        pairs, drops = read_pairs(corpus), read_drops(corpus)
        funnel = json.loads((corpus / "_funnel.json").read_text())

    lait = score(pairs, labels)
    baselines = {name: score(found, labels) for name, found in baseline_pairs(paths).items()}
    good_pages = [url for url, label in labels.items() if label.get("lead_photo") and label.get("describing")]
    lost = {}
    for url in sorted(set(good_pages) - lait["_recalled"]):
        output = [v for v in lait["_verdicts"] if v["page_url"] == url]
        lost[url] = (("output", output[0]["verdict"], output[0]["text"][:160]) if output
                     else drops.get(url, ("Aggregate?", "not_found", "")))
    stages = {s["name"]: s for s in funnel["stages"]}
    result = {
        "input": args.input, "pages_in": stages["ParsePages"]["in"], "english_pages": stages["ParsePages"]["out"],
        "labelled_english": sum(bool(label.get("english")) for label in labels.values()),
        "labelled_good_pages": len(good_pages), "seconds": round(seconds, 1) if seconds else None,
        "lait": {k: v for k, v in lait.items() if not k.startswith("_")},
        "baselines": {name: {k: v for k, v in b.items() if not k.startswith("_")} for name, b in baselines.items()},
        "per_site": per_site(lait["_verdicts"], labels, lait["_recalled"]),
        "lost_reasons": dict(collections.Counter(f"{s}.{r}" for s, r, _ in lost.values()).most_common()),
        # URLs and reasons only: the pages' texts are third-party content and stay out of the repo.
        "lost": {url: f"{why[0]}.{why[1]}" for url, why in lost.items()},
        "relevance_threshold_cv": relevance_threshold_cv(lait["_verdicts"], labels),
        "wrong_pairs": [{k: v[k] for k in ("page_url", "image_url", "text_source", "verdict")}
                        for v in lait["_verdicts"] if v["verdict"] != "good"],
    }
    print(f"pages in {result['pages_in']}, English {result['english_pages']} (labelled English "
          f"{result['labelled_english']}), labelled good pages {len(good_pages)}")
    print(f"{'':<14}{'pairs':>7}{'good':>7}{'precision':>11}{'recall':>8}")
    for name, figures in [("lait", result["lait"]), *result["baselines"].items()]:
        print(f"{name:<14}{figures['pairs']:>7}{figures['good_pairs']:>7}{figures['precision'] or 0:>11.3f}"
              f"{figures['recall'] or 0:>8.3f}")
    print("lost good pages by stage.reason:", result["lost_reasons"])
    print("--min_relevance by leave-one-site-out (meaningful with --min_relevance 0):", result["relevance_threshold_cv"])
    for url, why in lost.items():
        print(f"  LOST {url}\n       {why[0]}.{why[1]}: {why[2]}")
    for v in (v for v in lait["_verdicts"] if v["verdict"] != "good"):
        print(f"  WRONG {v['verdict']}: {v['page_url']}\n       {v['image_url']}\n       {v['text_source']}: {v['text']}")
    if args.show:
        for v in lait["_verdicts"]:
            print(f"  {v['verdict']:<12} {v['page_url']}\n       {v['text_source']}: {v['text']}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
