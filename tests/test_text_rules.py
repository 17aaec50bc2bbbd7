"""One test per cleaning rule of lait/filters/text_rules.py, on realistic alt/caption strings.

The soft rules (logo, navigation, all_caps, rare_words, keyword_list, title_case) are tested
with the caption model off (`min_caption_score=-1`), where they still drop as rules; with the
model on they are its features (tests/test_caption_quality.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lait.filters.text_lexicon import spam_porn_matches, split_sentences
from lait.filters.text_rules import TextCleaner


@pytest.fixture(scope="module")
def cleaner() -> TextCleaner:
    return TextCleaner().load()


@pytest.fixture(scope="module")
def no_lid() -> TextCleaner:
    """The rules without fastText, for tests of the rules that run before it."""
    return TextCleaner(min_language_score=-1)


@pytest.fixture(scope="module")
def rules() -> TextCleaner:
    """The rules alone, the caption model off: the soft rules drop as they did before it."""
    return TextCleaner(min_language_score=-1, min_caption_score=-1)


def reasons(cleaner: TextCleaner, text, **kwargs) -> list[str]:
    return cleaner.clean(text, **kwargs).reasons


# ------------------------------------------------------------------ kept captions
@pytest.mark.parametrize("text", [
    "A man rides a bicycle past the Capitol in the rain",
    "Firefighters battle a blaze in Paradise, Calif., on Thursday.",
    "Two cribs in a small nursery space",
    "Tsitsipas celebrates after beating Federer at the O2 Arena in London",
    "close-up of chocolate truffles on a white plate",
])
def test_plain_captions_are_kept_unchanged(cleaner, text):
    result = cleaner.clean(text)
    assert result.kept, result.reasons
    assert result.text == text
    assert result.language_score > 0.5


# ------------------------------------------------------------------ inputs
def test_none_empty_and_whitespace_are_empty(no_lid):
    assert reasons(no_lid, None) == ["empty"]
    assert reasons(no_lid, "") == ["empty"]
    assert reasons(no_lid, " \n\t ") == ["empty"]


@pytest.mark.parametrize("value", [42, 3.5, ["a", "list"], {"text": "x"}, object()])
def test_non_strings_are_not_text(no_lid, value):
    result = no_lid.clean(value)
    assert not result.kept and result.reasons == ["not_text"] and result.text is None


def test_bytes_are_decoded(no_lid):
    assert no_lid.clean(b"A dog runs along a sandy beach").kept


def test_huge_input_is_cut_before_the_rules(cleaner):
    padded = "A dog runs along a sandy beach at sunset" + " " * 5_000_000 + "tail"
    assert cleaner.clean(padded).text == "A dog runs along a sandy beach at sunset"
    spam = "A dog runs along a sandy beach at sunset. " * 200_000  # 8.6 MB
    result = cleaner.clean(spam)
    assert result.reasons == ["repeated_words"]
    assert len(result.text.split()) <= cleaner.max_words


# ------------------------------------------------------------------ edits
def test_repair_fixes_mojibake_entities_and_whitespace(no_lid):
    result = no_lid.clean("Disneyâ\x80\x99s chief executive &amp; his wife\u00ad arrive at the\n\n  premiere")
    assert result.kept
    assert result.text == "Disney's chief executive & his wife arrive at the premiere"
    assert "repair" in result.edits


def test_a_closing_parenthesis_run_into_a_name_gets_its_space(no_lid):
    result = no_lid.clean("(L to R)Linda Turner and Howard Berg at the harbour in Woods Hole")
    assert result.text == "(L to R) Linda Turner and Howard Berg at the harbour in Woods Hole"
    assert "spacing" in result.edits
    assert no_lid.clean("The f(x) curve of the sample (left) at dawn").edits == []


def test_unrepairable_mojibake_is_dropped(no_lid):
    # Replacement characters: the bytes were lost before we saw them.
    assert reasons(no_lid, "Stra\ufffde in M\ufffdnchen mit Caf\ufffd und B\ufffdckerei") == ["mojibake"]


def test_credits_in_parentheses_and_at_the_end_are_stripped(no_lid):
    for raw in [
        "Senator Bernie Sanders speaks at a campaign event in San Antonio. (AP Photo/Eric Gay)",
        "Senator Bernie Sanders speaks at a campaign event in San Antonio. Photo: Eric Gay / Copyright 2020",
        "Senator Bernie Sanders speaks at a campaign event in San Antonio.Credit...Eric Gay/The New York Times",
        "Senator Bernie Sanders speaks at a campaign event in San Antonio. © Eric Gay",
        "Senator Bernie Sanders speaks at a campaign event in San Antonio. Eric Gay / Getty Images",
        "Senator Bernie Sanders speaks at a campaign event in San Antonio. Photo illustration by Eric Gay",
    ]:
        result = no_lid.clean(raw)
        assert result.text == "Senator Bernie Sanders speaks at a campaign event in San Antonio.", raw
        assert "credit" in result.edits


def test_glued_agency_names_are_stripped(no_lid):
    result = no_lid.clean("Commuters wait for a train at the central station in MilanAFP via Getty Images")
    assert result.text == "Commuters wait for a train at the central station in Milan"


def test_dateline_and_labels_are_stripped(no_lid):
    assert no_lid.clean("LONDON, ENGLAND - JULY 04: Fans watch the match on a big screen in the park").text == \
        "Fans watch the match on a big screen in the park"
    assert no_lid.clean("FILE - A worker repairs a power line after the storm").text == \
        "A worker repairs a power line after the storm"
    assert no_lid.clean("Image: Volunteers plant trees along the river bank").text == \
        "Volunteers plant trees along the river bank"
    assert no_lid.clean("Photo 3 of 12: Volunteers plant trees along the river bank").text == \
        "Volunteers plant trees along the river bank"


@pytest.mark.parametrize(("text", "expected"), [("- Andy McMahon", "Andy McMahon"), ("— Jeff Lichtman", "Jeff Lichtman"),
                                              ("• David Cox", "David Cox"), ("Vlad Denic -", "Vlad Denic")])
def test_a_short_caption_loses_the_dash_or_bullet_around_it(no_lid, text, expected):
    assert no_lid.clean(text, "context").text == expected


def test_urls_emails_file_names_and_pixel_sizes_are_stripped(no_lid):
    result = no_lid.clean("Children play in the snow www.example.com/gallery kids@example.org IMG_2041.JPG 1200x630")
    assert result.text == "Children play in the snow"
    assert {"url", "email", "file_name", "pixel_size"} <= set(result.edits)


def test_click_to_enlarge_and_stock_photo_are_stripped(no_lid):
    assert no_lid.clean("A lighthouse on a rocky coast at dusk (click to enlarge)").text == \
        "A lighthouse on a rocky coast at dusk"
    assert no_lid.clean("Happy family having a picnic in the park stock photo").text == \
        "Happy family having a picnic in the park"


def test_pictographs_and_handles_are_stripped(no_lid):
    result = no_lid.clean("Our camper van parked by a lake at sunrise ⛺️ 📸: @vanlife_jo")
    assert result.text == "Our camper van parked by a lake at sunrise" and "emoticon" in result.edits


def test_trailing_site_names_are_stripped(no_lid):
    assert no_lid.clean("Crowds gather for the parade downtown - Photo").text == "Crowds gather for the parade downtown"
    assert no_lid.clean("Crowds gather for the parade downtown | Daily Planet").text == \
        "Crowds gather for the parade downtown"
    assert no_lid.clean("Crowds gather for the parade downtown - The Daily Planet",
                        site_names=("dailyplanet",)).text == "Crowds gather for the parade downtown"
    # A long segment after a dash is part of the caption.
    text = "Andy Murray looks on at a press conference - Britain determined not to be frozen out of the cup"
    assert no_lid.clean(text).text == text


def test_long_caption_keeps_leading_sentences(no_lid):
    first = "Lt. Col. Alexander Vindman testifies before the House Intelligence Committee in Washington, Nov. 19, 2019."
    story = " The hearing is part of the impeachment inquiry that has gripped the capital for weeks now." * 4
    result = no_lid.clean(first + story)
    assert result.kept
    assert result.text.startswith(first)
    assert len(result.text.split()) <= 50 and "sentences" in result.edits


def test_split_sentences_respects_abbreviations():
    assert split_sentences("Gov. Kate Brown in Salem, Ore. on Monday. She spoke. U.S. troops left.") == \
        ["Gov. Kate Brown in Salem, Ore. on Monday.", "She spoke.", "U.S. troops left."]


# ------------------------------------------------------------------ rules
@pytest.mark.parametrize("text", ["{{alt}}", "${image.title}", "## sitename ##", "TODO: add alt text",
                                  "Your browser does not support the video tag."])
def test_template_placeholders(no_lid, text):
    assert reasons(no_lid, text) == ["placeholder"]


@pytest.mark.parametrize("text", ["undefined", "Image 2", "Picture #4", "OLYMPUS DIGITAL CAMERA", "photo", "null"])
def test_generic_placeholders(no_lid, text):
    assert reasons(no_lid, text) == ["placeholder"]


@pytest.mark.parametrize("text", ["IMG_2041.JPG", "hero-banner-2x", "25-IMG_4173.jpg", "DSC01234",
                                  "Vindman looking at Williams.jpeg", "Screen Shot 2011-08-13 at 4.55.35 PM"])
def test_file_names(no_lid, text):
    assert reasons(no_lid, text) == ["file_name"]


@pytest.mark.parametrize("text", ["4.5 out of 5 stars", "3 Stars", "2 Sterne"])
def test_rating_stars(no_lid, text):
    assert reasons(no_lid, text) == ["rating"]


def test_text_that_is_only_a_url_or_credit(no_lid):
    assert reasons(no_lid, "https://twitter.com/someone/status/12345") == ["url"]
    assert reasons(no_lid, "Photo by Jane Doe") == ["credit"]


def test_site_name(no_lid):
    assert reasons(no_lid, "The Berkshire Eagle", site_names=("berkshireeagle",)) == ["site_name"]
    assert no_lid.clean("Readers of the Berkshire Eagle gather at the county fair", site_names=("berkshireeagle",)).kept


@pytest.mark.parametrize("text", ["CNBC logo", "Site logo", "Facebook icon", "avatar for user HalfPastLate",
                                  "jdoe's picture", "Dohm Engineering Firmenlogo"])
def test_logo(rules, text):
    assert reasons(rules, text) == ["logo"]


def test_licence_badges(no_lid):  # a hard rule: the model never sees a licence badge
    assert reasons(no_lid, "Attribution-NonCommercial-ShareAlike 4.0 International") == ["licence"]


@pytest.mark.parametrize("text", ["Share on Facebook", "Follow us on Twitter", "Subscribe to our newsletter",
                                  "Click here to watch video: the truth about shampoo", "Skip to main content",
                                  "Powered by WordPress", "Get it on Google Play", "Donate once - or every month!"])
def test_navigation(rules, text):
    assert reasons(rules, text) == ["navigation"]


def test_navigation_words_in_a_real_caption_are_kept(rules, cleaner):
    for c in (rules, cleaner):
        assert c.clean("A man checks his phone in front of a large Twitter sign in San Francisco").kept


def test_symbols(no_lid):
    assert reasons(no_lid, "12/03/2019 - 15:30 +++ 44 ---") == ["symbols"]


def test_all_caps(rules):
    assert reasons(rules, "GET THE BEST DEALS TODAY!") == ["all_caps"]
    assert rules.clean("NASA and ESA engineers inspect the JWST mirror").kept


def test_repeated_words(no_lid):
    assert reasons(no_lid, "cheap cheap cheap cheap shoes shoes") == ["repeated_words"]


def test_word_bounds(no_lid):
    assert reasons(no_lid, "Barack Obama") == ["too_short"]
    one_long_sentence = " ".join(f"{w}{i}" for i in range(20) for w in ("red", "boat", "sails"))
    assert reasons(no_lid, one_long_sentence) == ["too_long"]
    assert TextCleaner(min_words=2, min_language_score=-1).clean("Barack Obama").kept


def test_keyword_list(rules):
    text = "queen news prince philip health latest queen elizabeth wedding anniversary royal"
    assert reasons(rules, text) == ["keyword_list"]


def test_title_case_headline(rules):
    assert reasons(rules, "Patriots Quarterback Speaks About Friendship With President") == ["title_case"]
    assert rules.clean("Protest at the Amazon logistics center near Hamburg").kept


@pytest.mark.parametrize("text", ["Hot singles in your area tonight", "Free p0rn videos here, no signup needed",
                                  "best online casino bonus for new players", "s e x y girls waiting for you",
                                  "cheap V1agra shipped to your door today"])
def test_spam_porn(no_lid, text):
    assert reasons(no_lid, text) == ["spam_porn"]


def test_spam_porn_matches_whole_words_only():
    assert spam_porn_matches("An analysis of the Sussex coastline at Middlesex") == []
    assert spam_porn_matches("Watch free p.o.r.n now") == ["porn"]


@pytest.mark.parametrize("text", ["Watch p0rn here", "Watch \"p.o.r.n!\" here", "Watch pooorn here",
                                  "Watch P-0-R-N here", "Watch p o r n here", "Wätch p0rn here"])
def test_spam_porn_undoes_obfuscations(text):
    assert spam_porn_matches(text) == ["porn"]


@pytest.mark.parametrize("text", [
    "Disney's Kevin Mayer at the 2019 Code Media conference", "rock'n'roll x'''y 'quoted' don''t", "4x4 on_the_road",
    "Ein Mann fährt über die Straße", "l’été à Paris", "",
])
def test_word_and_letter_counts_match_their_definitions(text):
    from lait.filters.text_lexicon import WORD, letter_counts, words_of

    # The fast ASCII paths must agree with the plain definitions.
    assert words_of(text) == WORD.findall(text)
    assert letter_counts(text) == (sum(map(str.isupper, text)), sum(map(str.islower, text)),
                                   sum(map(str.isalpha, text)))


def test_lone_surrogates_are_removed_not_fatal(cleaner):
    # Half an emoji, as a JSON escape leaves it: no encoder (fastText's included) takes it.
    result = cleaner.clean("A dog \ud83d runs across a green field in the morning")
    assert result.kept and result.text == "A dog runs across a green field in the morning"


def test_rare_words(rules):
    assert reasons(rules, "the qwzxv blorptang fnordic zibblewomp at dawn") == ["rare_words"]
    # Proper nouns never count as rare.
    assert rules.rare_word_ratio("Larysa stands next to her house in Pidhaine, Ukraine") == 0.0


def test_language(cleaner):
    result = cleaner.clean("Ein Mann fährt mit dem Fahrrad am Kapitol vorbei")
    assert result.reasons == ["language"] and result.language_score < 0.5


def test_thresholds_can_be_disabled():
    text = "cheap cheap cheap cheap shoes shoes"
    assert not TextCleaner(min_language_score=-1).clean(text).kept
    assert TextCleaner(min_language_score=-1, min_unique_word_ratio=-1).clean(text).kept


def test_explain_lists_every_failing_rule(rules, no_lid):
    result = rules.clean("SHARE SHARE SHARE SHARE", explain=True)
    assert {"navigation", "all_caps", "repeated_words"} <= set(result.reasons)
    result = no_lid.clean("SHARE SHARE SHARE SHARE", explain=True)  # the soft rules are the model's signals
    assert "repeated_words" in result.reasons and {"navigation", "all_caps"} <= set(result.signals)


def test_every_reason_code_is_documented():
    doc = sys.modules["lait.filters.text_rules"].__doc__
    for name in TextCleaner(min_language_score=-1).rule_names:
        assert f"``{name}``" in doc, name
    assert "low_caption_score" in TextCleaner(min_language_score=-1).rule_names
    assert "low_caption_score" not in TextCleaner(min_language_score=-1, min_caption_score=-1).rule_names


# ------------------------------------------------------------------ CLI
def _lait(capsys, *args: str) -> tuple[int, str, str]:
    from lait.pipeline.cli import main

    code = main(["clean-text", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_one_text_and_batch(tmp_path, capsys):
    code, out, err = _lait(capsys, "Two cribs in a small nursery space (AP Photo/Jane Doe)")
    assert code == 0, err
    result = json.loads(out)
    assert result.pop("caption_score") > 0.5  # the caption model's score is shown
    assert result == {"text": "Two cribs in a small nursery space", "kept": True, "reasons": []}
    batch = tmp_path / "alts.jsonl"
    batch.write_text('{"text": "IMG_2041.JPG"}\n{"text": "A dog runs on the beach", "source": "title"}\n'
                     'not json\n{"text": null}\n', encoding="utf-8")
    code, out, err = _lait(capsys, "--batch", str(batch))
    results = [json.loads(line) for line in out.splitlines()]
    assert results[1].pop("caption_score") > 0.5
    assert [{k: v for k, v in r.items() if k != "caption_score" or v is not None} for r in results] == [
        {"text": None, "kept": False, "reasons": ["file_name"]},
        {"text": "A dog runs on the beach", "kept": True, "reasons": []},
        {"text": None, "kept": False, "reasons": ["bad_json"]},
        {"text": None, "kept": False, "reasons": ["empty"]},
    ]


def test_cli_usage_errors_are_one_line(tmp_path, capsys):
    code, out, err = _lait(capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    code, out, err = _lait(capsys, "--batch", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "cannot read" in err


def test_cli_runs_as_a_program():
    out = subprocess.run([sys.executable, "-m", "lait.pipeline.cli", "clean-text", "Share on Facebook"],
                         capture_output=True, text=True, timeout=120)
    result = json.loads(out.stdout)
    assert result.pop("caption_score") < 0.1
    assert result == {"text": None, "kept": False, "reasons": ["too_short", "low_caption_score"]}


def test_clean_batch_matches_clean(cleaner):
    items = [("Two cribs in a small nursery space (AP Photo/Jane Doe)", "alt", ()),
             ("Ein Mann fährt mit dem Fahrrad am Kapitol vorbei", "title", ()),
             ("IMG_2041.JPG", "alt", ()), (None, "alt", ()),
             ("Patriots Quarterback Speaks About Friendship With President", "alt", ()),
             ("The Daily Planet", "alt", ("dailyplanet",))]
    batch = cleaner.clean_batch(items)
    single = [cleaner.clean(text, source=source, site_names=names) for text, source, names in items]
    assert [(r.text, r.kept, r.reasons) for r in batch] == [(r.text, r.kept, r.reasons) for r in single]
    assert [r.kept for r in batch] == [True, False, False, False, False, False]
