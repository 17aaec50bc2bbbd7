"""URL normalisation: one image has one key, wherever a page names it."""

from __future__ import annotations

import posixpath
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters left as they are when re-quoting a path or query (RFC 3986 reserved + unreserved).
_SAFE_PATH = "/:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?"


def normalize_url(url: str, base: str | None = None) -> str | None:
    """Absolute, canonical form of `url` (resolved against `base`), or None if it is not http(s).

    Lower-cases scheme and host, drops default ports, fragments and dot segments, and
    re-quotes path and query uniformly, so `HTTP://Example.com:80/a/../b%7e.jpg#x` and
    `http://example.com/b~.jpg` are one key. The query is kept as it is: a resized rendition
    is a different file.
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
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if ":" in host:  # IPv6 literal
        netloc = f"[{host}]" if port in (None, _DEFAULT_PORTS[scheme]) else f"[{host}]:{port}"
    path = posixpath.normpath(unquote(parts.path)) if parts.path else "/"
    if parts.path.endswith("/") and not path.endswith("/"):
        path += "/"
    path = quote(path if path.startswith("/") else "/" + path, safe=_SAFE_PATH)
    query = quote(unquote(parts.query), safe=_SAFE_QUERY + "=&")
    return urlunsplit((scheme, netloc, path, query, ""))


def url_host(url: str) -> str:
    """Host of a URL, lower-cased, without a leading `www.`."""
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host
