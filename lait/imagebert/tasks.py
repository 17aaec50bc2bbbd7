"""The four ImageBERT pre-training tasks: input masking, ITM pairs and the losses.

- **MLM** (masked language modelling): 15% of the text tokens; of those 80% become ``[MASK]``,
  10% a random token, 10% stay; cross-entropy on the original token.
- **MOC** (masked object classification): 15% of the regions; 90% of those have their feature
  zeroed, 10% keep it; cross-entropy against the detector label (or KL to the detector's label
  distribution when the regions have one and ``moc_kl`` is set).
- **MRFR** (masked region feature regression): the same masked regions; L2 between the region's
  output projected to the feature width and its input feature.
- **ITM** (image-text matching): the [CLS] output classifies matched / not matched. Each batch of
  B matched pairs gets ``itm_neg_ratio * B`` negatives, alternately the image of pair ``i`` with
  another pair's text and the text of pair ``i`` with another pair's image (in-batch). A
  "negative" that happens to share the image (two captions of one photo) is labelled matched.
- **Conditional mask** (the paper's section 4.2): the three masked losses are computed on matched
  pairs only; a negative pair's inputs are masked like the others' but contribute no target.

:func:`prepare` does all the random work on CPU, in the data workers, from a seeded generator, so
a batch is a pure function of its position in the stream (which makes resuming exact), and
:func:`pretraining_losses` turns the model's outputs into the per-task losses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from lait.imagebert.data import IGNORE_INDEX

TASKS = ("mlm", "moc", "mrfr", "itm")


@dataclass
class TaskConfig:
    """Masking probabilities, ITM negatives and loss weights (paper defaults)."""

    mlm_prob: float = 0.15  # share of text tokens masked
    moc_prob: float = 0.15  # share of regions masked
    region_zero_prob: float = 0.9  # share of masked regions whose feature is zeroed (the rest kept)
    itm_neg_ratio: float = 1.0  # negatives per matched pair (the paper: one wrong text + one wrong image = 2)
    moc_kl: bool = False  # MOC as KL to the label distribution (when the regions have label_probs)
    weight_mlm: float = 1.0
    weight_moc: float = 1.0
    weight_mrfr: float = 1.0
    weight_itm: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SpecialIds:
    """The tokenizer ids masking needs."""

    cls_id: int
    sep_id: int
    pad_id: int
    mask_id: int
    vocab_size: int

    @classmethod
    def of(cls, tokenizer) -> SpecialIds:
        return cls(tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id, tokenizer.mask_id, tokenizer.vocab_size)


def itm_pairs(image_key: torch.Tensor, ratio: float, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Rows of the ITM batch: ``(image_index, text_index, matched)`` over the B input pairs.

    The first B rows are the matched pairs; then ``round(ratio * B)`` negatives, each the anchor
    ``i`` with a different pair ``j`` (its text with j's image, then its image with j's text).
    ``matched`` compares image keys, so two captions of one image stay a match.
    """
    b = len(image_key)
    n_neg = int(round(ratio * b)) if b > 1 else 0
    anchor = torch.arange(n_neg) % b
    other = (anchor + torch.randint(1, max(b, 2), (n_neg,), generator=generator)) % b  # never the anchor itself
    swap_image = torch.arange(n_neg) % 2 == 0
    image = torch.cat([torch.arange(b), torch.where(swap_image, other, anchor)])
    text = torch.cat([torch.arange(b), torch.where(swap_image, anchor, other)])
    return image, text, image_key[image] == image_key[text]


def mask_text(input_ids: torch.Tensor, text_mask: torch.Tensor, ids: SpecialIds, prob: float,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: returns (masked ids, targets with ``IGNORE_INDEX`` where nothing is predicted)."""
    maskable = text_mask & (input_ids != ids.cls_id) & (input_ids != ids.sep_id)
    chosen = maskable & (torch.rand(input_ids.shape, generator=generator) < prob)
    action = torch.rand(input_ids.shape, generator=generator)
    random_ids = torch.randint(ids.vocab_size, input_ids.shape, generator=generator)
    masked = torch.where(chosen & (action < 0.8), ids.mask_id, input_ids)
    masked = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, masked)
    targets = torch.where(chosen, input_ids, IGNORE_INDEX)
    return masked, targets


def mask_regions(features: torch.Tensor, region_mask: torch.Tensor, prob: float, zero_prob: float,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (features with most masked regions zeroed, bool [B,R] of the masked regions)."""
    chosen = region_mask & (torch.rand(region_mask.shape, generator=generator) < prob)
    zero = chosen & (torch.rand(region_mask.shape, generator=generator) < zero_prob)
    return features.masked_fill(zero[..., None], 0.0), chosen


def prepare(batch: dict, config: TaskConfig, ids: SpecialIds, generator: torch.Generator) -> dict:
    """From a collated batch of B matched pairs to the model's inputs and the tasks' targets.

    Returns a dict with the model inputs (``input_ids``, ``text_mask``, ``features``, ``boxes``,
    ``region_mask``, ``mlm_index``, ``region_index``) and the targets (``mlm_targets [M]``,
    ``moc_labels [N]``, ``moc_probs [N,K]`` when available, ``mrfr_targets [N,D]``, ``itm_labels``),
    plus ``pairs`` (B, the matched pairs the batch came from).
    """
    image, text, matched = itm_pairs(batch["image_key"], config.itm_neg_ratio, generator)
    input_ids, mlm_targets = mask_text(batch["input_ids"][text], batch["text_mask"][text], ids,
                                       config.mlm_prob, generator)
    original = batch["features"][image]
    features, region_chosen = mask_regions(original, batch["region_mask"][image], config.moc_prob,
                                           config.region_zero_prob, generator)
    # the conditional mask: masked-modelling targets only on matched pairs
    mlm_targets[~matched] = IGNORE_INDEX
    region_chosen &= matched[:, None]
    mlm_index = (mlm_targets.flatten() != IGNORE_INDEX).nonzero().squeeze(1)
    region_index = region_chosen.flatten().nonzero().squeeze(1)
    out = {
        "input_ids": input_ids, "text_mask": batch["text_mask"][text], "features": features,
        "boxes": batch["boxes"][image], "region_mask": batch["region_mask"][image],
        "mlm_index": mlm_index, "region_index": region_index,
        "mlm_targets": mlm_targets.flatten()[mlm_index],
        "moc_labels": batch["labels"][image].flatten()[region_index],
        "mrfr_targets": original.flatten(0, 1)[region_index],
        "itm_labels": matched.long(), "pairs": len(batch["image_key"]),
    }
    if config.moc_kl and "label_probs" in batch:
        out["moc_probs"] = batch["label_probs"][image].flatten(0, 1)[region_index]
    return out


MODEL_INPUTS = ("input_ids", "text_mask", "features", "boxes", "region_mask", "mlm_index", "region_index")


def model_inputs(prepared: dict) -> dict:
    """The keyword arguments of :meth:`ImageBertForPretraining.forward` from :func:`prepare`'s output."""
    return {k: prepared[k] for k in MODEL_INPUTS}


def _loss_or_zero(prediction: torch.Tensor, loss) -> torch.Tensor:
    # no target in this batch (e.g. only negative pairs): 0, still attached to the graph so DDP syncs
    return loss() if prediction.shape[0] else prediction.sum() * 0.0


def pretraining_losses(outputs: dict, prepared: dict, config: TaskConfig) -> dict[str, torch.Tensor]:
    """Per-task losses (float32) and their weighted sum under ``"loss"``."""
    mlm_logits = outputs["mlm_logits"].float()
    mlm = _loss_or_zero(mlm_logits, lambda: F.cross_entropy(mlm_logits, prepared["mlm_targets"]))
    moc_logits = outputs["moc_logits"].float()
    if "moc_probs" in prepared:
        target = prepared["moc_probs"] / prepared["moc_probs"].sum(-1, keepdim=True).clamp_min(1e-6)
        moc = _loss_or_zero(moc_logits, lambda: F.kl_div(F.log_softmax(moc_logits, -1), target,
                                                          reduction="batchmean"))
    else:
        moc = _loss_or_zero(moc_logits, lambda: F.cross_entropy(moc_logits, prepared["moc_labels"]))
    mrfr_pred = outputs["mrfr"].float()
    mrfr = _loss_or_zero(mrfr_pred, lambda: F.mse_loss(mrfr_pred, prepared["mrfr_targets"].float()))
    itm = F.cross_entropy(outputs["itm_logits"].float(), prepared["itm_labels"])
    losses = {"mlm": mlm, "moc": moc, "mrfr": mrfr, "itm": itm}
    losses["loss"] = sum(getattr(config, f"weight_{name}") * value for name, value in losses.items())
    return losses
