"""Which candidate ``pace-edge rightsize`` recommends, from validation accuracy and latency only.

* **Accuracy rule** (default): the best validation accuracy among the candidates is the
  reference; the candidate with the fewest multiply-adds whose validation accuracy is within
  ``max_drop_pp`` percentage points plus ``standard_errors`` standard errors of it is chosen;
  of two such with the same multiply-adds, the plain recipe over the distilled one (it needs
  no teacher), then the more accurate. The standard
  error is the best accuracy's, ``sqrt(p (1 - p) / n)`` on its ``n`` validation spectra: the
  one-standard-error rule (Breiman et al., *Classification and Regression Trees*, 1984;
  Hastie, Tibshirani and Friedman, *The Elements of Statistical Learning*, §7.10). One
  spectrum of a 67-spectrum validation split is 1.5 pp, so a rule of 0.5 pp alone asks every
  smaller model to tie the best exactly and picks between sizes by which spectra happened to
  land in validation; ``standard_errors=0`` is that strict rule.
* **Budget rule** (``budget_ms``): among candidates whose INT8 build's median latency at batch 1
  is at most the budget, the most accurate on validation (ties: fewer multiply-adds, then the
  faster).

Only candidates whose INT8 build passed the export's checks can be chosen (the recommendation
is something to deploy; the budget rule also needs it timed here); the reference of the
accuracy rule is the best of all candidates. Test accuracy never enters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .record import CandidateRecord

DEFAULT_MAX_DROP_PP = 0.5
DEFAULT_STANDARD_ERRORS = 1.0
_EPS = 1e-9


@dataclass(frozen=True)
class Choice:
    """The chosen candidate (``None`` when no candidate meets the rule) and why."""

    chosen: CandidateRecord | None
    rule: str
    reason: str


def standard_error(accuracy: float, spectra: int) -> float:
    """The standard error of an accuracy measured on ``spectra`` spectra (0 without any)."""
    if spectra <= 0:
        return 0.0
    return math.sqrt(max(accuracy * (1.0 - accuracy), 0.0) / spectra)


def within_drop(records: Sequence[CandidateRecord],
                max_drop_pp: float = DEFAULT_MAX_DROP_PP,
                standard_errors: float = DEFAULT_STANDARD_ERRORS) -> Choice:
    """The accuracy rule (see the module docstring)."""
    if not records:
        return Choice(None, _rule(max_drop_pp, standard_errors, 0.0), "no candidates")
    best = max(records, key=lambda r: r.val_accuracy)
    se = standard_error(best.val_accuracy, best.val_spectra)
    rule = _rule(max_drop_pp, standard_errors, se)
    margin = max_drop_pp / 100.0 + standard_errors * se
    floor = best.val_accuracy - margin
    eligible = [r for r in records if r.exported and r.val_accuracy >= floor - _EPS]
    within = f"{100 * margin:.2f} pp"
    if not eligible:
        return Choice(None, rule, f"no candidate whose INT8 build passed its checks is within "
                                  f"{within} of {best.name}'s {best.val_accuracy:.2%}")
    # the simplest within the tolerance: a difference inside it does not rank candidates
    chosen = min(eligible, key=lambda r: (r.multiply_adds, r.distilled, -r.val_accuracy,
                                          r.name))
    return Choice(chosen, rule,
                  f"{chosen.name}: validation {chosen.val_accuracy:.2%}, best "
                  f"{best.val_accuracy:.2%} ({best.name}); the smallest of "
                  f"{len(eligible)} within {within}")


def _rule(max_drop_pp: float, standard_errors: float, se: float) -> str:
    text = f"smallest within {max_drop_pp:g} pp"
    if standard_errors:
        text += (f" + {standard_errors:g} standard error{'s' if standard_errors != 1 else ''}"
                 f" ({100 * standard_errors * se:.2f} pp)")
    return text + " of the best validation accuracy"


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


__all__ = ["DEFAULT_MAX_DROP_PP", "DEFAULT_STANDARD_ERRORS", "Choice", "standard_error",
           "under_budget", "within_drop"]
