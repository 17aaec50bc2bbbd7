"""Image URLs as the dominant-image detector compares them: keys, sizes in URLs, renditions, site-wide images."""

from __future__ import annotations

import functools
import html
import re
from urllib.parse import parse_qsl, unquote, urljoin, urlsplit

from lait.filters.urls import normalize_url, url_host

# Query keys that only ask a server for another size or format of the same image (the
# comparison rule of shared/data/mainimage/README.md).
RESIZE_QUERY_KEYS = frozenset(
    "w h width height resize fit fit-in crop quality q auto dpr fm format ssl strip zoom size sz scale imwidth "
    "impolicy output-quality downsize ixlib c fl ar type name rect".split())

PLACEHOLDER_URL = re.compile(r"(blank|spacer|placeholder|transparent|lazy|loading|pixel|1x1|empty|grey|gray)"
                          r"[\w-]*\.(gif|png|svg|jpg)", re.I)
_PLACEHOLDER_WORDS = ("blank", "spacer", "placeholder", "transparent", "lazy", "loading", "pixel", "1x1", "empty",
                      "grey", "gray")
_SIZE_IN_URL = re.compile(r"(?<![\d])(\d{2,4})x(\d{2,4})(?![\d])")
# A bare number folder is a width ("/1200/photo.jpg"), but not a year over a month folder
# ("/2016/05/photo.jpg": WordPress files every upload so).
_WIDTH_IN_URL = re.compile(r"(?:[/_,-]w[_-]?|width[=_-]|/(?!(?:19|20)\d\d/\d{1,2}(?:/|$)))(\d{3,4})(?=[/_,.-]|$)", re.I)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
# The commas between srcset candidates: followed by whitespace or a URL, or ending a descriptor
# ("800w,"); URLs may contain commas (Cloudinary). Every branch starts at the comma, so the
# search jumps from comma to comma.
_SRCSET_SEPARATOR = re.compile(r",(?:\s+|(?=\s*(?:https?:)?/)|(?<=[wx],))")


def is_placeholder_url(url: str) -> bool:
    """Whether :data:`PLACEHOLDER_URL` finds a placeholder file name in `url`.

    The regular expression has no literal prefix to search for, so an ASCII URL without any of
    its words is answered by substring tests; other URLs go to the expression, whose case
    folding (`re.I` on Unicode) `str.lower` does not copy.
    """
    if url.isascii() and not contains_any(url.lower(), _PLACEHOLDER_WORDS):
        return False
    return PLACEHOLDER_URL.search(url) is not None


def contains_any(text: str, words: tuple[str, ...]) -> bool:
    """Whether one of `words` occurs in `text`."""
    for word in words:  # a loop, not any(): compiled, a generator costs more than the tests
        if word in text:
            return True
    return False


@functools.lru_cache(maxsize=8192)
def image_key(url: str) -> str:
    """Comparison key of an absolute image URL: one image, whatever rendition query or scheme names it.

    Wraps :func:`lait.filters.urls.normalize_url`'s output: drops the scheme and a leading `www.`,
    percent-decodes the path, drops resize/format query keys and sorts the rest.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    host = host[4:] if host.startswith("www.") else host
    path = unquote(parts.path) if "%" in parts.path else parts.path
    if not parts.query:
        return host + path
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                   if k.lower() not in RESIZE_QUERY_KEYS)
    return host + path + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")


def resolve_image_url(value: str | None, base: str) -> str | None:
    """Absolute normalised URL of an image reference (:func:`lait.filters.urls.normalize_url`), or None
    for empty, `data:` and non-http values."""
    absolute = absolute_image_url(value, base)
    return normalize_url(absolute) if absolute else None


@functools.lru_cache(maxsize=8192)
def absolute_image_url(value: str | None, base: str) -> str | None:
    """Absolute URL of an image reference, entities unescaped: cheap; normalised only for the pick."""
    if not value:
        return None
    value = value.strip()
    if not value or value.startswith(("data:", "javascript:", "about:", "blob:")) or len(value) > 2000:
        return None
    if "&" in value:
        value = html.unescape(value)
    if value.startswith("//"):
        value = base.split(":", 1)[0] + ":" + value
    try:
        absolute = value if value.startswith(("http://", "https://")) and "/." not in value else urljoin(base, value)
        parts = urlsplit(absolute)
        if parts.scheme not in ("http", "https") or not parts.hostname or " " in parts.netloc:
            return None
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:  # "Invalid IPv6 URL", bad port...
        return None
    return absolute


def parse_srcset(value: str | None) -> list[tuple[str, float, str]]:
    """`(url, size, unit)` for each candidate of a `srcset` value; unit is 'w', 'x' or ''."""
    if not value:
        return []
    found = []
    for part in _SRCSET_SEPARATOR.split(value.strip()):
        bits = part.strip().split()
        if not bits:
            continue
        size, unit = 1.0, ""
        if len(bits) > 1:
            descriptor = bits[-1].lower()
            number = _NUMBER.match(descriptor)
            if number and descriptor[-1:] in ("w", "x"):
                size, unit = float(number.group()), descriptor[-1]
        found.append((bits[0], size, unit))
    return found


def pixels(value: str | None) -> float:
    """Pixels in an HTML width/height attribute ('640', '640px'); 0 when absent or relative."""
    if not value or "%" in value:
        return 0.0
    match = _NUMBER.match(value.strip())
    return float(match.group()) if match else 0.0


@functools.lru_cache(maxsize=4096)
def url_size(url: str) -> tuple[float, float]:
    """Width and height that a URL's path or query encodes (`-640x480.jpg`, `w=1200`), 0 when none."""
    match = _SIZE_IN_URL.search(url)
    if match:
        return float(match.group(1)), float(match.group(2))
    query = dict(parse_qsl(urlsplit(url).query))
    for key in ("w", "width", "imwidth", "resize"):
        number = _NUMBER.match(query.get(key, ""))
        if number:
            return float(number.group()), pixels(query.get("h") or query.get("height"))
    match = _WIDTH_IN_URL.search(urlsplit(url).path)
    return (float(match.group(1)), 0.0) if match else (0.0, 0.0)


@functools.lru_cache(maxsize=8192)
def alias_key(raw: str, base: str) -> str | None:
    """:func:`image_key` of an image reference, cheaply (no full normalisation): to merge names."""
    absolute = absolute_image_url(raw, base)
    return image_key(absolute) if absolute else None


# URL words of site-wide images that pages often give as og:image.
_SITE_IMAGE = re.compile(r"(logo|icon|favicon|placeholder|default|blank|sprite|avatar|1x1|spacer|pixel|"
                         r"fallback|no[-_]?image|share[-_]?image|(?:social|facebook|fb|twitter)[-_]?share|brand|counter|"
                         r"beacon|tracking)"
                         # a GIF named with one or two characters ("1.gif", "b.gif") is a tracking beacon
                         r"|^[a-z0-9]{1,2}\.gif$", re.I)
# Folders of site-wide images (WordPress.com serves a blog's icon from /blavatar/HASH).
_SITE_IMAGE_FOLDER = re.compile(r"/(?:[a-z]*avatars?|logos?|icons?|favicons?|emoji)/", re.I)
_EXCLUDED_EXTENSIONS = (".svg", ".ico", ".svgz", ".mp4", ".webm", ".mov", ".m3u8", ".mpd", ".mp3", ".js", ".css",
                        ".pdf", ".json")


# Hosts of analytics and ad beacons: an <img> there is a counter, often with no size declared
# and a URL with no file name to tell (`b.scorecardresearch.com/p?c1=2`).
_BEACON_HOST = re.compile(r"(?:^|\.)(?:scorecardresearch|quantserve|doubleclick|google-analytics|googletagmanager|"
                          r"googlesyndication|chartbeat|omtrdc|demdex|adnxs|krxd|bluekai|rlcdn|statcounter|"
                          r"addthis|hotjar|nr-data|bat\.bing|ct\.pinterest|facebook)\.(?:com|net)$")


@functools.lru_cache(maxsize=8192)
def site_image_url(url: str) -> bool:
    """Whether a URL cannot be a page's own picture: its file name looks like a site-wide image
    (logo, icon, placeholder, pixel...), it is an SVG/ICO, a video or another non-image file, or
    it is served by an analytics or ad beacon host."""
    parts = urlsplit(url)
    if _BEACON_HOST.search((parts.hostname or "").lower()):
        return True
    for path in (unquote(parts.path).lower(), proxied_path(url).lower()):
        name = path.rsplit("/", 1)[-1]
        if _SITE_IMAGE.search(name) or _SITE_IMAGE_FOLDER.search(path) or name.endswith(_EXCLUDED_EXTENSIONS):
            return True
    return False


# Query keys in which image proxies and resizers (Brightspot `dims4`, Next.js `/_next/image`,
# WordPress Photon...) take the URL of the image they serve.
_PROXIED_KEYS = ("url", "src", "image", "img", "u")


@functools.lru_cache(maxsize=8192)
def proxied_path(url: str) -> str:
    """The path of the image an image proxy serves, from its query (`?url=https%3A%2F%2F.../main-logo.png`),
    else "": the proxy's own path says nothing of the image."""
    query = urlsplit(url).query
    if not query:
        return ""
    for key, value in parse_qsl(query):
        if key.lower() in _PROXIED_KEYS and "/" in value:
            return unquote(urlsplit(value).path)
    return ""


_RENDITION = re.compile(r"([-_@]\d{2,4}x\d{0,4}|[-_@]\d+x|-scaled|-(?:large|medium|small|thumb|full|original))(?=[.-]|$)",
                        re.I)


def rendition_key(url: str) -> str | None:
    """Host and file name without size markers (`-640x480`, `@2x`, `-scaled`): renditions of one image.

    None for short or generic file names, which would match unrelated images.
    """
    parts = urlsplit(url)
    name = unquote(parts.path).rsplit("/", 1)[-1].lower()
    stem = _RENDITION.sub("", name.rsplit(".", 1)[0])
    if len(stem) < 8 or stem in ("image", "default", "original", "picture"):
        return None
    return url_host(url) + "/" + stem


@functools.lru_cache(maxsize=8192)
def rendition_path(url: str) -> str | None:
    """The parent folder and file name without size markers, whatever the host or prefix.

    `https://cdn.example/a/2011/02/cat-640x480.jpg?w=300` and `https://example.com/2011/02/cat.jpg`
    share `02/cat`. None for short or generic file names, which would match unrelated images.
    """
    segments = [s for s in unquote(urlsplit(url).path).lower().split("/") if s]
    if not segments:
        return None
    stem = _RENDITION.sub("", segments[-1].rsplit(".", 1)[0])
    if len(stem) < 5 or stem in ("image", "default", "original", "picture", "photo", "thumbnail", "header"):
        return None
    return "/".join(segments[-2:-1] + [stem])
