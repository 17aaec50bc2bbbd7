"""The text a reader sees as an image's caption (the line beside it, the short block after it,
or the sentence it sits in), the headline right above it, and the first sentence of the body
text right after it.

Pages put captions in many places besides `alt` and `<figcaption>`: a line under the photo
in the same block (``<div><img><br><b>(l to r) Ann and Bo</b></div>``), a caption paragraph
right after it (WordPress's ``<p class="wp-caption-text">``), or the sentence of a paragraph
that the image sits in. :func:`image_caption` finds that text from the image's place in the
tree, never across a block boundary into other content, never from navigation, sidebars or
footers, and never by cutting the page's flat text at an offset (which runs the navigation bar
and byline into the caption and splits words at tag boundaries).

>>> import lxml.html
>>> root = lxml.html.fromstring('<div><p>Intro</p><div><img src="a.jpg"><br><b>Ann (left) and Bo</b></div></div>')
>>> image_caption(root.find(".//img"))
('Ann (left) and Bo', 'line')
"""

from __future__ import annotations

import functools
import re

from lait.extensions import compiled
from lait.filters.page import INLINE_TAGS, INVISIBLE_TAGS

# A caption longer than this is a paragraph about the topic, not a caption: its first
# sentence is taken instead.
MAX_CAPTION_WORDS = 50
# A following block longer than this is body text, not a caption.
MAX_SIBLING_WORDS = 40
# CMS markup wraps an image in several layers of its own (Drupal: field-item, field-items, field).
MAX_WRAPPER_LEVELS = 6
# Drupal's paragraph entities wrap the image's field in three more before the text that follows.
MAX_BODY_WRAPPER_LEVELS = 9
# A first sentence longer than this is cut here (CleanText's --max_words drops it anyway).
MAX_SENTENCE_CHARS = 1000
_HEADINGS = frozenset(["h1", "h2", "h3", "h4", "h5", "h6"])
_HEADLINES = ("h1", "h2", "h3")  # what preceding_heading takes
_IMAGES = frozenset(["img", "picture", "source", "input", "video", "iframe", "svg", "object", "embed"])
_HELD_IMAGES = ("img", "picture", "video", "iframe")  # what _holds_image looks for below an element
_CHROME_TAGS = frozenset(["nav", "footer", "aside", "form", "menu"])
_CHROME_WORDS = frozenset(["nav", "navbar", "navigation", "menu", "breadcrumb", "breadcrumbs", "sidebar", "widget",
                           "footer", "comment", "comments", "share", "sharing", "social", "related", "masthead",
                           "banner", "advert", "ads", "ad", "sponsor", "sponsors", "author", "byline", "meta"])
# One of _CHROME_WORDS as a whole run of letters in a class or id ("site-nav", not "canvas").
_CHROME_NAME = re.compile(r"(?<![a-z])(?:" + "|".join(sorted(_CHROME_WORDS, key=len, reverse=True)) + r")(?![a-z])")
# A byline or timestamp line ("By Ann Lee", "Ann Lee, AP Monday Mar 16, 2020 at 3:44 AM"): it names
# the writer, not who a photo shows. Looked for at a block's start.
_BYLINE = re.compile(r"^(?:by|posted|published|updated|written)\b|\b\d{1,2}:\d{2}\s?[ap]\.?m\b", re.I)
BYLINE_CHARS = 200
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def _text_of(element) -> str:
    """Visible text of an element's subtree, words across inline tags kept whole."""
    chunks: list[str] = []
    _collect(element, chunks)
    return " ".join("".join(chunks).split())


def _collect(element, chunks: list[str]) -> None:
    tag = element.tag if isinstance(element.tag, str) else ""
    if tag in INVISIBLE_TAGS:
        return
    spaced = tag not in INLINE_TAGS
    if spaced:
        chunks.append(" ")
    if element.text:
        chunks.append(element.text)
    for child in element:
        _collect(child, chunks)
        if child.tail:
            chunks.append(child.tail)
    if spaced:
        chunks.append(" ")


def _has_more_words(element, limit: int) -> bool:
    """Whether `_text_of(element)` has more than `limit` words, reading no further than needed:
    the block before an image may hold the whole article. (A cut-off start never has more
    words than the whole text, so a start with too many decides.)"""
    chunks, length, checked = [], 0, 2 * limit
    for chunk in _chunks(element):
        chunks.append(chunk)
        length += len(chunk)
        if length > checked:  # `limit` words and the spaces between them need at least 2 * limit chars
            if len("".join(chunks).split()) > limit:
                return True
            checked = 2 * length
    return len("".join(chunks).split()) > limit


def _has_text(element) -> bool:
    """Whether `_text_of(element)` is not empty, stopping at the first visible word."""
    tag = element.tag if isinstance(element.tag, str) else ""
    if tag in INVISIBLE_TAGS:
        return False
    if element.text and not element.text.isspace():
        return True
    for child in element:
        if _has_text(child) or (child.tail and not child.tail.isspace()):
            return True
    return False


def _is_block(element) -> bool:
    tag = element.tag if isinstance(element.tag, str) else ""
    return bool(tag) and tag not in INLINE_TAGS and tag != "br" and tag not in _IMAGES


def _holds_image(element) -> bool:
    tag = element.tag if isinstance(element.tag, str) else ""
    return tag in _IMAGES or any(True for _ in element.iter(*_HELD_IMAGES))


def _anchor(image):
    """The image, or the inline wrappers (link, picture, span) around it that hold nothing else."""
    anchor = image
    while True:
        parent = anchor.getparent()
        if parent is None or (_is_block(parent) and parent.tag != "picture"):
            return anchor
        others = (parent.text or "").strip() or any(
            child is not anchor and (_has_text(child) or _holds_image(child)) for child in parent)
        if others or any((child.tail or "").strip() for child in parent if child is not anchor):
            return anchor
        anchor = parent


def in_chrome(element) -> bool:
    """Whether an element sits in navigation, a sidebar, a footer, comments or share widgets."""
    return ChromeTest()(element)


def _own_chrome(node) -> bool:
    """Whether an element itself is navigation, a sidebar... (:func:`in_chrome` without its ancestors)."""
    if node.tag in _CHROME_TAGS:
        return True
    names = node.get("class") or node.get("id")
    return bool(names) and _chrome_name(names + " " + (node.get("id") or ""))


class ChromeTest:
    """:func:`in_chrome` for many elements of one tree, each element looked at once.

    The images of a page share most of their ancestors; what is known of one is kept for the
    next. Make one per page: the elements it holds keep their tree alive.
    """

    def __init__(self):
        # Answers so far: by element, and by node address for the compiled walks (image_texts).
        self.known: dict = {}

    def __call__(self, element) -> bool:
        below = []  # elements whose answer is their nearest decided ancestor's
        node, answer = element, False
        while node is not None:
            known = self.known.get(node)
            if known is not None:
                answer = known
                break
            if node.tag in ("body", "html"):
                break  # their classes describe the page's layout ("one-sidebar"), not the image's place
            below.append(node)
            if _own_chrome(node):
                answer = True
                break
            node = node.getparent()
        for node in below:
            self.known[node] = answer
        return answer


@functools.lru_cache(maxsize=16384)
def _chrome_name(names: str) -> bool:
    """Whether a class and id string names navigation, a sidebar... (pages repeat the same few)."""
    return _CHROME_NAME.search(names.lower()) is not None


def _line_after(anchor) -> str:
    """Text after the image up to the next block, image or paragraph break (two `<br>`)."""
    chunks = [anchor.tail or ""]
    breaks = 0
    for sibling in anchor.itersiblings():
        tag = sibling.tag if isinstance(sibling.tag, str) else ""
        if tag == "br":
            breaks += 1
            if breaks >= 2 and "".join(chunks).strip():
                break
            chunks.append(" ")
        elif _is_block(sibling) or _holds_image(sibling):
            break
        else:
            breaks = 0
            chunks.append(_text_of(sibling))
        chunks.append(sibling.tail or "")
    return " ".join("".join(chunks).split())


def _line_before(anchor) -> str:
    """Text before the image back to the previous block, image or paragraph break."""
    chunks = []
    for sibling in anchor.itersiblings(preceding=True):
        chunks.append(sibling.tail or "")
        tag = sibling.tag if isinstance(sibling.tag, str) else ""
        if tag == "br":
            chunks.append(" ")
        elif _is_block(sibling) or _holds_image(sibling):
            break
        else:
            chunks.append(_text_of(sibling))
    else:
        parent = anchor.getparent()
        chunks.append((parent.text or "") if parent is not None else "")
    return " ".join("".join(reversed(chunks)).split())


def _block_after(anchor, max_levels: int, read, chrome) -> str:
    """`read(block)` of the first block with text after the image, climbing out of wrappers that
    hold only it; "" at a heading, another image or page chrome."""
    node = anchor
    for _ in range(max_levels):
        for sibling in node.itersiblings():
            tag = sibling.tag if isinstance(sibling.tag, str) else ""
            if tag == "br":
                continue
            if tag in _HEADINGS or _holds_image(sibling) or chrome(sibling):
                return ""
            text = read(sibling)
            if text:
                return text
        parent = node.getparent()
        if parent is None or _has_text(parent) or parent.tag in ("body", "article", "main"):
            return ""
        node = parent
    return ""


def _first_sentence(text: str) -> str:
    return _SENTENCE_END.split(text, 1)[0]


def _last_sentence(text: str) -> str:
    return _SENTENCE_END.split(text)[-1]


def image_caption(image, chrome=in_chrome) -> tuple[str, str]:
    """`(text, kind)`: the caption-like text of an image element, or `("", "")`.

    Kinds, tried in this order: `line` (text beside the image in its own block, up to the
    next block or paragraph break; its first sentence when longer than MAX_CAPTION_WORDS),
    `block` (a short block right after the image), `sentence` (the sentence of a paragraph
    that the image sits in, starting after it, else ending before it). Nothing from
    navigation, sidebars, footers, comments or share widgets.
    """
    if chrome(image):
        return "", ""
    return _caption_at(_anchor(image), chrome)


def _caption_at(anchor, chrome) -> tuple[str, str]:
    after, before = _line_after(anchor), _line_before(anchor)
    # Without a line beside it, the block right after the image (climbing out of wrappers that hold only it).
    block = "" if after or before else _block_after(anchor, MAX_WRAPPER_LEVELS, _text_of, chrome)
    return _caption_of(after, before, block)


def _caption_of(after: str, before: str, block: str) -> tuple[str, str]:
    """:func:`image_caption`'s choice among the line after the image, the line before it and the
    block after it (read only where both lines are empty)."""
    if after and not before:
        words = after.split()
        return (after if len(words) <= MAX_CAPTION_WORDS else _first_sentence(after)), "line"
    if not after and not before:
        block = block if len(block.split()) <= MAX_SIBLING_WORDS else ""  # a longer one is body text
        return (block, "block") if block else ("", "")
    if after:
        return _first_sentence(after), "sentence"
    return _last_sentence(before), "sentence"


def next_sentence(image, max_levels: int = MAX_BODY_WRAPPER_LEVELS, chrome=in_chrome) -> str:
    """The first sentence of the body text right after the image, or "".

    A profile's or a report's first sentence under its photo often says who or what it shows
    ("Tessa Montague, a fifth-year graduate student in the Schier lab, ..."), where the page
    has no caption. Found like the block of :func:`image_caption`, climbing out of wrappers
    that hold only the image, but the block may be a long paragraph; never past a heading or
    another image, never in navigation or sidebars, never a byline or timestamp line.
    """
    if chrome(image):
        return ""
    return _sentence_after(_anchor(image), chrome, max_levels)


def _sentence_after(anchor, chrome, max_levels: int = MAX_BODY_WRAPPER_LEVELS) -> str:
    return _sentence_of(_block_after(anchor, max_levels, _leading_text, chrome))


def _sentence_of(block: str) -> str:
    """The first sentence of the block after an image, unless the block is a byline or timestamp line."""
    return "" if _BYLINE.search(block[:BYLINE_CHARS]) else _first_sentence(block)


def caption_or_next_sentence(image, chrome=in_chrome) -> tuple[str, str]:
    """`(caption, next sentence)`: :func:`image_caption`'s text and, where it is empty,
    :func:`next_sentence`, with the image's place in the tree (chrome, anchor) read once.

    `chrome` answers :func:`in_chrome`; pass one :class:`ChromeTest` for all images of a page.
    """
    if chrome(image):
        return "", ""
    anchor = _anchor(image)
    caption = _caption_at(anchor, chrome)[0]
    return caption, "" if caption else _sentence_after(anchor, chrome)


def _leading_text(element, max_chars: int = MAX_SENTENCE_CHARS) -> str:
    """The start of `_text_of(element)`, read no further than `max_chars`: the block after an image
    may hold the whole article."""
    chunks, length = [], 0
    for chunk in _chunks(element):
        chunks.append(chunk)
        length += len(chunk)
        if length >= max_chars:
            break
    return " ".join("".join(chunks).split())


def _chunks(element):
    """`_collect`'s text pieces, one at a time."""
    tag = element.tag if isinstance(element.tag, str) else ""
    if tag in INVISIBLE_TAGS:
        return
    spaced = tag not in INLINE_TAGS
    if spaced:
        yield " "
    if element.text:
        yield element.text
    for child in element:
        yield from _chunks(child)
        if child.tail:
            yield child.tail
    if spaced:
        yield " "


def preceding_heading(image, max_levels: int = MAX_WRAPPER_LEVELS, chrome=in_chrome) -> str:
    """Text of the nearest heading (h1-h3) above the image in its article, or "".

    A lead photo usually sits right under its story's headline; the headline often names
    what it shows (a person, a dish, a film). Found by walking out of the image's wrappers
    and looking at the elements just before each, never in navigation or sidebars.
    """
    node = image
    for _ in range(max_levels):
        for checked, sibling in enumerate(node.itersiblings(preceding=True)):
            tag = sibling.tag if isinstance(sibling.tag, str) else ""
            if checked >= 4 or (tag and _holds_image(sibling)):
                return ""
            if tag in _HEADLINES:
                return "" if chrome(sibling) else _text_of(sibling)
            headings = list(sibling.iter(*_HEADLINES)) if tag else []  # document order, as XPath gives
            if headings:
                return "" if chrome(headings[-1]) else _text_of(headings[-1])
            if _has_more_words(sibling, MAX_SIBLING_WORDS):
                return ""  # body text between them: the heading is not this image's
        node = node.getparent()
        if node is None or node.tag in ("body", "html"):
            return ""
    return ""


# The walks above compiled (`lait.filters._dom`), where built (lait.extensions): image_texts
# takes them; the functions above are their definition and run wherever they were not built.
_dom = compiled("lait.filters._dom")
if _dom is not None:
    _dom.set_context_kinds(_IMAGES, _HELD_IMAGES, _HEADINGS, _HEADLINES, _CHROME_TAGS, _chrome_name)


def image_texts(image, chrome: ChromeTest) -> tuple[str, str, str]:
    """`(caption, next sentence, headline)` of an image: :func:`caption_or_next_sentence` and
    :func:`preceding_heading`, with one :class:`ChromeTest` for all images of a page."""
    if _dom is None:
        return (*caption_or_next_sentence(image, chrome), preceding_heading(image, chrome=chrome))
    lines = _dom.caption_lines(image, chrome.known, MAX_WRAPPER_LEVELS)
    caption = sentence = ""
    if lines is not None:
        caption = _caption_of(*lines)[0]
        if not caption:
            sentence = _sentence_of(_dom.leading_text_after(image, chrome.known, MAX_BODY_WRAPPER_LEVELS,
                                                            MAX_SENTENCE_CHARS))
    return caption, sentence, _dom.preceding_heading(image, chrome.known, MAX_WRAPPER_LEVELS, MAX_SIBLING_WORDS)
