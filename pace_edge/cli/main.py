"""Entry point: builds the parser from the sub-command modules and turns user errors into
one line on stderr and the exit status of :mod:`.common` (0 ok, 1 a quality gate or failed
measurement, 2 a user error, 130 interrupted)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from .. import __version__
from ..errors import PaceEdgeError
from . import (
    benchmark,
    build_engine,
    build_native,
    demo,
    doctor,
    evaluate,
    export,
    fleet,
    info,
    keygen,
    predict,
    rightsize,
    simulate,
    stream,
    train,
)
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USER_ERROR, QualityGateFailed

COMMANDS = (demo, train, rightsize, evaluate, predict, info, export, build_engine, build_native,
            simulate, stream, fleet, benchmark, keygen, doctor)

# Optional packages -> the pip extra that brings them (see pyproject.toml).
EXTRAS = {
    "torch": "train",
    "matplotlib": "train",
    "onnx": "export",
    "onnxscript": "export",
    "onnxruntime": "device",
    "openvino": "device",
    "nncf": "openvino",
}
# torch is also in the export extra: the export command names that one.
EXTRAS_BY_COMMAND = {("export", "torch"): "export"}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``pace-edge CMD: error: …``) instead of the usage text."""

    commands: dict[str, argparse.ArgumentParser] = {}

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        """As argparse, but an unknown argument is reported by the sub-command's parser."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            where = self.commands.get(getattr(parsed, "command", None) or "", self)
            where.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


def _case_insensitive(parser: argparse.ArgumentParser) -> None:
    """Accept ``Jetson`` for ``jetson``: options whose choices are lower-case words."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                _case_insensitive(sub)
        elif (action.choices and action.type is None
              and all(isinstance(c, str) and c == c.lower() for c in action.choices)):
            action.type = str.lower


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="pace-edge",
        description="Train, evaluate and deploy PACE classifiers for Raman/IR spectra. Exit "
                    "status: 0 ok, 1 a quality gate or measurement failed, 2 a user error, "
                    "130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"pace-edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for module in COMMANDS:
        module.register(sub)
    parser.commands = dict(sub.choices)
    _case_insensitive(parser)
    return parser


def missing_package(exc: ModuleNotFoundError, command: str) -> str | None:
    """The one-line message for an optional package that is not installed, or ``None`` when
    ``exc`` is not about one (a real bug: let it raise)."""
    package = (exc.name or "").partition(".")[0]
    if package not in EXTRAS:
        return None
    extra = EXTRAS_BY_COMMAND.get((command, package), EXTRAS[package])
    hint = ""
    if package == "torch":
        hint = " (install PyTorch's CPU build first, see README)"
    return (f"this needs the {package} package, which is not installed: "
            f"pip install 'pace-edge[{extra}]'{hint}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    where = f"pace-edge {args.command}"
    try:
        return int(args.run(args) or 0)
    except QualityGateFailed as exc:
        print(f"{where}: failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except PaceEdgeError as exc:
        print(f"{where}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except ModuleNotFoundError as exc:
        message = missing_package(exc, args.command)
        if message is None:
            raise
        print(f"{where}: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{where}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`pace-edge predict … | head`)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
