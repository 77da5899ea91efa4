"""Temperature scaling (Guo et al., 2017) and the expected calibration error."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from ..errors import PaceEdgeError

LOG_T_RANGE = (-4.0, 4.0)  # temperatures between e^-4 and e^4


def scaled_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` in float64."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(y)), y].mean())


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature ``T`` minimising the negative log-likelihood of ``softmax(logits/T)``
    on labelled held-out spectra (one scalar, so the predicted class never changes)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if z.ndim != 2 or len(z) != len(y) or len(y) == 0:
        raise PaceEdgeError(f"temperature scaling needs (n, classes) logits and n labels, got "
                            f"{z.shape} and {y.shape}")
    result = minimize_scalar(lambda t: _nll(z, y, float(np.exp(t))), bounds=LOG_T_RANGE,
                             method="bounded", options={"xatol": 1e-4})
    return float(np.exp(result.x))


def held_out_nll(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Leave-one-out negative log-likelihood of ``(T = 1, T fitted on the other spectra)``:
    whether a temperature fitted on these spectra would improve probabilities on new ones."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if len(y) < 2:
        raise PaceEdgeError("a held-out check of the temperature needs two or more spectra")
    fitted = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        fitted.append(_nll(z[i : i + 1], y[i : i + 1], fit_temperature(z[keep], y[keep])))
    return _nll(z, y, 1.0), float(np.mean(fitted))


def checked_temperature(logits: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, float]]:
    """The temperature to deploy and the check behind it: the one fitted on all ``y`` if it
    lowers the leave-one-out negative log-likelihood below that of ``T = 1``, else 1 (with
    a few dozen spectra one hard spectrum can move a fitted temperature a long way)."""
    fitted = fit_temperature(logits, y)
    if len(y) < 2:
        return 1.0, {"fitted": fitted}
    nll_one, nll_fitted = held_out_nll(logits, y)
    kept = nll_fitted < nll_one
    return (fitted if kept else 1.0), {"fitted": fitted, "held_out_nll_t1": nll_one,
                                       "held_out_nll_fitted": nll_fitted}


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """ECE: the mean over equal-width confidence bins of |accuracy − mean confidence|,
    weighted by the share of spectra in each bin (0 = perfectly calibrated)."""
    p = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if len(y) == 0:
        return 0.0
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)
