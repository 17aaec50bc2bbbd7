"""Bench the CleanText rules on the labelled alt strings; prints JSON.

    .venv/bin/python bench/bench_text.py [--data ../shared/data/alts/alts.jsonl] [--seconds 5]

Measures, on `alts.jsonl` (real alt/title/figcaption strings labelled caption, weak or junk):
- the share kept per label; `caption` on rows whose fastText language is English (the corpus
  wants English, so a German caption is expected to go); junk dropped; junk share of kept;
- the same per source repository, and a generalisation check: each numeric threshold is tuned
  on one half of the repositories (grid search, objective below) and scored on the other half;
- throughput: texts per second of CPU time on one core: rules + fastText in batches of 256 (the
  CleanText stage batches), one text at a time, and rules only; with a CPU calibration figure and
  the load average, since the machine may be shared.

Objective of the tuning: keep caption(en) - 2 * junk kept share - 0.25 * weak kept share, with the
targets (caption >= 0.85, junk dropped >= 0.95, junk in kept <= 0.05) as hard constraints.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lait.filters.description import site_names  # noqa: E402
from lait.filters.text_rules import TextCleaner  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "alts" / "alts.jsonl"
HALVES = {
    "A": ("adbar/trafilatura", "goose3/goose3", "archivesunleashed/aut"),
    "B": ("scrapinghub/article-extraction-benchmark", "mozilla/readability", "AndyTheFactory/newspaper4k"),
}
# Thresholds tuned in the generalisation check, with the grid tried for each.
GRID = {
    "min_words": [2, 3, 4],
    "max_keyword_stopword_ratio": [-1, 0.05, 0.1, 0.15],
    "title_case_min_words": [-1, 3, 4, 5],
    "max_navigation_words": [4, 6, 8],
}


def load_rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    for row in rows:
        row["site_names"] = site_names(row.get("page_url"))
    return rows


def decide(cleaner: TextCleaner, rows: list[dict]) -> list[tuple[dict, object]]:
    return [(r, cleaner.clean(r["text"], source=r["attr"], site_names=r["site_names"])) for r in rows]


def score(decisions: list[tuple[dict, object]]) -> dict:
    """Per-label kept shares and the targets' figures."""
    n, kept = Counter(), Counter()
    reasons: dict[str, Counter] = defaultdict(Counter)
    for row, result in decisions:
        label = row["label"]
        if label == "caption":
            label = "caption_en" if row.get("lang") == "en" else "caption_other"
        n[label] += 1
        kept[label] += result.kept
        if not result.kept:
            reasons[label][result.reasons[0]] += 1
    share = {label: round(kept[label] / n[label], 4) for label in n}
    total_kept = sum(kept.values())
    junk_in_kept = kept["junk"] / total_kept if total_kept else 0.0
    return {
        "rows": dict(n),
        "kept_share": share,
        "caption_en_kept": share.get("caption_en"),
        "junk_dropped": round(1 - share.get("junk", 0.0), 4),
        "junk_share_of_kept": round(junk_in_kept, 4),
        "weak_kept": share.get("weak"),
        "kept_rows": total_kept,
        "top_reasons": {label: dict(c.most_common(8)) for label, c in reasons.items()},
    }


def meets_targets(s: dict) -> bool:
    return (s["caption_en_kept"] or 0) >= 0.85 and s["junk_dropped"] >= 0.95 and s["junk_share_of_kept"] <= 0.05


def objective(s: dict) -> float:
    return (s["caption_en_kept"] or 0) - 2 * s["junk_share_of_kept"] - 0.25 * (s["weak_kept"] or 0)


def tune(rows: list[dict], lid) -> tuple[dict, dict]:
    """Best grid point on `rows` (targets met first, then the objective)."""
    best = None
    keys = list(GRID)
    for values in itertools.product(*(GRID[k] for k in keys)):
        params = dict(zip(keys, values))
        s = score(decide(TextCleaner(language_identifier=lid, **params), rows))
        key = (meets_targets(s), objective(s))
        if best is None or key > best[0]:
            best = (key, params, s)
    return best[1], best[2]


def throughput(cleaner: TextCleaner, rows: list[dict], seconds: float, batch_size: int = 0) -> float:
    """Texts per second of this process's CPU time (one core); `batch_size` > 0 uses `clean_batch`."""
    texts = [(r["text"], r["attr"], r["site_names"]) for r in rows]
    for text, source, names in texts[:200]:
        cleaner.clean(text, source=source, site_names=names)
    done, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        if batch_size:
            for i in range(0, len(texts), batch_size):
                cleaner.clean_batch(texts[i:i + batch_size])
        else:
            for text, source, names in texts:
                cleaner.clean(text, source=source, site_names=names)
        done += len(texts)
    return done / (time.process_time() - start)


def cpu_calibration() -> float:
    """CPU seconds for a fixed pure-Python loop: compare throughput figures across machines and loads."""
    start = time.process_time()
    sum(range(10_000_000))
    return round(time.process_time() - start, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("LAIT_ALTS", DEFAULT_DATA)))
    parser.add_argument("--seconds", type=float, default=5.0, help="CPU seconds per throughput figure")
    parser.add_argument("--no-tune", dest="tune", action="store_false", help="skip the generalisation check")
    args = parser.parse_args()
    if not args.data.exists():
        print(json.dumps({"skipped": f"{args.data} not found (the shared data beside the repo)"}))
        return 0
    rows = load_rows(args.data)
    cleaner = TextCleaner().load()
    report: dict = {"data": str(args.data), "defaults": score(decide(cleaner, rows))}
    report["per_repository"] = {}
    for repo in sorted({r["source_repo"] for r in rows}):
        s = score(decide(cleaner, [r for r in rows if r["source_repo"] == repo]))
        report["per_repository"][repo] = {k: s[k] for k in ("rows", "kept_share", "junk_share_of_kept")}
    report["per_attribute"] = {}
    for attr in sorted({r["attr"] for r in rows}):
        s = score(decide(cleaner, [r for r in rows if r["attr"] == attr]))
        report["per_attribute"][attr] = {k: s[k] for k in ("rows", "kept_share", "junk_share_of_kept")}
    if args.tune:
        check = {}
        for tuned_on, held_out in (("A", "B"), ("B", "A")):
            train = [r for r in rows if r["source_repo"] in HALVES[tuned_on]]
            test = [r for r in rows if r["source_repo"] in HALVES[held_out]]
            params, train_score = tune(train, cleaner.language_identifier)
            test_score = score(decide(TextCleaner(language_identifier=cleaner.language_identifier, **params), test))
            defaults_test = score(decide(cleaner, test))
            check[f"tuned_on_{tuned_on}"] = {
                "repositories": {"tuned_on": HALVES[tuned_on], "held_out": HALVES[held_out]},
                "params": params,
                "tuned_half": {k: train_score[k] for k in ("caption_en_kept", "junk_dropped", "junk_share_of_kept",
                                                             "weak_kept")},
                "held_out_half": {k: test_score[k] for k in ("caption_en_kept", "junk_dropped",
                                                             "junk_share_of_kept", "weak_kept")},
                "held_out_half_with_defaults": {k: defaults_test[k] for k in (
                    "caption_en_kept", "junk_dropped", "junk_share_of_kept", "weak_kept")},
            }
        report["generalisation"] = check
    report["throughput_texts_per_cpu_second"] = {
        "batched_rules_and_fasttext": round(throughput(cleaner, rows, args.seconds, batch_size=256)),
        "one_by_one_rules_and_fasttext": round(throughput(cleaner, rows, args.seconds)),
        "rules_only": round(throughput(TextCleaner(min_language_score=-1).load(), rows, args.seconds)),
        "cpu_calibration_seconds_for_sum_range_1e7": cpu_calibration(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
