"""What a training run records in its folder: log.jsonl, metrics.csv and TensorBoard event files.

    log = RunLog(Path("runs/stage1"), step=0)
    log.write({"step": 10, "lr": 1e-4, "loss": 7.1, "mlm": 6.2, "samples_per_s": 80.0, "val_loss": 7.3})
    log.close()

Every record is one line of ``log.jsonl`` and one row of ``metrics.csv`` (a column per key; a key
first seen later adds a column) and, as scalars, TensorBoard events: ``train/<loss>``,
``val/<loss>`` (keys ``val_<loss>``), ``lr``, ``grad_norm``, ``throughput/<key>``. A run that
resumes at step ``s`` keeps the records up to ``s`` in both files and purges the later events,
so no step is recorded twice.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

LOG_FILE = "log.jsonl"
METRICS_FILE = "metrics.csv"
THROUGHPUT = ("samples_per_s", "tokens_per_s", "mfu")
NOT_SCALARS = ("step", "stage")


def keep_log_until(path: Path, step: int) -> None:
    """Keep the records of `path` (log.jsonl) up to `step`, where this run starts, so no step is logged twice.

    A run stopped after its last checkpoint had logged steps that the resumed run trains and
    logs again; a fresh run (step 0) starts a new log. A line cut by the stop is dropped.
    """
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
            kept.append(line + "\n")
    _replace(path, "".join(kept))


def keep_csv_until(path: Path, step: int) -> list[str]:
    """Keep the rows of `path` (metrics.csv) up to `step`; returns its columns ([] when it is gone)."""
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
        columns = list(rows[0].keys()) if rows else []
    kept = []
    for row in rows:
        try:
            if int(row.get("step") or -1) <= step and None not in row:
                kept.append(row)
        except ValueError:
            continue
    if not kept:
        path.unlink()
        return []
    _replace(path, _csv_text(columns, kept))
    return columns


def _csv_text(columns: list[str], rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _replace(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def scalar_tag(key: str) -> str:
    """The TensorBoard tag of a record key: train/mlm, val/mlm, lr, throughput/samples_per_s..."""
    if key.startswith("val_"):
        return f"val/{key[4:]}"
    if key in THROUGHPUT:
        return f"throughput/{key}"
    if key in ("lr", "grad_norm"):
        return key
    return f"train/{key}"


class RunLog:
    """Appends each record to log.jsonl, metrics.csv and (when `tensorboard`) TensorBoard events in `out`."""

    def __init__(self, out: Path, step: int, tensorboard: bool = True, warn=print):
        self.out = out
        if step == 0:  # a fresh run: the curves of an earlier run in this folder go with its log
            for old in out.glob("events.out.tfevents.*"):
                old.unlink()
        keep_log_until(out / LOG_FILE, step)
        self.columns = keep_csv_until(out / METRICS_FILE, step)
        self.jsonl = open(out / LOG_FILE, "a", encoding="utf-8")
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as error:  # the tensorboard package is missing
                warn(f"warning: no TensorBoard event files ({error}): pip install tensorboard")
            else:
                # purge_step: events a stopped run wrote after `step` are dropped when this run resumes.
                self.writer = SummaryWriter(str(out), purge_step=step + 1 if step else None, flush_secs=30)

    def write(self, record: dict) -> None:
        self.jsonl.write(json.dumps(record) + "\n")
        self.jsonl.flush()
        self._write_csv(record)
        if self.writer is not None:
            for key, value in record.items():
                if key not in NOT_SCALARS and isinstance(value, int | float):
                    self.writer.add_scalar(scalar_tag(key), value, record["step"])

    def _write_csv(self, record: dict) -> None:
        path = self.out / METRICS_FILE
        new = [key for key in record if key not in self.columns]
        if new:  # a column first seen now (the first validation loss): the file is written anew
            rows = []
            if path.exists():
                with open(path, newline="", encoding="utf-8") as f:
                    rows = list(csv.DictReader(f))
            self.columns = [*self.columns, *new]
            _replace(path, _csv_text(self.columns, [*rows, record]))
            return
        with open(path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n").writerow(record)

    def flush(self) -> None:
        """Everything recorded so far on disk (before the run folder is uploaded)."""
        self.jsonl.flush()
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        self.jsonl.close()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
