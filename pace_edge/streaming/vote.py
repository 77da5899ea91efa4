"""A verdict over N consecutive accepted spectra of one sample (``pace-edge stream --vote N``).

:class:`Voter` sits between the stream and its output: every record passes through unchanged,
and after every ``n`` spectra that were classified *and accepted* it writes one more record::

    {"time": ..., "vote": "COVID-19", "votes": {"COVID-19": 4, "Healthy": 1}, "tied": [],
     "spectra": 5, "seq": [101, 107], "window": 3, "complete": true}

Rejected frames (``"rejected"`` records) and refused spectra (``"accepted": false``) do not
vote. A tie between classes gives ``"vote": null`` and the tied classes in ``"tied"``, never a
coin toss. The stream does not know where one sample ends and the next begins: the windows are
consecutive runs of ``n`` accepted spectra, so ``n`` should be the number of spectra taken of
each sample (with the stream started at a sample's first spectrum). When the stream stops
mid-window, :meth:`Voter.flush` writes the partial window with ``"complete": false``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

Emit = Callable[[dict[str, Any]], None]


def votes_for(record: dict[str, Any]) -> bool:
    """Whether ``record`` is a classified spectrum the model accepted (it then votes)."""
    return "class" in record and record.get("accepted", True) is not False


class Voter:
    """Forward records to ``emit``; after every ``n`` accepted spectra, emit their vote."""

    def __init__(self, emit: Emit, n: int) -> None:
        if n < 1:
            raise ValueError(f"a vote needs at least 1 spectrum, got {n}")
        self.emit, self.n = emit, n
        self.windows = 0
        self.verdicts: Counter[str] = Counter()
        self.ties = 0
        self._window: list[tuple[Any, str]] = []
        self._lock = threading.Lock()

    def __call__(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.emit(record)
            if not votes_for(record):
                return
            self._window.append((record.get("seq"), str(record["class"])))
            if len(self._window) == self.n:
                self._vote(complete=True)

    def flush(self) -> None:
        """Emit the vote of a partial window (``"complete": false``), if spectra are waiting."""
        with self._lock:
            if self._window:
                self._vote(complete=False)

    def _vote(self, complete: bool) -> None:
        counts = Counter(label for _, label in self._window)
        top = max(counts.values())
        leaders = sorted(c for c, k in counts.items() if k == top)
        verdict = leaders[0] if len(leaders) == 1 else None
        self.windows += 1
        if verdict is None:
            self.ties += 1
        else:
            self.verdicts[verdict] += 1
        self.emit({
            "time": time.time(),
            "vote": verdict,
            "votes": dict(counts.most_common()),
            "tied": leaders if verdict is None else [],
            "spectra": len(self._window),
            "seq": [self._window[0][0], self._window[-1][0]],
            "window": self.windows,
            "complete": complete,
        })
        self._window = []

    def summary_text(self) -> str:
        """One line for the exit summary: verdicts per class and ties."""
        verdicts = ", ".join(f"{c} {k}" for c, k in self.verdicts.most_common()) or "none"
        return (f"votes over {self.n} accepted spectra: {self.windows} "
                f"({verdicts}; {self.ties} tied)")
