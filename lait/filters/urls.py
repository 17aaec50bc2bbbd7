"""URL normalisation: one image has one key, wherever a page names it."""

from __future__ import annotations

import re
import string
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
# Characters left as they are when quoting a path or query: reserved and unreserved ones, and
# "%" itself, since escapes are normalised separately.
_SAFE_PATH = "/:@!$&'()*+,;=-._~%"
_SAFE_QUERY = _SAFE_PATH + "?"


def _normalize_escapes(component: str, safe: str) -> str:
    """RFC 3986 6.2.2: decode escapes of unreserved characters only, upper-case the others, quote the rest.

    `%2F`, `%26` or `%3D` keep their meaning (a different resource from `/`, `&`, `=`).
    """
    def decode_unreserved(match: re.Match) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    component = _ESCAPE.sub(decode_unreserved, component)
    # A "%" that does not start an escape is itself quoted.
    component = re.sub(r"%(?![0-9A-F]{2})", "%25", component)
    return quote(component, safe=safe)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4, without touching empty segments (`a//b` stays)."""
    output: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments):
        if segment == ".":
            if i == len(segments) - 1:
                output.append("")
        elif segment == "..":
            if len(output) > 1:
                output.pop()
            if i == len(segments) - 1:
                output.append("")
        else:
            output.append(segment)
    result = "/".join(output)
    return result if result.startswith("/") else "/" + result


def normalize_url(url: str, base: str | None = None) -> str | None:
    """Absolute, canonical form of `url` (resolved against `base`), or None if it is not http(s).

    Lower-cases scheme and host, drops default ports, fragments and dot segments, and
    normalises percent-escapes (RFC 3986 6.2.2), so `HTTP://Example.com:80/a/../b%7e.jpg#x`
    and `http://example.com/b~.jpg` are one key, while `/a%2Fb.jpg` and `/a/b.jpg` stay two.
    The query is kept as it is: a resized rendition is a different file.
    """
    if not url:
        return None
    url = url.strip()
    if url.startswith("//") and base:
        url = urlsplit(base).scheme + ":" + url
    try:
        absolute = urljoin(base, url) if base else url
        parts = urlsplit(absolute)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            return None
        host = parts.hostname.lower().rstrip(".")
        port = parts.port
    except ValueError:
        return None
    default_port = port in (None, _DEFAULT_PORTS[scheme])
    shown_host = f"[{host}]" if ":" in host else host  # IPv6 literal
    netloc = shown_host if default_port else f"{shown_host}:{port}"
    path = _normalize_escapes(_remove_dot_segments(parts.path or "/"), _SAFE_PATH)
    query = _normalize_escapes(parts.query, _SAFE_QUERY)
    return urlunsplit((scheme, netloc, path, query, ""))
def url_host(url: str | None) -> str:
    """Host of a URL, lower-cased, without a leading `www.` ("" for no URL)."""
    host = (urlsplit(url or "").hostname or "").lower()
    return host[4:] if host.startswith("www.") else host
