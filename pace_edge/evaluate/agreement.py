"""How far two classifiers' predictions may differ, judged with the size of the set in mind.

On a small evaluation set one prediction is a large step (93 spectra: one flip = 1.08 pp), so a
fixed "at most 1 pp worse" refuses any single flip, while the set cannot tell a model that flips
1 % of spectra from one that flips none. :class:`AgreementGate` judges the *disagreement* rate of
a quantised model with its FP32 reference (the share of spectra whose predicted class differs; an
accuracy drop can never exceed it) with exact binomial (Clopper–Pearson) bounds:

* the gate **fails** when the one-sided lower confidence bound on the disagreement rate is above
  the limit, i.e. the set shows, at that confidence, that the model disagrees more often than
  allowed;
* :meth:`AgreementGate.resolution` says what the set can and cannot resolve: the size of one
  flip, how many flips fail, the smallest true disagreement rate caught with that probability,
  and how much disagreement a result with no flips still leaves possible.

:func:`mcnemar_worse` adds the exact one-sided McNemar (sign) test on the discordant pairs with
labels: is the quantised model less accurate than FP32 at all?
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from scipy import stats

DEFAULT_CONFIDENCE = 0.95


def lower_bound(k: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """One-sided exact (Clopper–Pearson) lower confidence bound of a rate with ``k`` of ``n``."""
    _check(k, n, confidence)
    return 0.0 if k == 0 else float(stats.beta.ppf(1.0 - confidence, k, n - k + 1))


def upper_bound(k: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """One-sided exact (Clopper–Pearson) upper confidence bound of a rate with ``k`` of ``n``."""
    _check(k, n, confidence)
    return 1.0 if k == n else float(stats.beta.ppf(confidence, k + 1, n - k))


def _check(k: int, n: int, confidence: float) -> None:
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def max_passing_flips(n: int, limit: float, confidence: float = DEFAULT_CONFIDENCE) -> int:
    """The most flips among ``n`` spectra whose lower bound stays within ``limit`` (a rate)."""
    k = 0
    while k < n and lower_bound(k + 1, n, confidence) <= limit:
        k += 1
    return k


def detectable_rate(n: int, limit: float, confidence: float = DEFAULT_CONFIDENCE) -> float | None:
    """The smallest true disagreement rate the gate fails with probability ``confidence``
    (``None`` when ``n`` spectra can never fail it)."""
    fail_at = max_passing_flips(n, limit, confidence) + 1
    if fail_at > n:
        return None
    lo, hi = 0.0, 1.0
    for _ in range(60):  # P(Binomial(n, p) >= fail_at) rises with p: bisect it
        mid = (lo + hi) / 2
        if stats.binom.sf(fail_at - 1, n, mid) >= confidence:
            hi = mid
        else:
            lo = mid
    return hi


def mcnemar_worse(reference_only: int, candidate_only: int) -> float:
    """Exact one-sided McNemar p-value that the candidate is less accurate than the reference:
    of the discordant spectra, ``reference_only`` only the reference classified right and
    ``candidate_only`` only the candidate; under equal accuracy each is a fair coin."""
    m = reference_only + candidate_only
    return 1.0 if m == 0 else float(stats.binom.sf(reference_only - 1, m, 0.5))


@dataclass(frozen=True)
class AgreementGate:
    """``flips`` of ``spectra`` predictions differ from the reference; ``limit`` is the allowed
    disagreement rate (0.01 = 1 pp); judged at ``confidence``."""

    spectra: int
    flips: int
    limit: float
    confidence: float = DEFAULT_CONFIDENCE

    def __post_init__(self) -> None:
        _check(self.flips, self.spectra, self.confidence)
        if not self.limit < 1.0:  # a negative limit fails every set (a strict test setting)
            raise ValueError(f"limit must be a rate below 1, got {self.limit}")

    @property
    def agreement(self) -> float:
        return 1.0 - self.flips / self.spectra if self.spectra else 1.0

    @property
    def disagreement_lower(self) -> float:
        """Lower confidence bound on the true disagreement rate (0 with no spectra)."""
        return lower_bound(self.flips, self.spectra, self.confidence) if self.spectra else 0.0

    @property
    def disagreement_upper(self) -> float:
        """Upper confidence bound on the true disagreement rate (1 with no spectra)."""
        return upper_bound(self.flips, self.spectra, self.confidence) if self.spectra else 1.0

    @property
    def passed(self) -> bool:
        """False when the set shows the disagreement exceeds :attr:`limit`."""
        return self.disagreement_lower <= self.limit

    def resolution(self) -> dict[str, Any]:
        """What a set of this size can and cannot resolve at this limit and confidence."""
        n = self.spectra
        if n == 0:
            return {"flip_pp": None, "max_passing_flips": 0, "detectable_pp": None,
                    "zero_flip_upper_pp": 100.0}
        detectable = detectable_rate(n, self.limit, self.confidence)
        return {
            "flip_pp": 100.0 / n,
            "max_passing_flips": max_passing_flips(n, self.limit, self.confidence),
            "detectable_pp": None if detectable is None else 100.0 * detectable,
            "zero_flip_upper_pp": 100.0 * upper_bound(0, n, self.confidence),
        }

    def describe_resolution(self) -> str:
        """One sentence: e.g. "93 spectra: one flip = 1.08 pp; …"."""
        r = self.resolution()
        conf = f"{self.confidence:.0%}"
        if self.spectra == 0:
            return "no spectra: the set resolves nothing"
        fails = (f"the gate fails at ≥ {r['max_passing_flips'] + 1} flips"
                 if r["detectable_pp"] is not None else "no number of flips can fail the gate")
        caught = ("" if r["detectable_pp"] is None else
                  f"; it catches a true disagreement of ≥ {r['detectable_pp']:.2f} pp with "
                  f"{conf} probability")
        return (f"{self.spectra} spectra: one flip = {r['flip_pp']:.2f} pp; {fails}{caught}; "
                f"with no flips the true disagreement may still be up to "
                f"{r['zero_flip_upper_pp']:.2f} pp ({conf} upper bound), so smaller differences "
                "are beyond this set")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "agreement": self.agreement,
                "disagreement_lower": self.disagreement_lower,
                "disagreement_upper": self.disagreement_upper, "passed": self.passed,
                "resolution": self.resolution()}


__all__ = [
    "DEFAULT_CONFIDENCE",
    "AgreementGate",
    "detectable_rate",
    "lower_bound",
    "max_passing_flips",
    "mcnemar_worse",
    "upper_bound",
]
