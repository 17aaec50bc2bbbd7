"""Where a training run keeps its checkpoint and records: a local folder, or a URL.

    run = RunDirectory("s3://bucket/runs/stage1")   # or "runs/stage1"
    run.pull()                # an earlier run's last.pt and records, to resume from (or to replace)
    ... train, writing into run.local ...
    run.push()                # after each checkpoint: what changed goes up
    run.close()

Training writes its files (``last.pt``, ``config.json``, ``log.jsonl``, ``metrics.csv``,
TensorBoard events) with local file operations: appends, renames, ``torch.save``. For a URL
(``s3://``, ``gs://``, ... through :mod:`lait.storage`) they go into a local staging folder,
and :meth:`RunDirectory.push` uploads the files that changed since the last push, as Hugging
Face's Trainer pushes each checkpoint to the Hub: the bucket holds the run as of its last
checkpoint. Each upload is whole or absent (:func:`lait.storage.copy_file`), and
``last.pt`` goes up last, so a run killed mid-push leaves the previous checkpoint, whose
records a resumed run trims to its step anyway (:mod:`lait.imagebert.run_log`).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from lait import storage

CHECKPOINT_FILE = "last.pt"


class RunDirectory:
    """A run's folder: `out` itself when local, else a staging folder mirrored to the URL `out`."""

    def __init__(self, out: str):
        self.out = str(out)
        self.url = self.out if storage.is_url(self.out) else None
        self.local = Path(tempfile.mkdtemp(prefix="lait-run-")) if self.url else Path(self.out)
        self._pushed: dict[str, tuple[int, int]] = {}  # name -> (size, mtime_ns) when uploaded

    def pull(self, checkpoint: bool = True) -> None:
        """Copy the URL's files into the staging folder (nothing to do for a local folder).

        Without `checkpoint` (a fresh run), ``last.pt`` stays where it is: the run replaces it. The
        other files come down so that the run treats them as it would in a local folder (a fresh
        run drops an earlier run's TensorBoard events), and :meth:`push` removes what it removed.
        """
        if self.url is None or not storage.exists(self.url):
            return
        prefix = storage.join(self.url, "x")[:-1]
        for remote in storage.find(self.url):
            name = remote[len(prefix):]
            if name == CHECKPOINT_FILE and not checkpoint:
                continue
            target = self.local / name
            target.parent.mkdir(parents=True, exist_ok=True)
            storage.copy_file(remote, str(target))
            self._pushed[name] = _signature(target)

    def push(self) -> None:
        """Upload the staged files that changed since the last push, the checkpoint last; remove
        the URL's copies of files the run deleted."""
        if self.url is None:
            return
        # A name with ".tmp" or ".partial-" is a file being written (save_checkpoint, copy_file).
        staged = {str(p.relative_to(self.local)): _signature(p) for p in self.local.rglob("*")
                  if p.is_file() and not p.name.endswith(".tmp") and ".partial-" not in p.name}
        gone = sorted(set(self._pushed) - set(staged))
        storage.delete([storage.join(self.url, name) for name in gone])
        for name in gone:
            del self._pushed[name]
        changed = sorted((name for name, signature in staged.items() if self._pushed.get(name) != signature),
                         key=lambda name: (name == CHECKPOINT_FILE, name))
        for folder in sorted({name.rpartition("/")[0] for name in changed}):
            storage.makedirs(storage.join(self.url, folder))  # a filesystem's folders (an object store has none)
        for name in changed:
            storage.copy_file(str(self.local / name), storage.join(self.url, name))
            self._pushed[name] = staged[name]

    def close(self) -> None:
        """Remove the staging folder (a local run folder stays, of course)."""
        if self.url is not None:
            shutil.rmtree(self.local, ignore_errors=True)


def _signature(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns
