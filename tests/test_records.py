"""lait.records: the record types say what the stages really pass on, and the schema reads them."""

from __future__ import annotations

import pytest

from lait.pipeline.dominant_image import DetectDominantImageFn
from lait.pipeline.funnel import Reject
from lait.pipeline.parse_pages import ParsePagesFn
from lait.pipeline.schema import COLUMN_NAMES, STAGE_FIELDS
from lait.records import FIELDS_OF_STAGE, CrawlRecord, PageRecord, PairRecord, keys_of
from lait.sample_crawl import write_sample_crawl


@pytest.fixture(scope="module")
def crawl_records(tmp_path_factory) -> list[dict]:
    from lait.pipeline.crawl_records import iter_crawl_records

    path = tmp_path_factory.mktemp("crawl") / "sample.warc.gz"
    write_sample_crawl(str(path))
    return [r for r in iter_crawl_records(str(path)) if isinstance(r, dict)]


def _run(dofn, records: list[dict]) -> list[dict]:
    dofn.setup()
    dofn.start_bundle()
    return [out for record in records for out in dofn.run(record) if not isinstance(out, Reject)]


def test_each_stage_passes_on_the_keys_its_record_type_names(crawl_records):
    assert crawl_records and all(set(r) == set(keys_of(CrawlRecord)) for r in crawl_records)
    pages = _run(ParsePagesFn(["en"], 0.5, 5_000_000), [r for r in crawl_records if r["kind"] == "page"])
    assert pages and all(set(p) <= set(keys_of(PageRecord)) for p in pages)
    assert all(set(keys_of(PageRecord)) - set(p) <= {"og_title", "og_description", "og_image_alt"} for p in pages)
    pairs = _run(DetectDominantImageFn(None, 0.5), pages)
    assert pairs and all(set(p) <= set(keys_of(PairRecord)) for p in pairs)
    assert all("candidates" not in p for p in pairs)


def test_the_schema_lists_the_record_types_keys_and_writes_only_record_keys():
    assert STAGE_FIELDS == {stage: keys_of(fields) for stage, fields in FIELDS_OF_STAGE.items()}
    assert set(COLUMN_NAMES) - {"image"} <= set(keys_of(PairRecord))
