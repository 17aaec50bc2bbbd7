"""Caption text from an image's place in the tree, and the headline above it (lait.filters.image_context)."""

import lxml.etree
import lxml.html
import pytest

from lait.filters import image_context
from lait.filters.image_context import image_caption, in_chrome, next_sentence, preceding_heading
from lait.filters.page import PageParser, parse_html
from lait.scoring.dominant_image import extract_candidates, rendition_path


def _image(markup: str):
    return lxml.html.fromstring(f"<html><body>{markup}</body></html>").find(".//img")


@pytest.mark.parametrize("markup, expected", [
    # a caption line under the photo in its own block, after a <br>, words across tags kept whole
    ('<div><img src="a.jpg"><br><b class="small">(l to r) Ann Lee and Bo Chan</b></div>',
     ("(l to r) Ann Lee and Bo Chan", "line")),
    ('<div><img src="a.jpg">Ju<span>ne</span> 4 at the lab</div>', ("June 4 at the lab", "line")),
    # WordPress: a caption paragraph right after the linked image
    ('<div class="wp-caption"><a href="x"><img src="a.jpg"></a><p class="wp-caption-text">A heron at dawn</p></div>',
     ("A heron at dawn", "block")),
    # CMS wrappers several levels deep, the caption in the next field
    ('<div class="field"><div class="items"><div class="item"><img src="a.jpg"></div></div></div>'
     '<div class="field"><div class="items"><div class="item"><p>Fellows met the ambassador.</p></div></div></div>',
     ("Fellows met the ambassador.", "block")),
    # an image inside a paragraph: the sentence that follows it, not the paragraph
    ('<p>The roof garden opened in May. <img src="a.jpg"> Bees forage on the lavender there. Hives are '
     'checked weekly.</p>', ("Bees forage on the lavender there.", "sentence")),
    # a long paragraph after the image is body text, not a caption
    ('<div><img src="a.jpg"></div><p>' + "word " * 60 + '</p>', ("", "")),
    # nothing from navigation
    ('<nav><a href="/"><img src="logo.png"></a> Home About Contact</nav>', ("", "")),
])
def test_image_caption(markup, expected):
    assert image_caption(_image(markup)) == expected


def test_the_page_chrome_never_becomes_the_caption():
    markup = ('<div id="menu">Home About Books Film</div><div class="byline">Posted by Jo on June 4</div>'
              '<div class="entry"><img src="a.jpg"></div><div class="sidebar">Follow us</div>')
    assert image_caption(_image(markup)) == ("", "")


def test_body_layout_classes_are_not_chrome():
    root = lxml.html.fromstring('<html><body class="one-sidebar"><div><img src="a.jpg"></div></body></html>')
    assert not in_chrome(root.find(".//img"))


def test_preceding_heading_is_the_headline_right_above():
    markup = ('<h1>Site</h1><article><div class="title"><h3>Lemon shark cupcakes</h3><p>Posted by Jo</p></div>'
              '<div class="feature"><img src="a.jpg"></div><p>Text.</p></article>')
    assert preceding_heading(_image(markup)) == "Lemon shark cupcakes"
    assert preceding_heading(_image('<h2>Story</h2><p>' + "word " * 60 + '</p><img src="a.jpg">')) == ""
    # 40 words between them are not yet body text; 41 are, also where tags split a word
    forty = "<p>" + "word " * 39 + "la<b>st</b></p>"
    assert preceding_heading(_image(f'<h2>Story</h2>{forty}<img src="a.jpg">')) == "Story"
    assert preceding_heading(_image(f'<h2>Story</h2>{forty.replace("<p>", "<p>one ")}<img src="a.jpg">')) == ""


def test_rendition_path_matches_across_hosts_and_sizes():
    assert rendition_path("https://example.com/cdn.example.org/2011/02/heron-640x480.jpg?w=300") == \
        rendition_path("https://cdn.example.org/2011/02/heron.jpg")
    assert rendition_path("https://example.com/a/photo.jpg") is None  # too generic to match anything


def test_meta_image_merges_with_its_body_rendition():
    html = ('<html><head><meta property="og:image" content="https://cdn.example.org/2011/02/heron-at-dawn.jpg">'
            '</head><body><h1>Birds</h1><div><img src="/cdn.example.org/2011/02/heron-at-dawn.jpg?w=640" '
            'alt="A grey heron standing in the reeds at dawn"></div><p>' + "Text about birds. " * 10 + '</p></body></html>')
    page = PageParser(languages=None).parse(html.encode(), "https://example.com/birds/")
    found = extract_candidates(page)
    meta = [c for c in found.candidates if "meta" in c.sources]
    assert len(meta) == 1 and meta[0].alt == "A grey heron standing in the reeds at dawn"
    assert meta[0].named_url == "https://cdn.example.org/2011/02/heron-at-dawn.jpg"


def test_next_sentence_is_the_first_sentence_of_the_body_text_after_the_image():
    body = ("Tessa Montague, a graduate student in the Schier lab, is not afraid of work. She runs a zebrafish "
            "lab for visiting students. " + "More words. " * 40)
    portrait = f'<div class="story"><div class="float"><img src="tm.png"></div><p>{body}</p></div>'
    assert next_sentence(_image(portrait)) == "Tessa Montague, a graduate student in the Schier lab, is not afraid of work."
    # out of many wrappers that hold only the image (Drupal paragraphs), to the next field's text
    nested = "<div><div><div><div><div><div><div><img src='a.jpg'></div></div></div></div></div></div></div>"
    assert next_sentence(_image(nested + "<div><p>Robert Hull met four alumni in Burundi. Later...</p></div>")) == \
        "Robert Hull met four alumni in Burundi."
    # never past a heading or another image, never from navigation, never from the image's own block text
    assert next_sentence(_image('<div><img src="a.jpg"></div><h2>Next story</h2><p>Ann Lee won.</p>')) == ""
    assert next_sentence(_image('<div><img src="a.jpg"></div><div><img src="b.jpg"></div><p>Ann Lee won.</p>')) == ""
    assert next_sentence(_image('<nav><img src="a.jpg"><p>Ann Lee won.</p></nav>')) == ""
    assert next_sentence(_image('<p>Intro text. <img src="a.jpg"></p><p>Ann Lee won.</p>')) == ""
    # a byline or timestamp line names the writer, not who the photo shows
    for byline in ("Robert Brum and Isabel Keane Monday Mar 16, 2020 at 3:44 AM Rockland County Executive Ed Day said.",
                   "By Ann Lee. Ann Lee is a reporter."):
        assert next_sentence(_image(f'<div><img src="a.jpg"></div><p>{byline}</p>')) == ""


# The compiled walks (image_texts, lait.filters._dom) against their Python definitions: every
# element of a page, one ChromeTest a page for each, as DetectDominantImage's features use them.
CONTEXT_PAGES = [
    '<nav class="site-nav"><a href="/"><img src="logo.png"></a> Home</nav><article><h2>Story</h2>'
    '<div class="wp-caption"><a href="x"><img src="a.jpg"></a><p class="wp-caption-text">A heron</p></div>'
    '<p>Intro. <img src="b.jpg"> Bees forage there. Hives are checked.</p><div><img src="c.jpg"><br>'
    '<b>(l to r) Ann</b><br><br>next</div></article><aside>Follow us <img src="d.jpg"></aside>',
    '<div id="sidebar"><h3>Side</h3><img src="s.jpg"></div><main><div><div><img src="m.jpg"></div></div>'
    '<div><p>By Ann Lee. A reporter.</p></div><picture><source srcset="p.jpg"><img src="p.jpg"></picture>'
    'Caption <i>after</i> the picture</main><footer><img src="f.jpg">© 2020</footer>',
    '<div>text before <!-- a comment --> <img src="a.jpg"> and after &amp; <span>more</span></div>'
    '<h1>Zürich café</h1><div class="Sidebar-Widget"><p>東京 🙂 x&nbsp;y\u00a0z\u2003w</p><img src="b.jpg"></div>'
    '<div><iframe src="v.html"></iframe><img src="c.jpg"><video src="v.mp4"></video></div>'
    '<table><tr><td><img src="t.jpg"></td><td>Cell text. Second sentence.</td></tr></table>',
    '<div class="post">' + '<div>' * 12 + '<img src="deep.jpg">' + '</div>' * 12 + '<p>' + 'word ' * 45
    + '</p></div><h2>Next</h2><p>' + 'Sentence one is here. ' * 80 + '</p><img src="late.jpg">'
    '<script>var x = "<img>";</script><noscript><img src="n.jpg"></noscript><br><br><br><img src="z.jpg">',
    # four elements between a heading and the image, and three
    '<div><h2>Far</h2><i>a</i><i>b</i><i>c</i><i>d</i><img src="a.jpg"></div>'
    '<div><h3>Near</h3><i>a</i><i>b</i><i>c</i><img src="b.jpg"></div>',
]


def _assert_image_texts_equal(elements) -> int:
    """How many of `elements` (of one page) were compared."""
    if image_context._dom is None:
        pytest.skip("the C extension is not built (tests/test_extensions.py says why)")
    python, compiled, checked = image_context.ChromeTest(), image_context.ChromeTest(), 0
    for element in elements:
        expected = (*image_context.caption_or_next_sentence(element, python),
                    image_context.preceding_heading(element, chrome=python))
        assert image_context.image_texts(element, compiled) == expected, lxml.html.tostring(element)[:200]
        checked += 1
    return checked


def _parsed(html: str) -> list:
    """The trees ParsePages and lxml.html build, and one with comments and PIs kept."""
    roots = [parse_html(html), lxml.html.fromstring(html),
             lxml.etree.fromstring(html, lxml.etree.HTMLParser(remove_comments=False, remove_pis=False))]
    return [root for root in roots if root is not None]


@pytest.mark.parametrize("markup", CONTEXT_PAGES)
def test_compiled_image_texts_equal_their_python_definitions(markup):
    for root in _parsed(f"<html><head><title>t</title></head><body>{markup}</body></html>"):
        assert _assert_image_texts_equal(root.iter()) > 10


def _context_soup(rng) -> str:
    """Random markup of what captions and headings are read from: blocks, inline wrappers, breaks,
    headings, images and frames, chrome by tag and by class, comments and entities."""
    from tests.conftest import tag_soup

    tags = ["div", "p", "span", "a", "b", "h1", "h2", "h4", "figure", "picture", "nav", "aside", "article", "main",
            "section", "li", "script", "noscript", "footer", "td"]
    words = ["Ann Lee won.", "By Jo", "café 東京", " ", "\n", "word " * 25, "&amp;", "<!-- c -->", "x&nbsp;y",
             "Two. Sentences here.", "\u2003"]
    singles = ["<img src=a.jpg>", "<br>", "<br><br>", "<iframe src=f></iframe>", "<input type=image src=d.png>",
               "<svg></svg>", "<hr>"]
    attributes = ("", " class='sidebar'", " id='main-nav'", " class='entry-content'", " class='caption'")
    return tag_soup(rng, tags, words, singles, attributes, single_share=0.2, depth=7)


def test_compiled_image_texts_equal_their_python_definitions_on_random_markup():
    import random

    rng = random.Random(11)
    for _ in range(300):
        for root in _parsed(f"<html><body>{_context_soup(rng)}</body></html>"):
            _assert_image_texts_equal(root.iter())


def test_compiled_image_texts_equal_their_python_definitions_on_every_shared_page():
    from tests.conftest import shared_pages

    checked, parser = 0, PageParser(languages=None)
    for row, content in shared_pages():
        page = parser.parse(content, row["url"])
        if not isinstance(page, tuple):
            checked += _assert_image_texts_equal(element for element, *_ in page.scan.images)
    assert checked > 50_000
