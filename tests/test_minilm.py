"""MiniLM sentence encoder in plain torch, and the HF-named BERT it runs on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lait.encoders.bert import BertConfig, BertModel, load_hf_checkpoint
from lait.encoders.minilm import MiniLMEncoder, minilm_model_dir


@pytest.fixture(scope="module")
def encoder() -> MiniLMEncoder:
    try:
        minilm_model_dir()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    return MiniLMEncoder()


def test_similarities_match_sentence_transformers(encoder):
    # Figures of the reference implementation (shared/MODELS.md): 0.60 and 0.08.
    emb = encoder.encode(["a dog runs on the grass", "a puppy running in a field", "a stock market report"])
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert abs(float(emb[0] @ emb[1]) - 0.60) < 0.02
    assert abs(float(emb[0] @ emb[2]) - 0.08) < 0.02


def test_padding_does_not_change_an_embedding(encoder):
    alone = encoder.encode(["two children play in the snow"])
    batched = encoder.encode(["x", "two children play in the snow", "a " * 80 + "long caption"], batch_size=3)
    np.testing.assert_allclose(alone[0], batched[1], atol=1e-5)


def test_empty_input_and_empty_text(encoder):
    assert encoder.encode([]).shape == (0, 384)
    assert np.isfinite(encoder.encode([""])).all()


def test_hf_checkpoint_loads_by_name(tmp_path):
    config, state = load_hf_checkpoint(minilm_model_dir())
    model = BertModel(BertConfig.from_hf_config(config), add_pooler=True)
    assert set(model.state_dict()) == set(state)
    assert BertModel(BertConfig.from_hf_config(config)).load_hf_state_dict(state) == [
        "pooler.dense.bias", "pooler.dense.weight"]
    # A "bert."-prefixed .bin (BertForPreTraining layout) reads the same, via weights_only.
    torch.save({"bert." + k: v for k, v in list(state.items())[:3]}, tmp_path / "pytorch_model.bin")
    _, prefixed = load_hf_checkpoint(tmp_path / "pytorch_model.bin")
    assert list(prefixed) == list(state)[:3]
    assert BertConfig.from_hf_config(BertConfig.from_hf_config(config).to_hf_config()).num_layers == 6
