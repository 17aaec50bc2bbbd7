"""ImageFetcher against a real HTTP server on 127.0.0.1 that stalls, throttles, loops and lies."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import sys
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import pytest

from lait.pipeline.fetch import (
    ImageFetcher,
    PrivateAddressError,
    _retry_after,
    image_problem,
    sniff_image_format,
    x_robots_opt_out,
)
from tests.image_server import HTML, JPEG, PNG, ImageServer, bomb

UA = "lait/0.1 (+https://github.com/lait-project/lait)"
LOCAL = ["127.0.0.1/32"]  # the test server's address, and no other private one

# Every socket.connect of this process while a test records (an audit hook, not a mock):
# the proof that refused addresses are never connected to.
_connects: list = []
_lookups: list = []
_recording = threading.Event()


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect" and _recording.is_set():
        _connects.append(args[1])
    elif event == "socket.getaddrinfo" and _recording.is_set():
        _lookups.append(args[0])


sys.addaudithook(_audit)


def _is_ip(host) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


@pytest.fixture
def connects():
    _connects.clear()
    _lookups.clear()
    _recording.set()
    yield _connects
    _recording.clear()


@pytest.fixture(scope="module")
def server():
    srv = ImageServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def fresh_server():
    srv = ImageServer().start()
    yield srv
    srv.stop()


def fetcher(**kwargs) -> ImageFetcher:
    defaults = dict(user_agent=UA, timeout=2.0, retries=0, per_host_delay=0.0, per_host_concurrency=4,
                    allow_private_networks=LOCAL, backoff=0.05)
    return ImageFetcher(**{**defaults, **kwargs})


def timed(f: ImageFetcher, url: str):
    start = time.monotonic()
    result = f.fetch(url)
    return result, time.monotonic() - start


# ------------------------------------------------------------------ success

def test_fetches_a_jpeg_with_our_user_agent(server):
    result = fetcher().fetch(server.url("/img/cat.jpg"))
    assert result.ok, result
    assert result.content == JPEG
    assert result.final_url == server.url("/img/cat.jpg")
    assert result.status == 200 and result.image_format == "jpeg"
    assert result.headers["Content-Type"] == "image/jpeg"
    agents = [headers.get("User-Agent") for _, path, headers in server.log if path == "/img/cat.jpg"]
    assert agents == [UA]


def test_png_with_parameters_and_octet_stream_jpeg_are_images(server):
    f = fetcher()
    png = f.fetch(server.url("/png"))
    assert png.ok and png.content == PNG and png.image_format == "png"
    octet = f.fetch(server.url("/octet"))
    assert octet.ok and octet.content == JPEG


def test_redirect_is_followed_and_final_url_reported(server):
    result = fetcher().fetch(server.url("/redirect?to=/img/moved.jpg&status=301"))
    assert result.ok
    assert result.final_url == server.url("/img/moved.jpg")
    assert result.url == server.url("/redirect?to=/img/moved.jpg&status=301")


def test_referer_is_sent_as_a_browser_would(server):
    f = fetcher()
    page = server.url("/gallery/page.html?id=3#top")
    assert f.fetch(server.url("/img/r1.jpg"), referer=page).ok
    same_origin = [h.get("Referer") for _, path, h in server.log if path == "/img/r1.jpg"]
    assert same_origin == [server.url("/gallery/page.html?id=3")]  # no fragment
    assert f.fetch(server.url("/img/r2.jpg"), referer="http://news.invalid/story/1?x=2").ok
    assert [h.get("Referer") for _, path, h in server.log if path == "/img/r2.jpg"] == ["http://news.invalid/"]
    assert f.fetch(server.url("/img/r3.jpg"), referer="https://secure.invalid/a").ok  # https page, http image
    assert [h.get("Referer") for _, path, h in server.log if path == "/img/r3.jpg"] == [None]


# ------------------------------------------------------------------ timeouts and retries

def test_stalling_server_times_out(server):
    result, seconds = timed(fetcher(timeout=0.3), server.url("/stall"))
    assert result.reason == "timeout"
    assert seconds < 2


def test_dripping_body_hits_the_total_timeout(server):
    # Each byte comes within the read timeout; only the whole-fetch budget stops it.
    result, seconds = timed(fetcher(timeout=1.0, total_timeout=0.6), server.url("/drip"))
    assert result.reason == "timeout"
    assert seconds < 2


def test_headers_dripped_a_byte_at_a_time_end_at_the_deadline(server):
    # Each header byte comes within the read timeout: before the deadline, this fetch took ~25 s.
    result, seconds = timed(fetcher(timeout=1.0, total_timeout=0.6), server.url("/header-drip"))
    assert result.reason == "timeout" and "connect, headers and body" in result.detail
    assert 0.5 < seconds < 1.5


def test_the_deadline_watchdog_lets_quick_fetches_and_reused_connections_be():
    srv = ImageServer().start()
    try:
        f = fetcher(total_timeout=0.5)
        for _ in range(3):  # the second and third reuse the connection after a deadline passed unused
            assert f.fetch(srv.url("/img/a.jpg")).ok
            time.sleep(0.6)
        assert f.fetch(srv.url("/header-drip")).reason == "timeout"
        assert f.fetch(srv.url("/img/b.jpg")).ok  # a cut connection is not handed out again
    finally:
        srv.stop()


def test_429_with_retry_after_is_waited_for_then_succeeds(server):
    result, seconds = timed(fetcher(retries=1), server.url("/flaky429/a"))
    assert result.ok and result.content == JPEG
    assert server.hits["/flaky429/a"] == 2
    assert seconds >= 0.95  # Retry-After: 1


def test_retry_after_above_the_cap_is_not_waited_and_the_host_cools_down(server):
    f = fetcher(retries=3, max_retry_wait=2.0)
    result, seconds = timed(f, server.url("/flaky429/b?after=3600"))
    assert result.reason == "http_429" and "3600" in result.detail
    assert seconds < 1 and server.hits["/flaky429/b"] == 1
    # The host asked for an hour: this fetcher leaves it alone, without a request.
    before = sum(server.hits.values())
    assert f.fetch(server.url("/img/later.jpg")).reason == "http_429"
    assert sum(server.hits.values()) == before


def test_503_is_retried_with_backoff(server):
    assert fetcher(retries=2).fetch(server.url("/flaky503/a")).ok
    assert server.hits["/flaky503/a"] == 3
    result = fetcher(retries=1).fetch(server.url("/always503"))
    assert result.reason == "http_503" and result.status == 503
    assert server.hits["/always503"] == 2


def test_connection_refused_is_a_connection_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the fetch: nothing listens there
    assert fetcher().fetch(f"http://127.0.0.1:{port}/x.jpg").reason == "connection_error"


def test_unresolvable_host_is_a_dns_error(connects):
    f = fetcher()
    for name in "abc":
        assert f.fetch(f"http://no-such-host.invalid/{name}.jpg").reason == "dns_error"
    assert _lookups == ["no-such-host.invalid"]  # the failure is remembered: one lookup for the host's URLs


def test_one_dns_lookup_per_host_for_checks_robots_and_connections(fresh_server, connects):
    f = fetcher(allow_private_networks=["127.0.0.1/32", "::1/128"])
    for name in "abcd":
        assert f.fetch(f"http://localhost:{fresh_server.port}/img/{name}.jpg").ok
    names = [host for host in _lookups if not _is_ip(host)]  # IP literals resolve without the resolver
    assert names == ["localhost"]


# ------------------------------------------------------------------ redirects

def test_redirect_loop_is_detected(server):
    result = fetcher(max_redirects=10).fetch(server.url("/loop/a"))
    assert result.reason == "redirect_loop"
    assert server.hits["/loop/a"] == 1 and server.hits["/loop/b"] == 1


def test_too_many_redirects(server):
    result = fetcher(max_redirects=3).fetch(server.url("/chain/0"))
    assert result.reason == "too_many_redirects"
    assert server.hits["/chain/3"] == 1 and server.hits["/chain/4"] == 0


def test_redirect_without_location(server):
    assert fetcher().fetch(server.url("/no-location")).reason == "bad_redirect"


@pytest.mark.parametrize("target", [
    "http://10.0.0.1/x.jpg",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata service
    "http://127.0.0.2/x.jpg",  # loopback, outside the network the tests allow
    "http://[::1]/x.jpg",
    "http://0x7f000002/x.jpg",  # 127.0.0.2 spelled as one hex number
    "http://224.0.0.1/x.jpg",  # multicast
])
def test_redirect_to_a_private_address_is_refused_before_connecting(server, connects, target):
    result = fetcher().fetch(server.url(f"/redirect?to={target}"))
    assert result.reason == "private_address", result
    assert connects and all(address[0] == "127.0.0.1" for address in connects), connects


def test_redirect_to_another_scheme_is_refused(server):
    assert fetcher().fetch(server.url("/redirect?to=ftp://127.0.0.1/x.jpg")).reason == "bad_scheme"
    assert fetcher().fetch(server.url("/redirect?to=file:///etc/passwd")).reason == "bad_scheme"


@pytest.mark.parametrize("url", ["ftp://example.com/x.jpg", "file:///etc/passwd", "data:image/png;base64,AAAA",
                                 "javascript:alert(1)", "x.jpg"])
def test_only_http_and_https(url, connects):
    assert fetcher().fetch(url).reason == "bad_scheme"
    assert connects == []


def test_loopback_is_refused_unless_allowed(server, connects):
    before = sum(server.hits.values())
    strict = fetcher(allow_private_networks=False)
    assert strict.fetch(server.url("/img/a.jpg")).reason == "private_address"
    assert strict.fetch(f"http://localhost:{server.port}/img/a.jpg").reason == "private_address"
    assert connects == [] and sum(server.hits.values()) == before
    assert fetcher(allow_private_networks=True).fetch(server.url("/img/a.jpg")).ok


def test_connection_guard_holds_even_when_the_first_check_is_bypassed(server, connects):
    # What DNS rebinding would do: the address changes after the check. The session's own
    # connections refuse it, whoever calls them.
    strict = fetcher(allow_private_networks=False)
    with pytest.raises(PrivateAddressError):
        strict.session.get(server.url("/img/a.jpg"), timeout=1)
    assert connects == []


# ------------------------------------------------------------------ robots and opt-out

def test_robots_txt_is_respected_and_fetched_once(fresh_server):
    f = fetcher()
    assert f.fetch(fresh_server.url("/private/secret.jpg")).reason == "robots"
    assert fresh_server.hits["/private/secret.jpg"] == 0
    for name in "abc":
        assert f.fetch(fresh_server.url(f"/img/{name}.jpg")).ok
    assert fresh_server.hits["/robots.txt"] == 1
    # A robot named in robots.txt gets its own rules; ignoring robots.txt is an option.
    assert fetcher(user_agent="otherbot/2.0").fetch(fresh_server.url("/img/a.jpg")).reason == "robots"
    assert fetcher(respect_robots=False).fetch(fresh_server.url("/private/secret.jpg")).ok


def test_robots_txt_is_fetched_once_under_concurrency(fresh_server):
    f = fetcher(per_host_concurrency=8)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(f.fetch, [fresh_server.url(f"/img/{i}.jpg") for i in range(16)]))
    assert all(r.ok for r in results)
    assert fresh_server.hits["/robots.txt"] == 1


def test_robots_cache_is_bounded(fresh_server):
    f = fetcher(robots_cache_size=1, allow_private_networks=["127.0.0.1/32", "::1/128"])
    origins = [fresh_server.base, f"http://localhost:{fresh_server.port}"]  # two origins, one server
    for origin in [*origins, origins[0], origins[0]]:
        assert f.fetch(origin + "/img/a.jpg").ok
    assert fresh_server.hits["/robots.txt"] == 3  # the first origin was evicted once, then cached


@pytest.mark.parametrize(("status", "allowed"), [(404, True), (503, False)])
def test_missing_robots_allows_and_unreachable_robots_disallows(status, allowed):
    srv = ImageServer(robots_txt="", robots_status=status).start()
    try:
        result = fetcher().fetch(srv.url("/img/a.jpg"))
        assert result.ok is allowed and (allowed or result.reason == "robots")
    finally:
        srv.stop()


def test_crawl_delay_in_robots_slows_the_host_down():
    srv = ImageServer(robots_txt="User-agent: *\nCrawl-delay: 5\nDisallow: /private/\n").start()
    try:
        f = fetcher(max_crawl_delay=0.3)  # capped: 5 s would be too slow for a test
        start = time.monotonic()
        for i in range(3):
            assert f.fetch(srv.url(f"/img/{i}.jpg")).ok
        assert time.monotonic() - start >= 0.55
    finally:
        srv.stop()


def test_robots_txt_wildcards_and_longest_match_rfc9309():
    # RFC 9309 2.2.2-2.2.3: the longest matching rule wins whatever its order (urllib.robotparser
    # takes the first), `*` matches any characters and `$` ends the path.
    robots = ("User-agent: *\n"
              "Disallow: /private/\n"
              "Allow: /private/public/\n"
              "Disallow: /*.png$\n"
              "Disallow: /img/*/secret\n")
    srv = ImageServer(robots_txt=robots).start()
    try:
        f = fetcher()
        reasons = {path: f.fetch(srv.url(path)).reason for path in (
            "/private/a.jpg", "/private/public/a.jpg", "/img/a.png", "/img/a.png?size=2", "/img/x/secret.jpg",
            "/img/a.jpg")}
        assert reasons == {"/private/a.jpg": "robots", "/private/public/a.jpg": None, "/img/a.png": "robots",
                           "/img/a.png?size=2": None, "/img/x/secret.jpg": "robots", "/img/a.jpg": None}
        assert srv.hits["/robots.txt"] == 1 and srv.hits["/private/a.jpg"] == 0
    finally:
        srv.stop()


def test_robots_group_of_our_product_token_wins_over_the_star_group():
    srv = ImageServer(robots_txt="User-agent: *\nDisallow: /\n\nUser-agent: lait\nAllow: /img/\nDisallow: /\n").start()
    try:
        assert fetcher().fetch(srv.url("/img/a.jpg")).ok
        assert fetcher().fetch(srv.url("/private/a.jpg")).reason == "robots"
        assert fetcher(user_agent="otherbot/2.0").fetch(srv.url("/img/a.jpg")).reason == "robots"
    finally:
        srv.stop()


def test_x_robots_tag_noai_is_honoured_before_the_body_is_read(server):
    # The server sends headers, then holds the body for 10 s: reading it would time out.
    result, seconds = timed(fetcher(timeout=3.0), server.url("/noai"))
    assert result.reason == "noai" and seconds < 1.5
    assert fetcher(timeout=3.0).fetch(server.url("/noimageai-for-us")).reason == "noai"
    assert fetcher().fetch(server.url("/noai-for-other")).ok


# ------------------------------------------------------------------ bodies

def test_oversized_body_with_content_length_is_refused_unread(server):
    result, seconds = timed(fetcher(max_bytes=100_000, timeout=3.0), server.url("/big-declared"))
    assert result.reason == "too_large" and seconds < 1.5


def test_oversized_body_without_content_length_is_cut_off(server):
    result, seconds = timed(fetcher(max_bytes=200_000), server.url("/big-undeclared"))
    assert result.reason == "too_large" and "200000" in result.detail
    assert seconds < 2


@pytest.mark.parametrize("path", ["/html-as-jpeg", "/jpeg-as-html", "/svg"])
def test_content_type_and_magic_bytes_must_both_say_image(server, path):
    assert fetcher().fetch(server.url(path)).reason == "not_image"


def test_gzip_bomb_is_cut_off_after_max_bytes_of_decoded_body(server):
    result, seconds = timed(fetcher(max_bytes=2**20), server.url("/gzip-bomb"))
    assert result.reason == "too_large" and seconds < 2


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_bombs_are_decoded_a_chunk_at_a_time_up_to_max_bytes(server, coding):
    # urllib3 >= 2.6 decodes no more than read1 asks for; an older one inflated each
    # compressed chunk whole (64 KB of this bomb: 14 MB to 64 MB at once).
    bomb(coding)  # made before measuring
    f = fetcher(max_bytes=2**20)
    tracemalloc.start()
    try:
        result = f.fetch(server.url(f"/bomb/{coding}"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.reason == "too_large" and result.detail == f"body passed {2**20} bytes once decoded ({coding})"
    assert peak < 8 * 2**20  # the 64 MB body never is in memory


def test_404(server):
    result = fetcher().fetch(server.url("/missing.jpg"))
    assert result.reason == "http_404" and result.status == 404 and result.content is None


def test_never_raises_on_garbage():
    f = fetcher()
    for url in ["http://[::1", "http://exa mple.com/x.jpg", "", "http://:80/x.jpg"]:
        assert not f.fetch(url).ok


# ------------------------------------------------------------------ TLS

@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A self-signed certificate for localhost and 127.0.0.1 (cryptography comes with apache-beam)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


def test_https_verifies_the_host_name_while_connecting_to_the_checked_address(tls_files):
    srv = ImageServer(tls=tls_files).start()
    try:
        loopback = ["127.0.0.1/32", "::1/128"]  # localhost may resolve to both
        untrusted = fetcher(allow_private_networks=loopback).fetch(srv.url("/img/a.jpg"))
        assert untrusted.reason == "ssl_error"  # self-signed: refused by default
        trusted = fetcher(allow_private_networks=loopback, verify=tls_files[0]).fetch(srv.url("/img/a.jpg"))
        assert trusted.ok and trusted.content == JPEG, trusted
        assert trusted.final_url.startswith("https://localhost:")
    finally:
        srv.stop()


# ------------------------------------------------------------------ politeness

def test_per_host_concurrency_limit(fresh_server):
    f = fetcher(per_host_concurrency=2, respect_robots=False)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(f.fetch, [fresh_server.url(f"/slow/{i}.jpg") for i in range(6)]))
    assert all(r.ok for r in results)
    assert fresh_server.max_in_flight == 2


def test_per_host_delay_spaces_request_starts(fresh_server):
    f = fetcher(per_host_delay=0.15, respect_robots=False)
    with ThreadPoolExecutor(4) as pool:
        assert all(r.ok for r in pool.map(f.fetch, [fresh_server.url(f"/img/{i}.jpg") for i in range(4)]))
    starts = sorted(t for t, path, _ in fresh_server.log if path.startswith("/img/"))
    assert all(b - a >= 0.13 for a, b in zip(starts, starts[1:])), starts


# ------------------------------------------------------------------ pure helpers

def test_sniff_image_format():
    assert sniff_image_format(JPEG) == "jpeg" and sniff_image_format(PNG) == "png"
    assert sniff_image_format(b"GIF89a" + b"\0" * 20) == "gif"
    assert sniff_image_format(b"RIFF\x10\0\0\0WEBPVP8 ") == "webp"
    assert sniff_image_format(b"\0\0\0\x1cftypavif\0\0\0\0") == "avif"
    assert sniff_image_format(HTML) is None and sniff_image_format(b"") is None


def test_image_problem_needs_type_and_bytes_to_agree():
    assert image_problem("image/jpeg", JPEG) is None
    assert image_problem("image/png", JPEG) is None  # both say image; servers mix subtypes up
    assert image_problem(None, JPEG) is None
    assert image_problem("image/jpeg", HTML) is not None
    assert image_problem("text/html", JPEG) is not None


def test_x_robots_opt_out_scoping():
    assert x_robots_opt_out(["noai"], UA) == "noai"
    assert x_robots_opt_out(["noindex, noimageai"], UA) == "noimageai"
    assert x_robots_opt_out(["lait: noai"], UA) == "noai"
    assert x_robots_opt_out(["otherbot: noai, noimageai"], UA) is None
    assert x_robots_opt_out(["otherbot: noai", "noimageai"], UA) == "noimageai"
    assert x_robots_opt_out(["unavailable_after: 25 Jun 2010 15:00:00 PST"], UA) is None
    assert x_robots_opt_out([], UA) is None


def test_retry_after_forms():
    assert _retry_after("7") == 7.0
    assert 50 < _retry_after(time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))) <= 60
    assert _retry_after("soon") is None and _retry_after(None) is None


# ------------------------------------------------------------------ through a forward proxy

PUBLIC = "93.184.215.14"  # a global unicast address: the target's, never connected to (the proxy is)


def fixed_names(names: dict[str, str]):
    """A getaddrinfo with fixed answers for `names`; IP literals and localhost as usual; other names fail."""
    def resolve(host, port, family=0, type=0, *rest):
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (names[host], port))]
        if host == "localhost" or _is_ip(host):
            return socket.getaddrinfo(host, port, family, type)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return resolve


def proxied(proxy_server: ImageServer, **kwargs) -> ImageFetcher:
    """A fetcher that sends everything through `proxy_server` (on 127.0.0.1), with no private network allowed."""
    resolver = fixed_names({"photos.example.com": PUBLIC, "intranet.example.com": "10.0.0.7"})
    return fetcher(**{"allow_private_networks": False, "proxy": proxy_server.base, "resolver": resolver, **kwargs})


def test_proxied_fetch_of_a_public_target_goes_through_the_proxy(fresh_server, connects):
    f = proxied(fresh_server)
    result = f.fetch("http://photos.example.com/img/a.jpg")
    assert result.ok and result.content == JPEG, result
    blocked = f.fetch("http://photos.example.com/private/b.jpg")  # robots.txt, read through the proxy too
    assert blocked.reason == "robots"
    # Absolute-URI requests for the target host, to the proxy on loopback (its address is not checked).
    assert [(path, headers["Host"]) for _, path, headers in fresh_server.log] == [
        ("/robots.txt", "photos.example.com"), ("/img/a.jpg", "photos.example.com")]
    assert connects and all(tuple(c[:2]) == ("127.0.0.1", fresh_server.port) for c in connects)


@pytest.mark.parametrize("url", [
    "http://intranet.example.com/img/a.jpg",  # a name that resolves to 10.0.0.7
    "https://intranet.example.com/img/a.jpg",  # https too: no CONNECT is sent
    "http://localhost/img/a.jpg",  # loopback by /etc/hosts, like the proxy itself
    "http://127.0.0.1:8080/img/a.jpg",
    "http://[::1]/img/a.jpg",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata, link-local
    "http://photos.example.com/redirect?to=http://intranet.example.com/img/a.jpg",  # a redirect hop
])
def test_proxied_fetch_to_a_private_target_is_refused(fresh_server, connects, url):
    result = proxied(fresh_server, respect_robots=False).fetch(url)
    assert result.reason == "private_address", result
    assert set(fresh_server.hits) <= {"/redirect"}  # the private target never reached the proxy
    assert all(tuple(c[:2]) == ("127.0.0.1", fresh_server.port) for c in connects)


def test_proxied_private_target_is_fetched_when_private_networks_are_allowed(fresh_server):
    result = proxied(fresh_server, allow_private_networks=True).fetch("http://intranet.example.com/img/a.jpg")
    assert result.ok and result.content == JPEG, result
    assert fresh_server.log[-1][2]["Host"] == "intranet.example.com"


def test_a_target_name_that_does_not_resolve_here_is_left_to_the_proxy(fresh_server):
    url = "http://images.example.invalid/img/a.jpg"
    assert proxied(fresh_server, proxy=None).fetch(url).reason == "dns_error"  # no proxy: a dead name
    result = proxied(fresh_server).fetch(url)  # the proxy resolves it (here: serves it)
    assert result.ok and result.content == JPEG, result
    assert fresh_server.log[-1][2]["Host"] == "images.example.invalid"


def test_unreachable_proxy_is_a_proxy_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    f = fetcher(proxy=f"http://127.0.0.1:{port}", resolver=fixed_names({"photos.example.com": PUBLIC}))
    assert f.fetch("http://photos.example.com/img/a.jpg").reason == "proxy_error"


@pytest.mark.parametrize("proxy", ["socks5://127.0.0.1:1080", "127.0.0.1:3128", "http://", "http://h:notaport"])
def test_bad_proxy_url_is_refused_at_construction(proxy):
    with pytest.raises(ValueError):
        ImageFetcher(user_agent=UA, proxy=proxy)


def test_proxy_options_reach_the_fetcher_and_bad_ones_are_usage_errors(tmp_path):
    from lait.errors import UsageError
    from lait.pipeline.acquire_images import check_options, fetcher_settings
    from lait.pipeline.options import LaitOptions

    ca = tmp_path / "ca.pem"
    ca.write_text("not read here")
    options = LaitOptions(["--proxy", "http://127.0.0.1:3128", "--fetch_ca_bundle", str(ca)])
    check_options(options)
    settings = fetcher_settings(options)
    assert (settings["proxy"], settings["verify"]) == ("http://127.0.0.1:3128", str(ca))
    assert (fetcher_settings(LaitOptions([]))["proxy"], fetcher_settings(LaitOptions([]))["verify"]) == (None, True)
    for bad in (["--proxy", "socks5://127.0.0.1:1080"], ["--fetch_ca_bundle", str(tmp_path / "missing.pem")]):
        with pytest.raises(UsageError):
            check_options(LaitOptions(bad))


def test_a_resolver_that_does_not_answer_ends_at_the_connect_timeout_and_its_late_answer_is_kept(server):
    answered = threading.Event()

    def slow(host, port, family=0, type=0, *rest):
        if host == "slow.example":
            answered.wait(10)  # a resolver whose server does not answer, until the test lets it
            host = "127.0.0.1"
        return socket.getaddrinfo(host, port, family, type)

    f = fetcher(timeout=(0.3, 2.0), resolver=slow)
    results = [timed(f, f"http://slow.example:{server.port}/img/{name}.jpg") for name in "ab"]
    for result, seconds in results:
        assert result.reason == "dns_error" and "no answer" in result.detail
        assert seconds < 1.0
    answered.set()  # the lookup still under way answers: later URLs of the host use that answer
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not f.fetch(f"http://slow.example:{server.port}/img/c.jpg").ok:
        time.sleep(0.05)
    assert f.fetch(f"http://slow.example:{server.port}/img/d.jpg").ok
    f.close()
