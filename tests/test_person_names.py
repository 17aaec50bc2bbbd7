"""People's names in texts (lait.filters.person_names)."""

import pytest

from lait.filters.person_names import names_person, person_names


@pytest.mark.parametrize("text, expected", [
    ("Tessa Montague, originally from London, is not afraid of work.", ["Tessa Montague"]),
    ("Three Decades of Nanopore Sequencing [Daniel Branton]", ["Daniel Branton"]),
    ("Postdoc Profile: Ye-Jin Jenna Eun [Garner Lab]", ["Jenna Eun"]),  # a surname rare in English
    ("Second Secretary Robert Hull met four alumni in Burundi", ["Robert Hull"]),
    ("Kevin Smith on his new film", ["Kevin Smith"]),  # a common surname after a common given name
])
def test_a_given_name_and_a_surname_name_a_person(text, expected):
    assert person_names(text) == expected


@pytest.mark.parametrize("text", [
    "Summer Internship Thrives on Mentorship Exchange",  # "Summer" is a word before it is a name
    "Will Work For Food", "Grace Church Choir", "Joy Division",
    "Because even The New York Times noticed",
    "Homemade chicken and dumplings soup",
    "Irish Aid welcomes 2017 fellows at Dublin Castle event",
    "tessa montague at the lab",  # names are capitalised
    "TESSA MONTAGUE",
    "Tessa, Montague",  # not adjacent
    "",
])
def test_words_and_places_name_no_one(text):
    assert not names_person(text)
