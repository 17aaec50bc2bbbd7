"""Reading one WARC/ARC file into page and image records (:func:`iter_crawl_records`): the two readers
(fastwarc, warcio), one record's classification, and going on after a break in the file."""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from fastwarc.warc import ArchiveIterator as FastArchiveIterator
from warcio.archiveiterator import ArchiveIterator as WarcioArchiveIterator

from lait.pipeline import reader_warnings
from lait.pipeline.crawl_decoding import (
    ARC_START,
    GENERIC_TYPES,
    GZIP_MAGIC,
    IMAGE,
    PAGE,
    SNIFF_BYTES,
    DecodedTooLarge,
    decode_body,
    kind_of,
)
from lait.pipeline.funnel import Reject

# The end of one record and the start of the next, inside a payload: its Content-Length lied.
_RECORD_SEAM = b"\r\n\r\nWARC/"


class _Payload:
    """A record's payload reader that notes where another record shows inside it (`seam`).

    A WARC Content-Length that overstates its record makes both readers take the records after
    it as its payload (fastwarc then looks for the next header and goes on, silently). Every
    byte of every payload passes through here, kept or drained, so the seam is seen wherever
    it falls; a payload that holds a record terminator followed by a WARC header (an archived
    WARC file, say) reads as a break too.
    """

    def __init__(self, read: Callable[..., bytes]):
        self._read = read
        self.position = 0
        self.seam: int | None = None  # payload offset where this record really ended
        self._tail = b""

    def read(self, size: int = -1) -> bytes:
        data = self._read(size) if size is not None and size >= 0 else self._read()
        if data and self.seam is None:
            window = self._tail + data
            found = window.find(_RECORD_SEAM)
            if found >= 0:
                self.seam = self.position - len(self._tail) + found
            self._tail = window[-(len(_RECORD_SEAM) - 1):]
        self.position += len(data)
        return data

    def drain(self) -> None:
        while self.read(2**16):
            pass


@dataclass
class _Record:
    """What ReadCrawl needs from a WARC/ARC record, from either reader."""

    rec_type: str                 # lower-case WARC-Type ("" when missing)
    url: str
    fetch_time: str | None
    offset: int
    warc_mime: str                # WARC Content-Type, lower case, no parameters
    is_http: bool
    status: int | None
    http_headers: dict[str, str]
    payload: _Payload             # the payload reader (after HTTP headers); read() = all
    missing: Callable[[], int]    # drains the record; how many bytes of it the file lacks
    body_bytes: int = 0           # payload bytes read by _classify, before decoding
    swallowed: int = 0            # bytes of the payload that are the file's next records (see _split_swallowed)

    def read(self, size: int = -1) -> bytes:
        return self.payload.read(size)


def _mime(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _clean_url(url: str | None) -> str:
    return (url or "").strip().strip("<>").strip()


def _iso_date(date: str | None) -> str | None:
    """WARC-Date as ISO 8601; ARC's 14-digit dates converted."""
    if date and re.fullmatch(r"\d{14}", date.strip()):
        d = date.strip()
        return f"{d[:4]}-{d[4:6]}-{d[6:8]}T{d[8:10]}:{d[10:12]}:{d[12:14]}Z"
    return date.strip() if date else None


def _header_dict(pairs) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


@dataclass(frozen=True)
class BodyLimits:
    """Caps on a kept record's body, stored and decoded: pages `--max_page_bytes`, images `--max_image_bytes`."""

    page: int = 5 * 2**20
    image: int = 20 * 2**20

    def of(self, kind: str | None) -> int:
        """The cap of a page or an image; of either (the larger) while the kind is not known."""
        return {PAGE: self.page, IMAGE: self.image}.get(kind, max(self.page, self.image))

    def stored(self, kind: str | None) -> int:
        """How much of a stored (maybe chunked or compressed) body is read before giving up on it."""
        cap = self.of(kind)
        return cap + cap // 16 + 2**16  # chunk lines, and compressed data that does not shrink


def _read_at_most(read: Callable[..., bytes], size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        part = read(min(size - got, 2**20))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


_NEXT_WARC_RECORD = re.compile(rb"[\r\n]*WARC/")


def _split_swallowed(body: bytes, headers: dict[str, str]) -> tuple[bytes, int]:
    """(body, 0), or the HTTP body and how many bytes after it are the file's next records.

    A WARC Content-Length that overstates its record makes the reader take the records after
    it as this one's payload; the HTTP Content-Length says where the body really ends, and a
    WARC header right after that end says the rest is not this record's.
    """
    declared = headers.get("content-length", "").strip()
    if not declared.isdigit() or "chunked" in headers.get("transfer-encoding", "").lower():
        return body, 0
    end = int(declared)
    if len(body) > end and _NEXT_WARC_RECORD.match(body, end, end + 64):
        return body[:end], len(body) - end
    return body, 0


def _classify(rec: _Record, warc_path: str, limits: BodyLimits = BodyLimits()) -> dict | Reject:
    """Keep the record as a page/image dict, or say why not; reads the body only when needed, and at most
    `limits` of it (stored and decoded)."""
    base = {"url": rec.url, "warc_path": warc_path, "warc_offset": rec.offset, "fetch_time": rec.fetch_time}
    if rec.rec_type == "revisit":
        return Reject("revisit", base)
    if rec.rec_type not in ("response", "resource"):
        return Reject("not_response", base, rec.rec_type or "no WARC-Type")
    if rec.is_http:
        headers = rec.http_headers
        mime = _mime(headers.get("content-type"))
        if rec.status is None or not 200 <= rec.status < 300:
            return Reject("http_status", base, f"{rec.status or 'no status line'} {mime}".strip())
    else:
        headers = {"content-type": rec.warc_mime} if rec.warc_mime else {}
        mime = rec.warc_mime
    encoded = bool(headers.get("content-encoding") or "chunked" in headers.get("transfer-encoding", "").lower())
    kind = kind_of(mime)
    if kind is None and mime not in GENERIC_TYPES:
        return Reject("not_html_or_image", base, mime)
    if kind is None and not encoded:  # sniff the first bytes before reading the rest
        body = rec.read(SNIFF_BYTES)
        kind = kind_of(mime, body)
        rec.body_bytes = len(body)
        if not body:
            return Reject("empty_body", base, mime or None)
        if kind is None:
            return Reject("not_html_or_image", base, mime or "no content type")
    else:
        body = b""
    stored_cap = limits.stored(kind)
    body += _read_at_most(rec.read, stored_cap + 1 - len(body))
    rec.body_bytes = len(body)
    body, rec.swallowed = _split_swallowed(body, headers) if rec.is_http else (body, 0)
    if not rec.swallowed and rec.payload.seam is not None and rec.payload.seam < len(body):
        body, rec.swallowed = body[:rec.payload.seam], len(body) - rec.payload.seam
    if not body:
        return Reject("empty_body", base, mime or None)
    if len(body) > stored_cap:
        return _too_large(kind, base, limits, f"stored body over {stored_cap} bytes (not read further)")
    try:
        body = decode_body(body, headers.get("transfer-encoding", ""), headers.get("content-encoding", ""),
                           max_bytes=limits.of(kind))
    except DecodedTooLarge as error:
        return Reject("decoded_too_large", base, f"{kind or 'page or image'}: {error} ({_cap_option(kind)})")
    except ValueError as error:
        return Reject("bad_content_encoding", base, str(error))
    if not body:
        return Reject("empty_body", base, mime or None)
    if kind is None:
        kind = kind_of(mime, body[:SNIFF_BYTES])
        if kind is None:
            return Reject("not_html_or_image", base, mime or "no content type")
    if len(body) > limits.of(kind):
        return _too_large(kind, base, limits, f"{len(body)} bytes")
    return {"kind": kind, **base, "content": body, "http_headers": headers}


def _cap_option(kind: str | None) -> str:
    return {PAGE: "--max_page_bytes", IMAGE: "--max_image_bytes"}.get(kind, "--max_page_bytes/--max_image_bytes")


def _too_large(kind: str | None, base: dict, limits: BodyLimits, what: str) -> Reject:
    # The reasons that the two options name: ParsePages' page_too_large, AcquireImages' too_large.
    reason = "page_too_large" if kind == PAGE else "too_large"
    return Reject(reason, base, f"{kind or 'page or image'}: {what} > {_cap_option(kind)} {limits.of(kind)}")



def _fastwarc_missing(record, payload: _Payload) -> int:
    payload.drain()
    record.consume()
    if record.is_http_parsed and record.http_headers.status_code is None:
        return 0  # the HTTP parse failed and took the block with it: no measure (missing-status-text.warc)
    # After parse_http, content_length and tell() both count the payload only.
    return max(record.content_length - record.reader.tell(), 0)


def _fastwarc_records(stream: BinaryIO) -> Iterator[_Record]:
    # HTTP headers are parsed only for the records that can be kept, in quirks mode: strict
    # fastwarc swallows a whole page as headers when they end in bare LFs (ClueWeb09 and others).
    for record in FastArchiveIterator(stream, parse_http=False):
        headers = record.headers
        rec_type = (headers.get("WARC-Type") or "").strip().lower()
        http = None
        if record.is_http and rec_type in ("response", "resource"):
            record.parse_http(quirks_mode=True)
            http = record.http_headers
        yield _Record(
            rec_type=rec_type,
            url=_clean_url(headers.get("WARC-Target-URI")),
            fetch_time=_iso_date(headers.get("WARC-Date")),
            offset=record.stream_pos,
            warc_mime=_mime(headers.get("Content-Type")),
            is_http=record.is_http,
            status=http.status_code if http is not None else None,
            http_headers=_header_dict(http.items()) if http is not None else {},
            payload=(payload := _Payload(record.reader.read)),
            missing=lambda record=record, payload=payload: _fastwarc_missing(record, payload),
        )


def _drain(stream, payload: _Payload) -> int:
    payload.drain()
    return stream.limit  # warcio's LimitReader: bytes still owed by a record cut short


def _warcio_records(stream: BinaryIO) -> Iterator[_Record]:
    archive = WarcioArchiveIterator(stream, arc2warc=True)
    for record in archive:
        headers = record.rec_headers
        http = record.http_headers
        is_http = http is not None and bool(http.protocol or http.statusline)
        status = None
        if is_http:
            try:
                status = int(http.get_statuscode())
            except (TypeError, ValueError):
                status = None
        yield _Record(
            rec_type=(record.rec_type or "").strip().lower(),
            url=_clean_url(headers.get_header("WARC-Target-URI")),
            fetch_time=_iso_date(headers.get_header("WARC-Date")),
            offset=archive.offset,  # get_record_offset() would read the body away
            warc_mime=_mime(headers.get_header("Content-Type")),
            is_http=is_http,
            status=status,
            http_headers=_header_dict(http.headers) if is_http else {},
            payload=(payload := _Payload(record.raw_stream.read)),
            missing=lambda stream=record.raw_stream, payload=payload: _drain(stream, payload),
        )


def _open(path: str) -> BinaryIO:
    # Raw bytes: the readers handle gzip themselves and offsets must be those of the file.
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _is_arc(head: bytes) -> bool:
    if head.startswith(GZIP_MAGIC):
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, len(ARC_START))
        except zlib.error:
            return False
    return head.startswith(ARC_START)


def _read_error(path: str, offset: int | None, error: BaseException | str, note: str = "") -> Reject:
    record = {"warc_path": path, "warc_offset": offset}
    what = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return Reject("read_error", record, f"{path}: {what}{note}")


class RecordBreak(Exception):
    """A record does not end where its header says: the file ends inside it, or the next records start in it.

    `result` is what the record gave where its HTTP body is whole anyway, else None.
    """

    def __init__(self, message: str, result: dict | Reject | None = None):
        super().__init__(message)
        self.result = result


def _classify_whole(rec: _Record, path: str, limits: BodyLimits) -> dict | Reject:
    """`_classify`, then raise RecordBreak when the record does not end where its WARC/ARC header says."""
    result = _classify(rec, path, limits)
    missing = rec.missing()
    if rec.swallowed or rec.payload.seam is not None:
        at = rec.body_bytes - rec.swallowed if rec.swallowed else rec.payload.seam
        raise RecordBreak(f"the Content-Length of the record at offset {rec.offset} overstates it: another record "
                          f"starts {at} bytes into its payload", result)
    if missing:
        declared = result.get("http_headers", {}).get("content-length", "") if isinstance(result, dict) else ""
        whole = declared.isdigit() and rec.body_bytes >= int(declared)  # only the WARC/ARC length was overstated
        raise RecordBreak(f"the file ends {missing} bytes before the end of the record at offset {rec.offset}"
                          + (" (its HTTP body is whole: kept)" if whole else ""), result if whole else None)
    return result


# Record starts looked for after a break: a "WARC/1.0" line, or a gzip member that inflates to one.
_WARC_HEAD = re.compile(rb"WARC/\d+\.\d+\r?\n")
RESYNC_BLOCK = 2**20
RESYNC_PROBE = 4096  # bytes of a candidate that must be at hand to test it
MAX_RESTARTS = 100  # per file; each restart begins after the one before


def _record_starts_at(data: bytes, gz: bool) -> bool:
    if gz:
        try:
            data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, 16)
        except zlib.error:
            return False
    return bool(_WARC_HEAD.match(data))


def _next_record_start(path: str, opener: Callable[[str], BinaryIO], after: int, gz: bool) -> int | None:
    """Offset of the first WARC record that starts at or after `after` (streamed, not loaded), or None."""
    marker, skip = (GZIP_MAGIC + b"\x08", 0) if gz else (b"\nWARC/", 1)  # a text record starts after the newline
    base = max(after - skip, 0)
    try:
        with opener(path) as stream:
            stream.seek(base)
            buffer, eof = b"", False
            while not eof:
                block = stream.read(RESYNC_BLOCK)
                eof = not block
                buffer += block
                usable = len(buffer) if eof else max(len(buffer) - RESYNC_PROBE, 0)
                found = buffer.find(marker, 0, usable + len(marker) - 1)
                while found >= 0:
                    if base + found + skip >= after and _record_starts_at(
                            buffer[found + skip:found + skip + RESYNC_PROBE], gz):
                        return base + found + skip
                    found = buffer.find(marker, found + 1, usable + len(marker) - 1)
                buffer, base = buffer[usable:], base + usable
    except Exception:  # noqa: BLE001 - no place to read on from is an answer, not a crash
        return None
    return None


def _seek(stream: BinaryIO, offset: int) -> None:
    if offset:
        stream.seek(offset)


def iter_crawl_records(path: str, opener: Callable[[str], BinaryIO] = _open,
                       limits: BodyLimits = BodyLimits()) -> Iterator[dict | Reject]:
    """Stream one WARC/WARC.gz/ARC/ARC.gz file: per record a page/image dict or a `Reject`.

    Parameters
    ----------
    path : str
        The file, local or on any Beam filesystem (gs://, s3://...). Kept records carry it
        as `warc_path`.
    opener : callable, default Beam's `FileSystems.open` without decompression
        Opens `path` as a binary file of raw bytes (seekable); called again for a file fastwarc
        cannot read to the end, and after a break.
    limits : BodyLimits, default 5 MiB pages, 20 MiB images
        At most this much of a kept record's body is read, and decoded: past it the record is
        dropped (`page_too_large` / `too_large` when stored so, `decoded_too_large` when its
        content-encoding inflates past it), so memory stays bounded whatever the file holds.

    Yields
    ------
    dict or Reject
        `{"kind": "page" | "image", "url", "content", "http_headers", "warc_path",
        "warc_offset", "fetch_time"}` for HTML and image responses (and image/HTML resource
        records), a `Reject` for every other record, and one `read_error` Reject where the
        file is broken; never raises for a bad file. A break (a record that the file ends
        inside, or whose Content-Length overstates it and so takes in the records after it,
        or records neither reader can parse) does not end the read of a WARC file: reading goes
        on from the next record start found after it, and the file's one `read_error`, last,
        says where it broke and where reading went on. `content` is the decoded body;
        `http_headers` are as recorded (lower-case names; a resource record, which has no
        HTTP headers, gets its WARC Content-Type as "content-type"). `warc_offset` is where
        the record (its gzip member, in a .gz file) starts. A reader's warnings come as
        `reader_warning` Rejects (not on stderr), before the record read after them.
    """
    with reader_warnings.collect() as warnings:
        for item in _read_file(path, opener, limits):
            yield from _warning_rejects(path, warnings)
            yield item
        yield from _warning_rejects(path, warnings)


def _warning_rejects(path: str, warnings: list[str]) -> Iterator[Reject]:
    while warnings:
        yield Reject("reader_warning", {"warc_path": path}, f"{path}: {warnings.pop(0)}")


def _read_file(path: str, opener: Callable[[str], BinaryIO], limits: BodyLimits) -> Iterator[dict | Reject]:
    try:
        with opener(path) as stream:
            head = stream.read(512)
        arc = _is_arc(head)
    except Exception as error:  # noqa: BLE001 - a file we cannot open is a counted error, not a crash
        yield _read_error(path, None, error)
        return
    if not head.strip() and len(head) < 512:  # nothing, or only blank lines: no record to read
        yield Reject("empty_file", {"warc_path": path, "warc_offset": None}, f"{path}: {len(head)} bytes, no record")
        return
    breaks: list[tuple[int | None, str]] = []  # (offset, what broke)
    restarts: list[int] = []
    start = 0
    for _ in range(MAX_RESTARTS):
        broke_after = yield from _read_from(path, opener, arc, start, limits, breaks)
        if broke_after is None or arc:  # read to the end; ARC records have no start to look for
            break
        start = _next_record_start(path, opener, broke_after + 1, head.startswith(GZIP_MAGIC))
        if start is None:
            break
        restarts.append(start)
    if breaks:
        offset, what = breaks[0]
        if restarts:
            what += f"; read on from offset {', '.join(map(str, restarts[:5]))}{'...' if len(restarts) > 5 else ''}"
        if len(breaks) > 1:
            what += f"; {len(breaks) - 1} more break(s), the last: {breaks[-1][1]}"
        yield _read_error(path, offset, what)


def _read_from(path: str, opener: Callable[[str], BinaryIO], arc: bool, start: int, limits: BodyLimits,
               breaks: list) -> Generator[dict | Reject, None, int | None]:
    """Read the file from the record at offset `start` to its end or a break.

    fastwarc reads first; warcio takes over from the first record fastwarc did not give.
    Returns None at the end of the file, else (having added the break to `breaks`) the
    offset after which the next record is to be looked for.
    """
    last_offset, fast_error = start - 1, None
    if not arc:
        try:
            with opener(path) as stream:
                _seek(stream, start)
                for rec in _fastwarc_records(stream):
                    result = _classify_whole(rec, path, limits)
                    yield result
                    last_offset = rec.offset
            return None
        except RecordBreak as error:  # warcio would stop at the same byte
            if error.result is not None:
                yield error.result
            breaks.append((rec.offset, str(error)))
            return rec.offset
        except Exception as error:  # noqa: BLE001 - any reader failure falls back to warcio
            fast_error = error
    # warcio: ARC files, and WARC files from the first record fastwarc did not give.
    read_further = False
    offset = last_offset if last_offset >= start else None
    try:
        with opener(path) as stream:
            _seek(stream, start)
            for rec in _warcio_records(stream):
                if rec.offset <= last_offset or (fast_error is not None and not rec.rec_type):
                    continue  # already given by fastwarc, or warcio's typeless pseudo-record of garbage
                offset = rec.offset
                result = _classify_whole(rec, path, limits)
                yield result
                read_further = True
    except RecordBreak as error:
        if error.result is not None:
            yield error.result
        breaks.append((rec.offset, str(error)))
        return rec.offset
    except Exception as error:  # noqa: BLE001 - a broken file is a counted error, not a crash
        note = f" (fastwarc: {type(fast_error).__name__}: {fast_error})" if fast_error else ""
        breaks.append((offset, f"{type(error).__name__}: {error}{note}"))
        return start if offset is None else offset
    if fast_error is not None and not read_further:
        breaks.append((offset, f"{type(fast_error).__name__}: {fast_error} (warcio read no further)"))
        return start if offset is None else offset
    return None
