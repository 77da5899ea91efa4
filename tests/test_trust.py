"""The trust layer: physical checks, the "unknown" detector and its threshold, temperature
scaling and calibration error."""

from __future__ import annotations

import numpy as np
import pytest

from pace_edge.errors import BundleError
from pace_edge.trust import (
    MahalanobisDetector,
    PhysicalChecks,
    Trust,
    accept_threshold,
    checked_temperature,
    expected_calibration_error,
    fit_temperature,
    scaled_softmax,
)
from pace_edge.trust.ood import auroc, energy_score, knn_score


def _clusters(rng, n, d=8, shift=0.0):
    centers = np.stack([np.eye(d)[0] * 6, np.eye(d)[1] * 6, np.eye(d)[2] * 6]) + shift
    y = rng.integers(0, 3, n)
    return centers[y] + rng.normal(size=(n, d)), y


def test_detector_separates_far_features_and_threshold_accepts_the_asked_share():
    rng = np.random.default_rng(0)
    f, y = _clusters(rng, 600)
    detector = MahalanobisDetector.fit(f, y)
    held, _ = _clusters(rng, 999)
    threshold = accept_threshold(detector.score(held), 0.99)
    new, _ = _clusters(rng, 4000)
    accepted = (detector.score(new) <= threshold).mean()
    assert 0.975 <= accepted <= 1.0
    far, _ = _clusters(rng, 500, shift=4.0)
    assert auroc(detector.score(new), detector.score(far)) > 0.95
    # a larger share accepted needs a higher threshold
    assert accept_threshold(detector.score(held), 0.5) < threshold


def test_detector_whitening_is_the_shared_covariance_mahalanobis_distance():
    rng = np.random.default_rng(1)
    f, y = _clusters(rng, 300, d=4)
    detector = MahalanobisDetector.fit(f, y)
    z = detector.project(f[:5])
    # whitened class centres reproduce the class means
    means = np.stack([f[y == c].mean(0) for c in range(3)])
    np.testing.assert_allclose(detector.project(means), detector.centers, atol=1e-4)
    # the score is the nearest squared distance in whitened space over the dimension
    d2 = ((z[:, None, :] - detector.centers[None]) ** 2).sum(-1).min(1) / 4
    np.testing.assert_allclose(detector.score(f[:5]), d2, rtol=1e-5)


def test_shrinkage_pulls_the_covariance_towards_its_mean_variance():
    rng = np.random.default_rng(5)
    f, y = _clusters(rng, 400, d=6)
    f[:, 5] *= 0.01  # a direction the fitted spectra barely use
    means = np.stack([f[y == c].mean(0) for c in range(3)])
    centred = f - means[y]
    sample = centred.T @ centred / len(f)

    def covariance(det: MahalanobisDetector) -> np.ndarray:
        w = det.whiten.astype(np.float64)
        return np.linalg.inv(w.T @ w)

    np.testing.assert_allclose(covariance(MahalanobisDetector.fit(f, y, shrinkage=0.0)),
                               sample, rtol=1e-3, atol=1e-6)
    half = sample * 0.5 + 0.5 * np.trace(sample) / 6 * np.eye(6)
    np.testing.assert_allclose(covariance(MahalanobisDetector.fit(f, y, shrinkage=0.5)),
                               half, rtol=1e-3, atol=1e-6)
    # a new point off the barely used direction scores far less once shrunk
    off = means[:1] + np.eye(6)[5] * 0.5
    assert (MahalanobisDetector.fit(f, y, shrinkage=0.5).score(off)
            < MahalanobisDetector.fit(f, y, shrinkage=0.0).score(off) / 100)
    with pytest.raises(Exception, match="shrinkage"):
        MahalanobisDetector.fit(f, y, shrinkage=1.5)


def test_components_keep_the_top_principal_directions():
    rng = np.random.default_rng(6)
    f, y = _clusters(rng, 300, d=8)
    det = MahalanobisDetector.fit(f, y, components=3)
    assert det.whiten.shape == (3, 8) and det.centers.shape == (3, 3) and det.dim == 3
    with pytest.raises(Exception, match="components"):
        MahalanobisDetector.fit(f, y, components=9)


def test_temperature_is_kept_only_when_it_helps_spectra_left_out():
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(300, 3)) * 3
    y = np.array([rng.choice(3, p=p) for p in scaled_softmax(logits, 2.5)])
    t, check = checked_temperature(logits, y)  # over-confident: a real improvement
    assert t == pytest.approx(check["fitted"]) and t > 1.5
    assert check["held_out_nll_fitted"] < check["held_out_nll_t1"]
    # few spectra, one confidently wrong: the temperature fitted on all of them is set by that
    # one, and fitted without it would make it far worse; it is not deployed
    logits = np.tile([5.0, 0.0, 0.0], (20, 1))
    y = np.zeros(20, dtype=np.int64)
    y[0] = 1
    t, check = checked_temperature(logits, y)
    assert check["fitted"] != 1.0 and t == 1.0
    assert check["held_out_nll_fitted"] > check["held_out_nll_t1"]


def test_threshold_falls_back_to_the_largest_score_when_too_few():
    scores = np.array([0.3, 0.1, 0.2])
    assert accept_threshold(scores, 0.99) == 0.3
    assert accept_threshold(np.arange(200.0), 0.99) == 198.0  # rank ceil(201 * .99) = 199
    with pytest.raises(Exception, match="no held-out"):
        accept_threshold(np.array([]), 0.99)


def test_temperature_fit_recovers_a_known_temperature_and_lowers_calibration_error():
    rng = np.random.default_rng(2)
    n, true_t = 4000, 0.4
    logits = rng.normal(size=(n, 3)) * 3
    y = np.array([rng.choice(3, p=p) for p in scaled_softmax(logits, 1 / true_t)])
    overconfident = logits  # the truth is softmax(logits * 0.4), so T = 2.5 undoes it
    t = fit_temperature(overconfident, y)
    assert t == pytest.approx(1 / true_t, rel=0.1)
    before = expected_calibration_error(scaled_softmax(overconfident), y)
    after = expected_calibration_error(scaled_softmax(overconfident, t), y)
    assert after < before / 3
    # one scalar: the predicted class never changes
    assert (scaled_softmax(logits, t).argmax(1) == logits.argmax(1)).all()


def test_calibration_error_of_perfect_and_overconfident_predictions():
    y = np.array([0, 1, 0, 1])
    assert expected_calibration_error(np.eye(2)[y], y) == 0.0
    always_sure = np.tile([1.0, 0.0], (4, 1))  # right half the time, sure every time
    assert expected_calibration_error(always_sure, y) == pytest.approx(0.5)


def test_physical_checks_flag_flat_clipped_and_dark_frames_only():
    rng = np.random.default_rng(3)
    axis = np.linspace(0, 1, 500)
    good = 1000 + 800 * np.exp(-((axis - 0.4) / 0.02) ** 2) + rng.normal(0, 5, 500)
    clipped = good.copy()
    clipped[clipped > 1500] = 1500.0
    dark = 1000 + rng.normal(0, 5, 500)
    flat = np.full(500, 1234.0)
    checks = PhysicalChecks()
    assert checks.reasons(np.stack([good, clipped, dark, flat])) == [
        None, "saturated", "low_signal", "flat"]
    # gain and offset do not change any verdict
    assert checks.reasons(np.stack([3.7 * good - 900, 0.2 * dark + 50])) == [None, "low_signal"]


def test_trust_judges_refuses_with_reason_and_keeps_probabilities():
    rng = np.random.default_rng(4)
    centers = np.array([[0.0, 0.0], [5.0, 0.0]], np.float32)
    trust = Trust(temperature=2.0, centers=centers, threshold=1.0, accept_rate=0.99)
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    projected = np.array([[0.1, 0.0], [5.0, 0.5], [20.0, 20.0]])
    raw = np.sin(np.linspace(0, 6, 50)) * 100 + rng.normal(size=(3, 50))
    v = trust.judge(raw, logits, projected)
    assert v.accepted.tolist() == [True, True, False]
    assert v.reasons == [None, None, "out_of_distribution"]
    assert v.record(2)["score"] == pytest.approx((15**2 + 20**2) / 2)
    np.testing.assert_allclose(v.probabilities, scaled_softmax(logits, 2.0))
    flat = trust.judge(np.ones((1, 50)), logits[:1], projected[:1])
    assert flat.record(0) == {"accepted": False, "reason": "flat", "score": None}
    # round trip through the stored JSON form
    back = Trust.from_dict(trust.to_dict())
    assert back.judge(raw, logits, projected).reasons == v.reasons
    assert back.temperature == 2.0


def test_malformed_trust_record_is_a_bundle_error():
    with pytest.raises(BundleError, match="temperature"):
        Trust.from_dict({"temperature": 0})
    with pytest.raises(BundleError, match="detector"):
        Trust.from_dict({"detector": {"method": "magic"}})
    assert not Trust.from_dict(None).has_detector


def test_candidate_scores_rank_far_points_higher():
    rng = np.random.default_rng(5)
    f, _ = _clusters(rng, 300)
    near, _ = _clusters(rng, 100)
    far = rng.normal(size=(100, 8)) * 6 - 6
    assert auroc(knn_score(f, near), knn_score(f, far)) > 0.9
    assert energy_score(np.array([[10.0, 0.0]]))[0] < energy_score(np.array([[0.1, 0.0]]))[0]
