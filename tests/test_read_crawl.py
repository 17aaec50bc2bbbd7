"""ReadCrawl on the real WARC/ARC files in ../shared/data/warc (many deliberately broken)."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import zlib
from collections import Counter
from pathlib import Path

import apache_beam as beam
import brotli
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from fastwarc.warc import ArchiveIterator

from lait.errors import UsageError
from lait.pipeline.funnel import Reject, WriteFunnel, reconcile
from lait.pipeline.in_process_runner import InProcessRunner
from lait.pipeline.read_crawl import ReadCrawl, decode_body, expand_patterns, iter_crawl_records, unread_inputs
from tests.conftest import shared_path

AUT = "archivesunleashed+aut/src/test/resources"
UKWA = "ukwa+webarchive-discovery/warc-indexer/src/test/resources"
KEYS = {"kind", "url", "content", "http_headers", "warc_path", "warc_offset", "fetch_time"}


def _read(*parts: str) -> tuple[list[dict], list[Reject]]:
    """Kept records and rejects of one shared file, without the readers' warnings (`reader_warning`)."""
    kept, rejects = [], []
    for item in iter_crawl_records(str(shared_path("warc", *parts))):
        if not (isinstance(item, Reject) and item.reason == "reader_warning"):
            (rejects if isinstance(item, Reject) else kept).append(item)
    return kept, rejects


def _reasons(rejects: list[Reject]) -> Counter:
    return Counter(r.reason for r in rejects)


def test_gzip_warc_gives_every_2xx_html_and_image_response_with_provenance():
    kept, rejects = _read(AUT, "warc/example.warc.gz")
    kinds = Counter(r["kind"] for r in kept)
    # warcio's own view of this file: 94 HTML and 55 image responses with a 2xx status.
    assert kinds == {"page": 94, "image": 55}
    assert _reasons(rejects) == {"not_response": 523, "not_html_or_image": 103, "http_status": 47}
    assert len(kept) + len(rejects) == 822  # every record of the file accounted for
    for record in kept:
        assert set(record) == KEYS and record["content"]
        assert all(name == name.lower() for name in record["http_headers"])
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", record["fetch_time"])
    pages = [r for r in kept if r["kind"] == "page"]
    assert all(b"<" in p["content"][:200] for p in pages)
    assert all("html" in p["http_headers"]["content-type"] for p in pages)
    # warc_offset points at the record itself: a reader started there reads that record first.
    path = kept[0]["warc_path"]
    with open(path, "rb") as f:
        for record in kept[::25]:
            f.seek(record["warc_offset"])
            first = next(iter(ArchiveIterator(f, parse_http=False)))
            assert first.headers.get("WARC-Target-URI") == record["url"]


def test_arc_gives_the_same_pages_as_its_warc_twin():
    arc_kept, arc_rejects = _read(AUT, "arc/example.arc.gz")
    warc_kept, _ = _read(AUT, "warc/example.warc.gz")
    pages = lambda kept: {r["url"] for r in kept if r["kind"] == "page"}  # noqa: E731
    assert pages(arc_kept) == pages(warc_kept) and len(pages(arc_kept)) == 94
    assert Counter(r["kind"] for r in arc_kept)["image"] == 55
    assert "read_error" not in _reasons(arc_rejects)
    assert all(r["fetch_time"].startswith("2008-04-30T") for r in arc_kept)


def test_truncated_file_keeps_the_records_before_the_cut_and_counts_one_read_error(tmp_path):
    source = shared_path("warc", AUT, "warc/example.warc.gz")
    data = source.read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[: len(data) // 2])
    kept, rejects = [], []
    for item in iter_crawl_records(str(cut)):
        (rejects if isinstance(item, Reject) else kept).append(item)
    errors = [r for r in rejects if r.reason == "read_error"]
    assert len(errors) == 1 and str(cut) in errors[0].detail
    full_pages = [r["url"] for r in iter_crawl_records(str(source)) if isinstance(r, dict)]
    assert 0.3 * len(full_pages) < len(kept) < 0.7 * len(full_pages)
    assert [r["url"] for r in kept] == full_pages[: len(kept)]  # the same records, in order
    assert all(r["warc_offset"] < len(data) // 2 for r in kept)


def test_broken_plain_warc_reads_on_after_the_break_and_reports_it_once_last():
    kept, rejects = _read("richardlehane+webarchive/examples/jhove/invalid/invalid-warcrecord-3.warc")
    reasons = [r.reason for r in rejects if r.reason != "reader_warning"]
    # Two records, then a break; six copies of the record follow it in the file, and are read.
    assert reasons[:2] == ["not_html_or_image", "not_html_or_image"] and reasons[-1] == "read_error"
    assert reasons.count("read_error") == 1 and reasons.count("not_html_or_image") == 6
    error = rejects[-1]
    assert error.record["warc_path"].endswith("invalid-warcrecord-3.warc") and error.record["warc_offset"] == 1073
    assert "read on from offset 2046" in error.detail


@pytest.mark.parametrize("path, records, pages", [
    ("webrecorder+warcio/test/data/example-trunc.warc", 4, 1),  # fastwarc fails after 3
    ("webrecorder+pywb/sample_archive/warcs/example.warc", 6, 1),  # fastwarc fails after 5
    ("richardlehane+webarchive/examples/jhove/valid/valid-warcfile-upper-lower-case.warc", 5, 0),  # after 1
    ("iipc+webarchive-commons/src/test/resources/org/archive/resource/html/link-extraction-test.warc", 8, 7),  # warcio 4
    ("internetarchive+gowarc/testdata/warcs/skip-non-open.warc.gz", 10, 10),  # warcio fails after 1
])
def test_where_one_reader_fails_the_other_reads_the_file_to_its_end(path, records, pages):
    kept, rejects = _read(path)
    assert "read_error" not in _reasons(rejects)
    assert len(kept) + len(rejects) == records  # the better reader's count: none lost, none twice
    assert sum(r["kind"] == "page" for r in kept) == pages


def test_revisits_are_counted_not_kept():
    kept, rejects = _read(UKWA, "gov.uk-revisit-warcs/BL-20140325122341434-00000-32090~opera~8443.warc.gz")
    assert _reasons(rejects)["revisit"] == 55
    assert len(kept) + len(rejects) == 190


@pytest.mark.parametrize("encoding", ["brotli", "gzip"])
def test_content_encoded_bodies_are_decoded_to_the_same_html(encoding):
    plain, _ = _read(UKWA, "compression/transfer_compression_none.warc")
    for suffix in ("warc", "warc.gz"):
        kept, _ = _read(UKWA, f"compression/transfer_compression_{encoding}.{suffix}")
        [page] = [r for r in kept if r["kind"] == "page"]
        assert page["http_headers"]["content-encoding"] == {"brotli": "br", "gzip": "gzip"}[encoding]
        assert page["content"] == plain[0]["content"] and page["content"].lstrip().startswith(b"<html>")


def test_chunked_body_is_dechunked():
    kept, _ = _read("webrecorder+warcio/test/data/example-iana.org-chunked.warc")
    [page] = kept
    assert page["http_headers"]["transfer-encoding"] == "chunked"
    assert page["content"].startswith(b"<!doctype html>") and page["content"].rstrip().endswith(b"</html>")


def test_lf_only_http_headers_are_parsed():
    kept, rejects = _read("chatnoir-eu+chatnoir-resiliparse/tests/data/clueweb-quirk.warc.gz")
    assert len(kept) == 29 and {r["kind"] for r in kept} == {"page"}
    assert kept[0]["http_headers"]["content-type"].startswith("text/html")


def test_image_resource_record_is_kept_as_an_image():
    kept, _ = _read("webrecorder+warcio/test/data/example-space-in-target-uri.warc.gz")
    [image] = kept
    assert image["kind"] == "image" and image["content"].startswith(b"\x89PNG")


def test_decode_body_is_lenient_where_crawlers_are_inconsistent():
    html = b"<html><body>" + b"kite " * 200 + b"</body></html>"
    assert decode_body(gzip.compress(html), content_encoding="gzip") == html
    assert decode_body(brotli.compress(html), content_encoding="br") == html
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert decode_body(raw_deflate.compress(html) + raw_deflate.flush(), content_encoding="deflate") == html
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(html), html)
    assert decode_body(chunked, "chunked", "") == html
    assert decode_body(html, "chunked", "gzip") == html  # stored already decoded under the original headers
    with pytest.raises(ValueError):
        decode_body(b"\x1f\x8bthis is not deflate data", content_encoding="gzip")


def test_unreadable_path_is_a_read_error_not_a_crash(tmp_path):
    [error] = list(iter_crawl_records(str(tmp_path / "gone.warc.gz")))
    assert error.reason == "read_error" and "gone.warc.gz" in error.detail


def test_warcio_warnings_are_counted_per_file_not_printed(capfd):
    # warcio writes "Record not followed by newline..." to sys.stderr itself (a private detail that
    # lait/pipeline/reader_warnings.py redirects: this fails if warcio changes how it warns).
    path = str(shared_path("warc", "richardlehane+webarchive/examples/jhove/invalid/invalid-warcrecord-3.warc"))
    items = list(iter_crawl_records(path))
    warnings = [r for r in items if isinstance(r, Reject) and r.reason == "reader_warning"]
    assert warnings and all("\n" not in r.detail and path in r.detail for r in warnings)
    assert "Record not followed by newline" in warnings[0].detail
    assert capfd.readouterr().err == ""
    from warcio.archiveiterator import ArchiveIterator as WarcioArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    with open(path, "rb") as f, pytest.raises(ArchiveLoadFailed):  # outside ReadCrawl warcio prints as before
        list(WarcioArchiveIterator(f))
    assert "Record not followed by newline" in capfd.readouterr().err


@pytest.mark.parametrize("content", [b"", b"\r\n", b"\n\n  \n"])
def test_an_empty_or_blank_file_is_counted(tmp_path, content):
    (tmp_path / "empty.warc").write_bytes(content)
    [reject] = list(iter_crawl_records(str(tmp_path / "empty.warc")))
    assert reject.reason == "empty_file" and "empty.warc" in reject.detail


def test_a_run_that_read_no_record_is_summarised_in_one_line():
    def funnel(**dropped):
        return {"stages": [{"name": "ReadCrawl", "in": sum(dropped.values()), "out": 0, "dropped": dropped}]}

    summary = unread_inputs(funnel(read_error=2, empty_file=1, reader_warning=3))
    assert summary.startswith("no input file could be read (read_error 2, empty_file 1)") and "\n" not in summary
    assert unread_inputs(funnel(read_error=1, not_response=1)) is None  # one file gave a record
    assert unread_inputs(funnel()) is None


def test_a_glob_that_matches_nothing_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="matches no file"):
        ReadCrawl([str(tmp_path / "*.warc.gz")])
    with pytest.raises(UsageError, match="is a folder"):
        ReadCrawl([str(tmp_path)])


def test_plain_paths_and_globs_name_each_file_once(tmp_path):
    for name in ("a.warc.gz", "b.warc.gz", "c.arc.gz"):
        (tmp_path / name).write_bytes(b"")
    a, b, c = (str(tmp_path / name) for name in ("a.warc.gz", "b.warc.gz", "c.arc.gz"))
    assert expand_patterns([c, str(tmp_path / "*.warc.gz"), a]) == [a, b, c]
    with pytest.raises(UsageError, match="gone.warc.gz' matches no file"):
        expand_patterns([a, str(tmp_path / "gone.warc.gz")])


def _readme_rows(readme: Path) -> dict[str, tuple[int, int, str, str, str]]:
    """README table: path -> (HTML responses, image responses, warcio result, fastwarc result, status)."""
    rows = {}
    for line in readme.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 11 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = (int(cells[5]), int(cells[6]), cells[9], cells[10], cells[7])
    return rows


def _write_json(path: str, value) -> None:
    Path(path).write_text(json.dumps(value))


def test_readcrawl_pipeline_reads_every_shared_file(tmp_path):
    root = shared_path("warc")
    rows = _readme_rows(root / "README.md")
    files = sorted(str(p) for p in root.rglob("*") if p.is_file() and p.name != "README.md")
    assert len(files) == len(rows) == 141
    out = str(tmp_path)
    with beam.Pipeline(runner=InProcessRunner(), options=PipelineOptions(["--runner=DirectRunner"])) as pipeline:
        crawl = pipeline | "ReadCrawl" >> ReadCrawl(files, progress=False)
        crawl.counts | WriteFunnel(out)
        (crawl.drops | beam.Filter(lambda e: e["reason"] == "read_error") | beam.Map(lambda e: e["warc_path"])
         | "ErrorFiles" >> beam.combiners.ToList() | "WriteErrors" >> beam.Map(lambda v: _write_json(f"{out}/e", v)))
        for name, pcoll in (("pages", crawl.pages), ("images", crawl.images)):
            (pcoll | f"Count{name}" >> beam.combiners.Count.Globally()
             | f"Write{name}" >> beam.Map(lambda n, name=name: _write_json(f"{out}/{name}", n)))
    funnel = json.loads((tmp_path / "_funnel.json").read_text())
    read = funnel["stages"][0]
    assert read["name"] == "ReadCrawl" and not [p for p in reconcile(funnel) if p.startswith("ReadCrawl")]
    pages, images = (json.loads((tmp_path / n).read_text()) for n in ("pages", "images"))
    assert read["out"] == pages + images
    # The README counts HTML/image responses of any status; pages are the 2xx ones (94 of 140 in example.warc.gz).
    html, image = sum(r[0] for r in rows.values()), sum(r[1] for r in rows.values())
    assert 0.7 * html <= pages <= html and 0.9 * image <= images <= image + 10
    error_files = {str(Path(p).relative_to(root)) for p in json.loads((tmp_path / "e").read_text())}
    assert read["dropped"]["read_error"] == len(error_files)  # one per broken file
    both_fail = {p for p, (_, _, w, f, _) in rows.items() if "after" in w and ("after" in f or "n/a" in f)}
    sound = {p for p, (_, _, w, f, status) in rows.items() if status == "ok" and w.startswith("ok")}
    assert len(both_fail) >= 10 and both_fail <= error_files
    assert len(sound) >= 40 and not error_files & sound


def test_readcrawl_expands_globs_once_and_sorted(tmp_path):
    source = shared_path("warc", "webrecorder+warcio/test/data")
    for name in ("example.warc.gz", "example.arc"):
        shutil.copy(source / name, tmp_path / name)
    crawl = ReadCrawl([str(tmp_path / "*.warc.gz"), str(tmp_path / "example.*")])
    assert crawl.files == [str(tmp_path / "example.arc"), str(tmp_path / "example.warc.gz")]

