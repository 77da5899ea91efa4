"""Argument helpers shared by sub-commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import PaceEdgeError


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {value}")
    return value


def writable_dir(path: Path, what: str = "output") -> Path:
    """Create ``path`` if needed; refuse a path that exists as a file."""
    if path.exists() and not path.is_dir():
        raise PaceEdgeError(f"{what} {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PaceEdgeError(f"cannot create {what} directory {path}: {exc.strerror}") from exc
    return path
