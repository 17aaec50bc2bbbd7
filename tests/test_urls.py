"""normalize_url: one key per image, and never one key for two different images."""

import pytest

from lait.filters.urls import normalize_url


@pytest.mark.parametrize(("url", "base", "expected"), [
    ("HTTP://Example.COM:80/a/../b%7e.jpg#top", None, "http://example.com/b~.jpg"),
    ("//cdn.example.net/i.png", "https://www.example.org/story", "https://cdn.example.net/i.png"),
    ("img/cat photo.jpg", "http://example.org/blog/post.html", "http://example.org/blog/img/cat%20photo.jpg"),
    ("/café.jpg", "https://example.fr/", "https://example.fr/caf%C3%A9.jpg"),
    ("/caf%c3%a9.jpg", "https://example.fr/", "https://example.fr/caf%C3%A9.jpg"),
    ("https://example.com:8443/x.jpg", None, "https://example.com:8443/x.jpg"),
    ("/100%.jpg", "http://example.com/", "http://example.com/100%25.jpg"),
])
def test_spellings_of_one_url_share_a_key(url, base, expected):
    assert normalize_url(url, base) == expected


@pytest.mark.parametrize(("a", "b"), [
    ("http://example.com/a%2Fb.jpg", "http://example.com/a/b.jpg"),
    ("http://example.com/i.jpg?q=a%26b%3Dc", "http://example.com/i.jpg?q=a&b=c"),
    ("http://example.com/i.jpg?w=640", "http://example.com/i.jpg?w=1280"),
    ("http://example.com/a//b.jpg", "http://example.com/a/b.jpg"),
])
def test_different_resources_keep_different_keys(a, b):
    assert normalize_url(a) != normalize_url(b)


@pytest.mark.parametrize("url", ["data:image/gif;base64,R0lGOD", "javascript:void(0)", "mailto:a@b.c", "", "http://"])
def test_non_http_urls_have_no_key(url):
    assert normalize_url(url) is None
