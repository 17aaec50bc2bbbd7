"""What lait shows while it works: the stage display, bars, plain lines off a terminal, quiet workers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter

import apache_beam as beam
import pytest

from lait import progress
from lait.pipeline import beam_worker
from lait.pipeline.funnel import StageDoFn, apply_stage
from lait.pipeline.in_process_runner import InProcessRunner


class _Terminal:
    """Stands in for stderr on a terminal: isatty() is True and writes are kept."""

    def __init__(self):
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


class _Stage:
    """A DoFn-like object with a running bundle's counts, as StageDoFn has."""

    def __init__(self, stage: str):
        self.stage = stage
        self._counts = Counter()


@pytest.fixture
def terminal(monkeypatch):
    """A terminal to put in sys.stderr in the test's body (pytest's capture resets it after fixtures)."""
    monkeypatch.setenv(progress.ENV_MODE, "bar")
    progress.set_verbosity(progress.NORMAL)
    progress.reset()
    yield _Terminal()
    progress.set_verbosity(progress.NORMAL)


def test_stage_display_redraws_one_line_per_stage_in_place_and_notes_go_above(terminal, monkeypatch):
    monkeypatch.setattr("sys.stderr", terminal)
    parse = _Stage("ParsePages")
    with progress.StageDisplay("lait run", ["ReadCrawl", "ParsePages", "CleanText"],
                               totals={"ReadCrawl": ("files", 4)}, refresh=0.02):
        progress.add("ReadCrawl", "files", 3)
        progress.commit("ReadCrawl", Counter({"in": 120, "out": 100, "dropped.not_response": 20}))
        progress.watch(parse)
        parse._counts.update({"in": 50, "out": 40, "dropped.language": 10})  # a bundle still running
        time.sleep(0.2)
        progress.note("part 2 of 2: 2 input files")
        time.sleep(0.1)
    text = terminal.text
    assert "ReadCrawl            files 3/4 | in 120, kept 100, dropped 20" in text
    assert "ParsePages           in 50, kept 40, dropped 10" in text
    assert "CleanText" not in text  # no line for a stage that has not started
    assert "\x1b[3F" in text  # the title and two stage lines, redrawn in place
    before_note = text.index("part 2 of 2")
    assert text[before_note - 3:before_note] == "\x1b[J"  # the block is cleared, the note written, then redrawn
    assert "ParsePages" in text[before_note:]
    assert text.endswith("\x1b[J")  # and removed at the end: the command prints its funnel
    assert sys.stderr is terminal  # stderr is given back


def test_off_a_terminal_plain_lines_every_interval_and_nothing_when_quiet(monkeypatch, capsys):
    monkeypatch.delenv(progress.ENV_MODE, raising=False)
    monkeypatch.setenv(progress.ENV_INTERVAL, "0.05")
    progress.set_verbosity(progress.NORMAL)
    assert progress.mode() == "lines"  # pytest's captured stderr is not a terminal
    with progress.StageDisplay("lait regions", ["ReadImages"]):
        progress.commit("ReadImages", Counter({"in": 7, "out": 7}))
        time.sleep(0.3)
    err = capsys.readouterr().err
    assert "lait regions 00:00: ReadImages in 7, kept 7" in err and "\x1b" not in err
    bar = progress.Bar(total=10, desc="lait export", unit="pairs")
    for _ in range(10):
        bar.update(1)
        time.sleep(0.01)
    bar.close()
    err = capsys.readouterr().err
    assert "lait export: " in err and "/10 pairs" in err and "pairs/s" in err
    progress.set_verbosity(progress.QUIET)
    try:
        with progress.StageDisplay("lait run", ["ReadImages"]):
            progress.commit("ReadImages", Counter({"in": 1}))
            time.sleep(0.2)
        with progress.Bar(total=3, desc="x") as quiet_bar:
            quiet_bar.update(3)
        progress.note("a note")
    finally:
        progress.set_verbosity(progress.NORMAL)
    assert capsys.readouterr().err == ""


def test_bar_on_a_terminal_is_tqdm(terminal, monkeypatch):
    monkeypatch.setattr("sys.stderr", terminal)
    with progress.Bar(total=5, desc="train stage 1", unit="step") as bar:
        for _ in range(5):
            bar.update(1, loss=2.5)
    assert "train stage 1: 100%" in terminal.text and "5/5" in terminal.text and "loss 2.5" in terminal.text


def test_counts_of_worker_processes_are_added(tmp_path):
    progress.reset()
    progress.commit("ParsePages", Counter({"in": 2}))
    (tmp_path / "123.json").write_text(json.dumps({"ParsePages": {"in": 5, "out": 4}, "CleanText": {"in": 4}}))
    (tmp_path / "456.json.tmp").write_text("{cut")
    assert progress.gather(str(tmp_path)) == {"ParsePages": {"in": 7, "out": 4}, "CleanText": {"in": 4}}


def test_beam_worker_command_is_replaced_and_beam_still_builds_it_so():
    import inspect

    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.transforms.environments import SubprocessSDKEnvironment

    # If Beam starts its multi-processing workers another way, lait/pipeline/beam_worker.py needs a look.
    assert "-m apache_beam.runners.worker.sdk_worker_main" in inspect.getsource(fn_runner)
    assert beam_worker.install() and beam_worker.install()  # idempotent
    environment = SubprocessSDKEnvironment.from_command_string(
        f"{sys.executable} -m apache_beam.runners.worker.sdk_worker_main")
    assert environment.command_string == f"{sys.executable} -m lait.pipeline.beam_worker"


class SlowCount(StageDoFn):
    stage = "SlowCount"

    def run(self, element):
        time.sleep(0.05)
        yield element


def _multiprocess_pipeline() -> None:
    """Run in a subprocess: two Beam worker processes, counted by a display with plain lines."""
    from apache_beam.options.pipeline_options import PipelineOptions

    beam_worker.install()
    options = PipelineOptions(["--direct_num_workers", "2", "--direct_running_mode", "multi_processing",
                               "--lait_option_beam_does_not_know", "1"])
    with progress.StageDisplay("test", ["SlowCount"]):
        with beam.Pipeline(runner=InProcessRunner(), options=options) as pipeline:
            apply_stage(pipeline | beam.Create(range(60)) | beam.Reshuffle(), "Count", SlowCount())


def test_multiprocessing_workers_are_quiet_and_report_their_counts():
    code = ("from lait.pipeline.cli import configure_logging; configure_logging(1)\n"  # first, as `lait` does
            "from tests.test_progress import _multiprocess_pipeline; _multiprocess_pipeline()")
    env = {**__import__("os").environ, progress.ENV_MODE: "lines", progress.ENV_INTERVAL: "0.3"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    # Only the display's lines: no worker start-up INFO, no "Discarding unparseable args".
    assert lines and all(line.startswith("test ") for line in lines), result.stderr[-2000:]
    assert any("SlowCount in " in line for line in lines)


def test_batch_commands_show_progress_and_keep_stdout_to_their_results(tmp_path, monkeypatch, capsys):
    from lait.pipeline.cli import main

    monkeypatch.setenv(progress.ENV_MODE, "lines")
    monkeypatch.setenv(progress.ENV_INTERVAL, "0.05")
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": f"A dog runs across the grass number {i}"}) + "\n" for i in range(40)))

    original_update = progress.Bar.update

    def slow_update(self, n=1, **postfix):  # each text takes longer than the interval, so lines appear
        time.sleep(0.002)
        return original_update(self, n, **postfix)

    monkeypatch.setattr(progress.Bar, "update", slow_update)
    assert main(["clean-text", "--batch", str(texts)]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["kept"] for line in out.splitlines()] == [True] * 40
    assert "lait clean-text: " in err and " texts, " in err
