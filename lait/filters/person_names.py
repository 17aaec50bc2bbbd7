"""Find people's names in a text: "Tessa Montague", "Robert Hull", "[Daniel Branton]".

A page text that names a person says who a photo shows when the photo shows a face: a
profile's first sentence under a portrait, a headline naming the person pictured. The
description chooser (:mod:`lait.filters.description`) trusts such a text only on that
condition, which ScoreRelevance checks against the image's face score.

A name is a given name followed by a surname, both capitalised: the given name from the
US Census list (:file:`data/person_names.txt`), the surname a Census surname or a word rare in
English. Words common in English are names only where the Census says they commonly are:
"Will Work For Food", "Summer Reads" and "New York Times" name no one; "John Smith" does.

>>> person_names("Tessa Montague, originally from London, is not afraid of work.")
['Tessa Montague']
>>> person_names("Summer Internship Thrives on Mentorship Exchange")
[]
"""

from __future__ import annotations

import functools
import re

from lait.filters.text_lexicon import load_sections

# A capitalised word, with an inner hyphen or apostrophe ("Ye-Jin", "O'Brien").
_WORD = re.compile(r"[A-Z][a-z]+(?:['’-][A-Za-z][a-z]+)*")
# English Zipf frequency (wordfreq) at or above which a given name must be a common one
# ("will", "may", "summer" are words first), and at or above which a Census surname is a word
# first ("Church", "Division").
COMMON_WORD_ZIPF = 4.5
MAX_SURNAME_ZIPF = 5.0
# Below this a capitalised word is rare enough to be a surname the Census list lacks ("Eun").
RARE_WORD_ZIPF = 3.5


@functools.lru_cache(maxsize=1)
def _lists() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    sections = load_sections("person_names.txt")
    return frozenset(sections["common_given"]), frozenset(sections["given"]), frozenset(sections["surname"])


@functools.lru_cache(maxsize=65536)
def _zipf(word: str) -> float:
    import wordfreq

    return wordfreq.zipf_frequency(word, "en")


def _is_given_name(word: str) -> bool:
    common, given, _ = _lists()
    low = word.lower()
    return low in common or (low in given and _zipf(low) < COMMON_WORD_ZIPF)


def _is_surname(word: str) -> bool:
    low = word.lower()
    zipf = _zipf(low)
    return zipf < RARE_WORD_ZIPF or (low in _lists()[2] and zipf < MAX_SURNAME_ZIPF)


def person_names(text: str) -> list[str]:
    """The "Given Surname" pairs of `text`, in order (empty when it names no one)."""
    words = list(_WORD.finditer(text))
    found = []
    for first, second in zip(words, words[1:]):
        adjacent = text[first.end():second.start()].strip() == ""
        if adjacent and _is_given_name(first.group()) and _is_surname(second.group()):
            found.append(f"{first.group()} {second.group()}")
    return found


def names_person(text: str) -> bool:
    """Whether `text` names a person (:func:`person_names`)."""
    return bool(person_names(text))
