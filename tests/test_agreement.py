"""The statistical accuracy gate: FP32-vs-quantised disagreement with exact binomial bounds."""

import math

import pytest

from pace_edge.evaluate.agreement import (
    AgreementGate,
    detectable_rate,
    lower_bound,
    max_passing_flips,
    mcnemar_worse,
    upper_bound,
)


def test_bounds_match_their_closed_forms():
    # One-sided Clopper–Pearson: k = 0 gives 1 - alpha**(1/n) above, k = 1 gives
    # 1 - (1 - alpha)**(1/n) below.
    assert upper_bound(0, 93) == pytest.approx(1 - 0.05 ** (1 / 93), rel=1e-9)
    assert lower_bound(1, 93) == pytest.approx(1 - 0.95 ** (1 / 93), rel=1e-9)
    assert lower_bound(0, 93) == 0.0 and upper_bound(93, 93) == 1.0
    for k in (0, 5, 50, 93):
        assert lower_bound(k, 93) <= k / 93 <= upper_bound(k, 93)
    with pytest.raises(ValueError):
        lower_bound(5, 4)


@pytest.mark.parametrize(("flips", "passed"), [(0, True), (1, True), (3, True), (4, False),
                                               (12, False)])
def test_gate_on_cov_sized_set_does_not_refuse_a_single_flip(flips, passed):
    gate = AgreementGate(spectra=93, flips=flips, limit=0.01)
    assert gate.passed is passed
    assert gate.agreement == pytest.approx(1 - flips / 93)
    row = gate.to_dict()
    assert row["passed"] is passed and row["resolution"]["max_passing_flips"] == 3


def test_gate_with_no_spectra_or_one_spectrum():
    empty = AgreementGate(spectra=0, flips=0, limit=0.01)
    assert empty.passed and empty.disagreement_upper == 1.0
    assert empty.describe_resolution() == "no spectra: the set resolves nothing"
    one_right = AgreementGate(spectra=1, flips=0, limit=0.01)
    one_wrong = AgreementGate(spectra=1, flips=1, limit=0.01)
    assert one_right.passed and not one_wrong.passed  # lower bound 5 % > 1 %


def test_resolution_says_what_the_set_can_and_cannot_resolve():
    gate = AgreementGate(spectra=93, flips=0, limit=0.01)
    text = gate.describe_resolution()
    assert text.startswith("93 spectra: one flip = 1.08 pp; the gate fails at ≥ 4 flips")
    assert "up to 3.17 pp" in text
    detectable = gate.resolution()["detectable_pp"]
    # at that true rate the gate fails (>= 4 flips) with 95 % probability, not below it
    from scipy import stats

    assert stats.binom.sf(3, 93, detectable / 100) == pytest.approx(0.95, abs=1e-6)
    assert 4 / 93 * 100 < detectable < 20
    # a larger set resolves finer differences
    assert detectable_rate(2000, 0.01) < detectable / 100
    assert max_passing_flips(2000, 0.01) > 3


def test_mcnemar_worse_is_the_exact_sign_test():
    assert mcnemar_worse(0, 0) == 1.0
    assert mcnemar_worse(3, 0) == pytest.approx(0.125)
    assert mcnemar_worse(6, 0) == pytest.approx(1 / 64)
    assert mcnemar_worse(1, 1) == pytest.approx(0.75)
    assert math.isclose(mcnemar_worse(0, 5), 1.0)
