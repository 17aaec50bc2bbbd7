"""resized_planes: Pillow's antialiased shrinking on PyTorch's uint8 kernels, within a level or two."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lait.encoders.image_resize import resized_planes
from tests.conftest import shared_path


def _photos(n: int) -> list[Image.Image]:
    paths = sorted(shared_path("natural", "photo").glob("*.jpg"))[:n]
    return [Image.open(path).convert("RGB") for path in paths]


@pytest.mark.parametrize("resample", [Image.Resampling.BILINEAR, Image.Resampling.BICUBIC])
def test_shrinking_gives_pillows_pixels_within_two_levels(resample):
    for photo in _photos(4):
        size = (photo.width * 5 // 8, photo.height * 5 // 8)
        planes = resized_planes(photo, size, resample, reducing_gap=2.0)
        pillow = np.asarray(photo.resize(size, resample, reducing_gap=2.0)).transpose(2, 0, 1)
        assert planes.shape == (3, size[1], size[0]) and planes.dtype == np.uint8 and planes.flags["C_CONTIGUOUS"]
        difference = np.abs(planes.astype(int) - pillow)
        assert difference.max() <= 2 and (difference > 0).mean() < 0.01


def test_pillow_resizes_where_it_would_block_average_first_or_enlarge():
    photo = _photos(1)[0].resize((900, 700))
    grey = Image.new("L", (300, 200), 90)
    for image, size in ((photo, (200, 155)), (photo, (1000, 800)), (grey, (150, 100))):
        expected = np.asarray(image.convert("RGB").resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))
        assert np.array_equal(resized_planes(image, size, reducing_gap=2.0), expected.transpose(2, 0, 1))
    assert np.array_equal(resized_planes(photo, photo.size), np.asarray(photo).transpose(2, 0, 1))


def test_statistics_image_has_the_size_pillows_thumbnail_gives():
    from lait.filters.naturalness import STATS_SIDE, _thumbnail_size

    for width in range(1, 1400, 37):
        for height in range(1, 1400, 41):
            thumbnail = Image.new("RGB", (width, height))
            thumbnail.thumbnail((STATS_SIDE, STATS_SIDE))
            assert _thumbnail_size(width, height, STATS_SIDE) == thumbnail.size


def test_an_image_in_several_memory_blocks_is_copied_and_resized_alike():
    big = Image.effect_noise((3000, 2000), 60).convert("RGB")  # beyond one of Pillow's 16 MB blocks
    planes = resized_planes(big, (750, 500))
    pillow = np.asarray(big.resize((750, 500), Image.Resampling.BILINEAR)).transpose(2, 0, 1)
    assert np.abs(planes.astype(int) - pillow).max() <= 2
