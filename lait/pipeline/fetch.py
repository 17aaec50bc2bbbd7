"""Polite and safe HTTP fetching of images: :class:`ImageFetcher`.

    >>> fetcher = ImageFetcher(user_agent="lait/0.1 (+https://github.com/lait-project/lait)")
    >>> result = fetcher.fetch("https://example.com/cat.jpg")
    >>> result.ok, result.reason, len(result.content or b"")

`fetch` never raises: it returns a :class:`FetchResult` holding either the bytes, the
final URL and the response headers, or a short reason code (`timeout`, `http_404`,
`robots`, `noai`, `too_large`, `not_image`, `private_address`, ...) that the
`AcquireImages` stage counts as a drop.

What one fetch does, in order, for every hop (redirects are followed here, not by
`requests`, so that each hop passes the same checks):

1. only `http` and `https` (`bad_scheme`);
2. the host is resolved and refused when any of its addresses is loopback, private,
   link-local, multicast, reserved or otherwise not global (`private_address`), unless
   `allow_private_networks`. The check is made before any connection, and again inside
   the connection itself (the socket connects only to the addresses that were checked),
   so a DNS answer that changes between the two (DNS rebinding) cannot slip through.
   Through a `proxy` (see below) the same check is made on the target before the request;
3. robots.txt of the origin, fetched once and cached (`robots`), read as RFC 9309 says
   (:mod:`lait.pipeline.robots`: wildcards, longest match); its `Crawl-delay` raises the
   per-host delay (capped);
4. the request, under a per-host concurrency limit and a per-host delay between request
   starts; 429 and 5xx are retried with exponential backoff and jitter, honouring
   `Retry-After` up to `max_retry_wait` (a server asking for longer is not retried and
   its host is left alone for that long); refused or reset connections are retried too,
   timeouts are not (a server that stalled once tends to stall again, at a full timeout
   per try);
5. from the headers alone, before any byte of the body: `X-Robots-Tag: noai` or
   `noimageai` for all robots or for ours (`noai`), a Content-Type that says it is not an
   image (`not_image`), a Content-Length above `max_bytes` (`too_large`);
6. the body, read as a stream and decoded (gzip, deflate, br) a chunk at a time, abandoned as
   soon as it passes `max_bytes` decoded (`too_large`: a decompression bomb costs no more
   than `max_bytes`); its magic bytes must be those of a raster image format (`not_image`).

The whole fetch, robots.txt, redirects and retries included, has one deadline
(`total_timeout`), and so has each request in it: name lookup, connect, TLS, headers and
body. A name lookup waits at most the connect timeout (`dns_error`, the lookup going on
in the background to fill the cache). Socket
timeouts bound each read only, so a server that sends its headers a byte at a time would
hold a thread for hours; at the deadline a watchdog thread shuts the request's socket down,
and the fetch returns `timeout`.

Per-host politeness holds per `ImageFetcher` instance, which is thread-safe: one instance
is meant to be shared by every thread of a worker process.

Through an HTTP forward proxy (`proxy="http://proxy:3128"`), http URLs are sent to it as
absolute-URI requests and https URLs through a CONNECT tunnel (TLS still ends at the target,
verified against `verify`). What the address guard checks then:

- the proxy's own address is not checked: it is the user's explicit choice and may well be
  loopback or private;
- the TARGET's host is resolved here and refused (`private_address`) when any address is not
  global, as without a proxy, unless `allow_private_networks`; IP literals, every redirect hop
  and robots.txt likewise; schemes are checked as without a proxy;
- a target name that does not resolve here is left to the proxy, which resolves it itself
  (workers behind an egress proxy often have no public DNS): the request goes out, and a
  dead name comes back as the proxy's error (`http_502`..., `proxy_error`);
- the connection-time check cannot hold: the proxy connects to the target, after its own DNS
  lookup. Refusing private destinations there (DNS rebinding included) is the proxy's egress
  policy (Squid's `http_access deny to_localnet`, for instance).

This module is one job, a fetch and its checks in the order above, so it stays whole at about
640 lines; the network guards are :mod:`lait.pipeline.fetch_network`, the robots rules
:mod:`lait.pipeline.robots`.
"""

from __future__ import annotations

import dataclasses
import http.cookiejar
import random
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
import urllib3
from urllib3.exceptions import NameResolutionError, ReadTimeoutError

from lait.pipeline.fetch_network import AddressPolicy, Deadlines, GuardedAdapter, HostGate, PrivateAddressError
from lait.pipeline.robots import MAX_ROBOTS_BYTES, ROBOTS_RETRY_SECONDS, RobotsRules, x_robots_opt_out

# The fetcher's API, with the network guards and X-Robots-Tag rules it uses, importable from here.
__all__ = ["AddressPolicy", "FetchResult", "ImageFetcher", "PrivateAddressError", "content_type_problem",
           "image_problem", "proxy_problem", "sniff_image_format", "x_robots_opt_out"]

SCHEMES = ("http", "https")
REDIRECT_CODES = (301, 302, 303, 307, 308)
# Content-Types that say nothing about the body: the magic bytes decide alone.
GENERIC_CONTENT_TYPES = ("", "application/octet-stream", "binary/octet-stream", "application/binary")
CHUNK_BYTES = 64 * 1024
# Failures that say the host cannot be reached at all (an image there fails the same way).
NETWORK_FAILURES = ("timeout", "connection_error", "dns_error", "ssl_error", "proxy_error")
# Connections kept to a proxy (plain-http requests to all hosts go through the same ones).
PROXY_POOL_SIZE = 64
# ISO BMFF brands of still images (AVIF, HEIF/HEIC).
_FTYP_BRANDS = {b"avif", b"avis", b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1"}


def sniff_image_format(data: bytes) -> str | None:
    """Raster image format named by the first bytes of `data`, or None.

    Knows JPEG, PNG, GIF, WebP, BMP, TIFF, ICO, AVIF/HEIF and JPEG XL. SVG is not a raster
    image and has no magic bytes: it is None here.
    """
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(b"BM") and len(data) >= 26:
        return "bmp"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if data.startswith(b"\x00\x00\x01\x00"):
        return "ico"
    if data[4:8] == b"ftyp" and data[8:12] in _FTYP_BRANDS:
        return "heif" if data[8:12] not in (b"avif", b"avis") else "avif"
    if data.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return "jxl"
    return None


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def content_type_problem(content_type: str | None) -> str | None:
    """Why a declared Content-Type rules out an image (a detail string), or None."""
    media = _media_type(content_type)
    if media in GENERIC_CONTENT_TYPES:
        return None
    if not media.startswith("image/"):
        return f"Content-Type {media}"
    if media == "image/svg+xml":
        return "SVG is not a raster image"
    return None


def image_problem(content_type: str | None, body: bytes) -> str | None:
    """Why `body` served with `content_type` is not an image (a detail string), or None.

    Both must agree: the Content-Type must be an image type or say nothing
    (`application/octet-stream`, absent), and the magic bytes must be a raster format's.
    An image type that names another format (`image/png` on a JPEG) is accepted: both
    say it is an image, and servers get the subtype wrong often.
    """
    problem = content_type_problem(content_type)
    if problem:
        return problem
    if sniff_image_format(body) is None:
        return f"magic bytes {body[:8]!r} are no image format's"
    return None


# ---------------------------------------------------------------- results

@dataclass(frozen=True)
class FetchResult:
    """What one fetch gave: the image, or why not.

    Attributes
    ----------
    url : str
        The URL asked for.
    reason : str or None
        None on success, else a short code: `timeout`, `connection_error`, `dns_error`,
        `ssl_error`, `http_<status>`, `robots`, `noai`, `too_large`, `not_image`,
        `private_address`, `bad_scheme`, `bad_url`, `bad_redirect`, `redirect_loop`,
        `too_many_redirects`, `proxy_error`, `fetch_error`.
    content, final_url, headers, status
        The body, the URL it came from after redirects, its response headers and status.
    detail : str or None
        A human-readable explanation of a failure.
    """

    url: str
    reason: str | None = None
    content: bytes | None = None
    final_url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    detail: str | None = None
    image_format: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass
class _Failure:
    reason: str
    detail: str | None = None
    status: int | None = None


@dataclass
class _Redirect:
    location: str


@dataclass
class _Retry:
    reason: str
    status: int | None
    wait: float | None  # Retry-After in seconds, None when absent
    detail: str | None = None


def _retry_after(value: str | None) -> float | None:
    """Seconds that a `Retry-After` header asks for (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _caused_by(error: BaseException, kind: type | tuple) -> bool:
    """Whether `error` or anything it wraps (args, __cause__, __context__, urllib3 `reason`) is a `kind`."""
    seen, stack = set(), [error]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, kind):
            return True
        stack += [x for x in (*getattr(e, "args", ()), e.__cause__, e.__context__, getattr(e, "reason", None))
                  if isinstance(x, BaseException)]
    return False


def _strip_fragment(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}"


def proxy_problem(proxy: str) -> str | None:
    """Why `proxy` is not a usable forward-proxy URL (a message), or None."""
    try:
        parts = urlsplit(proxy)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        return f"proxy {proxy!r}: {e}"
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        return f"proxy must be http://host:port or https://host:port, got {proxy!r}"
    return None


def _referer_header(page_url: str | None, target: str) -> str | None:
    """The Referer a browser sends for `target` from `page_url` (strict-origin-when-cross-origin)."""
    if not page_url or urlsplit(page_url).scheme.lower() not in SCHEMES:
        return None
    if urlsplit(page_url).scheme.lower() == "https" and urlsplit(target).scheme.lower() != "https":
        return None  # never leak an https page to plain http
    if _origin(page_url) == _origin(target):
        return _strip_fragment(page_url)
    return _origin(page_url) + "/"


# ---------------------------------------------------------------- the fetcher

class ImageFetcher:
    """Downloads images politely and safely; every outcome is a :class:`FetchResult`.

    Parameters
    ----------
    user_agent : str
        Sent with every request; its product token (up to the first `/`) is the name
        matched in robots.txt and `X-Robots-Tag`.
    timeout : float or (float, float), default=10.0
        Connect and read timeouts in seconds (one value for both, or a pair).
    retries : int, default=2
        Further tries after a 429, a 5xx or a refused/reset connection.
    max_bytes : int, default=20 MiB
        Larger bodies are abandoned: `too_large`.
    per_host_concurrency : int, default=2
        Requests in flight to one host from this instance.
    per_host_delay : float, default=0.5
        Seconds between the starts of two requests to one host.
    respect_robots : bool, default=True
        Read each origin's robots.txt once and obey it (RFC 9309: a 4xx robots.txt allows
        everything; a 5xx or unreachable one disallows everything).
    allow_private_networks : bool or iterable of str, default=False
        Allow loopback/private/... addresses: all (True) or these networks (tests).
    max_redirects : int, default=5
        Redirects followed before `too_many_redirects`.
    max_retry_wait : float, default=30.0
        Longest wait before a retry; a longer `Retry-After` is not waited for.
    backoff : float, default=0.5
        First retry waits about this long, then twice as long each time.
    total_timeout : float or None, default=None
        Wall-clock budget of one fetch, redirects and retries included (default: six
        read timeouts): connect, headers and body of every request in it are cut off there,
        so a server dripping bytes cannot hold a thread beyond it.
    max_crawl_delay : float, default=10.0
        Cap on a robots.txt `Crawl-delay`.
    pool_size : int, default=10
        Connections kept per host (at least `per_host_concurrency`).
    verify : bool or str, default=True
        TLS certificate verification: on, off, or the path of a CA bundle to trust.
    robots_cache_size : int, default=10000
        Origins whose robots.txt is kept; the least recently used is dropped (and fetched
        again if its host comes back).
    proxy : str or None, default=None
        `http://[user:password@]host:port` (or `https://...`) of an HTTP forward proxy that
        every request goes through; see the module docstring for what the address guard
        checks then. A proxy that intercepts TLS needs its CA certificate in `verify`.
    resolver : callable or None, default=None
        The name lookup of the address guard (default `socket.getaddrinfo`).
    """

    def __init__(self, user_agent: str, timeout: float | tuple[float, float] = 10.0, retries: int = 2,
                 max_bytes: int = 20 * 2**20, per_host_concurrency: int = 2, per_host_delay: float = 0.5,
                 respect_robots: bool = True, allow_private_networks: bool | Iterable[str] = False,
                 max_redirects: int = 5, max_retry_wait: float = 30.0, backoff: float = 0.5,
                 total_timeout: float | None = None, max_crawl_delay: float = 10.0, pool_size: int = 10,
                 verify: bool | str = True, robots_cache_size: int = 10_000, proxy: str | None = None,
                 resolver: Callable | None = None):
        if per_host_concurrency < 1:
            raise ValueError(f"per_host_concurrency must be at least 1, got {per_host_concurrency}")
        if retries < 0 or max_redirects < 0 or max_bytes < 1:
            raise ValueError("retries and max_redirects must be >= 0, max_bytes >= 1")
        problem = proxy_problem(proxy) if proxy else None
        if problem:
            raise ValueError(problem)
        self.proxy = proxy or None
        self.user_agent = user_agent
        self.timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self.retries = retries
        self.max_bytes = max_bytes
        self.respect_robots = respect_robots
        self.max_redirects = max_redirects
        self.max_retry_wait = max_retry_wait
        self.backoff = backoff
        self.total_timeout = total_timeout if total_timeout is not None else 6 * self.timeout[1]
        self.max_crawl_delay = max_crawl_delay
        self.verify = verify
        self.policy = AddressPolicy(allow_private_networks, resolver=resolver)
        self.gate = HostGate(per_host_concurrency, per_host_delay)
        self.deadlines = Deadlines()
        # Through a proxy, the http requests to every host share one pool, of connections to the proxy.
        self.session = self._make_session(max(pool_size, per_host_concurrency, PROXY_POOL_SIZE if proxy else 0))
        self.robots_cache_size = robots_cache_size
        self._robots: OrderedDict[str, tuple[RobotsRules, _Failure | None, float]] = OrderedDict()
        self._robots_locks: dict[str, threading.Lock] = {}
        self._robots_lock = threading.Lock()

    def _make_session(self, pool_size: int) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # no proxies or .netrc from the environment: the address checks must hold
        if self.proxy:  # the explicit one only; its connections are not guarded (the user chose its address)
            session.proxies = {"http": self.proxy, "https": self.proxy}
        session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))  # no cookies kept
        session.verify = self.verify
        session.headers.update({"User-Agent": self.user_agent,
                                "Accept": "image/avif,image/webp,image/jpeg,image/png,image/*;q=0.8,*/*;q=0.1"})
        adapter = GuardedAdapter(self.policy, self.deadlines, pool_connections=100, pool_maxsize=pool_size,
                                  max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def close(self) -> None:
        self.session.close()
        self.policy.close()

    def __enter__(self) -> ImageFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- public

    def fetch(self, url: str, referer: str | None = None) -> FetchResult:
        """Download the image at `url`. Never raises: failures are results with a `reason`.

        `referer`, the page that shows the image, is sent as browsers send it
        (strict-origin-when-cross-origin): sites that refuse hotlinking accept their own pages.
        """
        try:
            return self._fetch(url, referer)
        except Exception as e:  # a bug or a library surprise must not kill a pipeline worker
            return FetchResult(url, "fetch_error", detail=f"{type(e).__name__}: {e}")

    def allowed_by_robots(self, url: str) -> bool:
        """Whether robots.txt of `url`'s origin lets our User-Agent fetch it (fetched once per origin)."""
        rules, _ = self._robots_for(url)
        return rules.can_fetch(url, self.user_agent)

    # -------------------------------------------------------------- one fetch

    def _fetch(self, url: str, referer: str | None) -> FetchResult:
        deadline = time.monotonic() + self.total_timeout
        outcome = self._follow(url, deadline, self._read_image, check_robots=self.respect_robots, referer=referer)
        if isinstance(outcome, _Failure):
            return FetchResult(url, outcome.reason, status=outcome.status, detail=outcome.detail)
        return dataclasses.replace(outcome, url=url)

    def _follow(self, url: str, deadline: float, read: Callable, check_robots: bool, referer: str | None = None) -> Any:
        """Fetch `url`, following redirects, each hop vetted; `read(response, url)` makes the result."""
        visited: set[str] = set()
        current = url
        for _hop in range(self.max_redirects + 1):
            problem = self._vet(current, check_robots, deadline)
            if problem:
                return problem
            visited.add(_strip_fragment(current))
            outcome = self._with_retries(current, deadline, read, _referer_header(referer, current))
            if not isinstance(outcome, _Redirect):
                return outcome
            current = _strip_fragment(urljoin(current, outcome.location))
            if current in visited:
                return _Failure("redirect_loop", f"{url} -> ... -> {current} again")
        return _Failure("too_many_redirects", f"more than {self.max_redirects} redirects from {url}")

    def _vet(self, url: str, check_robots: bool, deadline: float) -> _Failure | None:
        """Scheme, address and robots.txt checks of one hop, before any connection to it.

        The name lookup waits at most the connect timeout, and never past `deadline`."""
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port
        except ValueError as e:
            return _Failure("bad_url", str(e))
        if parts.scheme.lower() not in SCHEMES:
            return _Failure("bad_scheme", f"scheme {parts.scheme or '(none)'!r} in {url[:200]}")
        if not host:
            return _Failure("bad_url", f"no host in {url[:200]}")
        wait = min(self.timeout[0], deadline - time.monotonic())
        try:
            self.policy.resolve(host, port or (443 if parts.scheme.lower() == "https" else 80), timeout=wait)
        except PrivateAddressError as e:
            return _Failure("private_address", str(e))
        except (socket.gaierror, TimeoutError) as e:
            if not self.proxy:  # through a proxy, the proxy resolves the name (see the module docstring)
                detail = e if isinstance(e, socket.gaierror) else f"no answer from the resolver within {max(0.0, wait):.1f} s"
                return _Failure("dns_error", f"{host}: {detail}")
        except UnicodeError as e:
            return _Failure("dns_error", f"{host}: {e}")
        if check_robots:
            rules, unreachable = self._robots_for(url)
            if unreachable:  # the host is down: say so, rather than `robots`
                return _Failure(unreachable.reason, f"robots.txt unreachable: {unreachable.detail}")
            if not rules.can_fetch(url, self.user_agent):
                return _Failure("robots", f"robots.txt of {_origin(url)} disallows {parts.path or '/'}")
        return None

    def _with_retries(self, url: str, deadline: float, read: Callable, referer: str | None) -> Any:
        host = (urlsplit(url).hostname or "").lower()
        for attempt in range(self.retries + 1):
            cooling = self.gate.cooling(host)
            if cooling:
                return _Failure("http_429", f"{host} asked for a pause; {cooling:.0f} s left", 429)
            outcome = self._exchange(url, host, deadline, read, referer)
            if not isinstance(outcome, _Retry):
                return outcome
            failure = _Failure(outcome.reason, outcome.detail, outcome.status)
            if attempt == self.retries:
                return failure
            if outcome.wait is not None and outcome.wait > self.max_retry_wait:
                self.gate.cool_down(host, outcome.wait)
                failure.detail = f"Retry-After {outcome.wait:.0f} s is above the {self.max_retry_wait:.0f} s we wait"
                return failure
            wait = outcome.wait if outcome.wait is not None else self.backoff * 2**attempt * (0.5 + random.random())
            wait = min(wait, self.max_retry_wait)
            if time.monotonic() + wait >= deadline:
                return failure
            self.gate.hold_off(host, wait)  # the whole host waits, not only this request
            time.sleep(wait)
        raise AssertionError("unreachable")

    def _exchange(self, url: str, host: str, deadline: float, read: Callable, referer: str | None) -> Any:
        """One request and its response, inside the host's turn, cut off at `deadline` wherever it is."""
        with self.gate.turn(host):
            left = deadline - time.monotonic()
            if left <= 0:
                return _Failure("timeout", f"fetch took more than {self.total_timeout:g} s")
            with self.deadlines.watch(deadline) as watch:
                outcome = self._request(url, deadline, read, referer, (min(self.timeout[0], left), self.timeout[1]))
            if watch.expired and not isinstance(outcome, (FetchResult, str, _Redirect)):
                # The cut connection surfaces as a reset, a short body or a missing header: say what it was.
                return _Failure("timeout", f"fetch took more than {self.total_timeout:g} s (connect, headers and body)")
            return outcome

    def _request(self, url: str, deadline: float, read: Callable, referer: str | None,
                 timeout: tuple[float, float]) -> Any:
        try:
            headers = {"Referer": referer} if referer else None
            response = self.session.get(url, stream=True, allow_redirects=False, timeout=timeout, headers=headers)
        except PrivateAddressError as e:  # the address changed after _vet: DNS rebinding
            return _Failure("private_address", str(e))
        except requests.exceptions.RequestException as e:
            return self._request_failure(e)
        try:
            return self._answer(response, url, deadline, read)
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as e:  # reading the body
            return self._request_failure(e)
        finally:
            response.close()

    def _answer(self, response: requests.Response, url: str, deadline: float, read: Callable) -> Any:
        status = response.status_code
        if status in REDIRECT_CODES:
            location = response.headers.get("Location")
            return _Redirect(location) if location else _Failure("bad_redirect", f"{status} without Location", status)
        if status == 429 or status >= 500:
            return _Retry(f"http_{status}", status, _retry_after(response.headers.get("Retry-After")))
        if not 200 <= status < 300:
            return _Failure(f"http_{status}", f"{status} {response.reason or ''}".strip(), status)
        return read(response, url, deadline)

    @staticmethod
    def _request_failure(error: Exception) -> _Failure | _Retry:
        """The reason code of a requests or urllib3 error; refused or reset connections are retried."""
        detail = f"{type(error).__name__}: {error}"[:300]
        if isinstance(error, requests.exceptions.Timeout) or _caused_by(error, (ReadTimeoutError, TimeoutError)):
            return _Failure("timeout", detail)
        if isinstance(error, requests.exceptions.SSLError):
            return _Failure("ssl_error", detail)
        if isinstance(error, requests.exceptions.ProxyError):  # unreachable, or it refused the tunnel
            return _Failure("proxy_error", detail)
        if _caused_by(error, NameResolutionError):
            return _Failure("dns_error", detail)
        if isinstance(error, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                              requests.exceptions.MissingSchema, requests.exceptions.InvalidHeader)):
            return _Failure("bad_url", detail)
        if isinstance(error, (requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError)):
            return _Failure("bad_encoding", detail)
        if isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                              urllib3.exceptions.ProtocolError)):
            return _Retry("connection_error", None, None, detail)
        return _Failure("fetch_error", detail)

    def _read_body(self, response: requests.Response, deadline: float, limit: int, truncate: bool) -> bytes | _Failure:
        """The body as a stream: cut at `limit` bytes (`truncate`) or abandoned (`too_large`).

        `read1` returns what has arrived, decoded (gzip, deflate, br), and never more than it
        is asked for (urllib3 >= 2.6 stops decompressing there): a decompression bomb is
        abandoned `CHUNK_BYTES` past the limit, whatever its ratio. The deadline is checked
        between reads even when a server drips one byte at a time (`iter_content` would wait
        for whole chunks); a read blocked at the deadline ends when the watchdog cuts the
        connection, and a body that ended then is not whole.
        """
        chunks, size = [], 0
        while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                if truncate:
                    return b"".join(chunks)[:limit]
                coding = response.headers.get("Content-Encoding", "").strip()
                return _Failure("too_large", f"body passed {limit} bytes" + (f" once decoded ({coding})" if coding else ""))
            if time.monotonic() > deadline:
                break
        if time.monotonic() > deadline:
            return _Failure("timeout", f"body still coming after {self.total_timeout:g} s ({size} bytes)")
        return b"".join(chunks)

    def _read_image(self, response: requests.Response, url: str, deadline: float) -> FetchResult | _Failure:
        headers = response.headers
        opt_out = x_robots_opt_out(response.raw.headers.getlist("X-Robots-Tag"), self.user_agent)
        if opt_out:
            return _Failure("noai", f"X-Robots-Tag: {opt_out}", response.status_code)
        content_type = headers.get("Content-Type")
        problem = content_type_problem(content_type)
        if problem:
            return _Failure("not_image", problem, response.status_code)
        length = headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            return _Failure("too_large", f"Content-Length {length} > {self.max_bytes}", response.status_code)
        body = self._read_body(response, deadline, self.max_bytes, truncate=False)
        if isinstance(body, _Failure):
            body.status = response.status_code
            return body
        problem = image_problem(content_type, body)
        if problem:
            return _Failure("not_image", problem, response.status_code)
        return FetchResult(url, content=body, final_url=url, headers=dict(headers), status=response.status_code,
                           image_format=sniff_image_format(body))

    # -------------------------------------------------------------- robots.txt

    def _robots_for(self, url: str) -> tuple[RobotsRules, _Failure | None]:
        """The origin's parsed robots.txt, and the network failure that made it disallow-all, if any."""
        origin = _origin(url)
        with self._robots_lock:
            cached = self._robots.get(origin)
            if cached and cached[2] > time.monotonic():
                self._robots.move_to_end(origin)
                return cached[0], cached[1]
            lock = self._robots_locks.setdefault(origin, threading.Lock())
        with lock:  # one thread fetches, the others of that origin wait for it
            with self._robots_lock:
                cached = self._robots.get(origin)
                if cached and cached[2] > time.monotonic():
                    return cached[0], cached[1]
            rules, unreachable, expires = self._load_robots(origin)
            delay = rules.crawl_delay(self.user_agent)
            if delay:
                self.gate.set_delay((urlsplit(origin).hostname or "").lower(), min(float(delay), self.max_crawl_delay))
            with self._robots_lock:
                self._robots[origin] = (rules, unreachable, expires)
                self._robots.move_to_end(origin)
                while len(self._robots) > self.robots_cache_size:  # bounded: a worker may meet millions of hosts
                    self._robots.popitem(last=False)
                self._robots_locks.pop(origin, None)  # later callers find the cache filled
        return rules, unreachable

    def _load_robots(self, origin: str) -> tuple[RobotsRules, _Failure | None, float]:
        """Rules, network failure (or None) and expiry time of one origin's robots.txt."""
        deadline = time.monotonic() + self.total_timeout
        outcome = self._follow(origin + "/robots.txt", deadline, self._read_robots, check_robots=False)
        if not isinstance(outcome, _Failure):
            return RobotsRules.parse(outcome), None, float("inf")
        rules = RobotsRules.for_status(outcome.status)
        if rules.allow_all:
            return rules, None, float("inf")
        # Unreachable disallows all for a while only: the host may come back.
        unreachable = outcome if outcome.reason in NETWORK_FAILURES else None
        return rules, unreachable, time.monotonic() + ROBOTS_RETRY_SECONDS

    def _read_robots(self, response: requests.Response, url: str, deadline: float) -> str | _Failure:
        body = self._read_body(response, deadline, MAX_ROBOTS_BYTES, truncate=True)
        return body if isinstance(body, _Failure) else body.decode("utf-8", errors="replace")

