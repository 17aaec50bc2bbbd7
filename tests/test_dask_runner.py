"""lait's fixes to Beam's Dask runner (lait/pipeline/dask_patches.py), on a real dask LocalCluster.

Each test counts, in files the worker processes append to, how often a step really ran:
the results alone cannot show work done twice.
"""

from __future__ import annotations

import json

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.window import GlobalWindows

from lait.pipeline.dask_runner import local_cluster
from lait.pipeline.run import run_to_completion

pytest.importorskip("dask.distributed")


class _Log:
    """A picklable callable that appends one line per call to a file (workers are other processes)."""

    def __init__(self, path, tag: str):
        self.path, self.tag = str(path), tag

    def __call__(self, element):
        with open(self.path, "a") as f:
            f.write(f"{self.tag}\n")
        return element


class _LifecycleLog(beam.DoFn):
    """Appends "setup" when a worker sets it up (where a real stage loads its models) and
    "bundle" at each bundle's start, to a file (workers are other processes)."""

    def __init__(self, path):
        self.path = str(path)

    def _log(self, event: str) -> None:
        with open(self.path, "a") as f:
            f.write(f"{event}\n")

    def setup(self):
        self._log("setup")

    def start_bundle(self):
        self._log("bundle")

    def process(self, element):
        yield element


def _run_on_dask(build, *flags: str) -> None:
    with local_cluster(1) as address:
        run_to_completion(PipelineOptions(["--runner", "dask", "--dask_client_address", address, *flags]), build)


def _lines(path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_steps_upstream_of_a_side_input_run_once(tmp_path):
    log, out = tmp_path / "calls.txt", tmp_path / "out.txt"

    def build(pipeline):
        values = pipeline | beam.Create(range(6)) | "Expensive" >> beam.Map(_Log(log, "expensive"))
        lookup = values | "AsPairs" >> beam.Map(lambda x: (x, x * x))
        squares = values | "Square" >> beam.Map(lambda x, table: table[x], table=beam.pvalue.AsDict(lookup))
        # Count.Globally reads a side input of its own (the default for an empty input).
        (squares | beam.combiners.Count.Globally()
         | beam.Map(lambda n: out.write_text(str(n))))

    _run_on_dask(build)
    assert out.read_text() == "6"
    # Beam's runner and Bag.map_partitions copy the side input's upstream: it ran 3 times.
    assert _lines(log) == ["expensive"] * 6


def test_flatten_merges_partitions_down_to_npartitions(tmp_path):
    log, out = tmp_path / "bundles.txt", tmp_path / "out.txt"

    def build(pipeline):
        parts = [pipeline | f"Create{i}" >> beam.Create(range(i * 10, i * 10 + 10)) for i in range(6)]
        merged = parts | beam.Flatten() | beam.ParDo(_LifecycleLog(log))
        merged | beam.combiners.Count.Globally() | beam.Map(lambda n: out.write_text(str(n)))

    _run_on_dask(build, "--dask_npartitions", "2")
    assert out.read_text() == "60"
    # Six Creates of 2 partitions each concatenate to 12; the ParDo after the Flatten gets 2.
    assert _lines(log).count("bundle") == 2


def test_a_step_that_gets_no_element_never_sets_up(tmp_path):
    used, unused, out = tmp_path / "used.txt", tmp_path / "unused.txt", tmp_path / "out.txt"

    def build(pipeline):
        values = pipeline | beam.Create(range(8))
        kept = values | "LoadsForSome" >> beam.ParDo(_LifecycleLog(used))
        none = values | beam.Filter(lambda x: x > 100) | "LoadsForNone" >> beam.ParDo(_LifecycleLog(unused))
        (kept, none) | beam.Flatten() | beam.combiners.Count.Globally() | beam.Map(lambda n: out.write_text(str(n)))

    _run_on_dask(build, "--dask_npartitions", "2")
    assert out.read_text() == "8"
    assert "setup" in _lines(used)
    # Before the fix each empty partition was a bundle: the step loaded its models for nothing.
    assert _lines(unused) == []


class _SumAndParts(beam.CombineFn):
    """A sum that also counts the accumulators merged into it: one per partition that was
    combined before the shuffle, or a single one when every element was shuffled."""

    def create_accumulator(self):
        return 0, 1

    def add_input(self, accumulator, value):
        return accumulator[0] + value, accumulator[1]

    def merge_accumulators(self, accumulators):
        accumulators = list(accumulators)
        return sum(a[0] for a in accumulators), sum(a[1] for a in accumulators)

    def extract_output(self, accumulator):
        return accumulator


def test_combine_per_key_combines_each_partition_before_the_shuffle(tmp_path):
    out = tmp_path / "out.txt"

    def build(pipeline):
        (pipeline | beam.Create([("k", i) for i in range(40)]) | beam.CombinePerKey(_SumAndParts())
         | beam.Map(lambda kv: out.write_text(f"{kv[1][0]} {kv[1][1]}")))

    _run_on_dask(build, "--dask_npartitions", "4")
    total, parts = map(int, out.read_text().split())
    assert total == sum(range(40))
    # One accumulator per partition crossed the shuffle (Beam's own translation sends all 40 elements).
    assert parts == 4


class _OddsApart(beam.DoFn):
    """Even numbers to the main output, odd ones to "odd", and one "bundles" value per bundle."""

    def process(self, n):
        yield n if n % 2 == 0 else TaggedOutput("odd", n)

    def finish_bundle(self):
        yield TaggedOutput("bundles", GlobalWindows.windowed_value(1))


def test_each_output_tag_gets_its_own_values(tmp_path):
    out = tmp_path / "out.json"

    def build(pipeline):
        split = pipeline | beam.Create(range(10)) | beam.ParDo(_OddsApart()).with_outputs("odd", "bundles", main="even")
        listed = [split[tag] | f"List_{tag}" >> beam.combiners.ToList() | f"Name_{tag}" >> beam.Map(
            lambda values, tag=tag: (tag, sorted(values))) for tag in ("even", "odd", "bundles")]
        (listed | beam.Flatten() | "All" >> beam.combiners.ToList()
         | beam.Map(lambda pairs: out.write_text(json.dumps(dict(pairs)))))

    _run_on_dask(build, "--dask_npartitions", "2")
    outputs = json.loads(out.read_text())
    # Beam's own translation handed every consumer all fifteen values, the tagged ones still wrapped.
    assert outputs["even"] == [0, 2, 4, 6, 8]
    assert outputs["odd"] == [1, 3, 5, 7, 9]
    assert outputs["bundles"] == [1, 1]
