"""The dominant image of a web page: candidates from every place a page names an image, DOM features, a ranker.

>>> from lait.filters.page import PageParser
>>> page = PageParser(languages=None).parse(html_bytes, "https://example.com/story")   # doctest: +SKIP
>>> detector = DominantImageDetector()                                                 # doctest: +SKIP
>>> detector.detect(page)["image_url"]                                                 # doctest: +SKIP
'https://example.com/media/story-hero.jpg'

LAIT "parse[s] each page to collect image URLs and detect[s] the dominant images through HTML
tags and DOM tree features". Here:

1. :func:`extract_candidates` collects every image a page names: `<img>` (`src`, the largest
   `srcset` candidate, lazy-load `data-*` attributes), `<picture><source>`, `<input type=image>`,
   `og:image` (and `:secure_url`, `:width`, `:height`, `:alt`), `twitter:image`,
   `<link rel=image_src>`, `itemprop=image` and JSON-LD `image` / `thumbnailUrl`; resolves them
   against `<base href>`, normalises them and merges the places that name one image.
2. Each candidate gets the :data:`FEATURE_NAMES` features: size (declared, from `srcset` and
   from the URL), shape, document position, DOM depth and ancestors, class/id/URL tokens, link
   wrapping, alt/title/figcaption, text around it, repeats, JSON-LD / `itemprop` membership.
3. :class:`DominantImageRanker` (gradient-boosted trees, fitted with scikit-learn and stored
   as JSON, so loading a model runs no code) scores candidates. It is trained with weak labels
   (:func:`weak_labels`): the body image that is the page's `og:image`/`twitter:image`, with
   those meta tags hidden from the features, so it learns to find the main image from the DOM.
4. :func:`choose_dominant` takes the meta image when one exists and passes sanity checks
   (not a logo, icon, placeholder or pixel), else the ranker's best candidate when it scores
   at least `min_score`, else nothing.
"""

from __future__ import annotations

import functools
import html
import json
import math
import os
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urljoin, urlsplit

import numpy as np

from lait.filters.image_context import image_caption, preceding_heading
from lait.filters.page import Page, collapse
from lait.filters.urls import normalize_url, url_host

DEFAULT_MODEL_PATH = os.path.join(os.path.dirname(__file__), "models", "dominant_image.json")

# Meta tags naming the page's image, in the order a publisher means them.
META_IMAGE_KEYS = ("og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src",
                   "twitter:image0")
META_SIZE_KEYS = {"og:image:width": "width", "og:image:height": "height"}
# Attributes where lazy-loading scripts keep the real image (the `src` then holds a placeholder).
LAZY_SRC_ATTRS = ("data-src", "data-lazy-src", "data-original", "data-lazy", "data-url", "data-hi-res-src",
                  "data-full-src", "data-large-src", "data-orig-src", "data-original-src", "data-img-src",
                  "data-image", "data-echo", "data-actualsrc", "data-srcset-src", "data-large-file",
                  "data-orig-file", "data-medium-file", "data-lazyload", "data-delayed-url", "lowsrc")
# Attributes that name the full-size file of the image an `<img>` shows cropped or scaled
# (WordPress's data-large-file / data-orig-file): acquired before the shown rendition.
FULL_SIZE_ATTRS = ("data-large-file", "data-orig-file", "data-full-src", "data-hi-res-src", "data-large-src")
LAZY_SRCSET_ATTRS = ("data-srcset", "data-lazy-srcset", "data-original-srcset")
# Query keys that only ask a server for another size or format of the same image (the
# comparison rule of shared/data/mainimage/README.md).
RESIZE_QUERY_KEYS = frozenset(
    "w h width height resize fit fit-in crop quality q auto dpr fm format ssl strip zoom size sz scale imwidth "
    "impolicy output-quality downsize ixlib c fl ar type name rect".split())

_PLACEHOLDER = re.compile(r"(blank|spacer|placeholder|transparent|lazy|loading|pixel|1x1|empty|grey|gray)"
                          r"[\w-]*\.(gif|png|svg|jpg)", re.I)
_SIZE_IN_URL = re.compile(r"(?<![\d])(\d{2,4})x(\d{2,4})(?![\d])")
_WIDTH_IN_URL = re.compile(r"(?:[/_,-]w[_-]?|width[=_-]|/)(\d{3,4})(?=[/_,.-]|$)", re.I)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_WORD = re.compile(r"\w+", re.U)
_YEAR_PATH = re.compile(r"/(19|20)\d\d/")

# Token groups for class/id/alt/URL text; a group fires when any token starts with one of its stems.
TOKEN_GROUPS = {
    "logo": ("logo", "brand", "masthead", "wordmark"),
    "icon": ("icon", "ico", "emoji", "badge", "button", "btn", "sprite", "arrow", "star", "rating", "flag", "spinner"),
    "avatar": ("avatar", "author", "profile", "byline", "gravatar", "user", "headshot", "mugshot", "bio"),
    "ad": ("ad", "ads", "advert", "sponsor", "promo", "dfp", "doubleclick", "adsense", "commercial",
           "affiliate", "partner", "outbrain", "taboola"),
    "social": ("share", "social", "facebook", "twitter", "pinterest", "whatsapp", "linkedin", "instagram",
               "youtube", "reddit", "email", "mail", "rss", "follow"),
    "teaser": ("thumb", "teaser", "related", "recommend", "more", "next", "prev", "card", "tile", "list",
               "carousel", "trending", "popular", "widget", "feed", "recirc", "also", "read", "latest", "most"),
    "comment": ("comment", "reply", "disqus", "discussion"),
    "chrome": ("nav", "menu", "header", "footer", "sidebar", "side", "rail", "aside", "toolbar", "subscribe",
               "newsletter", "signup", "login", "cookie", "modal", "popup", "overlay"),
    "lead": ("hero", "featured", "feature", "lead", "main", "article", "post", "entry", "story", "content",
             "body", "wp", "attachment", "primary", "top", "cover", "splash", "intro", "headline", "media",
             "figure", "photo", "picture", "image", "img", "full", "large", "big"),
    "gallery": ("gallery", "slide", "slider", "slideshow", "lightbox", "zoom"),
}
GROUPS = list(TOKEN_GROUPS)
ANCESTOR_TAGS = ("figure", "article", "main", "header", "nav", "footer", "aside", "a", "picture", "noscript",
                 "li", "table", "form")
EXTENSIONS = ("jpg", "png", "gif", "webp", "svg", "other")

FEATURE_NAMES: list[str] = (
    ["width", "height", "has_declared_size", "srcset_width", "url_width", "best_width", "best_height", "log_area",
     "log_aspect", "is_pixel", "is_small", "is_large", "area_vs_page_max", "is_largest_on_page",
     "order_fraction", "candidate_index", "candidate_index_fraction", "is_first_candidate", "text_before_fraction",
     "log_chars_before", "after_h1", "log_chars_from_h1", "log_chars_to_first_paragraph", "paragraphs_after",
     "paragraphs_before_fraction", "depth", "n_candidates", "repeat_count", "n_srcset", "lazy", "loading_lazy",
     "fetchpriority_high", "link_wrapped", "link_to_image", "link_same_page", "in_picture_source",
     "alt_words", "has_alt", "has_title", "alt_title_overlap", "url_title_overlap", "url_page_overlap",
     "has_figcaption", "figcaption_words", "context_words", "itemprop_image", "in_jsonld", "is_link_image_src",
     "tree_distance_h1", "tree_distance_paragraph", "paragraph_container_depth",
     "same_host", "cdn_host", "url_length", "has_query", "year_in_path", "wp_uploads", "size_in_url"]
    + [f"ext_{e}" for e in EXTENSIONS]
    + [f"in_{t}" for t in ANCESTOR_TAGS]
    + [f"own_{g}" for g in GROUPS]
    + [f"ancestor_{g}" for g in GROUPS]
    + [f"url_{g}" for g in GROUPS]
)
FEATURE_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}


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
    # Split on commas followed by whitespace or at a descriptor end; URLs may contain commas (Cloudinary).
    for part in re.split(r",\s+|,(?=\s*(?:https?:)?/)|(?<=[wx]),", value.strip()):
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


_LETTERS = re.compile(r"[a-z]+")
# Stems of 4+ letters match a word's start ("featured" by "feature"), shorter ones the whole
# word ("ad", not "adobe"). Indexed by the first 4 letters so a word costs two dict lookups.
_SHORT_STEMS = {stem: group for group, stems in TOKEN_GROUPS.items() for stem in stems if len(stem) < 4}
_LONG_STEMS: dict[str, list[tuple[str, str]]] = {}
for _group, _stems in TOKEN_GROUPS.items():
    for _stem in _stems:
        if len(_stem) >= 4:
            _LONG_STEMS.setdefault(_stem[:4], []).append((_stem, _group))


@functools.lru_cache(maxsize=16384)
def token_groups(text: str) -> frozenset[str]:
    """Which of :data:`TOKEN_GROUPS` the words of `text` (class, id, URL...) fall in."""
    groups = set()
    for word in _LETTERS.findall(text.lower()):
        group = _SHORT_STEMS.get(word)
        if group is not None:
            groups.add(group)
        for stem, group in _LONG_STEMS.get(word[:4], ()):
            if word.startswith(stem):
                groups.add(group)
    return frozenset(groups)


def _px(value: str | None) -> float:
    """Pixels in an HTML width/height attribute ('640', '640px'); 0 when absent or relative."""
    if not value or "%" in value:
        return 0.0
    match = _NUMBER.match(value.strip())
    return float(match.group()) if match else 0.0


@functools.lru_cache(maxsize=4096)
def _url_size(url: str) -> tuple[float, float]:
    """Width and height that a URL's path or query encodes (`-640x480.jpg`, `w=1200`), 0 when none."""
    match = _SIZE_IN_URL.search(url)
    if match:
        return float(match.group(1)), float(match.group(2))
    query = dict(parse_qsl(urlsplit(url).query))
    for key in ("w", "width", "imwidth", "resize"):
        number = _NUMBER.match(query.get(key, ""))
        if number:
            return float(number.group()), _px(query.get("h") or query.get("height"))
    match = _WIDTH_IN_URL.search(urlsplit(url).path)
    return (float(match.group(1)), 0.0) if match else (0.0, 0.0)


@functools.lru_cache(maxsize=4096)
def _word_set(text: str) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall(text.lower()) if len(w) > 2)


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a) if a and b else 0.0


@dataclass(eq=False)
class Candidate:
    """One image a page names, with every place that names it."""

    url: str
    key: str
    sources: list[str] = field(default_factory=list)  # img, source, input, meta, link, itemprop, jsonld
    element: object = None  # first body element showing it
    offset: int = 0
    order: int = 0
    in_noscript: bool = False
    repeat: int = 0
    width: float = 0.0
    height: float = 0.0
    srcset_width: float = 0.0
    n_srcset: int = 0
    lazy: bool = False
    meta_rank: int = 99  # position in META_IMAGE_KEYS order (lower = more authoritative)
    meta_width: float = 0.0
    meta_height: float = 0.0
    named_url: str = ""  # URL given by meta/link/JSON-LD/itemprop, when one names this image
    full_size_urls: list[str] = field(default_factory=list)  # from FULL_SIZE_ATTRS
    alt: str = ""
    title: str = ""
    figcaption: str = ""
    context: str = ""
    headline: str = ""


@functools.lru_cache(maxsize=8192)
def alias_key(raw: str, base: str) -> str | None:
    """:func:`image_key` of an image reference, cheaply (no full normalisation): to merge names."""
    absolute = absolute_image_url(raw, base)
    return image_key(absolute) if absolute else None


def _element_urls(element, base: str) -> tuple[str | None, list[str], float, int, bool]:
    """`(chosen_url, alias_keys, srcset_width, n_srcset, lazy)` of an img/source/input element.

    The chosen URL is the largest `srcset` candidate, else a lazy-load attribute, else `src`
    (placeholders and `data:` URIs skipped); every name the element gives is an alias key.
    """
    attrib = element.attrib
    raws: list[str] = []
    lazy = False
    src = attrib.get("src")
    if src and (src.startswith("data:") or _PLACEHOLDER.search(src)):
        src = None
    lazy_src = None
    for name in LAZY_SRC_ATTRS:
        value = attrib.get(name)
        if value and not value.startswith("data:"):
            lazy_src = value.split(",")[0].split()[0] if " " in value.strip() else value
            lazy = True
            break
    best_raw, best_size, n_srcset = None, 0.0, 0
    for name in ("srcset", *LAZY_SRCSET_ATTRS):
        value = attrib.get(name)
        if not value:
            continue
        entries = parse_srcset(value)
        n_srcset += len(entries)
        if entries:
            raws.append(entries[0][0])
        for raw, size, unit in entries:
            weight = size if unit == "w" else size * 1000 if unit == "x" else 1.0
            if weight > best_size:
                best_raw, best_size = raw, weight
        if name != "srcset" and best_raw:
            lazy = True
    if best_raw:
        raws.append(best_raw)
    srcset_width = best_size if best_size > 10 else 0.0
    chosen = None
    for raw in (best_raw, lazy_src, src):
        if raw:
            chosen = absolute_image_url(raw, base)
            if chosen:
                break
    raws += [raw for raw in (lazy_src, src) if raw]
    keys = [key for key in (alias_key(raw, base) for raw in raws) if key]
    return chosen, keys, srcset_width, n_srcset, lazy


def _picture_of(element):
    """The `<picture>` around an element (lxml's HTML 4 parser may nest `<source>`s in each other)."""
    for depth, ancestor in enumerate(element.iterancestors()):
        if ancestor.tag == "picture":
            return ancestor
        if depth >= 3:
            return None
    return None


def _figcaption(element) -> str:
    for ancestor in element.iterancestors("figure"):
        caption = ancestor.find(".//figcaption")
        return collapse("".join(caption.itertext()))[:500] if caption is not None else ""
    return ""


def _meta_images(root, base: str) -> tuple[list[tuple[str, int]], dict]:
    """`[(url, rank)]` of og/twitter meta images and `{'width', 'height', 'alt', 'og_title', ...}`."""
    found = []
    info: dict = {}
    for meta in root.iter("meta"):
        attrib = meta.attrib
        key = (attrib.get("property") or attrib.get("name") or attrib.get("itemprop") or "").strip().lower()
        if not key.startswith(("og:", "twitter:")):
            continue
        value = attrib.get("content")
        if value is None:
            value = attrib.get("value")  # Mercury-normalised pages keep the value here
        if not value:
            continue
        if key in META_IMAGE_KEYS:
            url = absolute_image_url(value, base)
            if url:
                found.append((url, META_IMAGE_KEYS.index(key)))
        elif key in META_SIZE_KEYS:
            info.setdefault(META_SIZE_KEYS[key], _px(value))
        elif key in ("og:image:alt", "twitter:image:alt"):
            info.setdefault("og_image_alt", collapse(value)[:1000])
        elif key in ("og:title", "twitter:title"):
            info.setdefault("og_title", collapse(value)[:1000])
        elif key in ("og:description", "twitter:description"):
            info.setdefault("og_description", collapse(value)[:2000])
    return found, info


def _jsonld_images(data, out: list, depth: int = 0) -> None:
    """Collect `image` / `thumbnailUrl` values at any depth of parsed JSON-LD."""
    if depth > 8 or len(out) > 50:
        return
    if isinstance(data, list):
        for item in data:
            _jsonld_images(item, out, depth + 1)
    elif isinstance(data, dict):
        for key, value in data.items():
            if key in ("image", "thumbnailUrl", "primaryImageOfPage"):
                _jsonld_values(value, out, depth + 1)
            elif isinstance(value, (dict, list)):
                _jsonld_images(value, out, depth + 1)


def _jsonld_values(value, out: list, depth: int) -> None:
    if depth > 8:
        return
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, list):
        for item in value:
            _jsonld_values(item, out, depth + 1)
    elif isinstance(value, dict):
        for key in ("url", "contentUrl", "@id"):
            if isinstance(value.get(key), str):
                out.append(value[key])
                break


def _jsonld_urls(root, base: str) -> list[str]:
    urls: list[str] = []
    for script in root.iter("script"):
        if "ld+json" not in (script.get("type") or "").lower() or not script.text:
            continue
        try:
            data = json.loads(script.text)
        except (ValueError, RecursionError):  # broken or absurdly nested JSON-LD is common
            continue
        raw: list = []
        _jsonld_images(data, raw)
        urls.extend(u for u in (absolute_image_url(r, base) for r in raw if isinstance(r, str)) if u)
    return urls


@dataclass
class PageCandidates:
    """What :func:`extract_candidates` finds on a page."""

    candidates: list[Candidate]
    meta: list[tuple[str, int]]  # (key, rank) of og/twitter meta images
    info: dict  # og_title, og_description, og_image_alt, meta width/height
    features: np.ndarray  # (n_body, len(FEATURE_NAMES)): rows of candidates[:n_body]
    n_body: int = 0


def extract_candidates(page: Page, hide_meta: bool = False, hide_structured: bool = False,
                       max_candidates: int = 60) -> PageCandidates:
    """Every image the page names, merged by :func:`image_key`, with features for the body ones.

    Parameters
    ----------
    page : Page
        A parsed page (:class:`lait.filters.page.PageParser`).
    hide_meta : bool, default=False
        Ignore og/twitter meta images (training: they are the labels).
    hide_structured : bool, default=False
        Also ignore JSON-LD, `<link rel=image_src>` and `itemprop=image` outside `<img>`.
    max_candidates : int, default=60
        Body images after this many (in document order) are ignored: the main image comes early,
        and galleries or long comment threads would otherwise dominate the cost.
    """
    root, base = page.root, page.base_url or page.url
    by_key: dict[str, Candidate] = {}
    body: list[Candidate] = []
    scan = page.scan
    for element, offset, order, in_noscript in scan.images:
        if len(body) >= max_candidates:
            break
        tag = element.tag
        if tag == "input" and (element.get("type") or "").lower() != "image":
            continue
        picture = _picture_of(element) if tag in ("source", "img") else None
        if tag == "source" and picture is None:
            continue  # <video>/<audio> sources
        chosen, aliases, srcset_width, n_srcset, lazy = _element_urls(element, base)
        if not chosen:
            continue
        if tag == "source" and next(picture.iter("img"), None) is not None:
            continue  # a <picture>'s sources are renditions of its <img>: folded into it below
        key = image_key(chosen)
        cand = by_key.get(key)
        if cand is None:
            for alias in aliases:
                cand = by_key.get(alias)
                if cand is not None:
                    break
        if cand is None:
            cand = Candidate(url=chosen, key=key, element=element, offset=offset, order=order,
                             in_noscript=in_noscript, srcset_width=srcset_width, n_srcset=n_srcset, lazy=lazy)
            if tag == "img" and picture is not None:
                for source in picture.iter("source"):
                    _, s_aliases, s_width, s_n, _ = _element_urls(source, base)
                    cand.n_srcset += s_n
                    aliases.extend(s_aliases)
                    cand.srcset_width = max(cand.srcset_width, s_width)
                cand.sources.append("source")
            cand.width, cand.height = _px(element.get("width")), _px(element.get("height"))
            cand.full_size_urls = [url for url in (absolute_image_url(element.get(name), base) for name in FULL_SIZE_ATTRS)
                                   if url]
            by_key[cand.key] = cand
            body.append(cand)
        cand.repeat += 1
        if tag not in cand.sources:
            cand.sources.append(tag)
        for alias in aliases:
            by_key.setdefault(alias, cand)

    features = _features(page, body)
    # Only a body image that could be chosen may stand for a meta image's other rendition.
    excluded = excluded_body_rows(PageCandidates(candidates=body, meta=[], info={}, features=features,
                                                 n_body=len(body)))
    mergeable = {id(c) for c, out in zip(body, excluded) if not out}
    meta: list[tuple[str, int]] = []
    info: dict = {}
    found, info = _meta_images(root, base)
    add_named = functools.partial(_add_named, mergeable=mergeable)
    if not hide_meta:
        for url, rank in sorted(found, key=lambda named: named[1]):
            cand = add_named(by_key, url, "meta")
            cand.meta_rank = min(cand.meta_rank, rank)
            cand.meta_width, cand.meta_height = info.get("width", 0.0), info.get("height", 0.0)
            meta.append((cand.key, rank))
    else:
        info = {k: v for k, v in info.items() if k in ("og_title", "og_description")}
    if not hide_structured:
        for link in root.iter("link"):
            if (link.get("rel") or "").lower() == "image_src":
                url = absolute_image_url(link.get("href"), base)
                if url:
                    add_named(by_key, url, "link")
        for url in _jsonld_urls(root, base):
            add_named(by_key, url, "jsonld")
        for element in root.xpath("//*[@itemprop='image' and not(self::img)]"):
            value = element.get("content") or element.get("href") or element.get("src") or element.get("data-src")
            url = absolute_image_url(value, base)
            if url:
                add_named(by_key, url, "itemprop")
    candidates = list(dict.fromkeys(by_key.values()))  # distinct, body first in document order
    found = PageCandidates(candidates=candidates, meta=meta, info=info, features=features, n_body=len(body))
    _mark_structured(found)
    return found


def _add_named(by_key: dict, url: str, source: str, mergeable: set[int] = frozenset()) -> Candidate:
    key = image_key(url)
    cand = by_key.get(key)
    if cand is None:
        cand = _body_rendition(by_key, url, mergeable)
        by_key[key] = cand if cand is not None else Candidate(url=url, key=key)
        cand = by_key[key]
    if not cand.named_url:
        cand.named_url = url  # the URL the page's metadata gives, which may be another rendition's
    if source not in cand.sources:
        cand.sources.append(source)
    return cand


def _body_rendition(by_key: dict, url: str, mergeable: set[int]) -> Candidate | None:
    """The one body image that is another rendition of `url` (:func:`rendition_path`), else None.

    Metadata often names another rendition of the photo the body shows: the full-size file
    where the body has `-1024x683.jpg` or `?w=640`, or the same path under a CDN or mirror
    prefix. Merged, the candidate keeps the body image's alt, caption and DOM features.
    """
    wanted = rendition_path(url)
    if wanted is None:
        return None
    matches = {id(c): c for c in by_key.values() if id(c) in mergeable and rendition_path(c.url) == wanted}
    return next(iter(matches.values())) if len(matches) == 1 else None


def _class_text(element) -> str:
    return (element.get("class") or "") + " " + (element.get("id") or "")


def _features(page: Page, body: list[Candidate]) -> np.ndarray:
    """Feature matrix of the body candidates (rows follow `body`); also fills their texts."""
    n = len(body)
    if not n:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
    f = FEATURE_INDEX
    n_features = len(FEATURE_NAMES)
    rows = []  # Python lists: setting numpy items one by one costs more than the features
    scan = page.scan
    text_len = max(len(scan.text), 1)
    n_elements = max(scan.n_elements, 1)
    title_words = _word_set(page.title)
    page_words = _word_set(unquote(urlsplit(page.url).path))
    page_host = url_host(page.url)
    paragraph_starts = [start for start, _ in scan.paragraphs]
    # Ancestors of the headline and of the first long paragraphs, by how far up they are.
    h1_up = _levels_up(scan.h1)
    paragraph_up: dict = {}
    for paragraph in scan.paragraph_elements:
        for ancestor, level in _levels_up(paragraph).items():
            paragraph_up[ancestor] = min(level, paragraph_up.get(ancestor, 99))
    first_paragraph = paragraph_starts[0] if paragraph_starts else -1
    areas = np.zeros(n)
    for i, cand in enumerate(body):
        row = [0.0] * n_features
        rows.append(row)
        element = cand.element
        url = cand.url
        url_w, url_h = _url_size(url)
        best_w = cand.width or cand.srcset_width or url_w
        best_h = cand.height or url_h
        row[f["width"]] = math.log1p(cand.width)
        row[f["height"]] = math.log1p(cand.height)
        row[f["has_declared_size"]] = bool(cand.width or cand.height)
        row[f["srcset_width"]] = math.log1p(cand.srcset_width)
        row[f["url_width"]] = math.log1p(url_w)
        row[f["best_width"]] = math.log1p(best_w)
        row[f["best_height"]] = math.log1p(best_h)
        area = best_w * (best_h or best_w * 0.6)
        areas[i] = area
        row[f["log_area"]] = math.log1p(area)
        row[f["log_aspect"]] = math.log(best_w / best_h) if best_w and best_h else 0.0
        pixel = (0 < cand.width <= 3) or (0 < cand.height <= 3)
        row[f["is_pixel"]] = pixel
        side = max(cand.width, cand.height)
        row[f["is_small"]] = 0 < side < 100
        row[f["is_large"]] = min(best_w, best_h or best_w) >= 300
        row[f["order_fraction"]] = cand.order / n_elements
        row[f["candidate_index"]] = math.log1p(i)
        row[f["candidate_index_fraction"]] = i / n
        row[f["is_first_candidate"]] = i == 0
        row[f["text_before_fraction"]] = cand.offset / text_len
        row[f["log_chars_before"]] = math.log1p(cand.offset)
        row[f["after_h1"]] = 0 <= scan.h1_offset <= cand.offset
        if scan.h1_offset >= 0:
            row[f["log_chars_from_h1"]] = math.copysign(math.log1p(abs(cand.offset - scan.h1_offset)),
                                                       cand.offset - scan.h1_offset)
        if first_paragraph >= 0:
            row[f["log_chars_to_first_paragraph"]] = math.copysign(
                math.log1p(abs(first_paragraph - cand.offset)), first_paragraph - cand.offset)
        before = sum(1 for s in paragraph_starts if s < cand.offset)
        row[f["paragraphs_after"]] = math.log1p(len(paragraph_starts) - before)
        row[f["paragraphs_before_fraction"]] = before / len(paragraph_starts) if paragraph_starts else 0.0
        row[f["n_candidates"]] = math.log1p(n)
        row[f["repeat_count"]] = cand.repeat
        row[f["n_srcset"]] = math.log1p(cand.n_srcset)
        row[f["lazy"]] = cand.lazy
        row[f["loading_lazy"]] = (element.get("loading") or "").lower() == "lazy"
        row[f["fetchpriority_high"]] = (element.get("fetchpriority") or "").lower() == "high"
        row[f["in_picture_source"]] = "source" in cand.sources
        row[f["in_noscript"]] = cand.in_noscript
        # Ancestors: tags, class/id tokens, link wrapping, itemprop, depth.
        depth = 0
        ancestor_groups: set[str] = set()
        h1_distance = paragraph_distance = container_depth = 0.0
        for ancestor in element.iterancestors():
            depth += 1
            if not h1_distance and ancestor in h1_up:
                h1_distance = depth + h1_up[ancestor]
            if not paragraph_distance and ancestor in paragraph_up:
                paragraph_distance = depth + paragraph_up[ancestor]
                container_depth = depth
            tag = ancestor.tag
            if tag in _ANCESTOR_FEATURE:
                row[_ANCESTOR_FEATURE[tag]] = 1.0
                if tag == "a":
                    href = ancestor.get("href") or ""
                    row[f["link_wrapped"]] = 1.0
                    row[f["link_to_image"]] = href.lower().split("?")[0].endswith((".jpg", ".jpeg", ".png", ".webp",
                                                                                   ".gif"))
                    row[f["link_same_page"]] = href.startswith("#") or bool(href and href.rstrip("/") in page.url)
            if depth <= 6:
                ancestor_groups |= token_groups(_class_text(ancestor))
            if ancestor.get("itemprop") == "image":
                row[f["itemprop_image"]] = 1.0
        row[f["depth"]] = depth
        row[f["tree_distance_h1"]] = h1_distance or 60.0
        row[f["tree_distance_paragraph"]] = paragraph_distance or 60.0
        row[f["paragraph_container_depth"]] = container_depth or 30.0
        if element.get("itemprop") == "image":
            row[f["itemprop_image"]] = 1.0
        alt = collapse(element.get("alt"))
        title = collapse(element.get("title"))
        own_groups = token_groups(_class_text(element) + " " + alt)
        parts = urlsplit(url)
        raw_path = unquote(parts.path)
        url_groups = token_groups(raw_path)
        for group in own_groups:
            row[f["own_" + group]] = 1.0
        for group in ancestor_groups:
            row[f["ancestor_" + group]] = 1.0
        for group in url_groups:
            row[f["url_" + group]] = 1.0
        row[f["alt_words"]] = math.log1p(len(alt.split()))
        row[f["has_alt"]] = bool(alt)
        row[f["has_title"]] = bool(title)
        alt_words = _word_set(alt + " " + title)
        row[f["alt_title_overlap"]] = _overlap(alt_words, title_words)
        path_words = _word_set(raw_path.replace("-", " ").replace("_", " "))
        row[f["url_title_overlap"]] = _overlap(title_words, path_words)
        row[f["url_page_overlap"]] = _overlap(path_words, page_words)
        cand.alt, cand.title = alt[:1000], title[:1000]
        cand.figcaption = _figcaption(element)
        row[f["has_figcaption"]] = bool(cand.figcaption)
        row[f["figcaption_words"]] = math.log1p(len(cand.figcaption.split()))
        cand.context = image_caption(element)[0][:1000]
        cand.headline = preceding_heading(element)[:500]
        row[f["context_words"]] = math.log1p(len(cand.context.split()))
        row[f["in_jsonld"]] = 0.0  # filled by _mark_structured
        host = url_host(url)
        row[f["same_host"]] = host == page_host or host.endswith("." + page_host) or page_host.endswith("." + host)
        row[f["cdn_host"]] = any(t in host for t in ("cdn", "img", "image", "media", "static", "assets", "cloudfront",
                                                     "akamai", "wp.com"))
        path = parts.path.lower()
        row[f["url_length"]] = math.log1p(len(url))
        row[f["has_query"]] = bool(parts.query)
        row[f["year_in_path"]] = bool(_YEAR_PATH.search(path))
        row[f["wp_uploads"]] = "/uploads/" in path
        row[f["size_in_url"]] = bool(url_w)
        ext = path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
        ext = "jpg" if ext == "jpeg" else ext
        row[f["ext_" + (ext if ext in EXTENSIONS else "other")]] = 1.0
    x = np.array(rows, dtype=np.float32)
    top = areas.max()
    if top > 0:
        x[:, f["area_vs_page_max"]] = areas / top
        x[:, f["is_largest_on_page"]] = areas == top
    return x


def _levels_up(element) -> dict:
    """`{ancestor: levels above element}` (the element itself at 0); empty for None."""
    if element is None:
        return {}
    levels = {element: 0}
    for level, ancestor in enumerate(element.iterancestors(), 1):
        levels[ancestor] = level
    return levels


_ANCESTOR_FEATURE = {tag: FEATURE_INDEX[f"in_{tag}"] for tag in ANCESTOR_TAGS if tag != "noscript"}


def _mark_structured(found: PageCandidates) -> None:
    """Copy JSON-LD / link / itemprop membership into the body candidates' feature rows."""
    f = FEATURE_INDEX
    for i, cand in enumerate(found.candidates[:found.n_body]):
        if "jsonld" in cand.sources:
            found.features[i, f["in_jsonld"]] = 1.0
        if "link" in cand.sources:
            found.features[i, f["is_link_image_src"]] = 1.0
        if "itemprop" in cand.sources:
            found.features[i, f["itemprop_image"]] = 1.0


class DominantImageRanker:
    """Gradient-boosted trees scoring how likely a candidate is its page's main image.

    Fitted with scikit-learn's `GradientBoostingClassifier`; the trees are then kept as flat
    arrays, scored with numpy (all trees at once) and saved as JSON, so loading a model file
    runs no code (no pickle) and needs no scikit-learn.

    Parameters
    ----------
    n_estimators : int, default=500
        Number of trees (4-fold top-1 accuracy on the training pages: 0.861 with 300, 0.870 with 500).
    max_depth : int, default=3
        Depth of each tree.
    learning_rate : float, default=0.05
        Shrinkage of each tree's contribution.
    subsample : float, default=0.8
        Fraction of rows each tree sees (stochastic gradient boosting).
    random_state : int, default=0
        Seed of the row sampling.
    calibration_folds : int, default=4
        Folds (of pages) for the out-of-fold scores the page-level calibration is fitted on.

    Attributes
    ----------
    feature_names_ : list of str
        The features the model was fitted on, in column order.
    init_ : float
        Log-odds every score starts from.
    feature_, threshold_, left_, right_, value_ : ndarray
        The nodes of all trees, concatenated; a leaf has feature -1 and points to itself.
    roots_ : ndarray
        Index of each tree's root node.
    depth_ : int
        Deepest path of any tree.
    calibration_ : list of float
        Weights of (log-odds, margin, log candidates) and intercept of :meth:`page_probability`.
    """

    def __init__(self, n_estimators: int = 500, max_depth: int = 3, learning_rate: float = 0.05,
                 subsample: float = 0.8, random_state: int = 0, calibration_folds: int = 4):
        self.calibration_folds = calibration_folds
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None,
            feature_names: list[str] | None = None) -> DominantImageRanker:
        """Fit on candidate rows `X` with labels `y` (1 = the page's main image).

        With `groups` (the page of each row), also fit the page-level calibration
        (:meth:`page_probability`) on out-of-fold scores of `calibration_folds` folds.
        """
        self._fit_trees(X, y)
        self.feature_names_ = list(feature_names or FEATURE_NAMES)
        self.calibration_ = [1.0, 0.0, 0.0, 0.0]  # identity on the log-odds until fitted
        if groups is not None:
            self._fit_calibration(X, y, np.asarray(groups))
        return self

    def _fit_calibration(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression

        pages = np.unique(groups)
        fold_of_page = dict(zip(pages, np.arange(len(pages)) % self.calibration_folds))
        fold = np.array([fold_of_page[g] for g in groups])
        raw = np.zeros(len(y))
        for k in range(self.calibration_folds):
            held = fold == k
            part = DominantImageRanker(self.n_estimators, self.max_depth, self.learning_rate, self.subsample,
                                       self.random_state)
            part._fit_trees(X[~held], y[~held])
            raw[held] = part.decision_function(X[held])
        rows = np.concatenate([_calibration_inputs(raw[groups == g]) for g in pages])
        labels = np.concatenate([y[groups == g] for g in pages])
        logistic = LogisticRegression(C=1.0).fit(rows, labels)
        self.calibration_ = [*map(float, logistic.coef_[0]), float(logistic.intercept_[0])]

    def page_probability(self, raw: np.ndarray) -> np.ndarray:
        """Probability that each candidate of ONE page is its main image, from the page's log-odds `raw`.

        A logistic regression over (log-odds, margin over the page's best other candidate,
        log number of candidates), fitted on out-of-fold scores: a pointwise probability
        falls as a page has more images; this does not.
        """
        w = self.calibration_
        z = _calibration_inputs(raw) @ np.asarray(w[:3]) + w[3]
        return 1.0 / (1.0 + np.exp(-z))

    def _fit_trees(self, X: np.ndarray, y: np.ndarray) -> None:
        from sklearn.ensemble import GradientBoostingClassifier

        model = GradientBoostingClassifier(n_estimators=self.n_estimators, max_depth=self.max_depth,
                                           learning_rate=self.learning_rate, subsample=self.subsample,
                                           random_state=self.random_state)
        model.fit(X, y)
        prior = float(model.init_.class_prior_[1])
        self.init_ = math.log(prior / (1 - prior))
        features, thresholds, lefts, rights, values, roots = [], [], [], [], [], []
        offset = 0
        for estimator in model.estimators_[:, 0]:
            tree = estimator.tree_
            roots.append(offset)
            leaf = tree.children_left == -1
            features.append(np.where(leaf, -1, tree.feature))
            thresholds.append(np.where(leaf, 0.0, tree.threshold))
            own = np.arange(tree.node_count) + offset
            lefts.append(np.where(leaf, own, tree.children_left + offset))
            rights.append(np.where(leaf, own, tree.children_right + offset))
            values.append(tree.value[:, 0, 0] * self.learning_rate)
            offset += tree.node_count
        self.feature_ = np.concatenate(features).astype(np.int32)
        self.threshold_ = np.concatenate(thresholds).astype(np.float64)
        self.left_ = np.concatenate(lefts).astype(np.int32)
        self.right_ = np.concatenate(rights).astype(np.int32)
        self.value_ = np.concatenate(values).astype(np.float64)
        self.roots_ = np.asarray(roots, dtype=np.int32)
        self.depth_ = int(max(e.tree_.max_depth for e in model.estimators_[:, 0]))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Log-odds per row."""
        X = np.asarray(X, dtype=np.float32)
        if not len(X):
            return np.zeros(0)
        rows = np.arange(len(X))[:, None]
        node = np.broadcast_to(self.roots_, (len(X), len(self.roots_)))
        for _ in range(self.depth_):
            feature = self.feature_[node]
            go_left = X[rows, np.maximum(feature, 0)] <= self.threshold_[node]
            node = np.where(go_left, self.left_[node], self.right_[node])
        return self.init_ + self.value_[node].sum(axis=1)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probability per row that it is the main image (1-D)."""
        return 1.0 / (1.0 + np.exp(-self.decision_function(X)))

    def to_dict(self) -> dict:
        return {"format": "lait-gbt-1", "feature_names": self.feature_names_, "init": self.init_,
                "calibration": self.calibration_,
                "depth": self.depth_, "params": {k: getattr(self, k) for k in
                                                 ("n_estimators", "max_depth", "learning_rate", "subsample",
                                                  "random_state", "calibration_folds")},
                "feature": self.feature_.tolist(), "threshold": self.threshold_.tolist(),
                "left": self.left_.tolist(), "right": self.right_.tolist(),
                "value": [round(v, 8) for v in self.value_.tolist()], "roots": self.roots_.tolist()}

    def save(self, path: str, extra: dict | None = None) -> None:
        """Write the model as JSON (plus `extra`, e.g. how it was trained)."""
        data = self.to_dict()
        data["training"] = extra or {}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"))
            f.write("\n")

    @classmethod
    def load(cls, path: str | None = None) -> DominantImageRanker:
        """Read a model saved by :meth:`save` (the shipped model by default)."""
        path = path or DEFAULT_MODEL_PATH
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("format") != "lait-gbt-1":
            raise ValueError(f"{path}: not a lait dominant-image model")
        model = cls(**data["params"])
        model.feature_names_ = data["feature_names"]
        if model.feature_names_ != FEATURE_NAMES:
            raise ValueError(f"{path}: model features differ from this lait version's; retrain with lait train-dom")
        model.init_ = float(data["init"])
        model.depth_ = int(data["depth"])
        model.feature_ = np.asarray(data["feature"], dtype=np.int32)
        model.threshold_ = np.asarray(data["threshold"], dtype=np.float64)
        model.left_ = np.asarray(data["left"], dtype=np.int32)
        model.right_ = np.asarray(data["right"], dtype=np.int32)
        model.value_ = np.asarray(data["value"], dtype=np.float64)
        model.roots_ = np.asarray(data["roots"], dtype=np.int32)
        model.calibration_ = [float(v) for v in data.get("calibration", [1.0, 0.0, 0.0, 0.0])]
        return model


def _calibration_inputs(raw: np.ndarray) -> np.ndarray:
    """Per candidate of one page: log-odds, margin over the best other candidate, log count."""
    n = len(raw)
    if n > 1:
        order = np.argsort(-raw)
        best, second = raw[order[0]], raw[order[1]]
        margin = raw - np.where(np.arange(n) == order[0], second, best)
    else:
        margin = np.full(n, 10.0)
    return np.column_stack([raw, np.clip(margin, -10.0, 10.0), np.full(n, math.log1p(n))])


# URL words of site-wide images that pages often give as og:image.
_SITE_IMAGE = re.compile(r"(logo|icon|favicon|placeholder|default|blank|sprite|avatar|1x1|spacer|pixel|"
                         r"fallback|no[-_]?image|share[-_]?image|social[-_]?share|brand|counter|beacon|tracking)"
                         # a GIF named with one or two characters ("1.gif", "b.gif") is a tracking beacon
                         r"|^[a-z0-9]{1,2}\.gif$", re.I)
# Folders of site-wide images (WordPress.com serves a blog's icon from /blavatar/HASH).
_SITE_IMAGE_FOLDER = re.compile(r"/(?:[a-z]*avatars?|logos?|icons?|favicons?|emoji)/", re.I)
_EXCLUDED_EXTENSIONS = (".svg", ".ico", ".svgz", ".mp4", ".webm", ".mov", ".m3u8", ".mpd", ".mp3", ".js", ".css",
                        ".pdf", ".json")


@functools.lru_cache(maxsize=8192)
def site_image_url(url: str) -> bool:
    """Whether a URL cannot be a page's own picture: its file name looks like a site-wide image
    (logo, icon, placeholder, pixel...), or it is an SVG/ICO, a video or another non-image file."""
    path = unquote(urlsplit(url).path).lower()
    name = path.rsplit("/", 1)[-1]
    return bool(_SITE_IMAGE.search(name) or _SITE_IMAGE_FOLDER.search(path)) or name.endswith(_EXCLUDED_EXTENSIONS)


def excluded_body_rows(found: PageCandidates) -> np.ndarray:
    """Body candidates never chosen: pixels, tiny or SVG/ICO images, ads, logos and icons by class, alt or URL."""
    f = FEATURE_INDEX
    x = found.features
    excluded = (x[:, f["is_pixel"]] > 0) | (x[:, f["ext_svg"]] > 0) | (x[:, f["own_logo"]] > 0)
    excluded |= x[:, f["own_ad"]] > 0
    excluded |= (x[:, f["own_icon"]] > 0) & (x[:, f["is_large"]] == 0)
    excluded |= (x[:, f["own_avatar"]] > 0) & (x[:, f["is_large"]] == 0)
    declared = np.maximum(x[:, f["width"]], x[:, f["height"]])
    excluded |= (declared > 0) & (declared < math.log1p(50))
    for i, cand in enumerate(found.candidates[:found.n_body]):
        if not excluded[i] and site_image_url(cand.url):
            excluded[i] = True
    return excluded


def choose_dominant(found: PageCandidates, scores: np.ndarray, min_score: float = 0.5,
                    meta_score: float = 0.9, excluded: np.ndarray | None = None) -> tuple[Candidate | None, float, str]:
    """`(candidate, score, source)` of the page's dominant image, or `(None, best_score, reason)`.

    The first meta image (og, then twitter, then `<link rel=image_src>`, JSON-LD, `itemprop`)
    that passes the sanity checks wins with score `max(meta_score, its ranker score)`;
    otherwise the ranker's best body candidate that is not excluded, if it scores at least
    `min_score`. Reasons: `no_image` (the page names no usable image), `low_score`.
    """
    body_index = {id(c): i for i, c in enumerate(found.candidates[:found.n_body])}
    excluded = excluded_body_rows(found) if excluded is None else excluded
    named = [c for c in found.candidates if c.meta_rank < 99]
    named.sort(key=lambda c: c.meta_rank)
    for kind in ("link", "jsonld", "itemprop"):
        named += [c for c in found.candidates if kind in c.sources and c not in named]
    for cand in named:
        i = body_index.get(id(cand))
        if site_image_url(cand.url) or (i is not None and excluded[i]):
            continue
        if 0 < cand.meta_width < 100 or 0 < cand.meta_height < 100:
            continue
        source = "meta" if cand.meta_rank < 99 else next(s for s in ("link", "jsonld", "itemprop") if s in cand.sources)
        score = max(meta_score, float(scores[i])) if i is not None else meta_score
        return cand, score, source
    if not found.n_body:
        return None, 0.0, "no_image"
    masked = np.where(excluded, -1.0, scores)
    best = int(np.argmax(masked))
    if excluded[best]:
        return None, 0.0, "no_image"
    if masked[best] < min_score:
        return None, float(masked[best]), "low_score"
    cand = found.candidates[best]
    return cand, float(masked[best]), cand.sources[0]


def page_scores(ranker: DominantImageRanker, found: PageCandidates, floor: float = 0.05,
                excluded: np.ndarray | None = None) -> np.ndarray:
    """Scores of a page's body candidates: the probability that each is the page's main image.

    :meth:`DominantImageRanker.page_probability` answers "which image is the main one"; a
    candidate whose own pointwise probability is under `floor` is scaled down by
    `probability / floor` ("is it any good at all"). Excluded candidates score 0.
    """
    if not found.n_body:
        return np.zeros(0)
    excluded = excluded_body_rows(found) if excluded is None else excluded
    raw = ranker.decision_function(found.features)
    scores = np.zeros(len(raw))
    kept = ~excluded
    if kept.any():
        raw_kept = raw[kept]
        prob = 1.0 / (1.0 + np.exp(-raw_kept))
        scores[kept] = ranker.page_probability(raw_kept) * np.minimum(1.0, prob / floor)
    return scores


def dominant_record(found: PageCandidates, cand: Candidate, score: float, source: str) -> dict:
    """The stage's output keys for a chosen candidate (see `lait/pipeline/schema.py`)."""
    is_meta = any(key == cand.key for key, _ in found.meta)
    # A pick made from metadata reports the URL the metadata gives (the publisher's chosen rendition).
    url = cand.named_url if source in ("meta", "link", "jsonld", "itemprop") and cand.named_url else cand.url
    # Other renditions, tried in order where the first cannot be had (not in the crawl, 404).
    urls = [url] if url != cand.url else []
    urls += [*cand.full_size_urls, cand.url, cand.named_url]
    urls = list(dict.fromkeys(normalize_url(u) or u for u in urls if u))
    return {
        "image_url": urls[0], "image_urls": urls, "dominant_score": round(score, 4), "dominant_source": source,
        "alt": cand.alt or None, "title": cand.title or None, "figcaption": cand.figcaption or None,
        "og_image_alt": found.info.get("og_image_alt") if is_meta else None,
        "context": cand.context or None,
        # A meta image shown nowhere in the body has no heading above it: the story's og:title is that heading.
        "headline": cand.headline or (found.info.get("og_title") if is_meta and cand.element is None else None) or None,
        "og_title": found.info.get("og_title"), "og_description": found.info.get("og_description"),
    }


class DominantImageDetector:
    """Candidates, ranking and decision for parsed pages; the model loads once.

    Parameters
    ----------
    model_path : str, optional
        A model saved by :meth:`DominantImageRanker.save`; the shipped one by default.
    min_score : float, default=0.5
        A page whose best body image scores below this yields no image (`low_score`).
    """

    def __init__(self, model_path: str | None = None, min_score: float = 0.5):
        self.ranker = DominantImageRanker.load(model_path)
        self.min_score = min_score

    def detect_found(self, found: PageCandidates) -> dict:
        """Decision over extracted candidates: the record keys plus `candidates`, or `image_url` None and `reason`."""
        excluded = excluded_body_rows(found)
        scores = page_scores(self.ranker, found, excluded=excluded)
        cand, score, source = choose_dominant(found, scores, self.min_score, excluded=excluded)
        n = len(found.candidates)
        if cand is None:
            return {"image_url": None, "dominant_score": round(score, 4), "dominant_source": None,
                    "reason": source, "candidates": n, **{k: found.info.get(k) for k in ("og_title", "og_description")}}
        return {**dominant_record(found, cand, score, source), "candidates": n}

    def detect(self, page: Page) -> dict:
        """:meth:`detect_found` of a parsed page."""
        return self.detect_found(extract_candidates(page))


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


def weak_labels(page: Page, hide_structured: bool = False) -> tuple[PageCandidates, np.ndarray] | None:
    """Training rows of a page: features with og/twitter meta hidden, 1 where a body image is the meta image.

    A body image matches when one of its names (src, srcset, lazy attributes) is the meta
    image's URL (compared with :func:`image_key`); failing that, when it is the only body
    image that is another rendition of it (:func:`rendition_key`). None when nothing matches,
    or the meta image looks like a site-wide image (logo, icon, placeholder): those would
    teach the ranker to pick logos.
    """
    visible = extract_candidates(page)
    meta = [c for c in visible.candidates if c.meta_rank < 99 and not site_image_url(c.url)]
    if not meta:
        return None
    shown = {c.element for c in meta if c.element is not None}
    hidden = extract_candidates(page, hide_meta=True, hide_structured=hide_structured)
    body = hidden.candidates[:hidden.n_body]
    labels = np.array([c.element in shown for c in body], dtype=np.int8)
    if not labels.any():
        wanted = {rendition_key(c.url) for c in meta} - {None}
        matches = [i for i, c in enumerate(body) if rendition_key(c.url) in wanted]
        if len(matches) != 1:
            return None
        labels[matches[0]] = 1
    return hidden, labels


def training_rows(page: Page) -> tuple[np.ndarray, np.ndarray] | None:
    """`(X, y)` of one page for :class:`DominantImageRanker`, or None when the page gives no label.

    JSON-LD, `<link rel=image_src>` and `itemprop` outside `<img>` are hidden too: where they
    name a usable image, :func:`choose_dominant` takes it before ranking, so the ranker only
    ever decides on pages without them and is trained in that condition.
    """
    labelled = weak_labels(page, hide_structured=True)
    if labelled is None:
        return None
    found, labels = labelled
    return found.features, labels


# Candidate fields a page record carries between ParsePages and DetectDominantImage.
_RECORD_FIELDS = ("url", "key", "sources", "meta_rank", "meta_width", "meta_height", "named_url", "alt", "title",
                  "figcaption", "context", "headline", "full_size_urls")


def page_record_candidates(found: PageCandidates) -> tuple[list[dict], dict]:
    """`(candidates, texts)`: a page's candidates as small picklable dicts (features as float32 bytes)
    and its `og_title`, `og_description`, `og_image_alt`.

    The DOM is parsed once (ParsePages); ranking and the decision (DetectDominantImage) need
    only these: :func:`candidates_from_record` rebuilds the `PageCandidates`.
    """
    records = []
    for i, cand in enumerate(found.candidates):
        record = {name: getattr(cand, name) for name in _RECORD_FIELDS}
        record["features"] = found.features[i].tobytes() if i < found.n_body else None  # float32
        records.append(record)
    return records, {k: found.info.get(k) for k in PAGE_TEXT_KEYS}


PAGE_TEXT_KEYS = ("og_title", "og_description", "og_image_alt")


def candidates_from_record(records: list[dict], texts: dict) -> PageCandidates:
    """The inverse of :func:`page_record_candidates`."""
    candidates = [Candidate(**{name: r[name] for name in _RECORD_FIELDS}) for r in records]
    body = [r["features"] for r in records if r.get("features") is not None]
    features = np.frombuffer(b"".join(body), dtype=np.float32).reshape(len(body), len(FEATURE_NAMES))
    meta = [(c.key, c.meta_rank) for c in candidates if c.meta_rank < 99 and "meta" in c.sources]
    info = {k: texts.get(k) for k in PAGE_TEXT_KEYS if texts.get(k)}
    return PageCandidates(candidates=candidates, meta=meta, info=info, features=features, n_body=len(body))
