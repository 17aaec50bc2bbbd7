"""`--runner direct` runs in this process on Beam's Fn API runner and never tries Prism."""

import logging

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from lait.pipeline.run import run_to_completion


def test_direct_runs_in_process_without_prism(tmp_path, caplog):
    out = tmp_path / "doubled"

    def build(pipeline):
        (pipeline | beam.Create([1, 2, 3]) | beam.Map(lambda x: str(2 * x))
         | beam.io.WriteToText(str(out), shard_name_template=""))

    with caplog.at_level(logging.INFO, logger="apache_beam"):
        run_to_completion(PipelineOptions(["--runner", "direct"]), build)
    assert sorted(out.read_text().split()) == ["2", "4", "6"]
    # Beam's DirectRunner logs its try of Prism (a binary it downloads) before falling back.
    assert not [r.getMessage() for r in caplog.records if "prism" in r.getMessage().lower()]
