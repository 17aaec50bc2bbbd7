"""The DOM features of each candidate image (:data:`FEATURE_NAMES`), the rows the ranker scores."""

from __future__ import annotations

import array
import bisect
import functools
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit

import numpy as np

from lait.extensions import compiled
from lait.filters.image_context import ChromeTest, image_texts
from lait.filters.page import Page, collapse
from lait.filters.urls import url_host
from lait.scoring.dominant_image.urls import contains_any, proxied_path, site_image_url, url_size

if TYPE_CHECKING:  # candidates.py imports this module
    from lait.scoring.dominant_image.candidates import Candidate

# The compiled DOM walks (lait.extensions), where built: _ancestry takes them.
_dom = compiled("lait.filters._dom")
# Pages name the same few hosts many times.
_url_host = functools.lru_cache(maxsize=8192)(url_host)
_WORD = re.compile(r"\w+", re.U)
# Words of a host name that say it serves files (`cdn.`, `images.`, `cloudfront`...).
_CDN_WORDS = ("cdn", "img", "image", "media", "static", "assets", "cloudfront", "akamai", "wp.com")
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
     "fetchpriority_high", "link_wrapped", "link_to_image", "link_same_page", "link_site_page",
     "in_picture_source",
     "alt_words", "has_alt", "has_title", "alt_title_overlap", "url_title_overlap", "url_page_overlap",
     "has_figcaption", "figcaption_words", "context_words", "itemprop_image", "in_jsonld", "is_link_image_src",
     "tree_distance_h1", "tree_distance_paragraph", "paragraph_container_depth",
     "same_host", "cdn_host", "url_length", "has_query", "year_in_path", "wp_uploads", "size_in_url",
     "content_rank", "content_rank_from_h1", "content_area_rank", "is_largest_content"]
    + [f"ext_{e}" for e in EXTENSIONS]
    + [f"in_{t}" for t in ANCESTOR_TAGS]
    + [f"own_{g}" for g in GROUPS]
    + [f"ancestor_{g}" for g in GROUPS]
    + [f"url_{g}" for g in GROUPS]
)
FEATURE_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}


_LETTERS = re.compile(r"[a-z]+")
# A lower-case letter followed by a capital: where camel-case class names join words ("PageLogo-image").
_CAMEL_JOIN = re.compile(r"(?<=[a-z])(?=[A-Z])")
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
    for word in _LETTERS.findall(_CAMEL_JOIN.sub(" ", text).lower()):
        group = _SHORT_STEMS.get(word)
        if group is not None:
            groups.add(group)
        for stem, group in _LONG_STEMS.get(word[:4], ()):
            if word.startswith(stem):
                groups.add(group)
    return frozenset(groups)


@functools.lru_cache(maxsize=4096)
def _word_set(text: str) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall(text.lower()) if len(w) > 2)


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a) if a and b else 0.0


def _figcaption(element) -> str:
    for ancestor in element.iterancestors("figure"):
        caption = ancestor.find(".//figcaption")
        return collapse("".join(caption.itertext()))[:500] if caption is not None else ""
    return ""


def _class_text(element) -> str:
    return (element.get("class") or "") + " " + (element.get("id") or "")


@dataclass
class _PageContext:
    """What every candidate's features compare with: the page's address, title, headline and paragraphs."""

    page: Page
    n: int
    title_words: frozenset
    page_words: frozenset
    page_host: str
    paragraph_starts: list  # in order of their ends: nested blocks end first
    sorted_starts: list
    chrome: ChromeTest = field(default_factory=ChromeTest)

    @classmethod
    def of(cls, page: Page, n: int) -> _PageContext:
        starts = [start for start, _ in page.scan.paragraphs]
        return cls(page=page, n=n, title_words=_word_set(page.title),
                   page_words=_word_set(unquote(urlsplit(page.url).path)), page_host=_url_host(page.url),
                   paragraph_starts=starts, sorted_starts=sorted(starts))

    @functools.cached_property
    def h1_up(self) -> dict:
        """The headline and its ancestors, by how far up they are."""
        return _levels_up(self.page.scan.h1)

    @functools.cached_property
    def paragraph_up(self) -> dict:
        """The first long paragraphs and their ancestors, by how far up from the nearest they are."""
        up: dict = {}
        for paragraph in self.page.scan.paragraph_elements:
            for ancestor, level in _levels_up(paragraph).items():
                up[ancestor] = min(level, up.get(ancestor, 99))
        return up


def candidate_features(page: Page, body: list[Candidate], describe_unusable: bool = True
                       ) -> tuple[np.ndarray, np.ndarray]:
    """`(features, unusable)`: the feature matrix of the body candidates (rows follow `body`) and
    their :func:`unusable_rows`; also fills their texts.

    The size, place and file type of every candidate come first; with `describe_unusable=False`
    the rest (markup, links, URL words, texts) is left out for the unusable rows, which are
    never ranked or chosen.
    """
    n = len(body)
    if not n:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32), np.zeros(0, dtype=bool)
    context = _PageContext.of(page, n)
    rows = [_placement_row(context, i, cand) for i, cand in enumerate(body)]
    unusable = unusable_rows(_matrix(rows), [c.url for c in body])  # placement columns only
    for row, cand, skip in zip(rows, body, unusable):
        if describe_unusable or not skip:
            _add_markup_features(context, row, cand)
    x = _matrix(rows)
    areas = np.array([_area(cand) for cand in body])
    top = areas.max()
    if top > 0:
        x[:, FEATURE_INDEX["area_vs_page_max"]] = areas / top
        x[:, FEATURE_INDEX["is_largest_on_page"]] = areas == top
    return x, unusable


# A candidate's row is filled item by item: an item of a float32 array costs less than one of a numpy
# array, and the rows join into the matrix without numpy converting every Python float (as it would a list).
_ZERO_ROW = array.array("f", bytes(4 * len(FEATURE_NAMES)))


def _matrix(rows: list[array.array]) -> np.ndarray:
    """The float32 `(len(rows), len(FEATURE_NAMES))` matrix of feature rows, writable."""
    return np.frombuffer(bytearray().join(rows), dtype=np.float32).reshape(len(rows), len(FEATURE_NAMES))


def _placement_row(context: _PageContext, i: int, cand: Candidate) -> array.array:
    """A candidate's row with its size, place on the page and file type filled in; its alt and title read."""
    f = FEATURE_INDEX
    row = array.array("f", _ZERO_ROW)
    scan, n, element, url = context.page.scan, context.n, cand.element, cand.url
    url_w = url_size(url)[0]
    best_w, best_h = _best_size(cand)
    row[f["width"]] = math.log1p(cand.width)
    row[f["height"]] = math.log1p(cand.height)
    row[f["has_declared_size"]] = bool(cand.width or cand.height)
    row[f["srcset_width"]] = math.log1p(cand.srcset_width)
    row[f["url_width"]] = math.log1p(url_w)
    row[f["best_width"]] = math.log1p(best_w)
    row[f["best_height"]] = math.log1p(best_h)
    row[f["log_area"]] = math.log1p(_area(cand))
    row[f["log_aspect"]] = math.log(best_w / best_h) if best_w and best_h else 0.0
    row[f["is_pixel"]] = (0 < cand.width <= 3) or (0 < cand.height <= 3)
    side = max(cand.width, cand.height)
    row[f["is_small"]] = 0 < side < 100
    row[f["is_large"]] = min(best_w, best_h or best_w) >= 300
    row[f["size_in_url"]] = bool(url_w)
    row[f["order_fraction"]] = cand.order / max(scan.n_elements, 1)
    row[f["candidate_index"]] = math.log1p(i)
    row[f["candidate_index_fraction"]] = i / n
    row[f["is_first_candidate"]] = i == 0
    row[f["text_before_fraction"]] = cand.offset / max(len(scan.text), 1)
    row[f["log_chars_before"]] = math.log1p(cand.offset)
    row[f["after_h1"]] = 0 <= scan.h1_offset <= cand.offset
    if scan.h1_offset >= 0:
        row[f["log_chars_from_h1"]] = math.copysign(math.log1p(abs(cand.offset - scan.h1_offset)),
                                                   cand.offset - scan.h1_offset)
    starts = context.paragraph_starts
    if starts:
        row[f["log_chars_to_first_paragraph"]] = math.copysign(math.log1p(abs(starts[0] - cand.offset)),
                                                               starts[0] - cand.offset)
    before = bisect.bisect_left(context.sorted_starts, cand.offset)
    row[f["paragraphs_after"]] = math.log1p(len(starts) - before)
    row[f["paragraphs_before_fraction"]] = before / len(starts) if starts else 0.0
    row[f["n_candidates"]] = math.log1p(n)
    row[f["repeat_count"]] = cand.repeat
    row[f["n_srcset"]] = math.log1p(cand.n_srcset)
    row[f["lazy"]] = cand.lazy
    row[f["loading_lazy"]] = (element.get("loading") or "").lower() == "lazy"
    row[f["fetchpriority_high"]] = (element.get("fetchpriority") or "").lower() == "high"
    row[f["in_picture_source"]] = "source" in cand.sources
    row[f["in_noscript"]] = cand.in_noscript
    path = urlsplit(url).path.lower()
    ext = path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
    ext = "jpg" if ext == "jpeg" else ext
    row[f["ext_" + (ext if ext in EXTENSIONS else "other")]] = 1.0
    cand.alt, cand.title = collapse(element.get("alt"))[:1000], collapse(element.get("title"))[:1000]
    return row


def _best_size(cand: Candidate) -> tuple[float, float]:
    """Width and height of the image as best known: declared, else its srcset, else its URL (0 unknown)."""
    url_w, url_h = url_size(cand.url)
    return cand.width or cand.srcset_width or url_w, cand.height or url_h


def _area(cand: Candidate) -> float:
    """Pixels of :func:`_best_size`, a height unknown taken as 0.6 of the width."""
    width, height = _best_size(cand)
    return width * (height or width * 0.6)


def _add_markup_features(context: _PageContext, row: array.array, cand: Candidate) -> None:
    """Fill a candidate's ancestor, class, link and URL-word features, and its texts."""
    f = FEATURE_INDEX
    element, url, page_host = cand.element, cand.url, context.page_host
    depth, h1_distance, paragraph_distance, container_depth, tags, class_texts, href, itemprop = _ancestry(
        context, element)
    for tag in tags:
        row[_ANCESTOR_FEATURE[tag]] = 1.0
    if href is not None:
        row[f["link_wrapped"]] = 1.0
        row[f["link_to_image"]] = href.lower().split("?")[0].endswith((".jpg", ".jpeg", ".png", ".webp", ".gif"))
        row[f["link_same_page"]] = _same_page(href, context.page.url)
        row[f["link_site_page"]] = (not row[f["link_same_page"]] and not row[f["link_to_image"]]
                                    and _same_site(href, page_host))
    ancestor_groups = set().union(*map(token_groups, class_texts))
    if itemprop:
        row[f["itemprop_image"]] = 1.0
    row[f["depth"]] = depth
    row[f["tree_distance_h1"]] = h1_distance or 60.0
    row[f["tree_distance_paragraph"]] = paragraph_distance or 60.0
    row[f["paragraph_container_depth"]] = container_depth or 30.0
    if element.get("itemprop") == "image":
        row[f["itemprop_image"]] = 1.0
    alt, title = collapse(element.get("alt")), collapse(element.get("title"))  # whole: cand.alt is cut
    parts = urlsplit(url)
    raw_path = unquote(parts.path)
    for group in token_groups(_class_text(element) + " " + alt):
        row[f["own_" + group]] = 1.0
    for group in ancestor_groups:
        row[f["ancestor_" + group]] = 1.0
    for group in token_groups(raw_path + " " + proxied_path(url)):
        row[f["url_" + group]] = 1.0
    row[f["alt_words"]] = math.log1p(len(alt.split()))
    row[f["has_alt"]] = bool(alt)
    row[f["has_title"]] = bool(title)
    row[f["alt_title_overlap"]] = _overlap(_word_set(alt + " " + title), context.title_words)
    path_words = _word_set(raw_path.replace("-", " ").replace("_", " "))
    row[f["url_title_overlap"]] = _overlap(context.title_words, path_words)
    row[f["url_page_overlap"]] = _overlap(path_words, context.page_words)
    _add_texts(row, cand, context.chrome)
    host = _url_host(url)
    row[f["same_host"]] = _same_domain(host, page_host)
    row[f["cdn_host"]] = contains_any(host, _CDN_WORDS)
    path = parts.path.lower()
    row[f["url_length"]] = math.log1p(len(url))
    row[f["has_query"]] = bool(parts.query)
    row[f["year_in_path"]] = bool(_YEAR_PATH.search(path))
    row[f["wp_uploads"]] = "/uploads/" in path


# Ancestors this near an image describe it by their class and id (CMS wrappers, a teaser list);
# those further up describe the page's layout.
CLASS_LEVELS = 6


def _ancestry(context: _PageContext, element) -> tuple:
    """:func:`walk_ancestors` of a candidate's element, compiled (`lait.filters._dom`) where built."""
    if _dom is None:
        return walk_ancestors(element, context.h1_up, context.paragraph_up)
    scan = context.page.scan
    return _dom.ancestors(element, scan.h1, scan.paragraph_elements, CLASS_LEVELS)


def walk_ancestors(element, h1_up: dict, paragraph_up: dict, class_levels: int = CLASS_LEVELS) -> tuple:
    """`(depth, h1_distance, paragraph_distance, container_depth, tags, class_texts, outer_href,
    itemprop_image)` of an element's ancestors.

    `depth` counts them. The distances go through the nearest ancestor shared with the headline
    (`h1_up`: {element: levels above the headline}) or with one of the first long paragraphs
    (`paragraph_up`), `container_depth` is how far up that paragraph's is; 0 where none is.
    `tags` are those of :data:`ANCESTOR_TAGS` among them (not noscript: the scan marks it),
    `class_texts` the class and id of the `class_levels` nearest, `outer_href` the `href` of the
    outermost link around the element (None without a link), and `itemprop_image` whether one
    says `itemprop="image"`.
    """
    depth = h1_distance = paragraph_distance = container_depth = 0
    tags, class_texts, outer_href, itemprop_image = [], [], None, False
    for ancestor in element.iterancestors():
        depth += 1
        if not h1_distance and ancestor in h1_up:
            h1_distance = depth + h1_up[ancestor]
        if not paragraph_distance and ancestor in paragraph_up:
            paragraph_distance, container_depth = depth + paragraph_up[ancestor], depth
        tag = ancestor.tag
        if tag in _ANCESTOR_FEATURE:
            tags.append(tag)
            if tag == "a":
                outer_href = ancestor.get("href") or ""
        if depth <= class_levels:
            class_texts.append(_class_text(ancestor))
        itemprop_image = itemprop_image or ancestor.get("itemprop") == "image"
    return depth, h1_distance, paragraph_distance, container_depth, tags, class_texts, outer_href, itemprop_image


def unusable_rows(features: np.ndarray, urls: list[str]) -> np.ndarray:
    """Candidates that cannot be a picture at all: pixels, tiny or SVG/ICO images, site-wide images by URL.

    What rules out an image its page's metadata names too: the URL and the size say what
    the file is, whatever the markup around it says. Reads the columns :func:`_placement_row` fills.
    """
    f = FEATURE_INDEX
    unusable = (features[:, f["is_pixel"]] > 0) | (features[:, f["ext_svg"]] > 0)
    declared = np.maximum(features[:, f["width"]], features[:, f["height"]])
    unusable |= (declared > 0) & (declared < math.log1p(50))
    for i, url in enumerate(urls):
        if not unusable[i] and site_image_url(url):
            unusable[i] = True
    return unusable


def _add_texts(row: array.array, cand: Candidate, chrome: ChromeTest) -> None:
    """Fill a candidate's figcaption, context, headline and (without a context) next sentence, and the
    features counting their words."""
    f = FEATURE_INDEX
    element = cand.element
    cand.figcaption = _figcaption(element)
    row[f["has_figcaption"]] = bool(cand.figcaption)
    row[f["figcaption_words"]] = math.log1p(len(cand.figcaption.split()))
    context, sentence, headline = image_texts(element, chrome)
    cand.context, cand.next_sentence, cand.headline = context[:1000], sentence[:1000], headline[:500]
    row[f["context_words"]] = math.log1p(len(cand.context.split()))


def _same_page(href: str, page_url: str) -> bool:
    """Whether a link goes to the page itself: an anchor, or the page's address with another query
    (`?image_number=1`, `?photo=2`: the page's own photo view, where a teaser links to another story)."""
    if href.startswith(("#", "?")):
        return True
    if not href:
        return False
    try:
        netloc, path = _host_and_path(page_url)
        if href.startswith(("http://", "https://")):  # most links: no resolving against the page needed
            if netloc not in href:  # another site's link names another host
                return False
            target = urlsplit(href)
        elif href.startswith("/") and not href.startswith("//") and "/." not in href.split("?", 1)[0]:
            return href.split("?", 1)[0].split("#", 1)[0].rstrip("/") == path  # no dot segments to remove
        else:
            target = urlsplit(urljoin(page_url, href))
    except ValueError:  # a broken href ("http://[x") or page address
        return False
    return target.netloc == netloc and target.path.rstrip("/") == path


def _same_site(href: str, page_host: str) -> bool:
    """Whether a link stays on the page's site: a picture linking to another page of the site is,
    on most sites, a teaser for another story."""
    if not href or href.startswith(("#", "?", "javascript:", "mailto:")):
        return False
    if not href.startswith(("http://", "https://", "//")):
        return True
    try:
        host = _url_host(href if not href.startswith("//") else "http:" + href)
    except ValueError:  # a broken href ("http://[x")
        return False
    return bool(host) and _same_domain(host, page_host)


def _same_domain(host: str, page_host: str) -> bool:
    """Whether two hosts are one site: equal, or one a subdomain of the other (`cdn.a.com`, `a.com`)."""
    return host == page_host or host.endswith("." + page_host) or page_host.endswith("." + host)


@functools.lru_cache(maxsize=256)
def _host_and_path(page_url: str) -> tuple[str, str]:
    parts = urlsplit(page_url)
    return parts.netloc, parts.path.rstrip("/")


def _levels_up(element) -> dict:
    """`{ancestor: levels above element}` (the element itself at 0); empty for None."""
    if element is None:
        return {}
    levels = {element: 0}
    for level, ancestor in enumerate(element.iterancestors(), 1):
        levels[ancestor] = level
    return levels


# What marks an image as site chrome or a link to another story rather than this page's content:
# its own class or alt, or its file name (`mcb_header2.png`, `related-thumb.jpg`).
_NOT_CONTENT = ("own_chrome", "own_teaser", "own_social", "url_chrome", "url_teaser", "url_social")


def add_rank_features(features: np.ndarray, excluded: np.ndarray, has_headline: bool) -> None:
    """Fill the ranks of each candidate among the page's content images: those not `excluded` and
    not marked as chrome or a teaser by :data:`_NOT_CONTENT`.

    Logos, icons and pixels come first on most pages, in numbers that differ by site; the lead
    photo is, on most sites, the first or the largest image that is left, and the one nearest the
    headline: the first after it or, for a hero image above it, the last before it.
    `content_rank_from_h1` counts content images from the headline: 0, 1, ... after it,
    -1, -2, ... before it (pages without a headline count from the top). Other candidates get
    rank 60 (the most candidates a page keeps) and 0 from the headline.
    """
    f = FEATURE_INDEX
    n = len(features)
    if not n:
        return
    chrome = (features[:, [f[name] for name in _NOT_CONTENT]] > 0).any(axis=1)
    content = np.flatnonzero(~excluded & ~chrome)
    rank = np.full(n, 60.0)
    rank[content] = np.arange(len(content))
    features[:, f["content_rank"]] = np.log1p(rank)
    after = features[content, f["after_h1"]] > 0
    if not has_headline:
        after[:] = True
    n_before = int((~after).sum())
    from_h1 = np.zeros(n)
    from_h1[content] = np.arange(len(content)) - n_before  # content images keep document order
    features[:, f["content_rank_from_h1"]] = from_h1
    area = features[:, f["log_area"]]
    area_rank = np.full(n, 60.0)
    if len(content):
        # Rank 0 for the largest content image; equal areas share a rank.
        area_rank[content] = (area[content][None, :] > area[content][:, None]).sum(axis=1)
    features[:, f["content_area_rank"]] = np.log1p(area_rank)
    features[:, f["is_largest_content"]] = (area_rank == 0) & (area > 0)


_ANCESTOR_FEATURE = {tag: FEATURE_INDEX[f"in_{tag}"] for tag in ANCESTOR_TAGS if tag != "noscript"}
if _dom is not None:
    _dom.set_ancestor_tags(_ANCESTOR_FEATURE)
