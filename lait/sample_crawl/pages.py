"""The sample crawl's sites and pages: the HTML a page is rendered to and the pair it should give."""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass, field
from urllib.parse import quote

from lait.sample_crawl.images import _ADS, _SOCIAL, COPIES, PHOTOS, Graphic, Photo, _thumb

OUTCOMES = ("kept", "duplicate", "shared_text", "language", "no_image", "not_in_crawl", "too_small", "not_natural")

SHARED_CAPTION = "Reader photo of the week from our community gallery"
_PLACEHOLDER_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"

@dataclass(frozen=True)
class Site:
    name: str
    origin: str
    key: str
    lang: str
    colour: tuple[int, int, int]
    nav: tuple[str, ...]
    footer: str
    related_title: str = "Related articles"
    share: str = "Share this article"

    @property
    def logo_url(self) -> str:
        return f"{self.origin}/static/img/{self.key}-logo.png"

    @property
    def logo(self) -> Graphic:
        return Graphic("logo", (220, 60), self.name, self.colour)


NEWS = Site("Example News", "https://www.example-news.com", "example-news", "en", (170, 20, 40),
            ("World", "Business", "Science", "Travel", "Culture", "Opinion"),
            "© 2024 Example News Ltd. All rights reserved. Registered in England and Wales.")
TRAVEL = Site("Example Travel", "https://travel.example.org", "example-travel", "en", (0, 110, 140),
              ("Destinations", "Guides", "Gardens", "Food", "Deals"),
              "© 2024 Example Travel. Prices were correct at the time of publication.")
GARDEN = Site("The Example Garden", "https://garden.example.net", "example-garden", "en", (40, 110, 50),
              ("Blog", "Varieties", "Guides", "Shop", "Newsletter"),
              "© 2024 The Example Garden. Grown with care in Yorkshire.")
BLOG = Site("Notes from the Hillside", "https://www.example.com", "hillside", "en", (90, 60, 120),
            ("Home", "Travel", "Garden", "About"),
            "Notes from the Hillside is a personal blog. Powered by WordPress.")
COMMUNITY = Site("Example News Community", "https://community.example-news.com", "community", "en", (170, 20, 40),
                 ("Gallery", "Forums", "Events", "Submit a photo"),
                 "© 2024 Example News Ltd. Community content is moderated by our readers' editor.")
DE = Site("Beispiel Nachrichten", "https://www.example.de", "beispiel", "de", (20, 20, 20),
          ("Politik", "Wirtschaft", "Reise", "Garten", "Kultur"),
          "© 2024 Beispiel Nachrichten GmbH. Alle Rechte vorbehalten.", "Weitere Artikel", "Artikel teilen")
FR = Site("Exemple Infos", "https://www.example.fr", "exemple", "fr", (0, 60, 140),
          ("Actualités", "Économie", "Voyage", "Jardin", "Culture"),
          "© 2024 Exemple Infos. Tous droits réservés.", "À lire aussi", "Partager cet article")
ES = Site("Noticias Ejemplo", "https://www.example.es", "ejemplo", "es", (200, 60, 0),
          ("Actualidad", "Economía", "Viajes", "Jardín", "Cultura"),
          "© 2024 Noticias Ejemplo S.L. Todos los derechos reservados.", "Te puede interesar", "Compartir")


@dataclass
class Page:
    """One HTML page of the crawl and what the pipeline should make of it."""

    url: str
    html: str
    expected: dict
    images: list[str] = field(default_factory=list)  # image URLs the page uses, in document order
    encoding: str = "utf-8"
    content_type: str = "text/html; charset=utf-8"


class _CrawlBuilder:
    """Collects pages and the image URLs they use (with what each URL serves)."""

    def __init__(self):
        self.pages: list[Page] = []
        self.images: dict[str, Photo | Graphic] = {}  # URL -> image, for URLs the crawl holds
        self.missing: dict[str, Photo] = {}  # URL -> photo, for URLs the crawl does not hold
        self._pending: list[str] = []  # image URLs of the page being built

    def image(self, url: str, image: Photo | Graphic, in_crawl: bool = True) -> str:
        (self.images if in_crawl else self.missing)[url] = image
        if in_crawl and url not in self._pending:
            self._pending.append(url)
        return url

    def page(self, page: Page) -> None:
        """Add `page`, with the image URLs registered since the previous page."""
        page.images, self._pending = self._pending, []
        self.pages.append(page)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _img(url: str, alt: str, size: tuple[int, int], extra: str = "") -> str:
    return f'<img src="{_esc(url)}" alt="{_esc(alt)}" width="{size[0]}" height="{size[1]}"{extra}>'


def _text(text: str) -> str:
    """Escape text content the way most CMSs do: &, < and > only."""
    return html.escape(text, quote=False)


def _summary(text: str, limit: int = 150) -> str:
    """`text` cut at a word boundary, for meta descriptions."""
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def _display_date(iso: str) -> str:
    """'2024-03-14' -> '14 March 2024', whatever the machine's locale."""
    year, month, day = (int(part) for part in iso.split("-"))
    return f"{day} {_MONTHS[month - 1]} {year}"


@dataclass
class Article:
    """The parts of an article page; `_render` lays them out with the site's clutter."""

    site: Site
    path: str
    title: str
    body: list[str]
    lead: str = ""  # HTML of the lead figure
    description: str = ""
    og_image: str | None = None
    og_image_alt: str | None = None
    head_extra: str = ""
    author: str | None = None
    date: str = "2024-03-14"
    ads: bool = True
    social: bool = True
    pixel: bool = True
    related: list[tuple[str, str, Photo]] = field(default_factory=list)  # (title, url, photo)

    @property
    def url(self) -> str:
        return self.site.origin + self.path


def _render(b: _CrawlBuilder, a: Article, charset: str = "utf-8") -> str:
    """The page's HTML: head, masthead with logo and nav, ads, article, share icons, related, footer, pixel."""
    parts = [f'<!DOCTYPE html>\n<html lang="{a.site.lang}">\n<head>\n{_head(a, charset)}\n</head>\n<body>',
             _masthead(b, a.site), f"<main>\n<article>\n<h1>{_text(a.title)}</h1>"]
    if a.ads:
        parts.insert(2, _ad(b, "leaderboard", a.site))
    if a.author:
        parts.append(_byline(b, a))
    if a.lead:
        parts.append(a.lead)
    body = [f"<p>{_text(p)}</p>" if not p.startswith("<") else p for p in a.body]
    if a.ads and len(body) > 2:
        body.insert(2, _ad(b, "rectangle", a.site))
    parts += body + ["</article>"]
    if a.social:
        parts.append(_share(b, a))
    if a.related:
        parts.append(_related(b, a))
    links = " · ".join(f'<a href="{a.site.origin}/{name.lower()}">{name}</a>' for name in ("Privacy", "Terms", "Contact"))
    parts.append(f"</main>\n<footer><p>{_text(a.site.footer)}</p><p>{links}</p></footer>")
    if a.pixel:
        page_id = hashlib.sha1(a.url.encode()).hexdigest()[:10]
        url = b.image(f"https://pixel.example-analytics.com/collect.gif?site={a.site.key}&page={page_id}",
                      Graphic("pixel", (1, 1), format="GIF"))
        parts.append(f'<img src="{_esc(url)}" width="1" height="1" alt="" style="display:none">')
    parts.append("</body>\n</html>\n")
    return "\n".join(parts)


def _head(a: Article, charset: str) -> str:
    head = [f'<meta charset="{charset}">', f"<title>{_text(a.title)} | {_text(a.site.name)}</title>",
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f'<meta name="description" content="{_esc(a.description or _summary(a.body[0]))}">',
            '<meta property="og:type" content="article">',
            f'<meta property="og:title" content="{_esc(a.title)}">',
            f'<meta property="og:url" content="{_esc(a.url)}">',
            f'<meta property="og:site_name" content="{_esc(a.site.name)}">']
    if a.og_image:
        head.append(f'<meta property="og:image" content="{_esc(a.og_image)}">')
    if a.og_image_alt:
        head.append(f'<meta property="og:image:alt" content="{_esc(a.og_image_alt)}">')
    head += [f'<link rel="canonical" href="{_esc(a.url)}">',
             f'<link rel="stylesheet" href="{a.site.origin}/static/css/site.css">',
             "<script>window.dataLayer = window.dataLayer || []; dataLayer.push({'section': 'article'});</script>"]
    if a.head_extra:
        head.append(a.head_extra)
    return "\n".join(head)


def _masthead(b: _CrawlBuilder, site: Site) -> str:
    b.image(site.logo_url, site.logo)
    nav = "".join(f'<li><a href="{site.origin}/{item.lower()}/">{_text(item)}</a></li>' for item in site.nav)
    return (f'<header class="site-header"><a href="{site.origin}/" class="logo-link">'
            f'<img class="site-logo" src="{site.logo_url}" alt="{_esc(site.name)} logo" width="220" height="60"></a>'
            f'\n<nav class="main-nav"><ul>{nav}</ul></nav></header>')


def _ad(b: _CrawlBuilder, slot: str, site: Site) -> str:
    url, banner = _ADS[slot]
    b.image(url, banner)
    click = f"https://ads.example-adnetwork.com/click?slot={slot}&amp;site={site.key}"
    return (f'<div class="ad-slot ad-{slot}"><a href="{click}" rel="sponsored">'
            f'{_img(url, "Advertisement", banner.size)}</a></div>')


def _byline(b: _CrawlBuilder, a: Article) -> str:
    slug = re.sub(r"[^a-z]+", "-", a.author.lower()).strip("-")
    avatar_url = b.image(f"{a.site.origin}/static/authors/{slug}-64.png",
                         Graphic("avatar", (64, 64), colour=a.site.colour))
    avatar = _img(avatar_url, a.author, (48, 48), ' class="avatar"')
    return (f'<div class="byline">{avatar} By <a rel="author" href="{a.site.origin}/authors/{slug}">'
            f'{_text(a.author)}</a> <time datetime="{a.date}">{_display_date(a.date)}</time></div>')


def _share(b: _CrawlBuilder, a: Article) -> str:
    icons = []
    for url, (icon, name) in _SOCIAL.items():
        b.image(url, icon)
        icons.append(f'<a href="https://share.example-social.com/?u={quote(a.url, safe="")}">'
                     f"{_img(url, name, (32, 32))}</a>")
    return f'<aside class="share"><span>{_text(a.site.share)}</span> {" ".join(icons)}</aside>'


def _related(b: _CrawlBuilder, a: Article) -> str:
    items = []
    for title, url, photo in a.related:
        thumb = _thumb(photo)
        thumb_url = b.image(f"{a.site.origin}/static/thumbs/{url.rstrip('/').rsplit('/', 1)[-1]}-160.jpg", thumb)
        items.append(f'<li><a href="{_esc(url)}">{_img(thumb_url, title, thumb.dimensions)}'
                     f"<span>{_text(title)}</span></a></li>")
    return f'<section class="related"><h2>{_text(a.site.related_title)}</h2><ul>{"".join(items)}</ul></section>'


def _figure(img_html: str, caption: str | None, credit: str | None = None) -> str:
    cap = ""
    if caption:
        credit_html = f' <span class="credit">{_text(credit)}</span>' if credit else ""
        cap = f"<figcaption>{_text(caption)}{credit_html}</figcaption>"
    return f'<figure class="lead-image">{img_html}{cap}</figure>'


def _expect(page_url: str, case: str, outcome: str, *, language: str = "en", image_url: str | None = None,
            image_urls: tuple[str, ...] = (), texts: tuple[str, ...] = (), duplicate_of: str | None = None,
            note: str = "") -> dict:
    assert outcome in OUTCOMES, outcome
    return {
        "page_url": page_url,
        "case": case,
        "outcome": outcome,
        "language": language,
        "image_url": image_url,
        "image_urls": tuple(dict.fromkeys(((image_url,) if image_url else ()) + image_urls)),
        "text": texts[0] if texts else None,
        "texts": texts,
        "duplicate_of": duplicate_of,
        "note": note,
    }


def _add(b: _CrawlBuilder, article: Article, expected: dict, html_text: str | None = None, **page_kw) -> None:
    b.page(Page(article.url, html_text or _render(b, article), expected, **page_kw))


def _lead_article(b: _CrawlBuilder, site: Site, path: str, title: str, body: list[str], photo_key: str,
                  image_url: str, alt: str, caption: str | None, *, case: str, credit: str | None = None,
                  og: bool = True, og_alt: bool = False, outcome: str = "kept", in_crawl: bool = True,
                  texts: tuple[str, ...] | None = None, duplicate_of: str | None = None, note: str = "",
                  **article_kw) -> Article:
    photo = PHOTOS[photo_key] if photo_key in PHOTOS else COPIES[photo_key][1]
    b.image(image_url, photo, in_crawl)
    lead = _figure(_img(image_url, alt, photo.dimensions), caption, credit)
    article = Article(site, path, title, body, lead=lead, og_image=image_url if og else None,
                      og_image_alt=alt if og_alt else None, **article_kw)
    if texts is None:
        texts = tuple(t for t in (alt, caption) if t)
    _add(b, article, _expect(article.url, case, outcome, language=site.lang, image_url=image_url, texts=texts,
                             duplicate_of=duplicate_of, note=note))
    return article


