"""Antialiased shrinking of RGB images on PyTorch's uint8 kernels, for the networks' and filters' inputs.

Pillow's BILINEAR/BICUBIC `resize` runs scalar code; PyTorch's antialiased `interpolate` on uint8
channels-last images (a port of Pillow-SIMD) computes the same filters with vector instructions.
Its weights have 16 bits where Pillow's have 22, so a few pixel values (well under 1% on photos)
come out one or two levels away from Pillow's. `bench/bench_filter_images.py --verdicts --compare`
measures what that does to the scores.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_TORCH_MODES = {Image.Resampling.BILINEAR: "bilinear", Image.Resampling.BICUBIC: "bicubic"}


def resized_planes(image: Image.Image, size: tuple[int, int], resample: Image.Resampling = Image.Resampling.BILINEAR,
                   reducing_gap: float | None = None) -> np.ndarray:
    """[3, height, width] uint8, contiguous: RGB `image` resized to `size` = (width, height).

    As ``image.resize(size, resample, reducing_gap=reducing_gap)``, split into channel planes, but
    for a few values one or two levels off where torch shrinks (see the module's docstring).
    Where `reducing_gap` makes Pillow first shrink by block averaging (sources over
    2 x reducing_gap times the size, which the pipeline's working images never are), Pillow
    resizes, so that such images keep that cheaper path.
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    if size == image.size or not _torch_can_resize(image.size, size, resample, reducing_gap):
        resized = image if size == image.size else image.resize(size, resample, reducing_gap=reducing_gap)
        return np.ascontiguousarray(np.asarray(resized).transpose(2, 0, 1))
    import torch.nn.functional as F

    # [1, 4, H, W] in channels-last memory: torch's vectorised uint8 kernel works on four
    # channels (it pads three to four and back), and Pillow holds RGB as four bytes per pixel.
    pixels = _rgbx_pixels(image).view(1, image.height, image.width, 4).permute(0, 3, 1, 2)
    resized = F.interpolate(pixels, size=(size[1], size[0]), mode=_TORCH_MODES[resample], antialias=True,
                            align_corners=False)
    return resized[0, :3].contiguous().numpy()


def _rgbx_pixels(image: Image.Image):
    """A flat uint8 tensor of RGB `image`'s pixels, four bytes each (RGBX).

    Pillow's own memory, without a copy, through its Arrow export; a copy of its bytes where
    the export refuses (an image in several memory blocks: tens of megapixels).
    """
    import pyarrow
    import torch

    try:
        return torch.from_dlpack(pyarrow.array(image).flatten())
    except ValueError:
        return torch.frombuffer(bytearray(image.tobytes("raw", "RGBX")), dtype=torch.uint8)


def _torch_can_resize(source: tuple[int, int], size: tuple[int, int], resample: Image.Resampling,
                      reducing_gap: float | None) -> bool:
    """Whether torch computes what Pillow does: the same filter, shrinking, no block-averaging step."""
    if resample not in _TORCH_MODES or size[0] > source[0] or size[1] > source[1]:
        return False
    if reducing_gap is None:
        return True
    return all(int(old / new / reducing_gap) <= 1 for old, new in zip(source, size))
