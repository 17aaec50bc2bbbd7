"""Safe image decoding: check the header first, decode only what passes, never run out of memory.

`decode_image(data)` reads width, height and format from the header, rejects images that are
too small, too elongated or so large they look like decompression bombs *before* any pixel
is decoded, then decodes the first frame, applies the EXIF orientation and returns an RGB
image (alpha composited on white, CMYK/palette/16-bit converted) no larger than
`work_side` on its longer side; that is what the NSFW, naturalness and hash models read.
Every failure comes back as a reason code, never as an exception.

Reason codes: ``too_small``, ``aspect_ratio``, ``decompression_bomb``, ``corrupt_image``,
``unsupported_format``.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Raster formats browsers show and Pillow decodes (the JPEG opener also returns MPO, the
# multi-picture JPEG of cameras). Restricting Image.open to these keeps Pillow's many other
# parsers away from untrusted bytes.
_WEB_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")
Image.init()
# Only those this Pillow build registers (AVIF needs Pillow >= 11.2): Image.open raises
# KeyError for a format id it does not know.
SUPPORTED_FORMATS = tuple(name for name in _WEB_FORMATS if name in Image.OPEN)
TOO_SMALL, ASPECT_RATIO, BOMB = "too_small", "aspect_ratio", "decompression_bomb"
CORRUPT, UNSUPPORTED = "corrupt_image", "unsupported_format"
# The training images of the naturalness model are at most 512 px on their longer side.
WORK_SIDE = 512
_EXIF_ORIENTATION = 0x0112
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)  # rotated by 90 degrees: width and height swap
_WHITE = (255, 255, 255)
# Magic bytes of formats that are images but not ones we decode (to tell them from garbage).
_OTHER_IMAGE_MAGIC = (
    b"\x00\x00\x01\x00",  # ICO
    b"\x00\x00\x02\x00",  # CUR
    b"8BPS",  # PSD
    b"\x00\x00\x00\x0cjP  ",  # JPEG 2000
    b"\xff\x4f\xff\x51",  # JPEG 2000 codestream
    b"\xff\x0a",  # JPEG XL codestream
    b"\x00\x00\x00\x0cJXL ",  # JPEG XL container
)


@dataclass
class DecodedImage:
    """What `decode_image` found: the RGB working image, or the reason it was refused.

    `width`/`height` are the full-resolution size after EXIF orientation (0 when the
    header could not be read); `image` is None when `reason` is set.
    """

    width: int = 0
    height: int = 0
    image_format: str | None = None
    image: Image.Image | None = None
    reason: str | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def decode_image(data: bytes, min_side: int = 300, max_aspect_ratio: float = 3.0,
                 max_pixels: int = 60_000_000, work_side: int = WORK_SIDE) -> DecodedImage:
    """Decode `data` safely into an RGB image, or say why not.

    Parameters
    ----------
    data : bytes
        The image file.
    min_side : int, default=300
        Width and height must both be larger than this (LAIT keeps images larger than
        300 px); 0 disables the check.
    max_aspect_ratio : float, default=3.0
        Longer side / shorter side above this is refused; 0 disables the check.
    max_pixels : int, default=60_000_000
        Width x height above this is refused as a decompression bomb, from the header.
    work_side : int, default=512
        The returned image is shrunk so that its longer side is at most this (0: full size).
    """
    try:
        with warnings.catch_warnings():
            # Our own pixel cap is the check; Pillow's warning (at 89 M pixels) is noise here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError as error:
        return DecodedImage(reason=BOMB, detail=str(error))
    except UnidentifiedImageError:
        return DecodedImage(reason=_unidentified_reason(data), detail=_sniff(data))
    except Exception as error:  # header parsers raise many types on hostile data
        return DecodedImage(reason=CORRUPT, detail=f"{type(error).__name__}: {error}")
    with image:
        width, height, image_format = image.width, image.height, image.format
        found = DecodedImage(width=width, height=height, image_format=image_format)
        refusal = _check_size(width, height, min_side, max_aspect_ratio, max_pixels)
        if refusal:
            found.reason, found.detail = refusal
            return found
        try:
            working = _decode_first_frame(image, work_side)
        except Image.DecompressionBombError as error:
            found.reason, found.detail = BOMB, str(error)
            return found
        except Exception as error:  # decoders raise many types on damaged data
            # Truncated or damaged pixel data ("image file is truncated", bad EXIF, broken LZW...).
            found.reason, found.detail = CORRUPT, f"{type(error).__name__}: {error}"
            return found
        if image.getexif().get(_EXIF_ORIENTATION) in _TRANSPOSING_ORIENTATIONS:
            found.width, found.height = height, width
        found.image = working
        return found


def _check_size(width: int, height: int, min_side: int, max_aspect_ratio: float,
                max_pixels: int) -> tuple[str, str] | None:
    """The header checks, all invariant to a 90-degree EXIF rotation."""
    size = f"{width}x{height}"
    if width <= 0 or height <= 0:
        return CORRUPT, f"empty image {size}"
    if max_pixels and width * height > max_pixels:
        return BOMB, f"{size} = {width * height} pixels > {max_pixels}"
    reason = size_refusal(width, height, min_side, max_aspect_ratio)
    return (reason, size) if reason else None


def size_refusal(width: int, height: int, min_side: int = 300, max_aspect_ratio: float = 3.0) -> str | None:
    """``too_small`` or ``aspect_ratio`` when a (positive) size fails the bounds, else None."""
    if min_side and min(width, height) <= min_side:
        return TOO_SMALL
    if max_aspect_ratio and max(width, height) / min(width, height) > max_aspect_ratio:
        return ASPECT_RATIO
    return None


def _decode_first_frame(image: Image.Image, work_side: int) -> Image.Image:
    """Full decode of frame 0, shrunk to `work_side`, oriented, flattened to RGB."""
    # Image.open leaves an animation on frame 0; asking for n_frames would parse every frame.
    if work_side and image.format in ("JPEG", "MPO"):
        # JPEG can decode at 1/2, 1/4 or 1/8 scale directly: far less work for big photos.
        # draft() keeps the result at least the requested size.
        scale = work_side / max(image.size)
        if scale < 1:
            image.draft("RGB", (max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    image.load()
    oriented = ImageOps.exif_transpose(image)
    rgb = _to_rgb(oriented)
    if work_side and max(rgb.size) > work_side:
        rgb.thumbnail((work_side, work_side), Image.Resampling.BICUBIC, reducing_gap=2.0)
    return rgb


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB with any transparency composited on white; 16-bit and float grey rescaled."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        grey = np.asarray(image, dtype=np.float32)
        peak = float(grey.max()) if grey.size else 0.0
        scale = 255.0 / 65535.0 if peak > 255 else 1.0
        image = Image.fromarray(np.clip(grey * scale, 0, 255).astype(np.uint8), "L")
        mode = "L"
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info) \
        or (mode in ("RGB", "L") and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "RGB":
        return image
    return image.convert("RGB")


def _sniff(data: bytes) -> str:
    head = data[:16]
    return f"unidentified image data, starts with {head!r}"


def _unidentified_reason(data: bytes) -> str:
    """`unsupported_format` for images we do not decode (SVG, ICO...), else `corrupt_image`."""
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in data[:4096].lower():
        return UNSUPPORTED
    if data[:16].startswith(_OTHER_IMAGE_MAGIC):
        return UNSUPPORTED
    if data[4:8] == b"ftyp":  # ISO-BMFF: HEIC (or AVIF where Pillow lacks libavif)
        return UNSUPPORTED
    return CORRUPT
