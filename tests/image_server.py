"""A real HTTP server on 127.0.0.1 that misbehaves on purpose, for the fetcher's tests.

`ImageServer` runs `http.server.ThreadingHTTPServer` in a thread and records every
request. Its routes cover what the web does to an image fetcher: stalls, 429 with
Retry-After, 5xx, redirect loops and chains, redirects to private addresses, robots.txt,
`X-Robots-Tag: noai`, oversized bodies with and without Content-Length, decompression bombs
(gzip, deflate, br), headers or bodies dripped a byte at a time, wrong content types and 404s.
"""

from __future__ import annotations

import functools
import gzip
import io
import ssl
import sys
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import brotli
from PIL import Image

ROBOTS_TXT = """\
User-agent: otherbot
Disallow: /

User-agent: *
Disallow: /private/
"""
HTML = b"<!doctype html><html><head><title>not an image</title></head><body>hello</body></html>"


def make_jpeg(size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def make_png(size: tuple[int, int] = (32, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", size, (10, 200, 30, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


JPEG = make_jpeg()
PNG = make_png()
# 20 MB of zeros after a JPEG header, gzip-compressed to about 20 KB: a decompression bomb.
GZIP_BOMB = gzip.compress(JPEG[:20] + bytes(20 * 2**20), compresslevel=9)
BOMB_BYTES = 64 * 2**20


@functools.cache
def bomb(coding: str) -> bytes:
    """64 MB of zeros after a JPEG header, compressed with `coding` (gzip, deflate, br) to 12-300 KB."""
    data = JPEG[:20] + bytes(BOMB_BYTES)
    if coding == "br":
        return brotli.compress(data, quality=1)
    packer = zlib.compressobj(1, zlib.DEFLATED, (16 if coding == "gzip" else 0) + zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


# A response head dripped one byte per DRIP_SECONDS (about 25 s in all): no single read waits long.
DRIP_SECONDS = 0.05
SLOW_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nX-Padding: " + b"a" * 450
             + b"\r\nContent-Length: %d\r\n\r\n" % len(JPEG))


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):  # a client that left on purpose
            super().handle_error(request, client_address)


class ImageServer:
    """Serves the test routes on 127.0.0.1 (`base` is its URL); `stop()` ends every stall."""

    def __init__(self, robots_txt: str = ROBOTS_TXT, robots_status: int = 200, slow_seconds: float = 0.2,
                 tls: tuple[str, str] | None = None):
        self.robots_txt = robots_txt
        self.robots_status = robots_status
        self.slow_seconds = slow_seconds
        self.hits: Counter = Counter()  # path (without query) -> requests
        self.log: list[tuple[float, str, dict]] = []  # (time, path, headers)
        self.in_flight = 0
        self.max_in_flight = 0
        self.released = threading.Event()  # set at stop(): stalled handlers return
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                path = urlsplit(self.path).path
                with server._lock:
                    server.hits[path] += 1
                    server.log.append((time.monotonic(), path, dict(self.headers)))
                try:
                    server.route(self, path)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on purpose (too_large, noai...)

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        if tls:  # (certificate file, key file): serve HTTPS
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.base = f"https://localhost:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> ImageServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str) -> str:
        return self.base + path

    # ------------------------------------------------------------ responses

    @staticmethod
    def send(handler, status: int, body: bytes = b"", content_type: str | None = "image/jpeg",
             headers: dict | None = None) -> None:
        handler.send_response(status)
        if content_type:
            handler.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            for v in value if isinstance(value, list) else [value]:
                handler.send_header(name, v)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def redirect(self, handler, location: str, status: int = 302) -> None:
        self.send(handler, status, b"", None, {"Location": location})

    def route(self, h, path: str) -> None:  # noqa: C901 - one branch per route reads best here
        query = parse_qs(urlsplit(h.path).query)
        hits = self.hits[path]
        if path == "/robots.txt":
            self.send(h, self.robots_status, self.robots_txt.encode(), "text/plain")
        elif path.startswith(("/img/", "/private/")):
            self.send(h, 200, JPEG, "image/jpeg")
        elif path == "/png":
            self.send(h, 200, PNG, "image/png; charset=binary")
        elif path == "/octet":
            self.send(h, 200, JPEG, "application/octet-stream")
        elif path == "/svg":
            self.send(h, 200, b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml")
        elif path.startswith("/slow/"):
            with self._lock:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            time.sleep(self.slow_seconds)
            with self._lock:
                self.in_flight -= 1
            self.send(h, 200, JPEG)
        elif path == "/stall":
            self.released.wait(10)
        elif path == "/drip":  # headers at once, then one byte per 0.1 s: no single read times out
            h.send_response(200)
            h.send_header("Content-Type", "image/jpeg")
            h.send_header("Content-Length", str(len(JPEG)))
            h.end_headers()
            for byte in JPEG:
                if self.released.wait(0.1):
                    return
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
        elif path.startswith("/flaky429/"):
            if hits == 1:
                self.send(h, 429, b"slow down", "text/plain", {"Retry-After": query.get("after", ["1"])[0]})
            else:
                self.send(h, 200, JPEG)
        elif path.startswith("/flaky503/"):
            if hits <= 2:
                self.send(h, 503, b"busy", "text/plain")
            else:
                self.send(h, 200, JPEG)
        elif path == "/always503":
            self.send(h, 503, b"busy", "text/plain")
        elif path == "/loop/a":
            self.redirect(h, "/loop/b")
        elif path == "/loop/b":
            self.redirect(h, self.url("/loop/a#again"), 301)
        elif path.startswith("/chain/"):
            self.redirect(h, f"/chain/{int(path.rsplit('/', 1)[1]) + 1}")
        elif path == "/redirect":
            self.redirect(h, query["to"][0], int(query.get("status", ["302"])[0]))
        elif path == "/no-location":
            self.send(h, 302, b"", None)
        elif path in ("/noai", "/noimageai-for-us", "/noai-for-other"):
            tag = {"/noai": ["noai"], "/noimageai-for-us": ["otherbot: noindex", "lait: noimageai"],
                   "/noai-for-other": ["otherbot: noai, noimageai", "noindex"]}[path]
            self.send_then_stall(h, JPEG, {"X-Robots-Tag": tag}, stall=path != "/noai-for-other")
        elif path == "/big-declared":  # declares 1 GB, sends a little, then stalls
            h.send_response(200)
            h.send_header("Content-Type", "image/jpeg")
            h.send_header("Content-Length", str(10**9))
            h.end_headers()
            h.wfile.write(JPEG)
            h.wfile.flush()
            self.released.wait(10)
        elif path == "/big-undeclared":  # no Content-Length: the body ends when the connection closes
            h.send_response(200)
            h.send_header("Content-Type", "image/jpeg")
            h.send_header("Connection", "close")
            h.end_headers()
            h.close_connection = True
            h.wfile.write(JPEG)
            for _ in range(200):  # up to 12.8 MB, unless the client leaves first
                if self.released.is_set():
                    return
                h.wfile.write(b"\0" * 65536)
        elif path == "/gzip-bomb":
            self.send(h, 200, GZIP_BOMB, "image/jpeg", {"Content-Encoding": "gzip"})
        elif path.startswith("/bomb/"):
            coding = path.rsplit("/", 1)[1]
            self.send(h, 200, bomb(coding), "image/jpeg", {"Content-Encoding": coding})
        elif path == "/header-drip":  # the status line and headers one byte at a time: no single read times out
            h.close_connection = True
            for byte in SLOW_HEAD:
                if self.released.wait(DRIP_SECONDS):
                    return
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
            h.wfile.write(JPEG)
        elif path == "/html-as-jpeg":
            self.send(h, 200, HTML, "image/jpeg")
        elif path == "/jpeg-as-html":
            self.send(h, 200, JPEG, "text/html; charset=utf-8")
        else:
            self.send(h, 404, b"not found", "text/plain")

    def send_then_stall(self, h, body: bytes, headers: dict, stall: bool) -> None:
        """Headers now; the body only after a long pause when `stall` (a client reading it would time out)."""
        h.send_response(200)
        h.send_header("Content-Type", "image/jpeg")
        h.send_header("Content-Length", str(len(body)))
        for name, values in headers.items():
            for value in values:
                h.send_header(name, value)
        h.end_headers()
        h.wfile.flush()
        if stall and self.released.wait(10):
            return
        h.wfile.write(body)
