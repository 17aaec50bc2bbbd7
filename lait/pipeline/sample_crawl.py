"""A deterministic sample crawl: about 50 realistic web pages and their images in one WARC.

>>> from lait.pipeline.sample_crawl import write_sample_crawl, EXPECTED
>>> summary = write_sample_crawl("out/sample.warc.gz")   # doctest: +SKIP
>>> summary["pages"], EXPECTED[0]["outcome"]              # doctest: +SKIP
(47, 'kept')

Every page is a test case for a later stage of ``lait run``. :data:`EXPECTED` holds one entry
per HTML page, saying which image/text pair the pipeline should keep from it, or why it should
keep none:

========================  ==========================================================================
outcome                   the page ...
========================  ==========================================================================
``kept``                  has a dominant photo with a good English description: one output row
``duplicate``             uses a photo (same URL, or a resized re-encoded copy) that a better page
                          also uses: Aggregate keeps only ``duplicate_of``'s pair
``shared_text``           is one of 12 gallery pages whose different photos share one caption:
                          Aggregate drops all of them (more than 10 images per text)
``language``              is German, French or Spanish: dropped by ParsePages
``no_image``              has only a logo, icons, ad banners, a tracking pixel, thumbnails: no pair
``not_in_crawl``          has a photo the WARC does not hold: with ``--no-fetch`` AcquireImages drops it
``too_small``             has a photo under 300 px: FilterImages drops it
``not_natural``           has a drawn chart or diagram as its figure: the naturalness filter drops it
========================  ==========================================================================

Each entry also names its ``case`` (what markup the page exercises: lazy ``data-src``, ``srcset``,
``<picture>``, ``<base href>``, JSON-LD, windows-1252, broken markup...). Pages also carry the
clutter a real page has: a nav logo, 728x90 and 300x250 ad banners, 32x32 social icons, a 1x1
tracking GIF, a byline avatar and "related articles" thumbnails.

Photos are variants (crops, flips, turns, colour shifts, re-encodings) of the two photos that
ship inside scikit-learn (``china.jpg``: the Tower of Buddhist Incense above Kunming Lake at
Beijing's Summer Palace; ``flower.jpg``: an orange pompon dahlia); graphics are drawn with Pillow.
The output is byte-identical on every run with the same Pillow and zlib: fixed WARC-Date values,
record IDs derived from the URL, one gzip member per record with mtime 0, no randomness.
"""

from __future__ import annotations

import hashlib
import html
import importlib.util
import io
import itertools
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import cache, lru_cache
from urllib.parse import quote

from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

__all__ = ["EXPECTED", "OUTCOMES", "expected_text_matches", "not_in_crawl_images", "write_sample_crawl"]

OUTCOMES = ("kept", "duplicate", "shared_text", "language", "no_image", "not_in_crawl", "too_small", "not_natural")

# All records are dated from here, a few seconds apart, so the file never depends on the clock.
CRAWL_START = datetime(2024, 3, 15, 9, 0, 0, tzinfo=UTC)
SHARED_CAPTION = "Reader photo of the week from our community gallery"
_PLACEHOLDER_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


# --------------------------------------------------------------------------------------------
# Images: photo variants of scikit-learn's sample photos, and drawn graphics
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Site:
    name: str
    origin: str
    key: str
    lang: str
    colour: tuple[int, int, int]
    nav: tuple[str, ...]
    footer: str
    related_title: str = "Related articles"
    share: str = "Share this article"

    @property
    def logo_url(self) -> str:
        return f"{self.origin}/static/img/{self.key}-logo.png"

    @property
    def logo(self) -> Graphic:
        return Graphic("logo", (220, 60), self.name, self.colour)


NEWS = Site("Example News", "https://www.example-news.com", "example-news", "en", (170, 20, 40),
            ("World", "Business", "Science", "Travel", "Culture", "Opinion"),
            "© 2024 Example News Ltd. All rights reserved. Registered in England and Wales.")
TRAVEL = Site("Example Travel", "https://travel.example.org", "example-travel", "en", (0, 110, 140),
              ("Destinations", "Guides", "Gardens", "Food", "Deals"),
              "© 2024 Example Travel. Prices were correct at the time of publication.")
GARDEN = Site("The Example Garden", "https://garden.example.net", "example-garden", "en", (40, 110, 50),
              ("Blog", "Varieties", "Guides", "Shop", "Newsletter"),
              "© 2024 The Example Garden. Grown with care in Yorkshire.")
BLOG = Site("Notes from the Hillside", "https://www.example.com", "hillside", "en", (90, 60, 120),
            ("Home", "Travel", "Garden", "About"),
            "Notes from the Hillside is a personal blog. Powered by WordPress.")
COMMUNITY = Site("Example News Community", "https://community.example-news.com", "community", "en", (170, 20, 40),
                 ("Gallery", "Forums", "Events", "Submit a photo"),
                 "© 2024 Example News Ltd. Community content is moderated by our readers' editor.")
DE = Site("Beispiel Nachrichten", "https://www.example.de", "beispiel", "de", (20, 20, 20),
          ("Politik", "Wirtschaft", "Reise", "Garten", "Kultur"),
          "© 2024 Beispiel Nachrichten GmbH. Alle Rechte vorbehalten.", "Weitere Artikel", "Artikel teilen")
FR = Site("Exemple Infos", "https://www.example.fr", "exemple", "fr", (0, 60, 140),
          ("Actualités", "Économie", "Voyage", "Jardin", "Culture"),
          "© 2024 Exemple Infos. Tous droits réservés.", "À lire aussi", "Partager cet article")
ES = Site("Noticias Ejemplo", "https://www.example.es", "ejemplo", "es", (200, 60, 0),
          ("Actualidad", "Economía", "Viajes", "Jardín", "Cultura"),
          "© 2024 Noticias Ejemplo S.L. Todos los derechos reservados.", "Te puede interesar", "Compartir")


@dataclass
class Page:
    """One HTML page of the crawl and what the pipeline should make of it."""

    url: str
    html: str
    expected: dict
    images: list[str] = field(default_factory=list)  # image URLs the page uses, in document order
    encoding: str = "utf-8"
    content_type: str = "text/html; charset=utf-8"


class _CrawlBuilder:
    """Collects pages and the image URLs they use (with what each URL serves)."""

    def __init__(self):
        self.pages: list[Page] = []
        self.images: dict[str, Photo | Graphic] = {}  # URL -> image, for URLs the crawl holds
        self.missing: dict[str, Photo] = {}  # URL -> photo, for URLs the crawl does not hold
        self._pending: list[str] = []  # image URLs of the page being built

    def image(self, url: str, image: Photo | Graphic, in_crawl: bool = True) -> str:
        (self.images if in_crawl else self.missing)[url] = image
        if in_crawl and url not in self._pending:
            self._pending.append(url)
        return url

    def page(self, page: Page) -> None:
        """Add `page`, with the image URLs registered since the previous page."""
        page.images, self._pending = self._pending, []
        self.pages.append(page)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _img(url: str, alt: str, size: tuple[int, int], extra: str = "") -> str:
    return f'<img src="{_esc(url)}" alt="{_esc(alt)}" width="{size[0]}" height="{size[1]}"{extra}>'


def _text(text: str) -> str:
    """Escape text content the way most CMSs do: &, < and > only."""
    return html.escape(text, quote=False)


def _summary(text: str, limit: int = 150) -> str:
    """`text` cut at a word boundary, for meta descriptions."""
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def _display_date(iso: str) -> str:
    """'2024-03-14' -> '14 March 2024', whatever the machine's locale."""
    year, month, day = (int(part) for part in iso.split("-"))
    return f"{day} {_MONTHS[month - 1]} {year}"


@dataclass
class Article:
    """The parts of an article page; `_render` lays them out with the site's clutter."""

    site: Site
    path: str
    title: str
    body: list[str]
    lead: str = ""  # HTML of the lead figure
    description: str = ""
    og_image: str | None = None
    og_image_alt: str | None = None
    head_extra: str = ""
    author: str | None = None
    date: str = "2024-03-14"
    ads: bool = True
    social: bool = True
    pixel: bool = True
    related: list[tuple[str, str, Photo]] = field(default_factory=list)  # (title, url, photo)

    @property
    def url(self) -> str:
        return self.site.origin + self.path


def _render(b: _CrawlBuilder, a: Article, charset: str = "utf-8") -> str:
    """The page's HTML: head, masthead with logo and nav, ads, article, share icons, related, footer, pixel."""
    parts = [f'<!DOCTYPE html>\n<html lang="{a.site.lang}">\n<head>\n{_head(a, charset)}\n</head>\n<body>',
             _masthead(b, a.site), f"<main>\n<article>\n<h1>{_text(a.title)}</h1>"]
    if a.ads:
        parts.insert(2, _ad(b, "leaderboard", a.site))
    if a.author:
        parts.append(_byline(b, a))
    if a.lead:
        parts.append(a.lead)
    body = [f"<p>{_text(p)}</p>" if not p.startswith("<") else p for p in a.body]
    if a.ads and len(body) > 2:
        body.insert(2, _ad(b, "rectangle", a.site))
    parts += body + ["</article>"]
    if a.social:
        parts.append(_share(b, a))
    if a.related:
        parts.append(_related(b, a))
    links = " · ".join(f'<a href="{a.site.origin}/{name.lower()}">{name}</a>' for name in ("Privacy", "Terms", "Contact"))
    parts.append(f"</main>\n<footer><p>{_text(a.site.footer)}</p><p>{links}</p></footer>")
    if a.pixel:
        page_id = hashlib.sha1(a.url.encode()).hexdigest()[:10]
        url = b.image(f"https://pixel.example-analytics.com/collect.gif?site={a.site.key}&page={page_id}",
                      Graphic("pixel", (1, 1), format="GIF"))
        parts.append(f'<img src="{_esc(url)}" width="1" height="1" alt="" style="display:none">')
    parts.append("</body>\n</html>\n")
    return "\n".join(parts)


def _head(a: Article, charset: str) -> str:
    head = [f'<meta charset="{charset}">', f"<title>{_text(a.title)} | {_text(a.site.name)}</title>",
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f'<meta name="description" content="{_esc(a.description or _summary(a.body[0]))}">',
            '<meta property="og:type" content="article">',
            f'<meta property="og:title" content="{_esc(a.title)}">',
            f'<meta property="og:url" content="{_esc(a.url)}">',
            f'<meta property="og:site_name" content="{_esc(a.site.name)}">']
    if a.og_image:
        head.append(f'<meta property="og:image" content="{_esc(a.og_image)}">')
    if a.og_image_alt:
        head.append(f'<meta property="og:image:alt" content="{_esc(a.og_image_alt)}">')
    head += [f'<link rel="canonical" href="{_esc(a.url)}">',
             f'<link rel="stylesheet" href="{a.site.origin}/static/css/site.css">',
             "<script>window.dataLayer = window.dataLayer || []; dataLayer.push({'section': 'article'});</script>"]
    if a.head_extra:
        head.append(a.head_extra)
    return "\n".join(head)


def _masthead(b: _CrawlBuilder, site: Site) -> str:
    b.image(site.logo_url, site.logo)
    nav = "".join(f'<li><a href="{site.origin}/{item.lower()}/">{_text(item)}</a></li>' for item in site.nav)
    return (f'<header class="site-header"><a href="{site.origin}/" class="logo-link">'
            f'<img class="site-logo" src="{site.logo_url}" alt="{_esc(site.name)} logo" width="220" height="60"></a>'
            f'\n<nav class="main-nav"><ul>{nav}</ul></nav></header>')


def _ad(b: _CrawlBuilder, slot: str, site: Site) -> str:
    url, banner = _ADS[slot]
    b.image(url, banner)
    click = f"https://ads.example-adnetwork.com/click?slot={slot}&amp;site={site.key}"
    return (f'<div class="ad-slot ad-{slot}"><a href="{click}" rel="sponsored">'
            f'{_img(url, "Advertisement", banner.size)}</a></div>')


def _byline(b: _CrawlBuilder, a: Article) -> str:
    slug = re.sub(r"[^a-z]+", "-", a.author.lower()).strip("-")
    avatar_url = b.image(f"{a.site.origin}/static/authors/{slug}-64.png",
                         Graphic("avatar", (64, 64), colour=a.site.colour))
    avatar = _img(avatar_url, a.author, (48, 48), ' class="avatar"')
    return (f'<div class="byline">{avatar} By <a rel="author" href="{a.site.origin}/authors/{slug}">'
            f'{_text(a.author)}</a> <time datetime="{a.date}">{_display_date(a.date)}</time></div>')


def _share(b: _CrawlBuilder, a: Article) -> str:
    icons = []
    for url, (icon, name) in _SOCIAL.items():
        b.image(url, icon)
        icons.append(f'<a href="https://share.example-social.com/?u={quote(a.url, safe="")}">'
                     f"{_img(url, name, (32, 32))}</a>")
    return f'<aside class="share"><span>{_text(a.site.share)}</span> {" ".join(icons)}</aside>'


def _related(b: _CrawlBuilder, a: Article) -> str:
    items = []
    for title, url, photo in a.related:
        thumb = _thumb(photo)
        thumb_url = b.image(f"{a.site.origin}/static/thumbs/{url.rstrip('/').rsplit('/', 1)[-1]}-160.jpg", thumb)
        items.append(f'<li><a href="{_esc(url)}">{_img(thumb_url, title, thumb.dimensions)}'
                     f"<span>{_text(title)}</span></a></li>")
    return f'<section class="related"><h2>{_text(a.site.related_title)}</h2><ul>{"".join(items)}</ul></section>'


def _figure(img_html: str, caption: str | None, credit: str | None = None) -> str:
    cap = ""
    if caption:
        credit_html = f' <span class="credit">{_text(credit)}</span>' if credit else ""
        cap = f"<figcaption>{_text(caption)}{credit_html}</figcaption>"
    return f'<figure class="lead-image">{img_html}{cap}</figure>'


def _expect(page_url: str, case: str, outcome: str, *, language: str = "en", image_url: str | None = None,
            image_urls: tuple[str, ...] = (), texts: tuple[str, ...] = (), duplicate_of: str | None = None,
            note: str = "") -> dict:
    assert outcome in OUTCOMES, outcome
    return {
        "page_url": page_url,
        "case": case,
        "outcome": outcome,
        "language": language,
        "image_url": image_url,
        "image_urls": tuple(dict.fromkeys(((image_url,) if image_url else ()) + image_urls)),
        "text": texts[0] if texts else None,
        "texts": texts,
        "duplicate_of": duplicate_of,
        "note": note,
    }


def _add(b: _CrawlBuilder, article: Article, expected: dict, html_text: str | None = None, **page_kw) -> None:
    b.page(Page(article.url, html_text or _render(b, article), expected, **page_kw))


def _lead_article(b: _CrawlBuilder, site: Site, path: str, title: str, body: list[str], photo_key: str,
                  image_url: str, alt: str, caption: str | None, *, case: str, credit: str | None = None,
                  og: bool = True, og_alt: bool = False, outcome: str = "kept", in_crawl: bool = True,
                  texts: tuple[str, ...] | None = None, duplicate_of: str | None = None, note: str = "",
                  **article_kw) -> Article:
    photo = PHOTOS[photo_key] if photo_key in PHOTOS else COPIES[photo_key][1]
    b.image(image_url, photo, in_crawl)
    lead = _figure(_img(image_url, alt, photo.dimensions), caption, credit)
    article = Article(site, path, title, body, lead=lead, og_image=image_url if og else None,
                      og_image_alt=alt if og_alt else None, **article_kw)
    if texts is None:
        texts = tuple(t for t in (alt, caption) if t)
    _add(b, article, _expect(article.url, case, outcome, language=site.lang, image_url=image_url, texts=texts,
                             duplicate_of=duplicate_of, note=note))
    return article


# --------------------------------------------------------------------------------------------
# The pages, one block per case
# --------------------------------------------------------------------------------------------

_NEWS_CDN = "https://cdn.example-news.com"
_URL_TOWER = f"{NEWS.origin}/world/asia/2024/03/14/summer-palace-tower-reopens"
_URL_DAHLIA = f"{NEWS.origin}/science/2024/03/12/how-dahlias-got-their-perfect-spheres"
_URL_ROOFS = f"{NEWS.origin}/culture/2024/03/10/the-colours-of-imperial-roofs"
_URL_BOATS = f"{NEWS.origin}/travel/2024/02/27/boats-return-to-kunming-lake"
_URL_TRIO = f"{NEWS.origin}/travel/2024/03/05/a-spring-weekend-in-beijing"
_URL_PINK = f"{GARDEN.origin}/varieties/pink-pompon-dahlias"


def _news_related(exclude: str) -> list[tuple[str, str, Photo]]:
    stories = [("Summer Palace tower reopens after two years of restoration", _URL_TOWER, PHOTOS["tower_lake"]),
               ("How dahlias got their perfect spheres", _URL_DAHLIA, PHOTOS["dahlia_orange"]),
               ("The colours of imperial roofs", _URL_ROOFS, PHOTOS["pagoda_roofs"]),
               ("Boats return to Kunming Lake", _URL_BOATS, PHOTOS["palace_lower"])]
    return [s for s in stories if s[1] != exclude][:3]


def _kept_articles(b: _CrawlBuilder) -> None:
    _lead_article(
        b, NEWS, _URL_TOWER.removeprefix(NEWS.origin), "Summer Palace tower reopens after two years of restoration",
        ["The Tower of Buddhist Incense, the tallest building in Beijing's Summer Palace, opened to visitors again "
         "on Thursday after a restoration that took more than two years and involved some two hundred craftsmen.",
         "Workers replaced thousands of glazed roof tiles, repainted the red columns and restored the carved "
         "brackets under each of the three roofs. Where possible they reused old timber, and new paint was mixed "
         "by hand to match the colours recorded in photographs from the 1950s.",
         "The tower stands on Longevity Hill, and from its upper gallery visitors can look across Kunming Lake to "
         "the long causeway and the small islands beyond. On clear days the Western Hills are visible in the distance.",
         "Park officials expect the number of visitors to rise sharply over the spring holidays. Tickets for the "
         "tower must now be booked online at least one day in advance, and groups are limited to thirty people."],
        "tower_lake", f"{_NEWS_CDN}/2024/03/summer-palace-tower-lake.jpg",
        "The Tower of Buddhist Incense rises above the trees beside Kunming Lake at the Summer Palace in Beijing",
        "The restored tower, with its red columns and green and orange glazed roofs, looks out over the lake.",
        credit="Photo: Li Wen / Example News", og_alt=True, case="figure_alt_figcaption_og_image",
        author="Li Wen", related=_news_related(_URL_TOWER),
        note="plain <figure> with alt, <figcaption> and og:image + og:image:alt, among full clutter")

    # Lazy loading: the real URL is only in data-src / data-srcset; the crawl holds the 640w file only.
    photo = PHOTOS["dahlia_orange"]
    url_640 = b.image(f"{_NEWS_CDN}/2024/03/orange-pompon-dahlia-640.jpg", photo)
    url_320 = f"{_NEWS_CDN}/2024/03/orange-pompon-dahlia-320.jpg"
    alt = ("An orange pompon dahlia in full bloom, its rounded petals curled into a perfect ball "
           "against dark green leaves")
    caption = "Pompon dahlias owe their shape to hundreds of tightly rolled petals."
    lead = _figure(f'<img class="lazyload" src="{_PLACEHOLDER_GIF}" data-src="{url_640}" '
                   f'data-srcset="{url_320} 320w, {url_640} 640w" data-sizes="auto" width="640" height="427" '
                   f'alt="{_esc(alt)}"><noscript>{_img(url_640, alt, (640, 427))}</noscript>', caption,
                   "Photo: Maria Lopez")
    article = Article(
        NEWS, _URL_DAHLIA.removeprefix(NEWS.origin), "How dahlias got their perfect spheres",
        ["Gardeners have grown dahlias in Europe for more than two centuries, but the neat round flowers known as "
         "pompons are a surprisingly recent invention, according to a study published this week.",
         "Researchers compared the genes of wild dahlias from the mountains of Mexico with dozens of modern garden "
         "varieties. They found that a small change in a single gene makes the outer florets roll their petals "
         "into tubes, which then pack together into a ball.",
         "The wild plants have flat, open flowers with a yellow centre that bees can easily reach. Breeders in the "
         "nineteenth century selected again and again for fuller blooms, without knowing what they were changing.",
         "The team now hopes to use the same approach to understand the colours of dahlias, which range from "
         "white and pale peach to deep red and almost black."],
        lead=lead, og_image=url_640, author="Maria Lopez", date="2024-03-12", related=_news_related(_URL_DAHLIA))
    _add(b, article, _expect(article.url, "lazy_data_src_srcset", "kept", image_url=url_640, texts=(alt, caption),
                             note="<img> src is a base64 placeholder; real URL in data-src/data-srcset (320w not in crawl)"))

    # srcset with several widths; the plain src is a 240 px file (too small), the 427w file is the one to take.
    photo, small = PHOTOS["pagoda_square"], COPIES["pagoda_square_240"][1]
    base = f"{TRAVEL.origin}/media/2024/03/pagoda-longevity-hill"
    url_240 = b.image(f"{base}-240.jpg", small)
    url_427 = b.image(f"{base}-427.jpg", photo)
    alt = "A tall pagoda with stacked red and green roofs stands on a hill above leafy trees on a hazy day"
    caption = "The pagoda on Longevity Hill is the best place to start a morning at the Summer Palace."
    lead = _figure(f'<img src="{url_240}" srcset="{base}-160.jpg 160w, {url_240} 240w, {url_427} 427w" '
                   f'sizes="(max-width: 600px) 100vw, 427px" width="427" height="427" alt="{_esc(alt)}" '
                   'loading="lazy" decoding="async">', caption)
    article = Article(
        TRAVEL, "/guides/beijing/two-days-in-beijing", "Two days in Beijing: a first-timer's itinerary",
        ["Beijing rewards visitors who plan their days around the city's enormous parks and palaces. Here is how "
         "to see the best of it in two days without spending the whole time in taxis.",
         "On the first morning, take the subway to the Summer Palace and arrive when the gates open. Climb "
         "Longevity Hill before the tour groups, then walk down to the long covered corridor by the lake.",
         "In the afternoon, head back into the centre for the Forbidden City. Book tickets online a week ahead, "
         "because daily numbers are capped and passports are checked at the entrance.",
         "On day two, rise early for the Temple of Heaven, where local people gather to dance, sing and play "
         "cards in the gardens. Finish with dumplings in one of the quiet lanes north of the lakes."],
        lead=lead, og_image=url_427, ads=True, date="2024-03-09")
    _add(b, article, _expect(article.url, "srcset_widths", "kept", image_url=url_427, texts=(alt, caption),
                             note="src is the 240 px version (too small); the 427w srcset candidate is the photo"))

    # <picture> with a WebP <source> and a JPEG <img>: both files are in the crawl, same photo.
    jpg = b.image(f"{TRAVEL.origin}/media/2024/02/dahlia-garden.jpg", PHOTOS["dahlia_square"])
    webp = b.image(f"{TRAVEL.origin}/media/2024/02/dahlia-garden.webp", COPIES["dahlia_square_webp"][1])
    alt = "A peach coloured dahlia flower with a smaller bud below it, photographed against dark green leaves"
    caption = "Dahlias flower from midsummer until the first frost in most European gardens."
    lead = _figure(f'<picture><source type="image/webp" srcset="{webp}">'
                   f'{_img(jpg, alt, (427, 427))}</picture>', caption)
    article = Article(
        TRAVEL, "/gardens/europe/best-dahlia-gardens", "Five European gardens to visit for dahlias",
        ["Late summer belongs to the dahlia. When roses fade, these bold Mexican flowers take over borders from "
         "Scotland to southern Germany, in every colour except true blue.",
         "The national collection in Cornwall holds more than fifteen hundred varieties, planted in long rows "
         "that are at their best in early September. Bring a notebook, because every plant is labelled.",
         "On the island of Mainau in Lake Constance, a whole terrace is given over to dahlias, and the gardeners "
         "change the planting scheme every year.",
         "Most of these gardens are open until the middle of October. Visit on a weekday morning, when the light "
         "is soft and the paths are almost empty."],
        lead=lead, og_image=jpg, date="2024-02-21")
    _add(b, article, _expect(article.url, "picture_source_webp", "kept", image_url=jpg, image_urls=(webp,),
                             texts=(alt, caption), note="<picture> with a WebP <source>; either file is the photo"))

    # <base href> with a relative image URL.
    photo = PHOTOS["pagoda_roofs"]
    url = b.image(f"{_NEWS_CDN}/2024/03/pagoda-roof-tiles.jpg", photo)
    alt = ("Close view of the upper roofs of a Chinese pagoda, with orange and green glazed tiles and a golden top "
           "against a pale sky")
    caption = "Glazed roof tiles in yellow and green were once reserved for imperial buildings."
    lead = _figure(_img("pagoda-roof-tiles.jpg", alt, photo.dimensions), caption, "Photo: Chen Jie")
    article = Article(
        NEWS, _URL_ROOFS.removeprefix(NEWS.origin), "The colours of imperial roofs",
        ["Walk through any of Beijing's old palaces and the roofs tell you who was allowed to build what. Colour "
         "was never a matter of taste: it followed strict rules set down by the court.",
         "Yellow glazed tiles were for the emperor alone. Princes used green, while ordinary houses had plain grey "
         "tiles made from local clay. Blue was kept for buildings linked to heaven, such as the great round hall "
         "at the Temple of Heaven.",
         "The small figures that march along the ridges of the roofs follow rules too. The more important the "
         "building, the more figures it was given, up to a maximum of ten.",
         "A new exhibition at the capital museum shows tiles, brackets and painted beams rescued during recent "
         "restoration work, and explains how the kilns that made them worked."],
        lead=lead, head_extra=f'<base href="{_NEWS_CDN}/2024/03/">', author="Chen Jie", date="2024-03-10",
        related=_news_related(_URL_ROOFS))
    _add(b, article, _expect(article.url, "base_href_relative_src", "kept", image_url=url, texts=(alt, caption),
                             note='relative <img src> resolved against <base href>; no og:image'))

    # JSON-LD only: the lead photo is drawn by a script; its URL and caption are in application/ld+json.
    photo = PHOTOS["dahlia_close"]
    url = b.image(f"{_NEWS_CDN}/2024/03/dahlia-petals-close-up.jpg", photo)
    caption = "Close-up of the curled orange petals at the centre of a dahlia flower"
    path = "/science/2024/03/08/inside-the-dahlia-flower"
    ld = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": "Inside the dahlia flower",
          "datePublished": "2024-03-08T07:30:00Z", "author": {"@type": "Person", "name": "Maria Lopez"},
          "image": {"@type": "ImageObject", "url": url, "width": 480, "height": 480, "caption": caption},
          "publisher": {"@type": "Organization", "name": NEWS.name, "logo": {"@type": "ImageObject", "url": NEWS.logo_url}}}
    lead = ('<figure class="lead-image"><div class="js-image" data-image-id="88412" style="aspect-ratio: 1 / 1"></div>'
            f"<figcaption>{_text(caption)}</figcaption></figure>")
    article = Article(
        NEWS, path, "Inside the dahlia flower",
        ["What looks like a single dahlia flower is in fact a crowd of hundreds of tiny flowers, called florets, "
         "packed together on one flat base.",
         "The florets around the edge carry the large coloured petals, while those in the middle are small and "
         "tube shaped. In double varieties almost all the florets have been bred to grow showy petals.",
         "The spiral in which the florets are arranged follows the same pattern found in sunflowers and pine "
         "cones, and it lets the plant fit as many of them as possible into a small space.",
         "Bees and butterflies prefer the simple open varieties, so gardeners who want to help pollinators are "
         "advised to plant at least a few single dahlias among the showier kinds."],
        lead=lead, head_extra=f'<script type="application/ld+json">{json.dumps(ld)}</script>',
        author="Maria Lopez", date="2024-03-08", related=_news_related(""))
    _add(b, article, _expect(article.url, "json_ld_image", "kept", image_url=url, texts=(caption,),
                             note="no <img> and no og:image: the photo is only in JSON-LD image.url, caption in "
                                  "JSON-LD and <figcaption>"))

    _lead_article(
        b, GARDEN, "/blog/2024/03/planting-dahlia-tubers", "When and how to plant dahlia tubers",
        ["Dahlia tubers are on sale in garden centres from February, but there is no hurry to get them in the "
         "ground. They hate cold, wet soil and will rot if planted too early.",
         "Start them off in pots in a frost free greenhouse or on a bright windowsill in March. Use ordinary "
         "compost and keep it barely moist until the first shoots appear.",
         "Plant them out after the last frost, usually in late May, in a sunny spot with rich soil. Put a strong "
         "stake in next to each plant at the same time, so you do not spear the tubers later.",
         "Water well through the summer and feed every two weeks once the buds form. Keep cutting the flowers "
         "and the plants will carry on blooming until the autumn."],
        "dahlia_left", f"{GARDEN.origin}/images/uploads/dahlia-in-bloom.jpg",
        "A single orange dahlia bloom on a dark background of blurred green leaves in the garden",
        "Our favourite pompon variety, photographed last September.", case="figure_og_image_no_og_alt",
        author="Sarah Mills", date="2024-03-04", note="blog <figure>; og:image without og:image:alt")

    _windows_1252_page(b)
    _broken_markup_page(b)

    _lead_article(
        b, TRAVEL, "/guides/beijing/kunming-lake-boat-trips", "Kunming Lake by boat: routes and prices",
        ["The best way to understand the size of the Summer Palace is to see it from the water. Electric boats "
         "and larger dragon boats cross Kunming Lake every few minutes from April to October.",
         "The short crossing from the marble boat to South Lake Island takes about fifteen minutes and costs "
         "little more than a subway ticket. Small self drive boats can be hired by the hour near the east gate.",
         "In winter the lake freezes, and the same piers become the starting point for skating and ice bikes.",
         "Bring sun cream and water in summer, because there is very little shade on the open lake."],
        "lake_island", f"{TRAVEL.origin}/media/2024/03/kunming-lake-island.png",
        "A hazy lake with a small island and boats, seen past the corner of a tiled roof and tall green trees",
        "South Lake Island is joined to the shore by a long bridge with seventeen arches.",
        case="png_photo", date="2024-03-02", note="the photo is a PNG")

    _same_photo_pages(b)
    _near_duplicate_pages(b)

    # Inline <img> with alt and title, no <figure>.
    photo = PHOTOS["palace_lower"]
    url = b.image(f"{_NEWS_CDN}/2024/02/kunming-lake-boats.jpg", photo)
    alt = "Small boats on a calm lake below the lower roofs of a red and green pagoda and the trees on the hillside"
    body = ["After the long winter, the boat service across Kunming Lake resumed this weekend, a few days earlier "
            "than usual because the ice melted in the first warm days of February.",
            "<p>" + _img(url, alt, photo.dimensions, ' title="Boats on Kunming Lake" class="inline-photo"') + "</p>",
            "Operators said more than five thousand people took a boat on Saturday alone. Most made the short trip "
            "to South Lake Island, while others rented small pedal boats near the shore.",
            "Park staff have added new life jackets for children and extended the opening hours of the main pier "
            "until six in the evening.",
            "The dragon boats, which carry up to forty passengers, will return in April once the spring inspection "
            "of their engines has been completed."]
    article = Article(NEWS, _URL_BOATS.removeprefix(NEWS.origin), "Boats return to Kunming Lake", body,
                      og_image=url, author="Li Wen", date="2024-02-27", related=_news_related(_URL_BOATS))
    _add(b, article, _expect(article.url, "inline_img_alt_title", "kept", image_url=url,
                             texts=(alt, "Boats on Kunming Lake"), note="inline <img> in a paragraph, alt + title"))

    # Decorative empty alt: the description is only in the <figcaption>.
    photo = PHOTOS["dahlia_grey"]
    url = b.image(f"{GARDEN.origin}/images/uploads/dahlia-black-and-white.jpg", photo)
    caption = "A black and white photograph of a dahlia flower, showing the spiral pattern of its curled petals"
    article = Article(
        GARDEN, "/blog/2024/02/dahlias-in-black-and-white", "Seeing dahlias in black and white",
        ["Take the colour away from a dahlia and you start to notice its shape. This winter I have been printing "
         "some of last year's garden photographs in black and white.",
         "Without the bright orange, your eye follows the spiral of the petals from the outside to the tight "
         "centre. The same flower looks calmer and more like a sculpture.",
         "If you want to try it, photograph flowers on an overcast day, when the light is even, and stand close "
         "enough that the bloom fills most of the frame.",
         "Next month I will write about choosing paper and printing at home."],
        lead=_figure(_img(url, "", photo.dimensions), caption), og_image=url, author="Sarah Mills", date="2024-02-18",
        ads=False)
    _add(b, article, _expect(article.url, "empty_alt_figcaption_only", "kept", image_url=url, texts=(caption,),
                             note='alt="" (decorative); the description is only in <figcaption>'))

    _lead_article(
        b, TRAVEL, "/events/2024/national-dahlia-show", "A day at the national dahlia show",
        ["Every September, growers from across the country bring their best blooms to the national dahlia show, "
         "and the judging tent becomes one of the most colourful places in Britain.",
         "Each flower is judged on its form, its colour and how fresh it looks. Growers spend the night before "
         "the show grooming petals with small brushes and cotton wool.",
         "Visitors can buy tubers of most of the winning varieties at the stalls outside, and the experts on the "
         "society's stand are happy to answer questions.",
         "Trains run every half hour from the city centre, and the showground is a ten minute walk from the station."],
        "dahlia_show", f"{TRAVEL.origin}/media/2024/03/dahlia-show-winner.jpg",
        "A soft orange dahlia with neatly curled petals, photographed close up at a flower show",
        "Last year's winner in the small pompon class.", og_alt=True, case="figure_og_image_alt", date="2024-03-11",
        note="figure with alt, figcaption, og:image and og:image:alt")


def _windows_1252_page(b: _CrawlBuilder) -> None:
    """A page in windows-1252, declared only in <meta charset>: the HTTP header gives no charset."""
    photo = PHOTOS["tower_portrait"]
    url = b.image(f"{BLOG.origin}/blog/wp-content/uploads/2024/03/pagoda-from-the-path.jpg", photo)
    alt = "The old pagoda’s painted roofs — orange, green and gold — seen from the path below the café"
    caption = "Early morning, before the crowds: the pagoda on Longevity Hill."
    article = Article(
        BLOG, "/blog/2024/03/a-morning-at-the-summer-palace", "A morning at the Summer Palace",
        ["We got to the north gate at half past six, just as it opened, and had the hill almost to ourselves. "
         "It’s the best advice I can give anyone visiting Beijing: go early.",
         "The path up Longevity Hill is steep but short. From the top you see the lake spread out below you, "
         "with the “Seventeen Arch Bridge” on the far side and the city fading into the haze.",
         "We had breakfast at a tiny café near the boat pier — green tea, steamed buns and a plate of pickles — "
         "for less than €5 each.",
         "By ten o’clock the tour groups had arrived, so we walked back along the lake shore and left by the "
         "east gate. Next time we’ll bring a picnic."],
        lead=_figure(_img(url, alt, photo.dimensions), caption), og_image=url, author="Tom Hale",
        date="2024-03-06", ads=False)
    page_html = _render(b, article, charset="windows-1252")
    b.page(Page(article.url, page_html, _expect(
        article.url, "windows_1252_meta_charset", "kept", image_url=url, texts=(alt, caption),
        note="encoded in windows-1252, declared only in <meta charset> (HTTP Content-Type has no charset); "
             "text must keep ’ — é without mojibake"), encoding="cp1252", content_type="text/html"))


def _broken_markup_page(b: _CrawlBuilder) -> None:
    """Unclosed and mismatched tags, unquoted attributes, a bare ampersand: browsers cope, so must we."""
    photo = PHOTOS["dahlia_bud"]
    b.image(BLOG.logo_url, BLOG.logo)
    url = b.image(f"{BLOG.origin}/blog/wp-content/uploads/2024/03/dahlia-and-bud.jpg", photo)
    alt = "An orange dahlia in full flower with a second bud opening just below it"
    page_url = f"{BLOG.origin}/blog/2024/03/dahlias-after-the-rain"
    page_html = f"""<html>
<head>
<meta http-equiv=Content-Type content="text/html; charset=utf-8">
<title>Dahlias after the rain &#8211; Notes from the Hillside</title>
<meta property=og:image content={url}>
<body class=post-template>
<div id=wrap><div class=header><a href=/><img class=site-logo src={BLOG.logo_url} alt='Notes from the Hillside logo' width=220 height=60></a>
<ul class=menu><li><a href=/travel/>Travel<li><a href=/garden/>Garden<li><a href=/about/>About</ul>
<div class=post>
<h1>Dahlias after the rain</h2>
<p class=meta>Posted by Tom Hale on 1 March 2024 &middot; <a href=#comments>4 comments</a>
<p>It rained for three days straight, and I expected the dahlias to be flattened. Instead they stood up
straight and the flowers looked better than ever, washed clean & glowing against the wet leaves.
<figure class=wp-block-image><img src={url} alt="{_esc(alt)}" width=490 height=327 class="wp-image-2291 size-large">
<figcaption>The first bloom of the season, with another bud on the way
</figure>
<p>The trick, I think, is staking. Every plant has a <b>strong wooden stake <i>and</b> three loops of soft
string</i>, put in when the plants were still small. The stems bend in the wind but they do not snap.
<p>I also cut the plants back by a third in early summer, which makes them bushier and
<span>gives more flowers on shorter, stronger stems.</span></span>
<div class=comments id=comments><h3>4 comments</h3>
<div class=comment><p>Lovely photo! Which variety is this?<div class=comment><p>Thanks for the tip about staking early.
</div>
<table><tr><td>Category: Garden<td>Tags: dahlias, rain, staking
</div>
"""
    b.page(Page(page_url, page_html, _expect(
        page_url, "broken_markup", "kept", image_url=url, texts=(alt, "The first bloom of the season, with another bud on the way"),
        note="unclosed <p>/<li>/<figcaption>/<figure>/<div>, mismatched </h2>, unquoted attributes, no </html>")))


def _same_photo_pages(b: _CrawlBuilder) -> None:
    """One photo URL on three pages with three different texts: Aggregate keeps the best pair only."""
    url = f"{_NEWS_CDN}/photos/summer-palace-pagoda-and-lake.jpg"
    best = ("A red and gold pagoda with layered tiled roofs stands above the trees, with a wide lake stretching "
            "behind it")
    _lead_article(
        b, NEWS, _URL_TRIO.removeprefix(NEWS.origin), "A spring weekend in Beijing",
        ["Spring is short in Beijing, but for a few weeks in April the city is at its most beautiful, with "
         "blossom in every park and clear blue skies after the winter smog.",
         "Start at the Summer Palace, where the willows along the lake turn green before anything else. The "
         "crowds are smaller on weekday mornings, and the boats start running again in April.",
         "In the evening, walk around Houhai lake, where bars and small restaurants open their terraces as soon "
         "as the weather allows.",
         "Hotels fill up quickly around the May holiday, so book early or plan your visit for the second half "
         "of April."],
        "tower_middle", url, best, "The Summer Palace is at its best in April, before the summer heat.",
        case="same_photo_best_text", author="Chen Jie", date="2024-03-05", related=_news_related(_URL_TRIO),
        note="the photo is also on two other pages with weaker texts; this pair is the best one")
    _lead_article(
        b, TRAVEL, "/news/2024/03/summer-palace-ticket-prices", "Summer Palace ticket prices to rise in April",
        ["Entrance tickets for the Summer Palace will cost more from the first of April, the park authority "
         "announced on Monday, the first increase in almost ten years.",
         "The combined ticket, which includes the tower and the gardens, will rise by a fifth. Children under "
         "six and people over sixty will still enter free of charge.",
         "Officials said the extra money would pay for repairs to the lake shore and for more staff at the gates "
         "during the busy summer months."],
        "tower_middle", url, "The Summer Palace in Beijing, seen from the hill", None, case="same_photo_weaker_text",
        outcome="duplicate", duplicate_of=_URL_TRIO, date="2024-03-04",
        note="same photo URL as the best page, shorter and vaguer text")
    _lead_article(
        b, NEWS, "/opinion/2024/03/02/why-we-still-travel", "Why we still travel",
        ["Every spring I promise myself that this will be the year I stay at home, and every spring I find "
         "myself looking at train timetables and maps of cities I have never seen.",
         "Travel is expensive, tiring and often disappointing. The famous sights are crowded and the weather is "
         "never what the brochure promised. And yet it changes the way we see our own streets when we return.",
         "Perhaps that is the real point of going away: not the photographs, but the fresh eyes we bring back "
         "with us."],
        "tower_middle", url, "Spring is a good time to visit the palace gardens", None, case="same_photo_generic_text",
        outcome="duplicate", duplicate_of=_URL_TRIO, author="Anna Berg", date="2024-03-02",
        note="same photo URL as the best page, a text about the article rather than the photo")


def _near_duplicate_pages(b: _CrawlBuilder) -> None:
    """The same photo resized and re-encoded at another URL: Aggregate merges them by pHash."""
    _lead_article(
        b, GARDEN, _URL_PINK.removeprefix(GARDEN.origin), "Pink pompon dahlias for borders and pots",
        ["Pink pompon dahlias are among the easiest to grow. The plants stay compact, so they suit small gardens "
         "and large pots on a sunny patio.",
         "Choose a variety with strong stems if you want flowers for cutting. The small round blooms last a week "
         "or more in a vase if you pick them early in the morning.",
         "Like all dahlias, they need plenty of water in dry weather and a feed rich in potash once the buds "
         "appear. Remove faded flowers every few days."],
        "dahlia_pink", f"{GARDEN.origin}/images/uploads/pink-dahlia-640.jpg",
        "A bright pink pompon dahlia with rounded petals, surrounded by soft green foliage",
        "Pink pompons flower freely from July until the first frosts.", og_alt=True, case="near_duplicate_original",
        date="2024-02-28", note="the same photo appears resized and re-encoded on another site")
    _lead_article(
        b, BLOG, "/blog/2024/02/what-to-plant-in-march", "What I am planting in March",
        ["March is when the garden wakes up. The soil is still cold, but there is plenty to do in the greenhouse "
         "and on the windowsills.",
         "This year I am starting sweet peas, tomatoes and a few dahlia tubers in pots, and sowing early salad "
         "leaves under a cloche outside.",
         "The potatoes will wait until April, when the ground is a little warmer."],
        "dahlia_pink_resized", "https://photos.example.com/resized/512/pink-dahlia.jpg",
        "A pink flower in our garden last summer", None, case="near_duplicate_copy", outcome="duplicate",
        duplicate_of=_URL_PINK, author="Tom Hale", date="2024-02-25", ads=False,
        note="512 px re-encoded copy of the pink dahlia photo at another URL, with a weaker text")


_GALLERY_INTROS = [
    ("Ruth in Leeds", "on her first trip to China, climbing Longevity Hill just after sunrise"),
    ("David from Cardiff", "from the shore of Kunming Lake, looking back at the hill"),
    ("Priya in Birmingham", "on a hazy afternoon, waiting for a boat across the lake"),
    ("Kenji from Bristol", "who turned his camera sideways to fit the whole tower in"),
    ("Alice in Norwich", "from the top of the hill, where the trees frame the view of the water"),
    ("Marco from Glasgow", "during a business trip, in the only free hour of the week"),
    ("Helen in Exeter", "who held her phone upright to catch the height of the tower"),
    ("Sam from Belfast", "in her allotment, where the dahlias have been flowering for weeks"),
    ("Olu in Manchester", "at a small garden centre on the edge of town"),
    ("Grace from York", "in her late father's garden, which she now looks after"),
    ("Peter in Dundee", "lying on the lawn to look up at the tallest plant in the border"),
    ("Jo from Brighton", "at a flower show, where it won third prize in its class"),
]


def _gallery_pages(b: _CrawlBuilder) -> None:
    """Twelve pages, twelve different photos, one shared caption (also used as alt): all dropped by Aggregate."""
    for week, (who, where) in enumerate(_GALLERY_INTROS, start=1):
        key = f"reader_{week:02d}"
        photo = PHOTOS[key]
        ext = {"JPEG": "jpg", "WEBP": "webp", "PNG": "png"}[photo.format]
        url = b.image(f"{COMMUNITY.origin}/uploads/2024/w{week:02d}/reader-photo-{week:02d}.{ext}", photo)
        body = [f"This week's picture was sent in by {who}, who took it {where}. Thank you for sharing it with us.",
                "Every week our readers' editor chooses one photograph from the hundreds posted to the community "
                "gallery. The winner receives a printed copy and a year's subscription to the weekend magazine.",
                "To enter, upload your photo with a few words about where and when you took it. Please make sure "
                "the picture is your own, and ask permission before photographing people."]
        article = Article(COMMUNITY, f"/gallery/2024/reader-photo-of-the-week-{week}",
                          f"Reader photo of the week, week {week}", body,
                          lead=_figure(_img(url, SHARED_CAPTION, photo.dimensions), SHARED_CAPTION), og_image=url,
                          date=f"2024-{1 + (week - 1) // 4:02d}-{1 + 7 * ((week - 1) % 4):02d}", ads=week % 2 == 0)
        _add(b, article, _expect(article.url, "shared_caption", "shared_text", image_url=url, texts=(SHARED_CAPTION,),
                                 note="12 different photos share this caption (alt and figcaption)"))


# (site, path, title, photo key, file name, alt, paragraphs)
_FOREIGN = [
    (DE, "/reise/2024/03/sommerpalast-peking", "Der Sommerpalast in Peking ist wieder geöffnet", "tower_lake",
     "sommerpalast-turm.jpg",
     "Der Turm des buddhistischen Weihrauchs erhebt sich über den Bäumen am Kunming-See im Sommerpalast von Peking",
     ["Nach mehr als zwei Jahren Bauzeit ist der berühmte Turm im Sommerpalast wieder für Besucher geöffnet. "
      "Handwerker haben tausende glasierte Dachziegel ersetzt und die roten Säulen neu gestrichen.",
      "Von der oberen Galerie aus blickt man weit über den Kunming-See bis zu den Westbergen. Die Parkverwaltung "
      "rechnet in den Frühlingsferien mit einem großen Andrang.",
      "Eintrittskarten für den Turm müssen künftig mindestens einen Tag vorher im Internet gebucht werden. "
      "Gruppen dürfen nicht größer als dreißig Personen sein."]),
    (DE, "/garten/2024/03/dahlien-richtig-pflanzen", "Dahlien richtig pflanzen: so gelingt es", "dahlia_orange",
     "dahlie-orange.jpg",
     "Eine orangefarbene Pompon-Dahlie in voller Blüte vor dunkelgrünen Blättern",
     ["Dahlienknollen sollten erst nach den Eisheiligen ins Beet, denn sie vertragen keinen Frost und faulen in "
      "kalter, nasser Erde sehr schnell.",
      "Wer früher Blüten möchte, treibt die Knollen ab März in Töpfen auf der hellen Fensterbank vor. Gegossen "
      "wird zunächst nur sparsam, bis sich die ersten Triebe zeigen.",
      "Im Sommer brauchen die Pflanzen viel Wasser und alle zwei Wochen etwas Dünger. Verblühtes sollte man "
      "regelmäßig abschneiden, dann blühen sie bis zum ersten Frost."]),
    (FR, "/voyage/2024/03/palais-d-ete-pekin", "Le Palais d'été de Pékin, joyau impérial au bord du lac",
     "pagoda_square", "pagode-palais-ete.jpg",
     "Une haute pagode aux toits rouges et verts superposés domine les arbres de la colline",
     ["Construit au dix-huitième siècle pour les empereurs de la dynastie Qing, le Palais d'été s'étend autour "
      "d'un immense lac artificiel au nord-ouest de Pékin.",
      "La pagode qui couronne la colline de la Longévité offre une vue magnifique sur le lac, ses îles et le "
      "célèbre pont aux dix-sept arches. Il faut arriver tôt le matin pour éviter la foule.",
      "Comptez une journée entière pour visiter les jardins, les pavillons et la longue galerie couverte, "
      "décorée de milliers de peintures."]),
    (FR, "/jardin/2024/03/cultiver-les-dahlias", "Cultiver les dahlias : nos conseils pour une belle floraison",
     "dahlia_left", "dahlia-pompon.jpg",
     "Un dahlia pompon orange en pleine floraison sur un fond de feuillage vert sombre",
     ["Les dahlias se plantent au printemps, lorsque tout risque de gelée est écarté. Choisissez un endroit bien "
      "ensoleillé et une terre riche, légère et bien drainée.",
      "Installez un tuteur solide au moment de la plantation afin de ne pas abîmer les tubercules plus tard. "
      "Arrosez régulièrement pendant l'été, surtout par temps sec.",
      "Coupez les fleurs fanées au fur et à mesure : la plante fleurira ainsi sans interruption jusqu'aux "
      "premières gelées de l'automne."]),
    (ES, "/viajes/2024/03/palacio-de-verano-pekin", "El Palacio de Verano de Pekín, un paseo entre lagos y pagodas",
     "pagoda_roofs", "tejados-pagoda.jpg",
     "Vista cercana de los tejados superiores de una pagoda china con tejas vidriadas naranjas y verdes",
     ["El Palacio de Verano fue el lugar de descanso de los emperadores durante los meses más calurosos del año. "
      "Hoy es uno de los parques más visitados de la capital china.",
      "Desde lo alto de la colina de la Longevidad se disfruta de una vista espectacular del lago Kunming y de "
      "sus pequeñas islas. Conviene llegar temprano para evitar las aglomeraciones.",
      "En primavera y en otoño las temperaturas son agradables y los jardines lucen sus mejores colores."]),
    (ES, "/jardin/2024/03/dalias-en-primavera", "Cómo plantar dalias en primavera", "dahlia_close",
     "dalia-petalos.jpg",
     "Primer plano de los pétalos rizados de color naranja en el centro de una dalia",
     ["Las dalias son originarias de México y florecen desde el verano hasta las primeras heladas. Sus "
      "tubérculos se plantan en primavera, cuando la tierra ya está templada.",
      "Necesitan mucho sol, riego frecuente durante el verano y un tutor firme para que los tallos no se "
      "rompan con el viento.",
      "Si se cortan las flores marchitas con regularidad, la planta seguirá produciendo nuevas flores durante "
      "muchas semanas."]),
]


def _foreign_pages(b: _CrawlBuilder) -> None:
    """German, French and Spanish pages with good photos and texts in their language: dropped for language."""
    for site, path, title, key, name, alt, body in _FOREIGN:
        folder = {"de": "bilder", "fr": "images", "es": "imagenes"}[site.lang]
        _lead_article(b, site, path, title, body, key, f"{site.origin}/{folder}/2024/03/{name}", alt, None,
                      og_alt=True, case=f"non_english_{site.lang}", outcome="language", date="2024-03-13",
                      ads=False, note=f"{site.lang} page, same photo bytes as an English page at its own URL")


def _no_image_pages(b: _CrawlBuilder) -> None:
    """Pages with only clutter: logos, icons, banners, pixels, avatars, small thumbnails. No pair."""
    pages = [
        Article(NEWS, "/about", "About Example News",
                ["Example News is an independent news organisation founded in 1998. Our newsroom of eighty "
                 "journalists reports on world affairs, business, science, travel and culture.",
                 "We are funded by our readers and by advertising. Our journalism is never influenced by "
                 "advertisers, and sponsored content is always clearly labelled.",
                 "If you think we have got something wrong, please write to our readers' editor, who will look "
                 "into your complaint and publish corrections where they are needed."],
                ads=False, related=[]),
        Article(NEWS, "/opinion/2024/03/11/the-case-for-slower-news", "The case for slower news",
                ["We are told that news must be instant, that whoever publishes first wins. I am no longer sure "
                 "that readers want to be first. I think they want to be right.",
                 "Every newsroom knows the feeling of a story that moves faster than the facts. Numbers change, "
                 "names are corrected, and early reports turn out to be rumours.",
                 "Slower news does not mean less news. It means waiting an hour to call a second source, and "
                 "telling readers clearly what we know and what we do not.",
                 "Our readers have told us, again and again, that they would rather have one careful account "
                 "than ten quick ones. It is time we listened."],
                author="Anna Berg", date="2024-03-11", related=_news_related("")),
        Article(TRAVEL, "/contact", "Contact Example Travel",
                ["Our editorial team is based in Bristol and is happy to hear from readers. We read every message, "
                 "although we cannot always reply to each one individually.",
                 "For questions about a booking made through one of our partners, please contact the partner "
                 "directly, because we do not have access to your booking details.",
                 "Press enquiries and requests to review hotels or tours should be sent to our press office."],
                ads=True, pixel=True),
        Article(GARDEN, "/newsletter", "Sign up for our monthly garden newsletter",
                ["Every month we send a short letter with seasonal jobs for the garden, a plant we are excited "
                 "about and answers to questions from readers.",
                 "It is free, it contains no advertising, and you can unsubscribe at any time with a single click.",
                 '<form class="signup" action="/newsletter/subscribe" method="post"><label>Email address '
                 '<input type="email" name="email"></label> <button type="submit">Subscribe</button></form>'],
                ads=False),
    ]
    notes = ["about page: logo, social icons, tracking pixel only",
             "opinion column: logo, ad banners, avatar, social icons, related thumbnails, pixel; no photo",
             "contact page: logo, ad banners, icons, pixel", "newsletter form: logo and icons only"]
    for article, note in zip(pages, notes):
        _add(b, article, _expect(article.url, "no_photo", "no_image", note=note))

    # The home page: teaser cards with small thumbnails of other articles, and no lead photo.
    cards = _news_related("") + [("Boats return to Kunming Lake", _URL_BOATS, PHOTOS["palace_lower"]),
                                 ("A spring weekend in Beijing", _URL_TRIO, PHOTOS["tower_middle"])]
    body = ["Good morning. Here are today's top stories from our newsroom, updated every few minutes until late "
            "in the evening.",
            "Sign up for our morning briefing to get the most important news of the day in your inbox before "
            "breakfast, with a short summary of each story and links to read more."]
    article = Article(NEWS, "/", "Example News: news, analysis and comment from around the world", body,
                      related=cards, date="2024-03-15")
    _add(b, article, _expect(article.url, "home_page_thumbnails", "no_image",
                             note="home page: five 160 px teaser thumbnails, logo, ads, icons; no dominant photo"))


def _missing_image_pages(b: _CrawlBuilder) -> None:
    """Lead photos hosted where the crawler did not go: AcquireImages must fetch them or drop not_in_crawl."""
    _lead_article(
        b, TRAVEL, "/guides/beijing/where-to-eat-near-the-summer-palace", "Where to eat near the Summer Palace",
        ["The Summer Palace is huge, and the few restaurants inside the park are crowded and overpriced. With a "
         "little planning you can eat much better for less.",
         "Just outside the north gate, a row of small family restaurants serves noodles, dumplings and cold "
         "dishes. Look for the places full of local office workers at lunchtime.",
         "For a special meal, book a table at one of the courtyard restaurants near the east gate, where the "
         "menus are based on dishes once cooked for the imperial court."],
        "pagoda_edge", "https://img.example.org/travel/2024/03/pagoda-edge-lake.jpg",
        "The corner of a painted pagoda beside a calm lake, with a small island and trees under a pale sky",
        "The view from the north side of the hill.", in_crawl=False, outcome="not_in_crawl", case="image_not_in_crawl",
        date="2024-03-07", note="the lead photo's URL has no record in the WARC")
    _lead_article(
        b, GARDEN, "/blog/2024/01/overwintering-dahlias", "How to keep dahlia tubers safe over winter",
        ["Once the first frost has blackened the leaves, it is time to lift your dahlias. Cut the stems down to "
         "a few inches and dig the tubers out carefully with a fork.",
         "Turn them upside down for a week so that water drains out of the hollow stems, then brush off the soil "
         "and store them in a box of dry compost or sand.",
         "Keep the box somewhere cool but frost free, such as a garage or shed, and check the tubers every month "
         "for signs of rot."],
        "dahlia_leaves", "https://img.example.org/garden/2024/01/orange-dahlia-leaves.jpg",
        "An orange dahlia flower and a half open bud in front of dark, blurred green leaves",
        "Enjoy the last blooms before the frost.", in_crawl=False, outcome="not_in_crawl", case="image_not_in_crawl",
        author="Sarah Mills", date="2024-01-20", note="the lead photo's URL has no record in the WARC")


def _small_and_drawn_pages(b: _CrawlBuilder) -> None:
    """Photos under 300 px (size filter) and drawn figures (naturalness filter)."""
    _lead_article(
        b, NEWS, "/world/asia/2024/03/01/lake-ice-melts-early", "Ice on Beijing's lakes melts early",
        ["The ice on the lakes of Beijing's imperial parks melted almost two weeks earlier than usual this year, "
         "after the warmest February since records began.",
         "Skating areas on Kunming Lake and in Beihai Park closed in the middle of the month, and park staff "
         "warned visitors to keep off the remaining ice near the shore.",
         "Scientists say the winters in northern China have become noticeably shorter over the past thirty years."],
        "lake_small", f"{_NEWS_CDN}/2024/03/kunming-lake-thaw-280.jpg",
        "Open water on a hazy lake with an island, seen through the dark green trees on the hillside",
        "The lake in late February.", outcome="too_small", case="small_photo", author="Li Wen", date="2024-03-01",
        note="280x248 photo: below the 300 px minimum side")
    _lead_article(
        b, GARDEN, "/blog/2024/03/dahlia-cuttings", "Taking dahlia cuttings in spring",
        ["Cuttings are the cheapest way to get more dahlias. When the shoots on your potted tubers reach about "
         "three inches, cut them off just below a leaf joint with a clean sharp knife.",
         "Push the cuttings into small pots of gritty compost and cover them with a clear plastic bag. They "
         "should root within three weeks on a warm windowsill.",
         "Plants grown from cuttings flower in the same summer and form their own small tubers by the autumn."],
        "dahlia_small", f"{GARDEN.origin}/images/uploads/dahlia-close-240.jpg",
        "The tightly curled orange petals of a dahlia flower, seen from directly above", None,
        outcome="too_small", case="small_photo", date="2024-03-03", note="240x240 photo: below the 300 px minimum side")

    chart = Graphic("bar_chart", (640, 400), "Summer Palace visitors by month, 2023 (thousands)", (200, 60, 40))
    diagram = Graphic("diagram", (600, 450), "The dahlia year", (60, 120, 80))
    for site, path, title, graphic, name, alt, caption, body in [
        (NEWS, "/business/2024/03/06/summer-palace-visitor-numbers", "Visitor numbers at the Summer Palace hit a record",
         chart, f"{_NEWS_CDN}/2024/03/chart-visitors-by-month.png",
         "Bar chart of monthly visitor numbers at the Summer Palace in 2023, with a peak in October",
         "Visitors per month in 2023, in thousands. Source: park authority.",
         ["More than six million people visited the Summer Palace last year, the highest number ever recorded, "
          "according to figures released by the park authority on Wednesday.",
          "Numbers rose steadily through the spring and peaked in October, when the national holiday brings "
          "millions of domestic tourists to the capital.",
          "Officials said they would limit daily visitor numbers at busy times to protect the historic buildings."]),
        (GARDEN, "/guides/dahlia-planting-calendar", "A dahlia planting calendar", diagram,
         f"{GARDEN.origin}/images/uploads/dahlia-year-diagram.png",
         "Diagram of the dahlia year, from planting tubers in spring to lifting and storing them in November",
         "When to plant, stake, enjoy and lift your dahlias.",
         ["Dahlias follow a simple yearly rhythm, and once you know it they are among the easiest plants in the "
          "garden to look after.",
          "Plant the tubers in late spring, stake the stems as they grow in June, and enjoy the flowers from "
          "midsummer until the first frost.",
          "In November lift the tubers, dry them and store them somewhere cool until the following spring."]),
    ]:
        b.image(name, graphic)
        lead = _figure(_img(name, alt, graphic.size), caption)
        article = Article(site, path, title, body, lead=lead, og_image=name, date="2024-03-06")
        _add(b, article, _expect(article.url, "drawn_figure", "not_natural", image_url=name, texts=(alt, caption),
                                 note="the figure is a drawn chart/diagram, not a photo"))


def _extra_records() -> list[tuple[str, str, bytes]]:
    """Non-HTML responses a crawl holds besides pages and images: ReadCrawl must pass over them."""
    css = b"body{font-family:Georgia,serif;margin:0}.ad-slot{text-align:center}.site-logo{height:60px}\n"
    robots = b"User-agent: *\nDisallow: /search\nSitemap: https://www.example-news.com/sitemap.xml\n"
    return [(f"{NEWS.origin}/static/css/site.css", "text/css", css),
            (f"{NEWS.origin}/robots.txt", "text/plain", robots)]


@lru_cache(maxsize=1)
def _crawl() -> _CrawlBuilder:
    b = _CrawlBuilder()
    _kept_articles(b)
    _gallery_pages(b)
    _foreign_pages(b)
    _no_image_pages(b)
    _missing_image_pages(b)
    _small_and_drawn_pages(b)
    return b


EXPECTED: list[dict] = [page.expected for page in _crawl().pages]
"""One entry per HTML page, in crawl order: ``page_url``, ``case``, ``outcome`` (one of
:data:`OUTCOMES`), ``language``, ``image_url`` (the photo the page's pair should use, or None),
``image_urls`` (every URL that serves that photo on the page: equally right), ``text`` (the
preferred description) and ``texts`` (every acceptable one; compare with
:func:`expected_text_matches`), ``duplicate_of`` (for ``duplicate``: the page whose pair wins)
and ``note``."""


def _normalise(text: str) -> str:
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return " ".join(text.split()).strip(" .").casefold()


def expected_text_matches(entry: dict, text: str | None) -> bool:
    """Whether `text` is one of the entry's acceptable descriptions (ignoring case, spacing, curly quotes, a final dot)."""
    return text is not None and _normalise(text) in {_normalise(t) for t in entry["texts"]}


def not_in_crawl_images() -> dict[str, bytes]:
    """The image files the pages use but the crawl lacks (for serving them in a fetch test)."""
    return {url: image.render() for url, image in _crawl().missing.items()}


# --------------------------------------------------------------------------------------------
# Writing the WARC
# --------------------------------------------------------------------------------------------

_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


def _record_id(kind: str, url: str) -> str:
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, kind + ' ' + url)}>"


def _warc_date(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class _WarcOut:
    """Writes records with fixed dates and URL-derived IDs, one gzip member each (warcio's WARCWriter)."""

    def __init__(self, stream, filename: str):
        from warcio.warcwriter import WARCWriter

        self.writer = WARCWriter(stream, gzip=True, warc_version="1.1")
        self.ticks = itertools.count()
        self.counts = {"pages": 0, "images": 0, "other": 0, "records": 0}
        info = b"software: lait sample-crawl\r\nformat: WARC File Format 1.1\r\ndescription: lait sample crawl\r\n"
        self._write("", "warcinfo", {"WARC-Filename": filename}, CRAWL_START, payload=info,
                    warc_content_type="application/warc-fields")

    def tick(self) -> datetime:
        return CRAWL_START + timedelta(seconds=3 * next(self.ticks))

    def _write(self, url: str, kind: str, headers: dict, when: datetime, **record_kw) -> None:
        payload = record_kw.pop("payload", None)
        if payload is not None:
            record_kw.update(payload=io.BytesIO(payload), length=len(payload))
        headers = {"WARC-Record-ID": _record_id(kind, url or headers.get("WARC-Filename", "")),
                   "WARC-Date": _warc_date(when), **headers}
        self.writer.write_record(self.writer.create_warc_record(url, kind, warc_headers_dict=headers, **record_kw))
        self.counts["records"] += 1

    def request(self, url: str, when: datetime) -> None:
        from warcio.statusandheaders import StatusAndHeaders

        host = url.split("/")[2]
        target = url.split(host, 1)[1] or "/"
        http = StatusAndHeaders(f"GET {target} HTTP/1.1", [("Host", host), ("User-Agent", "ExampleBot/1.0"),
                                                           ("Accept", "text/html,*/*;q=0.8")], is_http_request=True)
        self._write(url, "request", {}, when, http_headers=http)

    def response(self, url: str, mime: str, payload: bytes, kind: str, extra_headers=(), when=None) -> None:
        from warcio.statusandheaders import StatusAndHeaders

        when = when or self.tick()
        headers = [("Date", format_datetime(when, usegmt=True)), ("Server", "nginx"), ("Content-Type", mime),
                   ("Content-Length", str(len(payload))), *extra_headers]
        http = StatusAndHeaders("200 OK", headers, protocol="HTTP/1.1")
        self._write(url, "response", {}, when, payload=payload, http_headers=http)
        self.counts[kind] += 1


def write_sample_crawl(path: str) -> dict:
    """Write the sample crawl to `path` (a .warc.gz, one gzip member per record).

    Each page's response record is followed by the image records it is the first to use;
    every tenth page also gets its request record, as crawlers write them.

    Returns
    -------
    dict
        ``{"path", "pages", "images", "other", "records", "bytes"}``: HTML page records, image
        records, other responses (CSS, robots.txt), all records (with warcinfo and requests)
        and the file size.
    """
    crawl = _crawl()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    partial = f"{path}.part"  # renamed when complete, so a crash never leaves a truncated crawl behind
    with open(partial, "wb") as stream:
        out = _WarcOut(stream, os.path.basename(path))
        written: set[str] = set()
        for index, page in enumerate(crawl.pages):
            when = out.tick()
            if index % 10 == 0:
                out.request(page.url, when)
            out.response(page.url, page.content_type, page.html.encode(page.encoding), "pages",
                         [("Cache-Control", "max-age=300")], when)
            for url in page.images:
                if url not in written:
                    written.add(url)
                    payload = _rendered(url)
                    out.response(url, _MIME[crawl.images[url].format], payload, "images",
                                 [("ETag", f'"{hashlib.sha1(payload).hexdigest()[:16]}"'),
                                  ("Cache-Control", "public, max-age=31536000")])
        for url, mime, payload in _extra_records():
            out.response(url, mime, payload, "other")
    os.replace(partial, path)
    return {"path": path, **out.counts, "bytes": os.path.getsize(path)}


@cache
def _rendered(url: str) -> bytes:
    return _crawl().images[url].render()
