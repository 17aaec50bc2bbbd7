"""Every image a page names, merged by image (:func:`extract_candidates`), and the page record that carries them between stages."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field

import numpy as np

from lait.filters.page import ITEMPROP_IMAGE, Page, collapse
from lait.scoring.dominant_image.features import (
    FEATURE_INDEX,
    FEATURE_NAMES,
    add_rank_features,
    candidate_features,
    unusable_rows,
)
from lait.scoring.dominant_image.urls import (
    absolute_image_url,
    alias_key,
    image_key,
    is_placeholder_url,
    parse_srcset,
    pixels,
    rendition_path,
    url_size,
)

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
_SRCSET_ATTRS = ("srcset", *LAZY_SRCSET_ATTRS)
_LAZY_SRC_NAMES = frozenset(LAZY_SRC_ATTRS)


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
    next_sentence: str = ""


def _element_urls(element, base: str) -> tuple[str | None, list[str], float, int, bool]:
    """`(chosen_url, alias_keys, srcset_width, n_srcset, lazy)` of an img/source/input element.

    The chosen URL is the largest `srcset` candidate, else a lazy-load attribute, else `src`
    (placeholders and `data:` URIs skipped); every name the element gives is an alias key.
    """
    attrib = element.attrib
    # An element has a few attributes, the lists below name many: look up only those it has.
    names = frozenset(attrib.keys())
    raws: list[str] = []
    lazy = False
    src = attrib.get("src")
    if src and (src.startswith("data:") or is_placeholder_url(src)):
        src = None
    lazy_src = None
    if not names.isdisjoint(_LAZY_SRC_NAMES):
        for name in LAZY_SRC_ATTRS:  # in order of preference
            value = attrib.get(name)
            if value and not value.startswith("data:"):
                lazy_src = _first_url(value)
                lazy = True
                break
    srcset_names = [name for name in _SRCSET_ATTRS if name in names]
    if not src and not lazy_src and not [name for name in srcset_names if attrib.get(name)]:
        lazy_src = _unknown_lazy_src(attrib)
        lazy = lazy_src is not None
    best_raw, best_size, best_unit, n_srcset = None, 0.0, "", 0
    for name in srcset_names:
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
                best_raw, best_size, best_unit = raw, weight, unit
        if name != "srcset" and best_raw:
            lazy = True
    if best_raw:
        raws.append(best_raw)
    srcset_width = best_size if best_unit == "w" and best_size > 10 else 0.0
    if best_unit == "x":
        # A density descriptor ("2x") says how sharp, not how wide: the width is the 1x width
        # (declared, or in the URL) times the density, unknown without one.
        shown = pixels(attrib.get("width")) or url_size(src or lazy_src or "")[0]
        srcset_width = shown * best_size / 1000
    chosen = None
    for raw in (best_raw, lazy_src, src):
        if raw:
            chosen = absolute_image_url(raw, base)
            if chosen:
                break
    raws += [raw for raw in (lazy_src, src) if raw]
    keys = [alias for raw in raws if (alias := alias_key(raw, base))]
    return chosen, keys, srcset_width, n_srcset, lazy


# A value naming an image file: "/a/b.jpg", "b.webp?w=800", "b.png 2x, c.png 3x".
_IMAGE_FILE = re.compile(r"\.(?:jpe?g|png|webp|avif|gif)(?:[?#\s,]|$)", re.I)


def _first_url(value: str) -> str:
    """The URL of a lazy-load attribute, which may hold a srcset-like list ("a.jpg 1x, b.jpg 2x")."""
    return value.split(",")[0].split()[0] if " " in value.strip() else value


def _unknown_lazy_src(attrib) -> str | None:
    """The first image URL in a `data-*` attribute, for an image with no `src` or known lazy-load
    attribute: every lazy-loading script names its attribute its own way (`data-img-url`,
    `data-lsrc`, `data-cfsrc`...), and the page shows the image from there."""
    for name, value in attrib.items():
        if name.startswith("data-") and value and not value.startswith("data:") and _IMAGE_FILE.search(value):
            return _first_url(value)
    return None


def _picture_of(element):
    """The `<picture>` around an element. lxml's HTML 4 parser nests each `<source>` in the one
    before it (and the `<img>` in the last), so any number of `<source>` levels are climbed."""
    depth = 0
    for ancestor in element.iterancestors():
        if ancestor.tag == "picture":
            return ancestor
        if ancestor.tag != "source":
            depth += 1
            if depth > 3:
                return None
    return None


def _picture_default(picture, base: str) -> tuple[str | None, float]:
    """`(url, srcset width)` of what a `<picture>`'s sources show on a wide screen: the largest
    `w` candidate, else the source without a `media` query (the fallback a browser takes when no
    query matches), else the last source."""
    sources = []  # (width, has no media query, url)
    for source in picture.iter("source"):
        url, _, width, _, _ = _element_urls(source, base)
        if url:
            sources.append((width, not source.get("media"), url))
    if not sources:
        return None, 0.0
    widest = max(sources, key=lambda s: s[0])
    if widest[0] > 0:
        return widest[2], widest[0]
    unconditional = [url for _, plain, url in sources if plain]
    return (unconditional or [sources[-1][2]])[0], 0.0


def _meta_images(metas: list, base: str) -> tuple[list[tuple[str, int]], dict]:
    """`[(url, rank)]` of og/twitter meta images and `{'width', 'height', 'alt', 'og_title', ...}` of a page's `<meta>`s."""
    found = []
    info: dict = {}
    for meta in metas:
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
            info.setdefault(META_SIZE_KEYS[key], pixels(value))
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


def _jsonld_urls(scripts: list, base: str) -> list[str]:
    urls: list[str] = []
    for script in scripts:
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
                       max_candidates: int = 60, describe_unusable: bool = True) -> PageCandidates:
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
    describe_unusable : bool, default=True
        Compute every feature and text of :func:`unusable_body_rows` too. They are never chosen,
        in any branch of the decision, and their feature rows are never ranked: ParsePages
        passes False, and their rows hold only the size, place and file type the rule reads.
    """
    base = page.base_url or page.url
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
        if not chosen and tag == "img" and picture is not None:
            # A <picture> whose <img> holds only a placeholder shows its <source>s' image.
            chosen, srcset_width = _picture_default(picture, base)
            lazy = True
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
            cand.width, cand.height = pixels(element.get("width")), pixels(element.get("height"))
            cand.full_size_urls = [full for name in FULL_SIZE_ATTRS
                                   if (full := absolute_image_url(element.get(name), base))]
            by_key[cand.key] = cand
            body.append(cand)
        elif cand.offset < scan.h1_offset <= offset:  # shown above the headline and again below it
            _show_at(cand, element, offset, order, in_noscript)
        cand.repeat += 1
        if tag not in cand.sources:
            cand.sources.append(tag)
        for alias in aliases:
            by_key.setdefault(alias, cand)

    features, unusable = candidate_features(page, body, describe_unusable=describe_unusable)
    # Only a body image that could be chosen may stand for a meta image's other rendition.
    excluded = excluded_body_rows(PageCandidates(candidates=body, meta=[], info={}, features=features,
                                                 n_body=len(body)), unusable)
    add_rank_features(features, excluded, has_headline=page.scan.h1_offset >= 0)
    mergeable = {id(c) for c, out in zip(body, excluded) if not out}
    meta: list[tuple[str, int]] = []
    info: dict = {}
    found, info = _meta_images(page.elements["meta"], base)
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
        for link in page.elements["link"]:
            if (link.get("rel") or "").lower() == "image_src":
                url = absolute_image_url(link.get("href"), base)
                if url:
                    add_named(by_key, url, "link")
        for url in _jsonld_urls(page.elements["script"], base):
            add_named(by_key, url, "jsonld")
        for element in page.elements[ITEMPROP_IMAGE]:
            value = element.get("content") or element.get("href") or element.get("src") or element.get("data-src")
            url = absolute_image_url(value, base)
            if url:
                add_named(by_key, url, "itemprop")
    # A video's poster frame is the page's picture where the lead is a video (see choose_dominant).
    for video in page.elements["video"]:
        url = absolute_image_url(video.get("poster"), base)
        if url:
            add_named(by_key, url, "poster")
    candidates = list(dict.fromkeys(by_key.values()))  # distinct, body first in document order
    found = PageCandidates(candidates=candidates, meta=meta, info=info, features=features, n_body=len(body))
    _mark_structured(found)
    return found


def _show_at(cand: Candidate, element, offset: int, order: int, in_noscript: bool) -> None:
    """Move a repeated image's features to another of its showings.

    An image shown above the headline and again below it is described by its first showing
    below it: a story's lead photo is often also a thumbnail in a carousel or list of top
    stories above the story, and that showing looks like a teaser, not like the story's picture.
    """
    cand.element, cand.offset, cand.order, cand.in_noscript = element, offset, order, in_noscript
    width, height = pixels(element.get("width")), pixels(element.get("height"))
    if width or height:
        cand.width, cand.height = width, height


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


def unusable_body_rows(found: PageCandidates) -> np.ndarray:
    """:func:`unusable_rows` of a page's body candidates."""
    return unusable_rows(found.features, [c.url for c in found.candidates[:found.n_body]])


def excluded_body_rows(found: PageCandidates, unusable: np.ndarray | None = None) -> np.ndarray:
    """Body candidates never chosen by ranking: :func:`unusable_body_rows`, and ads, logos, icons and
    avatars by class or alt.

    An ad-slot class on a large image that its own class also marks as the lead (`hero-image
    block-image-ads`) names where the page may put an ad, not what the image is.
    """
    f = FEATURE_INDEX
    x = found.features
    large = x[:, f["is_large"]] > 0
    unusable = unusable_body_rows(found) if unusable is None else unusable
    excluded = unusable | (x[:, f["own_logo"]] > 0)
    excluded |= (x[:, f["own_ad"]] > 0) & ~(large & (x[:, f["own_lead"]] > 0))
    excluded |= (x[:, f["own_icon"]] > 0) & ~large
    excluded |= (x[:, f["own_avatar"]] > 0) & ~large
    return excluded


# Candidate fields a page record carries between ParsePages and DetectDominantImage.
_RECORD_FIELDS = ("url", "key", "sources", "meta_rank", "meta_width", "meta_height", "named_url", "alt", "title",
                  "figcaption", "context", "headline", "next_sentence", "full_size_urls")


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
