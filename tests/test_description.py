"""Choosing an image's description (lait/filters/description.py) and the CleanText stage."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamPipeline
from apache_beam.testing.util import assert_that, equal_to

from lait.filters.description import DescriptionChooser, file_name_agrees, site_names
from lait.filters.text_rules import TextCleaner
from lait.pipeline.clean_text import CleanText, CleanTextFn
from lait.pipeline.funnel import Reject
from lait.pipeline.in_process_runner import InProcessRunner
from lait.pipeline.options import LaitOptions


@pytest.fixture(scope="module")
def chooser() -> DescriptionChooser:
    return DescriptionChooser(TextCleaner().load())


def pair(**fields) -> dict:
    record = {"image_url": "https://example.com/a.jpg", "page_url": "https://www.dailyplanet.com/news/1",
              "page_title": None}
    record.update(fields)
    return record


def test_alt_wins_when_it_passes(chooser):
    d = chooser.choose(pair(alt="Firefighters battle a blaze on a hillside above the town",
                            title="Wildfire season", figcaption="Firefighters on Tuesday."))
    assert (d.source, d.text) == ("alt", "Firefighters battle a blaze on a hillside above the town")
    assert d.language_score > 0.5 and d.kept


def test_longer_figcaption_beats_a_short_alt(chooser):
    d = chooser.choose(pair(alt="Starship on the pad",
                            figcaption="SpaceX's Starship rocket stands on the launch pad at Boca Chica, Texas, "
                                       "before its first flight. (Photo: Jane Doe/AP)"))
    assert d.source == "figcaption"
    assert d.text == "SpaceX's Starship rocket stands on the launch pad at Boca Chica, Texas, before its first flight."


def test_a_short_figcaption_does_not_beat_a_longer_alt(chooser):
    d = chooser.choose(pair(alt="Two cribs in a nursery", figcaption="Cribs"))
    assert d.source == "alt"


def test_later_sources_are_used_when_earlier_ones_fail(chooser):
    d = chooser.choose(pair(alt="IMG_2041.JPG", figcaption=None, og_image_alt="",
                            title="A fisherman mends his nets on the harbour wall at dawn"))
    assert d.source == "title"
    assert d.tried == {"alt": "file_name"}
    d = chooser.choose(pair(alt="logo", context="A fisherman mends his nets on the harbour wall at dawn. "
                                                "The town has had a fishing fleet since the 12th century."))
    assert d.source == "context"
    assert d.text == "A fisherman mends his nets on the harbour wall at dawn."


def test_page_title_reused_as_alt_is_not_a_description(chooser):
    d = chooser.choose(pair(alt="Tesla to build its new factory near Berlin",
                            page_title="Tesla to build its new factory near Berlin | Daily Planet"))
    assert not d.kept and d.reason == "page_title"


def test_site_name_of_the_page_is_dropped(chooser):
    d = chooser.choose(pair(alt="The Daily Planet"))
    assert d.reason == "site_name"
    assert site_names("https://www.daily-planet.co.uk/x") == ("dailyplanet",)
    assert site_names(None) == () and site_names("not a url") == ()


def test_reason_of_the_best_failed_candidate(chooser):
    # The German title got furthest (to the language rule): that is the reason reported.
    d = chooser.choose(pair(alt="", title="Ein Mann fährt mit dem Fahrrad am Kapitol vorbei", figcaption="Share"))
    assert d.reason == "language"
    assert d.detail.startswith("title: Ein Mann")
    assert d.tried == {"title": "language", "figcaption": "too_short"}


def test_no_candidate_at_all(chooser):
    d = chooser.choose(pair(alt=None, title="  ", figcaption=None))
    assert (d.kept, d.reason) == (False, "no_text")


def test_batch_gives_the_same_choices_as_one_by_one(chooser):
    records = [pair(alt="IMG_2041.JPG", title="A fisherman mends his nets on the harbour wall at dawn"),
               pair(alt="Ein Mann fährt mit dem Fahrrad am Kapitol vorbei",
                    title="A man rides a bicycle past the Capitol in the rain"),
               pair(alt="Starship", figcaption="SpaceX's Starship stands on the launch pad at Boca Chica, Texas"),
               pair(alt=None), pair(alt="Share on Facebook", title="Share on Facebook")]
    one_by_one = [chooser.choose(r) for r in records]
    batch = chooser.choose_batch(records)
    assert [(d.text, d.source, d.reason) for d in batch] == [(d.text, d.source, d.reason) for d in one_by_one]
    assert [d.source for d in batch] == ["title", "title", "figcaption", None, None]


def test_non_string_candidates_do_not_crash(chooser):
    d = chooser.choose(pair(alt=12345, og_image_alt=["x"], title="A red tractor ploughs a field under a grey sky"))
    assert d.source == "title"
    assert d.tried == {"alt": "not_text", "og_image_alt": "not_text"}


# ------------------------------------------------------------------ the Beam stage
def _options(**values) -> LaitOptions:
    """`lait run`'s options with its defaults, but for `values`."""
    return LaitOptions(flags=[], **{"min_words": 3, **values})


def test_stage_dofn_keeps_and_rejects():
    fn = CleanTextFn.from_options(_options())
    fn.setup()
    fn.start_bundle()
    kept = list(fn.run([pair(alt="A red tractor ploughs a field under a grey sky (Photo: J. Doe)")]))
    assert kept[0]["text"] == "A red tractor ploughs a field under a grey sky"
    assert kept[0]["text_source"] == "alt" and kept[0]["text_language_score"] > 0.5
    assert kept[0]["alt"].endswith("(Photo: J. Doe)")  # the raw candidates stay for later stages
    rejected = list(fn.run([pair(alt="Share on Facebook")]))
    assert isinstance(rejected[0], Reject) and rejected[0].reason == "low_caption_score"
    assert rejected[0].detail.startswith("alt: score 0.0")  # the caption model's score, below its threshold


def test_stage_in_a_pipeline_counts_every_pair():
    pairs = [
        pair(alt="A red tractor ploughs a field under a grey sky"),
        pair(alt="IMG_2041.JPG"),
        pair(alt=None, title=None),
        pair(alt="Two children build a sandcastle on a windy beach", figcaption="Kids"),
    ]
    with BeamPipeline(runner=InProcessRunner()) as p:
        out = p | beam.Create(pairs) | CleanText(_options())
        assert_that(out.main | "Texts" >> beam.Map(lambda r: (r["text_source"], r["text"])), equal_to([
            ("alt", "A red tractor ploughs a field under a grey sky"),
            ("alt", "Two children build a sandcastle on a windy beach"),
        ]), label="kept")
        assert_that(out.drops | "Reasons" >> beam.Map(lambda e: (e["stage"], e["reason"])),
                    equal_to([("CleanText", "file_name"), ("CleanText", "no_text")]), label="drops")
        counts = out.counts | beam.CombinePerKey(sum)
        assert_that(counts, equal_to([(("CleanText", "in"), 4), (("CleanText", "out"), 2),
                                      (("CleanText", "dropped.file_name"), 1), (("CleanText", "dropped.no_text"), 1)]),
                    label="counts")


def test_a_caption_of_names_is_not_a_title_case_headline(chooser):
    kept = chooser.choose(pair(alt="Minister Joe Costello with King Letsie III of Lesotho"))
    assert kept.kept and kept.source == "alt"
    dropped = chooser.choose(pair(alt="Patriots QB Tom Brady Speaks About Friendship"))
    assert not dropped.kept and dropped.reason == "low_caption_score"  # title_case is one of the model's signals


def test_a_caption_of_names_takes_its_page_language(chooser):
    names = "(l to r) Rachelle Gaudet, Marcos Sotomayor and Kenneth Skinner"
    english_page = chooser.choose(pair(context=names, page_language="en", page_language_score=0.97))
    assert english_page.kept and english_page.source == "context"
    other_page = chooser.choose(pair(context=names, page_language="de", page_language_score=0.97))
    assert other_page.text is None or other_page.language_score < 0.97


def test_headline_describes_only_where_the_file_name_names_the_same_thing():
    chooser = DescriptionChooser(TextCleaner().load())  # SOURCES: headline last
    named = chooser.choose(pair(headline="The border virtues of Buddy Cole",
                                image_urls=["https://cdn.example.com/2011/09/buddy-cole11.jpeg"]))
    assert (named.source, named.text, named.needs_face) == ("headline", "The border virtues of Buddy Cole", False)
    hashed = chooser.choose(pair(headline="The border virtues of the sketch show",
                                 image_urls=["https://cdn.example.com/2011/09/6a00d8351.jpeg"]))
    assert not hashed.kept and hashed.reason == "unconfirmed_headline"
    # a headline naming a person is another matter: kept where the image shows a face (ScoreRelevance)
    person = chooser.choose(pair(headline="The border virtues of Buddy Cole",
                                 image_urls=["https://cdn.example.com/2011/09/6a00d8351.jpeg"]))
    assert person.kept and person.needs_face


def test_clean_text_uses_the_headline_unless_told_not_to():
    record = pair(headline="Lemon shark cupcakes for shark week",
                  image_urls=["https://cdn.example.com/2012/08/sharkcupcakeheader.jpeg"])
    default = CleanTextFn.from_options(_options(min_words=4))
    without = CleanTextFn.from_options(_options(min_words=4, headline_text=False))
    for dofn in (default, without):
        dofn.setup()
        dofn.start_bundle()
    assert next(iter(default.run([record])))["text_source"] == "headline"
    assert isinstance(next(iter(without.run([record]))), Reject)


def test_a_lead_image_without_a_heading_above_takes_the_page_title_as_its_headline():
    chooser = DescriptionChooser(TextCleaner(min_language_score=-1))
    urls = ["https://example.org/files/teachers_making_a_difference_1.jpg"]
    titled = chooser.choose(pair(og_title="Teachers Making a Difference in Uganda Travel to Ireland", image_urls=urls))
    assert (titled.source, titled.text) == ("headline", "Teachers Making a Difference in Uganda Travel to Ireland")
    # A heading above the image wins over the title; the title's casing is a headline's, not junk.
    headed = chooser.choose(pair(headline="Teachers from Uganda visit Dublin", og_title=titled.text, image_urls=urls))
    assert headed.text == "Teachers from Uganda visit Dublin"
    unrelated = chooser.choose(pair(og_title="Annual Report of the Fellowship Programme 2016", image_urls=urls))
    assert not unrelated.kept and unrelated.reason == "unconfirmed_headline"


def test_a_headline_in_title_case_is_kept_where_an_alt_in_title_case_is_not():
    chooser = DescriptionChooser(TextCleaner(min_language_score=-1, min_caption_score=-1))
    urls = ["https://news.example.edu/images/McMahon2_1.jpg"]
    headline = chooser.choose(pair(headline="Andy McMahon Receives Javits Award", image_urls=urls))
    assert (headline.source, headline.text) == ("headline", "Andy McMahon Receives Javits Award")
    alt = chooser.choose(pair(alt="Andy McMahon Receives Javits Award", image_urls=urls))
    assert alt.source != "alt"


def test_a_file_name_confirms_a_plural_of_what_it_names():
    assert file_name_agrees("Blood in the water cupcakes", ["https://cdn.example.com/sharkcupcakeheader.jpeg"])
    assert file_name_agrees("Books for baby", ["https://cdn.example.com/2012/11/babybookheader.jpg"])
    # A file-role word stays one in the plural: "images" confirms nothing.
    assert not file_name_agrees("More images from the show", ["https://cdn.example.com/image-0001.jpg"])


def test_a_short_caption_the_file_name_confirms_is_kept_but_a_short_headline_is_not():
    chooser = DescriptionChooser(TextCleaner().load())
    portrait = ["https://news.example.edu/editor_uploads/2009/01/denic1_profile1-6-09.jpg"]
    named = chooser.choose(pair(context="Vlad Denic", image_urls=portrait, page_language="en",
                                page_language_score=0.95))
    assert (named.source, named.text) == ("context", "Vlad Denic")
    unnamed = chooser.choose(pair(context="Vlad Denic", image_urls=["https://news.example.edu/a81f03.jpg"],
                                  page_language="en", page_language_score=0.95))
    assert not unnamed.kept and unnamed.reason == "too_short"
    story = chooser.choose(pair(headline="Dating and taxes", image_urls=["https://cdn.example.com/online_dating.jpg"]))
    assert not story.kept and story.reason == "too_short"


def test_a_page_text_that_names_a_person_is_kept_pending_a_face():
    chooser = DescriptionChooser(TextCleaner(min_language_score=-1))
    urls = ["https://news.example.edu/uploads/2016/08/2016_tm.png"]
    sentence = "Tessa Montague, a fifth-year graduate student in the Schier lab, is not afraid of work."
    profile = chooser.choose(pair(headline="Graduate Student Balances Lab Work and Outreach", next_sentence=sentence,
                                  image_urls=urls))
    assert (profile.source, profile.text, profile.needs_face) == ("next_sentence", sentence, True)
    named = chooser.choose(pair(headline="Postdoc Profile: Jenna Eun [Garner Lab]", image_urls=urls))
    assert (named.source, named.needs_face) == ("headline", True)
    # a headline the file name confirms needs no face; a text written for the image never does
    confirmed = chooser.choose(pair(headline="Lemon shark cupcakes for shark week",
                                    image_urls=["https://cdn.example.com/sharkcupcakeheader.jpeg"]))
    assert (confirmed.source, confirmed.needs_face) == ("headline", False)
    assert chooser.choose(pair(alt="Tessa Montague at her bench in the Schier lab", image_urls=urls)).needs_face is False


def test_a_body_sentence_is_kept_only_where_it_names_a_person():
    chooser = DescriptionChooser(TextCleaner(min_language_score=-1))
    urls = ["https://cdn.example.com/2012/02/show.jpg"]
    # the file name names the story's topic as its first sentence does: no sign that the photo shows it
    topical = chooser.choose(pair(next_sentence="The show is back on cable this winter with a new season.",
                                  image_urls=urls))
    assert not topical.kept and topical.reason == "unconfirmed_sentence"
    unnamed = chooser.choose(pair(next_sentence="The new season opens with a two-hour special next week.",
                                  image_urls=urls))
    assert not unnamed.kept and unnamed.reason == "unconfirmed_sentence"
    # where the headline failed too, the funnel names the headline, as before
    both = chooser.choose(pair(headline="A night out", next_sentence="It was a long night.", image_urls=urls))
    assert both.reason in ("unconfirmed_headline", "too_short")
