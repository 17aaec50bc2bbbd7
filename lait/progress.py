"""What lait shows while it works: progress on a terminal, and how much it says (`-q`, `-v`).

    with progress.Bar(total=1000, desc="export", unit="pairs") as bar:
        for row in rows:
            ...
            bar.update(1)

On a terminal (stderr is a TTY) a :class:`Bar` is a tqdm bar and a pipeline run shows one live
line per stage (:class:`StageDisplay`). Elsewhere (CI logs, pipes, tests) they print one plain
line every ``LAIT_PROGRESS_INTERVAL`` seconds (default 60) and nothing with ``-q``, so captured
output stays clean. ``LAIT_PROGRESS=bar|lines|off`` overrides the choice.

Pipeline stages count what they see in their funnel DoFns (:class:`lait.pipeline.funnel.StageDoFn`
calls :func:`watch` and :func:`commit`); the display sums the counts of this process and, for
the worker processes of ``--direct_running_mode multi_processing`` and of a local Dask cluster,
the counts each worker writes to ``$LAIT_PROGRESS_DIR/PID.json`` twice a second.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterable

QUIET, NORMAL, VERBOSE = 0, 1, 2
_verbosity = NORMAL

ENV_MODE = "LAIT_PROGRESS"  # bar | lines | off
ENV_INTERVAL = "LAIT_PROGRESS_INTERVAL"  # seconds between plain lines
ENV_DIR = "LAIT_PROGRESS_DIR"  # where worker processes write their counts
ENV_PID = "LAIT_PROGRESS_PID"  # the process that shows them
DEFAULT_INTERVAL = 60.0
MIN_REDRAW = 0.05  # seconds: the stage display's thread never spins


def set_verbosity(level: int) -> None:
    global _verbosity
    _verbosity = max(QUIET, min(VERBOSE, level))


def verbosity() -> int:
    return _verbosity


def mode() -> str:
    """``bar`` (a terminal), ``lines`` (plain periodic lines) or ``off`` (-q)."""
    forced = os.environ.get(ENV_MODE, "").lower()
    if _verbosity == QUIET or forced == "off":
        return "off"
    if forced in ("bar", "lines"):
        return forced
    return "bar" if _isatty(sys.stderr) else "lines"


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def interval() -> float:
    """Seconds between plain progress lines; 0 prints a bar's line at every update."""
    try:
        return max(0.0, float(os.environ.get(ENV_INTERVAL, DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


def note(message: str) -> None:
    """An informational line on stderr (above any bar); nothing with -q."""
    if _verbosity == QUIET:
        return
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


def _elapsed(seconds: float) -> str:
    from tqdm import tqdm

    return tqdm.format_interval(seconds)


class Bar:
    """A progress bar of `total` steps (None: unknown) that is a tqdm bar only on a terminal.

    `update(n, **postfix)` advances it and sets the values shown after it (``loss=2.31``).
    Off the terminal it prints ``desc: n/total unit (p%), rate, ETA, postfix`` every
    :func:`interval` seconds; with -q it does nothing.
    """

    def __init__(self, total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0,
                 leave: bool = True):
        self.total, self.desc, self.unit = total, desc, unit
        self.n = self.start_n = initial
        self.postfix: dict = {}
        self.mode = mode()
        self.started = self.shown = time.monotonic()
        self._tqdm = None
        if self.mode == "bar":
            from tqdm import tqdm

            self._tqdm = tqdm(total=total, desc=desc, unit=unit, initial=initial, leave=leave, file=sys.stderr,
                              dynamic_ncols=True, smoothing=0.1)

    def update(self, n: int = 1, **postfix) -> None:
        self.n += n
        if postfix:
            self.postfix.update(postfix)
        if self._tqdm is not None:
            if postfix:
                self._tqdm.set_postfix_str(_postfix(self.postfix), refresh=False)
            self._tqdm.update(n)
        elif self.mode == "lines":
            now = time.monotonic()
            if now - self.shown >= interval():
                self.shown = now
                print(self.line(now), file=sys.stderr, flush=True)

    def set_postfix(self, **postfix) -> None:
        self.update(0, **postfix)

    def line(self, now: float | None = None) -> str:
        """The plain progress line: ``export: 120/1000 pairs (12%), 40.0 pairs/s, ETA 0:22``."""
        seconds = (now or time.monotonic()) - self.started
        rate = (self.n - self.start_n) / seconds if seconds > 0 else 0.0
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        parts = [f"{self.desc}: {done} {self.unit}" + (f" ({100 * self.n / self.total:.0f}%)" if self.total else ""),
                 f"{rate:.3g} {self.unit}/s"]
        if self.total and rate > 0:
            parts.append(f"ETA {_elapsed((self.total - self.n) / rate)}")
        if self.postfix:
            parts.append(_postfix(self.postfix))
        return ", ".join(parts)

    def write(self, message: str, file=None) -> None:
        """A line above the bar (on a terminal) or as it is; shown even in lines mode."""
        if self._tqdm is not None:
            self._tqdm.write(message, file=file or sys.stdout)
        else:
            print(message, file=file or sys.stdout, flush=True)

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _postfix(values: dict) -> str:
    return " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())


# ---------------------------------------------------------------- stage counts (any process)

_lock = threading.Lock()
_committed: dict[str, Counter] = {}
_live: weakref.WeakSet = weakref.WeakSet()
_flusher: threading.Thread | None = None


def watch(dofn) -> None:
    """Count `dofn.stage` from `dofn._counts` (its bundle's counts) while its bundle runs."""
    with _lock:
        _live.add(dofn)
    if _flusher is None and os.environ.get(ENV_DIR) and os.environ.get(ENV_PID) != str(os.getpid()):
        _start_flusher()


def commit(stage: str, counts: Counter) -> dict:
    """Move a finished bundle's `counts` into this process's totals; returns them (and clears `counts`)."""
    with _lock:
        bundle = dict(counts)
        counts.clear()
        total = _committed.setdefault(stage, Counter())
        for key, n in bundle.items():
            total[key] += n
    return bundle


def add(stage: str, key: str, n: int = 1) -> None:
    """Count something the funnel does not (ReadCrawl's files and pages)."""
    with _lock:
        _committed.setdefault(stage, Counter())[key] += n


def snapshot() -> dict[str, dict[str, int]]:
    """``{stage: {key: n}}`` of this process: finished bundles plus the bundles running now."""
    with _lock:
        out = {stage: dict(counts) for stage, counts in _committed.items()}
        for dofn in list(_live):
            counts = getattr(dofn, "_counts", None)
            if counts:
                stage = out.setdefault(dofn.stage, {})
                for key, n in dict.copy(counts).items():
                    stage[key] = stage.get(key, 0) + n
    return out


def reset() -> None:
    """Forget every count of this process (a new display starts from zero)."""
    with _lock:
        _committed.clear()
        _live.clear()


def _start_flusher() -> None:
    global _flusher
    with _lock:
        if _flusher is not None:
            return
        _flusher = threading.Thread(target=_flush_forever, name="lait-progress", daemon=True)
    _flusher.start()


def _flush_forever() -> None:
    folder = os.environ.get(ENV_DIR, "")
    path = os.path.join(folder, f"{os.getpid()}.json")
    while os.path.isdir(folder):
        try:
            tmp = path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(snapshot(), f)
            os.replace(tmp, path)
        except OSError:
            return
        time.sleep(0.5)


def _merge(into: dict, counts: dict) -> None:
    for stage, keys in counts.items():
        target = into.setdefault(stage, {})
        for key, n in keys.items():
            if isinstance(n, int):
                target[key] = target.get(key, 0) + n


def gather(folder: str | None) -> dict[str, dict[str, int]]:
    """This process's counts plus those the worker processes wrote to `folder`."""
    total = snapshot()
    if folder and os.path.isdir(folder):
        for name in os.listdir(folder):
            if name.endswith(".json"):
                try:
                    with open(os.path.join(folder, name), encoding="utf-8") as f:
                        _merge(total, json.load(f))
                except (OSError, ValueError):
                    continue
    return total


# ---------------------------------------------------------------- the display of a pipeline run


class StageDisplay:
    """One live line per funnel stage of a pipeline run, on stderr; plain lines off a terminal.

        with StageDisplay("lait run", STAGES, totals={"ReadCrawl": ("files", 12)}):
            funnel = run(options)

    A stage's line shows what it has taken in, kept and dropped, and its rate; `totals` gives a
    stage a known amount of some counter (its line then shows ``files 3/12`` and an ETA).
    Lines that other code writes to stderr meanwhile (notes, warnings) appear above the block.
    The block is removed at the end (the command prints its funnel), kept when the run fails.
    """

    def __init__(self, title: str, stages: Iterable[str], totals: dict[str, tuple[str, int]] | None = None,
                 refresh: float = 0.5):
        self.title = title
        self.stages = list(stages)
        self.totals = totals or {}
        self.refresh = refresh
        self.mode = mode()
        self.started = time.monotonic()
        self.first_seen: dict[str, float] = {}
        self.changed: dict[str, tuple[int, float]] = {}  # stage: (its counts' sum, when it last changed)
        self._drawn = 0
        self._stop = threading.Event()
        self._thread = None
        self._folder = None
        self._saved_env: dict = {}
        self._out = sys.stderr
        self._write_lock = threading.RLock()
        self._streams: list = []

    # -- lifecycle

    def __enter__(self) -> StageDisplay:
        if self.mode == "off":
            return self
        reset()
        self._folder = tempfile.mkdtemp(prefix="lait-progress-")
        for key, value in ((ENV_DIR, self._folder), (ENV_PID, str(os.getpid()))):
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        if self.mode == "bar":
            self._redirect()
        self._thread = threading.Thread(target=self._loop, name="lait-progress-display", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.mode == "off":
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.mode == "bar":
            with self._write_lock:
                if exc_type is None:
                    self._erase()
                else:
                    self._draw()  # where it stopped
                self._drawn = 0
            self._restore()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(self._folder, ignore_errors=True)

    def _loop(self) -> None:
        wait = self.refresh if self.mode == "bar" else max(MIN_REDRAW, interval())
        while not self._stop.wait(wait):
            if self.mode == "bar":
                with self._write_lock:
                    self._draw()
            else:
                line = self.plain_line()
                if line:
                    print(line, file=self._out, flush=True)

    # -- what is shown

    def lines(self, counts: dict | None = None, width: int = 200) -> list[str]:
        """One line per stage that has counted anything, in pipeline order."""
        counts = gather(self._folder) if counts is None else counts
        now = time.monotonic()
        names = self.stages + [s for s in counts if s not in self.stages]
        out = []
        for stage in names:
            keys = counts.get(stage) or {}
            if not any(keys.values()) and stage not in self.first_seen:
                continue
            first = self.first_seen.setdefault(stage, now)
            seen = sum(keys.values())
            if self.changed.get(stage, (None,))[0] != seen:
                self.changed[stage] = (seen, now)
            # The rate over the time the stage worked: it stays put once the stage is done.
            out.append(self._stage_line(stage, keys, self.changed[stage][1] - first)[:width])
        return out

    def _stage_line(self, stage: str, keys: dict, seconds: float) -> str:
        n_in, n_out = keys.get("in", 0), keys.get("out", 0)
        dropped = sum(n for key, n in keys.items() if key.startswith("dropped."))
        parts = []
        counter, total = self.totals.get(stage, (None, None))
        if counter:
            parts.append(f"{counter} {keys.get(counter, 0):,}/{total:,}")
        extra = [k for k in keys if k not in ("in", "out", counter) and not k.startswith("dropped.")]
        parts += [f"{k} {keys[k]:,}" for k in sorted(extra)]
        parts.append(f"in {n_in:,}, kept {n_out:,}" + (f", dropped {dropped:,}" if dropped else ""))
        rate = n_in / seconds if seconds > 0.5 else 0.0
        if rate:
            parts.append(f"{rate:,.1f}/s")
        if counter and total:
            done = keys.get(counter, 0)
            counter_rate = done / seconds if seconds > 0.5 else 0.0
            if 0 < done < total and counter_rate > 0:
                parts.append(f"ETA {_elapsed((total - done) / counter_rate)}")
        return f"{stage:<20} " + " | ".join(parts)

    def plain_line(self) -> str:
        """The non-terminal line: ``lait run 1:30: ReadCrawl in 900, kept 880; ParsePages ...``."""
        counts = gather(self._folder)
        stages = [line.split(" | ") for line in self.lines(counts)]
        if not stages:
            return ""
        return f"{self.title} {_elapsed(time.monotonic() - self.started)}: " + "; ".join(
            " ".join([" ".join(parts[0].split()), *parts[1:]]) for parts in stages)

    # -- drawing on a terminal

    def _draw(self) -> None:
        width = max(20, shutil.get_terminal_size((120, 24)).columns - 1)
        elapsed = _elapsed(time.monotonic() - self.started)
        lines = [f"{self.title} {elapsed}"[:width], *self.lines(width=width)]
        text = (f"\x1b[{self._drawn}F" if self._drawn else "") + "".join(f"\r{line}\x1b[K\n" for line in lines)
        if len(lines) < self._drawn:
            text += "\x1b[J"
        self._out.write(text)
        self._out.flush()
        self._drawn = len(lines)

    def _erase(self) -> None:
        if self._drawn:
            self._out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._out.flush()
            self._drawn = 0

    def write_above(self, text: str) -> None:
        with self._write_lock:
            drawn = self._drawn
            self._erase()
            self._out.write(text)
            self._out.flush()
            if drawn:
                self._draw()

    def _redirect(self) -> None:
        """Send what others write to stderr (print, logging) above the block."""
        import logging

        proxy = _AboveDisplay(self)
        self._streams = [(sys, "stderr", sys.stderr)]
        sys.stderr = proxy
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is self._out:
                self._streams.append((handler, "stream", handler.stream))
                handler.stream = proxy

    def _restore(self) -> None:
        for owner, attribute, value in reversed(self._streams):
            setattr(owner, attribute, value)
        self._streams = []


class _AboveDisplay:
    """A stderr stand-in: whole lines go above the live block."""

    def __init__(self, display: StageDisplay):
        self.display = display
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        if "\n" in self.pending:
            head, _, self.pending = self.pending.rpartition("\n")
            self.display.write_above(head + "\n")
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.display._out.fileno()

    def __getattr__(self, name):
        return getattr(self.display._out, name)
