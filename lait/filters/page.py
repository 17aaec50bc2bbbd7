"""Web pages: bytes to text with the right charset, a bounded lxml tree, visible text and language.

>>> parser = PageParser()
>>> page = parser.parse(b"<html><head><title>Hi</title></head><body><p>Hello world</p></body></html>",
...                     "https://example.com/")
>>> page.title, page.text
('Hi', 'Hello world')

The charset is taken, in order, from a byte-order mark, the HTTP `Content-Type` header,
a `<meta charset>` / `<meta http-equiv>` declaration in the first 4 KiB, then a strict
UTF-8 attempt, then detection (beautifulsoup4's `UnicodeDammit`). The WHATWG order puts the
BOM first because a BOM is never wrong; a server header often is, so a declared charset that
fails to decode falls through to the next source instead of producing mojibake.
"""

from __future__ import annotations

import codecs
import functools
import re
from dataclasses import dataclass, field

import lxml.etree

from lait.extensions import compiled
from lait.filters.urls import normalize_url

_BOMS = [(codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")]
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([\w.:-]+)", re.I)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)
# Elements whose text a reader never sees.
INVISIBLE_TAGS = frozenset(["script", "style", "noscript", "template", "svg", "head", "title", "iframe",
                            "object", "select", "option", "button", "textarea", "canvas", "math"])
# Elements that do not break a line: their text joins the text around them without a space.
INLINE_TAGS = frozenset(["a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "font", "i", "kbd",
                         "mark", "q", "s", "samp", "small", "span", "strong", "sub", "sup", "time", "u", "var"])
# Browsers treat these labels as windows-1252 (WHATWG Encoding Standard).
_CHARSET_ALIASES = {"iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "us-ascii": "cp1252",
                    "ascii": "cp1252", "x-user-defined": "cp1252", "unicode": "utf-8", "utf8": "utf-8"}


def _codec(label: str | None) -> str | None:
    """Python codec name for a charset label, or None when Python does not know it."""
    if not label:
        return None
    label = label.strip().lower()
    label = _CHARSET_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def header_charset(content_type: str | None) -> str | None:
    """Charset named in an HTTP `Content-Type` value, as a Python codec name."""
    if not content_type:
        return None
    match = _HEADER_CHARSET.search(content_type)
    return _codec(match.group(1)) if match else None


def meta_charset(content: bytes) -> str | None:
    """Charset declared by `<meta charset>` or `<meta http-equiv=Content-Type>` in the first 4 KiB."""
    match = _META_CHARSET.search(content[:4096])
    return _codec(match.group(1).decode("ascii", "ignore")) if match else None


def decode_html(content: bytes, content_type: str | None = None) -> tuple[str, str]:
    """`(text, codec)` for HTML bytes; never raises.

    Parameters
    ----------
    content : bytes
        The page as served.
    content_type : str, optional
        The HTTP `Content-Type` header value, when known.
    """
    text, codec, _ = _decode(content, content_type)
    return text, codec


def _decode(content: bytes, content_type: str | None) -> tuple[str, str, bool]:
    """:func:`decode_html`'s `(text, codec)` and whether `content` is exactly `text` in `codec`:
    decoded whole and strictly, with no byte-order mark cut off."""
    for bom, codec in _BOMS:
        if content.startswith(bom):
            return content[len(bom):].decode(codec, "replace"), codec, False
    for codec in (header_charset(content_type), meta_charset(content), "utf-8"):
        if codec is None:
            continue
        if codec.startswith("utf-16"):  # a UTF-16 label on ASCII-compatible bytes is a known server lie
            continue
        try:
            return content.decode(codec), codec, True
        except (UnicodeDecodeError, LookupError):
            continue
    sample = content[:200_000]
    high = len(sample) - len(sample.decode("ascii", "ignore"))
    if high < 0.05 * len(sample):
        # A few accented letters in ASCII text: a Western single-byte page. Detectors guess
        # a CJK multi-byte codec on so little evidence and turn every accent into an ideogram.
        return content.decode("cp1252", "replace"), "cp1252", False
    from bs4 import UnicodeDammit

    dammit = UnicodeDammit(sample, is_html=True)
    codec = _codec(dammit.original_encoding) or "cp1252"
    return content.decode(codec, "replace"), codec, False


# Plain lxml elements: lxml.html's element classes cost a Python lookup per node visited.
# The text is handed over as UTF-8, its encoding named: lxml gives libxml2 a `str` that is not
# ASCII in Python's 4-byte form, and the conversion costs about as much as the parse. A named
# encoding also wins over any `<meta charset>` in the page, which decode_html has already read.
_HTML_PARSER = lxml.etree.HTMLParser(remove_blank_text=False, huge_tree=False, collect_ids=False, remove_comments=True,
                                      remove_pis=True, encoding="utf-8")


def parse_html(text: str, utf8: bytes | None = None) -> lxml.etree._Element | None:
    """The lxml tree of an HTML document, or None when nothing can be parsed.

    `utf8`, when given, is `text` encoded as UTF-8 (a UTF-8 page's own bytes): parsed as it is.
    """
    if _XML_DECLARATION.match(text):  # it names the bytes' encoding, not the text's
        text, utf8 = _XML_DECLARATION.sub("", text, count=1), None
    data = utf8 if utf8 is not None else text.encode("utf-8", "replace")
    # U+0000 is the one character with a zero byte in UTF-8; bytes are searched faster than text.
    if b"\x00" in data:
        text = text.replace("\x00", "")
        data = text.encode("utf-8", "replace")
    if not text or text.isspace():
        return None
    try:
        root = lxml.etree.fromstring(data, _HTML_PARSER)
    except (lxml.etree.ParserError, lxml.etree.XMLSyntaxError, ValueError):
        return None
    return root if root is not None and len(root) else None


def collapse(text: str | None) -> str:
    """Whitespace runs to one space, stripped."""
    return " ".join(text.split()) if text else ""


IMAGE_TAGS = frozenset(["img", "input", "source"])
_BLOCK_TEXT_TAGS = frozenset(["p", "li", "blockquote", "dd", "td", "pre"])


@dataclass
class BodyScan:
    """One document-order pass over the body: visible text and where images and headings sit in it.

    `images` holds `(element, text_offset, order, in_noscript)` for every `<img>`, `<source>`
    and `<input>`; `text_offset` is the length of visible text before it, `order` its index
    among all elements. `paragraphs` holds `(offset, length)` of paragraph-like blocks with at
    least `min_paragraph_chars` characters of text.
    """

    text: str = ""
    images: list = field(default_factory=list)
    paragraphs: list = field(default_factory=list)
    paragraph_elements: list = field(default_factory=list)  # the first few, for tree distances
    h1_offset: int = -1
    h1: object = None
    n_elements: int = 0


def body_of(root: lxml.etree._Element) -> lxml.etree._Element:
    """The document's `<body>`, or its root where it has none (a frameset): what :func:`scan_body` walks."""
    body = root.find("body")
    return root if body is None else body


def scan_body(root: lxml.etree._Element, max_chars: int = 100_000, min_paragraph_chars: int = 80) -> BodyScan:
    """Visible text (scripts, styles, templates... left out, whitespace collapsed) and image positions."""
    body = body_of(root)
    if _dom is None:
        return walk_body(body, max_chars, min_paragraph_chars)
    text, images, paragraphs, paragraph_elements, h1_offset, h1, n_elements = _dom.scan(
        body, max_chars, min_paragraph_chars)
    return BodyScan(text, images, paragraphs, paragraph_elements, h1_offset, h1, n_elements)


def walk_body(body: lxml.etree._Element, max_chars: int = 100_000, min_paragraph_chars: int = 80) -> BodyScan:
    """:func:`scan_body`'s definition, in Python: the compiled scan (`_dom.scan`) must equal it."""
    scan = BodyScan()
    chunks: list[str] = []
    size = 0
    order = 0
    starts: dict = {}
    images = scan.images
    paragraphs, paragraph_elements = scan.paragraphs, scan.paragraph_elements
    invisible_tags, inline_tags, block_text_tags, image_tags = INVISIBLE_TAGS, INLINE_TAGS, _BLOCK_TEXT_TAGS, IMAGE_TAGS
    # "end" follows every "start" (skipped subtrees too): tails are taken there.
    walker = lxml.etree.iterwalk(body, events=("start", "end", "comment", "pi"))
    for event, element in walker:
        tag = element.tag
        if event == "start":
            order += 1
            if tag in invisible_tags:
                walker.skip_subtree()
                if tag == "noscript":  # lazy-loading pages put the real <img> here
                    images.extend((img, size, order, True) for img in element.iter("img"))
                continue
            if tag in image_tags:
                images.append((element, size, order, False))
            elif tag in block_text_tags:
                starts[element] = size
            elif tag == "h1" and scan.h1_offset < 0:
                scan.h1_offset = size
                scan.h1 = element
            if tag not in inline_tags:
                chunks.append(" ")
                size += 1
            if size < max_chars:
                text = element.text  # each read of .text builds a new string
                if text:
                    chunks.append(text)
                    size += len(text)
        else:
            if event == "end":
                start = starts.pop(element, None) if tag in block_text_tags else None
                if start is not None and size - start >= min_paragraph_chars:
                    paragraphs.append((start, size - start))
                    if len(paragraph_elements) < 5:
                        paragraph_elements.append(element)
                if tag not in inline_tags:
                    chunks.append(" ")
                    size += 1
            if size < max_chars and element is not body:
                tail = element.tail
                if tail:
                    chunks.append(tail)
                    size += len(tail)
    scan.n_elements = order
    scan.text = "".join(chunks)
    return scan


def visible_text(root: lxml.etree._Element, max_chars: int = 100_000) -> str:
    """Text a reader sees in the page body, whitespace collapsed."""
    return collapse(scan_body(root, max_chars).text)[:max_chars]


def language_sample(scan: BodyScan, chars: int = 400) -> str:
    """Text to identify a page's language from: its paragraphs first (menus and footers
    are short, often English boilerplate on any page), else the visible text.

    Paragraphs that add up to less than half of `chars` (a story written in `<div>`s and
    `<br>`s has no `<p>`; its one short "paragraph" may be a breadcrumb) are too little to
    go on: the visible text is taken instead, `chars * 4` of it, so that the story outweighs
    the navigation.
    """
    pieces, size = [], 0
    for start, length in scan.paragraphs:
        pieces.append(scan.text[start:start + length])
        size += length
        if size >= chars:
            break
    sample = collapse(" ".join(pieces))
    if len(sample) >= chars // 2:
        return sample[:chars]
    return collapse(scan.text[:chars * 16])[:chars * 4]


# Tags read wherever they are in the document. A walk of the whole tree costs the same whatever
# it looks for, so they are all collected in one (:func:`index_elements`), with the elements
# other than `<img>` that say `itemprop="image"` (schema.org microdata naming the page's image).
INDEXED_TAGS = ("title", "base", "meta", "link", "script", "video")
ITEMPROP_IMAGE = "itemprop=image"
_ITEMPROP_IMAGE = lxml.etree.XPath("//@itemprop[.='image']/parent::*[not(self::img)]")


# The compiled walks (`_dom.pyx`), where they were built (lait.extensions); walk_body and
# index_elements' loop otherwise.
_dom = compiled("lait.filters._dom")
if _dom is not None:
    _dom.set_tag_kinds(INVISIBLE_TAGS, INLINE_TAGS, IMAGE_TAGS, _BLOCK_TEXT_TAGS, INDEXED_TAGS)


def index_elements(root: lxml.etree._Element) -> dict[str, list]:
    """Every element of :data:`INDEXED_TAGS` in the document, by tag, and under
    :data:`ITEMPROP_IMAGE` every element but `<img>` with `itemprop="image"`, in document order."""
    if _dom is not None:
        found, marked = _dom.index(root, "itemprop", "image", "img")
    else:
        found = {tag: [] for tag in INDEXED_TAGS}
        for element in root.iter(*INDEXED_TAGS):
            found[element.tag].append(element)
        marked = _ITEMPROP_IMAGE(root)
    found[ITEMPROP_IMAGE] = marked
    return found


def page_title(titles: list) -> str:
    """The document's first `<title>` (of `index_elements(root)["title"]`), whitespace collapsed ('' when none)."""
    return collapse("".join(titles[0].itertext())) if titles else ""


def base_url(bases: list, page_url: str) -> str:
    """URL that relative links resolve against: the first valid `<base href>` of `bases`
    (`index_elements(root)["base"]`), else the page URL."""
    for base in bases:
        href = base.get("href")
        if href:
            resolved = normalize_url(href, page_url)
            if resolved:
                return resolved
    return page_url


@dataclass
class Page:
    """A parsed page: its tree and what every later step needs from it."""

    url: str
    root: lxml.etree._Element
    encoding: str
    title: str = ""
    language: str | None = None
    language_score: float = 0.0
    base_url: str = ""
    scan: BodyScan = field(default_factory=BodyScan)

    @functools.cached_property
    def elements(self) -> dict[str, list]:
        """:func:`index_elements` of the tree, found once."""
        return index_elements(self.root)

    @property
    def text(self) -> str:
        """The visible text, whitespace collapsed (computed when asked: the pipeline does not need it)."""
        return collapse(self.scan.text)


class PageParser:
    """Decode, parse and identify the language of pages; `parse` returns a `Page` or `(False, reason)`.

    Parameters
    ----------
    languages : sequence of str, default ("en",)
        fastText lid.176 codes of languages to keep.
    min_language_score : float, default=0.5
        Minimum fastText confidence for the page language.
    max_page_bytes : int, default=5 MiB
        Larger pages are rejected (`page_too_large`) before parsing: parsing is linear but
        a crawl's outliers (tens of MB of inline data) would stall a worker.
    identifier : LanguageIdentifier, optional
        A loaded identifier to share; one is loaded when needed otherwise.
    identify : bool, default=None
        Identify the language even with `languages=None` (keeping every page); by default
        only when `languages` is given.
    """

    def __init__(self, languages=("en",), min_language_score: float = 0.5, max_page_bytes: int = 5 * 2**20,
                 identifier=None, max_text_chars: int = 100_000, identify: bool | None = None):
        self.languages = set(languages) if languages else None
        self.min_language_score = min_language_score
        self.max_page_bytes = max_page_bytes
        self.max_text_chars = max_text_chars
        if identifier is None and (identify if identify is not None else self.languages is not None):
            from lait.filters.language import LanguageIdentifier

            identifier = LanguageIdentifier()
        self.identifier = identifier

    def parse(self, content: bytes, url: str, content_type: str | None = None) -> Page | tuple[bool, str, str]:
        """A `Page`, or `(False, reason, detail)` with reason page_too_large, parse_error, no_text or language."""
        if len(content) > self.max_page_bytes:
            return False, "page_too_large", f"{len(content)} bytes > {self.max_page_bytes}"
        text, encoding, exact = _decode(content, content_type)
        root = parse_html(text, content if exact and encoding == "utf-8" else None)
        if root is None:
            return False, "parse_error", "no HTML element could be parsed"
        scan = scan_body(root, self.max_text_chars)
        page = Page(url=url, root=root, encoding=encoding, scan=scan)
        page.title, page.base_url = page_title(page.elements["title"]), base_url(page.elements["base"], url)
        if (not scan.text or scan.text.isspace()) and not page.title:
            return False, "no_text", None
        if self.identifier is not None:
            page.language, page.language_score = self.identifier.identify(language_sample(scan) or page.title)
            if self.languages is not None:
                if page.language not in self.languages or page.language_score < self.min_language_score:
                    return False, "language", f"{page.language} {page.language_score:.2f}"
        return page
