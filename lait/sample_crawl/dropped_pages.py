"""The sample crawl's pages lait keeps no pair from, one block per reason."""

from __future__ import annotations

from lait.sample_crawl.images import PHOTOS, Graphic
from lait.sample_crawl.kept_pages import _NEWS_CDN, _URL_BOATS, _URL_TRIO, _news_related
from lait.sample_crawl.pages import (
    COMMUNITY,
    DE,
    ES,
    FR,
    GARDEN,
    NEWS,
    SHARED_CAPTION,
    TRAVEL,
    Article,
    _add,
    _CrawlBuilder,
    _expect,
    _figure,
    _img,
    _lead_article,
)

_GALLERY_INTROS = [
    ("Ruth in Leeds", "on her first trip to China, climbing Longevity Hill just after sunrise"),
    ("David from Cardiff", "from the shore of Kunming Lake, looking back at the hill"),
    ("Priya in Birmingham", "on a hazy afternoon, waiting for a boat across the lake"),
    ("Kenji from Bristol", "who turned his camera sideways to fit the whole tower in"),
    ("Alice in Norwich", "from the top of the hill, where the trees frame the view of the water"),
    ("Marco from Glasgow", "during a business trip, in the only free hour of the week"),
    ("Helen in Exeter", "who held her phone upright to catch the height of the tower"),
    ("Sam from Belfast", "in her allotment, where the dahlias have been flowering for weeks"),
    ("Olu in Manchester", "at a small garden centre on the edge of town"),
    ("Grace from York", "in her late father's garden, which she now looks after"),
    ("Peter in Dundee", "lying on the lawn to look up at the tallest plant in the border"),
    ("Jo from Brighton", "at a flower show, where it won third prize in its class"),
]


def _gallery_pages(b: _CrawlBuilder) -> None:
    """Twelve pages, twelve different photos, one shared caption (also used as alt): all dropped by Aggregate."""
    for week, (who, where) in enumerate(_GALLERY_INTROS, start=1):
        key = f"reader_{week:02d}"
        photo = PHOTOS[key]
        ext = {"JPEG": "jpg", "WEBP": "webp", "PNG": "png"}[photo.format]
        url = b.image(f"{COMMUNITY.origin}/uploads/2024/w{week:02d}/reader-photo-{week:02d}.{ext}", photo)
        body = [f"This week's picture was sent in by {who}, who took it {where}. Thank you for sharing it with us.",
                "Every week our readers' editor chooses one photograph from the hundreds posted to the community "
                "gallery. The winner receives a printed copy and a year's subscription to the weekend magazine.",
                "To enter, upload your photo with a few words about where and when you took it. Please make sure "
                "the picture is your own, and ask permission before photographing people."]
        article = Article(COMMUNITY, f"/gallery/2024/reader-photo-of-the-week-{week}",
                          f"Reader photo of the week, week {week}", body,
                          lead=_figure(_img(url, SHARED_CAPTION, photo.dimensions), SHARED_CAPTION), og_image=url,
                          date=f"2024-{1 + (week - 1) // 4:02d}-{1 + 7 * ((week - 1) % 4):02d}", ads=week % 2 == 0)
        _add(b, article, _expect(article.url, "shared_caption", "shared_text", image_url=url, texts=(SHARED_CAPTION,),
                                 note="12 different photos share this caption (alt and figcaption)"))


# (site, path, title, photo key, file name, alt, paragraphs)
_FOREIGN = [
    (DE, "/reise/2024/03/sommerpalast-peking", "Der Sommerpalast in Peking ist wieder geöffnet", "tower_lake",
     "sommerpalast-turm.jpg",
     "Der Turm des buddhistischen Weihrauchs erhebt sich über den Bäumen am Kunming-See im Sommerpalast von Peking",
     ["Nach mehr als zwei Jahren Bauzeit ist der berühmte Turm im Sommerpalast wieder für Besucher geöffnet. "
      "Handwerker haben tausende glasierte Dachziegel ersetzt und die roten Säulen neu gestrichen.",
      "Von der oberen Galerie aus blickt man weit über den Kunming-See bis zu den Westbergen. Die Parkverwaltung "
      "rechnet in den Frühlingsferien mit einem großen Andrang.",
      "Eintrittskarten für den Turm müssen künftig mindestens einen Tag vorher im Internet gebucht werden. "
      "Gruppen dürfen nicht größer als dreißig Personen sein."]),
    (DE, "/garten/2024/03/dahlien-richtig-pflanzen", "Dahlien richtig pflanzen: so gelingt es", "dahlia_orange",
     "dahlie-orange.jpg",
     "Eine orangefarbene Pompon-Dahlie in voller Blüte vor dunkelgrünen Blättern",
     ["Dahlienknollen sollten erst nach den Eisheiligen ins Beet, denn sie vertragen keinen Frost und faulen in "
      "kalter, nasser Erde sehr schnell.",
      "Wer früher Blüten möchte, treibt die Knollen ab März in Töpfen auf der hellen Fensterbank vor. Gegossen "
      "wird zunächst nur sparsam, bis sich die ersten Triebe zeigen.",
      "Im Sommer brauchen die Pflanzen viel Wasser und alle zwei Wochen etwas Dünger. Verblühtes sollte man "
      "regelmäßig abschneiden, dann blühen sie bis zum ersten Frost."]),
    (FR, "/voyage/2024/03/palais-d-ete-pekin", "Le Palais d'été de Pékin, joyau impérial au bord du lac",
     "pagoda_square", "pagode-palais-ete.jpg",
     "Une haute pagode aux toits rouges et verts superposés domine les arbres de la colline",
     ["Construit au dix-huitième siècle pour les empereurs de la dynastie Qing, le Palais d'été s'étend autour "
      "d'un immense lac artificiel au nord-ouest de Pékin.",
      "La pagode qui couronne la colline de la Longévité offre une vue magnifique sur le lac, ses îles et le "
      "célèbre pont aux dix-sept arches. Il faut arriver tôt le matin pour éviter la foule.",
      "Comptez une journée entière pour visiter les jardins, les pavillons et la longue galerie couverte, "
      "décorée de milliers de peintures."]),
    (FR, "/jardin/2024/03/cultiver-les-dahlias", "Cultiver les dahlias : nos conseils pour une belle floraison",
     "dahlia_left", "dahlia-pompon.jpg",
     "Un dahlia pompon orange en pleine floraison sur un fond de feuillage vert sombre",
     ["Les dahlias se plantent au printemps, lorsque tout risque de gelée est écarté. Choisissez un endroit bien "
      "ensoleillé et une terre riche, légère et bien drainée.",
      "Installez un tuteur solide au moment de la plantation afin de ne pas abîmer les tubercules plus tard. "
      "Arrosez régulièrement pendant l'été, surtout par temps sec.",
      "Coupez les fleurs fanées au fur et à mesure : la plante fleurira ainsi sans interruption jusqu'aux "
      "premières gelées de l'automne."]),
    (ES, "/viajes/2024/03/palacio-de-verano-pekin", "El Palacio de Verano de Pekín, un paseo entre lagos y pagodas",
     "pagoda_roofs", "tejados-pagoda.jpg",
     "Vista cercana de los tejados superiores de una pagoda china con tejas vidriadas naranjas y verdes",
     ["El Palacio de Verano fue el lugar de descanso de los emperadores durante los meses más calurosos del año. "
      "Hoy es uno de los parques más visitados de la capital china.",
      "Desde lo alto de la colina de la Longevidad se disfruta de una vista espectacular del lago Kunming y de "
      "sus pequeñas islas. Conviene llegar temprano para evitar las aglomeraciones.",
      "En primavera y en otoño las temperaturas son agradables y los jardines lucen sus mejores colores."]),
    (ES, "/jardin/2024/03/dalias-en-primavera", "Cómo plantar dalias en primavera", "dahlia_close",
     "dalia-petalos.jpg",
     "Primer plano de los pétalos rizados de color naranja en el centro de una dalia",
     ["Las dalias son originarias de México y florecen desde el verano hasta las primeras heladas. Sus "
      "tubérculos se plantan en primavera, cuando la tierra ya está templada.",
      "Necesitan mucho sol, riego frecuente durante el verano y un tutor firme para que los tallos no se "
      "rompan con el viento.",
      "Si se cortan las flores marchitas con regularidad, la planta seguirá produciendo nuevas flores durante "
      "muchas semanas."]),
]


def _foreign_pages(b: _CrawlBuilder) -> None:
    """German, French and Spanish pages with good photos and texts in their language: dropped for language."""
    for site, path, title, key, name, alt, body in _FOREIGN:
        folder = {"de": "bilder", "fr": "images", "es": "imagenes"}[site.lang]
        _lead_article(b, site, path, title, body, key, f"{site.origin}/{folder}/2024/03/{name}", alt, None,
                      og_alt=True, case=f"non_english_{site.lang}", outcome="language", date="2024-03-13",
                      ads=False, note=f"{site.lang} page, same photo bytes as an English page at its own URL")


def _no_image_pages(b: _CrawlBuilder) -> None:
    """Pages with only clutter: logos, icons, banners, pixels, avatars, small thumbnails. No pair."""
    pages = [
        Article(NEWS, "/about", "About Example News",
                ["Example News is an independent news organisation founded in 1998. Our newsroom of eighty "
                 "journalists reports on world affairs, business, science, travel and culture.",
                 "We are funded by our readers and by advertising. Our journalism is never influenced by "
                 "advertisers, and sponsored content is always clearly labelled.",
                 "If you think we have got something wrong, please write to our readers' editor, who will look "
                 "into your complaint and publish corrections where they are needed."],
                ads=False, related=[]),
        Article(NEWS, "/opinion/2024/03/11/the-case-for-slower-news", "The case for slower news",
                ["We are told that news must be instant, that whoever publishes first wins. I am no longer sure "
                 "that readers want to be first. I think they want to be right.",
                 "Every newsroom knows the feeling of a story that moves faster than the facts. Numbers change, "
                 "names are corrected, and early reports turn out to be rumours.",
                 "Slower news does not mean less news. It means waiting an hour to call a second source, and "
                 "telling readers clearly what we know and what we do not.",
                 "Our readers have told us, again and again, that they would rather have one careful account "
                 "than ten quick ones. It is time we listened."],
                author="Anna Berg", date="2024-03-11", related=_news_related("")),
        Article(TRAVEL, "/contact", "Contact Example Travel",
                ["Our editorial team is based in Bristol and is happy to hear from readers. We read every message, "
                 "although we cannot always reply to each one individually.",
                 "For questions about a booking made through one of our partners, please contact the partner "
                 "directly, because we do not have access to your booking details.",
                 "Press enquiries and requests to review hotels or tours should be sent to our press office."],
                ads=True, pixel=True),
        Article(GARDEN, "/newsletter", "Sign up for our monthly garden newsletter",
                ["Every month we send a short letter with seasonal jobs for the garden, a plant we are excited "
                 "about and answers to questions from readers.",
                 "It is free, it contains no advertising, and you can unsubscribe at any time with a single click.",
                 '<form class="signup" action="/newsletter/subscribe" method="post"><label>Email address '
                 '<input type="email" name="email"></label> <button type="submit">Subscribe</button></form>'],
                ads=False),
    ]
    notes = ["about page: logo, social icons, tracking pixel only",
             "opinion column: logo, ad banners, avatar, social icons, related thumbnails, pixel; no photo",
             "contact page: logo, ad banners, icons, pixel", "newsletter form: logo and icons only"]
    for article, note in zip(pages, notes):
        _add(b, article, _expect(article.url, "no_photo", "no_image", note=note))

    # The home page: teaser cards with small thumbnails of other articles, and no lead photo.
    cards = _news_related("") + [("Boats return to Kunming Lake", _URL_BOATS, PHOTOS["palace_lower"]),
                                 ("A spring weekend in Beijing", _URL_TRIO, PHOTOS["tower_middle"])]
    body = ["Good morning. Here are today's top stories from our newsroom, updated every few minutes until late "
            "in the evening.",
            "Sign up for our morning briefing to get the most important news of the day in your inbox before "
            "breakfast, with a short summary of each story and links to read more."]
    article = Article(NEWS, "/", "Example News: news, analysis and comment from around the world", body,
                      related=cards, date="2024-03-15")
    _add(b, article, _expect(article.url, "home_page_thumbnails", "no_image",
                             note="home page: five 160 px teaser thumbnails, logo, ads, icons; no dominant photo"))


def _missing_image_pages(b: _CrawlBuilder) -> None:
    """Lead photos hosted where the crawler did not go: AcquireImages must fetch them or drop not_in_crawl."""
    _lead_article(
        b, TRAVEL, "/guides/beijing/where-to-eat-near-the-summer-palace", "Where to eat near the Summer Palace",
        ["The Summer Palace is huge, and the few restaurants inside the park are crowded and overpriced. With a "
         "little planning you can eat much better for less.",
         "Just outside the north gate, a row of small family restaurants serves noodles, dumplings and cold "
         "dishes. Look for the places full of local office workers at lunchtime.",
         "For a special meal, book a table at one of the courtyard restaurants near the east gate, where the "
         "menus are based on dishes once cooked for the imperial court."],
        "pagoda_edge", "https://img.example.org/travel/2024/03/pagoda-edge-lake.jpg",
        "The corner of a painted pagoda beside a calm lake, with a small island and trees under a pale sky",
        "The view from the north side of the hill.", in_crawl=False, outcome="not_in_crawl", case="image_not_in_crawl",
        date="2024-03-07", note="the lead photo's URL has no record in the WARC")
    _lead_article(
        b, GARDEN, "/blog/2024/01/overwintering-dahlias", "How to keep dahlia tubers safe over winter",
        ["Once the first frost has blackened the leaves, it is time to lift your dahlias. Cut the stems down to "
         "a few inches and dig the tubers out carefully with a fork.",
         "Turn them upside down for a week so that water drains out of the hollow stems, then brush off the soil "
         "and store them in a box of dry compost or sand.",
         "Keep the box somewhere cool but frost free, such as a garage or shed, and check the tubers every month "
         "for signs of rot."],
        "dahlia_leaves", "https://img.example.org/garden/2024/01/orange-dahlia-leaves.jpg",
        "An orange dahlia flower and a half open bud in front of dark, blurred green leaves",
        "Enjoy the last blooms before the frost.", in_crawl=False, outcome="not_in_crawl", case="image_not_in_crawl",
        author="Sarah Mills", date="2024-01-20", note="the lead photo's URL has no record in the WARC")


def _small_and_drawn_pages(b: _CrawlBuilder) -> None:
    """Photos under 300 px (size filter) and drawn figures (naturalness filter)."""
    _lead_article(
        b, NEWS, "/world/asia/2024/03/01/lake-ice-melts-early", "Ice on Beijing's lakes melts early",
        ["The ice on the lakes of Beijing's imperial parks melted almost two weeks earlier than usual this year, "
         "after the warmest February since records began.",
         "Skating areas on Kunming Lake and in Beihai Park closed in the middle of the month, and park staff "
         "warned visitors to keep off the remaining ice near the shore.",
         "Scientists say the winters in northern China have become noticeably shorter over the past thirty years."],
        "lake_small", f"{_NEWS_CDN}/2024/03/kunming-lake-thaw-280.jpg",
        "Open water on a hazy lake with an island, seen through the dark green trees on the hillside",
        "The lake in late February.", outcome="too_small", case="small_photo", author="Li Wen", date="2024-03-01",
        note="280x248 photo: below the 300 px minimum side")
    _lead_article(
        b, GARDEN, "/blog/2024/03/dahlia-cuttings", "Taking dahlia cuttings in spring",
        ["Cuttings are the cheapest way to get more dahlias. When the shoots on your potted tubers reach about "
         "three inches, cut them off just below a leaf joint with a clean sharp knife.",
         "Push the cuttings into small pots of gritty compost and cover them with a clear plastic bag. They "
         "should root within three weeks on a warm windowsill.",
         "Plants grown from cuttings flower in the same summer and form their own small tubers by the autumn."],
        "dahlia_small", f"{GARDEN.origin}/images/uploads/dahlia-close-240.jpg",
        "The tightly curled orange petals of a dahlia flower, seen from directly above", None,
        outcome="too_small", case="small_photo", date="2024-03-03", note="240x240 photo: below the 300 px minimum side")

    chart = Graphic("bar_chart", (640, 400), "Summer Palace visitors by month, 2023 (thousands)", (200, 60, 40))
    diagram = Graphic("diagram", (600, 450), "The dahlia year", (60, 120, 80))
    for site, path, title, graphic, name, alt, caption, body in [
        (NEWS, "/business/2024/03/06/summer-palace-visitor-numbers", "Visitor numbers at the Summer Palace hit a record",
         chart, f"{_NEWS_CDN}/2024/03/chart-visitors-by-month.png",
         "Bar chart of monthly visitor numbers at the Summer Palace in 2023, with a peak in October",
         "Visitors per month in 2023, in thousands. Source: park authority.",
         ["More than six million people visited the Summer Palace last year, the highest number ever recorded, "
          "according to figures released by the park authority on Wednesday.",
          "Numbers rose steadily through the spring and peaked in October, when the national holiday brings "
          "millions of domestic tourists to the capital.",
          "Officials said they would limit daily visitor numbers at busy times to protect the historic buildings."]),
        (GARDEN, "/guides/dahlia-planting-calendar", "A dahlia planting calendar", diagram,
         f"{GARDEN.origin}/images/uploads/dahlia-year-diagram.png",
         "Diagram of the dahlia year, from planting tubers in spring to lifting and storing them in November",
         "When to plant, stake, enjoy and lift your dahlias.",
         ["Dahlias follow a simple yearly rhythm, and once you know it they are among the easiest plants in the "
          "garden to look after.",
          "Plant the tubers in late spring, stake the stems as they grow in June, and enjoy the flowers from "
          "midsummer until the first frost.",
          "In November lift the tubers, dry them and store them somewhere cool until the following spring."]),
    ]:
        b.image(name, graphic)
        lead = _figure(_img(name, alt, graphic.size), caption)
        article = Article(site, path, title, body, lead=lead, og_image=name, date="2024-03-06")
        _add(b, article, _expect(article.url, "drawn_figure", "not_natural", image_url=name, texts=(alt, caption),
                                 note="the figure is a drawn chart/diagram, not a photo"))


