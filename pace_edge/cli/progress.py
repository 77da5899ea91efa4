"""A progress bar over epochs (tqdm; quiet when stderr is not a terminal)."""

from __future__ import annotations

import sys
from typing import Any


class EpochBar:
    """Context manager whose ``update`` is a training ``on_epoch`` callback.

    Shows the selection run, then (when the recipe refits) the refit on all training data.
    """

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self._bar: Any = None
        self._phase = "select"
        self._last = 0

    def _open(self, total: int, desc: str) -> None:
        from tqdm import tqdm

        if self._bar is not None:
            self._bar.close()
        self._bar = tqdm(total=total, desc=desc, unit="epoch", file=sys.stderr, disable=None,
                         dynamic_ncols=True, leave=False)
        self._last = 0

    def __enter__(self) -> EpochBar:
        self._open(self.epochs, "select")
        return self

    def update(self, row: dict[str, Any]) -> None:
        phase = row.get("phase", "select")
        if phase != self._phase:
            self._phase = phase
            self._open(int(row.get("epochs", self.epochs)), phase)
        self._bar.update(row["epoch"] - self._last)
        self._last = row["epoch"]
        post = {"loss": f"{row['loss']:.3f}"}
        if phase == "select":
            post["val"] = f"{row['val_accuracy']:.3f}"
            post["best"] = f"{row['best_val_accuracy']:.3f}@{row['best_epoch']}"
        self._bar.set_postfix(post)

    def __exit__(self, *exc: object) -> None:
        self._bar.close()
