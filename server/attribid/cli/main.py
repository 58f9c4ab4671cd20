"""The `attribid` command: one entry point, one module per subcommand.

Each subcommand is a module of attribid.cli with ``add_arguments(parser)`` and
``run(args) -> int``; the first line of its docstring is its one-line help. A
module is imported only when its subcommand runs (``attribid --help`` reads the
docstrings without importing them), so `attribid serve` never imports PyTorch.

Every failure is one line on stderr, ``attribid COMMAND: <message naming the input>``:
a command raises attribid.cli.CommandError, whose code is one of attribid.cli's
OK, FAILED, BAD_INPUT, INFEASIBLE.

Exit codes:
  0  success
  1  the command ran and failed (the server is unreachable or refused the call, the
     server cannot start, an optional dependency such as PyTorch is missing)
  2  usage error or bad input: a flag, a file (named with its line and column), a spec field
  3  a well-formed allocation spec that no allocation satisfies (names the constraint)
"""
from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import NoReturn, Protocol, Sequence, cast

from attribid.cli import BAD_INPUT, CommandError

#: subcommand -> module implementing it
COMMANDS: dict[str, str] = {
    "serve": "attribid.cli.serve",
    "score": "attribid.cli.score",
    "simulate": "attribid.cli.simulate",
    "train": "attribid.cli.train",
    "train-shipped": "attribid.cli.train_shipped",
    "quantize": "attribid.cli.quantize",
    "attribute": "attribid.cli.attribute",
    "paths": "attribid.cli.paths",
    "privacy": "attribid.cli.privacy",
    "importance": "attribid.cli.importance",
    "evaluate": "attribid.cli.evaluate",
    "allocate": "attribid.cli.allocate",
    "pareto": "attribid.cli.pareto",
    "market-sim": "attribid.cli.market_sim",
}


class Command(Protocol):
    """What a subcommand module provides."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


class Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors read ``attribid COMMAND: message`` (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(BAD_INPUT, f"{self.prog}: {message}\n")


def summary(name: str) -> str:
    """The one-line help of a subcommand: its module docstring's first line, read unimported.

    >>> summary("simulate")
    'write simulated journeys with their true channel credit'
    """
    spec = importlib.util.find_spec(COMMANDS[name])
    if spec is None or spec.origin is None:
        raise LookupError(f"command {name!r}: module {COMMANDS[name]} not found")
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8")))
    return (doc or name).splitlines()[0]


def version() -> str:
    """The installed distribution's version, e.g. ``0.1.0``."""
    from importlib.metadata import PackageNotFoundError, version as dist_version

    try:
        return dist_version("attribid")
    except PackageNotFoundError:
        return "unknown (not installed)"


def top_parser() -> Parser:
    """``attribid`` itself: the command list, --help and --version."""
    top = Parser(prog="attribid", description=(__doc__ or "").splitlines()[0], epilog=_exit_codes(),
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="version", version=f"attribid {version()}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        # argparse %-formats help strings
        sub.add_parser(name, help=summary(name).replace("%", "%%"), add_help=False)
    return top


def command_parser(name: str, command: Command) -> Parser:
    """The parser of ``attribid NAME``, with the flags its module adds."""
    parser = Parser(prog=f"attribid {name}", description=summary(name))
    command.add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``attribid ARGV...``; returns the exit code (see the module docstring).

    >>> main(["simulate", "--journeys", "0", "--out", "unused"])
    2
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        top = top_parser()
        try:
            if argv:
                _parse(top, argv)  # --help and --version exit 0; anything else is a usage error
        except _Exit as exc:
            return exc.code
        top.print_help(sys.stderr)
        return BAD_INPUT
    name = argv[0]
    command = cast(Command, importlib.import_module(COMMANDS[name]))
    try:
        args = _parse(command_parser(name, command), argv[1:])
        return int(command.run(args) or 0)
    except CommandError as exc:
        sys.stdout.flush()
        print(f"attribid {name}: {exc}", file=sys.stderr, flush=True)
        return exc.code
    except _Exit as exc:
        return exc.code


class _Exit(Exception):
    """argparse finished the command (--help, or a usage error) with this exit code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    # argparse exits for --help, --version and usage errors; main returns the code instead
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:
        raise _Exit(exc.code if isinstance(exc.code, int) else BAD_INPUT) from None


def _exit_codes() -> str:
    """The exit-code table of this module's docstring, for the --help epilog."""
    doc = __doc__ or ""
    return doc[doc.index("Exit codes:"):].rstrip() if "Exit codes:" in doc else ""


if __name__ == "__main__":
    raise SystemExit(main())
