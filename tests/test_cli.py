"""The `lait` command line: help for every command and option, one-line errors for mistakes."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from lait.pipeline.options import LaitOptions

LAIT = [sys.executable, "-m", "lait.pipeline.cli"]


def lait(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LAIT, *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_command():
    from lait.pipeline.cli import build_parser

    _, modules = build_parser()
    result = lait("--help")
    assert result.returncode == 0
    for name in modules:
        assert name in result.stdout


def test_run_help_documents_every_option():
    parser = argparse.ArgumentParser()
    LaitOptions._add_argparse_args(parser)
    result = lait("run", "--help")
    assert result.returncode == 0
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert action.option_strings[0] in result.stdout
            assert action.help, f"{action.option_strings[0]} has no help text"


def test_missing_input_is_a_one_line_error(tmp_path):
    result = lait("run", "--input", str(tmp_path / "nothing-*.warc.gz"), "--output", str(tmp_path / "out"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "nothing-*.warc.gz" in result.stderr
    assert "Traceback" not in result.stderr


def test_misspelt_option_is_a_one_line_error(tmp_path):
    result = lait("run", "--input", "x.warc.gz", "--output", str(tmp_path), "--min_imag_side", "200")
    assert result.returncode == 2 and "--min_imag_side" in result.stderr and "Traceback" not in result.stderr


def test_too_many_input_paths_for_multi_processing_is_a_one_line_error(tmp_path):
    # Beam's multi-processing workers get the options in one environment variable, which exec
    # refuses over 128 KiB: the run would wait forever for workers that never start.
    paths = [str(tmp_path / f"crawl-{i:05d}-CC-MAIN-20240101000000-20240101030000.warc.gz") for i in range(3000)]
    for path in paths:
        open(path, "wb").close()
    result = lait("run", "--input", *paths, "--output", str(tmp_path / "out"),
                  "--direct_num_workers", "2", "--direct_running_mode", "multi_processing")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "glob pattern" in result.stderr


def test_bad_value_of_a_beam_flag_is_a_one_line_error(tmp_path):
    result = lait("run", "--input", "x.warc.gz", "--output", str(tmp_path), "--runner", "dask",
                  "--dask_workers", "1", "--dask_npartitions", "many")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "--dask_npartitions" in result.stderr


def test_no_dask_workers_is_a_one_line_error_not_a_job_that_waits_for_ever(tmp_path):
    result = lait("run", "--input", "x.warc.gz", "--output", str(tmp_path), "--runner", "dask", "--dask_workers", "-1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "--dask_workers: must be a whole number of at least 1" in result.stderr


def test_version():
    result = lait("--version")
    assert result.returncode == 0 and result.stdout.startswith("lait ")


def clean(*args: str) -> subprocess.CompletedProcess:
    return lait("clean-text", "Two cribs in a small nursery space", *args)


def test_config_file_sets_options_and_flags_win(tmp_path):
    yaml_file = tmp_path / "lait.yaml"
    yaml_file.write_text("min-words: 8\nclean-text:\n  max_words: 40\nrun:\n  no_fetch: true\n")
    toml_file = tmp_path / "lait.toml"
    toml_file.write_text("min_words = 8\n")
    for config in (yaml_file, toml_file):
        dropped = json.loads(clean("--config", str(config)).stdout)
        assert dropped["reasons"] == ["too_short"], config  # 7 words < min_words 8 from the file
        kept = json.loads(clean("--config", str(config), "--min-words", "3").stdout)
        assert kept["kept"], config  # the command line wins
    assert json.loads(lait("--config", str(yaml_file), "clean-text", "Two cribs in a small nursery space").stdout)[
        "reasons"] == ["too_short"]  # before the command too


@pytest.mark.parametrize("text, message", [
    ("min_wordz: 8\n", "unknown option 'min_wordz' for 'lait clean-text' (did you mean --min_words?)"),
    ("min_words: -3\n", "--min_words: must be"),
    ("min_words: [1, 2]\n", "min_words takes one value"),
    ("- min_words\n", "wants a mapping of option names to values"),
    ("min_words: 8\n  bad indent: [\n", "not valid YAML"),
])
def test_bad_config_file_is_a_one_line_error(tmp_path, text, message):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    result = clean("--config", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


def test_missing_config_file_is_a_one_line_error(tmp_path):
    missing = clean("--config", str(tmp_path / "none.toml"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "--config" in missing.stderr and "none.toml" in missing.stderr


def test_config_values_become_flags_in_their_place():
    from lait.pipeline.cli import build_parser, config_tokens

    parser, modules = build_parser()
    train = parser.command_parsers["train"]
    head, tail = config_tokens({"max_steps": 5, "compile": True, "resume": False, "set": {"tasks": {"mlm_prob": 0.2}},
                                "quiet": True}, "train", [train], [], list(modules), "c.yaml")
    assert head == ["--max-steps=5", "--compile", "--set=tasks.mlm_prob=0.2", "--quiet"] and tail == []
    run = parser.command_parsers["run"]
    head, tail = config_tokens({"input": ["a.warc.gz", "b.warc.gz"], "min_image_side": 200, "progress": False},
                               "run", [run], ["--min-image-side", "300"], list(modules), "c.yaml")
    assert head == ["--progress=false"] and tail == ["--input", "a.warc.gz", "b.warc.gz"]


def test_quiet_and_verbose_are_counted_anywhere_before_a_double_dash():
    from lait.pipeline.cli import verbosity_of

    assert verbosity_of(["run", "--input", "x"]) == 1
    assert verbosity_of(["-q", "run"]) == verbosity_of(["run", "--quiet"]) == 0
    assert verbosity_of(["train", "-v"]) == verbosity_of(["-vv", "train"]) == 2
    assert verbosity_of(["clean-text", "--", "-q"]) == 1
