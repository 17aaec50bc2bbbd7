"""Safe decoding: hostile and unusual files become reasons, odd modes become clean RGB."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from lait.filters.image_decode import decode_image
from lait.filters.image_hashes import hamming_distance, phash, sha1_hex


def _encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _png_claiming(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose IHDR (with a valid CRC) claims another size."""
    data = bytearray(_encode(Image.new("RGB", (1, 1)), "PNG"))
    ihdr = bytearray(data[12:29])  # chunk type + 13 bytes of IHDR data
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def _pixel(decoded, xy=(5, 5)) -> tuple:
    return decoded.image.getpixel(xy)


def test_plain_jpeg_decodes_with_size_and_format():
    decoded = decode_image(_encode(_noise(640, 480), "JPEG"))
    assert decoded.ok and decoded.image.mode == "RGB"
    assert (decoded.width, decoded.height, decoded.image_format) == (640, 480, "JPEG")


def test_small_image_is_rejected_from_the_header_before_decoding():
    small = _encode(_noise(200, 200), "PNG")
    # Cut the pixel data: a full decode would fail, so too_small proves no decode happened.
    decoded = decode_image(small[:200])
    assert decoded.reason == "too_small" and (decoded.width, decoded.height) == (200, 200)
    assert decoded.image is None
    assert decode_image(_encode(_noise(301, 600), "JPEG")).ok
    assert decode_image(_encode(_noise(300, 600), "JPEG")).reason == "too_small"  # "larger than 300"


def test_aspect_ratio_bound():
    assert decode_image(_encode(_noise(1300, 400), "JPEG")).reason == "aspect_ratio"
    assert decode_image(_encode(_noise(1300, 400), "JPEG"), max_aspect_ratio=0).ok


def test_decompression_bombs_are_rejects_not_out_of_memory():
    # Claims 30000 x 30000 (900 M pixels) in a file of a few dozen bytes.
    assert decode_image(_png_claiming(30000, 30000)).reason == "decompression_bomb"
    # Under Pillow's own limit, above ours: refused from the header, never decoded.
    assert decode_image(_png_claiming(9000, 8000)).reason == "decompression_bomb"
    # The cap is a parameter: a real 1000 x 1000 image over a 500 k pixel cap.
    assert decode_image(_encode(_noise(1000, 1000), "JPEG"), max_pixels=500_000).reason == "decompression_bomb"


def test_truncated_and_corrupt_files():
    jpeg = _encode(_noise(500, 400), "JPEG", quality=90)
    png = _encode(_noise(500, 400), "PNG")
    assert decode_image(jpeg[: len(jpeg) // 2]).reason == "corrupt_image"
    assert decode_image(png[: len(png) // 2]).reason == "corrupt_image"
    assert decode_image(b"").reason == "corrupt_image"
    assert decode_image(np.random.default_rng(1).bytes(5000)).reason == "corrupt_image"
    assert decode_image(b"<html><body>404 not found</body></html>").reason == "corrupt_image"
    damaged = bytearray(png)
    damaged[len(png) // 2: len(png) // 2 + 64] = b"\x00" * 64  # breaks the zlib stream / CRC
    assert decode_image(bytes(damaged)).reason == "corrupt_image"


def test_svg_and_ico_are_unsupported_formats():
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400"></svg>'
    assert decode_image(svg).reason == "unsupported_format"
    assert decode_image(b"<svg xmlns='http://www.w3.org/2000/svg'/>").reason == "unsupported_format"
    ico = _encode(_noise(64, 64), "ICO", sizes=[(64, 64)])
    assert decode_image(ico).reason == "unsupported_format"


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (400, 400), (0, 255, 255, 0))  # pure red in CMYK
    decoded = decode_image(_encode(cmyk, "JPEG", quality=95))
    assert decoded.ok and decoded.image.mode == "RGB"
    r, g, b = _pixel(decoded)
    assert r > 200 and g < 60 and b < 60


def test_palette_with_transparency_is_composited_on_white():
    image = Image.new("P", (400, 400), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)  # index 0 black, index 1 red
    image.paste(1, (200, 0, 400, 400))
    decoded = decode_image(_encode(image, "PNG", transparency=0))
    assert decoded.ok
    assert _pixel(decoded, (10, 10)) == (255, 255, 255)  # transparent black -> white
    assert _pixel(decoded, (300, 10)) == (255, 0, 0)


def test_alpha_is_composited_on_white():
    rgba = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 200, 400))
    rgba.paste((255, 0, 0, 128), (200, 0, 400, 400))
    decoded = decode_image(_encode(rgba, "PNG"))
    assert _pixel(decoded, (10, 10)) == (0, 0, 255)
    r, g, b = _pixel(decoded, (300, 10))
    assert r == 255 and 120 <= g <= 135 and 120 <= b <= 135  # half red over white
    grey_alpha = Image.new("LA", (400, 400), (0, 0))
    assert _pixel(decode_image(_encode(grey_alpha, "PNG"))) == (255, 255, 255)
    webp = decode_image(_encode(rgba, "WEBP", lossless=True))
    assert webp.image_format == "WEBP" and _pixel(webp, (10, 10)) == (0, 0, 255)


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (400, 400), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    decoded = decode_image(data)
    assert decoded.ok and decoded.image_format == "GIF"
    r, g, b = _pixel(decoded)
    assert r > 240 and g < 15 and b < 15


def test_exif_orientation_is_applied():
    image = _noise(600, 400)
    image.paste((255, 0, 0), (0, 0, 100, 100))  # a red top-left corner in the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was rotated: display = stored rotated 90 degrees clockwise
    decoded = decode_image(_encode(image, "JPEG", exif=exif.tobytes(), quality=95), work_side=0)
    assert (decoded.width, decoded.height) == (400, 600)
    assert decoded.image.size == (400, 600)
    r, g, b = _pixel(decoded, (390, 10))  # the red corner is now top-right
    assert r > 200 and g < 60


def test_sixteen_bit_grey_is_rescaled():
    grey = Image.fromarray(np.full((400, 400), 65535 // 2, dtype=np.uint16))
    decoded = decode_image(_encode(grey, "PNG"))
    assert decoded.ok and abs(_pixel(decoded)[0] - 127) <= 2


def test_large_images_are_shrunk_to_the_working_size():
    decoded = decode_image(_encode(_noise(3000, 2000), "JPEG"))
    assert (decoded.width, decoded.height) == (3000, 2000)
    assert max(decoded.image.size) == 512
    full = decode_image(_encode(_noise(3000, 2000), "PNG"), work_side=0)
    assert full.image.size == (3000, 2000)


def test_hashes():
    photo = _noise(64, 64, seed=3).resize((640, 480), Image.Resampling.BICUBIC)
    jpeg = _encode(photo, "JPEG", quality=95)
    assert sha1_hex(jpeg) == sha1_hex(bytes(jpeg)) and len(sha1_hex(jpeg)) == 40
    original = phash(photo)
    assert len(original) == 16 and int(original, 16) >= 0
    recompressed = phash(Image.open(io.BytesIO(_encode(photo.resize((320, 240)), "JPEG", quality=40))))
    assert hamming_distance(original, recompressed) <= 4
    other = phash(_noise(64, 64, seed=4).resize((640, 480), Image.Resampling.BICUBIC))
    assert hamming_distance(original, other) > 12


@pytest.mark.parametrize("mode", ["1", "L", "I", "RGBX"])
def test_other_modes_become_rgb(mode):
    image = Image.new(mode, (400, 400))
    fmt = "TIFF" if mode in ("I", "RGBX") else "PNG"
    decoded = decode_image(_encode(image, fmt))
    assert decoded.ok and decoded.image.mode == "RGB"


def test_avif_decodes_where_pillow_supports_it():
    from PIL import features

    if not features.check("avif"):
        pytest.skip("this Pillow build has no AVIF codec")
    decoded = decode_image(_encode(Image.new("RGB", (400, 320), (0, 128, 255)), "AVIF", quality=80))
    assert decoded.ok and decoded.image_format == "AVIF" and (decoded.width, decoded.height) == (400, 320)
