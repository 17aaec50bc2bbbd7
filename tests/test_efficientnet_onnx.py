"""EfficientNet-Lite0 on ONNX Runtime: the graph written from the PyTorch weights gives PyTorch's outputs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lait.encoders.efficientnet import EfficientNetLite0
from lait.encoders.efficientnet_onnx import OnnxEfficientNetLite0
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def networks() -> tuple[EfficientNetLite0, OnnxEfficientNetLite0]:
    torch_net = EfficientNetLite0(device="cpu")
    return torch_net, OnnxEfficientNetLite0(network=torch_net)


def _photos(n: int) -> list[Image.Image]:
    paths = sorted(shared_path("natural", "photo").glob("*.jpg"))[:n]
    return [Image.open(path).convert("RGB") for path in paths] + [Image.new("L", (300, 900), 90)]


def test_preprocessing_is_pytorchs(networks):
    torch_net, onnx_net = networks
    images = _photos(3)
    assert np.array_equal(onnx_net.preprocess(images), torch_net.preprocess(images).numpy())
    assert onnx_net.preprocess(images).flags["C_CONTIGUOUS"]


def test_embeddings_and_probabilities_are_pytorchs(networks):
    torch_net, onnx_net = networks
    images = _photos(6)
    (emb, probs, detail), (torch_emb, torch_probs, torch_detail) = onnx_net.encode(images), torch_net.encode(images)
    assert emb.shape == (7, 1280) and probs.shape == (7, 1000) and detail.shape == (7, 512)
    assert emb.dtype == probs.dtype == detail.dtype == np.float32
    assert np.abs(emb - torch_emb).max() < 1e-4
    assert np.abs(detail - torch_detail).max() < 1e-4
    assert np.abs(probs - torch_probs).max() < 1e-5
    assert (probs.argmax(axis=1) == torch_probs.argmax(axis=1)).all()


def test_other_input_sizes_pad_like_tensorflow(networks):
    """"Same" padding as SAME_UPPER: the extra row and column at the end, at any size."""
    torch_net, onnx_net = networks
    images = _photos(2)
    for size in (192, 250):
        batch = torch_net.preprocess(images, size)
        (emb,) = onnx_net.session.run(["embedding"], {"images": batch.contiguous().numpy()})
        assert np.abs(emb - torch_net.feature_map(batch).mean(dim=(2, 3)).numpy()).max() < 1e-4


def test_empty_batch(networks):
    emb, probs = networks[1].embed_and_classify([])
    assert emb.shape == (0, 1280) and probs.shape == (0, 1000)
    assert networks[1].encode([])[2].shape == (0, 512)
