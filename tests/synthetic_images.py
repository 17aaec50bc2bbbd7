"""Non-photos drawn with Pillow for the image-filter tests: charts, text, icons, diagrams, UI.

Drawn here, not taken from ../shared, so the naturalness model is tested on images it never saw.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def encode(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def bar_chart(seed: int = 0, size: tuple[int, int] = (640, 480)) -> Image.Image:
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.line([(60, 30), (60, h - 50), (w - 20, h - 50)], fill="black", width=2)
    n = 6
    for i, value in enumerate(rng.uniform(0.2, 0.95, n)):
        x0 = 80 + i * (w - 120) // n
        draw.rectangle([x0, h - 50 - value * (h - 100), x0 + (w - 160) // n, h - 51], fill=(70, 130, 180))
        draw.text((x0, h - 40), f"Q{i + 1}", fill="black", font=_font(16))
    draw.text((w // 3, 5), "Revenue by quarter", fill="black", font=_font(20))
    return image


def text_page(seed: int = 0, size: tuple[int, int] = (600, 800)) -> Image.Image:
    rng = np.random.default_rng(seed)
    words = "the of and image text corpus pipeline model filter photo crawl page data set".split()
    image = Image.new("RGB", size, (250, 250, 245))
    draw = ImageDraw.Draw(image)
    for row in range(30, size[1] - 30, 24):
        line = " ".join(rng.choice(words, 9))
        draw.text((30, row), line, fill=(20, 20, 20), font=_font(18))
    return image


def flat_icon(seed: int = 0, size: int = 512) -> Image.Image:
    rng = np.random.default_rng(seed)
    colour = tuple(int(c) for c in rng.integers(0, 200, 3))
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle([size // 8, size // 8, size * 7 // 8, size * 7 // 8], radius=size // 6, fill=colour)
    draw.ellipse([size * 3 // 8, size * 3 // 8, size * 5 // 8, size * 5 // 8], fill="white")
    return image


def box_diagram(seed: int = 0, size: tuple[int, int] = (800, 500)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    names = ["Client", "Load balancer", "Web server", "Cache", "Database"]
    for i, name in enumerate(names):
        x = 20 + i * 155
        draw.rectangle([x, 200, x + 130, 280], outline="black", fill=(230, 240, 255), width=2)
        draw.text((x + 10, 230), name, fill="black", font=_font(16))
        if i:
            draw.line([(x - 25, 240), (x, 240)], fill="black", width=2)
            draw.polygon([(x, 240), (x - 8, 235), (x - 8, 245)], fill="black")
    return image


def app_screenshot(seed: int = 0, size: tuple[int, int] = (900, 600)) -> Image.Image:
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", size, (245, 245, 245))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, size[0], 40], fill=(45, 45, 60))
    draw.text((12, 10), "Settings - Preferences", fill="white", font=_font(18))
    draw.rectangle([0, 40, 200, size[1]], fill=(230, 230, 235))
    for i, item in enumerate(["General", "Security", "Browser", "Network", "Advanced"]):
        draw.text((16, 60 + 36 * i), item, fill=(30, 30, 30), font=_font(16))
    for i in range(8):
        y = 70 + 56 * i
        draw.text((230, y), f"Option {i + 1}", fill=(30, 30, 30), font=_font(16))
        draw.rectangle([520, y - 4, 860, y + 24], outline=(160, 160, 160), fill="white")
        if rng.random() > 0.5:
            draw.rectangle([230, y + 28, 246, y + 44], outline=(80, 80, 80), fill=(66, 133, 244))
    return image


NON_PHOTOS = {"bar_chart": bar_chart, "text_page": text_page, "flat_icon": flat_icon,
              "box_diagram": box_diagram, "app_screenshot": app_screenshot}
