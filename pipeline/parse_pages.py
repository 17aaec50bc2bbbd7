"""ParsePages: decode and parse HTML pages, keep pages in the wanted languages.

First version: charset from the HTTP header then UnicodeDammit, lxml parsing, page title,
visible text, fastText language, and the image candidates a page names (`<img src>` and
`og:image`). The Dominant image issue deepens the parsing and the candidates.
"""

from __future__ import annotations

import re

import apache_beam as beam
import lxml.html
from bs4.dammit import UnicodeDammit

from filters.language import LanguageIdentifier
from filters.urls import normalize_url
from pipeline.funnel import Reject, StageDoFn, StageOutput, apply_stage

_CHARSET = re.compile(r"charset=([\w-]+)", re.I)


def _decode(content: bytes, content_type: str) -> str:
    declared = _CHARSET.search(content_type or "")
    known = [declared.group(1)] if declared else []
    return UnicodeDammit(content, known_definite_encodings=known, is_html=True).unicode_markup or ""


class ParsePagesFn(StageDoFn):
    stage = "ParsePages"

    def __init__(self, languages: list[str], min_language_score: float, max_page_bytes: int):
        super().__init__()
        self.languages = languages
        self.min_language_score = min_language_score
        self.max_page_bytes = max_page_bytes

    def setup(self) -> None:
        self.lid = LanguageIdentifier()

    def run(self, page: dict):
        if len(page["content"]) > self.max_page_bytes:
            yield Reject("page_too_large", page, f"{len(page['content'])} bytes")
            return
        try:
            html = _decode(page["content"], page.get("http_headers", {}).get("content-type", ""))
            root = lxml.html.fromstring(html, base_url=page["url"])
        except (ValueError, lxml.etree.ParserError) as error:
            yield Reject("parse_error", page, str(error))
            return
        for bad in root.xpath("//script|//style|//noscript"):
            bad.drop_tree()
        text = " ".join(root.text_content().split())
        language, confidence = self.lid.identify(text)
        if language not in self.languages or confidence < self.min_language_score:
            yield Reject("language", page, f"{language} {confidence:.2f}")
            return
        candidates = []
        for meta in root.xpath('//meta[@property="og:image" or @name="og:image"]'):
            url = normalize_url(meta.get("content") or meta.get("value") or "", page["url"])
            if url:
                candidates.append({"url": url, "source": "meta"})
        for img in root.iter("img"):
            url = normalize_url(img.get("src") or "", page["url"])
            if url:
                figure = next((a for a in img.iterancestors("figure")), None)
                caption = figure.find(".//figcaption") if figure is not None else None
                candidates.append({
                    "url": url, "source": "img", "alt": img.get("alt"), "title": img.get("title"),
                    "class": " ".join(filter(None, [img.get("class"), img.get("id")])),
                    "figcaption": " ".join(caption.text_content().split()) if caption is not None else None,
                })
        title = root.findtext(".//title")
        yield {
            "page_url": page["url"], "page_title": " ".join(title.split()) if title else None,
            "page_language": language, "page_language_score": confidence, "candidates": candidates,
            "warc_path": page["warc_path"], "warc_offset": page["warc_offset"], "fetch_time": page["fetch_time"],
        }


class ParsePages(beam.PTransform):
    """HTML page records -> parsed page records (language kept, candidates listed)."""

    def __init__(self, options):
        super().__init__()
        self.dofn = ParsePagesFn(
            languages=[code.strip() for code in options.languages.split(",") if code.strip()],
            min_language_score=options.min_language_score,
            max_page_bytes=options.max_page_bytes,
        )

    def expand(self, pages: beam.PCollection) -> StageOutput:
        return apply_stage(pages, "Parse", self.dofn)
