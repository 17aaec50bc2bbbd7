"""What robots.txt and `X-Robots-Tag` let lait fetch.

robots.txt is read as RFC 9309 reads it, by `protego`: `*` and `$` in paths, and the longest
matching rule decides (an `Allow: /private/ok/` overrides a shorter `Disallow: /private/`),
which `urllib.robotparser` does not do. The HTTP status of robots.txt decides when there is
no file to read (RFC 9309 2.3.1).

    >>> rules = RobotsRules.parse("User-agent: *\\nDisallow: /*.gif$\\nAllow: /private/ok/\\nDisallow: /private/")
    >>> rules.can_fetch("https://example.com/private/ok/cat.jpg", "lait/0.1")
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from protego import Protego

__all__ = ["RobotsRules", "x_robots_opt_out", "MAX_ROBOTS_BYTES", "ROBOTS_RETRY_SECONDS"]

# RFC 9309: crawlers must parse at least 500 KiB of robots.txt; we read no more.
MAX_ROBOTS_BYTES = 512 * 1024
# An unreachable robots.txt disallows its origin for this long, then is asked again.
ROBOTS_RETRY_SECONDS = 120.0
# X-Robots-Tag directives that opt an image out of AI training.
OPT_OUT_DIRECTIVES = ("noai", "noimageai")
# X-Robots-Tag directives that take a value after a colon (so "name:" is not a robot's name).
VALUED_DIRECTIVES = ("unavailable_after", "max-snippet", "max-image-preview", "max-video-preview")
_ROBOT_PREFIX = re.compile(r"^([a-z0-9_*][a-z0-9_.*-]*)\s*:\s*(.*)$")


class RobotsRules:
    """One origin's robots.txt: its parsed rules, or allow-all / disallow-all when there is none.

    Build with :meth:`parse` (the file's text) or :meth:`for_status` (the HTTP status when the
    file could not be read).
    """

    def __init__(self, parsed: Protego | None, allow_all: bool = True):
        self._parsed = parsed
        self.allow_all = allow_all and parsed is None
        self.disallow_all = not allow_all and parsed is None

    @classmethod
    def parse(cls, text: str) -> RobotsRules:
        return cls(Protego.parse(text))

    @classmethod
    def for_status(cls, status: int | None) -> RobotsRules:
        """RFC 9309 2.3.1: unavailable (4xx but 429) allows all; unreachable (5xx, 429, no answer)
        disallows all."""
        status = status or 0
        return cls(None, allow_all=400 <= status < 500 and status != 429)

    def can_fetch(self, url: str, user_agent: str) -> bool:
        if self._parsed is None:
            return self.allow_all
        return self._parsed.can_fetch(url, user_agent)

    def crawl_delay(self, user_agent: str) -> float | None:
        """The `Crawl-delay` of the group that applies to `user_agent`, in seconds, or None."""
        return self._parsed.crawl_delay(user_agent) if self._parsed is not None else None


def x_robots_opt_out(values: Iterable[str], user_agent: str) -> str | None:
    """The opt-out directive (`noai` / `noimageai`) that `X-Robots-Tag` values set for us, or None.

    Each value is one header line; `robot: a, b` scopes `a` and `b` to that robot until the
    line ends. A directive applies when it names no robot, `*`, or our product token (the
    User-Agent up to its first `/`).
    """
    token = user_agent.split("/", 1)[0].strip().lower()
    for value in values:
        robot = None
        for part in value.split(","):
            part = part.strip().lower()
            match = _ROBOT_PREFIX.match(part)
            if match and match.group(1) not in VALUED_DIRECTIVES:
                robot, part = match.group(1), match.group(2).strip()
            if part in OPT_OUT_DIRECTIVES and robot in (None, "*", token):
                return part
    return None
