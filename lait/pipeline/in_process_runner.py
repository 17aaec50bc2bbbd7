"""The runner behind `--runner direct`: Beam's in-process Fn API runner, without a first try of Prism.

Since Beam 2.68 the DirectRunner hands a batch pipeline to Prism first: it downloads Prism's
binary from GitHub, starts a job server and a worker pool, and falls back to the in-process
Fn API runner only where that fails. lait runs offline and nothing of it may download at run
time; where the download fails (offline, on CI) the attempt still translates the whole
pipeline to its proto form once more for nothing. Beam's own advice to pipelines that must
stay in process is to pin the Fn API runner (apache/beam#34612); this does so the way the
DirectRunner builds it, with the pipeline options provisioned to its workers, so
`--direct_num_workers` and `--direct_running_mode` work as before.
"""

from __future__ import annotations

from apache_beam.runners.runner import PipelineResult, PipelineRunner

# --runner values that ask for a local, in-process run.
IN_PROCESS_RUNNERS = ("DirectRunner", "SwitchingDirectRunner")


class InProcessRunner(PipelineRunner):
    """Beam's DirectRunner for batch pipelines, minus Prism (see the module docstring)."""

    def run_pipeline(self, pipeline, options) -> PipelineResult:
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.portability.fn_api_runner import fn_runner
        from apache_beam.runners.portability.portable_runner import JobServiceHandle

        encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
        provision = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
        return fn_runner.FnApiRunner(provision_info=provision).run_pipeline(pipeline, options)
