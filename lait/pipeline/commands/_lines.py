"""The JSON-lines inputs of the batch commands, read one way: `--batch FILE.jsonl` and page lists."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator

from lait.errors import UsageError


def json_lines(path: str) -> Iterator[tuple[int, str]]:
    """(line number, line) for each non-blank line of `path` ("-": standard input).

    A file that cannot be opened is a UsageError naming it; bytes that are not UTF-8 are replaced.
    """
    try:
        lines = sys.stdin if path == "-" else open(path, encoding="utf-8", errors="replace")
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    with lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                yield number, line


def page_list(path: str) -> Iterator[tuple[str, str, str]]:
    """(path as listed, path to open, URL) for each line {"path": ..., "url": ...} of a page list.

    A listed path is relative to the list's folder (standard input: to the working folder).
    """
    folder = "." if path == "-" else os.path.dirname(os.path.abspath(path))
    for number, line in json_lines(path):
        try:
            entry = json.loads(line)
            page_path, url = entry["path"], entry["url"]
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"{path}:{number}: expected a JSON object with 'path' and 'url'") from None
        yield page_path, os.path.join(folder, page_path), url
