"""A training run's folder at a URL: staged locally, pushed after each checkpoint, pulled to resume.

The URL here is a file:// one (fsspec's local filesystem, through lait.storage as any URL);
tests/test_cloud_paths.py trains against a real S3 server.
"""

from __future__ import annotations

from lait.imagebert.run_directory import RunDirectory


def _files(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_run_at_a_url_is_pushed_whole_replaced_by_a_fresh_run_and_pulled_to_resume(tmp_path):
    remote = tmp_path / "bucket" / "run"
    url = f"file://{remote}"

    first = RunDirectory(url)
    assert first.local != remote
    (first.local / "config.json").write_text("{}")
    (first.local / "events.out.tfevents.1").write_bytes(b"old curves")
    (first.local / "last.tmp").write_bytes(b"half a checkpoint")  # torch.save under way: never uploaded
    first.push()
    (first.local / "last.pt").write_bytes(b"step 5")
    first.push()
    first.close()
    assert _files(remote) == {"config.json": b"{}", "events.out.tfevents.1": b"old curves", "last.pt": b"step 5"}
    assert not first.local.exists()

    # A fresh run into the same URL replaces the checkpoint and drops what it drops locally (the old events).
    fresh = RunDirectory(url)
    fresh.pull(checkpoint=False)
    assert sorted(_files(fresh.local)) == ["config.json", "events.out.tfevents.1"]
    (fresh.local / "events.out.tfevents.1").unlink()
    (fresh.local / "events.out.tfevents.2").write_bytes(b"new curves")
    (fresh.local / "last.pt").write_bytes(b"step 1")
    fresh.push()
    fresh.close()
    assert _files(remote) == {"config.json": b"{}", "events.out.tfevents.2": b"new curves", "last.pt": b"step 1"}

    resumed = RunDirectory(url)
    resumed.pull()
    assert _files(resumed.local) == _files(remote)
    resumed.close()


def test_a_local_run_folder_is_used_as_it_is(tmp_path):
    run = RunDirectory(str(tmp_path / "run"))
    assert run.local == tmp_path / "run"
    run.pull()
    run.push()
    run.close()
    assert not (tmp_path / "run").exists()  # nothing made or removed: training makes the folder
