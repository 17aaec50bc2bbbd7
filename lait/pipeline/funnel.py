"""The funnel: every stage counts records in, out and dropped per reason.

Counts travel as pipeline data, not only as Beam Metrics, so `_funnel.json` is the same
on every runner (some, like Dask, cannot be queried for metrics after a run). A stage's
DoFn subclasses :class:`StageDoFn` and writes only `run(element)`, yielding kept records
or :class:`Reject` values; the base class counts both per bundle, bumps Beam Metrics
as an extra view, and routes each reject to the `drops` output, from which `_rejects/`
keeps a deterministic sample per reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

from lait import progress
from lait.pipeline.thumbnails import thumbnail_base64

log = logging.getLogger(__name__)

# Stages in order of data flow; the funnel table follows this order.
STAGES = [
    "ReadCrawl", "ParsePages", "DetectDominantImage", "CleanText", "AcquireImages",
    "FilterImages", "ScoreRelevance", "Aggregate", "WriteShards",
]
IN, OUT = "in", "out"
MAIN, DROPS, COUNTS = "main", "drops", "counts"
# Keys of a record copied into its reject entry when present (bytes never are).
REJECT_KEYS = ("url", "page_url", "image_url", "text", "alt", "width", "height", "score",
               "nsfw_score", "face_score", "natural_score", "dominant_score", "warc_path", "warc_offset")


@dataclass
class Reject:
    """A dropped record: why, and what a person needs to see it."""

    reason: str
    record: dict = field(default_factory=dict)
    detail: str | None = None

    def to_entry(self, stage: str) -> dict:
        entry = {"stage": stage, "reason": self.reason}
        entry.update({k: self.record[k] for k in REJECT_KEYS if self.record.get(k) is not None})
        if self.record.get("image_bytes"):
            # Kept only until WriteRejects has sampled; it then becomes a small thumbnail.
            entry["image_bytes"] = self.record["image_bytes"]
        if self.detail:
            entry["detail"] = self.detail[:500]
        return entry


class StageDoFn(beam.DoFn):
    """Base DoFn of a funnel stage.

    Subclasses set `stage` and implement `run(element, ...)`, a generator of kept records,
    `Reject`s and, for extra outputs, `TaggedOutput(tag, record)`. `count_in` / `count_out`
    let a stage made of several DoFns count its input at the first and its output at the
    last; `count(key, n)` adds to any other counter (e.g. "in" when one element holds many
    records).

    Kept records are the main output; rejects and counts are the `drops` and `counts` tagged
    outputs (`apply_stage` declares them). The counts of a bundle are summed in the DoFn and
    emitted once, from `finish_bundle`: a handful of elements per bundle instead of one per
    record, and no combiner per stage.
    """

    stage: str = ""

    def __init__(self, count_in: bool = True, count_out: bool = True):
        self.count_in = count_in
        self.count_out = count_out

    def run(self, element: Any, *args, **kwargs) -> Iterable[Any]:
        raise NotImplementedError

    def start_bundle(self) -> None:
        self._counts: Counter = Counter()
        progress.watch(self)  # the live display reads the bundle's counts as they grow

    def count(self, key: str, n: int = 1) -> None:
        self._counts[key] += n

    def results_or_errors(self, function, items: list) -> list:
        """`function(items)`, one result per item; where the batch raises, each item alone, and an
        item that fails alone gives its exception: one bad record never takes its batch down."""
        try:
            return list(function(items))
        except Exception as error:  # noqa: BLE001 - whatever one record makes a model or decoder raise
            if len(items) == 1:
                return [error]
            log.warning("%s: a batch of %d failed (%s); trying them one by one", self.stage, len(items), error)
            return [self.results_or_errors(function, [item])[0] for item in items]

    def process(self, element, *args, **kwargs) -> Iterator[tuple]:
        counts = self._counts
        if self.count_in:
            counts[IN] += 1
        for result in self.run(element, *args, **kwargs):
            if isinstance(result, Reject):
                counts["dropped." + result.reason] += 1
                yield TaggedOutput(DROPS, result.to_entry(self.stage))
                continue
            if self.count_out:
                counts[OUT] += 1
            yield result

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for key, n in progress.commit(self.stage, self._counts).items():
            if n:
                # Beam Metrics are an extra view where the runner supports them; the funnel
                # itself comes from the data.
                Metrics.counter(self.stage, key).inc(n)
                yield TaggedOutput(COUNTS, GlobalWindows.windowed_value(((self.stage, key), n)))


@dataclass
class StageOutput:
    """What applying one funnel DoFn gives: kept records, reject entries, counts and extra outputs."""

    main: beam.PCollection
    drops: beam.PCollection
    counts: beam.PCollection
    extra: dict = field(default_factory=dict)


def apply_stage(pcoll: beam.PCollection, label: str, dofn: StageDoFn, *args,
                outputs: tuple[str, ...] = (), **kwargs) -> StageOutput:
    """`ParDo(dofn)` split into kept records, extra `outputs`, drops and counts.

    "in" is the number of elements of `pcoll` (when `dofn.count_in`), "out" the number of
    kept records in main and extra outputs (when `dofn.count_out`), each drop reason the
    number of rejects: summed per bundle by the DoFn and handed on as pipeline data.
    """
    routed = pcoll | label >> beam.ParDo(dofn, *args, **kwargs).with_outputs(DROPS, COUNTS, *outputs, main=MAIN)
    return StageOutput(routed[MAIN], routed[DROPS], routed[COUNTS], {tag: routed[tag] for tag in outputs})


class FunnelCollector:
    """Gathers the drops and counts of every stage of one pipeline."""

    def __init__(self) -> None:
        self.drops: list[beam.PCollection] = []
        self.counts: list[beam.PCollection] = []

    def add(self, out: StageOutput) -> beam.PCollection:
        self.drops.append(out.drops)
        self.counts.append(out.counts)
        return out.main


def funnel_from_counts(counts: Iterable[tuple[tuple[str, str], int]], stage_names: list[str] = STAGES) -> dict:
    """`{"stages": [{"name", "in", "out", "dropped": {reason: n}}]}` from summed counts, stages in `stage_names` order."""
    stages = {name: {"name": name, "in": 0, "out": 0, "dropped": {}} for name in stage_names}
    for (stage, key), n in counts:
        entry = stages.setdefault(stage, {"name": stage, "in": 0, "out": 0, "dropped": {}})
        if key in (IN, OUT):
            entry[key] += n
        elif key.startswith("dropped."):
            reason = key[len("dropped."):]
            entry["dropped"][reason] = entry["dropped"].get(reason, 0) + n
    for entry in stages.values():
        entry["dropped"] = dict(sorted(entry["dropped"].items(), key=lambda kv: (-kv[1], kv[0])))
    return {"stages": list(stages.values())}


def reconcile(funnel: dict) -> list[str]:
    """Problems with a funnel: a stage whose in != out + dropped, or whose in != previous out."""
    problems = []
    previous = None
    for entry in funnel["stages"]:
        dropped = sum(entry["dropped"].values())
        if entry["in"] != entry["out"] + dropped:
            problems.append(f"{entry['name']}: in {entry['in']} != out {entry['out']} + dropped {dropped}")
        if previous is not None and previous["name"] != "ReadCrawl" and entry["in"] != previous["out"]:
            problems.append(f"{entry['name']}: in {entry['in']} != {previous['name']} out {previous['out']}")
        previous = entry
    return problems


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def format_funnel(funnel: dict) -> str:
    """The funnel as a plain-text table, one line per stage and one per drop reason."""
    lines = [f"{'stage':<22}{'in':>10}{'out':>10}{'dropped':>10}  reasons"]
    for entry in funnel["stages"]:
        dropped = sum(entry["dropped"].values())
        reasons = ", ".join(f"{r} {n} ({_percent(n, entry['in'])})" for r, n in entry["dropped"].items())
        lines.append(f"{entry['name']:<22}{entry['in']:>10}{entry['out']:>10}{dropped:>10}  {reasons}")
    return "\n".join(lines)


def _write_text(path: str, text: str) -> None:
    with FileSystems.create(path) as f:
        f.write(text.encode("utf-8"))


class WriteFunnel(beam.PTransform):
    """Sums all stages' counts and writes `OUTPUT/_funnel.json` from inside the pipeline."""

    def __init__(self, output_dir: str, stage_names: list[str] = STAGES):
        super().__init__()
        self.output_dir = output_dir
        self.stage_names = stage_names

    def _write(self, counts: list) -> str:
        path = FileSystems.join(self.output_dir, "_funnel.json")
        _write_text(path, json.dumps(funnel_from_counts(counts, self.stage_names), indent=2) + "\n")
        return path

    def expand(self, counts: beam.PCollection) -> beam.PCollection:
        return (
            counts
            | "SumPerKey" >> beam.CombinePerKey(sum)
            | "ToList" >> beam.combiners.ToList()
            | "Write" >> beam.Map(self._write)
        )


def _sample_key(entry: dict) -> str:
    """Deterministic sampling order: the same run keeps the same rejects."""
    described = {k: v for k, v in entry.items() if k != "image_bytes"}
    return hashlib.sha1(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()


def _with_thumbnail(entry: dict) -> dict:
    entry = dict(entry)
    thumbnail = thumbnail_base64(entry.pop("image_bytes", None))
    if thumbnail:
        entry["thumbnail"] = thumbnail
    return entry


def _sampler(per_reason: int) -> beam.combiners.TopCombineFn:
    """The rejects kept of one (stage, reason): the `per_reason` largest `_sample_key`s."""
    return beam.combiners.TopCombineFn(per_reason, key=_sample_key)


class SampleEachBundle(beam.DoFn):
    """Of each bundle's reject entries, what `_sampler` keeps per (stage, reason).

    The final sample, `_sampler` over all entries, is among these, so sampling every bundle
    first changes no sample. It runs beside the stage that dropped them (the key hashes each
    entry: on the shared WARC files that came after the last stage, for all ~55,000 drops at
    once), and entries left out never carry their image bytes through the shuffle.
    """

    def __init__(self, per_reason: int):
        self.per_reason = per_reason

    def setup(self) -> None:
        self._sampler = _sampler(self.per_reason)

    def start_bundle(self) -> None:
        self._kept: dict[tuple, Any] = {}

    def process(self, entry: dict) -> None:
        reason = (entry["stage"], entry["reason"])
        kept = self._kept.get(reason) or self._sampler.create_accumulator()
        self._kept[reason] = self._sampler.add_input(kept, entry)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for kept in self._kept.values():
            for entry in self._sampler.extract_output(kept):
                yield GlobalWindows.windowed_value(entry)
        self._kept.clear()


class SampleRejects(beam.PTransform):
    """Every stage's drops (a list of PCollections, or one) -> `((stage, reason), [entries])`, at most
    `per_reason` entries each: each input is sampled per bundle where it is made, then all together.

    Sampling a sample changes nothing: the entries a resumed run's parts kept, sampled again with
    the rest, are the sample of one uninterrupted run.
    """

    def __init__(self, per_reason: int):
        super().__init__()
        self.per_reason = per_reason

    def _extract_input_pvalues(self, pvalueish):
        # Beam's hook for a multi-input transform (Flatten's own): a list of PCollections is
        # the inputs, where by default only a tuple is and a list becomes a Create of it.
        inputs = (pvalueish,) if isinstance(pvalueish, beam.PCollection) else tuple(pvalueish)
        return inputs, inputs

    def expand(self, drops: tuple[beam.PCollection, ...]) -> beam.PCollection:
        sampled = [pcoll | f"SampleBundles{i}" >> beam.ParDo(SampleEachBundle(self.per_reason))
                   for i, pcoll in enumerate(drops)]
        return (
            sampled
            | "Flatten" >> beam.Flatten()
            | "KeyByReason" >> beam.Map(lambda e: ((e["stage"], e["reason"]), e))
            | "Sample" >> beam.CombinePerKey(_sampler(self.per_reason))
        )


class WriteRejects(beam.PTransform):
    """Keeps up to `per_reason` reject entries per (stage, reason) in `OUTPUT/_rejects/STAGE.REASON.jsonl`.

    Its input is every stage's drops (a list of PCollections, or one), sampled by :class:`SampleRejects`.
    """

    def __init__(self, output_dir: str, per_reason: int):
        super().__init__()
        self.output_dir = output_dir
        self.per_reason = per_reason

    def _write(self, keyed: tuple) -> str:
        (stage, reason), entries = keyed
        entries = [_with_thumbnail(e) for e in sorted(entries, key=_sample_key)]
        path = FileSystems.join(self.output_dir, "_rejects", f"{stage}.{reason}.jsonl")
        _write_text(path, "".join(json.dumps(e, ensure_ascii=False, default=str) + "\n" for e in entries))
        return path

    def _extract_input_pvalues(self, pvalueish):
        return SampleRejects._extract_input_pvalues(self, pvalueish)

    def expand(self, drops: tuple[beam.PCollection, ...]) -> beam.PCollection:
        return drops | "Sample" >> SampleRejects(self.per_reason) | "Write" >> beam.Map(self._write)
