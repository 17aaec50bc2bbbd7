"""The `lait` command line: help for every command and option, one-line errors for mistakes."""

from __future__ import annotations

import argparse
import subprocess
import sys

from pipeline.options import LaitOptions

LAIT = [sys.executable, "-m", "pipeline.cli"]


def lait(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LAIT, *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_command():
    from pipeline.cli import build_parser

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
