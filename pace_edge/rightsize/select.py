"""Which candidate ``pace-edge rightsize`` recommends, from validation accuracy and latency only.

* **Accuracy rule** (default): the best validation accuracy among the candidates is the
  reference; the candidate with the fewest multiply-adds whose validation accuracy is within
  ``max_drop_pp`` percentage points of it is chosen (same size: the more accurate, then the
  plain recipe over the distilled one).
* **Budget rule** (``budget_ms``): among candidates whose INT8 build's median latency at batch 1
  is at most the budget, the most accurate on validation (ties: fewer multiply-adds, then the
  faster).

Only candidates whose INT8 build passed the export's checks can be chosen (the recommendation
is something to deploy; the budget rule also needs it timed here); the reference of the
accuracy rule is the best of all candidates. Test accuracy never enters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .record import CandidateRecord

DEFAULT_MAX_DROP_PP = 0.5
_EPS = 1e-9


@dataclass(frozen=True)
class Choice:
    """The chosen candidate (``None`` when no candidate meets the rule) and why."""

    chosen: CandidateRecord | None
    rule: str
    reason: str


def within_drop(records: Sequence[CandidateRecord],
                max_drop_pp: float = DEFAULT_MAX_DROP_PP) -> Choice:
    """The accuracy rule (see the module docstring)."""
    rule = f"smallest within {max_drop_pp:g} pp of the best validation accuracy"
    if not records:
        return Choice(None, rule, "no candidates")
    best = max(records, key=lambda r: r.val_accuracy)
    floor = best.val_accuracy - max_drop_pp / 100.0
    eligible = [r for r in records if r.exported and r.val_accuracy >= floor - _EPS]
    if not eligible:
        return Choice(None, rule, f"no candidate whose INT8 build passed its checks is within "
                                  f"{max_drop_pp:g} pp of {best.name}'s "
                                  f"{best.val_accuracy:.2%}")
    chosen = min(eligible, key=lambda r: (r.multiply_adds, -r.val_accuracy, r.distilled,
                                          r.name))
    return Choice(chosen, rule,
                  f"{chosen.name}: validation {chosen.val_accuracy:.2%}, best "
                  f"{best.val_accuracy:.2%} ({best.name}); the smallest of "
                  f"{len(eligible)} within {max_drop_pp:g} pp")


def under_budget(records: Sequence[CandidateRecord], budget_ms: float,
                 batch: int = 1) -> Choice:
    """The budget rule (see the module docstring)."""
    rule = f"most accurate with INT8 p50 at batch {batch} within {budget_ms:g} ms"
    timed = [r for r in records if r.deployable and r.p50_ms(batch) is not None]
    fits = [r for r in timed if r.p50_ms(batch) <= budget_ms]  # type: ignore[operator]
    if not fits:
        fastest = min(timed, key=lambda r: r.p50_ms(batch), default=None)  # type: ignore
        hint = (f"; the fastest, {fastest.name}, took {fastest.p50_ms(batch):.3f} ms"
                if fastest is not None else "; no INT8 build passed and was timed")
        return Choice(None, rule, f"no candidate meets {budget_ms:g} ms{hint}")
    chosen = min(fits, key=lambda r: (-r.val_accuracy, r.multiply_adds, r.p50_ms(batch)))
    return Choice(chosen, rule,
                  f"{chosen.name}: validation {chosen.val_accuracy:.2%} at "
                  f"{chosen.p50_ms(batch):.3f} ms; {len(fits)} of {len(timed)} measured builds "
                  f"within {budget_ms:g} ms")


__all__ = ["DEFAULT_MAX_DROP_PP", "Choice", "under_budget", "within_drop"]
