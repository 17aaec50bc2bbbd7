"""`LaitOptions`: every option of `lait run`, with the LAIT paper's defaults.

This class is the one source of truth for thresholds: the CLI's `--help`, the
pipeline's stages and the `_run_config.json` saved next to the shards all read it.
Flags it does not know pass through to Beam's own `PipelineOptions` (runner, workers...).
"""

from __future__ import annotations

import argparse
import os
import re

from apache_beam.options.pipeline_options import PipelineOptions

from lait import storage
from lait.errors import UsageError
from lait.pipeline import checks
from lait.pipeline.checks import FRACTION, Number, name_numbers

# With --files_per_part 0, a run is cut into about PARTS parts of equal bytes. A part is the
# unit a killed run redoes, and each costs a pipeline's set-up (translation, DoFn set-up, about
# a CPU second): parts under MIN_PART_BYTES cost more to set up than to redo, so small runs get
# fewer parts; none holds more than MAX_PART_BYTES (64 of Common Crawl's 1 GB WARC files).
PARTS = 8
MIN_PART_BYTES = 256 * 2**20
MAX_PART_BYTES = 64 * 2**30


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


class LaitOptions(PipelineOptions):
    """Options of the LAIT pipeline, grouped by stage (`lait run --help` lists them)."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        io = parser.add_argument_group("input and output")
        io.add_argument("--input", nargs="+", default=None, metavar="GLOB",
                        help="WARC/ARC files or glob patterns (.warc, .warc.gz, .arc, .arc.gz); local or any Beam filesystem")
        io.add_argument("--output", default=None, metavar="DIR",
                        help="output directory for Parquet shards, _funnel.json and _rejects/")
        io.add_argument("--max_shard_bytes", type=Number(int, 1), default=256 * 2**20,
                        help="upper bound on the image bytes in one shard (default 256 MiB); the shard count follows from it")
        io.add_argument("--rejects_per_reason", type=Number(int, 0), default=50,
                        help="how many dropped records to keep per stage and reason in _rejects/ (default 50)")
        io.add_argument("--progress", type=_bool, default=True,
                        help="show files and pages done and the rate on a terminal (default true)")
        io.add_argument("--overwrite", action="store_true", default=False,
                        help="replace the corpus already in --output, once this run has succeeded (only files lait "
                             "recorded writing are removed); without it a previous corpus there is an error")
        io.add_argument("--resume", action="store_true", default=False,
                        help="continue a run that was stopped, with the same inputs and options: input files whose "
                             "part is done (--output/_tmp-ID/parts/) are not read again")
        io.add_argument("--files_per_part", type=int, default=0, metavar="N",
                        help=f"input files per resumable part (default 0: about {PARTS} parts of equal bytes, "
                             f"{MIN_PART_BYTES // 2**20} MiB to {MAX_PART_BYTES // 2**30} GiB each)")

        page = parser.add_argument_group("ParsePages")
        page.add_argument("--languages", default="en",
                          help="comma-separated languages to keep, fastText lid.176 codes (default en)")
        page.add_argument("--min_language_score", type=FRACTION, default=0.5,
                          help="minimum fastText confidence for the page language (default 0.5)")
        page.add_argument("--max_page_bytes", type=Number(int, 1), default=5 * 2**20,
                          help="pages larger than this are dropped with reason page_too_large (default 5 MiB)")

        dom = parser.add_argument_group("DetectDominantImage")
        dom.add_argument("--min_dominant_score", type=FRACTION, default=0.5,
                         help="a page whose best image scores below this yields no image (default 0.5)")
        dom.add_argument("--dom_model", default=None,
                         help="dominant-image ranker file (default: the model shipped with lait)")

        text = parser.add_argument_group("CleanText")
        text.add_argument("--min_words", type=Number(int, 0), default=4,
                          help="shortest description kept, in words (default 4)")
        text.add_argument("--max_words", type=Number(int, 1, off=-1), default=50,
                          help="longest description kept, in words (default 50; LAIT's mean is about 13)")
        text.add_argument("--max_rare_word_ratio", type=Number(float, 0, 1, off=-1), default=0.3,
                          help="drop descriptions whose share of out-of-vocabulary words is above this (default 0.3)")
        text.add_argument("--min_text_language_score", type=Number(float, 0, 1, off=-1), default=0.5,
                          help="minimum fastText confidence that the description is in a kept language (default 0.5)")
        text.add_argument("--min_caption_score", type=Number(float, 0, 1, off=-1), default=None,
                          help="drop descriptions the caption-quality model scores below this (default: the threshold "
                               "shipped with the model, chosen by grouped CV); -1 turns the model off and the old "
                               "logo, navigation, title-case, keyword-list, all-caps and rare-word rules drop")
        text.add_argument("--headline_text", dest="headline_text", action="store_true", default=True,
                          help="as a last resort, pair an image with the headline above it (the page's title for "
                               "its lead image) where the image's file name names what the headline names, or with "
                               "the headline or the first sentence after it where that names a person and the image "
                               "shows a face (--min_face) (default)")
        text.add_argument("--no-headline_text", "--no_headline_text", dest="headline_text", action="store_false",
                          help="never pair an image with its page's headline or body text (fewer pairs, a little "
                               "more precise)")

        fetch = parser.add_argument_group("AcquireImages")
        fetch.add_argument("--fetch", dest="fetch", action="store_true", default=True,
                           help="download images that the crawl does not hold (default)")
        fetch.add_argument("--no-fetch", "--no_fetch", dest="fetch", action="store_false",
                           help="use only image records from the crawl; others are dropped with reason not_in_crawl")
        fetch.add_argument("--fetch_user_agent", default="lait/0.1 (+https://github.com/lait-project/lait)",
                           help="User-Agent for image and robots.txt requests")
        fetch.add_argument("--fetch_timeout", type=Number(float, above=0), default=10.0,
                           help="connect and read timeout in seconds (default 10)")
        fetch.add_argument("--fetch_retries", type=Number(int, 0), default=2,
                           help="retries on 429/5xx and connection errors, with backoff (default 2)")
        fetch.add_argument("--max_image_bytes", type=Number(int, 1), default=20 * 2**20,
                           help="larger image bodies are dropped with reason too_large (default 20 MiB)")
        fetch.add_argument("--per_host_concurrency", type=Number(int, 1), default=2,
                           help="requests in flight per host per worker (default 2)")
        fetch.add_argument("--per_host_delay", type=Number(float, 0), default=0.5,
                           help="seconds between requests to one host per worker (default 0.5)")
        fetch.add_argument("--ignore_robots", action="store_true", default=False,
                           help="do not read robots.txt (it is respected by default)")
        fetch.add_argument("--allow_private_networks", action="store_true", default=False,
                           help="allow fetching from loopback/private addresses (off by default; for tests)")
        fetch.add_argument("--fetch_threads", type=Number(int, 1), default=16,
                           help="downloads in flight per worker, across hosts (default 16)")
        fetch.add_argument("--proxy", default=None, metavar="URL",
                           help="send image and robots.txt requests through this HTTP forward proxy "
                                "(http://host:port; https images go through CONNECT). The proxy's own address "
                                "may be loopback or private; each image host must still resolve to public addresses "
                                "(else private_address, unless --allow_private_networks), and a host that does not "
                                "resolve here is left to the proxy to resolve. user:password@ in the URL is sent to the "
                                "proxy and saved in _run_config.json like every option")
        fetch.add_argument("--fetch_ca_bundle", default=None, metavar="PEM",
                           help="trust the CA certificates in this file for https images instead of the system's "
                                "(a proxy that intercepts TLS, such as bench/replay_crawl.py serve); "
                                "the file must exist on every worker")

        image = parser.add_argument_group("FilterImages")
        image.add_argument("--min_image_side", type=Number(int, 0), default=300,
                           help="width and height must both be larger than this, in pixels (default 300, as LAIT)")
        image.add_argument("--max_aspect_ratio", type=Number(float, 1, off=0), default=3.0,
                           help="longer side / shorter side above this is dropped (default 3)")
        image.add_argument("--max_image_pixels", type=Number(int, 1), default=60_000_000,
                           help="images with more pixels are rejected as decompression bombs (default 60 M)")
        image.add_argument("--max_nsfw", type=FRACTION, default=0.5,
                           help="drop images whose NSFW score is above this (default 0.5)")
        image.add_argument("--min_natural", type=FRACTION, default=0.5,
                           help="drop images whose naturalness probability is below this (default 0.5)")

        rel = parser.add_argument_group("ScoreRelevance")
        rel.add_argument("--device", default="", metavar="DEVICE",
                         help="torch device of the networks of FilterImages and ScoreRelevance: cpu, cuda or "
                              "cuda:N (default: cuda on a worker that has one, else cpu)")
        rel.add_argument("--min_relevance", type=FRACTION, default=0.03,
                         help="drop pairs whose image-text relevance is below this (default 0.03: on sites the "
                              "model never saw, it keeps 9 in 10 captions that describe their photo; "
                              "bench/bench_relevance_grouped.py)")
        rel.add_argument("--min_face", type=FRACTION, default=0.5,
                         help="a headline or body sentence kept because it names a person describes the image only "
                              "where its face score (NudeNet) is at least this; else the pair is dropped as "
                              "no_face (default 0.5)")
        rel.add_argument("--relevance_model", default=None,
                         help="relevance model file (default: the model shipped with lait)")

        agg = parser.add_argument_group("Aggregate")
        agg.add_argument("--max_images_per_text", type=Number(int, 1), default=10,
                         help="a text used by more distinct images than this is dropped entirely (default 10)")
        agg.add_argument("--phash_distance", type=Number(int, 0, 64), default=4,
                         help="images whose perceptual hashes differ in at most this many bits are one image (default 4)")
        name_numbers(parser)


# fastText lid.176 labels are two or three lower-case letters (en, de, als, war...).
_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")


def check_run_args(args: argparse.Namespace, crawl_input: bool = True) -> None:
    """What argparse cannot check in the options of `lait run` (and `lait import-pairs`): raises UsageError.

    Required and readable inputs (plain local paths; globs and remote paths are matched when the
    pipeline is built), a writable output, the language list, min_words <= max_words, model
    files that load, the proxy and CA bundle, and the runner's name.
    """
    if not args.input:
        raise UsageError("--input is required: give one or more WARC/ARC files or glob patterns")
    if not args.output:
        raise UsageError("--output is required: a directory for the Parquet shards")
    if crawl_input:
        for path in args.input:
            if not storage.is_url(path) and not re.search(r"[*?[]", path) and not os.path.isdir(path):
                checks.readable_file(path, "--input")
    checks.output_dir(args.output, "--output")
    check_languages(args.languages)
    if getattr(args, "files_per_part", 0) < 0:
        raise UsageError(f"--files_per_part must be 0 (automatic) or more, got {args.files_per_part}")
    if args.max_words != -1 and args.max_words < args.min_words:
        raise UsageError(f"--max_words {args.max_words} is below --min_words {args.min_words}")
    if not args.fetch_user_agent.strip():
        raise UsageError("--fetch_user_agent is empty: servers and robots.txt need a name")
    if args.dom_model:
        from lait.scoring.dominant_image import DominantImageRanker

        checks.model_file(args.dom_model, "--dom_model", DominantImageRanker.load)
    if getattr(args, "device", ""):
        checks.torch_device(args.device, "--device")
    if args.relevance_model:
        from lait.scoring.relevance import RelevanceModel

        checks.model_file(args.relevance_model, "--relevance_model", RelevanceModel.load)
    if getattr(args, "proxy", None):
        from lait.pipeline.fetch import proxy_problem

        if proxy_problem(args.proxy):
            raise UsageError(f"--{proxy_problem(args.proxy)}")
    if getattr(args, "fetch_ca_bundle", None):
        checks.readable_file(args.fetch_ca_bundle, "--fetch_ca_bundle")
    if getattr(args, "runner", None):
        check_runner(args.runner)


def check_languages(languages: str) -> list[str]:
    """The codes of a --languages value (fastText lid.176 codes, comma-separated); UsageError for anything else."""
    codes = [code.strip() for code in languages.split(",")]
    bad = [code for code in codes if not _LANGUAGE_CODE.fullmatch(code)]
    if bad:
        raise UsageError(f"--languages {languages!r}: {bad[0]!r} is not a language code; "
                         "give fastText lid.176 codes separated by commas, e.g. en,de,fr")
    return codes


def check_runner(runner: str) -> None:
    """A runner Beam knows by name (direct, dask, DataflowRunner...) or a dotted class path."""
    from apache_beam.options.pipeline_options import StandardOptions

    from lait.pipeline.run import RUNNER_ALIASES

    names = {alias.lower() for alias in RUNNER_ALIASES} | {value.lower() for value in RUNNER_ALIASES.values()}
    names |= {path.rsplit(".", 1)[-1].lower() for path in StandardOptions.ALL_KNOWN_RUNNERS}
    key = runner.lower()
    if "." not in runner and key not in names and key + "runner" not in names:
        raise UsageError(f"--runner {runner!r} is not a Beam runner: give direct, dask, dataflow, flink, spark "
                         "or a runner class (module.ClassName)")
