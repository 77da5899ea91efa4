"""Argument helpers, exit codes and model loading shared by sub-commands.

Exit codes of every command: :data:`EXIT_OK` (0), :data:`EXIT_FAILED` (1: a quality gate or
a measurement failed), :data:`EXIT_USER_ERROR` (2: bad input, option or file; a missing
optional package) and :data:`EXIT_INTERRUPTED` (130: Ctrl-C).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PaceEdgeError
from ..paths import writable_dir as writable_dir

if TYPE_CHECKING:
    from ..runtimes import Runner

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class QualityGateFailed(PaceEdgeError):
    """The command ran, but what it produced or measured failed a check (parity, an accuracy
    gate, every benchmark build): one line, exit status :data:`EXIT_FAILED`."""


def _whole(text: str, minimum: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _whole(text, 1, "a positive number")


def non_negative_int(text: str) -> int:
    return _whole(text, 0, "0 or more")


def non_negative(text: str) -> float:
    """A number, 0 or more."""
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def fraction(text: str) -> float:
    """A number strictly between 0 and 1."""
    value = _number(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {value}")
    return value


def unit_interval(text: str) -> float:
    """A number in [0, 1]."""
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value}")
    return value


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """``--model`` (an export or a bundle) and ``--backend``, as predict and evaluate take them."""
    p.add_argument("--model", required=True, type=Path,
                   help="export directory (pace-edge export; runs on ONNX Runtime or OpenVINO, "
                        "no torch needed) or model bundle (runs on PyTorch)")
    p.add_argument("--backend", default="auto",
                   help="auto (default), onnxruntime, openvino, tensorrt or torch")
    add_allow_failed(p)


def add_allow_failed(p: argparse.ArgumentParser) -> None:
    """``--allow-failed``: run an export whose manifest records a failed gate."""
    p.add_argument("--allow-failed", action="store_true",
                   help="run an export even though its manifest records a failed gate "
                        "(parity, accuracy or INT8 sensitivity); refused by default")


def open_model(path: Path, backend: str = "auto", allow_failed: bool = False) -> Runner:
    """A runner for an export or a bundle directory; a bundle without torch installed is
    refused with what to install or do instead."""
    from ..runtimes import load_runner
    from ..runtimes.select import package_available

    bundle = (path / "model.json").is_file() and not (path / "manifest.json").is_file()
    if bundle and backend in ("auto", "torch", "pytorch") and not package_available("torch"):
        raise PaceEdgeError(
            f"{path} is a model bundle, which runs on PyTorch (not installed): install the "
            "train extra (pip install 'pace-edge[train]'), or use an export of it "
            "(pace-edge export) on ONNX Runtime or OpenVINO"
        )
    return load_runner(path, backend=backend, allow_failed=allow_failed)
