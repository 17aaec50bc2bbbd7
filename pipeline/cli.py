"""The `lait` command line: one sub-command per module in `pipeline/commands/`.

Each command module defines `NAME`, `HELP`, `add_arguments(parser)` and `main(args, extra)`;
modules that accept Beam flags set `PASS_THROUGH = True` and receive the unknown flags in
`extra`. A user's mistake (a bad value, path or flag) is one line on stderr and exit status 2,
before any work starts; `--min-image-side` and `--min_image_side` are one flag. A run that
could read not one record from its inputs ends with one line and exit status 1.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import pkgutil
import sys

from pipeline import commands


class UsageError(Exception):
    """A mistake in how lait was called (bad path, bad option): shown as one line, exit 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with its errors on one line (not the usage text), naming the help to read."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see '{self.prog} --help')\n")


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def _command_modules() -> list:
    found = []
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            found.append(importlib.import_module(f"pipeline.commands.{info.name}"))
    return sorted(found, key=lambda m: getattr(m, "ORDER", 100))


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = ArgumentParser(
        prog="lait",
        description="Turn web crawls (WARC/ARC) into a clean image-text corpus, the way ImageBERT built LAIT, "
        "and pre-train ImageBERT on it.",
        epilog="Run 'lait COMMAND --help' for a command's options; every --flag_name may also be "
        "spelt --flag-name.",
    )
    from pipeline.checks import name_numbers

    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    parser.command_parsers = {}
    for module in _command_modules():
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        name_numbers(command)
        modules[module.NAME] = module
        parser.command_parsers[module.NAME] = command
    return parser, modules


def _key(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def respell(argv: list[str], options: list[str]) -> list[str]:
    """`argv` with every --flag spelt as in `options`: --min-image-side and --min_image_side are one flag.

    A flag that is not one of `options` under either spelling is left as it is; nothing after `--`.
    """
    spelling = {}
    for option in options:
        if option.startswith("--"):
            spelling.setdefault(_key(option), option)
    known = set(options)
    out = []
    for position, token in enumerate(argv):
        if token == "--":
            return out + argv[position:]
        name, eq, value = token.partition("=")
        if token.startswith("--") and name not in known and _key(name) in spelling:
            token = spelling[_key(name)] + eq + value
        out.append(token)
    return out


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return [option for action in parser._actions for option in action.option_strings]


def suggest(flag: str, options: list[str]) -> str:
    """' (did you mean --x?)' for the closest of `options`, or ''."""
    keys = {_key(option): option for option in options if option.startswith("--")}
    close = difflib.get_close_matches(_key(flag.split("=")[0]), list(keys), n=1, cutoff=0.75)
    return f" (did you mean {keys[close[0]]}?)" if close else ""


def _split_command(argv: list[str], choices: dict) -> tuple[list[str], str | None, list[str]]:
    """(options before the command, the command spelt as registered, the arguments after it)."""
    for position, token in enumerate(argv):
        if not token.startswith("-"):
            name = token if token in choices else token.replace("_", "-")
            return argv[:position], name if name in choices else token, argv[position + 1:]
    return argv, None, []


def configure_logging() -> None:
    """Our loggers at INFO, everyone else's at ERROR; run first in `lait` and in each local Dask worker."""
    # Beam logs chatty warnings on the root logger (e.g. about optional GCP clients) at import.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    for ours in ("pipeline", "filters", "scoring", "imagebert"):
        logging.getLogger(ours).setLevel(logging.INFO)
    for noisy in ("distributed", "apache_beam.runners.dask"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # dask.distributed sets its own loggers to INFO when it is imported (later, lazily), and
    # then logs a cluster's every step, down to a benign "Batched Comm Closed" traceback as
    # the workers shut down; its config, read at that import, keeps them at ERROR.
    os.environ.setdefault("DASK_DISTRIBUTED__LOGGING__DISTRIBUTED", "error")


def _check_inspect(args: argparse.Namespace, extra: list[str]) -> None:
    """The numbers and the report file of `lait inspect` (the corpus itself is checked as it is read)."""
    from pipeline import checks

    for flag in ("sample", "max_rows"):
        if getattr(args, flag) < 0:
            raise UsageError(f"--{flag} must be 0 or more, got {getattr(args, flag)}")
    if args.html:
        checks.output_file(args.html, "--html")


def _check_run(args: argparse.Namespace, extra: list[str]) -> None:
    from pipeline.options import check_run_args

    check_run_args(args)


# Checks for the commands whose modules do not make them themselves (yet): run before main.
CHECKS = {"run": _check_run, "inspect": _check_inspect}


def _unread_inputs(args: argparse.Namespace) -> str | None:
    """After `lait run`: a one-line summary when not one record could be read from any input file."""
    import json

    from pipeline.read_crawl import unread_inputs

    path = os.path.join(args.output or "", "_funnel.json")
    if "://" in path or not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return unread_inputs(json.load(f))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    configure_logging()
    parser, modules = build_parser()
    before, name, after = _split_command(argv, modules)
    if name in modules:
        known = option_strings(parser.command_parsers[name])
        if getattr(modules[name], "PASS_THROUGH", False):  # Beam's own flags, spelt as Beam spells them
            from pipeline.commands._runner import beam_flag_parser

            known += option_strings(beam_flag_parser())
        after = respell(after, known)
        argv = [*before, name, *after]
    try:
        args, extra = parser.parse_known_args(argv)
    except UsageError as error:  # a value out of its range (pipeline.checks.Number)
        parser.command_parsers.get(name, parser).error(str(error))
    if not args.command:
        parser.print_help()
        return 2
    module, command_parser = modules[args.command], parser.command_parsers[args.command]
    if extra and not getattr(module, "PASS_THROUGH", False):
        unknown = next((flag for flag in extra if flag.startswith("-")), extra[0])
        command_parser.error(f"unrecognized argument {unknown}"
                             + suggest(unknown, option_strings(command_parser)))
    try:
        if getattr(module, "PASS_THROUGH", False):
            from pipeline.commands._runner import check_beam_flags

            check_beam_flags(extra, args.command, option_strings(command_parser))
        check = getattr(module, "check", None) or CHECKS.get(args.command)
        if check:
            check(args, extra)
        status = module.main(args, extra) or 0
        if status == 0 and args.command == "run":
            problem = _unread_inputs(args)
            if problem:
                print(f"lait run: error: {problem}", file=sys.stderr)
                return 1
        return status
    except UsageError as error:
        print(f"lait {args.command}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run through the package module so `UsageError` is one class for the commands and for us.
    from pipeline.cli import main as package_main

    sys.exit(package_main())
