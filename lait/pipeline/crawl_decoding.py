"""What a crawl record's body is (page, image or neither, from its Content-Type and first bytes), and its
body de-chunked and content-decoded (gzip, deflate, br) under a size cap."""

from __future__ import annotations

import re
import zlib

import brotli

PAGE, IMAGE = "page", "image"
# Content types that say nothing about the body: sniff its first bytes instead.
GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream", "application/unknown",
                 "application/x-unknown", "unknown/unknown", "application/binary"}
SNIFF_BYTES = 64
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*",
               b"\x00\x00\x01\x00")
HTML_START = re.compile(rb"^\s*(<!doctype\s+html|<html|<head|<body)", re.I)
ARC_START = b"filedesc://"
GZIP_MAGIC = b"\x1f\x8b"



def is_image_bytes(head: bytes) -> bool:
    """True when `head` (a body's first bytes) starts like an image file (JPEG, PNG, GIF, WebP, AVIF...)."""
    if head.startswith(IMAGE_MAGIC):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis", b"heic", b"heix", b"mif1")


def kind_of(mime: str, head: bytes | None = None) -> str | None:
    """"page", "image" or None from a MIME type (lower case, no parameters) and maybe the body's start."""
    if "html" in mime:
        return PAGE
    if mime.startswith("image/"):
        return IMAGE
    if head is not None and mime in GENERIC_TYPES:
        if is_image_bytes(head):
            return IMAGE
        if HTML_START.match(head):
            return PAGE
    return None


def _dechunk(body: bytes) -> bytes:
    """HTTP chunked transfer decoding; raises ValueError when `body` is not validly chunked."""
    out, pos = [], 0
    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            raise ValueError("no chunk size line")
        size_text = body[pos:end].split(b";", 1)[0].strip()
        if not size_text or not re.fullmatch(rb"[0-9a-fA-F]+", size_text):
            raise ValueError(f"bad chunk size {size_text[:20]!r}")
        size = int(size_text, 16)
        if size == 0:
            return b"".join(out)
        start = end + 2
        if start + size > len(body):  # truncated last chunk: keep what is there
            out.append(body[start:])
            return b"".join(out)
        out.append(body[start:start + size])
        pos = start + size + 2


class DecodedTooLarge(ValueError):
    """Content-decoding a body passed the cap: decoding stopped there (a decompression bomb, often)."""


DECODE_STEP = 2**20  # output per call of a capped decompressor: the cap plus this is what it holds


def _inflate(inflater, body: bytes, coding: str, max_bytes: int | None) -> bytes:
    """zlib decompression, at most `max_bytes` of output (else DecodedTooLarge) whatever the ratio."""
    if max_bytes is None:
        return inflater.decompress(body) + inflater.flush()
    out = bytearray()
    while True:
        # max_length bounds what one call makes; the input it did not reach waits in unconsumed_tail.
        out += inflater.decompress(body, min(max_bytes + 1 - len(out), DECODE_STEP))
        if len(out) > max_bytes:
            raise DecodedTooLarge(f"{coding} body passes {max_bytes} bytes once decoded")
        body = inflater.unconsumed_tail
        if not body:
            break
    out += inflater.flush()
    if len(out) > max_bytes:
        raise DecodedTooLarge(f"{coding} body passes {max_bytes} bytes once decoded")
    return bytes(out)


def _unbrotli(body: bytes, max_bytes: int | None) -> bytes:
    if max_bytes is None:
        return brotli.decompress(body)
    decompressor = brotli.Decompressor()
    # The limit is where its output buffer stops growing: a call may give up to about twice it.
    out = bytearray(decompressor.process(body, output_buffer_limit=min(max_bytes + 1, DECODE_STEP)))
    while len(out) <= max_bytes and not decompressor.can_accept_more_data():  # output still pending
        out += decompressor.process(b"", output_buffer_limit=min(max_bytes + 1 - len(out), DECODE_STEP))
    if len(out) > max_bytes:
        raise DecodedTooLarge(f"br body passes {max_bytes} bytes once decoded")
    if not decompressor.is_finished():
        raise brotli.error("truncated brotli stream")
    return bytes(out)


def _decompress(body: bytes, coding: str, max_bytes: int | None = None) -> bytes:
    if coding in ("gzip", "x-gzip"):
        return _inflate(zlib.decompressobj(16 + zlib.MAX_WBITS), body, coding, max_bytes)
    if coding == "deflate":  # zlib-wrapped per the RFC, raw deflate in practice too
        inflater = zlib.decompressobj()
        try:
            out = _inflate(inflater, body, coding, max_bytes)
            if inflater.eof:
                return out
        except zlib.error:
            pass
        return _inflate(zlib.decompressobj(-zlib.MAX_WBITS), body, coding, max_bytes)
    if coding == "br":
        return _unbrotli(body, max_bytes)
    raise ValueError(f"unsupported content-encoding {coding!r}")


def decode_body(body: bytes, transfer_encoding: str = "", content_encoding: str = "",
                max_bytes: int | None = None) -> bytes:
    """An HTTP body as the server meant it: de-chunked, then content-decoded.

    Lenient where crawlers are inconsistent: a body that is not validly chunked is taken
    as already de-chunked, and a body that does not decompress but already looks like HTML
    or an image is taken as already decoded. Raises ValueError for any other undecodable body,
    and its subclass DecodedTooLarge as soon as a decoding passes `max_bytes` (None: no cap):
    memory stays within the cap whatever the compression ratio (a 5 KB gzip body can inflate
    to gigabytes).
    """
    if "chunked" in transfer_encoding.lower():
        try:
            body = _dechunk(body)
        except ValueError:
            pass
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        try:
            body = _decompress(body, coding, max_bytes)
        except DecodedTooLarge:
            raise
        except (zlib.error, brotli.error, ValueError) as error:
            head = body[:SNIFF_BYTES]
            if not head.startswith(GZIP_MAGIC) and (head.lstrip().startswith(b"<") or is_image_bytes(head)):
                return body
            raise ValueError(f"content-encoding {coding}: {error}") from error
    return body
