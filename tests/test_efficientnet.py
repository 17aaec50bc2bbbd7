"""EfficientNet-Lite0 wrapper: real weights, a real photo, the shapes other stages rely on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lait.encoders.efficientnet import (
    DETAIL_BLOCKS,
    DETAIL_DIM,
    EMBEDDING_DIM,
    IMAGENET_CLASSES,
    NUM_CLASSES,
    EfficientNetLite0,
)
from tests.conftest import shared_path

# Flickr8k dev photo whose five captions all describe a dog ("A black dog ...").
DOG_PHOTO = "989851184_9ef368e520.jpg"
DOG_CLASSES = range(151, 269)  # ILSVRC-2012 indices 151 (Chihuahua) .. 268 (Mexican hairless)


@pytest.fixture(scope="module")
def net() -> EfficientNetLite0:
    return EfficientNetLite0(device="cpu")


def test_class_names_are_the_standard_order():
    assert len(IMAGENET_CLASSES) == NUM_CLASSES
    assert IMAGENET_CLASSES[0] == "tench"
    assert IMAGENET_CLASSES[207] == "golden retriever"
    assert IMAGENET_CLASSES[999] == "toilet tissue"


def test_dog_photo_gets_a_dog_class_in_top5(net):
    image = Image.open(shared_path("captions", "images", DOG_PHOTO))
    embeddings, probs = net.embed_and_classify([image])
    assert embeddings.shape == (1, EMBEDDING_DIM) and embeddings.dtype == np.float32
    assert probs.shape == (1, NUM_CLASSES) and probs.dtype == np.float32
    assert probs.sum() == pytest.approx(1.0, abs=1e-4)
    top5 = np.argsort(-probs[0])[:5]
    assert any(int(c) in DOG_CLASSES for c in top5), [IMAGENET_CLASSES[c] for c in top5]


def test_feature_map_pooling_matches_embed_and_classify(net):
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)),
              Image.new("L", (256, 256), 128)]  # grey-scale input is converted to RGB
    batch = net.preprocess(images, size=256)
    assert batch.shape == (2, 3, 256, 256)
    fmap = net.feature_map(batch)
    assert fmap.shape == (2, EMBEDDING_DIM, 8, 8)
    emb224, probs224 = net.embed_and_classify(images)
    logits = net.classify_pooled(torch.from_numpy(emb224))
    assert np.allclose(torch.softmax(logits, 1).numpy(), probs224, atol=1e-5)


def test_detail_is_the_pooled_output_of_the_detail_blocks(net):
    """Read with hooks on the unfused network, independent of encode's own walk through the blocks."""
    images = [Image.open(shared_path("captions", "images", DOG_PHOTO)), Image.new("RGB", (300, 200), (200, 40, 40))]
    seen = {}
    hooks = [net.model._blocks[b].register_forward_hook(lambda m, i, o, b=b: seen.__setitem__(b, o.mean(dim=(2, 3))))
             for b in DETAIL_BLOCKS]
    try:
        with torch.inference_mode():
            pooled = net.model.extract_features(net.preprocess(images).contiguous()).mean(dim=(2, 3))
    finally:
        for hook in hooks:
            hook.remove()
    embeddings, probs, detail = net.encode(images)
    assert detail.shape == (2, DETAIL_DIM) and detail.dtype == np.float32
    expected = torch.cat([seen[b] for b in DETAIL_BLOCKS], dim=1).numpy()
    assert np.abs(detail - expected).max() < 1e-3 and np.abs(embeddings - pooled.numpy()).max() < 1e-3
    assert np.abs(detail[0] - detail[1]).max() > 0.1  # two different images, two different details


def test_empty_batch(net):
    embeddings, probs = net.embed_and_classify([])
    assert embeddings.shape == (0, EMBEDDING_DIM) and probs.shape == (0, NUM_CLASSES)
    assert net.encode([])[2].shape == (0, DETAIL_DIM)
