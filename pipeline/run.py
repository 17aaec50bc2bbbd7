"""Build and run the LAIT pipeline.

    ReadCrawl -> ParsePages -> DetectDominantImage -> CleanText -> AcquireImages
      -> FilterImages -> ScoreRelevance -> Aggregate -> WriteShards

Each stage is one PTransform from its own module; every stage hands its drops and counts
to a `FunnelCollector`, and the pipeline itself writes `_funnel.json` and `_rejects/`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from pipeline.acquire_images import AcquireImages
from pipeline.aggregate import Aggregate, ImagesPerText
from pipeline.clean_text import CleanText
from pipeline.dask_runner import DASK_RUNNER
from pipeline.dask_runner import install_fixes as install_dask_fixes
from pipeline.dominant_image import DetectDominantImage
from pipeline.filter_images import FilterImages
from pipeline.funnel import FunnelCollector, WriteFunnel, WriteRejects
from pipeline.options import LaitOptions
from pipeline.parse_pages import ParsePages
from pipeline.read_crawl import ReadCrawl
from pipeline.score_relevance import ScoreRelevance
from pipeline.write_shards import WriteShards

# Short names for runners; any other value is handed to Beam as it is.
RUNNER_ALIASES = {
    "direct": "DirectRunner",
    "dask": DASK_RUNNER,
    "dataflow": "DataflowRunner",
    "flink": "FlinkRunner",
    "spark": "SparkRunner",
}
OWN_FILES = ("_funnel.json", "_run_config.json")


def build_pipeline(pipeline: beam.Pipeline, options: LaitOptions) -> None:
    """Add every stage of the LAIT recipe to `pipeline`, reading `options.input`, writing `options.output`."""
    funnel = FunnelCollector()
    crawl = pipeline | "ReadCrawl" >> ReadCrawl(options.input, progress=options.progress)
    funnel.add(crawl)
    pages = funnel.add(crawl.pages | "ParsePages" >> ParsePages(options))
    pairs = funnel.add(pages | "DetectDominantImage" >> DetectDominantImage(options))
    pairs = funnel.add(pairs | "CleanText" >> CleanText(options))
    described = pairs | "ImagesPerText" >> ImagesPerText()
    pairs = funnel.add(pairs | "AcquireImages" >> AcquireImages(options, crawl.images))
    pairs = funnel.add(pairs | "FilterImages" >> FilterImages(options))
    pairs = funnel.add(pairs | "ScoreRelevance" >> ScoreRelevance(options))
    pairs = funnel.add(pairs | "Aggregate" >> Aggregate(options, described))
    shards = funnel.add(pairs | "WriteShards" >> WriteShards(options.output, options.max_shard_bytes))
    funnel_file = funnel.counts | "FlattenCounts" >> beam.Flatten() | "WriteFunnel" >> WriteFunnel(options.output)
    reject_files = funnel.drops | "WriteRejects" >> WriteRejects(options.output, options.rejects_per_reason)
    # One last step downstream of every sink: runners that compute only the final step's
    # ancestors (Beam's Dask runner does) still write everything.
    (shards, funnel_file, reject_files) | "AllWrites" >> beam.Flatten() | "Done" >> beam.combiners.Count.Globally()


def clear_previous_output(output_dir: str) -> None:
    """Delete what an earlier run wrote to `output_dir` (only lait's own files)."""
    patterns = [FileSystems.join(output_dir, "shard-*.parquet"), FileSystems.join(output_dir, "_rejects", "*")]
    patterns += [FileSystems.join(output_dir, name) for name in OWN_FILES]
    stale = [m.path for result in FileSystems.match(patterns) for m in result.metadata_list]
    if stale:
        FileSystems.delete(stale)


def save_run_config(options: LaitOptions) -> None:
    config = {k: v for k, v in options.view_as(LaitOptions).get_all_options(drop_default=False).items()
              if k in vars(options.view_as(LaitOptions))}
    with FileSystems.create(FileSystems.join(options.output, "_run_config.json")) as f:
        f.write((json.dumps(config, indent=2, sort_keys=True, default=str) + "\n").encode())


class ReusedViews(PipelineOptions):
    """Pipeline options that hand out one view per options class instead of a new one per call.

    Beam asks the pipeline's options for a view (`view_as(TypeOptions)`...) some 1,600 times
    while it builds and translates the LAIT pipeline, and each new view parses every flag
    again: 1.4 s of the client's time before a cluster gets its first task. Views of one
    options object share its values, so a reused view reads and writes the same options.
    """

    def view_as(self, cls):
        # Through __dict__: PipelineOptions answers attribute lookups from its option values.
        views = self.__dict__.setdefault("_views", {})
        if cls not in views:
            views[cls] = super().view_as(cls)
        return views[cls]


def run_to_completion(pipeline_options: PipelineOptions, build: Callable[[beam.Pipeline], None]) -> None:
    """Build a pipeline with `build(pipeline)` and run it to the end on the chosen runner.

    The runner defaults to the in-process DirectRunner (never Beam's Prism, which downloads
    a binary); short names from RUNNER_ALIASES are expanded; Dask gets lait's translation
    fixes and its client connection is closed before a local cluster goes away.
    """
    standard = pipeline_options.view_as(StandardOptions)
    standard.runner = RUNNER_ALIASES.get((standard.runner or "direct").lower(), standard.runner)
    on_dask = standard.runner == DASK_RUNNER
    if on_dask:
        install_dask_fixes()
    pipeline = beam.Pipeline(options=pipeline_options.view_as(ReusedViews))
    build(pipeline)
    # Beam sends a pipeline for a runner without the Fn API (Dask) through a test round trip
    # to its proto form and back, which pickles and unpickles every DoFn: 1.6 s of the
    # client's 4 s before the first task on the shared WARC files, while the workers wait.
    # Dask pickles the DoFns itself when the graph is submitted.
    result = pipeline.run(test_runner_api=False if on_dask else "AUTO")
    try:
        result.wait_until_finish()
    finally:
        client = getattr(result, "client", None)
        if client is not None:
            client.close()


def read_funnel(output_dir: str) -> dict:
    with FileSystems.open(FileSystems.join(output_dir, "_funnel.json")) as f:
        return json.loads(f.read())


def run(pipeline_options: PipelineOptions, build=build_pipeline) -> dict:
    """Run `build(pipeline, options)` to completion; returns the funnel read back from `_funnel.json`.

    `build` adds the transforms (default: the LAIT pipeline); `lait import-pairs` passes its own.
    """
    options = pipeline_options.view_as(LaitOptions)
    if not FileSystems.exists(options.output):
        FileSystems.mkdirs(options.output)
    clear_previous_output(options.output)
    started = time.time()
    run_to_completion(pipeline_options, lambda pipeline: build(pipeline, options))
    save_run_config(options)
    funnel = read_funnel(options.output)
    funnel["seconds"] = round(time.time() - started, 2)
    return funnel
