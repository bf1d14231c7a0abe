"""The `audiobook` console script. Each command group lives in its own module with `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that add sub-commands; each defines register(subparsers) and sets `func` on its parsers.
COMMAND_MODULES: list[str] = ["tasks.cli.book", "tasks.cli.preview", "tasks.cli.scaler", "tasks.cli.simulate",
                              "tasks.cli.voices", "tasks.cli.inspect", "tasks.cli.usage", "tasks.cli.fetch",
                              "tasks.cli.stack", "tasks.cli.doctor", "tasks.cli.deadletter", "tasks.cli.lifecycle"]


class CliError(Exception):
    """A user mistake: printed as one line, exit status 2, never a traceback."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line (and `-h` for the rest), like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="audiobook", description="Audiobook synthesis on autoscaled GPU workers")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"audiobook: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
