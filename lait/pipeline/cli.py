"""The `lait` command line: one sub-command per module in `lait/pipeline/commands/`.

Each command module defines `NAME`, `HELP`, `add_arguments(parser)` and `main(args, extra)`;
modules that accept Beam flags set `PASS_THROUGH = True` and receive the unknown flags in
`extra`. A user's mistake (a bad value, path or flag) is one line on stderr and exit status 2,
before any work starts; `--min-image-side` and `--min_image_side` are one flag. A run that
could read not one record from its inputs ends with one line and exit status 1.

Every command also takes `-q` (no progress, no notes: results, warnings and errors only), `-v`
(third-party libraries' INFO logs too) and `--config FILE`: a YAML or TOML file whose keys are
the command's option names (either spelling; a section named after the command applies to it
alone), under the flags given on the command line. `lait --version` prints the version.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import pkgutil
import sys

from lait import progress, storage
from lait.errors import UsageError  # raised by every layer; kept importable from here for the CLI's callers
from lait.pipeline import commands


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
            found.append(importlib.import_module(f"lait.pipeline.commands.{info.name}"))
    return sorted(found, key=lambda m: getattr(m, "ORDER", 100))


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = ArgumentParser(
        prog="lait",
        description="Turn web crawls (WARC/ARC) into a clean image-text corpus, the way ImageBERT built LAIT, "
        "and pre-train ImageBERT on it.",
        epilog="Run 'lait COMMAND --help' for a command's options; every --flag_name may also be "
        "spelt --flag-name.",
    )
    from lait.pipeline.checks import name_numbers

    parser.add_argument("--version", action="version", version=f"lait {version()}")
    add_common_arguments(parser, 0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    parser.command_parsers = {}
    for module in _command_modules():
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        add_common_arguments(command, argparse.SUPPRESS)
        name_numbers(command)
        modules[module.NAME] = module
        parser.command_parsers[module.NAME] = command
    return parser, modules


def version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("lait")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def add_common_arguments(parser: argparse.ArgumentParser, default) -> None:
    """-q, -v and --config, for `lait` itself and every command (`default` SUPPRESS in a command's
    parser, so that `lait -v run` keeps the -v given before the command)."""
    group = parser.add_argument_group("output and configuration")
    group.add_argument("-q", "--quiet", action="count", default=default,
                       help="no progress display and no notes: results, warnings and errors only")
    group.add_argument("-v", "--verbose", action="count", default=default,
                       help="more detail: third-party libraries' INFO logs (Beam, dask, ...) too")
    group.add_argument("--config", metavar="FILE",
                       help="YAML or TOML file of option values, keyed by option name (flags on the command line "
                       "win); a section named after the command applies to it alone")


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
        if position and argv[position - 1] == "--config":
            continue  # the file of `lait --config FILE COMMAND`
        if not token.startswith("-"):
            name = token if token in choices else token.replace("_", "-")
            return argv[:position], name if name in choices else token, argv[position + 1:]
    return argv, None, []


ENV_VERBOSITY = "LAIT_VERBOSITY"  # handed to worker processes (a local Dask cluster's, Beam's)
NOISY = ("distributed", "apache_beam", "absl", "tensorboard", "torch", "urllib3", "fsspec", "datasets")


def configure_logging(verbosity: int | None = None) -> None:
    """Our loggers at INFO (WARNING with -q, DEBUG with -v), everyone else's at ERROR (INFO with -v).

    Run first in `lait` and in each local Dask worker (which reads the level from the environment).
    """
    if verbosity is None:
        verbosity = int(os.environ.get(ENV_VERBOSITY, progress.NORMAL))
    os.environ[ENV_VERBOSITY] = str(verbosity)
    progress.set_verbosity(verbosity)
    verbose = verbosity >= progress.VERBOSE
    others = logging.INFO if verbose else logging.ERROR
    # Beam logs chatty warnings on the root logger (e.g. about optional GCP clients) at import.
    logging.basicConfig(level=others, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(others)
    ours = {progress.QUIET: logging.WARNING, progress.NORMAL: logging.INFO}.get(verbosity, logging.DEBUG)
    for name in ("pipeline", "filters", "scoring", "imagebert"):
        logging.getLogger(name).setLevel(ours)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(others)
    # Beam's multi-processing workers (lait/pipeline/beam_worker.py).
    os.environ["LAIT_WORKER_LOG_LEVEL"] = "INFO" if verbose else "ERROR"
    # dask.distributed sets its own loggers to INFO when it is imported (later, lazily), and
    # then logs a cluster's every step, down to a benign "Batched Comm Closed" traceback as
    # the workers shut down; its config, read at that import, keeps them at ERROR.
    os.environ.setdefault("DASK_DISTRIBUTED__LOGGING__DISTRIBUTED", "info" if verbose else "error")


def _check_inspect(args: argparse.Namespace, extra: list[str]) -> None:
    """The numbers and the report file of `lait inspect` (the corpus itself is checked as it is read)."""
    from lait.pipeline import checks

    for flag in ("sample", "max_rows"):
        if getattr(args, flag) < 0:
            raise UsageError(f"--{flag} must be 0 or more, got {getattr(args, flag)}")
    if args.html:
        checks.output_file(args.html, "--html")


def _check_run(args: argparse.Namespace, extra: list[str]) -> None:
    from lait.pipeline.options import check_run_args

    check_run_args(args)


# Checks for the commands whose modules do not make them themselves (yet): run before main.
CHECKS = {"run": _check_run, "inspect": _check_inspect}


def _unread_inputs(args: argparse.Namespace) -> str | None:
    """After `lait run`: a one-line summary when not one record could be read from any input file."""
    import json

    from lait.pipeline.read_crawl import unread_inputs

    path = os.path.join(args.output or "", "_funnel.json")
    if storage.is_url(path) or not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return unread_inputs(json.load(f))


def verbosity_of(argv: list[str]) -> int:
    """-q and -v counted in `argv` (before any `--`): NORMAL, less one per -q, plus one per -v."""
    level = progress.NORMAL
    for token in argv:
        if token == "--":
            break
        if token in ("--quiet", "--verbose"):
            level += 1 if token == "--verbose" else -1
        elif len(token) > 1 and token[0] == "-" and token[1] != "-" and set(token[1:]) <= {"q", "v"}:
            level += token.count("v") - token.count("q")
    return max(progress.QUIET, min(progress.VERBOSE, level))


def take_config(argv: list[str]) -> tuple[list[str], str | None]:
    """`argv` without `--config FILE` (or `--config=FILE`), and FILE (the last one given)."""
    out, path, tokens = [], None, iter(range(len(argv)))
    for i in tokens:
        token = argv[i]
        if token == "--":
            return out + argv[i:], path
        if token == "--config":
            if i + 1 >= len(argv):
                raise UsageError("--config needs a FILE (YAML or TOML)")
            path = argv[i + 1]
            next(tokens, None)
        elif token.startswith("--config="):
            path = token.split("=", 1)[1]
        else:
            out.append(token)
    return out, path


def read_bytes(path: str, what: str) -> bytes:
    """The bytes of the file at `path`; a UsageError "WHAT: why" when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as error:
        raise UsageError(f"{what}: {error.strerror or error}") from None


def read_config(path: str) -> dict:
    """The mapping of a YAML (.yaml, .yml, .json) or TOML (.toml) file; UsageError naming the problem."""
    data = read_bytes(path, f"--config {path}")
    try:
        if path.lower().endswith(".toml"):
            import tomllib

            config = tomllib.loads(data.decode("utf-8"))
        else:
            import yaml

            config = yaml.safe_load(data)
    except Exception as error:  # noqa: BLE001 - yaml/toml/unicode errors: one line naming the file
        raise UsageError(f"--config {path}: not valid {'TOML' if path.lower().endswith('.toml') else 'YAML'}: "
                         f"{one_line(error)}") from None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise UsageError(f"--config {path}: wants a mapping of option names to values, got a {type(config).__name__}")
    return config


def _config_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _flatten(mapping: dict, prefix: str = "") -> list[str]:
    """`{"tasks": {"mlm_prob": 0.2}}` -> ["tasks.mlm_prob=0.2"] (for --set)."""
    out = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            out += _flatten(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={_config_value(value)}")
    return out


def config_tokens(config: dict, command: str, parsers: list[argparse.ArgumentParser], given: list[str],
                  commands: list[str], path: str) -> tuple[list[str], list[str]]:
    """Command-line tokens for the values of a config file: (to put first, to put last).

    Keys are option names in either spelling; a key that is a command's name holds a section for
    that command (this command's section wins over the top level; other commands' are skipped).
    A flag `given` on the command line keeps its value, except lists of --set-like flags, which add.
    Flags that take several values go last, so that they cannot swallow an argument.
    """
    values = {key: value for key, value in config.items()
              if not (key in commands or key.replace("_", "-") in commands)}
    section = config.get(command, config.get(command.replace("-", "_")))
    if isinstance(section, dict):
        values.update(section)
    actions = {}
    for parser in parsers:
        for action in parser._actions:
            for option in action.option_strings:
                if option.startswith("--"):
                    actions.setdefault(_key(option), (option, action))
    given_keys = {_key(token.split("=", 1)[0]) for token in given if token.startswith("--")}
    first, last = [], []
    for key, value in values.items():
        name = _key(str(key))
        if name in ("config", "help", "version"):
            raise UsageError(f"--config {path}: {key!r} cannot be set in a config file")
        if name not in actions:
            raise UsageError(f"--config {path}: unknown option {key!r} for 'lait {command}'"
                             + suggest(f"--{name}", [option for option, _ in actions.values()]))
        option, action = actions[name]
        appends = isinstance(action, argparse._AppendAction)
        if value is None or (name in given_keys and not appends):
            continue
        if isinstance(action, argparse._CountAction):
            if value is True or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
                first += [option] * (1 if value is True else value)
            continue
        if action.nargs == 0:  # store_true / store_false / store_const
            if not isinstance(value, bool):
                raise UsageError(f"--config {path}: {key} is a switch: give true or false, got {value!r}")
            if value:
                first.append(option)
            continue
        if appends:
            items = _flatten(value) if isinstance(value, dict) else value if isinstance(value, list) else [value]
            first += [f"{option}={_config_value(item)}" for item in items]
        elif action.nargs in ("+", "*") or isinstance(action.nargs, int):
            items = value if isinstance(value, list) else [value]
            last += [option, *map(_config_value, items)]
        elif isinstance(value, list | dict):
            raise UsageError(f"--config {path}: {key} takes one value, got {value!r}")
        else:
            first.append(f"{option}={_config_value(value)}")
    return first, last


def _with_config(argv: list[str], before: list[str], name: str, after: list[str], modules: dict, parser) -> list[str]:
    """`argv` with the values of the --config file (if any) spliced in around the user's tokens."""
    before, path_before = take_config(before)
    after, path_after = take_config(after)
    path = path_after or path_before
    if path is None:
        return [*before, name, *after]
    config = read_config(path)
    parsers = [parser.command_parsers[name]]
    if getattr(modules[name], "PASS_THROUGH", False):
        from lait.pipeline.commands._runner import beam_flag_parser

        parsers.append(beam_flag_parser())
    head, tail = config_tokens(config, name, parsers, [*before, *after], list(modules), path)
    cut = after.index("--") if "--" in after else len(after)
    return [*before, name, *head, *after[:cut], *tail, *after[cut:]]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    configure_logging(verbosity_of(argv))
    parser, modules = build_parser()
    before, name, after = _split_command(argv, modules)
    if name in modules:
        known = option_strings(parser.command_parsers[name])
        if getattr(modules[name], "PASS_THROUGH", False):  # Beam's own flags, spelt as Beam spells them
            from lait.pipeline.commands._runner import beam_flag_parser

            known += option_strings(beam_flag_parser())
        after = respell(after, known)
        try:
            argv = _with_config(argv, before, name, after, modules, parser)
        except UsageError as error:
            parser.command_parsers[name].error(str(error))
    try:
        args, extra = parser.parse_known_args(argv)
    except UsageError as error:  # a value out of its range (lait.pipeline.checks.Number)
        parser.command_parsers.get(name, parser).error(str(error))
    if not args.command:
        parser.print_help()
        return 2
    configure_logging(max(progress.QUIET, min(progress.VERBOSE, progress.NORMAL - args.quiet + args.verbose)))
    module, command_parser = modules[args.command], parser.command_parsers[args.command]
    if extra and not getattr(module, "PASS_THROUGH", False):
        unknown = next((flag for flag in extra if flag.startswith("-")), extra[0])
        command_parser.error(f"unrecognized argument {unknown}"
                             + suggest(unknown, option_strings(command_parser)))
    try:
        if getattr(module, "PASS_THROUGH", False):
            from lait.pipeline.commands._runner import check_beam_flags

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
    from lait.pipeline.cli import main as package_main

    sys.exit(package_main())
