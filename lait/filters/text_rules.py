"""Named rules that clean an image description and say why one is dropped.

The LAIT recipe (ImageBERT, section 3): "a series of heuristic rules filter out bad spans and
noisy words (spam/porn) in sentences and keep only sentences of normal length; finally discard
sentences with a high ratio of out-of-vocabulary words". :class:`TextCleaner` makes each of
those rules explicit, in the style of datatrove's ``C4QualityFilter``: every threshold is a
keyword argument with its default (``-1`` disables a numeric rule), regexes and word lists
live in :mod:`lait.filters.text_lexicon` (the lists are data files in ``lait/filters/data/``),
and a dropped text carries the reason code of the rule that dropped it. The module is one
class, over 600 lines, because each rule is a short method whose order and edits the
others depend on; this docstring is its reference.

Edits (the text is changed, never dropped, by these):

- ``repair``: mojibake repaired with ftfy (only when the text shows mojibake), HTML entities
  decoded, Unicode NFKC, invisible characters removed, whitespace collapsed; input longer than
  ``max_chars`` is cut first (a huge attribute cannot stall a worker).
- ``dateline``: an agency dateline ("WASHINGTON, DC - NOVEMBER 19:", "FILE -").
- ``label``: a leading label or counter ("Image:", "Photo 3 of 5:", "Fig. 2.", "2of4").
- ``credit``: photo credits and copyright lines ("(AP Photo/Gene Puskar)", "Credit: STR/AFP",
  "Photo by ...", "© DONG", trailing agency names from ``data/photo_credits.txt``).
- ``url``, ``email``, ``file_name`` (``IMG_2041.JPG``), ``pixel_size`` (``1200x630``, ``640px``),
  ``enlarge`` ("click to enlarge"), ``navigation`` (a "Click ..." / "Tap ..." sentence),
  ``stock_photo`` ("stock photo", "royalty-free"), ``emoticon`` (``:grr:`` short codes,
  pictographs, ``@handles``), ``site_name`` (a trailing " | Site" or " - Photo" segment, or the
  page's own site name).
- ``sentences``: a text longer than ``max_words`` keeps its leading whole sentences up to
  ``max_words`` (a news caption's first sentence describes the picture; the rest tells the story).

Hard rules drop what must never pass; the rest is judged by a learned caption-quality model
(:mod:`lait.filters.caption_quality`): ``low_caption_score``, after the language rule, drops a text
whose score is under ``min_caption_score`` (default: the threshold chosen with the model by
cross-validation grouped by source). The old soft rules (marked *soft* below) are then
features of the model, weighed against everything else, not reasons; with
``min_caption_score=-1`` the model is off and they drop as rules, as they did before it (and
for a ``headline`` candidate, which the chooser admits only where the image's file name names
what it names).

Rules (reason codes, in the order they are tested):

- ``empty``: nothing left (None, "", whitespace); ``not_text``: not a string.
- ``mojibake``: still garbled after repair.
- ``placeholder``: template leftovers (``{{alt}}``, ``${title}``, ``## sitename ##``) or a
  generic default ("image", "Photo 2", "undefined", "OLYMPUS DIGITAL CAMERA";
  ``data/placeholders.txt``) or a browser notice ("Your browser does not support the video tag").
- ``file_name``: the whole text is a file name or slug ("IMG_2041.JPG", "hero-banner-2x",
  "Vindman looking at Williams.jpeg", "Screen Shot 2011-08-13 at 4.55.35 PM").
- ``rating``: rating stars ("4.5 out of 5 stars", "3 Sterne").
- ``url``, ``email``, ``credit``...: the text was only boilerplate (the edit that emptied it).
- ``site_name``: the whole text is the page's site name (a logo's alt).
- ``licence``: a short licence badge ("Attribution-ShareAlike 4.0", "CC BY-NC").
- ``logo`` (*soft*): a short text (``<= max_logo_words``) naming a logo, icon, badge or avatar.
- ``navigation`` (*soft*): a text that starts with a call to action ("Click here to ...", "Subscribe to
  ...", or "Share on Facebook" up to ``max_navigation_words + 4`` words) or a short text
  (``<= max_navigation_words``) that names a widget or social network.
- ``symbols``: mostly digits or punctuation (letters < ``min_letter_ratio`` of characters).
- ``all_caps`` (*soft*): shouting (upper-case share of cased letters >= ``max_caps_ratio``).
- ``repeated_words``: repeated-token spam (distinct words < ``min_unique_word_ratio``).
- ``too_short`` / ``too_long``: fewer than ``min_words`` or more than ``max_words`` words
  (LAIT keeps "sentences of normal length"; its captions average about 13 words).
- ``spam_porn``: a word or phrase of the curated lexicon ``data/spam_porn_en.txt``, matched on
  whole words after undoing common obfuscations (``p0rn``, ``p.o.r.n``, ``s e x y``).
- ``rare_words`` (*soft*): the share of out-of-vocabulary words is above ``max_rare_word_ratio``.
  Vocabulary: the ``vocabulary_size`` most frequent English words of ``wordfreq``; a
  capitalised word, or a short all-caps word, counts as a proper noun or acronym and is never
  rare (captions name people and places).
- ``language``: fastText lid.176 gives the text's ``language`` a probability under
  ``min_language_score`` (the description itself must be English, not only its page).
- ``keyword_list`` (*soft*): SEO tag lists: at least ``keyword_min_words`` words, not ended like a
  sentence, with function words (``data/stopwords_en.txt``) under ``max_keyword_stopword_ratio``
  ("queen news prince philip health latest ...").
- ``title_case`` (*soft*): a headline or a list of names: at least ``title_case_min_words`` content
  words, every one capitalised, and no function word in lower case between them ("Patriots QB
  Tom Brady Speaks About Friendship"). A caption naming people and places keeps its function
  words in lower case ("Minister Joe Costello with King Letsie III of Lesotho") and is kept.
- ``low_caption_score``: the caption-quality model scores the text under ``min_caption_score``
  (UI strings, headlines, tag lists, name lists: "Rate this article", "Older posts").

`clean` = `prepare` (edits and the rules before ``language``) then `finish` (``language``, the
rules after it and the model); `clean_batch` runs `prepare` over many texts and then fastText over the
survivors together, which is faster (the CleanText stage batches its pairs).

Examples
--------
>>> cleaner = TextCleaner(min_language_score=-1)
>>> cleaner.clean("Two cribs in a small nursery space (Photo: Jane Doe/AP)").text
'Two cribs in a small nursery space'
>>> cleaner.clean("Share on Facebook").reasons
['too_short']
>>> cleaner.clean("Follow us on Facebook and Twitter for more").reasons
['low_caption_score']
>>> TextCleaner(min_language_score=-1, min_caption_score=-1).clean("Share on Facebook").reasons
['navigation']
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lait.filters.text_lexicon import (
    BROWSER_NOTICE,
    CALL_TO_ACTION,
    CAMERA_NAME,
    CLOSE_PAREN_JOINED,
    COPYRIGHT,
    CREDIT_HINT,
    CREDIT_HINT_FRAGMENTS,
    CREDIT_PAREN,
    CREDIT_TAIL,
    DATELINE,
    EMAIL,
    EMOTICON,
    EMPTY_BRACKETS,
    ENLARGE,
    ENLARGE_HINTS,
    FILE_HINTS,
    FILE_NAME,
    FILE_NAME_END,
    INVISIBLE,
    LABEL,
    LICENCE,
    LICENCE_HINTS,
    MOJIBAKE,
    NON_WORD,
    NON_WORD_OR_PLUS,
    PICTOGRAPH,
    PIXEL_HINT,
    PIXEL_SIZE,
    PLACEHOLDER_NOISE,
    RATING,
    SEPARATOR_CHARS_END,
    SEPARATOR_CHARS_START,
    SLASH_CREDIT,
    SLUG,
    STOCK_PHOTO,
    STRIPPABLE,
    TEMPLATE,
    TRAILING_LABELS,
    TRAILING_SEGMENT,
    URL,
    URL_HINTS,
    edge_stripped_tokens,
    english_vocabulary,
    has_any,
    letter_counts,
    lexicons,
    spam_porn_matches,
    split_sentences,
    squash,
    words_of,
)

# Rules that the caption-quality model weighs as features instead of obeying (when it is on).
SOFT_RULES = frozenset(["logo", "navigation", "all_caps", "rare_words", "keyword_list", "title_case"])
# Candidates the model does not judge: the chooser admits a headline only where the image's file
# name names what it names (`lait.filters.description.file_name_agrees`); the soft rules stay rules there.
RULE_SOURCES = frozenset(["headline"])
# Many style guides set headlines in Title Case: for a headline that casing says nothing.
HEADLINE_EXEMPT_RULES = frozenset(["title_case"])


@dataclass
class CleanResult:
    """What :meth:`TextCleaner.clean` decided about one text.

    Attributes
    ----------
    text : str or None
        The cleaned text; None when nothing usable is left.
    kept : bool
        Whether every rule passed.
    reasons : list of str
        Reason codes of the rules that failed (the first one only unless `explain=True`).
    language_score : float or None
        fastText probability of the wanted language, when the language rule ran.
    edits : list of str
        Names of the edits that changed the text (``credit``, ``url``, ``sentences``...).
    pending : bool
        Set by :meth:`TextCleaner.prepare` on a text that passed the rules before the language
        rule; :meth:`TextCleaner.finish` decides it.
    caption_score : float or None
        The caption-quality model's score, when the model ran.
    signals : list of str
        Soft rules that fire on the text (features of the model, not reasons).
    source : str or None
        Where the text came from (alt, title, figcaption...), a feature of the model.
    """

    text: str | None
    kept: bool
    reasons: list[str] = field(default_factory=list)
    language_score: float | None = None
    edits: list[str] = field(default_factory=list)
    pending: bool = False
    caption_score: float | None = None
    signals: list[str] = field(default_factory=list)
    source: str | None = None

    def to_dict(self) -> dict:
        score = None if self.caption_score is None else round(self.caption_score, 3)
        return {"text": self.text if self.kept else None, "kept": self.kept, "reasons": list(self.reasons),
                "caption_score": score}


class TextCleaner:
    """Clean one image description and keep it, or say which named rule drops it.

    Parameters
    ----------
    min_words, max_words : int, default=4, 50
        Word bounds (LAIT: "sentences of normal length", mean about 13 words). A longer text
        first keeps its leading sentences up to `max_words`.
    max_rare_word_ratio : float, default=0.3
        Largest share of out-of-vocabulary words (-1 disables).
    min_language_score : float, default=0.5
        Smallest fastText probability of `language` (-1 disables; then fastText is not loaded).
    language : str, default="en"
    vocabulary_size : int, default=100_000
        How many of wordfreq's most frequent English words form the vocabulary.
    max_chars : int, default=4000
        Input is cut to this many characters before any rule.
    max_caps_ratio : float, default=0.8
        `all_caps` drops texts whose cased letters are at least this share upper-case (-1 disables).
    min_caps_letters : int, default=6
        `all_caps` looks only at texts with at least this many cased letters.
    min_letter_ratio : float, default=0.5
        `symbols` drops texts whose letters are under this share of non-space characters.
    min_unique_word_ratio : float, default=0.5
        `repeated_words` drops texts (of 4+ words) whose distinct words are under this share.
    keyword_min_words : int, default=8
    max_keyword_stopword_ratio : float, default=0.1
        `keyword_list` drops texts of `keyword_min_words`+ words with fewer function words (-1 disables).
    title_case_min_words : int, default=4
        `title_case` drops texts with at least this many content words, all capitalised (-1 disables).
    max_logo_words, max_navigation_words : int, default=6, 6
        Longest text that the `logo` and `navigation` rules look at.
    language_chars : int, default=300
        fastText reads at most this many leading characters (cut at a word).
    language_identifier : object, optional
        Anything with `score(text, language) -> float` (default: a
        :class:`lait.filters.language.LanguageIdentifier`, loaded on first use or by :meth:`load`).
    min_caption_score : float, optional
        Texts the caption-quality model scores under this fail as ``low_caption_score``
        (default None: the threshold shipped with the model, chosen by grouped CV; -1 turns the
        model off, and then the soft rules drop as rules).
    caption_model : CaptionQualityModel or str or Path, optional
        The model or its JSON file (default: ``lait/filters/data/caption_quality.json``).
    """

    def __init__(self, min_words: int = 4, max_words: int = 50, max_rare_word_ratio: float = 0.3,
                 min_language_score: float = 0.5, language: str = "en", vocabulary_size: int = 100_000,
                 max_chars: int = 4000, max_caps_ratio: float = 0.8, min_caps_letters: int = 6,
                 min_letter_ratio: float = 0.5, min_unique_word_ratio: float = 0.5, keyword_min_words: int = 8,
                 max_keyword_stopword_ratio: float = 0.1, title_case_min_words: int = 4,
                 max_logo_words: int = 6, max_navigation_words: int = 6, language_chars: int = 300,
                 language_identifier: Any = None, min_caption_score: float | None = None,
                 caption_model: Any = None):
        self.min_words = min_words
        self.max_words = max_words
        self.max_rare_word_ratio = max_rare_word_ratio
        self.min_language_score = min_language_score
        self.language = language
        self.vocabulary_size = vocabulary_size
        self.max_chars = max_chars
        self.language_chars = language_chars
        self.max_caps_ratio = max_caps_ratio
        self.min_caps_letters = min_caps_letters
        self.min_letter_ratio = min_letter_ratio
        self.min_unique_word_ratio = min_unique_word_ratio
        self.keyword_min_words = keyword_min_words
        self.max_keyword_stopword_ratio = max_keyword_stopword_ratio
        self.title_case_min_words = title_case_min_words
        self.max_logo_words = max_logo_words
        self.max_navigation_words = max_navigation_words
        self.language_identifier = language_identifier
        self.min_caption_score = min_caption_score
        self.caption_model = caption_model
        self._lex = lexicons()
        self._vocabulary: frozenset[str] | None = None
        self._rules = [
            ("site_name", self._is_site_name), ("licence", self._is_licence), ("logo", self._is_logo), ("navigation", self._is_navigation),
            ("placeholder", self._is_placeholder), ("symbols", self._is_symbols), ("all_caps", self._is_all_caps),
            ("repeated_words", self._is_repeated), ("too_short", self._is_too_short), ("too_long", self._is_too_long),
            ("spam_porn", self._is_spam_porn), ("rare_words", self._is_rare),
        ]
        # After the language rule (they assume English: an English function-word list, English casing).
        self._rules_after_language = [("keyword_list", self._is_keyword_list), ("title_case", self._is_title_case)]

    @staticmethod
    def _rules_of(rules: list, source: str | None, min_words: int | None = None) -> list:
        """`rules` as they apply to a text from `source` (a headline's casing is its own), with
        `min_words` (when given) in place of the cleaner's own for `too_short`."""
        if source == "headline":
            rules = [(name, rule) for name, rule in rules if name not in HEADLINE_EXEMPT_RULES]
        if min_words is not None:
            rules = [(name, (lambda text, words, site_names: len(words) < min_words) if name == "too_short" else rule)
                     for name, rule in rules]
        return rules

    @property
    def uses_model(self) -> bool:
        """Whether the caption-quality model judges the text (then the soft rules are its features)."""
        return self.min_caption_score is None or self.min_caption_score >= 0

    # ------------------------------------------------------------ public API
    def load(self) -> TextCleaner:
        """Load the vocabulary, the language model and the caption model now (a Beam DoFn calls
        this in `setup`)."""
        if self.max_rare_word_ratio >= 0:
            self._vocabulary = english_vocabulary(self.vocabulary_size)
        if self.min_language_score >= 0 and self.language_identifier is None:
            from lait.filters.language import LanguageIdentifier

            self.language_identifier = LanguageIdentifier()
        if self.uses_model:
            self._caption_model()
        return self

    def _caption_model(self):
        if self.caption_model is None or isinstance(self.caption_model, (str, Path)):
            from lait.filters.caption_quality import CaptionQualityModel

            self.caption_model = CaptionQualityModel.load(self.caption_model)
        return self.caption_model

    @property
    def caption_threshold(self) -> float | None:
        """The score under which ``low_caption_score`` drops a text (None when the model is off)."""
        if not self.uses_model:
            return None
        return self.min_caption_score if self.min_caption_score is not None else self._caption_model().threshold_

    @property
    def rule_names(self) -> list[str]:
        """Reason codes in the order they are tested."""
        model = ["low_caption_score"] if self.uses_model else []
        return (["not_text", "empty", "mojibake", "placeholder", "file_name", "rating"] + [n for n, _ in self._rules]
                + ["language"] + [n for n, _ in self._rules_after_language] + model)

    def clean(self, text: Any, source: str | None = None, site_names: tuple[str, ...] = (),
              explain: bool = False) -> CleanResult:
        """Clean `text` and test it: :meth:`prepare` then :meth:`finish`.

        Parameters are those of :meth:`prepare`.
        """
        return self.finish(self.prepare(text, source, site_names, explain), explain=explain)

    def clean_batch(self, items: list[tuple[Any, str | None, tuple[str, ...]]]) -> list[CleanResult]:
        """`clean` for many `(text, source, site_names)`: the rules for all, then fastText in one run.

        Same results as `clean` one by one, faster: fastText's model stays in the CPU cache.
        """
        prepared = [self.prepare(text, source, names) for text, source, names in items]
        scores = self.language_scores([r.text for r in prepared if r.pending])
        return [self.finish(r, next(scores)) if r.pending else r for r in prepared]

    def language_scores(self, texts: list[str]):
        """Iterator of `language_score` over `texts`, computed together."""
        if self.min_language_score < 0:
            return iter([None] * len(texts))
        return iter([self.language_score(t) for t in texts])

    def finish(self, result: CleanResult, score: float | None = None, explain: bool = False) -> CleanResult:
        """Apply the language rule (with `score` when already computed) and the rules after it."""
        if not result.pending:
            return result
        text, reasons = result.text, list(result.reasons)
        if self.min_language_score >= 0:
            if score is None:
                score = self.language_score(text)
            if score < self.min_language_score:
                reasons.append("language")
        signals, caption_score = list(result.signals), None
        model = self.uses_model and result.source not in RULE_SOURCES
        if not reasons or explain:
            words = text.split()
            for name, rule in self._rules_of(self._rules_after_language, result.source):
                if model and name in SOFT_RULES:
                    if rule(text, words, ()):
                        signals.append(name)
                elif rule(text, words, ()):
                    reasons.append(name)
                    if not explain:
                        break
            if model and (not reasons or explain):
                caption_score = self.caption_score(text, score, result.source, result.edits, signals)
                if caption_score < self.caption_threshold:
                    reasons.append("low_caption_score")
        return CleanResult(text, not reasons, reasons, score, result.edits, caption_score=caption_score,
                           signals=signals, source=result.source)

    def caption_score(self, text: str, language_score: float | None = None, source: str | None = None,
                      edits: list[str] | tuple[str, ...] = (), signals: list[str] | tuple[str, ...] = ()) -> float:
        """The caption-quality model's score of a cleaned `text` (see :mod:`lait.filters.caption_quality`)."""
        from lait.filters.caption_quality import CaptionInput

        item = CaptionInput(text, language_score, source, tuple(edits), tuple(signals))
        return float(self._caption_model().score([item])[0])

    def prepare(self, text: Any, source: str | None = None, site_names: tuple[str, ...] = (),
                explain: bool = False, min_words: int | None = None) -> CleanResult:
        """The edits and every rule before the language rule; `pending` when the rest must run.

        Parameters
        ----------
        text : any
            The raw description; None, non-strings and huge strings are handled.
        source : str, optional
            Where it came from (alt, title, figcaption, og_image_alt, context); a `context`
            text is cut to its leading sentences like an over-long caption.
        site_names : tuple of str
            Names of the page's site (e.g. ``("sfgate",)`` from the host), for `site_name`.
        explain : bool, default=False
            Run every rule and list all failures (the CLI); otherwise stop at the first.
        min_words : int, optional
            The fewest words this text may have, in place of the cleaner's `min_words` (a
            caller that has other evidence for the text, such as the image's file name).
        """
        if text is None:
            return CleanResult(None, False, ["empty"])
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        if not isinstance(text, str):
            return CleanResult(None, False, ["not_text"])
        edits: list[str] = []
        text = self._normalise(text, edits)
        if not text:
            return CleanResult(None, False, ["empty"], edits=edits)
        if not text.isascii() and MOJIBAKE.search(text):
            return CleanResult(None, False, ["mojibake"], edits=edits)
        whole = self._whole_text_reason(text)
        if whole:
            return CleanResult(None, False, [whole], edits=edits)
        # Edits only remove words, so a short text with nothing to strip skips them (most junk is
        # short); a separator at either end ("- Andy McMahon") is something to strip.
        if (text.count(" ") + 1 >= self.min_words or has_any(text, STRIPPABLE)
                or text[0] in SEPARATOR_CHARS_START or text[-1] in SEPARATOR_CHARS_END):
            text = self._strip_spans(text, edits, site_names)
            if not text:
                return CleanResult(None, False, [edits[-1] if edits else "empty"], edits=edits)
        text = self._keep_sentences(text, edits, source)
        words = text.split()
        reasons: list[str] = []
        signals: list[str] = []
        model = self.uses_model and source not in RULE_SOURCES
        for name, rule in self._rules_of(self._rules, source, min_words):
            if model and name in SOFT_RULES:
                if rule(text, words, site_names):
                    signals.append(name)
            elif rule(text, words, site_names):
                reasons.append(name)
                if not explain:
                    return CleanResult(text, False, reasons, None, edits, signals=signals, source=source)
        return CleanResult(text, False, reasons, None, edits, pending=True, signals=signals, source=source)

    def strip(self, text: Any, site_names: tuple[str, ...] = ()) -> str | None:
        """`text` after the edits only (repair, credits, URLs, trailing site names...), no rules."""
        if not isinstance(text, str):
            return None
        edits: list[str] = []
        return self._strip_spans(self._normalise(text, edits), edits, site_names) or None

    def language_score(self, text: str) -> float:
        """fastText probability that `text` is in `self.language`.

        One top-1 prediction on the already normalised line; when another language is on top,
        the wanted one has at most 0.5, so with a threshold of 0.5 or more it reads 0.0 and
        only a lower threshold pays for the full top-5 lookup.
        """
        if self.language_identifier is None:
            self.load()
        model = getattr(self.language_identifier, "model", None)
        if model is None or not hasattr(model, "predict"):
            return self.language_identifier.score(text, self.language)
        if len(text) > self.language_chars:  # fastText's cost grows with length; the start decides
            text = text[: self.language_chars].rsplit(" ", 1)[0]
        # The binding's own predict, without the wrapper's checks and numpy conversion (a third of
        # the call); the text is one normalised line, as it requires.
        top = model.f.predict(text + "\n", 1, 0.0, "strict")
        if top and top[0][1] == "__label__" + self.language:
            return min(float(top[0][0]), 1.0)
        if self.min_language_score >= 0.5:
            return 0.0
        return self.language_identifier.score(text, self.language)

    # ------------------------------------------------------------ edits
    def _normalise(self, text: str, edits: list[str]) -> str:
        text = " ".join(text[: self.max_chars].split())
        if ")" in text:
            spaced = CLOSE_PAREN_JOINED.sub(") ", text)
            if spaced != text:
                edits.append("spacing")
                text = spaced
        if text.isascii() and "&" not in text:
            return text
        original = text
        if not text.isascii():
            if MOJIBAKE.search(text):
                import ftfy

                # The encoding repair and straight quotes only: entities, NFKC and whitespace
                # follow below, and ftfy's other fixes triple its cost.
                text = ftfy.fixes.uncurl_quotes(ftfy.fix_encoding(text))
            text = INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
        if "&" in text:
            text = html.unescape(text)
        text = " ".join(text.split())
        if text != original:
            edits.append("repair")
        return text

    def _whole_text_reason(self, text: str) -> str | None:
        if TEMPLATE.search(text) or (("rowser" in text or "vailable" in text or "script" in text)
                                     and BROWSER_NOTICE.search(text)):
            return "placeholder"
        if FILE_NAME_END.search(text) or CAMERA_NAME.search(text) or (" " not in text and SLUG.match(text)):
            return "file_name"
        if RATING.match(text):
            return "rating"
        return None

    def _strip_spans(self, text: str, edits: list[str], site_names: tuple[str, ...]) -> str:
        def sub(pattern: re.Pattern, name: str, replacement: str = " ") -> None:
            nonlocal text
            new = pattern.sub(replacement, text)
            if new != text:
                edits.append(name)
                text = new

        for pattern, name in ((DATELINE, "dateline"), (LABEL, "label")):
            match = pattern.match(text)
            if match and match.end():
                text = text[match.end():]
                edits.append(name)
        if "(" in text or "[" in text:
            sub(CREDIT_PAREN, "credit")
        if CREDIT_HINT.search(text) or has_any(text, CREDIT_HINT_FRAGMENTS):
            match = CREDIT_TAIL.search(text)
            if match:
                text = text[: match.start()]
                edits.append("credit")
        if "/" in text:
            sub(SLASH_CREDIT, "credit", "")
        lowered = text.lower()
        match = COPYRIGHT.search(text) if "©" in text or "(c)" in lowered or "copyright" in lowered else None
        if match:
            # A copyright mark ends the text ("... © DONG"); at the start it owns one name.
            text = text[: match.start()] if match.start() > 0 else re.sub(r"^\S+\s*\S*", "", text, count=1)
            edits.append("credit")
        if "@" in text:
            sub(EMAIL, "email")
        # URLs and file names have a dot or slash inside a word; most captions only end with one.
        inner_dot = "/" in text or "." in text[:-1].replace(". ", "")
        if inner_dot and has_any(lowered, URL_HINTS):
            sub(URL, "url")
        if (inner_dot or "img" in lowered or "dsc" in lowered) and has_any(lowered, FILE_HINTS):
            sub(FILE_NAME, "file_name")
        if PIXEL_HINT.search(text):
            sub(PIXEL_SIZE, "pixel_size")
        if has_any(lowered, ENLARGE_HINTS):
            sub(ENLARGE, "enlarge")
            sub(CALL_TO_ACTION, "navigation")
        if "stock" in lowered or "royalty" in lowered:
            sub(STOCK_PHOTO, "stock_photo")
        if ":" in text:
            sub(EMOTICON, "emoticon")
        if "@" in text or not text.isascii():
            sub(PICTOGRAPH, "emoticon")
        text = self._tidy(text)
        stripped = self._strip_trailing(text, edits, site_names)
        if stripped != text:  # "headline - Photo | Site" has two trailing segments
            stripped = self._strip_trailing(stripped, edits, site_names)
        return stripped

    def _strip_trailing(self, text: str, edits: list[str], site_names: tuple[str, ...]) -> str:
        if text.rstrip(" .").endswith(self._lex["agency_endings"]):
            match = self._lex["agency_tail"].search(text)
            if match and match.start() > 0:
                text = self._tidy(text[: match.start()])
                edits.append("credit")
        if not has_any(text, (" | ", " - ", " – ", " — ", " :: ")):
            return text
        match = TRAILING_SEGMENT.search(text)
        if match:
            separator, segment = match.groups()
            n_words = len(segment.split())
            squashed = squash(segment)
            if n_words <= 5 and (
                segment.lower().strip(" .") in TRAILING_LABELS
                or (separator == "|" and n_words <= 4)
                or "/" in segment
                or any(name and name in squashed for name in site_names)
            ):
                text = self._tidy(text[: match.start()])
                edits.append("site_name")
        return text

    @staticmethod
    def _tidy(text: str) -> str:
        if "()" in text or "[]" in text or "( " in text or "[ " in text:
            text = EMPTY_BRACKETS.sub(" ", text)
        return " ".join(text.lstrip(SEPARATOR_CHARS_START).rstrip(SEPARATOR_CHARS_END).split())

    def _keep_sentences(self, text: str, edits: list[str], source: str | None) -> str:
        """Leading whole sentences up to `max_words` words (the text itself when it fits)."""
        limit = self.max_words if self.max_words >= 0 else None
        n_words = text.count(" ") + 1
        if limit is None or (n_words <= limit and source != "context"):
            return text
        kept, total = [], 0
        for sentence in split_sentences(text):
            size = sentence.count(" ") + 1
            if kept and total + size > limit:
                break
            kept.append(sentence)
            total += size
            if source == "context" and total >= self.min_words:
                break
        new = " ".join(kept)
        if new != text:
            edits.append("sentences")
        return new

    # ------------------------------------------------------------ rules: True means "drop"
    def _is_site_name(self, text: str, words: list[str], site_names: tuple[str, ...]) -> bool:
        if not site_names or len(words) > 5:
            return False
        squashed = squash(text)
        squashed = squashed.removeprefix("the")
        return any(name and (squashed == name or squashed == name.removeprefix("the")) for name in site_names)

    def _is_licence(self, text: str, words: list[str], site_names: tuple[str, ...]) -> bool:
        if len(words) > self.max_logo_words or not has_any(text.lower(), LICENCE_HINTS):
            return False
        return bool(LICENCE.search(text))

    def _is_logo(self, text: str, words: list[str], site_names: tuple[str, ...]) -> bool:
        if self.max_logo_words < 0 or len(words) > self.max_logo_words:
            return False
        lowered = text.lower()
        if "logo" in lowered or not self._lex["logo"].isdisjoint(NON_WORD.split(lowered)):
            return True
        # "jdoe's picture", "Profile picture of X": profile pictures.
        return lowered.endswith(("'s picture", "’s picture", "'s avatar")) or "profile pic" in lowered \
            or "profile photo" in lowered or "profile image" in lowered

    def _is_navigation(self, text: str, words: list[str], site_names: tuple[str, ...]) -> bool:
        lowered = text.lower()
        if lowered.startswith(self._lex["call"]) and any(lowered.startswith(a + " ") for a in self._lex["call"]):
            return True
        if self.max_navigation_words < 0 or len(words) > self.max_navigation_words + 4:
            return False
        if lowered.startswith(self._lex["action"]):
            # A button or link label: "Follow us on Instagram for more photos".
            if any(lowered == a or lowered.startswith(a + " ") for a in self._lex["action"]):
                return True
        if len(words) > self.max_navigation_words:
            return False
        if not self._lex["widget"].isdisjoint(NON_WORD_OR_PLUS.split(lowered)):
            return True
        return any(p in lowered for p in self._lex["widget_phrases"])

    def _is_placeholder(self, text: str, words: list[str], site_names: tuple[str, ...]) -> bool:
        if len(words) > 4:
            return False
        key = " ".join(PLACEHOLDER_NOISE.sub(" ", text.lower()).split())
        return key in self._lex["placeholders"] or not key

    def _is_symbols(self, text: str, words: list[str], site_names: tuple[str, ...]) -> bool:
        if self.min_letter_ratio < 0:
            return False
        chars = len(text) - text.count(" ")
        return letter_counts(text)[2] < self.min_letter_ratio * chars

    def _is_all_caps(self, text: str, words: list[str], site_names: tuple[str, ...]) -> bool:
        if self.max_caps_ratio < 0:
            return False
        upper, lower, _ = letter_counts(text)
        cased = upper + lower
        return upper >= self.min_caps_letters and upper >= self.max_caps_ratio * cased

    def _is_repeated(self, text: str, words: list[str], site_names: tuple[str, ...]) -> bool:
        if self.min_unique_word_ratio < 0 or len(words) < 4:
            return False
        lowered = edge_stripped_tokens(text)[1]
        return len(set(lowered)) < self.min_unique_word_ratio * len(lowered)

    def _is_too_short(self, text: str, words: list[str], site_names: tuple[str, ...]) -> bool:
        return self.min_words >= 0 and len(words) < self.min_words

    def _is_too_long(self, text: str, words: list[str], site_names: tuple[str, ...]) -> bool:
        return self.max_words >= 0 and len(words) > self.max_words

    def _is_keyword_list(self, text: str, words: list[str], site_names: tuple[str, ...]) -> bool:
        if self.max_keyword_stopword_ratio < 0 or len(words) < self.keyword_min_words:
            return False
        if text.endswith((".", "!", "?")):
            return False  # punctuated as a sentence: a tag list is not
        tokens, lowered = edge_stripped_tokens(text)
        stop = self._lex["stopwords"]
        n_stop = sum(1 for t, low in zip(tokens, lowered) if low in stop and t[:1].isalpha())
        return n_stop < self.max_keyword_stopword_ratio * len(words)

    def name_share(self, text: str) -> float:
        """Share of the content words of `text` that are capitalised (names of people, places...)."""
        stop = self._lex["stopwords"]
        content = [t for t, low in zip(*edge_stripped_tokens(text)) if len(t) > 1 and t[0].isalpha() and low not in stop]
        return sum(t[0].isupper() for t in content) / len(content) if content else 0.0

    def _is_title_case(self, text: str, words: list[str], site_names: tuple[str, ...]) -> bool:
        if self.title_case_min_words < 0 or len(words) < self.title_case_min_words:
            return False
        stop = self._lex["stopwords"]
        n_content = 0
        for i, (t, low) in enumerate(zip(*edge_stripped_tokens(text))):
            if len(t) < 2 or not t[0].isalpha():
                continue
            if low in stop:
                if i > 0 and t[0].islower():
                    return False  # "Ann and Bo at the Forum": names in a sentence, not a headline
                continue
            if not t[0].isupper():
                return False  # most sentences stop here, at their first lower-case content word
            n_content += 1
        return n_content >= self.title_case_min_words

    def _is_spam_porn(self, text: str, words: list[str], site_names: tuple[str, ...]) -> bool:
        return bool(spam_porn_matches(text, self._lex))

    def _is_rare(self, text: str, words: list[str], site_names: tuple[str, ...]) -> bool:
        if self.max_rare_word_ratio < 0:
            return False
        ratio = self.rare_word_ratio(text)
        return ratio > self.max_rare_word_ratio

    def rare_word_ratio(self, text: str) -> float:
        """Share of the words of `text` that are out of vocabulary (proper nouns never are)."""
        if self._vocabulary is None:
            self._vocabulary = english_vocabulary(self.vocabulary_size)
        vocabulary = self._vocabulary
        tokens = words_of(text)
        if not tokens:
            return 0.0
        rare = 0
        for token in [t for t in tokens if t not in vocabulary and t.lower() not in vocabulary]:
            lowered = token.lower()
            if "'" in lowered or "’" in lowered:
                if re.split(r"['’]", lowered, maxsplit=1)[0] in vocabulary:
                    continue
            if token[0].isupper() and (token[1:].islower() or not token[1:]):
                continue  # a proper noun: "Tsitsipas", "Pidhaine"
            if token.isupper() and len(token) <= 5:
                continue  # an acronym: "NHL", "KC"
            rare += 1
        return rare / len(tokens)
