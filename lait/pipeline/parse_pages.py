"""ParsePages: decode and parse HTML pages once, keep pages in the wanted languages, list their image candidates.

The DOM is parsed here and nowhere else: the output record is compact and picklable
(page fields, `og_title` / `og_description` / `og_image_alt`, and `candidates`, each a small
dict with its URL, where the page names it, its DOM features and its texts), so
DetectDominantImage only ranks and decides.

Reject reasons: `page_too_large` (over --max_page_bytes), `parse_error`, `no_text`,
`language` (not in --languages or below --min_language_score).
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam

from lait.pipeline.funnel import Reject, StageDoFn, StageOutput, apply_stage
from lait.records import CrawlRecord, PageRecord

# Crawl keys carried through to the corpus rows.
PASS_THROUGH = ("warc_path", "warc_offset", "fetch_time")


class ParsePagesFn(StageDoFn):
    stage = "ParsePages"

    def __init__(self, languages: list[str], min_language_score: float, max_page_bytes: int):
        super().__init__()
        self.languages = languages
        self.min_language_score = min_language_score
        self.max_page_bytes = max_page_bytes

    def setup(self) -> None:
        from lait.filters.page import PageParser

        self.parser = PageParser(languages=self.languages, min_language_score=self.min_language_score,
                                 max_page_bytes=self.max_page_bytes)

    def run(self, page: CrawlRecord) -> Iterator[PageRecord | Reject]:
        from lait.scoring.dominant_image import extract_candidates, page_record_candidates

        content_type = (page.get("http_headers") or {}).get("content-type")
        parsed = self.parser.parse(page["content"], page["url"], content_type)
        if isinstance(parsed, tuple):
            yield Reject(parsed[1], page, parsed[2])
            return
        try:
            candidates, texts = page_record_candidates(extract_candidates(parsed, describe_unusable=False))
        except Exception as error:  # noqa: BLE001 - one hostile page must not fail the job; it is counted
            yield Reject("parse_error", page, f"candidates: {type(error).__name__}: {error}")
            return
        record = {
            "page_url": page["url"], "page_title": parsed.title or texts.get("og_title"),
            "page_language": parsed.language, "page_language_score": parsed.language_score,
            "candidates": candidates, **texts,
        }
        record.update({k: page[k] for k in PASS_THROUGH if k in page})
        yield record


class ParsePages(beam.PTransform):
    """HTML page records -> parsed page records (language kept, candidates with features listed)."""

    def __init__(self, options):
        super().__init__()
        self.dofn = ParsePagesFn(
            languages=[code.strip() for code in options.languages.split(",") if code.strip()],
            min_language_score=options.min_language_score,
            max_page_bytes=options.max_page_bytes,
        )

    def expand(self, pages: beam.PCollection) -> StageOutput:
        return apply_stage(pages, "Parse", self.dofn)
