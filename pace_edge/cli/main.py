"""Entry point: builds the parser from the sub-command modules and turns user errors into
one line on stderr and a non-zero exit status."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import PaceEdgeError
from . import (
    benchmark,
    build_engine,
    demo,
    evaluate,
    export,
    fleet,
    info,
    predict,
    simulate,
    stream,
    train,
)

COMMANDS = (demo, train, evaluate, predict, info, export, build_engine, simulate, stream,
            fleet, benchmark)

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pace-edge",
        description="Train, evaluate and deploy PACE classifiers for Raman/IR spectra.",
    )
    parser.add_argument("--version", action="version", version=f"pace-edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except PaceEdgeError as exc:
        print(f"pace-edge {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"pace-edge {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
