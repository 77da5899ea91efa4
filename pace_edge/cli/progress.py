"""Training progress: a bar on a terminal, one line every few seconds elsewhere.

:class:`TrainingProgress` is a training ``on_epoch`` callback. It follows the phases the trainer
reports (selection, k-fold selection, refit, precise BatchNorm) and shows for each the epoch,
training loss, validation accuracy (while selecting, with the best so far), time elapsed since
training started and the estimated time left in the phase.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def clock(seconds: float) -> str:
    """``75`` -> ``"1:15"``, ``3725`` -> ``"1:02:05"``."""
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class TrainingProgress:
    """Context manager whose :meth:`update` receives the trainer's per-epoch rows.

    ``stream`` (default stderr) decides the form: a tqdm bar per phase when it is a terminal,
    otherwise a plain line at most every ``interval`` seconds and at the end of each phase.
    ``quiet`` prints nothing. ``elapsed_before`` is training time spent before a resume.
    """

    def __init__(self, quiet: bool = False, stream: TextIO | None = None,
                 interval: float = 5.0, now: Any = time.monotonic,
                 elapsed_before: float = 0.0) -> None:
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self._now = now
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar: Any = None
        self._phase: str | None = None
        self._start = now() - elapsed_before
        self._phase_start = self._start
        self._phase_first = 0
        self._last_row = now()
        self._last_line = -float("inf")
        self._pending: str | None = None

    def __enter__(self) -> TrainingProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._end_phase()

    def update(self, row: dict[str, Any]) -> None:
        if self.quiet:
            return
        phase, epoch, total = row["phase"], int(row["epoch"]), int(row["epochs"])
        now = self._now()
        last_row, self._last_row = self._last_row, now
        first = phase != self._phase
        if first:
            self._end_phase()
            # the phase began when the previous one ended (or training started)
            self._phase, self._phase_start, self._phase_first = phase, last_row, epoch - 1
            if self._tty:
                from tqdm import tqdm

                self._bar = tqdm(total=total, initial=epoch - 1, desc=phase, file=self.stream,
                                 unit="chunk" if phase == "precise-bn" else "epoch",
                                 dynamic_ncols=True, leave=True)
        if self._bar is not None:
            self._bar.update(epoch - self._bar.n)
            self._bar.set_postfix_str(self._metrics(row), refresh=True)
            return
        done = epoch - self._phase_first
        left = (now - self._phase_start) / done * (total - epoch) if done > 0 else 0.0
        line = (f"{phase} {epoch}/{total}" + (f"  {self._metrics(row)}" if "loss" in row else "")
                + f"  elapsed {clock(now - self._start)}, ~{clock(left)} left in {phase}")
        if first or epoch >= total or now - self._last_line >= self.interval:
            self._write(line, now)
        else:
            self._pending = line

    @staticmethod
    def _metrics(row: dict[str, Any]) -> str:
        if "loss" not in row:
            return ""
        text = f"loss {row['loss']:.3f}"
        if "val_accuracy" in row:
            text += f"  val {row['val_accuracy']:.1%}"
        if "best_val_accuracy" in row:
            text += f" (best {row['best_val_accuracy']:.1%} @{row['best_epoch']})"
        return text

    def _write(self, line: str, now: float) -> None:
        print(line, file=self.stream, flush=True)
        self._last_line, self._pending = now, None

    def _end_phase(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._pending is not None:  # a phase cut short (patience, stop): say where
            self._write(self._pending, self._now())
