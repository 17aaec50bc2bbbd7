"""Choose one image's description among its alt, figcaption, og:image:alt, title and context.

Order and quality test (each candidate is cleaned and tested by :class:`TextCleaner`):

1. ``alt``: written for this image, usually by the page's author; first when it passes.
2. ``figcaption``: the visible caption of the enclosing ``<figure>``. It beats a passing alt
   that is short (fewer than ``figcaption_over_alt_words`` words) when it is itself longer: a
   figcaption is written for readers and says more than a short alt ("Starship" vs "SpaceX's
   Starship on the launch pad at Boca Chica, Texas").
3. ``og_image_alt``: the page's ``og:image:alt`` (present only when the image is the page's
   meta image).
4. ``title``: the image's tooltip; often a name or a headline, so it comes late.
5. ``context``: the caption-like text beside the image (:mod:`lait.filters.image_context`); only
   its leading sentence(s) are kept.
6. ``headline``: the heading right above the image, else the page's og:title or title, only
   where the image's file name names what the headline names (:func:`file_name_agrees`), or
   where it names a person (:func:`lait.filters.person_names.names_person`); else it fails as
   ``unconfirmed_headline``. It is exempt from the page-title test, being the title by nature.
7. ``next_sentence``: the first sentence of the body text right after an image without a
   caption, last, only where it names a person; else it fails as ``unconfirmed_sentence``.

A headline or sentence trusted because it names a person says who the photo shows only if the
photo shows someone: its description has ``needs_face`` set, and ScoreRelevance drops the pair
when the image's face score is low. (A file name is no such test for a sentence: the first
sentence of a story names its topic, as the file does, more often than what the photo shows.)

A candidate identical to the page's title (after cleaning) fails with reason ``page_title``:
a headline reused as alt text names the story, not what the picture shows. Identical raw
texts are cleaned once. When every candidate fails, the reason is that of the candidate that
got furthest through the rules (an English text that was too long says more than an empty
alt), so the funnel counts what really stopped the pair.

Examples
--------
>>> chooser = DescriptionChooser(TextCleaner(min_language_score=-1))
>>> d = chooser.choose({"alt": "logo", "figcaption": "A man rides a bicycle past the Capitol in the rain"})
>>> d.source, d.text
('figcaption', 'A man rides a bicycle past the Capitol in the rain')
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from lait.filters.person_names import names_person
from lait.filters.text_rules import CleanResult, TextCleaner

SOURCES = ("alt", "figcaption", "og_image_alt", "title", "context", "headline", "next_sentence")
# Texts written for the page, not for the image: they describe the image only where the
# publisher's file name names the same thing (`file_name_agrees`, headlines only) or where they
# name the person the photo shows (`names_person`, and a face in the image).
PAGE_SOURCES = frozenset(["headline", "next_sentence"])
UNCONFIRMED = {"headline": "unconfirmed_headline", "next_sentence": "unconfirmed_sentence"}
# File-name words that say what a file is for, not what it shows.
_FILE_WORDS = frozenset("header image photo picture front feature featured large small thumb thumbnail crop "
                        "edited final copy banner main lead web print full size hero post article story news "
                        "jpeg scaled".split())
_HEADLINE_WORD = re.compile(r"[a-z]{4,}")
# Host labels that say nothing about the site's name.
_GENERIC_HOST_LABELS = {"www", "m", "mobile", "amp", "edition", "en", "news", "blog", "blogs", "static", "cdn",
                        "img", "images", "com", "org", "net", "co", "uk", "de", "edu", "gov", "io", "info"}


@dataclass
class Description:
    """The chosen description of one image, or why there is none.

    Attributes
    ----------
    text : str or None
        The cleaned description (None when every candidate failed).
    source : str or None
        Which candidate won: alt, figcaption, og_image_alt, title or context.
    language_score : float or None
        fastText probability that `text` is English.
    caption_score : float or None
        The caption-quality model's score of `text` (None when the model is off).
    reason : str or None
        When `text` is None: the reason code of the best failed candidate, or ``no_text``.
    detail : str or None
        When `text` is None: "source: cleaned text" of that candidate, for `_rejects/`.
    needs_face : bool
        `text` is a page text trusted because it names a person: it describes the image only
        where the image shows a face.
    tried : dict
        Reason codes of the candidates that failed, by source.
    results : dict
        The :class:`CleanResult` of each candidate looked at, by source.
    """

    text: str | None
    source: str | None
    language_score: float | None = None
    caption_score: float | None = None
    reason: str | None = None
    detail: str | None = None
    needs_face: bool = False
    tried: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict, repr=False)

    @property
    def kept(self) -> bool:
        return self.text is not None


def site_names(page_url: str | None) -> tuple[str, ...]:
    """Names a site goes by, from its host: "https://www.sfgate.com/x" -> ("sfgate",)."""
    if not page_url or not isinstance(page_url, str):
        return ()
    try:
        host = urlsplit(page_url).hostname or ""
    except ValueError:
        return ()
    labels = [label for label in host.split(".") if label and label not in _GENERIC_HOST_LABELS]
    return tuple(label.replace("-", "") for label in labels[-1:] if len(label) >= 3)


def file_name_agrees(text: str, image_urls: list[str]) -> bool:
    """Whether a word of `text` (4+ letters, not a file-role word) is in one of the images' file names.

    A headline names the story; the photo shows what it names when the publisher named the
    file after the same thing ("The border virtues of Buddy Cole" over `buddy-cole11.jpeg`,
    "Schumer humor" over `amyschumerheader.jpeg`). Hash-named files confirm nothing.
    """
    names = _file_names(tuple(image_urls))
    words = {_singular(w) for w in _HEADLINE_WORD.findall(text.lower())} - _FILE_WORDS
    return any(word in name for word in words for name in names if name)


@functools.lru_cache(maxsize=1024)
def _file_names(image_urls: tuple[str, ...]) -> tuple[str, ...]:
    """Each URL's file name as its runs of letters joined ("buddy-cole11.jpeg" -> "buddycole"): read
    once for all the candidates of a record."""
    names = []
    for url in image_urls:
        name = unquote(urlsplit(url).path).rsplit("/", 1)[-1].lower().rsplit(".", 1)[0]
        names.append("".join(_HEADLINE_WORD.findall(name.replace("_", " ").replace("-", " "))))
    return tuple(names)


def _page_text_confirmation(source: str, raw: object, key: str, image_urls: list[str]) -> str | None:
    """Why a page text may describe the image: "file_name" (a headline the image's file name
    agrees with), "person" (it names a person; the image must show a face), or None."""
    if not isinstance(raw, str):
        return None
    if source == "headline" and file_name_agrees(key, image_urls):
        return "file_name"
    return "person" if names_person(key) else None


def _singular(word: str) -> str:
    """`word` without a plural "s": files are named for one thing ("cupcakes" over `cupcake.jpg`)."""
    return word[:-1] if len(word) > 4 and word.endswith("s") and not word.endswith("ss") else word


class DescriptionChooser:
    """Pick the best description of a pair record (see the module docstring for the order).

    Parameters
    ----------
    cleaner : TextCleaner, optional
        The rules (default: a `TextCleaner()` with its defaults).
    order : tuple of str, default=SOURCES
        Record keys tried, best first.
    figcaption_over_alt_words : int, default=6
        A passing figcaption with more words replaces a passing alt shorter than this (-1: never).
    reject_page_title : bool, default=True
        Fail a candidate that is the page's title.
    names_share : float, default=0.6
        A candidate with at least this share of capitalised content words is mostly names:
        its language is its page's (`page_language`, `page_language_score` of the record)
        when the page's language is in `page_languages` (>1 disables).
    page_languages : tuple of str, default=("en",)
    confirmed_min_words : int, default=2
        A candidate written for the image (not a headline) with a word the image's file name
        carries (:func:`file_name_agrees`) may be this short, below the cleaner's `min_words`:
        the publisher named the picture after it, as a portrait's caption "Vlad Denic" under
        `denic1_profile.jpg`. A short headline stays out even so: "Dating and taxes" over
        `online_dating.jpg` names the story, not the picture.
    """

    def __init__(self, cleaner: TextCleaner | None = None, order: tuple[str, ...] = SOURCES,
                 figcaption_over_alt_words: int = 6, reject_page_title: bool = True,
                 names_share: float = 0.6, page_languages: tuple[str, ...] = ("en",), confirmed_min_words: int = 2):
        self.cleaner = cleaner if cleaner is not None else TextCleaner()
        self.names_share = names_share
        self.page_languages = page_languages
        self.order = order
        self.figcaption_over_alt_words = figcaption_over_alt_words
        self.reject_page_title = reject_page_title
        self.confirmed_min_words = confirmed_min_words

    def choose(self, record: dict) -> Description:
        """The description of `record` (keys alt, figcaption, og_image_alt, title, context, page_title, page_url)."""
        return self.choose_batch([record])[0]

    def choose_batch(self, records: list[dict]) -> list[Description]:
        """`choose` for many records: the rules first, then fastText for all of them in one run."""
        walks = [self._walk(record) for record in records]
        pending = [r for walk in walks for r in walk["results"].values() if r.pending]
        scores = dict(zip(map(id, pending), self.cleaner.language_scores([r.text for r in pending])))
        return [self._finish(walk, scores) for walk in walks]

    def _walk(self, record: dict, start: int = 0, page_title: str | None = None) -> dict:
        """Prepare candidates in order until one passes the rules before the language rule."""
        names = site_names(record.get("page_url"))
        if start == 0:
            page_title = self._page_title(record.get("page_title"), names)
        walk = {"record": record, "names": names, "page_title": page_title, "results": {}, "next": len(self.order),
                "needs_face": set()}
        image_urls = record.get("image_urls") or [record.get("image_url") or ""]
        seen: dict[str, CleanResult] = {}
        for i in range(start, len(self.order)):
            source = self.order[i]
            raw = record.get(source)
            if source == "headline" and not raw:
                raw = record.get("og_title") or record.get("page_title")
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue
            key = " ".join(raw.split()) if isinstance(raw, str) else repr(raw)
            if source in PAGE_SOURCES:
                confirmation = _page_text_confirmation(source, raw, key, image_urls)
                if confirmation is None:
                    walk["results"][source] = CleanResult(key[:300], False, [UNCONFIRMED[source]])
                    continue
                if confirmation == "person":
                    walk["needs_face"].add(source)
            if key not in seen:
                seen[key] = self._prepare(raw, key, source, names, image_urls)
            walk["results"][source] = seen[key]
            if seen[key].pending and not self._figcaption_may_beat(source, seen[key], record):
                walk["next"] = i + 1
                break
        return walk

    def _prepare(self, raw, key: str, source: str, site_names: tuple[str, ...], image_urls: list[str]) -> CleanResult:
        """The cleaner's first rules; a text written for the image that they stop at `too_short` is
        tried again with `confirmed_min_words` where the image's file name carries one of its words."""
        result = self.cleaner.prepare(raw, source=source, site_names=site_names)
        if (result.reasons[:1] == ["too_short"] and source not in PAGE_SOURCES and isinstance(raw, str)
                and file_name_agrees(key, image_urls)):
            min_words = min(self.confirmed_min_words, self.cleaner.min_words)
            result = self.cleaner.prepare(raw, source=source, site_names=site_names, min_words=min_words)
        return result

    def _finish(self, walk: dict, scores: dict) -> Description:
        results: dict[str, CleanResult] = {}
        for source, prepared in walk["results"].items():
            result = self.cleaner.finish(prepared, self._language_score(prepared, scores.get(id(prepared)), walk))
            if (result.kept and walk["page_title"] and source not in PAGE_SOURCES
                    and result.text.lower() == walk["page_title"]):
                result = dataclasses.replace(result, kept=False, reasons=["page_title"])
            results[source] = result
        if not any(r.kept for r in results.values()) and walk["next"] < len(self.order):
            # The candidate that passed the first rules failed later (say, the language rule): go on.
            rest = self._finish(self._walk(walk["record"], walk["next"], walk["page_title"]), {})
            if rest.kept:
                rest.tried = {**{s: r.reasons[0] for s, r in results.items()}, **rest.tried}
                return rest
            for source, result in rest.results.items():
                results.setdefault(source, result)
        return self._pick(results, walk["needs_face"])

    def _language_score(self, prepared: CleanResult, score: float | None, walk: dict) -> float | None:
        """The text's language score, or its page's when the text is mostly names.

        fastText cannot tell the language of "(l to r) Ann Bo and Cy Dee": names belong to no
        language. A caption made mostly of names (at least `names_share` of its content words
        capitalised) takes its page's language score when the page is in an accepted language.
        """
        record = walk["record"]
        page_score = record.get("page_language_score")
        if prepared.pending and score is None and page_score is not None:
            score = self.cleaner.language_score(prepared.text)
        if (score is None or not prepared.pending or page_score is None
                or record.get("page_language") not in self.page_languages):
            return score
        if self.cleaner.name_share(prepared.text) >= self.names_share:
            return max(score, float(page_score))
        return score

    def _figcaption_may_beat(self, source: str, result: CleanResult, record: dict) -> bool:
        return (source == "alt" and self.figcaption_over_alt_words >= 0 and "figcaption" in self.order
                and bool(record.get("figcaption"))
                and len(result.text.split()) < self.figcaption_over_alt_words)

    def _page_title(self, title: object, names: tuple[str, ...]) -> str | None:
        if not self.reject_page_title or not isinstance(title, str) or not title.strip():
            return None
        # The title without its " | Site" tail, edited like a candidate (no rules).
        text = self.cleaner.strip(title, names)
        return text.lower() if text else None

    def _pick(self, results: dict[str, CleanResult], needs_face: set[str] = frozenset()) -> Description:
        tried = {s: r.reasons[0] for s, r in results.items() if not r.kept}
        passing = [s for s, r in results.items() if r.kept]
        if passing:
            source = passing[0]
            if source == "alt" and "figcaption" in passing:
                alt, fig = results["alt"].text, results["figcaption"].text
                if len(fig.split()) > len(alt.split()):
                    source = "figcaption"
            best = results[source]
            return Description(best.text, source, best.language_score, best.caption_score,
                               needs_face=source in needs_face, tried=tried, results=results)
        if not results:
            return Description(None, None, reason="no_text")
        ranked = ["unconfirmed_sentence", "unconfirmed_headline", *self.cleaner.rule_names, "page_title"]
        rank = {name: i for i, name in enumerate(ranked)}
        source = max(results, key=lambda s: (rank.get(results[s].reasons[0], -1), -self.order.index(s)))
        best = results[source]
        detail = f"{source}: {best.text}" if best.text else source
        if best.reasons[0] == "low_caption_score":
            detail = f"{source}: score {best.caption_score:.3f} < {self.cleaner.caption_threshold:.3f}: {best.text}"
        return Description(None, None, best.language_score, best.caption_score, best.reasons[0], detail,
                           tried=tried, results=results)
