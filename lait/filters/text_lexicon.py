"""The patterns, word lists and word-level helpers of the text rules (:mod:`lait.filters.text_rules`).

Regular expressions and hint tuples for the edits and the whole-text tests, the data files of
``lait/filters/data/`` (stopwords, navigation and logo words, photo agencies, the spam and porn
lexicon), the English vocabulary of ``wordfreq``, and the tokenisers the rules share.
"""

from __future__ import annotations

import functools
import re
import string
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).with_name("data")

# ---------------------------------------------------------------- normalisation
# Invisible characters, and lone surrogates (half an emoji from a JSON escape) that no encoder takes.
# A closing parenthesis run into the next word ("(L to R)Linda Turner"): a space lost in the markup.
CLOSE_PAREN_JOINED = re.compile(r"\)(?=[A-Z][a-z])")
INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060\ufeff\ud800-\udfff]")
# UTF-8 read as Latin-1/cp1252: a lead byte (Â Ã â Å) followed by a continuation-byte character.
MOJIBAKE = re.compile("[\u00c2-\u00df\u00e2-\u00ef][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e"
                      "\u02c6\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]|\ufffd")

# ---------------------------------------------------------------- whole-text tests
TEMPLATE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\$\{[^}]*\}|<%.*?%>|##[^#]*##|%%\w+%%|\[\[\w+\]\]|\[object \w+\]"
                      r"|^\s*TODO\b")
IMAGE_EXTENSION = r"(?:jpe?g|jpe|jfif|png|gif|webp|svg|bmp|tiff?|heic|avif|ico)"
FILE_NAME_END = re.compile(r"\.\s?" + IMAGE_EXTENSION + r"\s*$", re.I)
SLUG = re.compile(r"^[^\W_]+(?:[-_.]+[^\W_]+)*(?:[-_]+[^\W_]+)$")
CAMERA_NAME = re.compile(r"^(?:IMG|DSC[NF]?|PICT|MVIMG|PXL|GOPR|VID|DCIM|P\d{6,})[ _-]?\d|"
                         r"^screen ?shot[ _-]*\d{4}-\d\d-\d\d", re.I)
RATING = re.compile(r"^\s*\d+(?:[.,]\d+)?\s*(?:(?:out\s+)?of\s+\d+\s*|/\s*\d+\s*)?(?:stars?|sterne?|étoiles?)\s*$", re.I)

# ---------------------------------------------------------------- spans stripped
DATELINE = re.compile(
    r"^(?:FILE\s*[-–—:]\s*|[A-Z][A-Z.'’ ]{2,}(?:,\s*[A-Z][A-Z.'’ ]+)?\s*[-–—]\s*"
    r"(?:(?:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)[A-Z]*\.?\s+\d{1,2}(?:,\s*\d{4})?\s*:\s*)?)")
LABEL = re.compile(
    r"^(?:media caption\s+|(?:image|images|photo|photos|photograph|picture|pic|img|file|foto|bild|caption|image caption|gallery|"
    r"slideshow|video|screenshot|thumbnail)(?:\s*\d+(?:\s*(?:of|/)\s*\d+)?)?\s*[:|–—,]\s*"
    r"|(?:fig(?:ure)?|abb|abbildung|image|photo|picture|slide)\.?\s*\d+(?:\s*(?:of|/)\s*\d+)?\s*[:.–—-]\s+"
    r"|\d+\s*of\s*\d+(?=[A-Z\s])\s*"
    r"|(?:image|photo|picture) may contain:?\s*)", re.I)
CREDIT_PAREN = re.compile(
    r"\s*[(\[][^()\[\]]{0,150}?(?:\b(?:photos?|fotos?|credits?|courtesy|images?|pictures?|source|quelle|bild|"
    r"getty|reuters|afp|ap|epa|dpa|files?|via|copyright|illustration by)\b|/|©)[^()\[\]]{0,150}?[)\]]", re.I)
CREDIT_TAIL = re.compile(
    r"(?:(?:Photo|Photos|Photograph|Image|Picture|Foto|Bild)\s*(?:credits?|courtesy)\b[:.…]*"
    r"|(?:Photo|Photos|Photograph|Image|Picture|Foto|Fotos|Bild|Credits?|Source|Quelle|Screenshot|Illustration|"
    r"PHOTO|IMAGE|CREDIT|FOTO)(?:\s+(?:illustration|composite|montage|collage|courtesy))?\s*(?::|\bby\b|\bof\b|\.\.\.|…)"
    r"|Credit(?=[A-ZÀ-Þ])|\bProvided by\s+(?=[A-Z])|(?<=\S )Courtesy(?: of)?\s+(?=[A-Z])"
    r"|\b(?:REUTERS|Reuters|AFP|EPA|AP Photo|AP)\s*/\s*(?=[A-Z])"
    r"|\b(?:[Ss]ubmitted|[Ff]ile|[Hh]andout|[Ss]upplied|[Cc]ontributed) (?:photo|image|picture)s?\W*$).*$", re.S)
# A sentence that asks the reader to act ("Click to verify.", "Tap here to see more.").
CALL_TO_ACTION = re.compile(r"(?:^|(?<=[.!?] ))(?:Click|Tap|CLICK|TAP)\b[^.!?]*[.!?]?")
# Creative Commons and other licence badges.
LICENCE = re.compile(r"\b(?:attribution|creative commons|cc[ -]by|by-nc|by-sa|by-nd|share ?alike|noderivs|"
                     r"some rights reserved|all rights reserved|public domain|gnu (?:free documentation|general public))",
                     re.I)
# "... on Friday. Ezra Acayan / Getty Images": a closing name-and-agency credit after the last sentence.
SLASH_CREDIT = re.compile(r"(?<=[.!?])\s+(?:[A-Z][\w.'’-]*\s+){0,3}[A-Z][\w.'’-]*\s*/\s*[\w .'’&-]{1,40}$")
COPYRIGHT = re.compile(r"(?:©|\([cC]\)|\bCopyright\b|\bcopyright\b)")
URL = re.compile(r"(?:https?://|ftp://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|edu|gov|io|info|biz|tv)\b(?:/\S*)?",
                 re.I)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
FILE_NAME = re.compile(r"\b[\w-]+\.\s?" + IMAGE_EXTENSION + r"\b|\b(?:IMG|DSC[NF]?|PICT|MVIMG|PXL)[_-]?\d{3,}\b", re.I)
PIXEL_SIZE = re.compile(r"\b\d{2,5}\s?[x×]\s?\d{2,5}(?:\s?px)?\b|\b\d{2,5}\s?px\b", re.I)
ENLARGE = re.compile(
    r"[(\[]?\s*(?:\b(?:click|tap)(?: here)?(?: on (?:the |this )?(?:image|photo|picture))?(?: to| for)?\s+"
    r"(?:enlarge|zoom|expand|(?:view|see) (?:larger|full[- ]?size|the full image|gallery)|larger (?:image|version|view)|"
    r"full[- ]?size(?: image)?)\b|\b(?:view larger|enlarge (?:image|photo|picture))\b|\[\+\])[^.)\]]{0,30}[)\]]?\.?",
    re.I)
STOCK_PHOTO = re.compile(r"\b(?:royalty[- ]free\s*)?(?:stock (?:photo(?:graph)?|image|picture|photography|footage)s?"
                         r"|royalty[- ]free)\b", re.I)
EMOTICON = re.compile(r":[a-z][a-z0-9_+-]*:", re.I)
# Pictographs and social handles ("📸: @teslaplaza") say nothing about what is visible.
PICTOGRAPH = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F\u200D]+|(?<![\\w.])@\\w{2,}")
# Page furniture that stands in for an image: "Your browser does not support the video tag".
BROWSER_NOTICE = re.compile(r"\b(?:your browser does(?: not|n't) support|enable javascript|javascript is (?:disabled|required)|"
                            r"(?:image|photo|video) (?:is )?(?:not available|unavailable|coming soon)|no image available)",
                            re.I)
TRAILING_SEGMENT = re.compile(r"\s+([|–—-]|::)\s+((?:(?!\s[|–—-]\s).){1,80})$")
TRAILING_LABELS = {"photo", "photos", "image", "images", "picture", "pictures", "video", "videos", "gallery",
                   "slideshow", "stock photo", "file photo", "foto", "bild"}
SEPARATOR_CHARS_START = " \t\n-–—|:;,.·•/»>"
SEPARATOR_CHARS_END = " \t\n-–—|:;,·•/«<(["
EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]")

# ---------------------------------------------------------------- words
WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
SENTENCE_BREAK = re.compile(r"(?<=[.!?])[\"”’)]?\s+(?=[\"“‘(]?[A-Z0-9])")
# A period after these does not end a sentence ("Lt. Col. Alexander Vindman", "Salem, Ore., to").
ABBREVIATIONS = (
    "Mr Mrs Ms Dr Prof Sr Jr St Mt Ft Lt Col Gen Gov Sen Rep Sgt Capt Cpl Pvt Adm Maj Cmdr Rev Hon Pres Supt Det "
    "Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec No Nos Vol Fig Inc Corp Co Ltd vs Ave Blvd Rd Ala Ariz Ark "
    "Calif Colo Conn Del Fla Ga Ill Ind Kan Ky La Md Mass Mich Minn Miss Mo Mont Neb Nev Okla Ore Pa Tenn Tex Va Vt "
    "Wash Wis Wyo approx ca"
)
LEET_LETTERS = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
LEET = str.maketrans(LEET_LETTERS)
LEET_BYTES = bytes.maketrans("".join(LEET_LETTERS).encode(), "".join(LEET_LETTERS.values()).encode())
OBFUSCATION_SEPARATOR_CHARS = ".-_*'`~"
OBFUSCATION_SEPARATORS = re.compile(f"[{re.escape(OBFUSCATION_SEPARATOR_CHARS)}]+")
LETTER_RUNS = re.compile(r"(\w)\1{2,}")
LETTER_RUN_HINTS = tuple(ch * 3 for ch in "aeiouxsy")
SINGLE_LETTER_RUN = re.compile(r"(?<!\S)\S(?: \S){2,}(?!\S)")
ASCII_LETTERS_AND_APOSTROPHE = bytes(b if chr(b) in string.ascii_letters + "'" else 32 for b in range(256))
ASCII_UPPER = string.ascii_uppercase.encode("ascii")
ASCII_LOWER = string.ascii_lowercase.encode("ascii")
TOKEN_EDGES = "\"'“”‘’()[]{}<>.,;:!?¡¿#*"
NON_WORD = re.compile(r"[\W_]+")
NON_WORD_OR_PLUS = re.compile(r"[^\w+]+")
PLACEHOLDER_NOISE = re.compile(r"[\d#_()\[\].,:;!?\-–—]+")
ABBREVIATION_SET = frozenset(ABBREVIATIONS.split())

# Cheap substring tests that let most texts skip a slow regex (the rules cost microseconds).
STRIPPABLE = (".", "/", "@", "(", "[", ":", "©", " - ", " | ", " – ", " — ")
CREDIT_HINTS = ("Photo", "PHOTO", "Image", "IMAGE", "Picture", "Foto", "FOTO", "Bild", "Credit", "CREDIT", "Source",
                "Quelle", "Screenshot", "Illustration", "Provided by", "Courtesy", "AP/", "AP /", "AP Photo", "AFP/",
                "AFP /", "EPA/", "EPA /", "REUTERS/", "REUTERS /", "Reuters/", "Reuters /", "ubmitted", "ile photo",
                "ile image", "ile picture", "andout", "upplied", "ontributed")
# Capitalised hints in one regex (its first-character test skips most positions), the rest as substrings.
CREDIT_HINT = re.compile("|".join(re.escape(h) for h in sorted(CREDIT_HINTS, key=len, reverse=True) if h[0].isupper()))
CREDIT_HINT_FRAGMENTS = tuple(h for h in CREDIT_HINTS if not h[0].isupper())
URL_HINTS = ("://", "www.", ".com", ".org", ".net", ".edu", ".gov", ".io", ".info", ".biz", ".tv")
FILE_HINTS = (".jp", ".png", ".gif", ".webp", ".svg", ".bmp", ".tif", ".heic", ".avif", ".ico", ".jfif",
              "img", "dsc", "pict", "pxl")
PIXEL_HINT = re.compile(r"\d ?[x×X] ?\d|\d ?px")
ENLARGE_HINTS = ("click", "tap", "enlarge", "larger", "[+]")
LICENCE_HINTS = ("attribution", "creative commons", "cc", "by-", "alike", "noderivs", "rights reserved",
                 "public domain", "gnu")


def load_word_list(name: str) -> list[str]:
    """Lines of `lait/filters/data/NAME`, without comments, blank lines and `[section]` headers."""
    return [w for w, _ in _read_sections(name)]


def load_sections(name: str) -> dict[str, list[str]]:
    """`{section: [entries]}` of a data file with `[section]` headers."""
    sections: dict[str, list[str]] = {}
    for entry, section in _read_sections(name):
        sections.setdefault(section, []).append(entry)
    return sections


def _read_sections(name: str) -> list[tuple[str, str]]:
    entries, section = [], ""
    for line in (DATA_DIR / name).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        entries.append((line, section))
    return entries


@functools.lru_cache(maxsize=4)
def english_vocabulary(size: int) -> frozenset[str]:
    """The `size` most frequent English words of `wordfreq` (lower-case), plus the stopwords."""
    import wordfreq

    return frozenset(wordfreq.top_n_list("en", size)) | frozenset(load_word_list("stopwords_en.txt"))


@functools.lru_cache(maxsize=1)
def lexicons() -> dict[str, Any]:
    nav = load_sections("navigation_words.txt")
    agencies = sorted(load_word_list("photo_credits.txt"), key=len, reverse=True)
    names = "|".join(re.escape(a) for a in agencies)
    lexicon = load_word_list("spam_porn_en.txt")
    return {
        "stopwords": frozenset(load_word_list("stopwords_en.txt")),
        "placeholders": frozenset(load_word_list("placeholders.txt")),
        "logo": frozenset(nav["logo"]),
        "action": tuple(nav["action"]),
        "call": tuple(nav["call"]),
        "widget": frozenset(w for w in nav["widget"] if " " not in w),
        "widget_phrases": tuple(w for w in nav["widget"] if " " in w),
        "agencies": frozenset(agencies),
        "agency_endings": tuple(agencies) + tuple(a + " Images" for a in agencies),
        # ", Getty Images" / "AFP via Getty Images" / "/AP" at the end, or glued to the last word ("LondonReuters").
        "agency_tail": re.compile(rf"(?:[\s,;/|–—-]+|(?<=[a-z]))(?:{names})(?:\s*(?:via|/|and)\s*(?:{names}))*"
                                  r"(?:\s+Images)?\s*\.?\s*$"),
        "spam_words": frozenset(w for w in lexicon if " " not in w),
        "spam_phrases": frozenset(w for w in lexicon if " " in w),
        "spam_phrase_firsts": frozenset(w.split()[0] for w in lexicon if " " in w),
    }


@functools.lru_cache(maxsize=8)
def letter_counts(text: str) -> tuple[int, int, int]:
    """(upper-case, lower-case, all) letters of `text`; cached because two rules ask in a row."""
    if text.isascii():  # bytes.translate counts in C, 10x faster than a per-character map
        data = text.encode("ascii")
        upper = len(data) - len(data.translate(None, ASCII_UPPER))
        lower = len(data) - len(data.translate(None, ASCII_LOWER))
        return upper, lower, upper + lower
    return sum(map(str.isupper, text)), sum(map(str.islower, text)), sum(map(str.isalpha, text))


@functools.lru_cache(maxsize=1024)  # a batch's survivors reach the rules after language together
def edge_stripped_tokens(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Whitespace tokens without edge punctuation, and the same lower-cased; cached because
    several rules ask in a row."""
    tokens = tuple(t.strip(TOKEN_EDGES) for t in text.split())
    return tokens, tuple(" ".join(tokens).lower().split(" "))  # lower() never adds a space: still aligned


def words_of(text: str) -> list[str]:
    """The words of `text`: runs of letters, joined by apostrophes ("Disney's"); no digits."""
    if not text.isascii():
        return WORD.findall(text)
    # ASCII: every other byte becomes a space in one C pass, 4x faster than the regex.
    words = text.encode("ascii").translate(ASCII_LETTERS_AND_APOSTROPHE).decode("ascii").split()
    if "'" not in text:
        return words
    return [w for w in (piece.strip("'") for word in words for piece in word.split("''")) if w]


def has_any(text: str, needles: tuple[str, ...]) -> bool:
    for needle in needles:
        if needle in text:
            return True
    return False


def squash(text: str) -> str:
    return NON_WORD.sub("", text.lower())


def split_sentences(text: str) -> list[str]:
    """Split on ., ! or ? followed by a capital or digit, except after abbreviations ("Lt. Col.", "U.S.")."""
    pieces = SENTENCE_BREAK.split(text)
    sentences: list[str] = []
    for piece in pieces:
        if sentences and _ends_with_abbreviation(sentences[-1]):
            sentences[-1] += " " + piece
        else:
            sentences.append(piece)
    return sentences


def _ends_with_abbreviation(sentence: str) -> bool:
    """"Lt.", "Calif.", "U.S.", "J.": a period that does not end the sentence."""
    last = sentence.rsplit(" ", 1)[-1].lstrip("(\"“")
    if not last.endswith("."):
        return False
    word = last[:-1]
    return word in ABBREVIATION_SET or len(word) == 1 or ("." in word and word.replace(".", "").isalpha())


def _undo_leet(text: str) -> str:
    """Leet characters mapped to letters and separators inside words removed ("p.0.r.n" -> "porn")."""
    if text.isascii():  # bytes.translate maps and deletes in one C pass
        return text.encode("ascii").translate(LEET_BYTES, OBFUSCATION_SEPARATOR_CHARS.encode()).decode("ascii")
    return OBFUSCATION_SEPARATORS.sub("", text.translate(LEET))


def spam_porn_matches(text: str, lexicon: dict | None = None) -> list[str]:
    """Lexicon entries found in `text` (whole words, after undoing obfuscations)."""
    lex = lexicon or lexicons()
    words = lex["spam_words"]
    tokens = edge_stripped_tokens(text)[1]
    found = set(words.intersection(tokens))
    plain = joined = " ".join(tokens)
    # Obfuscations undone on the whole line at once ("p0rn", "p.o.r.n", "pooorn"): mapping leet
    # characters, removing separators and collapsing letter runs leave a plain word unchanged.
    if not joined.replace(" ", "").isalpha():
        joined = _undo_leet(joined)
    if has_any(joined, LETTER_RUN_HINTS):
        joined = LETTER_RUNS.sub(r"\1", joined)
    if joined != plain:
        tokens = joined.split(" ")
        found.update(words.intersection(tokens))
    if list(map(len, tokens)).count(1) >= 3:
        for run in SINGLE_LETTER_RUN.findall(joined):  # "s e x y": a run of single letters spells a word
            if run.replace(" ", "") in words:
                found.add(run.replace(" ", ""))
    if not lex["spam_phrase_firsts"].isdisjoint(tokens):
        phrases, firsts = lex["spam_phrases"], lex["spam_phrase_firsts"]
        for i, t in enumerate(tokens[:-1]):
            if t in firsts:
                for n in (2, 3):
                    phrase = " ".join(tokens[i:i + n])
                    if phrase in phrases:
                        found.add(phrase)
    return sorted(found)
