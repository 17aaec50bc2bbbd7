"""Bench: ImageBERT pre-training throughput against a torch.nn.TransformerEncoder of equal size.

For each preset (minilm, base) it times full training steps (the four tasks' masking done
beforehand, forward, the four losses, backward, AdamW) at the paper's shape: 36 text tokens and
100 regions of 2048-d features with 1600 labels, one ITM negative per pair. The reference has the
same width, depth, heads, FFN, embeddings and heads, but its encoder is
``torch.nn.TransformerEncoder`` (batch_first, post-LayerNorm, GELU), timed in the same run on
the same batches. On CUDA it also reports MFU (bf16 autocast; PaLM-style 6N + 12LHS FLOPs per
token, peak from --peak-flops, else the GPU's datasheet figure by its name). Prints one JSON object.

    nice -n 10 .venv/bin/python bench/bench_imagebert.py                # CPU, a few steps each
    .venv/bin/python bench/bench_imagebert.py --device cuda --pairs 64 --steps 20 --compile
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lait.imagebert import tasks  # noqa: E402
from lait.imagebert.model import ImageBertForPretraining, preset_config  # noqa: E402
from lait.imagebert.train import TrainConfig, device_peak_flops  # noqa: E402

FEATURE_DIM, NUM_LABELS, VOCAB = 2048, 1600, 30522


class ReferenceModel(nn.Module):
    """Same sizes and heads as ImageBERT, encoder from torch.nn.TransformerEncoder."""

    def __init__(self, config):
        super().__init__()
        h = config.hidden_size
        self.word = nn.Embedding(config.vocab_size, h)
        self.position = nn.Embedding(config.max_position_embeddings, h)
        self.segment = nn.Embedding(2, h)
        self.feature_proj, self.box_proj = nn.Linear(config.feature_dim, h), nn.Linear(5, h)
        self.norm_text, self.norm_image = nn.LayerNorm(h), nn.LayerNorm(h)
        layer = nn.TransformerEncoderLayer(h, config.num_heads, config.intermediate_size, dropout=config.dropout,
                                           activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)
        self.pooler = nn.Linear(h, h)
        self.mlm_transform, self.mlm_bias = nn.Linear(h, h), nn.Parameter(torch.zeros(config.vocab_size))
        self.moc = nn.Sequential(nn.Linear(h, h), nn.GELU(), nn.LayerNorm(h), nn.Linear(h, config.num_labels))
        self.mrfr = nn.Sequential(nn.Linear(h, h), nn.GELU(), nn.LayerNorm(h), nn.Linear(h, config.feature_dim))
        self.itm = nn.Linear(h, 2)

    def forward(self, input_ids, text_mask, features, boxes, region_mask, mlm_index, region_index):
        t = input_ids.shape[1]
        text = self.norm_text(self.word(input_ids) + self.position(torch.arange(t, device=input_ids.device))
                              + self.segment.weight[0])
        image = self.norm_image(self.feature_proj(features) + self.box_proj(boxes) + self.segment.weight[1])
        hidden = self.encoder(torch.cat([text, image], 1), src_key_padding_mask=~torch.cat([text_mask, region_mask], 1))
        mlm = F.linear(F.gelu(self.mlm_transform(hidden[:, :t].flatten(0, 1)[mlm_index])), self.word.weight,
                       self.mlm_bias)
        regions = hidden[:, t:].flatten(0, 1)[region_index]
        return {"itm_logits": self.itm(torch.tanh(self.pooler(hidden[:, 0]))), "mlm_logits": mlm,
                "moc_logits": self.moc(regions), "mrfr": self.mrfr(regions)}


def make_batch(pairs: int, text_len: int, regions: int, generator: torch.Generator) -> dict:
    ids = torch.randint(1000, VOCAB, (pairs, text_len), generator=generator)
    ids[:, 0], ids[:, -1] = 101, 102
    return {"input_ids": ids, "text_mask": torch.ones(pairs, text_len, dtype=torch.bool),
            "features": torch.rand(pairs, regions, FEATURE_DIM, generator=generator),
            "boxes": torch.rand(pairs, regions, 5, generator=generator),
            "region_mask": torch.ones(pairs, regions, dtype=torch.bool),
            "labels": torch.randint(0, NUM_LABELS, (pairs, regions), generator=generator),
            "image_key": torch.arange(pairs)}


def time_training(model, batches: list[dict], device, steps: int, warmup: int) -> dict:
    config = tasks.TaskConfig()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda" or None,
                                  foreach=None if device.type == "cuda" else True)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu",
                                                                                                          enabled=False)
    model.train()
    times = []
    for i in range(warmup + steps):
        batch = batches[i % len(batches)]
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with autocast:
            outputs = model(**tasks.model_inputs(batch))
            loss = tasks.pretraining_losses(outputs, batch, config)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    seconds = sum(times)
    pairs = sum(batches[(warmup + i) % len(batches)]["pairs"] for i in range(steps))
    tokens = sum(int(batches[(warmup + i) % len(batches)]["text_mask"].sum()
                     + batches[(warmup + i) % len(batches)]["region_mask"].sum()) for i in range(steps))
    return {"samples_per_s": round(pairs / seconds, 3), "tokens_per_s": round(tokens / seconds, 1),
            "step_s": round(seconds / steps, 3), "tokens": tokens, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="minilm,base")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pairs", type=int, default=4, help="matched pairs per step (ITM doubles the rows)")
    parser.add_argument("--text-len", type=int, default=36)
    parser.add_argument("--regions", type=int, default=100)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument("--peak-flops", type=float, default=0.0,
                        help="per device, for MFU (default: the GPU's datasheet bf16 peak, lait.imagebert.peak_flops)")
    args = parser.parse_args()
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    ids = tasks.SpecialIds(cls_id=101, sep_id=102, pad_id=0, mask_id=103, vocab_size=VOCAB)
    raw = [make_batch(args.pairs, args.text_len, args.regions, generator) for _ in range(2)]
    batches = [{k: v.to(device) if torch.is_tensor(v) else v
                for k, v in tasks.prepare(b, tasks.TaskConfig(), ids, generator).items()} for b in raw]
    result = {"bench": "imagebert_training", "device": str(device), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "machine": platform.machine(), "pairs_per_step": args.pairs,
              "rows_per_step": int(batches[0]["input_ids"].shape[0]), "text_len": args.text_len,
              "regions": args.regions, "steps": args.steps, "presets": {}}
    peak = device_peak_flops(device, TrainConfig(peak_flops=args.peak_flops))
    if device.type == "cuda":
        result["device_name"], result["peak_flops"] = torch.cuda.get_device_name(device), peak
    for preset in args.presets.split(","):
        config = preset_config(preset, FEATURE_DIM, NUM_LABELS, VOCAB, dropout=0.1)
        entry = {}
        for name, build in (("imagebert", ImageBertForPretraining), ("reference_nn_transformer", ReferenceModel)):
            torch.manual_seed(0)
            model = build(config).to(device)
            run = torch.compile(model, dynamic=True) if args.compile else model
            timing = time_training(run, batches, device, args.steps, args.warmup)
            timing["parameters_m"] = round(sum(p.numel() for p in model.parameters()) / 1e6, 1)
            if peak and name == "imagebert":
                flops = model.flops_per_token(args.text_len + args.regions) * timing["tokens"] / timing["seconds"]
                timing["mfu"] = round(flops / peak, 4)
            timing.pop("tokens"), timing.pop("seconds")
            entry[name] = timing
            del model, run
        entry["speed_ratio"] = round(entry["imagebert"]["tokens_per_s"]
                                     / entry["reference_nn_transformer"]["tokens_per_s"], 3)
        result["presets"][preset] = entry
        print(json.dumps({preset: entry}), file=sys.stderr, flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
