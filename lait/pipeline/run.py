"""Build and run the LAIT pipeline.

    ReadCrawl -> ParsePages -> DetectDominantImage -> CleanText -> AcquireImages
      -> FilterImages -> ScoreRelevance -> Aggregate -> WriteShards

Each stage is one PTransform from its own module; every stage hands its drops and counts
to a `FunnelCollector`, and the pipeline itself writes `_funnel.json` and `_rejects/`.

A run is two kinds of Beam pipeline, so that it can be resumed (`--resume`):

1. Parts. The input files, sorted, are cut into groups of `--files_per_part`; each group is
   one pipeline, ReadCrawl -> ParsePages -> DetectDominantImage -> CleanText, that saves the
   described pairs, the crawl's image records, its stages' counts and a sample of its drops
   in `OUTPUT/_tmp-ID/parts/part-NNNNN/`, then `_DONE.json` as its last step. These stages
   see one page at a time, so a part's result depends on its own files only.
2. Assemble. One pipeline reads every part: AcquireImages -> FilterImages -> ScoreRelevance
   -> Aggregate -> WriteShards over all pairs and all image records at once (a page's image
   may be recorded in another file; duplicates and shared texts span the whole crawl), and
   the funnel and rejects from the parts' and its own. It writes to `_tmp-ID/final/`.

The corpus is then moved into `OUTPUT` by :func:`lait.pipeline.output_dir.commit`. The run id is a
hash of the input files and every option that changes the result, so `--resume` continues
only a run of the same inputs and options, and its corpus is the one an uninterrupted run
gives: the same parts, assembled the same way.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import math
import time
from collections.abc import Callable
from functools import partial

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from lait import progress, storage
from lait.errors import UsageError
from lait.pipeline import output_dir as out
from lait.pipeline.acquire_images import AcquireImages
from lait.pipeline.aggregate import Aggregate, ImagesPerText
from lait.pipeline.clean_text import CleanText
from lait.pipeline.dask_runner import DASK_RUNNER
from lait.pipeline.dask_runner import install_fixes as install_dask_fixes
from lait.pipeline.dataset_card import write_card
from lait.pipeline.dominant_image import DetectDominantImage
from lait.pipeline.filter_images import FilterImages
from lait.pipeline.funnel import FunnelCollector, SampleRejects, WriteFunnel, WriteRejects
from lait.pipeline.in_process_runner import IN_PROCESS_RUNNERS, InProcessRunner
from lait.pipeline.options import MAX_PART_BYTES, MIN_PART_BYTES, PARTS, LaitOptions
from lait.pipeline.parse_pages import ParsePages
from lait.pipeline.read_crawl import ReadCrawl, expand_patterns
from lait.pipeline.score_relevance import ScoreRelevance
from lait.pipeline.write_shards import WriteShards

# Short names for runners; any other value is handed to Beam as it is.
RUNNER_ALIASES = {
    "direct": "DirectRunner",
    "dask": DASK_RUNNER,
    "dataflow": "DataflowRunner",
    "flink": "FlinkRunner",
    "spark": "SparkRunner",
}
# Options that change where or how a run goes, not what it writes: left out of the run id.
NOT_IN_RUN_ID = ("output", "overwrite", "resume", "progress")


def build_part(pipeline: beam.Pipeline, options: LaitOptions, files: list[str], part: str) -> None:
    """The per-page stages over `files`, saved in the folder `part` with `_DONE.json` last."""
    funnel = FunnelCollector()
    crawl = pipeline | "ReadCrawl" >> ReadCrawl(files, progress=options.progress)
    funnel.add(crawl)
    pages = funnel.add(crawl.pages | "ParsePages" >> ParsePages(options))
    pairs = funnel.add(pages | "DetectDominantImage" >> DetectDominantImage(options))
    pairs = funnel.add(pairs | "CleanText" >> CleanText(options))
    saved = [
        pairs | "SavePairs" >> beam.ParDo(out.WriteRecordsFn(part, "pairs")),
        crawl.images | "SaveImages" >> beam.ParDo(out.WriteRecordsFn(part, "images")),
        (funnel.drops
         | "SampleRejects" >> SampleRejects(options.rejects_per_reason)
         | "RejectEntries" >> beam.FlatMap(lambda keyed: keyed[1])
         | "SaveRejects" >> beam.ParDo(out.WriteRecordsFn(part, "rejects"))),
        (funnel.counts
         | "FlattenCounts" >> beam.Flatten()
         | "SumCounts" >> beam.CombinePerKey(sum)
         | "TagCounts" >> beam.Map(lambda kv: ("count", kv))),
    ]
    # The marker is the one last step, downstream of every write (and runners that compute only
    # the final step's ancestors, as Beam's Dask runner does, still write everything).
    (saved
     | "AllWrites" >> beam.Flatten()
     | "Written" >> beam.combiners.ToList()
     | "MarkDone" >> beam.Map(lambda written: out.write_done(part, files, written)))


def build_assemble(pipeline: beam.Pipeline, options: LaitOptions, parts: list[tuple[str, dict]], output: str,
                   journal: str | None = None) -> None:
    """The stages that see the whole crawl, over every part's saved records; the corpus goes to `output`.

    Downloads are saved in (and, on a resumed run, read back from) the folder `journal`.
    """
    def saved(kind: str) -> list[str]:
        return [out.join(folder, name) for folder, done in parts for name in done["files"].get(kind, [])]

    funnel = FunnelCollector()
    pairs = pipeline | "ReadPairs" >> out.ReadRecords(saved("pairs"))
    images = pipeline | "ReadImages" >> out.ReadRecords(saved("images"))
    funnel.drops.append(pipeline | "ReadRejects" >> out.ReadRecords(saved("rejects")))
    part_counts = [((stage, key), n) for _, done in parts for stage, key, n in done["counts"]]
    funnel.counts.append(pipeline | "PartCounts" >> beam.Create(part_counts))
    described = pairs | "ImagesPerText" >> ImagesPerText()
    pairs = funnel.add(pairs | "AcquireImages" >> AcquireImages(options, images, journal))
    pairs = funnel.add(pairs | "FilterImages" >> FilterImages(options))
    pairs = funnel.add(pairs | "ScoreRelevance" >> ScoreRelevance(options))
    pairs = funnel.add(pairs | "Aggregate" >> Aggregate(options, described))
    shards = funnel.add(pairs | "WriteShards" >> WriteShards(output, options.max_shard_bytes))
    funnel_file = funnel.counts | "FlattenCounts" >> beam.Flatten() | "WriteFunnel" >> WriteFunnel(output)
    reject_files = funnel.drops | "WriteRejects" >> WriteRejects(output, options.rejects_per_reason)
    # One last step downstream of every sink: runners that compute only the final step's
    # ancestors (Beam's Dask runner does) still write everything.
    (shards, funnel_file, reject_files) | "AllWrites" >> beam.Flatten() | "Done" >> beam.combiners.Count.Globally()


def option_names() -> list[str]:
    """Every option `LaitOptions` defines, by its attribute name."""
    parser = argparse.ArgumentParser(add_help=False)
    LaitOptions._add_argparse_args(parser)
    return sorted({action.dest for action in parser._actions})


def option_values(options: LaitOptions) -> dict:
    return {name: getattr(options, name, None) for name in option_names()}


def split_parts(files: list[str], files_per_part: int, sizes: list[int] | None = None) -> list[list[str]]:
    """The sorted input files cut into parts of `files_per_part` files (0: by bytes, see PARTS).

    `sizes` are the files' sizes in bytes (read with :func:`input_sizes` when not given).
    """
    if files_per_part < 0:
        raise UsageError(f"--files_per_part must be 0 (automatic) or more, got {files_per_part}")
    if files_per_part:
        return [files[i:i + files_per_part] for i in range(0, len(files), files_per_part)]
    sizes = input_sizes(files) if sizes is None else sizes
    target = min(MAX_PART_BYTES, max(MIN_PART_BYTES, math.ceil(sum(sizes) / PARTS)))
    parts: list[list[str]] = []
    filled = target
    for path, size in zip(files, sizes, strict=True):
        if filled >= target:
            parts.append([])
            filled = 0
        parts[-1].append(path)
        filled += size
    return parts


def input_sizes(files: list[str]) -> list[int]:
    """Each file's size in bytes (0 where it cannot be read: ReadCrawl reports that file)."""
    sizes = []
    for path in files:
        try:
            sizes.append(storage.size(path))
        except OSError:
            sizes.append(0)
    return sizes


def run_id(options: LaitOptions, parts: list[list[str]]) -> str:
    """A short hash of the parts' input files and every option that changes what a run writes."""
    values = {k: v for k, v in option_values(options).items() if k not in NOT_IN_RUN_ID}
    text = json.dumps({"parts": parts, "options": values}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def lait_version() -> str:
    try:
        return importlib.metadata.version("lait")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def save_run_config(options: LaitOptions, directory: str, files: list[str], rid: str) -> dict:
    """`_run_config.json`: every lait option of the run, its input files and its run id; returns it."""
    config = {**option_values(options), "input_files": files, "run_id": rid, "lait": lait_version()}
    out.write_json(out.join(directory, "_run_config.json"), config)
    return config


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

    The runner defaults to the in-process DirectRunner, run by :class:`InProcessRunner` (never
    Beam's Prism, which downloads a binary); short names from RUNNER_ALIASES are expanded; Dask gets lait's translation
    fixes and its client connection is closed before a local cluster goes away.
    """
    standard = pipeline_options.view_as(StandardOptions)
    standard.runner = RUNNER_ALIASES.get((standard.runner or "direct").lower(), standard.runner)
    on_dask = standard.runner == DASK_RUNNER
    if on_dask:
        install_dask_fixes()
    runner = InProcessRunner() if standard.runner in IN_PROCESS_RUNNERS else None
    pipeline = beam.Pipeline(runner=runner, options=pipeline_options.view_as(ReusedViews))
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


def _note(message: str) -> None:
    progress.note(message)  # stderr, above the progress display; nothing with -q


def run_parts(pipeline_options: PipelineOptions, options: LaitOptions, parts: list[list[str]], tmp: str,
              resume: bool) -> list[tuple[str, dict]]:
    """Run every part not already done; returns `(folder, _DONE.json)` of each part, in order."""
    folders = [out.part_dir(tmp, i) for i in range(len(parts))]
    done = [out.read_done(folder, files) if resume else None for folder, files in zip(folders, parts, strict=True)]
    if resume:
        finished = sum(d is not None for d in done)
        _note(f"resuming: {finished} of {len(parts)} parts done "
              f"({sum(len(f) for f, d in zip(parts, done, strict=True) if d)} of {sum(map(len, parts))} input files)")
    for index, (folder, files) in enumerate(zip(folders, parts, strict=True)):
        if done[index] is not None:
            continue
        if len(parts) > 1:
            _note(f"part {index + 1} of {len(parts)}: {len(files)} input file{'s' if len(files) > 1 else ''}")
        out.delete_folder(folder)  # what a stopped attempt left
        run_to_completion(pipeline_options, partial(build_part, options=options, files=files, part=folder))
        done[index] = out.read_done(folder, files)
        if done[index] is None:
            raise RuntimeError(f"{folder}: the part's pipeline finished without writing its marker")
    return list(zip(folders, done, strict=True))


def run(pipeline_options: PipelineOptions, build: Callable | None = None) -> dict:
    """Run the LAIT pipeline (or `build(pipeline, options)`) to completion and commit its corpus.

    Returns the funnel read back from `_funnel.json`. `build` adds the transforms of another
    pipeline that writes to `options.output` (`lait import-pairs` passes its own): it runs as
    one pipeline, into the run's temporary folder, and cannot be resumed.
    """
    options = pipeline_options.view_as(LaitOptions)
    output = options.output
    if build is not None and options.resume:
        raise UsageError("--resume continues 'lait run' only: run again without it")
    files = expand_patterns(options.input) if build is None else list(options.input or [])
    parts = split_parts(files, options.files_per_part or 0) if build is None else [files]
    rid = run_id(options, parts)
    out.prepare_output(output)
    for tmp in out.finish_interrupted_commit(output):
        _note(f"finished moving the corpus of an earlier run that was stopped while it moved ({tmp})")
    previous = out.read_manifest(output)
    if options.resume and previous and previous.get("run_id") == rid:
        _note(f"{output} already holds the corpus of this run (same inputs and options): nothing to resume")
        out.delete_folder(out.tmp_dir(output, rid))  # a later attempt at the same run, stopped
        funnel = read_funnel(output)
        funnel["seconds"] = 0.0
        return funnel
    previous = out.check_previous(output, options.overwrite)
    tmp = out.tmp_dir(output, rid)
    resume = options.resume and out.read_json(out.join(tmp, out.RUN_FILE)) is not None
    if options.resume and not resume:
        others = [t for t in out.unfinished_runs(output) if t != tmp]
        _note(f"nothing to resume in {output}: starting from the beginning"
              + (f" ({others[0]} is a run with other inputs or options)" if others else ""))
    if not resume:
        out.delete_folder(tmp)  # an earlier attempt of this same run, started again
    out.write_json(out.join(tmp, out.RUN_FILE), {"run_id": rid, "parts": parts})
    final = out.join(tmp, out.FINAL)
    out.delete_folder(final)
    started = time.time()
    if build is None:
        done = run_parts(pipeline_options, options, parts, tmp, resume)
        journal = out.join(tmp, out.FETCHED)
        run_to_completion(pipeline_options, lambda pipeline: build_assemble(pipeline, options, done, final, journal))
    else:
        options.output = final
        try:
            run_to_completion(pipeline_options, lambda pipeline: build(pipeline, options))
        finally:
            options.output = output
    config = save_run_config(options, final, files, rid)
    funnel = read_funnel(final)
    write_card(final, funnel, config, "run" if build is None else "import-pairs")
    rows = funnel["stages"][-1]["out"] if funnel.get("stages") else None
    finished = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out.commit(output, tmp, {"run_id": rid, "rows": rows, "finished": finished, "lait": lait_version()}, previous)
    funnel["seconds"] = round(time.time() - started, 2)
    return funnel
