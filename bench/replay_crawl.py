"""Replay a crawl the way Common Crawl users meet it: HTML-only WARCs, every image fetched over HTTP.

    # 1. What Common Crawl gives: per input WARC, one with its warcinfo and page records only.
    python bench/replay_crawl.py split ../shared/data/webcrawl/*.warc.gz --output /tmp/html-only
    # 2. The images of the full WARCs at their original URLs, behind an HTTP forward proxy
    #    (prints one JSON line: {"proxy": "http://127.0.0.1:PORT", "ca_cert": PATH, ...}).
    python bench/replay_crawl.py serve ../shared/data/webcrawl/*.warc.gz --port 8899 --ca_cert /tmp/replay-ca.pem
    # 3. The pipeline, fetching every image through it; the rows equal those of
    #    `lait run --no-fetch` over the full WARCs (bench/bench_replay.py checks it).
    lait run --input '/tmp/html-only/*.warc.gz' --output /tmp/corpus \\
        --proxy http://127.0.0.1:8899 --fetch_ca_bundle /tmp/replay-ca.pem

`split` copies the kept records byte for byte (a .warc.gz keeps one gzip member per record):
the `warcinfo` records and the responses that `ReadCrawl` reads as pages. Everything else
(images, robots.txt, requests, metadata, other responses) is left out.

`serve` runs a `ThreadingHTTPServer` that answers as an HTTP forward proxy:

- absolute-URI requests (`GET http://host/a.jpg HTTP/1.1`) for http URLs;
- `CONNECT host:443` for https URLs, as `requests` sends them through an http proxy: the
  tunnel's TLS is terminated here with a certificate for that host, made on the fly and
  signed by a CA that `serve` creates and writes to `--ca_cert` (what TLS-intercepting
  proxies do). The fetcher trusts it with `--fetch_ca_bundle`; it verifies host names as
  it would on the web;
- origin-form requests too (`GET /a.jpg` with a Host header), as an http origin server.

Each image is the record `ReadCrawl` reads (body de-chunked and decoded), keyed by
`lait.filters.urls.normalize_url`; of several captures of one URL the newest is served, as
`AcquireImages` prefers it. The record's HTTP headers are sent (Content-Type, X-Robots-Tag...)
except the framing ones (Content-Length is the decoded body's). `/robots.txt` of a host is
its record when the crawl has one, else a permissive default. Every other URL is a 404.
Rate limits are the fetcher's own (robots.txt `Crawl-delay`, `--per_host_delay`); this
server answers as fast as it can.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import signal
import ssl
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from lait.filters.urls import normalize_url  # noqa: E402
from lait.pipeline.read_crawl import IMAGE, PAGE, iter_crawl_records  # noqa: E402

# RFC 9309: an empty Disallow allows everything.
DEFAULT_ROBOTS = b"User-agent: *\nDisallow:\n"
# Not passed on from a record: framing that no longer holds for the decoded body, and hop-by-hop headers.
DROPPED_HEADERS = {"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive",
                   "proxy-connection", "proxy-authenticate", "te", "trailer", "upgrade", "date", "server"}


# ---------------------------------------------------------------- split

def split_warc(path: str, output_dir: str) -> dict:
    """Write `output_dir/<name of path>`: the warcinfo and page records of `path`, byte for byte.

    Returns counts and `offsets`, the new offset of each kept record by its old one (rows of
    the two files' runs name the same page by these).
    """
    pages = {item["warc_offset"] for item in iter_crawl_records(path)
             if isinstance(item, dict) and item["kind"] == PAGE}
    spans = []  # (offset, length, WARC-Type) of every record
    with open(path, "rb") as stream:
        records = ArchiveIterator(stream)
        for record in records:
            records.read_to_end(record)
            spans.append((records.get_record_offset(), records.get_record_length(), record.rec_type))
    out_path = os.path.join(output_dir, os.path.basename(path))
    if os.path.abspath(out_path) == os.path.abspath(path):
        raise ValueError(f"{out_path} is the input: give another --output folder")
    os.makedirs(output_dir, exist_ok=True)
    offsets, types = {}, Counter()
    with open(path, "rb") as src, open(out_path, "wb") as out:
        for offset, length, rec_type in spans:
            if rec_type == "warcinfo" or offset in pages:
                src.seek(offset)
                offsets[offset] = out.tell()
                out.write(src.read(length))
                types["warcinfo" if rec_type == "warcinfo" else "page"] += 1
    return {"input": path, "output": out_path, "records_in": len(spans), "pages": types["page"],
            "warcinfo": types["warcinfo"], "bytes_in": os.path.getsize(path), "bytes_out": os.path.getsize(out_path),
            "offsets": offsets}


# ---------------------------------------------------------------- the archive

@dataclass
class Archive:
    """What `serve` answers from: image records and robots.txt bodies, by normalised URL."""

    images: dict[str, tuple[tuple, dict, bytes]] = field(default_factory=dict)  # key -> (sort key, headers, body)
    robots: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # key -> (WARC-Date, body)

    @classmethod
    def load(cls, paths: Iterable[str]) -> Archive:
        archive = cls()
        for path in paths:
            for item in iter_crawl_records(path):
                if isinstance(item, dict) and item["kind"] == IMAGE:
                    archive._add_image(item)
            archive._add_robots(path)
        return archive

    def _add_image(self, record: dict) -> None:
        key = normalize_url(record["url"])
        if key is None:
            return
        # The newest capture, as AcquireImages picks it (same sort key).
        rank = (record.get("fetch_time") or "", record.get("warc_path") or "", record.get("warc_offset") or 0)
        if key not in self.images or rank > self.images[key][0]:
            self.images[key] = (rank, record["http_headers"], record["content"])

    def _add_robots(self, path: str) -> None:
        with open(path, "rb") as stream:
            for record in ArchiveIterator(stream):
                url = (record.rec_headers.get_header("WARC-Target-URI") or "").strip("<> ")
                if record.rec_type != "response" or urlsplit(url).path != "/robots.txt" or not record.http_headers:
                    continue
                if record.http_headers.get_statuscode() != "200":
                    continue  # a 4xx robots.txt allows all: the default says the same
                date = record.rec_headers.get_header("WARC-Date") or ""
                body = record.content_stream().read()  # de-chunked and decoded by warcio
                key = normalize_url(url)
                if key and (key not in self.robots or date > self.robots[key][0]):
                    self.robots[key] = (date, body)

    def answer(self, url: str) -> tuple[int, dict, bytes]:
        """(status, headers, body) for a GET of `url`."""
        key = normalize_url(url) or ""
        if key in self.images:
            _, headers, body = self.images[key]
            return 200, {k: v for k, v in headers.items() if k not in DROPPED_HEADERS}, body
        if urlsplit(key).path == "/robots.txt":
            body = self.robots[key][1] if key in self.robots else DEFAULT_ROBOTS
            return 200, {"content-type": "text/plain; charset=utf-8"}, body
        return 404, {"content-type": "text/plain"}, b"not in the replayed crawl\n"


# ---------------------------------------------------------------- TLS: a CA and a certificate per host

class Certificates:
    """A throw-away CA (`ca_cert`, PEM) and, per host name, a server SSLContext whose certificate it signs."""

    def __init__(self, ca_cert: str, folder: str):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        self._x509, self._hashes, self._serialization, self._eku = x509, hashes, serialization, ExtendedKeyUsageOID
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())  # one key for the CA and every host: replay only
        self.now = datetime.datetime.now(datetime.UTC)
        self.ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lait replay proxy CA")])
        ski = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())
        self.ca = (x509.CertificateBuilder().subject_name(self.ca_name).issuer_name(self.ca_name)
                   .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(self.now - datetime.timedelta(days=1))
                   .not_valid_after(self.now + datetime.timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
                   .add_extension(ski, critical=False)
                   .sign(self.key, hashes.SHA256()))
        self.ca_cert = ca_cert
        with open(ca_cert, "wb") as f:
            f.write(self.ca.public_bytes(serialization.Encoding.PEM))
        self._key_pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption())
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def context(self, host: str) -> ssl.SSLContext:
        host = host.lower()
        with self._lock:
            if host not in self._contexts:
                self._contexts[host] = self._make(host, len(self._contexts))
            return self._contexts[host]

    def _make(self, host: str, number: int) -> ssl.SSLContext:
        x509 = self._x509
        try:
            san = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            san = x509.DNSName(host)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, host[:64])]))
                .issuer_name(self.ca_name).public_key(self.key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(self.now - datetime.timedelta(days=1))
                .not_valid_after(self.now + datetime.timedelta(days=30))
                .add_extension(x509.SubjectAlternativeName([san]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([self._eku.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                               critical=False)
                .sign(self.key, self._hashes.SHA256()))
        pem = os.path.join(self.folder, f"host-{number}.pem")
        with open(pem, "wb") as f:
            f.write(cert.public_bytes(self._serialization.Encoding.PEM) + self._key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pem)
        return context


# ---------------------------------------------------------------- the proxy server

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lait-replay/1"
    timeout = 60  # seconds a connection may sit idle
    tunnel: tuple[str, int] | None = None  # (host, port) once a CONNECT tunnel carries TLS
    server: ReplayServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        if self.server.verbose:
            super().log_message(format, *args)

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit():
            self.send_error(400, "CONNECT needs host:port")
            return
        context = self.server.certificates.context(host)
        self.send_response(200, "Connection established")
        self.end_headers()
        try:
            tls = context.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError):  # the client did not trust us, or left
            self.server.count("tls_refused")
            self.close_connection = True
            return
        self.connection, self.tunnel = tls, (host.lower(), int(port))
        self.rfile, self.wfile = tls.makefile("rb"), tls.makefile("wb")
        self.close_connection = False  # http.client sends CONNECT as HTTP/1.0: the tunnel still stays open
        self.server.count("tunnels")

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _target(self) -> str:
        if self.tunnel:
            host, port = self.tunnel
            return f"https://{host}{'' if port == 443 else f':{port}'}{self.path}"
        if self.path.lower().startswith(("http://", "https://")):
            return self.path  # absolute-URI: a proxy request
        return f"http://{self.headers.get('Host', '')}{self.path}"  # origin-form: as the origin server

    def _answer(self, send_body: bool) -> None:
        target = self._target()
        status, headers, body = self.server.archive.answer(target)
        self.server.count(f"http_{status}" if status != 200 else "robots" if self.path.endswith("/robots.txt")
                          else "images", target)
        self.send_response(status)
        for name, value in headers.items():  # the record's names are lower case: sent as usually written
            self.send_header("-".join(word.capitalize() for word in name.split("-")), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self.tunnel:
                self.connection.close()


class ReplayServer(ThreadingHTTPServer):
    """The replay proxy: `start()` serves in a thread, `serve_forever()` in this one; `url` is its address."""

    daemon_threads = True
    request_queue_size = 512  # many clients connect at once: do not refuse them

    def __init__(self, archive: Archive, host: str = "127.0.0.1", port: int = 0, ca_cert: str | None = None,
                 verbose: bool = False):
        super().__init__((host, port), _Handler)
        self.archive = archive
        self.verbose = verbose
        self._tmp = tempfile.TemporaryDirectory(prefix="lait-replay-")
        self.certificates = Certificates(ca_cert or os.path.join(self._tmp.name, "ca.pem"), self._tmp.name)
        self.stats: Counter = Counter()
        self.asked: Counter = Counter()  # requests by URL
        self._lock = threading.Lock()
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.server_address[1]}"

    def count(self, what: str, url: str | None = None) -> None:
        with self._lock:
            self.stats[what] += 1
            if url:
                self.asked[url] += 1

    def start(self) -> ReplayServer:
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop a server that `start()` started."""
        self.shutdown()
        self.close()

    def close(self) -> None:
        self.server_close()
        self._tmp.cleanup()

    def describe(self) -> dict:
        return {"proxy": self.url, "ca_cert": self.certificates.ca_cert, "images": len(self.archive.images),
                "robots_records": len(self.archive.robots)}


# ---------------------------------------------------------------- command line

def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    split = commands.add_parser("split", help="write HTML-only copies of WARC files (warcinfo and page records)")
    split.add_argument("warcs", nargs="+")
    split.add_argument("--output", required=True, help="folder for the copies (same file names)")
    serve = commands.add_parser("serve", help="serve the image records of WARC files as an HTTP forward proxy")
    serve.add_argument("warcs", nargs="+")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    serve.add_argument("--ca_cert", default=None, help="where to write the CA certificate (default: a temporary file)")
    serve.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    if args.command == "split":
        for path in args.warcs:
            summary = split_warc(path, args.output)
            summary.pop("offsets")
            print(json.dumps(summary), flush=True)
        return 0

    server = ReplayServer(Archive.load(args.warcs), args.host, args.port, args.ca_cert, args.verbose)
    print(json.dumps(server.describe()), flush=True)  # the first line: how to reach it
    signal.signal(signal.SIGTERM, _interrupt)  # terminate() ends it as Ctrl-C does, with the summary
    try:
        server.serve_forever(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        print(json.dumps({"served": dict(server.stats)}), flush=True)  # the last line: what it answered
    return 0


if __name__ == "__main__":
    sys.exit(main())
