"""lait.scoring.dominant_image: candidates from every place a page names an image, the ranker, the decision."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lait.filters.page import PageParser
from lait.pipeline.in_process_runner import InProcessRunner
from lait.scoring.dominant_image import (
    DEFAULT_MODEL_PATH,
    FEATURE_NAMES,
    DominantImageDetector,
    DominantImageRanker,
    candidates_from_record,
    extract_candidates,
    image_key,
    page_record_candidates,
    parse_srcset,
    weak_labels,
)
from lait.scoring.dominant_image.candidates import unusable_body_rows

URL = "https://news.example.com/2024/05/park-expansion-approved"
TEXT = (
    "The city council voted on Tuesday to expand the riverside park by twelve acres, adding walking "
    "trails, a playground and a community garden. Construction is expected to begin next spring."
)
CHROME = """
<header class="site-header"><a href="/"><img class="site-logo" src="/static/logo.png" alt="Example News"></a>
<nav><img src="/static/icons/search.svg" width="16" height="16"></nav></header>
"""
FOOTER = """
<footer><img src="https://pixel.tracker.example.net/p.gif?id=42" width="1" height="1">
<a href="https://twitter.com/example"><img class="share-icon" src="/static/twitter.png" width="24"></a></footer>
"""


def page_html(body: str, head: str = "") -> bytes:
    return (f"<!DOCTYPE html><html><head><title>Park expansion approved | Example News</title>{head}</head>"
            f"<body>{CHROME}<main><article><h1>Park expansion approved</h1>{body}<p>{TEXT}</p>"
            f"<p>{TEXT}</p></article></main>{FOOTER}</body></html>").encode()


@pytest.fixture(scope="module")
def parser() -> PageParser:
    return PageParser(languages=None)


@pytest.fixture(scope="module")
def detector() -> DominantImageDetector:
    return DominantImageDetector()


def detect(parser, detector, html: bytes, url: str = URL) -> dict:
    return detector.detect(parser.parse(html, url))


def test_feature_count_and_names_are_unique():
    assert len(FEATURE_NAMES) >= 40
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)


def test_srcset_parsing_and_largest_candidate(parser):
    assert parse_srcset("a.jpg 320w, b.jpg 1024w,c.jpg 640w") == [("a.jpg", 320.0, "w"), ("b.jpg", 1024.0, "w"),
                                                                  ("c.jpg", 640.0, "w")]
    html = page_html('<figure><img src="/img/park-320.jpg" srcset="/img/park-320.jpg 320w, /img/park-1600.jpg 1600w, '
                     '/img/park-800.jpg 800w" alt="The riverside park"><figcaption>The park today.</figcaption></figure>')
    found = extract_candidates(parser.parse(html, URL))
    park = [c for c in found.candidates if "park" in c.url]
    assert len(park) == 1, "renditions of one image are one candidate"
    assert park[0].url == "https://news.example.com/img/park-1600.jpg"
    assert park[0].figcaption == "The park today."


def test_density_descriptors_give_the_width_only_with_the_1x_width(parser):
    # "2x" says how sharp the image is, not how wide: an author's 94 px headshot is not 2000 px.
    html = page_html('<img src="/a/head.jpg?w=94" srcset="/a/head.jpg?w=94 1x, /a/head.jpg?w=188 2x">'
                     '<img src="/a/logo.png" width="120" srcset="/a/logo@2x.png 2x">'
                     '<img src="/a/mark.png" srcset="/a/mark@3x.png 3x">')
    widths = {c.url.rsplit("/", 1)[1]: c.srcset_width for c in extract_candidates(parser.parse(html, URL)).candidates
              if "/a/" in c.url}
    assert widths == {"head.jpg?w=188": 188.0, "logo@2x.png": 240.0, "mark@3x.png": 0.0}


def test_an_unknown_lazy_load_attribute_names_the_image(parser):
    html = page_html('<img class="lazy" data-img-url="/media/2024/harbour.jpg?w=800" alt="The harbour">'
                     '<img src="/media/2024/quay.jpg" data-pin-media="/media/2024/quay-full.jpg" alt="The quay">')
    urls = [c.url for c in extract_candidates(parser.parse(html, URL)).candidates if "/media/" in c.url]
    # The first has nothing else to show; the second has its own src, which stays its URL.
    assert urls == ["https://news.example.com/media/2024/harbour.jpg?w=800",
                    "https://news.example.com/media/2024/quay.jpg"]


def test_lazy_load_attributes_replace_placeholders(parser, detector):
    html = page_html(
        '<img class="lazyload" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" '
        'data-src="/media/2024/park-aerial.jpg" alt="Aerial view of the park" width="1200" height="675">'
        '<img src="/static/blank.gif" data-lazy-srcset="/media/a-400.jpg 400w, /media/a-900.jpg 900w">')
    found = extract_candidates(parser.parse(html, URL))
    urls = [c.url for c in found.candidates]
    assert "https://news.example.com/media/2024/park-aerial.jpg" in urls
    assert "https://news.example.com/media/a-900.jpg" in urls
    assert not any(u.startswith("data:") or u.endswith("blank.gif") for u in urls)
    result = detector.detect(parser.parse(html, URL))
    assert result["image_url"] == "https://news.example.com/media/2024/park-aerial.jpg"
    assert result["dominant_source"] == "img"
    assert result["alt"] == "Aerial view of the park"


def test_base_href_resolves_relative_images(parser):
    html = page_html('<img src="photos/park.jpg" width="900" height="600">', head='<base href="https://cdn.example.org/a/">')
    found = extract_candidates(parser.parse(html, URL))
    assert "https://cdn.example.org/a/photos/park.jpg" in [c.url for c in found.candidates]


def test_picture_sources_fold_into_their_img(parser):
    html = page_html('<picture><source type="image/webp" srcset="/m/park.webp 1x, /m/park@2x.webp 2x">'
                     '<source srcset="/m/park-wide.jpg" media="(min-width: 800px)">'
                     '<img src="/m/park.jpg" alt="Park"></picture>')
    found = extract_candidates(parser.parse(html, URL))
    body = found.candidates[:found.n_body]
    park = [c for c in body if "/m/park" in c.url]
    assert len(park) == 1 and park[0].url == "https://news.example.com/m/park.jpg"
    assert "source" in park[0].sources and park[0].n_srcset >= 3


def test_json_ld_image_is_used_when_there_is_no_meta_image(parser, detector):
    ld = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": "Park",
          "image": {"@type": "ImageObject", "url": "https://cdn.example.com/park-hero.jpg", "width": 1600}}
    html = page_html("<p>No inline picture here.</p>",
                     head=f'<script type="application/ld+json">{json.dumps(ld)}</script>')
    result = detect(parser, detector, html)
    assert result["image_url"] == "https://cdn.example.com/park-hero.jpg"
    assert result["dominant_source"] == "jsonld"


def test_meta_image_in_value_attribute_merges_with_body_image(parser, detector):
    # Mercury-normalised fixtures keep meta values in `value=`; `www.` and scheme differ from the body.
    head = ('<meta name="og:image" value="http://www.news.example.com/img/park.jpg?w=1200">'
            '<meta property="og:image:alt" content="Walkers in the riverside park">'
            '<meta property="og:title" content="Council expands park">')
    html = page_html('<img src="https://news.example.com/img/park.jpg" alt="Park" width="800" height="450">', head)
    found = extract_candidates(parser.parse(html, URL))
    park = [c for c in found.candidates if "park.jpg" in c.url]
    assert len(park) == 1 and set(park[0].sources) >= {"img", "meta"}
    result = detector.detect(parser.parse(html, URL))
    assert result["dominant_source"] == "meta"
    assert image_key(result["image_url"]) == "news.example.com/img/park.jpg"
    assert result["og_image_alt"] == "Walkers in the riverside park"
    assert result["og_title"] == "Council expands park"
    assert result["alt"] == "Park"
    assert "riverside park" in result["context"]


def test_logo_meta_image_fails_sanity_checks_and_the_dom_decides(parser, detector):
    head = '<meta property="og:image" content="https://news.example.com/static/site-logo-share.png">'
    html = page_html('<figure class="lead-image"><img src="/media/2024/council-vote.jpg" width="1024" height="576" '
                     'alt="Council members vote on the park plan"></figure>', head)
    result = detect(parser, detector, html)
    assert result["image_url"] == "https://news.example.com/media/2024/council-vote.jpg"
    assert result["dominant_source"] == "img"
    assert result["dominant_score"] >= 0.5


def test_pixels_logos_and_icons_are_never_chosen(parser, detector):
    html = page_html('<img src="/ads/banner-300x250.gif" width="300" height="250" class="ad-slot">'
                     '<img src="/static/author-avatar.jpg" class="avatar" width="48" height="48">')
    result = detect(parser, detector, html)
    assert result["image_url"] is None
    assert result["reason"] in ("no_image", "low_score")


def test_page_without_images_gives_none(parser, detector):
    html = (f"<html><head><title>Text only</title></head><body><p>{TEXT}</p></body></html>").encode()
    result = detect(parser, detector, html)
    assert result == {**result, "image_url": None, "reason": "no_image"}


def test_weak_labels_hide_the_meta_image_from_features(parser):
    head = '<meta property="og:image" content="/media/2024/council-vote.jpg">'
    html = page_html('<img src="/media/2024/council-vote.jpg" width="1024" height="576">'
                     '<img src="/media/related/other-story.jpg" width="300" height="200">', head)
    found, labels = weak_labels(parser.parse(html, URL))
    body = found.candidates[:found.n_body]
    assert [c.url.rsplit("/", 1)[-1] for c, y in zip(body, labels) if y] == ["council-vote.jpg"]
    assert found.meta == [] and all("meta" not in c.sources for c in found.candidates)


def test_ranker_matches_scikit_learn_and_round_trips_through_json(tmp_path):
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, len(FEATURE_NAMES))).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 3] * X[:, 5] + rng.normal(scale=0.3, size=400) > 0.4).astype(int)
    ranker = DominantImageRanker(n_estimators=40, max_depth=3, learning_rate=0.1).fit(X, y)
    reference = GradientBoostingClassifier(n_estimators=40, max_depth=3, learning_rate=0.1, subsample=0.8,
                                           random_state=0).fit(X, y)
    np.testing.assert_allclose(ranker.decision_function(X), reference.decision_function(X), rtol=1e-6, atol=1e-6)
    path = tmp_path / "model.json"
    ranker.save(str(path))
    loaded = DominantImageRanker.load(str(path))
    np.testing.assert_allclose(loaded.decision_function(X), ranker.decision_function(X), atol=1e-6)


def test_shipped_model_is_plain_json_with_this_versions_features():
    with open(DEFAULT_MODEL_PATH, encoding="utf-8") as f:
        data = json.load(f)
    assert data["format"] == "lait-gbt-1"
    assert data["feature_names"] == FEATURE_NAMES
    assert data["training"].get("pages", 0) > 100


def test_parse_and_detect_stages_in_a_beam_pipeline():
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from lait.pipeline.dominant_image import DetectDominantImage
    from lait.pipeline.options import LaitOptions
    from lait.pipeline.parse_pages import ParsePages

    german = ("<html><body><p>Der Stadtrat hat am Dienstag beschlossen, den Park am Flussufer um zwölf Hektar zu "
              "erweitern. Geplant sind Wanderwege, ein Spielplatz und ein Gemeinschaftsgarten.</p></body></html>")
    head = '<meta property="og:image" content="/media/2024/council-vote.jpg"><meta property="og:title" content="Vote">'
    pages = [
        {"url": URL, "content": page_html('<img src="/media/2024/council-vote.jpg" alt="Council vote" width="900">',
                                          head), "http_headers": {}, "warc_path": "a.warc", "warc_offset": 1},
        {"url": URL + "-de", "content": german.encode(), "http_headers": {}, "warc_path": "a.warc", "warc_offset": 2},
        {"url": URL + "-plain", "content": f"<html><body><p>{TEXT}</p></body></html>".encode(), "http_headers": {},
         "warc_path": "a.warc", "warc_offset": 3},
        {"url": URL + "-big", "content": b"<html>" + b" " * 3000 + b"</html>", "http_headers": {}},
    ]
    options = LaitOptions(["--max_page_bytes", "2000"])
    with beam.Pipeline(runner=InProcessRunner()) as pipeline:
        parsed = pipeline | beam.Create(pages) | ParsePages(options)
        detected = parsed.main | DetectDominantImage(options)
        assert_that(parsed.drops | "ParseReasons" >> beam.Map(lambda e: (e["url"][-3:], e["reason"])),
                    equal_to([("-de", "language"), ("big", "page_too_large")]), label="ParseDrops")
        assert_that(detected.drops | "DetectReasons" >> beam.Map(lambda e: e["reason"]), equal_to(["no_image"]),
                    label="DetectDrops")
        assert_that(detected.main | beam.Map(lambda r: (r["image_url"], r["dominant_source"], r["alt"], r["og_title"],
                                                        r["page_language"], r["warc_offset"], "candidates" in r)),
                    equal_to([("https://news.example.com/media/2024/council-vote.jpg", "meta", "Council vote", "Vote",
                               "en", 1, False)]), label="Pairs")


def test_page_calibration_is_fitted_per_page_and_ranks_the_top_candidate_first():
    rng = np.random.default_rng(1)
    pages, rows, labels = [], [], []
    for page in range(40):
        n = int(rng.integers(3, 15))
        x = rng.normal(size=(n, len(FEATURE_NAMES))).astype(np.float32)
        y = np.zeros(n, dtype=int)
        y[int(np.argmax(x[:, 0] + 0.3 * rng.normal(size=n)))] = 1  # the main image has the largest feature 0
        pages += [page] * n
        rows.append(x)
        labels.append(y)
    X, y, groups = np.concatenate(rows), np.concatenate(labels), np.array(pages)
    ranker = DominantImageRanker(n_estimators=10, max_depth=2, calibration_folds=3).fit(X, y, groups)
    assert ranker.calibration_ != [1.0, 0.0, 0.0, 0.0]
    raw = ranker.decision_function(rows[0])
    probability = ranker.page_probability(raw)
    assert np.argmax(probability) == np.argmax(raw)
    assert 0.0 < probability.min() and probability.max() < 1.0


def test_hostile_urls_srcsets_and_json_ld_do_not_crash(parser, detector):
    nested = "[" * 5000 + "]" * 5000
    html = f"""<html><head><meta property="og:image" content="http://[::1"><meta property="og:image:width" content="abc">
    <script type="application/ld+json">{nested}</script>
    <script type="application/ld+json">{{"image": [null, 3, {{"url": 5}}, "http://[bad"]}}</script>
    <link rel="image_src" href="javascript:alert(1)"><base href="http://[oops/"></head>
    <body><img src="http://[::1/a.jpg"><img srcset=", , 1x, http://x.example.com/a.jpg 99999999999999999999w, bad 1.5.5x">
    <img src="https://exa mple.com/a b.jpg" width="-5" height="1e999"><img data-src="data:,x">
    <picture><source srcset="//"><img src="//"></picture><input type="image" src="http://%zz/x.png">
    <img src="http://x.example.com:99999/p.jpg"><p>{TEXT}</p></body></html>""".encode()
    result = detect(parser, detector, html, "https://example.com/a")
    assert result["image_url"] in (None, "http://x.example.com/a.jpg")


def test_dominant_image_command_single_and_batch(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    head = '<meta property="og:image" content="/media/2024/council-vote.jpg">'
    (tmp_path / "a.html").write_bytes(page_html('<img src="/media/2024/council-vote.jpg" alt="Vote" width="900">', head))
    (tmp_path / "b.html").write_bytes(f"<html><body><p>{TEXT}</p></body></html>".encode())
    (tmp_path / "list.jsonl").write_text(json.dumps({"path": "a.html", "url": URL}) + "\n"
                                         + json.dumps({"path": "b.html", "url": URL + "/b"}) + "\n")
    command = [sys.executable, "-m", "lait.pipeline.cli", "dominant-image"]
    single = subprocess.run(command + [str(tmp_path / "a.html"), "--url", URL], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert single.returncode == 0, single.stderr
    out = json.loads(single.stdout)
    assert out["image_url"] == "https://news.example.com/media/2024/council-vote.jpg"
    assert out["source"] == "meta" and out["alt"] == "Vote" and out["candidates"] >= 1
    assert set(out) >= {"image_url", "score", "source", "alt", "title", "figcaption", "context", "candidates"}
    batch = subprocess.run(command + ["--batch", str(tmp_path / "list.jsonl")], capture_output=True, text=True,
                           cwd=ROOT, timeout=120)
    lines = [json.loads(line) for line in batch.stdout.splitlines()]
    assert [(line["path"], line["image_url"] is None) for line in lines] == [("a.html", False), ("b.html", True)]
    assert lines[1]["reason"] == "no_image"
    missing = subprocess.run(command + ["nope.html"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1


def test_meta_image_in_an_avatar_frame_is_still_the_publishers_choice(parser, detector):
    head = '<meta property="og:image" content="https://cdn.example.net/photos/4052-1.jpg">'
    html = page_html('<figure class="author-avatar"><img class="avatar-pic" src="https://cdn.example.net/photos/4052-1.jpg">'
                     '</figure><img src="/media/diagram.png" width="800" height="500">', head)
    assert detect(parser, detector, html)["image_url"] == "https://cdn.example.net/photos/4052-1.jpg"


def test_among_several_meta_images_the_one_the_body_shows_as_lead_wins(parser, detector):
    head = ('<meta property="og:image" content="https://news.example.com/books/picture9784873.gif">'
            '<meta property="og:image:secure_url" content="https://news.example.com/books/cover-large.jpg">')
    html = page_html('<figure class="lead-image"><img src="/books/cover-large.jpg" width="1024" height="683" '
                     'alt="The cover"></figure>', head)
    assert detect(parser, detector, html)["image_url"] == "https://news.example.com/books/cover-large.jpg"
    shown_first = head.replace("picture9784873.gif", "cover-large.jpg", 1)
    assert detect(parser, detector, page_html('<p>no body image</p>', shown_first))["image_url"] == \
        "https://news.example.com/books/cover-large.jpg"


def test_video_poster_is_the_picture_of_a_page_led_by_a_video(parser, detector):
    head = '<meta property="og:image" content="https://news.example.com/static/node-facebook-share.jpg">'
    html = page_html('<video poster="/media/intro-poster.jpg" src="/media/intro.mp4" width="640"></video>', head)
    result = detect(parser, detector, html)
    assert result["image_url"] == "https://news.example.com/media/intro-poster.jpg"
    assert result["dominant_source"] == "poster"
    big = page_html('<figure class="lead-image"><img src="/media/2024/council-vote.jpg" width="1024" height="576" '
                    'alt="Council members vote"></figure><video poster="/media/clip.jpg"></video>')
    assert detect(parser, detector, big)["image_url"].endswith("council-vote.jpg"), "a sure body image comes first"


def test_ad_slot_class_on_a_large_hero_image_does_not_exclude_it(parser):
    from lait.scoring.dominant_image import excluded_body_rows

    html = page_html('<picture><img class="block-image-ads hero-image" src="/media/hero.jpg" '
                     'srcset="/media/hero-1920.jpg 1920w"></picture>'
                     '<img class="ad-slot" src="/ads/banner.jpg" width="728" height="90">')
    found = extract_candidates(parser.parse(html, URL))
    excluded = dict(zip((c.url.rsplit("/", 1)[-1] for c in found.candidates), excluded_body_rows(found)))
    assert not excluded["hero-1920.jpg"] and excluded["banner.jpg"]


def test_content_ranks_skip_chrome_and_count_from_the_headline(parser):
    from lait.scoring.dominant_image.features import FEATURE_INDEX

    html = page_html('<img src="/media/2024/council-vote.jpg" width="1024" height="576">'
                     '<img src="/media/2024/trail-map.jpg" width="300" height="200">')
    found = extract_candidates(parser.parse(html, URL))
    names = [c.url.rsplit("/", 1)[-1] for c in found.candidates[:found.n_body]]
    rows = {name: found.features[i] for i, name in enumerate(names)}
    # The logo and the search icon come first in the page but are not content images.
    assert rows["council-vote.jpg"][FEATURE_INDEX["content_rank"]] == 0
    assert rows["council-vote.jpg"][FEATURE_INDEX["content_rank_from_h1"]] == 0
    assert rows["trail-map.jpg"][FEATURE_INDEX["content_rank_from_h1"]] == 1
    assert rows["council-vote.jpg"][FEATURE_INDEX["is_largest_content"]] == 1
    assert rows["logo.png"][FEATURE_INDEX["content_rank"]] == pytest.approx(np.log1p(60))


def test_picture_with_a_placeholder_img_shows_its_sources_image(parser):
    # Four sizes: lxml nests each <source> in the one before, so the <img> sits five levels down.
    html = page_html('<picture><source srcset="/media/2024/vote-w420.jpg" media="(max-width: 420px)">'
                     '<source srcset="/media/2024/vote-w640.jpg" media="(max-width: 640px)">'
                     '<source srcset="/media/2024/vote-w820.jpg" media="(max-width: 960px)">'
                     '<source srcset="/media/2024/vote-w1200.jpg">'
                     '<img src="/static/placeholder.png" width="1200" height="675" alt="The council votes"></picture>')
    found = extract_candidates(parser.parse(html, URL))
    body = found.candidates[:found.n_body]
    vote = [c for c in body if "/media/2024/" in c.url]
    assert [c.url.rsplit("/", 1)[-1] for c in vote] == ["vote-w1200.jpg"]  # the source without a media query
    assert vote[0].alt == "The council votes" and vote[0].width == 1200


def test_analytics_beacons_are_site_images():
    from lait.scoring.dominant_image import site_image_url

    assert site_image_url("https://b.scorecardresearch.com/p?c1=2&c2=6035310")
    assert site_image_url("https://www.facebook.com/tr?id=1&ev=PageView")
    assert not site_image_url("https://scontent.xx.fbcdn.net/v/t1/photo.jpg")
    assert not site_image_url("https://i.pinimg.com/736x/ab/cd/photo.jpg")


def test_camel_case_classes_and_proxied_file_names_are_read():
    from lait.scoring.dominant_image import site_image_url, token_groups

    assert "logo" in token_groups("PageLogo-image") and "avatar" in token_groups("AuthorAvatar")
    # An image proxy's own path says nothing; the file it serves is in its query.
    proxy = ("https://cdn.example.com/dims4/default/aa09ace/resize/340x133!/quality/90/"
             "?url=http%3A%2F%2Fstore.example.com%2F24%2Fa4%2Fmain-logo.png")
    assert site_image_url(proxy)
    assert not site_image_url(proxy.replace("main-logo", "council-vote"))


def test_an_image_shown_above_and_below_the_headline_is_described_below_it(parser, detector):
    # The story's photo is also the first thumbnail of a top-stories carousel above the story.
    carousel = ('<div class="top-stories carousel"><div class="item thumb"><a href="/2024/05/other-story">'
                '<img src="/media/2024/council-vote.jpg" width="1024" height="576"></a></div>'
                '<div class="item thumb"><a href="/2024/05/other-story">'
                '<img src="/media/2024/bridge.jpg" width="1024" height="576"></a></div></div>')
    html = page_html('<figure><img src="/media/2024/council-vote.jpg" width="1024" height="576"></figure>')
    html = html.replace(b"<main>", carousel.encode() + b"<main>")
    found = extract_candidates(parser.parse(html, URL))
    vote = next(c for c in found.candidates if c.url.endswith("council-vote.jpg"))
    assert vote.repeat == 2 and vote.element.getparent().tag == "figure"
    assert detect(parser, detector, html)["image_url"].endswith("council-vote.jpg")


def test_a_link_to_the_pages_own_photo_view_is_a_link_to_the_same_page(parser):
    from lait.scoring.dominant_image.features import FEATURE_INDEX

    html = page_html(f'<a href="{URL}?image_number=1"><img src="/media/2024/council-vote.jpg"></a>'
                     '<a href="/2024/05/other-story"><img src="/media/2024/bridge.jpg"></a>'
                     '<a href="http://[broken"><img src="/media/2024/trail.jpg"></a>')
    found = extract_candidates(parser.parse(html, URL))
    same = {c.url.rsplit("/", 1)[-1]: found.features[i, FEATURE_INDEX["link_same_page"]]
            for i, c in enumerate(found.candidates[:found.n_body])}
    assert same["council-vote.jpg"] == 1 and same["bridge.jpg"] == 0 and same["trail.jpg"] == 0


def test_a_picture_linking_to_another_page_of_the_site_is_told_from_one_linking_elsewhere(parser):
    from lait.scoring.dominant_image.features import FEATURE_INDEX

    html = page_html(f'<a href="{URL}?image_number=1"><img src="/media/2024/council-vote.jpg"></a>'
                     '<a href="/2024/05/other-story"><img src="/media/2024/bridge.jpg"></a>'
                     '<a href="https://www.news.example.com/2024/05/third-story"><img src="/media/2024/dam.jpg"></a>'
                     '<a href="https://photos.example.org/trail"><img src="/media/2024/trail.jpg"></a>'
                     '<a href="/media/2024/pond-full.jpg"><img src="/media/2024/pond.jpg"></a>')
    found = extract_candidates(parser.parse(html, URL))
    site = {c.url.rsplit("/", 1)[-1]: found.features[i, FEATURE_INDEX["link_site_page"]]
            for i, c in enumerate(found.candidates[:found.n_body]) if "/media/" in c.url}
    assert site == {"council-vote.jpg": 0, "bridge.jpg": 1, "dam.jpg": 1, "trail.jpg": 0, "pond.jpg": 0}


def test_a_year_and_month_folder_is_no_width_in_the_url():
    from lait.scoring.dominant_image.urls import url_size

    assert url_size("https://blog.example.com/wp-content/uploads/2016/05/lead.jpg") == (0.0, 0.0)
    assert url_size("https://cdn.example.com/images/1200/lead.jpg") == (1200.0, 0.0)
    assert url_size("https://blog.example.com/2016/05/lead-640x480.jpg") == (640.0, 480.0)


def test_parse_pages_leaves_out_only_the_features_no_decision_reads(parser, detector):
    # ParsePages' mode (describe_unusable=False) skips the markup, link, URL-word and text features of
    # pixels, icons and site-wide images: every other row, and the decision, must equal the full mode's.
    html = page_html('<figure><img src="/media/2024/council-vote.jpg" width="1200" height="800" alt="The vote">'
                     '<figcaption>Council members vote on the park plan.</figcaption></figure>'
                     '<img src="/static/spacer.gif" width="1" height="1"><img src="/media/map.svg">'
                     '<a href="/2024/other-story"><img src="/media/2024/other-thumb.jpg" width="300"></a>')
    full = extract_candidates(parser.parse(html, URL))
    lean = extract_candidates(parser.parse(html, URL), describe_unusable=False)
    unusable = unusable_body_rows(full)
    assert unusable.any() and not unusable.all()
    assert np.array_equal(unusable, unusable_body_rows(lean))
    assert np.array_equal(full.features[~unusable], lean.features[~unusable])
    assert not np.array_equal(full.features[unusable], lean.features[unusable])  # the work skipped
    decisions = [detector.detect_found(candidates_from_record(*page_record_candidates(found))) for found in (full, lean)]
    assert decisions[0] == decisions[1] and decisions[0]["image_url"].endswith("council-vote.jpg")


def test_compiled_tree_walk_equals_the_numpy_walk(monkeypatch):
    from lait.scoring.dominant_image import ranker as ranker_module
    from lait.scoring.dominant_image.features import FEATURE_NAMES

    if ranker_module._trees is None:
        pytest.skip("the C extension is not built (tests/test_extensions.py says why)")
    model = DominantImageRanker.load()
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(300, len(FEATURE_NAMES))) * 3).astype(np.float32)
    X[::7, :20] = np.nan  # missing values go right, as in numpy's comparison
    splits = np.flatnonzero(model.feature_ >= 0)[:100]
    X[np.arange(100), model.feature_[splits]] = model.threshold_[splits]  # rows on a threshold
    compiled = ranker_module._trees.leaf_values(X, model.feature_, model.threshold_, model.left_, model.right_,
                                                 model.value_, model.roots_, model.depth_)
    assert np.array_equal(compiled, model.leaf_values(X))
    scores = model.decision_function(X)
    monkeypatch.setattr(ranker_module, "_trees", None)
    assert np.array_equal(scores, model.decision_function(X))


def test_compiled_tree_walk_equals_the_numpy_walk_on_random_forests():
    # Any arrays, not only a fitted model's: leaves that do not lead back to themselves, splits
    # on any column, rows exactly on a threshold, missing values.
    from lait.scoring.dominant_image import ranker as ranker_module

    if ranker_module._trees is None:
        pytest.skip("the C extension is not built (tests/test_extensions.py says why)")
    rng = np.random.default_rng(1)
    for _ in range(50):
        n_nodes, n_columns, depth = int(rng.integers(1, 40)), int(rng.integers(1, 6)), int(rng.integers(0, 6))
        model = DominantImageRanker()
        model.feature_ = np.where(rng.random(n_nodes) < 0.3, -1, rng.integers(0, n_columns, n_nodes)).astype(np.int32)
        model.threshold_ = rng.integers(-2, 3, n_nodes).astype(np.float64)
        model.left_ = rng.integers(0, n_nodes, n_nodes).astype(np.int32)
        model.right_ = rng.integers(0, n_nodes, n_nodes).astype(np.int32)
        model.value_ = rng.normal(size=n_nodes)
        model.roots_ = rng.integers(0, n_nodes, int(rng.integers(1, 8))).astype(np.int32)
        model.depth_ = depth
        X = rng.integers(-3, 4, (int(rng.integers(0, 9)), n_columns)).astype(np.float32)
        X[rng.random(X.shape) < 0.1] = np.nan
        compiled = ranker_module._trees.leaf_values(X, model.feature_, model.threshold_, model.left_, model.right_,
                                                     model.value_, model.roots_, model.depth_)
        assert np.array_equal(compiled, model.leaf_values(X))


def test_compiled_tree_walk_refuses_out_of_range_nodes_and_columns():
    from lait.scoring.dominant_image import ranker as ranker_module

    if ranker_module._trees is None:
        pytest.skip("the C extension is not built (tests/test_extensions.py says why)")
    model = DominantImageRanker.load()
    arrays = [model.feature_, model.threshold_, model.left_, model.right_, model.value_, model.roots_]
    narrow = np.zeros((2, 3), dtype=np.float32)  # fewer columns than the model splits on
    with pytest.raises(ValueError, match="splits on column"):
        ranker_module._trees.leaf_values(narrow, *arrays, model.depth_)
    X = np.zeros((2, len(model.feature_names_)), dtype=np.float32)
    bad_left = model.left_.copy()
    bad_left[model.roots_] = len(bad_left) + 5
    with pytest.raises(ValueError, match="reaches node"):
        ranker_module._trees.leaf_values(X, model.feature_, model.threshold_, bad_left, model.right_,
                                         model.value_, model.roots_, model.depth_)


def _assert_ancestors_equal(page, elements) -> int:
    """Compare the compiled ancestor walk with walk_ancestors on `elements` of a parsed page."""
    from lait.scoring.dominant_image import features

    if features._dom is None:
        pytest.skip("the C extension is not built (tests/test_extensions.py says why)")
    context, checked = features._PageContext.of(page, 1), 0
    for element in elements:
        expected = features.walk_ancestors(element, context.h1_up, context.paragraph_up)
        assert features._ancestry(context, element) == expected
        checked += 1
    return checked


def test_compiled_ancestor_walk_equals_its_python_definition(parser):
    import random

    import lxml.html

    from lait.filters.page import Page, scan_body

    long = "Words of a long paragraph that readers read. " * 3
    pages = [page_html(
        f'<article itemprop="image"><h1>T</h1><a href="/x"><figure class="hero" id="lead"><a href="a.jpg">'
        f'<picture><img src="a.jpg"></picture></a></figure></a><p>{long}</p><table><tr><td><form><li>'
        f'<img src="b.jpg"></li></form></td></tr></table></article><nav><header><footer><aside><main><img src="c.jpg">'
        f'</main></aside></footer></header></nav><div><div><div><div><div><div><div><div><img src="d.jpg">'
        f'</div></div></div></div></div></div></div></div><noscript><img src="n.jpg"></noscript>'),
        b"<html><body><img src='top.jpg'><div><p>short</p></div></body></html>",  # no headline, no long paragraph
    ]
    rng = random.Random(3)
    tags = ["div", "a", "figure", "p", "h1", "li", "span", "article", "main", "picture", "header", "table"]
    for _ in range(200):
        markup = ""
        for _ in range(rng.randint(1, 8)):
            tag = rng.choice(tags)
            attributes = rng.choice(["", " class='post-thumb'", " id='x' itemprop='image'", " href='/a.jpg'",
                                     " itemprop='images'", " class='a b' id='c'"])
            markup = f"<{tag}{attributes}>{rng.choice(['', long, 'x'])}{markup}<img src='i.jpg'></{tag}>"
        pages.append(page_html(markup))
    for html in pages:
        page = parser.parse(html, URL)
        _assert_ancestors_equal(page, page.root.iter())
        root = lxml.html.fromstring(html)  # lxml.html's tree, comments kept
        _assert_ancestors_equal(Page(url=URL, root=root, encoding="utf-8", scan=scan_body(root)), root.iter())


def test_compiled_ancestor_walk_equals_its_python_definition_on_every_shared_page(parser):
    from tests.conftest import shared_pages

    checked = 0
    for row, content in shared_pages():
        page = parser.parse(content, row["url"])
        if not isinstance(page, tuple):
            checked += _assert_ancestors_equal(page, (element for element, *_ in page.scan.images))
    assert checked > 50_000


def test_held_out_figures_on_the_shared_sets(tmp_path):
    """The shipped ranker and decision on sources they were not fitted on, as bench_dominant_image.py
    measures them (`by_source`): all pages at 0.95 or more and above the meta rule, never wrong
    where the rule is right, and DOM-alone far above the first-image rule. A change to the
    candidates, the features or the decision that loses held-out pages fails here."""
    from bench.bench_dominant_image import by_source, load_jobs, webcrawl_pages
    from tests.conftest import shared_path

    shared_path("mainimage")
    shared_path("webcrawl")
    counts = by_source(load_jobs(str(tmp_path)), webcrawl_pages())
    for name in ("mainimage/all", "webcrawl/lead_photo"):
        entry = counts[name]
        assert entry["lait"] >= 0.95 and entry["lait"] > entry["meta_rule"], (name, entry)
        assert entry["lait_wrong_where_meta_rule_right"] == 0, (name, entry)
    # DOM-alone: 0.80 on the webcrawl labels (lead photos, labelled by hand); mainimage's labels are
    # what other extractors output, and name an avatar, a logo or a video cover on 5 of its 56 pages.
    assert counts["webcrawl/dom"]["lait"] >= 0.80, counts["webcrawl/dom"]
    assert counts["mainimage/dom"]["lait"] >= 0.78, counts["mainimage/dom"]
    for name in ("mainimage/dom", "webcrawl/dom"):
        assert counts[name]["lait"] > 2 * counts[name]["meta_rule"], (name, counts[name])
