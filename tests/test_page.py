"""lait.filters.page: charsets, tolerant bounded parsing, visible text, language."""

from __future__ import annotations

import codecs

import lxml.etree
import lxml.html
import pytest

from lait.filters.page import (
    BodyScan,
    PageParser,
    body_of,
    decode_html,
    index_elements,
    page_title,
    parse_html,
    scan_body,
    visible_text,
    walk_body,
)

ARTICLE_EN = (
    "The city council voted on Tuesday to expand the riverside park by twelve acres, adding walking "
    "trails, a playground and a community garden. Construction is expected to begin next spring and "
    "to take about eighteen months, according to the parks department."
)
ARTICLE_DE = (
    "Der Stadtrat hat am Dienstag beschlossen, den Park am Flussufer um zwölf Hektar zu erweitern. "
    "Geplant sind Wanderwege, ein Spielplatz und ein Gemeinschaftsgarten. Die Bauarbeiten sollen im "
    "nächsten Frühjahr beginnen und etwa achtzehn Monate dauern, teilte das Gartenamt mit."
)


def html_page(body: str, head: str = "<title>Park expansion approved</title>") -> str:
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>"


@pytest.fixture(scope="module")
def parser() -> PageParser:
    return PageParser(languages=("en",), min_language_score=0.5, max_page_bytes=200_000)


def test_charset_from_http_header_wins_over_guessing():
    text = html_page("<p>Café crème à São Paulo</p>").encode("cp1252", "replace")
    decoded, codec = decode_html(text, "text/html; charset=windows-1252")
    assert "Café crème" in decoded
    assert codec == "cp1252"


def test_charset_from_meta_tag():
    text = html_page("<p>Привет, мир</p>", head='<meta charset="windows-1251"><title>t</title>').encode("cp1251")
    decoded, codec = decode_html(text)
    assert "Привет, мир" in decoded
    assert codec == "cp1251"


def test_wrong_header_charset_falls_back_instead_of_crashing():
    # The server says UTF-8 but the bytes are Latin-1: strict UTF-8 fails, detection takes over.
    text = html_page("<p>Smörgåsbord und Müsli für alle Gäste im Hotel</p>").encode("latin-1")
    decoded, _ = decode_html(text, "text/html; charset=utf-8")
    assert "Smörgåsbord" in decoded


def test_byte_order_mark_decides():
    text = codecs.BOM_UTF16_LE + html_page("<p>naïve résumé</p>").encode("utf-16-le")
    decoded, codec = decode_html(text, "text/html; charset=iso-8859-1")
    assert "naïve résumé" in decoded
    assert codec == "utf-16-le"


def test_visible_text_leaves_out_scripts_styles_and_comments():
    root = parse_html(html_page(
        "<style>p{color:red}</style><p>Hello <b>big</b> world</p><script>var x = 'hidden';</script>"
        "<!-- a comment --><div>Second block</div><noscript>enable js</noscript>"))
    text = visible_text(root)
    assert text == "Hello big world Second block"
    assert page_title(index_elements(root)["title"]) == "Park expansion approved"


def test_scan_body_records_image_positions_and_paragraphs():
    root = parse_html(html_page(f"<h1>Title</h1><img src='a.jpg'><p>{ARTICLE_EN}</p>"
                                "<noscript><img src='b.jpg'></noscript>"))
    scan = scan_body(root)
    assert [(img.get("src"), in_noscript) for img, _, _, in_noscript in scan.images] == [("a.jpg", False),
                                                                                         ("b.jpg", True)]
    offset_a = scan.images[0][1]
    assert scan.h1_offset <= offset_a
    assert scan.paragraphs and scan.paragraphs[0][0] >= offset_a


def test_english_page_is_kept_with_language(parser):
    page = parser.parse(html_page(f"<p>{ARTICLE_EN}</p>").encode(), "https://news.example.com/park")
    assert not isinstance(page, tuple)
    assert page.language == "en" and page.language_score > 0.5
    assert page.title == "Park expansion approved"
    assert ARTICLE_EN[:40] in page.text


def test_non_english_page_is_dropped_with_reason_language(parser):
    result = parser.parse(html_page(f"<p>{ARTICLE_DE}</p>").encode(), "https://news.example.de/park")
    assert isinstance(result, tuple)
    assert result[:2] == (False, "language")
    assert result[2].startswith("de")


def test_german_is_kept_when_asked_for():
    parser = PageParser(languages=("en", "de"))
    page = parser.parse(html_page(f"<p>{ARTICLE_DE}</p>").encode(), "https://news.example.de/park")
    assert not isinstance(page, tuple) and page.language == "de"


def test_language_sample_whitespace_becomes_single_spaces(parser):
    import random
    import re

    spaces = " \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u1680\u2003\u2028\u3000"
    rng = random.Random(0)
    for _ in range(200):
        text = "".join(rng.choice(spaces + "ab\u00e9\u200b") for _ in range(rng.randint(0, 30)))
        assert parser.identifier._prepare(text) == re.sub(r"\s+", " ", text).strip()  # what fastText reads


def test_oversized_page_is_dropped_before_parsing(parser):
    big = html_page("<p>" + "word " * 60_000 + "</p>").encode()
    assert parser.parse(big, "https://example.com/")[:2] == (False, "page_too_large")


@pytest.mark.parametrize("content", [
    b"",
    b"\x00\x00\x00",
    b"\xff\xfe\xfa garbage \x80\x81",
    b"<?xml version='1.0' encoding='utf-8'?><html><body><p>" + ARTICLE_EN.encode() + b"</p></body></html>",
    b"<html><body><div><p>" + ARTICLE_EN.encode() + b"<table><tr><td>unclosed <b>tags <i>everywhere",
    b"<html><head><title>only a title",
    b"<<<>>><html<body>></p></div></span>",
])
def test_broken_input_never_crashes(parser, content):
    result = parser.parse(content, "https://example.com/")
    if isinstance(result, tuple):
        assert result[0] is False and result[1] in ("parse_error", "no_text", "language")
    else:
        assert result.root is not None


@pytest.mark.parametrize("content", [
    html_page(f"<p>{ARTICLE_EN} \u2019quoted\u2019</p>").encode(),
    html_page(f"<p>{ARTICLE_EN}\x00 with\x00 NUL characters</p>").encode(),
    html_page(f"<p>{ARTICLE_EN} \ufffd a replacement character the page itself has</p>").encode(),
    codecs.BOM_UTF8 + html_page(f"<p>{ARTICLE_EN} caf\u00e9</p>").encode(),
    html_page(f"<p>{ARTICLE_EN} caf\u00e9</p>").encode() + b"\xff\xfe broken UTF-8",
    html_page(f"<p>{ARTICLE_EN} caf\u00e9</p>").encode("cp1252"),
    b"<?xml version='1.0' encoding='latin-1'?>" + html_page(f"<p>{ARTICLE_EN} \u2019</p>").encode(),
])
def test_a_page_parsed_from_its_own_bytes_equals_it_parsed_from_its_text(parser, content):
    # PageParser hands libxml2 the page's bytes where they are its text's UTF-8: the tree
    # must be the one its decoded text gives.
    from lait.filters.page import _decode

    text, codec, exact = _decode(content, None)
    assert (text, codec) == decode_html(content)
    assert not exact or text.encode(codec) == content  # "exact": the bytes are the text in that codec
    page = parser.parse(content, "https://example.com/")
    from_text = parse_html(text)
    assert lxml.etree.tostring(page.root) == lxml.etree.tostring(from_text)


def test_unclosed_markup_still_gives_text(parser):
    content = b"<html><body><div><p>" + ARTICLE_EN.encode() + b"<table><tr><td>unclosed <b>tags"
    page = parser.parse(content, "https://example.com/")
    assert not isinstance(page, tuple)
    assert "unclosed tags" in page.text


def test_base_href_is_used_for_resolution(parser):
    page = parser.parse(html_page(f"<p>{ARTICLE_EN}</p>", head='<base href="/static/"><title>t</title>').encode(),
                        "https://example.com/news/story.html")
    assert page.base_url == "https://example.com/static/"


def test_a_story_without_paragraph_tags_is_identified_by_its_text():
    story = ("Researchers in the laboratory have now found that the retina adjusts to such a change and learns "
             "to suppress the commonplace vertical features while highlighting the rare horizontal ones. ") * 3
    html = (f"<html><body><div class='crumbs'><p>News : 2005 : La Retina</p></div>"
            f"<div>{story}<br><br>{story}</div></body></html>")
    page = PageParser().parse(html.encode(), "https://example.com/story")
    assert not isinstance(page, tuple) and page.language == "en"


# Pages for the compiled walks' corner cases: inline and block nesting, skipped subtrees and their
# tails, <noscript> images, paragraphs around the length limit, the first <h1> only, text around
# comments, non-ASCII text (offsets count characters, not bytes), itemprop=image on any element.
WALK_PAGES = [
    html_page(f"<h1>Title</h1><img src='a.jpg'><p>{ARTICLE_EN}</p><noscript><p><img src='b.jpg'></p></noscript>"),
    html_page("<div>a<b>b</b>c<script>x</script>d<style>y</style>e<span>f<i>g</i></span>h</div>tail<br>"
              "<h1>first</h1><h1>second</h1><input type=image src=i.png><picture><source srcset=s.jpg>"
              "<img src=p.jpg></picture><svg><image href=v.png /></svg>after"),
    html_page("<!-- before --><p>Zürich café — naïve “quotes” 東京 🙂 " + "x" * 80 + "</p><!-- between -->text"
              "<ul><li>" + "é" * 79 + "</li><li>" + "é" * 80 + "</li></ul><td>cell</td><blockquote><p>"
              + ARTICLE_EN + "</p></blockquote>" + "".join(f"<p>{i} {ARTICLE_EN}</p>" for i in range(7))),
    html_page("<div itemprop=image><img itemprop=image src=x.jpg></div><span itemprop='image' "
              "content='/y.jpg'>s</span><a itemprop='images'>no</a><b itemprop='&#105;mage'>yes</b>",
              head="<title>t</title><meta itemprop=image content=/m.jpg><link itemprop=image href=/l.jpg>"
                   "<base href=/b/><script type='application/ld+json'>{}</script>"),
    html_page("<div>" * 200 + "<p>deep " + ARTICLE_EN + "</p><img src=d.jpg>" + "</div>" * 200),
    "<html><head><title>No body</title></head><frameset><frame src=f.html></frameset></html>",
    html_page("<template><img src=t.jpg></template><noscript>plain <img src=n1.jpg> and <img src=n2.jpg></noscript>"
              "<video poster=v.jpg><source src=v.mp4></video><iframe>inner</iframe>end"),
]


def _python_walks(monkeypatch):
    import lait.filters.page as page

    monkeypatch.setattr(page, "_dom", None)


def _assert_walks_equal(root, monkeypatch, max_chars=(100_000, 300)):
    import lait.filters.page as page

    if page._dom is None:
        pytest.skip("the C extension is not built (tests/test_extensions.py says why)")
    body = body_of(root)
    for limit in max_chars:
        compiled = BodyScan(*page._dom.scan(body, limit, 80))
        assert compiled == walk_body(body, limit)
    compiled = index_elements(root)
    with monkeypatch.context() as patch:
        _python_walks(patch)
        assert index_elements(root) == compiled


@pytest.mark.parametrize("html", WALK_PAGES)
def test_compiled_walks_equal_their_python_definitions(html, monkeypatch):
    for root in (parse_html(html), lxml.html.fromstring(html),
                 lxml.etree.fromstring(html, lxml.etree.HTMLParser(remove_comments=False, remove_pis=False))):
        _assert_walks_equal(root, monkeypatch)


def test_compiled_walks_read_xhtml_namespaces_as_lxml_does(monkeypatch):
    root = lxml.etree.fromstring('<html xmlns="http://www.w3.org/1999/xhtml"><body><p>one <img src="a.jpg"/> two'
                                 '</p><script>x</script><h1>h</h1></body></html>')
    _assert_walks_equal(root, monkeypatch)


def test_compiled_walks_equal_their_python_definitions_on_every_shared_page(monkeypatch):
    from tests.conftest import shared_pages

    checked = 0
    for _, content in shared_pages():
        root = parse_html(decode_html(content)[0])
        if root is not None:
            _assert_walks_equal(root, monkeypatch, max_chars=(100_000,))
            checked += 1
    assert checked > 1000


def _tag_soup(rng) -> str:
    """Random markup: visible, inline, invisible, image and paragraph tags, multi-byte text,
    comments and stray end tags, nested a few levels."""
    from tests.conftest import tag_soup

    tags = ["div", "p", "li", "span", "b", "a", "h1", "td", "script", "style", "noscript", "template", "svg", "pre",
            "blockquote", "section", "ul", "figure", "picture"]
    words = ["plain", "café", "東京", "🙂", " ", "\n", "a" * 90, "&amp;", "<!-- c -->", "</p>", "x&nbsp;y"]
    singles = ["<img src=a.jpg>", "<img itemprop=image src=b.png>", "<source srcset=c.jpg>",
               "<input type=image src=d.png>", "<br>", "<meta itemprop=image content=e.jpg>"]
    return tag_soup(rng, tags, words, singles)


def test_compiled_walks_equal_their_python_definitions_on_random_markup(monkeypatch):
    import random

    rng = random.Random(7)
    for _ in range(300):
        html = html_page(_tag_soup(rng)) if rng.random() < 0.8 else _tag_soup(rng)
        for root in (parse_html(html),
                     lxml.etree.fromstring(html, lxml.etree.HTMLParser(remove_comments=False, remove_pis=False))):
            if root is not None:
                _assert_walks_equal(root, monkeypatch, max_chars=(100_000, 120))
