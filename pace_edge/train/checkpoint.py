"""Training state on disk, so that an interrupted run continues where it stopped.

The state is written at epoch boundaries (at most every ``every_s`` seconds, at the end of the
selection phase, and when a stop is requested), atomically: a new file replaces the old one
only once it is complete. It holds everything the rest of the run depends on (weights,
optimiser and schedule, every random generator, the best weights so far, the validation
history), so a resumed run trains exactly as an uninterrupted one would have.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import PaceEdgeError

STATE_FILE = "training-state.pt"
FORMAT = "pace-edge-training-state"
FORMAT_VERSION = 1


class TrainingInterrupted(Exception):
    """Training stopped at an epoch boundary on request; the state was saved (if ``path``)."""

    def __init__(self, stage: str, epoch: int, path: Path | None) -> None:
        where = f" to {path}" if path is not None else ""
        super().__init__(f"training stopped after {stage} epoch {epoch}; state saved{where}")
        self.stage, self.epoch, self.path = stage, epoch, path


def data_digest(x: np.ndarray, y: np.ndarray) -> str:
    """sha256 of spectra and labels: a resumed run must see the same data."""
    h = hashlib.sha256()
    for a in (np.ascontiguousarray(x), np.ascontiguousarray(y)):
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def state_path(directory: str | Path) -> Path:
    return Path(directory) / STATE_FILE


def _read(path: Path) -> dict[str, Any]:
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which, do not guess
        raise PaceEdgeError(f"{path}: not a readable training state ({exc})") from exc
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise PaceEdgeError(f"{path}: not a pace-edge training state")
    if saved.get("format_version") != FORMAT_VERSION:
        raise PaceEdgeError(f"{path}: training state version {saved.get('format_version')} "
                            f"is not supported (expected {FORMAT_VERSION})")
    return saved


def recorded_run(directory: str | Path) -> dict[str, Any]:
    """The description of the run whose state ``directory`` holds (what ``--resume`` reuses)."""
    return _read(state_path(directory))["run"]


class Checkpoint:
    """Where one training run keeps its state, and what identifies that run.

    ``run`` is a JSON-like description (recipe, model config, preprocessing, data digest and
    whatever the caller needs to restart it); :meth:`load` refuses a state recorded for a
    different run.
    """

    def __init__(self, directory: str | Path, run: dict[str, Any], every_s: float = 30.0):
        self.path = state_path(directory)
        self.run = run
        self.every_s = every_s
        self.state: dict[str, Any] | None = None  # what to resume from, after load()
        self._last_save = time.monotonic()

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self) -> dict[str, Any]:
        """Read the saved state into :attr:`state` after checking it belongs to this run."""
        saved = _read(self.path)
        recorded = saved["run"]
        for key in sorted(set(recorded) | set(self.run)):
            if recorded.get(key) != self.run.get(key):
                raise PaceEdgeError(
                    f"{self.path} was saved by a different run: its {key} was "
                    f"{_short(recorded.get(key))}, now {_short(self.run.get(key))}")
        self.state = saved["state"]
        return self.state

    def due(self) -> bool:
        return time.monotonic() - self._last_save >= self.every_s

    def save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "run": self.run,
                    "state": state}, tmp)
        os.replace(tmp, self.path)
        self._last_save = time.monotonic()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.path.with_name(self.path.name + ".tmp").unlink(missing_ok=True)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
