"""ImageBERT training: every loss falls on real captions, resume is exact, the commands run end to end."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch

from lait.imagebert.peak_flops import peak_flops
from lait.imagebert.train import TrainConfig, config_from_overrides, device_peak_flops, load_checkpoint, train
from lait.pipeline.cli import main as lait
from tests.conftest import shared_path
from tests.imagebert_fixtures import flickr_captions, write_pairs, write_small_vocab


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagebert")
    captions = flickr_captions(shared_path("captions", "captions.tsv"), images=8)  # 40 pairs
    corpus, regions = write_pairs(root, captions)
    vocab = write_small_vocab(root / "vocab.txt", [t for texts in captions.values() for t in texts])
    return root, corpus, regions, vocab


def tiny_config(data, out, **changes) -> TrainConfig:
    _, corpus, regions, vocab = data
    config = TrainConfig(data=str(corpus), regions=str(regions), out=str(out), preset="tiny", vocab_file=str(vocab),
                         batch_size=16, max_text_len=32, max_regions=16, shuffle_buffer=64, num_workers=0,
                         learning_rate=3e-3, warmup_steps=10, max_steps=40, log_interval=1, checkpoint_interval=1000)
    for key, value in changes.items():
        setattr(config, key, value)
    return config


def test_every_loss_is_finite_and_falls(data, tmp_path):
    torch.set_num_threads(1)
    # ITM only starts to fall once the cross-modal attention has formed; with the masked tasks
    # weighted down (a TaskConfig option) and a flat learning rate that happens within ~150 steps
    config = tiny_config(data, tmp_path / "run", max_steps=100_000, stop_after=600, dropout=0.0, learning_rate=2e-3,
                         num_workers=1)
    config.tasks.update(weight_mlm=0.1, weight_moc=0.1, weight_mrfr=0.1)
    records = train(config)
    assert len(records) == 600
    for task in ("mlm", "moc", "mrfr", "itm", "loss"):
        values = [r[task] for r in records]
        assert all(v == v and abs(v) < 1e4 for v in values), task  # finite
        first, last = sum(values[:20]) / 20, sum(values[-20:]) / 20
        assert last < 0.95 * first, f"{task} did not fall: {first:.3f} -> {last:.3f}"
    assert records[-1]["samples_per_s"] > 0 and records[-1]["tokens_per_s"] > records[-1]["samples_per_s"]


def test_resume_continues_with_identical_losses(data, tmp_path):
    torch.set_num_threads(1)
    settings = {"max_steps": 9, "num_workers": 2, "grad_accum": 1}
    whole = train(tiny_config(data, tmp_path / "whole", **settings))
    stopped = train(tiny_config(data, tmp_path / "split", stop_after=5, **settings))  # "killed" after step 5
    assert load_checkpoint(tmp_path / "split")["step"] == 5
    resumed = train(tiny_config(data, tmp_path / "split", resume=True, **settings))
    assert [r["step"] for r in stopped + resumed] == list(range(1, 10))
    for a, b in zip(whole, stopped + resumed):
        assert {k: a[k] for k in ("loss", "mlm", "moc", "mrfr", "itm", "lr")} == \
               {k: b[k] for k in ("loss", "mlm", "moc", "mrfr", "itm", "lr")}, a["step"]


def test_commands_train_two_stages_evaluate_and_finetune(data, tmp_path, capsys):
    root, corpus, regions, vocab = data
    common = ["--data", str(corpus), "--regions", str(regions), "--batch-size", "8", "--num-workers", "0",
              "--set", "max_regions=16", "--set", "log_interval=1"]
    assert lait(["train", "--stage", "1", "--preset", "tiny", "--out", str(tmp_path / "s1"), "--max-steps", "2",
                 "--set", f"vocab_file={vocab}", *common]) == 0
    assert lait(["train", "--stage", "2", "--init-from", str(tmp_path / "s1" / "last.pt"), "--out",
                 str(tmp_path / "s2"), "--max-steps", "2", "--set", "tasks.itm_neg_ratio=2", *common]) == 0
    stage2 = load_checkpoint(tmp_path / "s2")
    assert stage2["config"]["stage"] == 2 and stage2["step"] == 2 and stage2["config"]["tasks"]["itm_neg_ratio"] == 2
    log = [json.loads(line) for line in (tmp_path / "s2" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and {"mlm", "moc", "mrfr", "itm", "tokens_per_s"} <= set(log[0])
    capsys.readouterr()
    assert lait(["eval-retrieval", "--ckpt", str(tmp_path / "s2"), "--data", str(corpus), "--regions", str(regions),
                 "--n", "6"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out if line.startswith("R@")] == ["R@1", "R@5", "R@10"]
    metrics = json.loads(out[-1])
    assert metrics["n_images"] == 6 and metrics["n_texts"] == 30 and 0 <= metrics["text_retrieval"]["R@1"] <= 1
    assert lait(["finetune-retrieval", "--init-from", str(tmp_path / "s2"), "--out", str(tmp_path / "ft"),
                 "--max-steps", "2", "--group-size", "3", *common]) == 0
    finetuned = [json.loads(line) for line in (tmp_path / "ft" / "log.jsonl").read_text().splitlines()]
    assert {"binary", "multiclass", "triplet"} <= set(finetuned[-1])


def test_user_mistakes_are_one_line_errors(data, tmp_path, capsys):
    _, corpus, regions, _ = data
    assert lait(["train", "--data", str(tmp_path / "missing"), "--regions", str(regions), "--out", "x"]) == 2
    assert lait(["train", "--data", str(corpus), "--regions", str(regions), "--out", str(tmp_path / "r"),
                 "--set", "tasks.nope=1"]) == 2
    assert lait(["train", "--data", str(corpus), "--regions", str(corpus), "--out", str(tmp_path / "r")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(e.startswith("lait train: error:") for e in errors)
    with pytest.raises(ValueError, match="wants a float"):
        config_from_overrides(TrainConfig(), ["learning_rate=fast"])


def _events(run) -> dict[str, list[tuple[int, float]]]:
    """TensorBoard scalars of a run folder, read back with tensorboard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_metrics_csv_tensorboard_and_validation_losses_and_resume_records_each_step_once(data, tmp_path, capsys):
    torch.set_num_threads(1)
    settings = {"max_steps": 6, "val_fraction": 0.25, "eval_interval": 3, "batch_size": 8}
    whole = train(tiny_config(data, tmp_path / "whole", **settings))
    out = capsys.readouterr().out
    assert "validation loss every 3 steps on 8 pairs of 2 held-out images (val_fraction 0.25)" in out
    assert "24 pairs per epoch (6 of the 30 sit out each epoch" in out  # 8 images, 2 held out: 30 pairs left
    assert [("val_loss" in r) for r in whole] == [False, False, True, False, False, True]
    with open(tmp_path / "whole" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {"lr", "loss", "mlm", "moc", "mrfr", "itm", "samples_per_s", "val_loss", "val_itm"} <= set(rows[0])
    assert rows[0]["val_loss"] == "" and float(rows[2]["val_loss"]) == whole[2]["val_loss"]
    scalars = _events(tmp_path / "whole")
    assert [s for s, _ in scalars["train/loss"]] == [1, 2, 3, 4, 5, 6] and [s for s, _ in scalars["val/loss"]] == [3, 6]
    assert {"lr", "grad_norm", "train/mlm", "val/itm", "throughput/samples_per_s"} <= set(scalars)

    # A run resumed from an older checkpoint (step 3) than its logs (step 6): each step once, as in one run.
    split = tmp_path / "split"
    train(tiny_config(data, split, stop_after=3, **settings))
    shutil.copy(split / "last.pt", tmp_path / "step3.pt")
    train(tiny_config(data, split, resume=True, **settings))
    shutil.copy(tmp_path / "step3.pt", split / "last.pt")
    resumed = train(tiny_config(data, split, resume=True, **settings))
    assert [r["step"] for r in resumed] == [4, 5, 6]
    with open(split / "metrics.csv", newline="") as f:
        again = list(csv.DictReader(f))
    assert [int(r["step"]) for r in again] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(rows, again):
        assert {k: a[k] for k in ("loss", "val_loss", "lr")} == {k: b[k] for k in ("loss", "val_loss", "lr")}
    scalars = _events(split)
    assert [s for s, _ in scalars["train/loss"]] == [1, 2, 3, 4, 5, 6] and [s for s, _ in scalars["val/loss"]] == [3, 6]
    assert [round(v, 4) for _, v in scalars["val/loss"]] == [round(r["val_loss"], 4) for r in whole if "val_loss" in r]


def test_a_small_run_says_why_pairs_sit_out_and_when_there_is_no_validation(data, tmp_path, capsys):
    torch.set_num_threads(1)
    train(tiny_config(data, tmp_path / "run", max_steps=1, batch_size=16))
    out = capsys.readouterr().out
    assert "32 pairs per epoch (8 of the 40 sit out each epoch, others each time: an epoch is whole batches of 16)" \
        in out
    assert "no validation loss: val_fraction 0.01 holds out no image (too few images: raise it)" in out


@pytest.mark.parametrize("name, peak", [
    ("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12), ("NVIDIA H100 NVL", 835e12),
    ("NVIDIA H200", 989e12), ("NVIDIA A100-SXM4-80GB", 312e12), ("NVIDIA A100 80GB PCIe", 312e12),
    ("NVIDIA L40S", 362e12), ("NVIDIA L40", 181e12), ("NVIDIA L4", 121e12), ("Tesla T4", None), ("NVIDIA A10G", None),
])
def test_mfu_divides_by_the_peak_of_the_gpu_the_run_is_on(name, peak):
    assert peak_flops(name) == peak


def test_mfu_peak_given_by_the_user_wins_and_a_cpu_has_none(monkeypatch):
    lines = []
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    cuda = torch.device("cuda")
    assert device_peak_flops(cuda, TrainConfig(), lines.append) is None
    assert lines == ["no MFU: lait does not know the peak of Tesla T4; give it with --set peak_flops=FLOPS"]
    assert device_peak_flops(cuda, TrainConfig(peak_flops=65e12)) == 65e12
    assert device_peak_flops(torch.device("cpu"), TrainConfig(peak_flops=65e12)) is None
