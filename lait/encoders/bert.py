"""A BERT encoder in plain torch whose parameter names match Hugging Face's ``BertModel``.

Used by the MiniLM sentence encoder (``lait.encoders.minilm``) and by the ImageBERT trainer.
Any Hugging Face BERT-layout checkpoint (``config.json`` + ``model.safetensors`` or
``pytorch_model.bin``) loads by name, without ``transformers`` and without executing code:

>>> config, state = load_hf_checkpoint("path/to/model")               # doctest: +SKIP
>>> model = BertModel(BertConfig.from_hf_config(config))               # doctest: +SKIP
>>> model.load_hf_state_dict(state)                                    # doctest: +SKIP
>>> hidden = model(input_ids, attention_mask)  # [B, L, H]             # doctest: +SKIP

Attention runs through ``torch.nn.functional.scaled_dot_product_attention``, which picks
a fused kernel where the hardware has one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BertConfig", "BertEmbeddings", "BertSelfAttention", "BertLayer", "BertEncoder", "BertModel",
    "load_hf_checkpoint",
]

# Keys in HF checkpoints that hold buffers, not parameters.
_BUFFER_KEYS = ("embeddings.position_ids",)


@dataclass
class BertConfig:
    """Architecture of a BERT encoder (defaults: BERT-base)."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    dropout: float = 0.1
    hidden_act: str = "gelu"
    pad_token_id: int = 0

    @classmethod
    def from_hf_config(cls, config: dict) -> BertConfig:
        """From a Hugging Face ``config.json`` dict (``num_hidden_layers``...)."""
        return cls(
            vocab_size=config.get("vocab_size", cls.vocab_size),
            hidden_size=config.get("hidden_size", cls.hidden_size),
            num_layers=config.get("num_hidden_layers", config.get("num_layers", cls.num_layers)),
            num_heads=config.get("num_attention_heads", config.get("num_heads", cls.num_heads)),
            intermediate_size=config.get("intermediate_size", cls.intermediate_size),
            max_position_embeddings=config.get("max_position_embeddings", cls.max_position_embeddings),
            type_vocab_size=config.get("type_vocab_size", cls.type_vocab_size),
            layer_norm_eps=config.get("layer_norm_eps", cls.layer_norm_eps),
            dropout=config.get("hidden_dropout_prob", config.get("dropout", cls.dropout)),
            hidden_act=config.get("hidden_act", cls.hidden_act),
            pad_token_id=config.get("pad_token_id", cls.pad_token_id),
        )

    def to_hf_config(self) -> dict:
        """The Hugging Face ``config.json`` dict for this architecture."""
        return {
            "model_type": "bert", "architectures": ["BertModel"],
            "vocab_size": self.vocab_size, "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_layers, "num_attention_heads": self.num_heads,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings,
            "type_vocab_size": self.type_vocab_size, "layer_norm_eps": self.layer_norm_eps,
            "hidden_dropout_prob": self.dropout, "attention_probs_dropout_prob": self.dropout,
            "hidden_act": self.hidden_act, "pad_token_id": self.pad_token_id,
        }

    def to_dict(self) -> dict:
        return asdict(self)


def _activation(name: str):
    if name == "gelu":
        return F.gelu
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    raise ValueError(f"unsupported hidden_act {name!r}")


class BertEmbeddings(nn.Module):
    """Word + position + token-type embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """[B, L] ids (or [B, L, H] `inputs_embeds`) -> [B, L, H]."""
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        batch, length = inputs_embeds.shape[:2]
        if position_ids is None:
            position_ids = torch.arange(length, device=inputs_embeds.device).expand(batch, length)
        if token_type_ids is None:
            token_type_ids = torch.zeros(batch, length, dtype=torch.long, device=inputs_embeds.device)
        x = inputs_embeds + self.position_embeddings(position_ids) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """Multi-head self-attention projections (HF name: ``attention.self``)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        if config.hidden_size % config.num_heads:
            raise ValueError(f"hidden_size {config.hidden_size} is not a multiple of num_heads {config.num_heads}")
        self.num_heads = config.num_heads
        self.head_dim = config.hidden_size // config.num_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.dropout

    def forward(self, hidden: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        batch, length, width = hidden.shape

        def heads(x: torch.Tensor) -> torch.Tensor:  # [B, L, H] -> [B, heads, L, head_dim]
            return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

        context = F.scaled_dot_product_attention(
            heads(self.query(hidden)), heads(self.key(hidden)), heads(self.value(hidden)),
            attn_mask=attn_mask, dropout_p=self.dropout_p if self.training else 0.0,
        )
        return context.transpose(1, 2).reshape(batch, length, width)


class _DenseResidualNorm(nn.Module):
    """dense -> dropout -> add residual -> LayerNorm (HF: ``attention.output`` and ``output``)."""

    def __init__(self, in_features: int, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class _Attention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = _DenseResidualNorm(config.hidden_size, config)

    def forward(self, hidden: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        return self.output(self.self(hidden, attn_mask), hidden)


class _Intermediate(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = _activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class BertLayer(nn.Module):
    """One post-LayerNorm transformer block: attention, then the feed-forward network."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = _Attention(config)
        self.intermediate = _Intermediate(config)
        self.output = _DenseResidualNorm(config.intermediate_size, config)

    def forward(self, hidden: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """[B, L, H] -> [B, L, H]; `attn_mask` is SDPA's: bool [B, 1, 1, L], True = attend."""
        attended = self.attention(hidden, attn_mask)
        return self.output(self.intermediate(attended), attended)


class BertEncoder(nn.Module):
    """A stack of :class:`BertLayer` (HF name: ``encoder.layer.N``)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_layers))

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encode `hidden` [B, L, H]; `attention_mask` [B, L] bool, True = a real token."""
        attn_mask = None
        if attention_mask is not None:
            attn_mask = attention_mask.to(torch.bool)[:, None, None, :]
        for layer in self.layer:
            hidden = layer(hidden, attn_mask)
        return hidden


class BertPooler(nn.Module):
    """tanh(dense([CLS] state)) (HF name: ``pooler``); only built when asked for."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


def init_bert_weights(module: nn.Module) -> None:
    """BERT's initialisation, for `nn.Module.apply`: N(0, 0.02) weights, zero biases, unit LayerNorm."""
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class BertModel(nn.Module):
    """Embeddings + encoder (+ optional pooler), named as Hugging Face's ``BertModel``.

    Parameters
    ----------
    config : BertConfig
    add_pooler : bool, default=False
        Build the ``pooler`` (needed only for [CLS]-pooled outputs).
    """

    def __init__(self, config: BertConfig, add_pooler: bool = False):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooler else None
        self.apply(init_bert_weights)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """[B, L] ids, [B, L] mask (True or 1 = real token) -> last hidden states [B, L, H]."""
        hidden = self.embeddings(input_ids, token_type_ids)
        return self.encoder(hidden, attention_mask)

    def load_hf_state_dict(self, state_dict: dict[str, torch.Tensor], strict: bool = True) -> list[str]:
        """Load a Hugging Face BERT state dict by name; returns the checkpoint keys not used.

        Keys of heads this model lacks (``cls.*``, or ``pooler.*`` without a pooler) are
        skipped; with `strict`, a parameter of this model missing from the checkpoint raises.
        """
        own = self.state_dict()
        usable = {k: v for k, v in state_dict.items() if k in own}
        missing = [k for k in own if k not in usable]
        if strict and missing:
            raise KeyError(f"checkpoint lacks {len(missing)} parameters, e.g. {missing[:3]}")
        self.load_state_dict(usable, strict=False)
        return sorted(set(state_dict) - set(usable))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    # weights_only: a .bin is a pickle; this refuses anything but tensors and plain containers.
    return torch.load(path, map_location="cpu", weights_only=True)


def load_hf_checkpoint(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read a Hugging Face BERT-layout checkpoint without executing code.

    Parameters
    ----------
    path : str or Path
        A folder with ``config.json`` and ``model.safetensors`` (preferred) or
        ``pytorch_model.bin``; or one of those weight files (its folder's ``config.json``
        is read when present).

    Returns
    -------
    config : dict
        The ``config.json`` contents (empty when there is none).
    state_dict : dict of str to Tensor
        Parameters with a leading ``bert.`` stripped (as saved by ``BertForPreTraining``)
        and buffer-only keys (``embeddings.position_ids``) dropped.
    """
    path = Path(path)
    if path.is_dir():
        folder = path
        candidates = [folder / "model.safetensors", folder / "pytorch_model.bin"]
        weights = next((p for p in candidates if p.exists()), None)
        if weights is None:
            raise FileNotFoundError(f"{folder} has neither model.safetensors nor pytorch_model.bin")
    elif path.exists():
        folder, weights = path.parent, path
    else:
        raise FileNotFoundError(f"no checkpoint at {path}")
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.exists() else {}
    state: dict[str, torch.Tensor] = {}
    for key, value in _read_weights(weights).items():
        key = key[len("bert."):] if key.startswith("bert.") else key
        if key not in _BUFFER_KEYS:
            state[key] = value
    return config, state

