"""Small JPEG thumbnails for people to look at (reject samples, the HTML report)."""

from __future__ import annotations

import base64
import io

from PIL import Image

MAX_THUMBNAIL_PIXELS = 40_000_000  # never fully decode a bomb just to draw a thumbnail


def thumbnail_base64(image_bytes: bytes | None, size: int = 128, quality: int = 70) -> str | None:
    """A JPEG thumbnail (longer side `size`) as base64, or None when the bytes are not a readable image."""
    if not image_bytes:
        return None
    try:
        with Image.open(io.BytesIO(image_bytes)) as image:
            if image.width * image.height > MAX_THUMBNAIL_PIXELS:
                return None
            image.draft("RGB", (size, size))  # JPEG: decode at reduced scale
            image = image.convert("RGBA") if image.mode in ("P", "LA", "PA") else image
            if image.mode == "RGBA":
                background = Image.new("RGB", image.size, "white")
                background.paste(image, mask=image.getchannel("A"))
                image = background
            image = image.convert("RGB")
            image.thumbnail((size, size))
            out = io.BytesIO()
            image.save(out, "JPEG", quality=quality)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return base64.b64encode(out.getvalue()).decode("ascii")
