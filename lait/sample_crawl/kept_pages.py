"""The sample crawl's pages whose pair lait keeps (or keeps once, for the duplicates), one block per case."""

from __future__ import annotations

import json

from lait.sample_crawl.images import COPIES, PHOTOS, Photo
from lait.sample_crawl.pages import (
    _PLACEHOLDER_GIF,
    BLOG,
    GARDEN,
    NEWS,
    TRAVEL,
    Article,
    Page,
    _add,
    _CrawlBuilder,
    _esc,
    _expect,
    _figure,
    _img,
    _lead_article,
    _render,
    _text,
)

_NEWS_CDN = "https://cdn.example-news.com"
_URL_TOWER = f"{NEWS.origin}/world/asia/2024/03/14/summer-palace-tower-reopens"
_URL_DAHLIA = f"{NEWS.origin}/science/2024/03/12/how-dahlias-got-their-perfect-spheres"
_URL_ROOFS = f"{NEWS.origin}/culture/2024/03/10/the-colours-of-imperial-roofs"
_URL_BOATS = f"{NEWS.origin}/travel/2024/02/27/boats-return-to-kunming-lake"
_URL_TRIO = f"{NEWS.origin}/travel/2024/03/05/a-spring-weekend-in-beijing"
_URL_PINK = f"{GARDEN.origin}/varieties/pink-pompon-dahlias"


def _news_related(exclude: str) -> list[tuple[str, str, Photo]]:
    stories = [("Summer Palace tower reopens after two years of restoration", _URL_TOWER, PHOTOS["tower_lake"]),
               ("How dahlias got their perfect spheres", _URL_DAHLIA, PHOTOS["dahlia_orange"]),
               ("The colours of imperial roofs", _URL_ROOFS, PHOTOS["pagoda_roofs"]),
               ("Boats return to Kunming Lake", _URL_BOATS, PHOTOS["palace_lower"])]
    return [s for s in stories if s[1] != exclude][:3]


def _kept_articles(b: _CrawlBuilder) -> None:
    _lead_article(
        b, NEWS, _URL_TOWER.removeprefix(NEWS.origin), "Summer Palace tower reopens after two years of restoration",
        ["The Tower of Buddhist Incense, the tallest building in Beijing's Summer Palace, opened to visitors again "
         "on Thursday after a restoration that took more than two years and involved some two hundred craftsmen.",
         "Workers replaced thousands of glazed roof tiles, repainted the red columns and restored the carved "
         "brackets under each of the three roofs. Where possible they reused old timber, and new paint was mixed "
         "by hand to match the colours recorded in photographs from the 1950s.",
         "The tower stands on Longevity Hill, and from its upper gallery visitors can look across Kunming Lake to "
         "the long causeway and the small islands beyond. On clear days the Western Hills are visible in the distance.",
         "Park officials expect the number of visitors to rise sharply over the spring holidays. Tickets for the "
         "tower must now be booked online at least one day in advance, and groups are limited to thirty people."],
        "tower_lake", f"{_NEWS_CDN}/2024/03/summer-palace-tower-lake.jpg",
        "The Tower of Buddhist Incense rises above the trees beside Kunming Lake at the Summer Palace in Beijing",
        "The restored tower, with its red columns and green and orange glazed roofs, looks out over the lake.",
        credit="Photo: Li Wen / Example News", og_alt=True, case="figure_alt_figcaption_og_image",
        author="Li Wen", related=_news_related(_URL_TOWER),
        note="plain <figure> with alt, <figcaption> and og:image + og:image:alt, among full clutter")

    # Lazy loading: the real URL is only in data-src / data-srcset; the crawl holds the 640w file only.
    photo = PHOTOS["dahlia_orange"]
    url_640 = b.image(f"{_NEWS_CDN}/2024/03/orange-pompon-dahlia-640.jpg", photo)
    url_320 = f"{_NEWS_CDN}/2024/03/orange-pompon-dahlia-320.jpg"
    alt = ("An orange pompon dahlia in full bloom, its rounded petals curled into a perfect ball "
           "against dark green leaves")
    caption = "Pompon dahlias owe their shape to hundreds of tightly rolled petals."
    lead = _figure(f'<img class="lazyload" src="{_PLACEHOLDER_GIF}" data-src="{url_640}" '
                   f'data-srcset="{url_320} 320w, {url_640} 640w" data-sizes="auto" width="640" height="427" '
                   f'alt="{_esc(alt)}"><noscript>{_img(url_640, alt, (640, 427))}</noscript>', caption,
                   "Photo: Maria Lopez")
    article = Article(
        NEWS, _URL_DAHLIA.removeprefix(NEWS.origin), "How dahlias got their perfect spheres",
        ["Gardeners have grown dahlias in Europe for more than two centuries, but the neat round flowers known as "
         "pompons are a surprisingly recent invention, according to a study published this week.",
         "Researchers compared the genes of wild dahlias from the mountains of Mexico with dozens of modern garden "
         "varieties. They found that a small change in a single gene makes the outer florets roll their petals "
         "into tubes, which then pack together into a ball.",
         "The wild plants have flat, open flowers with a yellow centre that bees can easily reach. Breeders in the "
         "nineteenth century selected again and again for fuller blooms, without knowing what they were changing.",
         "The team now hopes to use the same approach to understand the colours of dahlias, which range from "
         "white and pale peach to deep red and almost black."],
        lead=lead, og_image=url_640, author="Maria Lopez", date="2024-03-12", related=_news_related(_URL_DAHLIA))
    _add(b, article, _expect(article.url, "lazy_data_src_srcset", "kept", image_url=url_640, texts=(alt, caption),
                             note="<img> src is a base64 placeholder; real URL in data-src/data-srcset (320w not in crawl)"))

    # srcset with several widths; the plain src is a 240 px file (too small), the 427w file is the one to take.
    photo, small = PHOTOS["pagoda_square"], COPIES["pagoda_square_240"][1]
    base = f"{TRAVEL.origin}/media/2024/03/pagoda-longevity-hill"
    url_240 = b.image(f"{base}-240.jpg", small)
    url_427 = b.image(f"{base}-427.jpg", photo)
    alt = "A tall pagoda with stacked red and green roofs stands on a hill above leafy trees on a hazy day"
    caption = "The pagoda on Longevity Hill is the best place to start a morning at the Summer Palace."
    lead = _figure(f'<img src="{url_240}" srcset="{base}-160.jpg 160w, {url_240} 240w, {url_427} 427w" '
                   f'sizes="(max-width: 600px) 100vw, 427px" width="427" height="427" alt="{_esc(alt)}" '
                   'loading="lazy" decoding="async">', caption)
    article = Article(
        TRAVEL, "/guides/beijing/two-days-in-beijing", "Two days in Beijing: a first-timer's itinerary",
        ["Beijing rewards visitors who plan their days around the city's enormous parks and palaces. Here is how "
         "to see the best of it in two days without spending the whole time in taxis.",
         "On the first morning, take the subway to the Summer Palace and arrive when the gates open. Climb "
         "Longevity Hill before the tour groups, then walk down to the long covered corridor by the lake.",
         "In the afternoon, head back into the centre for the Forbidden City. Book tickets online a week ahead, "
         "because daily numbers are capped and passports are checked at the entrance.",
         "On day two, rise early for the Temple of Heaven, where local people gather to dance, sing and play "
         "cards in the gardens. Finish with dumplings in one of the quiet lanes north of the lakes."],
        lead=lead, og_image=url_427, ads=True, date="2024-03-09")
    _add(b, article, _expect(article.url, "srcset_widths", "kept", image_url=url_427, texts=(alt, caption),
                             note="src is the 240 px version (too small); the 427w srcset candidate is the photo"))

    # <picture> with a WebP <source> and a JPEG <img>: both files are in the crawl, same photo.
    jpg = b.image(f"{TRAVEL.origin}/media/2024/02/dahlia-garden.jpg", PHOTOS["dahlia_square"])
    webp = b.image(f"{TRAVEL.origin}/media/2024/02/dahlia-garden.webp", COPIES["dahlia_square_webp"][1])
    alt = "A peach coloured dahlia flower with a smaller bud below it, photographed against dark green leaves"
    caption = "Dahlias flower from midsummer until the first frost in most European gardens."
    lead = _figure(f'<picture><source type="image/webp" srcset="{webp}">'
                   f'{_img(jpg, alt, (427, 427))}</picture>', caption)
    article = Article(
        TRAVEL, "/gardens/europe/best-dahlia-gardens", "Five European gardens to visit for dahlias",
        ["Late summer belongs to the dahlia. When roses fade, these bold Mexican flowers take over borders from "
         "Scotland to southern Germany, in every colour except true blue.",
         "The national collection in Cornwall holds more than fifteen hundred varieties, planted in long rows "
         "that are at their best in early September. Bring a notebook, because every plant is labelled.",
         "On the island of Mainau in Lake Constance, a whole terrace is given over to dahlias, and the gardeners "
         "change the planting scheme every year.",
         "Most of these gardens are open until the middle of October. Visit on a weekday morning, when the light "
         "is soft and the paths are almost empty."],
        lead=lead, og_image=jpg, date="2024-02-21")
    _add(b, article, _expect(article.url, "picture_source_webp", "kept", image_url=jpg, image_urls=(webp,),
                             texts=(alt, caption), note="<picture> with a WebP <source>; either file is the photo"))

    # <base href> with a relative image URL.
    photo = PHOTOS["pagoda_roofs"]
    url = b.image(f"{_NEWS_CDN}/2024/03/pagoda-roof-tiles.jpg", photo)
    alt = ("Close view of the upper roofs of a Chinese pagoda, with orange and green glazed tiles and a golden top "
           "against a pale sky")
    caption = "Glazed roof tiles in yellow and green were once reserved for imperial buildings."
    lead = _figure(_img("pagoda-roof-tiles.jpg", alt, photo.dimensions), caption, "Photo: Chen Jie")
    article = Article(
        NEWS, _URL_ROOFS.removeprefix(NEWS.origin), "The colours of imperial roofs",
        ["Walk through any of Beijing's old palaces and the roofs tell you who was allowed to build what. Colour "
         "was never a matter of taste: it followed strict rules set down by the court.",
         "Yellow glazed tiles were for the emperor alone. Princes used green, while ordinary houses had plain grey "
         "tiles made from local clay. Blue was kept for buildings linked to heaven, such as the great round hall "
         "at the Temple of Heaven.",
         "The small figures that march along the ridges of the roofs follow rules too. The more important the "
         "building, the more figures it was given, up to a maximum of ten.",
         "A new exhibition at the capital museum shows tiles, brackets and painted beams rescued during recent "
         "restoration work, and explains how the kilns that made them worked."],
        lead=lead, head_extra=f'<base href="{_NEWS_CDN}/2024/03/">', author="Chen Jie", date="2024-03-10",
        related=_news_related(_URL_ROOFS))
    _add(b, article, _expect(article.url, "base_href_relative_src", "kept", image_url=url, texts=(alt, caption),
                             note='relative <img src> resolved against <base href>; no og:image'))

    # JSON-LD only: the lead photo is drawn by a script; its URL and caption are in application/ld+json.
    photo = PHOTOS["dahlia_close"]
    url = b.image(f"{_NEWS_CDN}/2024/03/dahlia-petals-close-up.jpg", photo)
    caption = "Close-up of the curled orange petals at the centre of a dahlia flower"
    path = "/science/2024/03/08/inside-the-dahlia-flower"
    ld = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": "Inside the dahlia flower",
          "datePublished": "2024-03-08T07:30:00Z", "author": {"@type": "Person", "name": "Maria Lopez"},
          "image": {"@type": "ImageObject", "url": url, "width": 480, "height": 480, "caption": caption},
          "publisher": {"@type": "Organization", "name": NEWS.name, "logo": {"@type": "ImageObject", "url": NEWS.logo_url}}}
    lead = ('<figure class="lead-image"><div class="js-image" data-image-id="88412" style="aspect-ratio: 1 / 1"></div>'
            f"<figcaption>{_text(caption)}</figcaption></figure>")
    article = Article(
        NEWS, path, "Inside the dahlia flower",
        ["What looks like a single dahlia flower is in fact a crowd of hundreds of tiny flowers, called florets, "
         "packed together on one flat base.",
         "The florets around the edge carry the large coloured petals, while those in the middle are small and "
         "tube shaped. In double varieties almost all the florets have been bred to grow showy petals.",
         "The spiral in which the florets are arranged follows the same pattern found in sunflowers and pine "
         "cones, and it lets the plant fit as many of them as possible into a small space.",
         "Bees and butterflies prefer the simple open varieties, so gardeners who want to help pollinators are "
         "advised to plant at least a few single dahlias among the showier kinds."],
        lead=lead, head_extra=f'<script type="application/ld+json">{json.dumps(ld)}</script>',
        author="Maria Lopez", date="2024-03-08", related=_news_related(""))
    _add(b, article, _expect(article.url, "json_ld_image", "kept", image_url=url, texts=(caption,),
                             note="no <img> and no og:image: the photo is only in JSON-LD image.url, caption in "
                                  "JSON-LD and <figcaption>"))

    _lead_article(
        b, GARDEN, "/blog/2024/03/planting-dahlia-tubers", "When and how to plant dahlia tubers",
        ["Dahlia tubers are on sale in garden centres from February, but there is no hurry to get them in the "
         "ground. They hate cold, wet soil and will rot if planted too early.",
         "Start them off in pots in a frost free greenhouse or on a bright windowsill in March. Use ordinary "
         "compost and keep it barely moist until the first shoots appear.",
         "Plant them out after the last frost, usually in late May, in a sunny spot with rich soil. Put a strong "
         "stake in next to each plant at the same time, so you do not spear the tubers later.",
         "Water well through the summer and feed every two weeks once the buds form. Keep cutting the flowers "
         "and the plants will carry on blooming until the autumn."],
        "dahlia_left", f"{GARDEN.origin}/images/uploads/dahlia-in-bloom.jpg",
        "A single orange dahlia bloom on a dark background of blurred green leaves in the garden",
        "Our favourite pompon variety, photographed last September.", case="figure_og_image_no_og_alt",
        author="Sarah Mills", date="2024-03-04", note="blog <figure>; og:image without og:image:alt")

    _windows_1252_page(b)
    _broken_markup_page(b)

    _lead_article(
        b, TRAVEL, "/guides/beijing/kunming-lake-boat-trips", "Kunming Lake by boat: routes and prices",
        ["The best way to understand the size of the Summer Palace is to see it from the water. Electric boats "
         "and larger dragon boats cross Kunming Lake every few minutes from April to October.",
         "The short crossing from the marble boat to South Lake Island takes about fifteen minutes and costs "
         "little more than a subway ticket. Small self drive boats can be hired by the hour near the east gate.",
         "In winter the lake freezes, and the same piers become the starting point for skating and ice bikes.",
         "Bring sun cream and water in summer, because there is very little shade on the open lake."],
        "lake_island", f"{TRAVEL.origin}/media/2024/03/kunming-lake-island.png",
        "A hazy lake with a small island and boats, seen past the corner of a tiled roof and tall green trees",
        "South Lake Island is joined to the shore by a long bridge with seventeen arches.",
        case="png_photo", date="2024-03-02", note="the photo is a PNG")

    _same_photo_pages(b)
    _near_duplicate_pages(b)

    # Inline <img> with alt and title, no <figure>.
    photo = PHOTOS["palace_lower"]
    url = b.image(f"{_NEWS_CDN}/2024/02/kunming-lake-boats.jpg", photo)
    alt = "Small boats on a calm lake below the lower roofs of a red and green pagoda and the trees on the hillside"
    body = ["After the long winter, the boat service across Kunming Lake resumed this weekend, a few days earlier "
            "than usual because the ice melted in the first warm days of February.",
            "<p>" + _img(url, alt, photo.dimensions, ' title="Boats on Kunming Lake" class="inline-photo"') + "</p>",
            "Operators said more than five thousand people took a boat on Saturday alone. Most made the short trip "
            "to South Lake Island, while others rented small pedal boats near the shore.",
            "Park staff have added new life jackets for children and extended the opening hours of the main pier "
            "until six in the evening.",
            "The dragon boats, which carry up to forty passengers, will return in April once the spring inspection "
            "of their engines has been completed."]
    article = Article(NEWS, _URL_BOATS.removeprefix(NEWS.origin), "Boats return to Kunming Lake", body,
                      og_image=url, author="Li Wen", date="2024-02-27", related=_news_related(_URL_BOATS))
    _add(b, article, _expect(article.url, "inline_img_alt_title", "kept", image_url=url,
                             texts=(alt, "Boats on Kunming Lake"), note="inline <img> in a paragraph, alt + title"))

    # Decorative empty alt: the description is only in the <figcaption>.
    photo = PHOTOS["dahlia_grey"]
    url = b.image(f"{GARDEN.origin}/images/uploads/dahlia-black-and-white.jpg", photo)
    caption = "A black and white photograph of a dahlia flower, showing the spiral pattern of its curled petals"
    article = Article(
        GARDEN, "/blog/2024/02/dahlias-in-black-and-white", "Seeing dahlias in black and white",
        ["Take the colour away from a dahlia and you start to notice its shape. This winter I have been printing "
         "some of last year's garden photographs in black and white.",
         "Without the bright orange, your eye follows the spiral of the petals from the outside to the tight "
         "centre. The same flower looks calmer and more like a sculpture.",
         "If you want to try it, photograph flowers on an overcast day, when the light is even, and stand close "
         "enough that the bloom fills most of the frame.",
         "Next month I will write about choosing paper and printing at home."],
        lead=_figure(_img(url, "", photo.dimensions), caption), og_image=url, author="Sarah Mills", date="2024-02-18",
        ads=False)
    _add(b, article, _expect(article.url, "empty_alt_figcaption_only", "kept", image_url=url, texts=(caption,),
                             note='alt="" (decorative); the description is only in <figcaption>'))

    _lead_article(
        b, TRAVEL, "/events/2024/national-dahlia-show", "A day at the national dahlia show",
        ["Every September, growers from across the country bring their best blooms to the national dahlia show, "
         "and the judging tent becomes one of the most colourful places in Britain.",
         "Each flower is judged on its form, its colour and how fresh it looks. Growers spend the night before "
         "the show grooming petals with small brushes and cotton wool.",
         "Visitors can buy tubers of most of the winning varieties at the stalls outside, and the experts on the "
         "society's stand are happy to answer questions.",
         "Trains run every half hour from the city centre, and the showground is a ten minute walk from the station."],
        "dahlia_show", f"{TRAVEL.origin}/media/2024/03/dahlia-show-winner.jpg",
        "A soft orange dahlia with neatly curled petals, photographed close up at a flower show",
        "Last year's winner in the small pompon class.", og_alt=True, case="figure_og_image_alt", date="2024-03-11",
        note="figure with alt, figcaption, og:image and og:image:alt")


def _windows_1252_page(b: _CrawlBuilder) -> None:
    """A page in windows-1252, declared only in <meta charset>: the HTTP header gives no charset."""
    photo = PHOTOS["tower_portrait"]
    url = b.image(f"{BLOG.origin}/blog/wp-content/uploads/2024/03/pagoda-from-the-path.jpg", photo)
    alt = "The old pagoda’s painted roofs — orange, green and gold — seen from the path below the café"
    caption = "Early morning, before the crowds: the pagoda on Longevity Hill."
    article = Article(
        BLOG, "/blog/2024/03/a-morning-at-the-summer-palace", "A morning at the Summer Palace",
        ["We got to the north gate at half past six, just as it opened, and had the hill almost to ourselves. "
         "It’s the best advice I can give anyone visiting Beijing: go early.",
         "The path up Longevity Hill is steep but short. From the top you see the lake spread out below you, "
         "with the “Seventeen Arch Bridge” on the far side and the city fading into the haze.",
         "We had breakfast at a tiny café near the boat pier — green tea, steamed buns and a plate of pickles — "
         "for less than €5 each.",
         "By ten o’clock the tour groups had arrived, so we walked back along the lake shore and left by the "
         "east gate. Next time we’ll bring a picnic."],
        lead=_figure(_img(url, alt, photo.dimensions), caption), og_image=url, author="Tom Hale",
        date="2024-03-06", ads=False)
    page_html = _render(b, article, charset="windows-1252")
    b.page(Page(article.url, page_html, _expect(
        article.url, "windows_1252_meta_charset", "kept", image_url=url, texts=(alt, caption),
        note="encoded in windows-1252, declared only in <meta charset> (HTTP Content-Type has no charset); "
             "text must keep ’ — é without mojibake"), encoding="cp1252", content_type="text/html"))


def _broken_markup_page(b: _CrawlBuilder) -> None:
    """Unclosed and mismatched tags, unquoted attributes, a bare ampersand: browsers cope, so must we."""
    photo = PHOTOS["dahlia_bud"]
    b.image(BLOG.logo_url, BLOG.logo)
    url = b.image(f"{BLOG.origin}/blog/wp-content/uploads/2024/03/dahlia-and-bud.jpg", photo)
    alt = "An orange dahlia in full flower with a second bud opening just below it"
    page_url = f"{BLOG.origin}/blog/2024/03/dahlias-after-the-rain"
    page_html = f"""<html>
<head>
<meta http-equiv=Content-Type content="text/html; charset=utf-8">
<title>Dahlias after the rain &#8211; Notes from the Hillside</title>
<meta property=og:image content={url}>
<body class=post-template>
<div id=wrap><div class=header><a href=/><img class=site-logo src={BLOG.logo_url} alt='Notes from the Hillside logo' width=220 height=60></a>
<ul class=menu><li><a href=/travel/>Travel<li><a href=/garden/>Garden<li><a href=/about/>About</ul>
<div class=post>
<h1>Dahlias after the rain</h2>
<p class=meta>Posted by Tom Hale on 1 March 2024 &middot; <a href=#comments>4 comments</a>
<p>It rained for three days straight, and I expected the dahlias to be flattened. Instead they stood up
straight and the flowers looked better than ever, washed clean & glowing against the wet leaves.
<figure class=wp-block-image><img src={url} alt="{_esc(alt)}" width=490 height=327 class="wp-image-2291 size-large">
<figcaption>The first bloom of the season, with another bud on the way
</figure>
<p>The trick, I think, is staking. Every plant has a <b>strong wooden stake <i>and</b> three loops of soft
string</i>, put in when the plants were still small. The stems bend in the wind but they do not snap.
<p>I also cut the plants back by a third in early summer, which makes them bushier and
<span>gives more flowers on shorter, stronger stems.</span></span>
<div class=comments id=comments><h3>4 comments</h3>
<div class=comment><p>Lovely photo! Which variety is this?<div class=comment><p>Thanks for the tip about staking early.
</div>
<table><tr><td>Category: Garden<td>Tags: dahlias, rain, staking
</div>
"""
    b.page(Page(page_url, page_html, _expect(
        page_url, "broken_markup", "kept", image_url=url, texts=(alt, "The first bloom of the season, with another bud on the way"),
        note="unclosed <p>/<li>/<figcaption>/<figure>/<div>, mismatched </h2>, unquoted attributes, no </html>")))


def _same_photo_pages(b: _CrawlBuilder) -> None:
    """One photo URL on three pages with three different texts: Aggregate keeps the best pair only."""
    url = f"{_NEWS_CDN}/photos/summer-palace-pagoda-and-lake.jpg"
    best = ("A red and gold pagoda with layered tiled roofs stands above the trees, with a wide lake stretching "
            "behind it")
    _lead_article(
        b, NEWS, _URL_TRIO.removeprefix(NEWS.origin), "A spring weekend in Beijing",
        ["Spring is short in Beijing, but for a few weeks in April the city is at its most beautiful, with "
         "blossom in every park and clear blue skies after the winter smog.",
         "Start at the Summer Palace, where the willows along the lake turn green before anything else. The "
         "crowds are smaller on weekday mornings, and the boats start running again in April.",
         "In the evening, walk around Houhai lake, where bars and small restaurants open their terraces as soon "
         "as the weather allows.",
         "Hotels fill up quickly around the May holiday, so book early or plan your visit for the second half "
         "of April."],
        "tower_middle", url, best, "The Summer Palace is at its best in April, before the summer heat.",
        case="same_photo_best_text", author="Chen Jie", date="2024-03-05", related=_news_related(_URL_TRIO),
        note="the photo is also on two other pages with weaker texts; this pair is the best one")
    _lead_article(
        b, TRAVEL, "/news/2024/03/summer-palace-ticket-prices", "Summer Palace ticket prices to rise in April",
        ["Entrance tickets for the Summer Palace will cost more from the first of April, the park authority "
         "announced on Monday, the first increase in almost ten years.",
         "The combined ticket, which includes the tower and the gardens, will rise by a fifth. Children under "
         "six and people over sixty will still enter free of charge.",
         "Officials said the extra money would pay for repairs to the lake shore and for more staff at the gates "
         "during the busy summer months."],
        "tower_middle", url, "The Summer Palace in Beijing, seen from the hill", None, case="same_photo_weaker_text",
        outcome="duplicate", duplicate_of=_URL_TRIO, date="2024-03-04",
        note="same photo URL as the best page, shorter and vaguer text")
    _lead_article(
        b, NEWS, "/opinion/2024/03/02/why-we-still-travel", "Why we still travel",
        ["Every spring I promise myself that this will be the year I stay at home, and every spring I find "
         "myself looking at train timetables and maps of cities I have never seen.",
         "Travel is expensive, tiring and often disappointing. The famous sights are crowded and the weather is "
         "never what the brochure promised. And yet it changes the way we see our own streets when we return.",
         "Perhaps that is the real point of going away: not the photographs, but the fresh eyes we bring back "
         "with us."],
        "tower_middle", url, "Spring is a good time to visit the palace gardens", None, case="same_photo_generic_text",
        outcome="duplicate", duplicate_of=_URL_TRIO, author="Anna Berg", date="2024-03-02",
        note="same photo URL as the best page, a text about the article rather than the photo")


def _near_duplicate_pages(b: _CrawlBuilder) -> None:
    """The same photo resized and re-encoded at another URL: Aggregate merges them by pHash."""
    _lead_article(
        b, GARDEN, _URL_PINK.removeprefix(GARDEN.origin), "Pink pompon dahlias for borders and pots",
        ["Pink pompon dahlias are among the easiest to grow. The plants stay compact, so they suit small gardens "
         "and large pots on a sunny patio.",
         "Choose a variety with strong stems if you want flowers for cutting. The small round blooms last a week "
         "or more in a vase if you pick them early in the morning.",
         "Like all dahlias, they need plenty of water in dry weather and a feed rich in potash once the buds "
         "appear. Remove faded flowers every few days."],
        "dahlia_pink", f"{GARDEN.origin}/images/uploads/pink-dahlia-640.jpg",
        "A bright pink pompon dahlia with rounded petals, surrounded by soft green foliage",
        "Pink pompons flower freely from July until the first frosts.", og_alt=True, case="near_duplicate_original",
        date="2024-02-28", note="the same photo appears resized and re-encoded on another site")
    _lead_article(
        b, BLOG, "/blog/2024/02/what-to-plant-in-march", "What I am planting in March",
        ["March is when the garden wakes up. The soil is still cold, but there is plenty to do in the greenhouse "
         "and on the windowsills.",
         "This year I am starting sweet peas, tomatoes and a few dahlia tubers in pots, and sowing early salad "
         "leaves under a cloche outside.",
         "The potatoes will wait until April, when the ground is a little warmer."],
        "dahlia_pink_resized", "https://photos.example.com/resized/512/pink-dahlia.jpg",
        "A pink flower in our garden last summer", None, case="near_duplicate_copy", outcome="duplicate",
        duplicate_of=_URL_PINK, author="Tom Hale", date="2024-02-25", ads=False,
        note="512 px re-encoded copy of the pink dahlia photo at another URL, with a weaker text")


