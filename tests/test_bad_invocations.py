"""Bad invocations of every `lait` command: each is one line on stderr, no traceback, exit 2 (1 for a run
that could read no input), and fails before any work starts.

The table runs in-process through `lait.pipeline.cli.main` (SystemExit caught); a few rows run again as
real `lait` subprocesses. `{name}` in an argument is a path from the `paths` fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lait.pipeline.cli import build_parser, main, option_strings, respell
from tests.imagebert_fixtures import write_pairs

LAIT = Path(sys.executable).with_name("lait")

RUN = "run --input {warc} --output {new}"
TRAIN = "train --preset tiny --data {corpus} --regions {regions} --out {new}"
FINETUNE = "finetune-retrieval --preset tiny --data {corpus} --regions {regions} --out {new}"
EVAL = "eval-retrieval --data {corpus} --regions {regions}"

# (id, arguments, exit status, a fragment of the one stderr line)
CASES = [
    # -- the command line itself
    ("unknown-command", "frobnicate", 2, "invalid choice: 'frobnicate'"),
    ("misspelt-flag-suggested", RUN + " --min_imag_side 200", 2, "did you mean --min_image_side?"),
    ("misspelt-kebab-flag", "clean-text x --min-word 3", 2, "did you mean --min_words?"),
    ("stray-argument", RUN + " stray", 2, "unknown argument stray"),
    ("flag-without-value", "clean-text x --min_words", 2, "expected one argument"),
    # -- run: numbers
    ("run-max-shard-bytes-zero", RUN + " --max_shard_bytes 0", 2, "--max_shard_bytes: must be a whole number of at least 1"),
    ("run-kebab-negative", RUN + " --max-shard-bytes -5", 2, "--max_shard_bytes: must be"),
    ("run-score-above-one", RUN + " --min_language_score 1.5", 2, "--min_language_score: must be a number from 0 to 1"),
    ("run-relevance-negative", RUN + " --min_relevance -0.1", 2, "--min_relevance"),
    ("run-device-unknown", RUN + " --device tpu", 2, "--device 'tpu' is not a torch device"),
    ("run-nsfw-nan", RUN + " --max_nsfw nan", 2, "--max_nsfw"),
    ("run-side-not-a-number", RUN + " --min_image_side big", 2, "expected a whole number"),
    ("run-timeout-zero", RUN + " --fetch_timeout 0", 2, "--fetch_timeout: must be a number above 0"),
    ("run-phash-over-64", RUN + " --phash_distance 65", 2, "--phash_distance"),
    ("run-progress-not-bool", RUN + " --progress maybe", 2, "expected true or false"),
    ("run-words-crossed", RUN + " --min_words 10 --max_words 5", 2, "--max_words 5 is below --min_words 10"),
    ("run-files-per-part", RUN + " --files_per_part -1", 2, "--files_per_part"),
    # -- run: paths, models, runner, Beam flags
    ("run-no-input", "run --output {new}", 2, "--input is required"),
    ("run-missing-input", "run --input {missing}.warc.gz --output {new}", 2, "no such file"),
    ("run-glob-matches-nothing", "run --input {new}/*.warc.gz --output {new}", 2, "matches no file"),
    ("run-output-is-a-file", "run --input {warc} --output {warc}", 2, "is a file: give a folder"),
    ("run-output-under-a-file", "run --input {warc} --output {warc}/out", 2, "is a file, not a folder"),
    ("run-languages", RUN + " --languages english", 2, "'english' is not a language code"),
    ("run-corrupt-dom-model", RUN + " --dom_model {bad_json}", 2, "is not a model file lait can load"),
    ("run-missing-relevance-model", RUN + " --relevance_model {missing}", 2, "--relevance_model"),
    ("run-missing-ca-bundle", RUN + " --fetch_ca_bundle {missing}", 2, "cannot read --fetch_ca_bundle"),
    ("run-proxy-scheme", RUN + " --proxy ftp://proxy:21", 2, "proxy must be http"),
    ("run-unknown-runner", RUN + " --runner foo", 2, "'foo' is not a Beam runner"),
    ("run-dask-workers-zero", RUN + " --runner dask --dask_workers 0", 2, "--dask_workers"),
    ("run-beam-flag-value", RUN + " --direct_num_workers two", 2, "--direct_num_workers"),
    ("run-nothing-readable", "run --input {empty} {garbage} --output {new} --no-fetch --min-image-side 200 "
     "--files_per_part 2", 1,
     "no input file could be read (read_error 1, empty_file 1)"),
    # -- import-pairs
    ("import-missing-list", "import-pairs --input {missing}.tsv --output {new}", 2, "matches no file"),
    ("import-unknown-format", "import-pairs --input {page} --output {new}", 2, "unknown list format"),
    ("import-corrupt-parquet", "import-pairs --input {bad_parquet} --output {new}", 2, "not a readable Parquet file"),
    ("import-negative-side", "import-pairs --input {tsv} --output {new} --min_image_side -1", 2, "--min_image_side"),
    # -- inspect, export
    ("inspect-missing", "inspect {missing}", 2, "no shard-*.parquet files"),
    ("inspect-not-a-corpus", "inspect {folder}", 2, "no shard-*.parquet files"),
    ("inspect-corrupt-shard", "inspect {bad_corpus}", 2, "Parquet magic bytes not found"),
    ("inspect-negative-sample", "inspect {corpus} --sample -1", 2, "--sample must be 0 or more"),
    ("inspect-html-under-a-file", "inspect {corpus} --html {warc}/report.html", 2, "is a file, not a folder"),
    ("export-zero-per-shard", "export {corpus} --output {new} --samples_per_shard 0", 2, "--samples_per_shard"),
    ("export-no-output", "export {corpus}", 2, "the following arguments are required: --output"),
    ("export-onto-itself", "export {corpus} --output {corpus}", 2, "must differ"),
    ("export-corrupt-shard", "export {bad_corpus} --output {new}", 2, "is not a readable Parquet file"),
    ("export-format", "export {corpus} --output {new} --format tar", 2, "invalid choice: 'tar'"),
    # -- regions
    ("regions-iou-zero", "regions --data {corpus} --output {new} --nms_iou 0", 2, "--nms_iou: must be"),
    ("regions-input-size", "regions --data {corpus} --output {new} --input_size 100", 2, "multiple of 32"),
    ("regions-device-unknown", "regions --data {corpus} --output {new} --device cpux", 2, "is not a torch device"),
    ("regions-corrupt-corpus", "regions --data {bad_corpus} --output {new}", 2, "is not a readable Parquet file"),
    ("regions-npz-without-dir", "regions --data {corpus} --output {new} --extractor npz", 2, "needs --npz_dir"),
    # -- clean-text, dominant-image, filter-image, score
    ("clean-text-nothing", "clean-text", 2, "give either a TEXT or --batch"),
    ("clean-text-ratio", "clean-text x --max_rare_word_ratio 2", 2, "(or -1 to turn it off)"),
    ("clean-text-words-crossed", "clean-text x --min_words 9 --max_words 3", 2, "--max_words 3 is below --min_words 9"),
    ("clean-text-source", "clean-text x --source caption", 2, "invalid choice: 'caption'"),
    ("clean-text-page-url", "clean-text x --page_url sfgate.com", 2, "is not an http(s) URL"),
    ("clean-text-missing-batch", "clean-text --batch {missing}", 2, "no such file"),
    ("dominant-image-no-url", "dominant-image {page}", 2, "--url is needed"),
    ("dominant-image-bad-url", "dominant-image {page} --url example.com/story", 2, "is not an http(s) URL"),
    ("dominant-image-bad-gzip", "dominant-image {bad_gzip} --url https://example.com/", 2, "not a whole gzip file"),
    ("dominant-image-score", "dominant-image {page} --url https://example.com/ --min_dominant_score 2", 2,
     "--min_dominant_score"),
    ("dominant-image-languages", "dominant-image {page} --url https://example.com/ --languages english", 2,
     "is not a language code"),
    ("dominant-image-model", "dominant-image {page} --url https://example.com/ --dom_model {bad_json}", 2,
     "cannot load the model"),
    ("filter-image-missing", "filter-image {missing}", 2, "no such file"),
    ("filter-image-ratio", "filter-image {page} --max_aspect_ratio 0.5", 2, "--max_aspect_ratio"),
    ("filter-image-model", "filter-image {page} --naturalness_model {bad_json}", 2, "is not a model file lait can load"),
    ("score-no-text", "score --image {page}", 2, "give --image FILE and --text TEXT"),
    ("score-missing-image", "score --image {missing} --text dog", 2, "no such file"),
    ("score-missing-batch", "score --batch {missing}", 2, "no such file"),
    ("score-corrupt-model", "score --image {page} --text dog --model {bad_json}", 2, "is not a model file"),
    ("score-negative-top", "score --image {page} --text dog --top -1", 2, "--top"),
    # -- train, finetune-retrieval, eval-retrieval
    ("train-no-data", "train --regions {regions} --out {new}", 2, "--data is required"),
    ("train-batch-zero", TRAIN + " --batch-size 0", 2, "--batch-size: must be a whole number of at least 1"),
    ("train-snake-spelling", TRAIN + " --batch_size 0", 2, "--batch-size: must be"),
    ("train-lr-zero", TRAIN + " --lr 0", 2, "--lr: must be a number above 0"),
    ("train-warmup-over-steps", TRAIN + " --max-steps 10 --warmup-steps 50", 2, "warmup_steps 50 is above max_steps 10"),
    ("train-set-range", TRAIN + " --set tasks.mlm_prob=1.5", 2, "tasks.mlm_prob must be from 0 to 1"),
    ("train-set-unknown", TRAIN + " --set nonsense=1", 2, "unknown setting 'nonsense'"),
    ("train-set-device", TRAIN + " --set device=gpu", 2, "is not a torch device"),
    ("train-preset", TRAIN + " --preset huge", 2, "invalid choice: 'huge'"),
    ("train-corrupt-init", TRAIN + " --init-from {bad_pt}", 2, "is not a whole checkpoint"),
    ("train-init-not-a-model", TRAIN + " --init-from {folder}", 2, "neither a lait checkpoint"),
    ("train-corrupt-resume", "train --preset tiny --data {corpus} --regions {regions} --out {bad_run} --resume", 2,
     "is not a whole checkpoint"),
    ("train-corrupt-data", "train --preset tiny --data {bad_corpus} --regions {regions} --out {new}", 2,
     "is not a readable Parquet file"),
    ("train-regions-without-meta", "train --preset tiny --data {corpus} --regions {corpus} --out {new}", 2,
     "has no _meta.json"),
    ("train-out-is-a-file", "train --preset tiny --data {corpus} --regions {regions} --out {warc}", 2, "is a file"),
    ("finetune-no-init", FINETUNE, 2, "--init-from is required"),
    ("finetune-group-size", FINETUNE + " --init-from {bad_pt} --group-size 1", 2, "--group-size"),
    ("eval-missing-flags", "eval-retrieval --ckpt {bad_pt}", 2, "the following arguments are required"),
    ("eval-corrupt-checkpoint", EVAL + " --ckpt {bad_pt}", 2, "is not a whole checkpoint"),
    ("eval-missing-checkpoint", EVAL + " --ckpt {missing}", 2, "no such file"),
    ("eval-n-zero", EVAL + " --ckpt {bad_pt} --n 0", 2, "--n: must be"),
    ("eval-kebab-and-snake", EVAL + " --ckpt {bad_pt} --texts_per_image -1", 2, "--texts-per-image: must be"),
    # -- train-dom, train-naturalness, train-relevance, sample-crawl
    ("train-dom-missing", "train-dom {missing}", 2, "no such file"),
    ("train-dom-folder-without-index", "train-dom {folder}", 2, "needs an index.jsonl"),
    ("train-dom-output-folder", "train-dom {page} --output {folder}", 2, "is a folder: give a file name"),
    ("train-dom-depth-zero", "train-dom {page} --max_depth 0", 2, "--max_depth"),
    ("train-naturalness-no-labels", "train-naturalness {folder}", 2, "labels.csv not found"),
    ("train-naturalness-missing-image", "train-naturalness {labelled}", 2, "names 1 image(s) that are not in"),
    ("train-naturalness-one-fold", "train-naturalness {folder} --folds 1", 2, "--folds"),
    ("train-naturalness-threshold", "train-naturalness {folder} --threshold 2", 2, "--threshold"),
    ("train-relevance-no-captions", "train-relevance --captions {folder}", 2, "has no captions.tsv"),
    ("train-relevance-output-folder", "train-relevance --captions {labelled} --alts {tsv} --output {folder}", 2,
     "is a folder: give a file name"),
    ("train-relevance-iterations", "train-relevance --max_iter 0", 2, "--max_iter"),
    ("sample-crawl-name", "sample-crawl {new}/sample.warc", 2, "name it *.warc.gz"),
    ("sample-crawl-folder", "sample-crawl {folder}", 2, "is a folder"),
    ("sample-crawl-under-a-file", "sample-crawl {warc}/sample.warc.gz", 2, "is a file, not a folder"),
]
# Run again as real `lait` processes (the console script, its imports and sys.exit).
SUBPROCESS = {"unknown-command", "run-max-shard-bytes-zero", "misspelt-flag-suggested", "train-batch-zero",
              "inspect-corrupt-shard"}


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad")
    corpus, regions = write_pairs(root, {"a.jpg": ["a dog runs on the grass"], "b.jpg": ["a cat sleeps on a sofa"]})
    (root / "bad_corpus").mkdir()
    (root / "bad_corpus" / "shard-00000-of-00001.parquet").write_bytes(b"PAR1 cut short")
    (root / "bad_run").mkdir()
    (root / "bad_run" / "last.pt").write_bytes(b"PK\x03\x04 a checkpoint cut short")
    (root / "folder").mkdir()
    (root / "labelled").mkdir()  # labels.csv naming an image that is not there; an empty captions.tsv
    (root / "labelled" / "labels.csv").write_text("path,label,kind,source_repo\ngone.jpg,photo,photo,x\n")
    (root / "labelled" / "captions.tsv").write_text("")
    files = {
        "warc": ("crawl.warc.gz", b"WARC/1.0\r\n"), "empty": ("empty.warc.gz", b""),
        "garbage": ("garbage.warc.gz", b"\x00garbage" * 64), "bad_pt": ("bad.pt", b"not torch"),
        "bad_json": ("model.json", b"{not json"), "bad_gzip": ("page.html.gz", b"\x1f\x8b broken"),
        "page": ("page.html", b"<html><body><img src=a.jpg></body></html>"),
        "tsv": ("pairs.tsv", b"a dog\thttps://example.com/dog.jpg\n"), "bad_parquet": ("pairs.parquet", b"PAR1"),
    }
    for file, data in files.values():
        (root / file).write_bytes(data)
    out = {name: str(root / file) for name, (file, _) in files.items()}
    return {**out, "corpus": str(corpus), "regions": str(regions), "bad_corpus": str(root / "bad_corpus"),
            "bad_run": str(root / "bad_run"), "folder": str(root / "folder"), "missing": str(root / "missing"),
            "labelled": str(root / "labelled"),
            "root": str(root)}


def _argv(template: str, paths: dict, case_id: str) -> list[str]:
    new = os.path.join(paths["root"], "out-" + case_id)
    return [word.format(**paths, new=new) for word in template.split()]


def _assert_one_line(stderr: str, code: int, expected_code: int, fragment: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert code == expected_code, stderr
    assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("case_id, template, expected_code, fragment", CASES, ids=[case[0] for case in CASES])
def test_bad_invocation_is_one_line_and_exit_status(case_id, template, expected_code, fragment, paths, capfd):
    try:
        code = main(_argv(template, paths, case_id))
    except SystemExit as stop:
        code = stop.code
    _, stderr = capfd.readouterr()
    _assert_one_line(stderr, code, expected_code, fragment)


@pytest.mark.parametrize("case", [case for case in CASES if case[0] in SUBPROCESS], ids=sorted(SUBPROCESS))
def test_bad_invocation_as_a_process(case, paths):
    case_id, template, expected_code, fragment = case
    result = subprocess.run([str(LAIT), *_argv(template, paths, case_id + "-process")], capture_output=True,
                            text=True, timeout=120)
    _assert_one_line(result.stderr, result.returncode, expected_code, fragment)


def test_the_table_covers_every_command_and_40_invocations():
    _, modules = build_parser()
    assert len(CASES) >= 40 and len({case[0] for case in CASES}) == len(CASES)
    assert set(modules) <= {case[1].split()[0] for case in CASES}


def test_a_run_that_read_nothing_still_used_the_kebab_case_flag(paths, capfd):
    # The "run-nothing-readable" row's run went through (exit 1 after it), --min-image-side honoured.
    case_id, template, *_ = next(case for case in CASES if case[0] == "run-nothing-readable")
    config = Path(paths["root"], "out-" + case_id, "_run_config.json")
    if not config.exists():  # this test alone
        assert main(_argv(template, paths, case_id)) == 1
    assert json.loads(config.read_text())["min_image_side"] == 200


def test_every_flag_of_every_command_takes_both_spellings():
    parser, _ = build_parser()
    for name, command in parser.command_parsers.items():
        options = option_strings(command)
        for action in command._actions:
            for option in action.option_strings:
                for spelling in (option.replace("_", "-"), "--" + option.lstrip("-").replace("-", "_")):
                    if option.startswith("--") and option != "--help":
                        assert respell([spelling, "1"], options)[0] in action.option_strings, (name, spelling)


def test_every_number_option_has_a_range():
    # Plain int/float would take 0, -1 or nan where the code divides or counts by it.
    checked_elsewhere = {("run", "--files_per_part"), ("import-pairs", "--files_per_part"),  # check_run_args
                         ("inspect", "--sample"), ("inspect", "--max_rows")}  # cli._check_inspect
    parser, _ = build_parser()
    bare = {(name, action.option_strings[0]) for name, command in parser.command_parsers.items()
            for action in command._actions if action.type in (int, float)}
    assert bare <= checked_elsewhere


def test_parquet_written_by_pyarrow_passes_the_corpus_check(tmp_path):
    from lait.pipeline.checks import parquet_footers

    pq.write_table(pa.table({"x": [1]}), tmp_path / "ok.parquet")
    parquet_footers([str(tmp_path / "ok.parquet")], "--data")
