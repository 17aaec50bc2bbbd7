"""The sample crawl's images: variants of scikit-learn's two sample photos, and graphics drawn with Pillow."""

from __future__ import annotations

import importlib.util
import io
import os
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps


@dataclass(frozen=True)
class Photo:
    """A variant of a scikit-learn sample photo (640x427): crop, turn, resize, recolour, encode."""

    source: str  # "china" or "flower"
    box: tuple[int, int, int, int] | None = None  # crop (left, upper, right, lower) of the original
    turn: str | None = None  # "mirror", "flip" (upside down), "rot90", "rot270"
    size: tuple[int, int] | None = None  # final (width, height) when resized
    hue: int = 0  # hue rotation, in Pillow's 0-255 HSV units
    saturation: float = 1.0
    brightness: float = 1.0
    grey: bool = False
    format: str = "JPEG"
    quality: int = 82

    @property
    def dimensions(self) -> tuple[int, int]:
        if self.size:
            return self.size
        left, upper, right, lower = self.box or (0, 0, 640, 427)
        width, height = right - left, lower - upper
        return (height, width) if self.turn in ("rot90", "rot270") else (width, height)

    def image(self) -> Image.Image:
        im = _sample_photo(self.source)
        if self.box:
            im = im.crop(self.box)
        if self.turn == "mirror":
            im = ImageOps.mirror(im)
        elif self.turn == "flip":
            im = ImageOps.flip(im)
        elif self.turn in ("rot90", "rot270"):
            im = im.transpose(Image.Transpose.ROTATE_90 if self.turn == "rot90" else Image.Transpose.ROTATE_270)
        if self.size and self.size != im.size:
            im = im.resize(self.size, Image.Resampling.LANCZOS)
        if self.hue:
            h, s, v = im.convert("HSV").split()
            h = h.point(lambda x: (x + self.hue) % 256)
            im = Image.merge("HSV", (h, s, v)).convert("RGB")
        if self.saturation != 1.0:
            im = ImageEnhance.Color(im).enhance(self.saturation)
        if self.brightness != 1.0:
            im = ImageEnhance.Brightness(im).enhance(self.brightness)
        if self.grey:
            im = ImageOps.grayscale(im).convert("RGB")
        return im

    def render(self) -> bytes:
        return _encode(self.image(), self.format, self.quality)


@dataclass(frozen=True)
class Graphic:
    """A drawn image: logo, ad banner, social icon, tracking pixel, avatar, chart or diagram."""

    kind: str
    size: tuple[int, int]
    label: str = ""
    colour: tuple[int, int, int] = (30, 60, 120)
    format: str = "PNG"

    @property
    def dimensions(self) -> tuple[int, int]:
        return self.size

    def render(self) -> bytes:
        if self.kind == "pixel":
            im = Image.new("P", (1, 1), 0)
            im.putpalette([255, 255, 255] * 2)
            return _encode(im, "GIF", transparency=0)
        return _encode(_DRAWERS[self.kind](self), self.format, 85)


@lru_cache(maxsize=2)
def _sample_photo(name: str) -> Image.Image:
    """The photo `sklearn.datasets.load_sample_image(name + ".jpg")` returns, read without importing sklearn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("scikit-learn is not installed; the sample crawl takes its photos from it")
    with Image.open(os.path.join(spec.submodule_search_locations[0], "datasets", "images", f"{name}.jpg")) as im:
        return im.convert("RGB")


def _encode(im: Image.Image, fmt: str, quality: int = 85, **extra) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        im.save(buffer, "JPEG", quality=quality, optimize=True, progressive=False)
    elif fmt == "WEBP":
        im.save(buffer, "WEBP", quality=quality, method=4)
    elif fmt == "PNG":
        im.save(buffer, "PNG", optimize=True)
    else:
        im.save(buffer, fmt, **extra)
    return buffer.getvalue()


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _draw_logo(g: Graphic) -> Image.Image:
    im = Image.new("RGB", g.size, "white")
    draw = ImageDraw.Draw(im)
    w, h = g.size
    draw.rectangle([4, 4, h - 4, h - 4], fill=g.colour)
    draw.text((h // 2, h // 2), g.label[:1], font=_font(h // 2), fill="white", anchor="mm")
    size = h // 2
    while size > 8 and draw.textlength(g.label, font=_font(size)) > w - h - 14:
        size -= 1
    draw.text((h + 8, h // 2), g.label, font=_font(size), fill=g.colour, anchor="lm")
    return im


def _draw_banner(g: Graphic) -> Image.Image:
    w, h = g.size
    im = Image.new("RGB", g.size, g.colour)
    draw = ImageDraw.Draw(im)
    draw.rectangle([0, 0, w - 1, h - 1], outline="white", width=2)
    draw.ellipse([w - h * 0.9, h * 0.05, w - h * 0.05, h * 0.95] if w > 2 * h else [w * 0.3, h * 0.45, w * 0.7, h * 0.85],
                 fill=(255, 200, 0))
    headline, _, action = g.label.partition("|")
    draw.text((12, h * 0.3), headline, font=_font(max(12, min(h // 3, 26))), fill="white", anchor="lm")
    font = _font(max(10, min(h // 6, 14)))
    draw.rectangle([12, h * 0.62, 20 + draw.textlength(action, font=font), h * 0.9], fill="white")
    draw.text((16, h * 0.76), action, font=font, fill=g.colour, anchor="lm")
    return im


def _draw_icon(g: Graphic) -> Image.Image:
    im = Image.new("RGBA", g.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(im)
    w, h = g.size
    draw.rounded_rectangle([0, 0, w - 1, h - 1], radius=6, fill=g.colour)
    draw.text((w // 2, h // 2), g.label, font=_font(h * 2 // 3), fill="white", anchor="mm")
    return im


def _draw_avatar(g: Graphic) -> Image.Image:
    w, h = g.size
    im = Image.new("RGB", g.size, (225, 228, 232))
    draw = ImageDraw.Draw(im)
    draw.ellipse([w * 0.3, h * 0.15, w * 0.7, h * 0.55], fill=g.colour)
    draw.ellipse([w * 0.12, h * 0.6, w * 0.88, h * 1.3], fill=g.colour)
    return im


def _draw_bar_chart(g: Graphic) -> Image.Image:
    w, h = g.size
    im = Image.new("RGB", g.size, "white")
    draw = ImageDraw.Draw(im)
    draw.text((w // 2, 22), g.label, font=_font(18), fill="black", anchor="mm")
    left, bottom, top = 60, h - 50, 60
    draw.line([left, top, left, bottom, w - 20, bottom], fill="black", width=2)
    values = [310, 280, 420, 560, 640, 590, 610, 650, 700, 760, 520, 330]  # thousands of visitors
    months = "JFMAMJJASOND"
    step = (w - 20 - left) / len(values)
    for i, value in enumerate(values):
        x0 = left + i * step + 6
        y0 = bottom - (bottom - top) * value / 800
        draw.rectangle([x0, y0, x0 + step - 12, bottom - 1], fill=g.colour)
        draw.text((x0 + (step - 12) / 2, bottom + 14), months[i], font=_font(14), fill="black", anchor="mm")
    for tick in range(0, 801, 200):
        y = bottom - (bottom - top) * tick / 800
        draw.line([left - 5, y, left, y], fill="black")
        draw.text((left - 8, y), str(tick), font=_font(12), fill="black", anchor="rm")
    return im


def _draw_diagram(g: Graphic) -> Image.Image:
    w, h = g.size
    im = Image.new("RGB", g.size, (250, 250, 245))
    draw = ImageDraw.Draw(im)
    draw.text((w // 2, 24), g.label, font=_font(18), fill="black", anchor="mm")
    steps = [("Plant tubers", "April-May"), ("Stake stems", "June"), ("Flowering", "July-October"),
             ("Lift and store", "November")]
    box_w, gap = (w - 80) // 4 - 10, 10
    for i, (name, when) in enumerate(steps):
        x0 = 40 + i * (box_w + gap)
        draw.rounded_rectangle([x0, 120, x0 + box_w, 230], radius=10, fill=g.colour, outline="black", width=2)
        draw.text((x0 + box_w / 2, 160), name, font=_font(14), fill="white", anchor="mm")
        draw.text((x0 + box_w / 2, 195), when, font=_font(12), fill="white", anchor="mm")
        if i:
            draw.line([x0 - gap, 175, x0 - 2, 175], fill="black", width=3)
    draw.ellipse([w / 2 - 60, 280, w / 2 + 60, 400], outline=(120, 80, 40), width=4)
    draw.text((w / 2, 340), "tuber", font=_font(14), fill=(120, 80, 40), anchor="mm")
    draw.line([w / 2, 280, w / 2, 250], fill=(40, 120, 40), width=4)
    return im


_DRAWERS = {
    "logo": _draw_logo, "banner": _draw_banner, "icon": _draw_icon, "avatar": _draw_avatar,
    "bar_chart": _draw_bar_chart, "diagram": _draw_diagram,
}


def _thumb(photo: Photo, width: int = 160) -> Photo:
    """A small "related articles" thumbnail of `photo`."""
    w, h = photo.dimensions
    return Photo(photo.source, photo.box, photo.turn, (width, round(width * h / w)), photo.hue,
                 photo.saturation, photo.brightness, photo.grey, "JPEG", 70)


# The photos that should come out distinct: pairwise pHash distances are above 10 (tested).
PHOTOS: dict[str, Photo] = {
    # Lead photos of pages whose pair is kept.
    "tower_lake": Photo("china"),
    "dahlia_orange": Photo("flower"),
    "pagoda_square": Photo("china", (0, 0, 427, 427)),
    "dahlia_square": Photo("flower", (160, 0, 587, 427)),
    "pagoda_roofs": Photo("china", (60, 0, 400, 340), size=(480, 480)),
    "dahlia_close": Photo("flower", (155, 60, 485, 390), size=(480, 480)),
    "dahlia_left": Photo("flower", (0, 0, 427, 427), brightness=1.08),
    "tower_portrait": Photo("china", (20, 0, 360, 427), size=(400, 502)),
    "dahlia_bud": Photo("flower", (150, 100, 640, 427)),
    "lake_island": Photo("china", (300, 100, 640, 427), format="PNG"),
    "tower_middle": Photo("china", (120, 60, 500, 427), size=(480, 464)),
    "dahlia_pink": Photo("flower", turn="mirror", hue=-42),
    "palace_lower": Photo("china", (0, 100, 480, 427)),
    "dahlia_grey": Photo("flower", (100, 0, 580, 427), grey=True),
    "dahlia_show": Photo("flower", (80, 40, 420, 380), size=(440, 440), saturation=1.15),
    # Twelve reader photos that share one caption.
    "reader_01": Photo("china", turn="mirror", brightness=1.05),
    "reader_02": Photo("china", (0, 0, 427, 427), turn="mirror", saturation=0.8),
    "reader_03": Photo("china", (213, 0, 640, 427), turn="mirror"),
    "reader_04": Photo("china", (60, 0, 400, 340), turn="rot90", size=(400, 400)),
    "reader_05": Photo("china", (300, 90, 640, 427), turn="mirror", brightness=0.92),
    "reader_06": Photo("china", (120, 60, 500, 427), turn="mirror", hue=8),
    "reader_07": Photo("china", turn="rot270"),
    "reader_08": Photo("flower", (40, 0, 640, 427), turn="rot270", saturation=0.55, format="WEBP"),
    "reader_09": Photo("flower", (0, 0, 427, 427), turn="mirror", hue=20),
    "reader_10": Photo("flower", (213, 0, 640, 427), turn="mirror", brightness=1.1),
    "reader_11": Photo("flower", turn="rot90"),
    "reader_12": Photo("flower", (155, 60, 485, 390), turn="rot90", size=(400, 400), hue=-20),
    # Lead photos the crawl does not hold.
    "pagoda_edge": Photo("china", (213, 0, 640, 427)),
    "dahlia_leaves": Photo("flower", (100, 50, 540, 427)),
    # Photos too small for the size filter (both sides must exceed 300 px).
    "lake_small": Photo("china", (360, 180, 640, 427), size=(280, 248)),
    "dahlia_small": Photo("flower", (170, 80, 450, 360), size=(240, 240)),
}

# Copies that should count as the same photo as another (near-duplicates and alternative encodings).
COPIES: dict[str, tuple[str, Photo]] = {
    "dahlia_pink_resized": ("dahlia_pink", Photo("flower", turn="mirror", hue=-42, size=(512, 341), quality=62)),
    "dahlia_square_webp": ("dahlia_square", Photo("flower", (160, 0, 587, 427), format="WEBP", quality=80)),
    "pagoda_square_240": ("pagoda_square", Photo("china", (0, 0, 427, 427), size=(240, 240), quality=75)),
}

_SOCIAL = {
    "https://static.example-social.com/icons/facebook-32.png": (Graphic("icon", (32, 32), "f", (59, 89, 152)), "Facebook"),
    "https://static.example-social.com/icons/twitter-32.png": (Graphic("icon", (32, 32), "t", (29, 161, 242)), "Twitter"),
}
_ADS = {
    "leaderboard": ("https://ads.example-adnetwork.com/creatives/sunfly-summer-sale-728x90.png",
                    Graphic("banner", (728, 90), "Summer sale: 40% off all flights|BOOK NOW", (0, 90, 170))),
    "rectangle": ("https://ads.example-adnetwork.com/creatives/example-bank-300x250.png",
                  Graphic("banner", (300, 250), "Open an account|LEARN MORE", (0, 120, 80))),
}


