"""Fine-tune ImageBERT for retrieval with the paper's three losses (section 4.3).

Each matched pair becomes a group of one positive and P-1 negatives (alternately the image with
another pair's text and the text with another pair's image, in-batch), all scored by the ITM
head's log-odds ``s``:

- **binary**: cross-entropy of the ITM head on every pair of the group (matched or not);
- **multi-class**: softmax cross-entropy over the group's P scores, the positive being the class;
- **triplet**: ``max(0, margin - p(positive) + p(hardest negative))`` on the match probabilities.

A "negative" that shares the positive's image (another caption of the same photo) is left out of
the multi-class and triplet losses and counts as matched in the binary one. The loop, data,
checkpoints and resume are :func:`lait.imagebert.train.train`'s, so this runs single-process or under
torchrun like pre-training:

    lait finetune-retrieval --init-from runs/stage2/last.pt --data out/flickr_train \\
        --regions out/flickr_train_regions --out runs/finetune --max-steps 2000
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from lait.imagebert.tasks import MODEL_INPUTS
from lait.imagebert.train import TrainConfig, train

LOSSES = ("binary", "multiclass", "triplet")


@dataclass
class RetrievalConfig:
    """Group size, triplet margin and loss weights."""

    group_size: int = 4  # P: one positive and P-1 negatives per matched pair
    margin: float = 0.2  # triplet margin, on match probabilities
    weight_binary: float = 1.0
    weight_multiclass: float = 1.0
    weight_triplet: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


def retrieval_groups(image_key: torch.Tensor, group_size: int, generator: torch.Generator):
    """``(image_index [B,P], text_index [B,P], matched [B,P])``; column 0 holds the positives."""
    b = len(image_key)
    anchor = torch.arange(b)[:, None].expand(b, group_size - 1)
    other = (anchor + torch.randint(1, max(b, 2), (b, group_size - 1), generator=generator)) % b
    swap_image = (torch.arange(group_size - 1) % 2 == 0)[None, :]
    image = torch.cat([torch.arange(b)[:, None], torch.where(swap_image, other, anchor)], dim=1)
    text = torch.cat([torch.arange(b)[:, None], torch.where(swap_image, anchor, other)], dim=1)
    return image, text, image_key[image] == image_key[text]


class RetrievalObjective:
    """The fine-tuning objective for :func:`lait.imagebert.train.train` (prepare in workers, losses here)."""

    def __init__(self, config: RetrievalConfig):
        self.config = config

    def prepare(self, batch: dict, generator: torch.Generator) -> dict:
        image, text, matched = retrieval_groups(batch["image_key"], self.config.group_size, generator)
        image, text = image.flatten(), text.flatten()
        return {"input_ids": batch["input_ids"][text], "text_mask": batch["text_mask"][text],
                "features": batch["features"][image], "boxes": batch["boxes"][image],
                "region_mask": batch["region_mask"][image], "matched": matched, "pairs": len(batch["image_key"])}

    def losses(self, model, batch: dict) -> dict[str, torch.Tensor]:
        inputs = {k: batch[k] for k in MODEL_INPUTS if k in batch}
        logits = model(**inputs)["itm_logits"].float()
        return retrieval_losses(logits, batch["matched"], self.config)


def retrieval_losses(itm_logits: torch.Tensor, matched: torch.Tensor, config: RetrievalConfig) -> dict:
    """The three losses from ITM logits ``[B*P, 2]`` and ``matched [B,P]`` (column 0 positive)."""
    b, p = matched.shape
    binary = F.cross_entropy(itm_logits, matched.flatten().long())
    scores = (itm_logits[:, 1] - itm_logits[:, 0]).view(b, p)
    false_negative = matched.clone()
    false_negative[:, 0] = False
    multiclass = F.cross_entropy(scores.masked_fill(false_negative, float("-inf")),
                                 torch.zeros(b, dtype=torch.long, device=scores.device))
    prob = torch.sigmoid(scores)  # = softmax(itm_logits)[:, 1]
    hardest = prob[:, 1:].masked_fill(matched[:, 1:], 0.0).max(dim=1).values
    triplet = F.relu(config.margin - prob[:, 0] + hardest).mean()
    losses = {"binary": binary, "multiclass": multiclass, "triplet": triplet}
    losses["loss"] = sum(getattr(config, f"weight_{name}") * value for name, value in losses.items())
    return losses


def finetune(config: TrainConfig, retrieval: RetrievalConfig | None = None) -> list[dict]:
    """Fine-tune (usually from ``config.init_from``, a pre-trained checkpoint); returns the log records."""
    retrieval = retrieval or RetrievalConfig(**config.retrieval)
    config.objective, config.retrieval = "retrieval", retrieval.to_dict()
    return train(config, RetrievalObjective(retrieval))
