"""The `lait` command line: one sub-command per module in `pipeline/commands/`.

Each command module defines `NAME`, `HELP`, `add_arguments(parser)` and `main(args, extra)`;
modules that accept Beam flags set `PASS_THROUGH = True` and receive the unknown flags in
`extra`. A user's mistake raises :class:`UsageError` and is printed as one line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

from pipeline import commands


class UsageError(Exception):
    """A mistake in how lait was called (bad path, bad option): shown as one line, exit 2."""


def _command_modules() -> list:
    found = []
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            found.append(importlib.import_module(f"pipeline.commands.{info.name}"))
    return sorted(found, key=lambda m: getattr(m, "ORDER", 100))


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(
        prog="lait",
        description="Turn web crawls (WARC/ARC) into a clean image-text corpus, the way ImageBERT built LAIT, "
        "and pre-train ImageBERT on it.",
        epilog="Run 'lait COMMAND --help' for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for module in _command_modules():
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        modules[module.NAME] = module
    return parser, modules


def configure_logging() -> None:
    """Our loggers at INFO, everyone else's at ERROR; run first in `lait` and in each local Dask worker."""
    # Beam logs chatty warnings on the root logger (e.g. about optional GCP clients) at import.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    for ours in ("pipeline", "filters", "scoring", "imagebert"):
        logging.getLogger(ours).setLevel(logging.INFO)
    for noisy in ("warcio", "distributed", "apache_beam.runners.dask"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # dask.distributed sets its own loggers to INFO when it is imported (later, lazily), and
    # then logs a cluster's every step, down to a benign "Batched Comm Closed" traceback as
    # the workers shut down; its config, read at that import, keeps them at ERROR.
    os.environ.setdefault("DASK_DISTRIBUTED__LOGGING__DISTRIBUTED", "error")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    configure_logging()
    parser, modules = build_parser()
    args, extra = parser.parse_known_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    module = modules[args.command]
    if extra and not getattr(module, "PASS_THROUGH", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return module.main(args, extra) or 0
    except UsageError as error:
        print(f"lait {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run through the package module so `UsageError` is one class for the commands and for us.
    from pipeline.cli import main as package_main

    sys.exit(package_main())
