"""The sample crawl: deterministic, readable with warcio, and holding the cases EXPECTED promises."""

from __future__ import annotations

import io
import itertools
from collections import Counter
from urllib.parse import urljoin

import lxml.html
import numpy as np
import pytest
from PIL import Image
from scipy.fft import dct
from warcio.archiveiterator import ArchiveIterator

import lait.sample_crawl as sample_crawl
from lait.pipeline.cli import main as lait_main
from lait.sample_crawl import COPIES, EXPECTED, OUTCOMES, PHOTOS, SHARED_CAPTION, write_sample_crawl
from lait.sample_crawl import crawl as crawl_module
from lait.sample_crawl import images as sample_images

SMALL_PHOTOS = {"lake_small", "dahlia_small"}


def phash(image: Image.Image) -> np.ndarray:
    """64-bit DCT perceptual hash: 32x32 grey, 2-D DCT, top-left 8x8 against its median."""
    grey = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    low = dct(dct(grey, axis=0, norm="ortho"), axis=1, norm="ortho")[:8, :8]
    return (low > np.median(low)).flatten()


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    path = tmp_path_factory.mktemp("a") / "sample.warc.gz"
    summary = write_sample_crawl(str(path))
    records = {}
    with open(path, "rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type == "response":
                url = record.rec_headers.get_header("WARC-Target-URI")
                assert url not in records, f"two responses for {url}"
                records[url] = (record.http_headers.get_header("Content-Type"), record.content_stream().read())
    return path, summary, records


def page_text(body: bytes) -> str:
    root = lxml.html.document_fromstring(body)
    for node in root.xpath("//script|//style|//noscript"):
        node.drop_tree()
    return " ".join(root.body.text_content().split())


def test_two_writes_give_identical_bytes(crawl, tmp_path):
    path, summary, _ = crawl
    again = tmp_path / "sample.warc.gz"
    crawl_module._rendered.cache_clear()  # render and encode every image again
    sample_images._sample_photo.cache_clear()
    assert write_sample_crawl(str(again))["bytes"] == summary["bytes"]
    assert again.read_bytes() == path.read_bytes()


def test_every_record_is_its_own_gzip_member_with_fixed_mtime(crawl):
    data = crawl[0].read_bytes()
    assert data[:4] == b"\x1f\x8b\x08\x00" and data[4:8] == b"\x00\x00\x00\x00"  # gzip, no flags, mtime 0
    assert data.count(b"\x1f\x8b\x08\x00\x00\x00\x00\x00") >= crawl[1]["records"]


def test_summary_and_size(crawl):
    path, summary, records = crawl
    assert summary["pages"] == len(EXPECTED) >= 45
    assert summary["images"] >= 60
    assert summary["bytes"] == path.stat().st_size < 3 * 2**20
    assert sum(1 for ctype, _ in records.values() if ctype.startswith("text/html")) == len(EXPECTED)


def test_expected_pages_are_html_responses(crawl):
    records = crawl[2]
    for entry in EXPECTED:
        ctype, body = records[entry["page_url"]]
        assert ctype.startswith("text/html"), entry["page_url"]
        assert b"<html" in body[:200].lower()


def test_promised_image_records_are_there_and_missing_ones_are_not(crawl):
    records = crawl[2]
    for entry in EXPECTED:
        for url in entry["image_urls"]:
            if entry["outcome"] == "not_in_crawl":
                assert url not in records
            else:
                ctype, body = records[url]
                assert ctype.startswith("image/"), url
                Image.open(io.BytesIO(body)).verify()
    missing = sample_crawl.not_in_crawl_images()
    assert set(missing) == {e["image_url"] for e in EXPECTED if e["outcome"] == "not_in_crawl"}
    assert all(min(Image.open(io.BytesIO(data)).size) >= 320 for data in missing.values())


def test_expected_image_url_is_referenced_by_its_page(crawl):
    records = crawl[2]
    for entry in EXPECTED:
        if not entry["image_url"]:
            continue
        root = lxml.html.document_fromstring(records[entry["page_url"]][1])
        base = root.xpath("//base/@href")
        raw = records[entry["page_url"]][1].decode("utf-8", "replace")
        linked = {urljoin(base[0] if base else entry["page_url"], src)
                  for src in root.xpath("//img/@src|//img/@data-src|//source/@srcset|//meta/@content")}
        assert entry["image_url"] in linked or entry["image_url"] in raw, entry["case"]


def test_pages_carry_the_clutter(crawl):
    records = crawl[2]
    html = b"".join(body for ctype, body in records.values() if ctype.startswith("text/html"))
    for marker in (b'class="site-logo"', b'alt="Example News logo"', b"728x90", b"300x250", b'alt="Facebook"',
                   b'alt="Twitter"', b'width="1" height="1"', b'class="avatar"', b'class="related"', b"data-src=",
                   b"data-srcset=", b" srcset=", b"<picture>", b"<base href=", b"application/ld+json"):
        assert marker in html, marker
    icons = [url for url in records if url.endswith("-32.png")]
    assert icons and all(Image.open(io.BytesIO(records[u][1])).size == (32, 32) for u in icons)
    pixels = [url for url in records if "collect.gif" in url]
    assert len(pixels) >= 30 and Image.open(io.BytesIO(records[pixels[0]][1])).size == (1, 1)


def test_photos_have_the_sizes_stated(crawl):
    records = crawl[2]
    for key, photo in {**PHOTOS, **{k: p for k, (_, p) in COPIES.items()}}.items():
        image = photo.image()
        assert image.size == photo.dimensions, key
        if key in SMALL_PHOTOS or key.endswith("_240"):
            assert min(image.size) < 300, key
        else:
            assert min(image.size) >= 320, key
    for entry in EXPECTED:
        if entry["outcome"] in ("kept", "language", "shared_text") and entry["image_url"]:
            size = Image.open(io.BytesIO(records[entry["image_url"]][1])).size
            assert min(size) >= 320, entry["page_url"]


def decoded(photo) -> Image.Image:
    """The photo as the pipeline sees it: encoded (JPEG/PNG/WebP) and decoded again."""
    return Image.open(io.BytesIO(photo.render()))


def test_distinct_photos_are_far_apart_and_copies_are_near():
    hashes = {key: phash(decoded(photo)) for key, photo in PHOTOS.items()}
    distances = {(a, b): int((hashes[a] != hashes[b]).sum()) for a, b in itertools.combinations(hashes, 2)}
    close = {pair: d for pair, d in distances.items() if d <= 10}
    assert not close, close
    for key, (original, photo) in COPIES.items():
        assert int((phash(decoded(photo)) != hashes[original]).sum()) <= 4, key


def test_language_mix(crawl):
    from lait.filters.language import LanguageIdentifier

    records = crawl[2]
    lid = LanguageIdentifier()
    languages = Counter()
    for entry in EXPECTED:
        ctype, body = records[entry["page_url"]]
        language, confidence = lid.identify(page_text(body))
        assert (language, entry["language"]) == (entry["language"], language), entry["page_url"]
        assert confidence >= 0.5, (entry["page_url"], confidence)
        languages[language] += 1
        if entry["outcome"] == "kept":
            for text in entry["texts"]:
                assert lid.score(text, "en") >= 0.5, text
    assert {"de": 2, "fr": 2, "es": 2}.items() <= languages.items()
    assert languages["en"] == len(EXPECTED) - 6


def test_windows_1252_page_is_encoded_as_declared(crawl):
    records = crawl[2]
    entry = next(e for e in EXPECTED if e["case"] == "windows_1252_meta_charset")
    ctype, body = records[entry["page_url"]]
    assert "charset" not in ctype
    assert b'<meta charset="windows-1252">' in body
    assert b"pagoda\x92s" in body and b"caf\xe9" in body and b"\x97" in body
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    assert entry["text"] in body.decode("cp1252")
    assert sample_crawl.expected_text_matches(entry, entry["text"].replace("’", "'"))  # ftfy may uncurl quotes
    mojibake = entry["text"].encode("utf-8").decode("cp1252", "replace")
    assert not sample_crawl.expected_text_matches(entry, mojibake)


def test_expected_outcomes_are_consistent():
    outcomes = Counter(entry["outcome"] for entry in EXPECTED)
    assert set(outcomes) == set(OUTCOMES)
    assert outcomes["shared_text"] == 12 and outcomes["language"] == 6 and outcomes["kept"] >= 12
    shared = [e for e in EXPECTED if e["outcome"] == "shared_text"]
    assert len({e["image_url"] for e in shared}) == 12 and {e["text"] for e in shared} == {SHARED_CAPTION}
    kept = {e["page_url"]: e for e in EXPECTED if e["outcome"] == "kept"}
    assert len({e["image_url"] for e in kept.values()}) == len(kept)  # one pair per photo
    for entry in EXPECTED:
        assert (entry["image_url"] is None) == (entry["outcome"] == "no_image")
        assert (entry["duplicate_of"] in kept) == (entry["outcome"] == "duplicate")
        if entry["outcome"] != "no_image":
            assert entry["texts"] and sample_crawl.expected_text_matches(entry, entry["text"].upper() + ".")
    assert len({e["page_url"] for e in EXPECTED}) == len(EXPECTED)


def test_command_writes_the_file_and_reports_bad_paths(tmp_path, capsys):
    out = tmp_path / "new" / "folder" / "demo.warc.gz"
    assert lait_main(["sample-crawl", str(out)]) == 0
    assert out.stat().st_size > 0 and f"{len(EXPECTED)} pages" in capsys.readouterr().out
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert lait_main(["sample-crawl", str(blocker / "demo.warc.gz")]) == 2
    assert lait_main(["sample-crawl", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("lait sample-crawl: error:") == 2 and "Traceback" not in err


def test_aggregate_sees_the_same_groups_with_the_pipeline_phash():
    """Aggregate merges by lait.filters.image_hashes.phash within --phash_distance (4): copies merge, photos do not."""
    from lait.filters.image_hashes import hamming_distance
    from lait.filters.image_hashes import phash as pipeline_phash

    hashes = {key: pipeline_phash(decoded(photo)) for key, photo in PHOTOS.items()}
    assert min(hamming_distance(hashes[a], hashes[b]) for a, b in itertools.combinations(hashes, 2)) > 10
    for key, (original, photo) in COPIES.items():
        assert hamming_distance(pipeline_phash(decoded(photo)), hashes[original]) <= 4, key
