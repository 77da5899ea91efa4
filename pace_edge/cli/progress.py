"""A progress bar over epochs (tqdm; quiet when stderr is not a terminal)."""

from __future__ import annotations

import sys
from typing import Any


class EpochBar:
    """Context manager whose ``update`` is a training ``on_epoch`` callback."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self._bar: Any = None
        self._last = 0

    def __enter__(self) -> EpochBar:
        from tqdm import tqdm

        self._bar = tqdm(total=self.epochs, unit="epoch", file=sys.stderr, disable=None,
                         dynamic_ncols=True, leave=False)
        return self

    def update(self, row: dict[str, Any]) -> None:
        self._bar.update(row["epoch"] - self._last)
        self._last = row["epoch"]
        self._bar.set_postfix(loss=f"{row['loss']:.3f}", val=f"{row['val_accuracy']:.3f}",
                              best=f"{row['best_val_accuracy']:.3f}@{row['best_epoch']}")

    def __exit__(self, *exc: object) -> None:
        self._bar.close()
