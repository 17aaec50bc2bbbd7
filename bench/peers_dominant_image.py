"""Driver for the peers in the dominant-image bench; runs in `.venv-peers`, not in lait's venv.

    .venv-peers/bin/python bench/peers_dominant_image.py PEER JOBS.jsonl

PEER is newspaper4k, goose3 or trafilatura. JOBS.jsonl lines are {"id", "mode", "path", "url"}.
Prints one JSON line per job {"id", "mode", "image_url", "seconds"}. Sockets are disabled
first, so no peer can fetch anything (network off, as the bench requires): image fetching
is also switched off in each peer's configuration where it has that option.
"""

from __future__ import annotations

import json
import socket
import sys
import time


def _no_network(*args, **kwargs):
    raise OSError("network is off in this bench")


socket.socket.connect = _no_network
socket.create_connection = _no_network


def newspaper4k():
    from newspaper import Article

    def top_image(html: str, url: str) -> str | None:
        article = Article(url, fetch_images=False)
        article.download(input_html=html)
        article.parse()
        return article.top_image or None

    return top_image


def goose3():
    from goose3 import Goose

    # goose3 sizes content images by downloading them; with the network off that raises, so
    # image fetching is off and its own parsed og:image stands in where it has no top image.
    goose = Goose({"enable_image_fetching": False})

    def top_image(html: str, url: str) -> str | None:
        article = goose.extract(url=url, raw_html=html)
        image = article.top_image
        if image is not None and image.src:
            return image.src
        return (article.opengraph or {}).get("image") or None

    return top_image


def trafilatura():
    import trafilatura as t

    def top_image(html: str, url: str) -> str | None:
        metadata = t.extract_metadata(html, default_url=url)
        return metadata.image if metadata is not None and metadata.image else None

    return top_image


PEERS = {"newspaper4k": newspaper4k, "goose3": goose3, "trafilatura": trafilatura}


def main() -> int:
    peer, jobs_path = sys.argv[1], sys.argv[2]
    top_image = PEERS[peer]()
    with open(jobs_path, encoding="utf-8") as f:
        jobs = [json.loads(line) for line in f if line.strip()]
    for job in jobs:
        with open(job["path"], "rb") as f:
            content = f.read()
        started = time.perf_counter()
        try:
            html = content.decode("utf-8")
        except UnicodeDecodeError:
            html = content.decode("cp1252", "replace")
        try:
            image_url = top_image(html, job["url"])
            if isinstance(image_url, (list, tuple)):  # goose3's opengraph keeps repeated tags as a list
                image_url = image_url[0] if image_url else None
            image_url = image_url if isinstance(image_url, str) else None
            error = None
        except Exception as exc:  # noqa: BLE001 - a peer failing on a page scores as no image
            image_url, error = None, f"{type(exc).__name__}: {exc}"[:200]
        seconds = time.perf_counter() - started
        print(json.dumps({"id": job["id"], "mode": job["mode"], "image_url": image_url, "seconds": seconds,
                          "error": error}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
