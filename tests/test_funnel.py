"""The funnel's arithmetic and its table, on counts shaped like a real run's."""

import base64
import io
import json

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pvalue import TaggedOutput
from PIL import Image
from sklearn.datasets import load_sample_image

from lait.pipeline.funnel import (
    STAGES,
    Reject,
    StageDoFn,
    WriteRejects,
    _sample_key,
    _with_thumbnail,
    apply_stage,
    format_funnel,
    funnel_from_counts,
    reconcile,
)
from lait.pipeline.in_process_runner import InProcessRunner


def _counts(stage, n_in, n_out, **dropped):
    rows = [((stage, "in"), n_in), ((stage, "out"), n_out)]
    rows += [((stage, f"dropped.{reason}"), n) for reason, n in dropped.items()]
    return rows


def test_funnel_sums_counts_from_several_bundles_in_stage_order():
    counts = _counts("ParsePages", 60, 40, language=20) + _counts("ParsePages", 40, 30, language=8, parse_error=2)
    counts += _counts("ReadCrawl", 130, 100, not_response=30)
    funnel = funnel_from_counts(counts)
    assert [s["name"] for s in funnel["stages"]] == STAGES
    parse = funnel["stages"][1]
    assert parse == {"name": "ParsePages", "in": 100, "out": 70, "dropped": {"language": 28, "parse_error": 2}}


def test_reconcile_finds_lost_records_within_and_between_stages():
    ok = funnel_from_counts(_counts("ReadCrawl", 10, 8, not_response=2) + _counts("ParsePages", 6, 5, language=1)
                            + _counts("DetectDominantImage", 5, 5))
    assert [p for p in reconcile(ok) if p.startswith(("ParsePages", "DetectDominantImage"))] == []
    leaking = funnel_from_counts(_counts("ParsePages", 6, 4, language=1) + _counts("DetectDominantImage", 3, 3))
    problems = reconcile(leaking)
    assert any(p.startswith("ParsePages: in 6 != out 4 + dropped 1") for p in problems)
    assert any(p.startswith("DetectDominantImage: in 3 != ParsePages out 4") for p in problems)


def test_reject_entry_keeps_what_a_person_needs_and_a_thumbnail_not_bytes():
    photo = io.BytesIO()
    Image.fromarray(load_sample_image("flower.jpg")).save(photo, "JPEG")
    record = {"page_url": "https://a.example/p", "image_url": "https://a.example/i.jpg",
              "image_bytes": photo.getvalue(), "text": "A red flower", "candidates": [1, 2]}
    entry = Reject("too_small", record, "120x80").to_entry("FilterImages")
    assert entry["stage"] == "FilterImages" and entry["reason"] == "too_small"
    assert entry["image_url"] == record["image_url"] and entry["detail"] == "120x80"
    assert "candidates" not in entry
    written = _with_thumbnail(entry)
    assert "image_bytes" not in written
    with Image.open(io.BytesIO(base64.b64decode(written["thumbnail"]))) as thumb:
        assert max(thumb.size) == 128


def test_table_lists_every_stage_and_reason():
    table = format_funnel(funnel_from_counts(_counts("FilterImages", 9, 4, too_small=3, not_natural=2)))
    line = next(line for line in table.splitlines() if line.startswith("FilterImages"))
    assert line.split()[1:4] == ["9", "4", "5"] and "too_small 3" in line and "not_natural 2" in line


class _KeepEvenFn(StageDoFn):
    stage = "ParsePages"

    def run(self, n):
        if n % 2:
            yield Reject("odd", {"url": f"https://a.example/{n}"})
        elif n % 10 == 0:
            yield TaggedOutput("tens", n)
        else:
            yield n


def test_stage_counts_are_summed_per_bundle_not_sent_per_record(tmp_path):
    def collect(name):
        return beam.Map(lambda v, path=str(tmp_path / name): open(path, "a").write(json.dumps(v) + "\n"))

    with beam.Pipeline(runner=InProcessRunner(), options=PipelineOptions(["--runner", "DirectRunner"])) as pipeline:
        out = apply_stage(pipeline | beam.Create(range(1000)), "Parse", _KeepEvenFn(), outputs=("tens",))
        _ = out.main | "Kept" >> beam.combiners.Count.Globally() | "WriteKept" >> collect("kept")
        _ = out.counts | "WriteCounts" >> collect("counts")

    counts = [json.loads(line) for line in (tmp_path / "counts").read_text().splitlines()]
    assert funnel_from_counts(counts)["stages"][1] == {"name": "ParsePages", "in": 1000, "out": 500,
                                                     "dropped": {"odd": 500}}
    assert json.loads((tmp_path / "kept").read_text()) == 400  # the tens went to their own output
    # in, out and one drop reason per bundle: not 1,500 one-record counts.
    assert len(counts) <= 3 * 8


def test_rejects_are_sampled_per_bundle_as_if_all_at_once(tmp_path):
    entries = [Reject("odd" if n % 2 else "even", {"url": f"https://a.example/{n}"}).to_entry("ParsePages")
               for n in range(600)]
    with beam.Pipeline(runner=InProcessRunner(), options=PipelineOptions(["--runner", "DirectRunner"])) as pipeline:
        stages = [pipeline | f"Create{i}" >> beam.Create(entries[i::3]) | f"Spread{i}" >> beam.Reshuffle()
                  for i in range(3)]
        _ = stages | WriteRejects(str(tmp_path), 5)

    for reason in ("odd", "even"):
        lines = (tmp_path / "_rejects" / f"ParsePages.{reason}.jsonl").read_text().splitlines()
        everything = sorted((e for e in entries if e["reason"] == reason), key=_sample_key)
        assert [json.loads(line) for line in lines] == everything[-5:]
