"""Per-layer INT8 sensitivity, measured, and the layers it says to keep in float.

Error of a quantised model against the FP32 one on held-out training spectra:
``nrmse = ||z_q - z||_F / ||z - mean(z)||_F`` over the logits (0 = exact; a continuous proxy for
prediction flips that does not need labels) and argmax ``agreement``.

:func:`measure_layers` quantises one layer at a time (everything else float). :func:`choose_float`
then keeps the most sensitive layers in float, in that order, until the fully quantised rest is
within tolerance on the held-out spectra.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

DEFAULT_TOLERANCE = 0.02  # nrmse of the logits allowed for the final INT8 model
# A sanity floor only: on a held-out set of ~75 spectra one borderline spectrum (FP32 margin
# below the INT8 logit noise) moves agreement by 1.3 %, so the search is driven by the nrmse.
DEFAULT_MIN_AGREEMENT = 0.97
MAX_FLOAT_SHARE = 0.5  # never keep more than half the layers in float

Evaluate = Callable[[Sequence[str]], np.ndarray]  # float layer keys -> holdout logits


def logit_error(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """``nrmse``, ``agreement`` and ``max_abs`` of ``candidate`` logits against ``reference``."""
    ref = np.asarray(reference, np.float64)
    cand = np.asarray(candidate, np.float64)
    if not np.isfinite(cand).all():
        return {"nrmse": float("inf"), "agreement": 0.0, "max_abs": float("inf")}
    spread = np.linalg.norm(ref - ref.mean(axis=0)) or 1.0
    return {
        "nrmse": float(np.linalg.norm(cand - ref) / spread),
        "agreement": float(np.mean(cand.argmax(1) == ref.argmax(1))),
        "max_abs": float(np.abs(cand - ref).max()),
    }


@dataclass
class LayerSensitivity:
    """Error of the model with only ``layer`` quantised (all other layers float)."""

    layer: str
    node: str
    op_type: str
    nrmse: float
    agreement: float
    max_abs: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_layers(layers: Sequence[Any], evaluate: Evaluate, reference: np.ndarray,
                   tick: Callable[[], None] | None = None) -> list[LayerSensitivity]:
    """Quantise each of ``layers`` alone and measure the logit error against ``reference``."""
    keys = [la.key for la in layers]
    rows = []
    for la in layers:
        err = logit_error(reference, evaluate([k for k in keys if k != la.key]))
        rows.append(LayerSensitivity(la.key, la.node, la.op_type, **err))
        if tick is not None:
            tick()
    return rows


@dataclass
class FloatChoice:
    """The float layers a search chose, one row per model it measured, and whether the last
    one met the tolerance (``met`` False: the search stopped outside it)."""

    floats: list[str]
    steps: list[dict[str, Any]]
    met: bool


def choose_float(
    ranking: Sequence[LayerSensitivity],
    evaluate: Evaluate,
    reference: np.ndarray,
    tolerance: float = DEFAULT_TOLERANCE,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    start: Sequence[str] = (),
    tick: Callable[[], None] | None = None,
) -> FloatChoice:
    """Layers to keep float: the most sensitive first, until the rest meets the tolerance.

    Starts from ``start`` (already float). Returns the float layers, one step row per model
    measured (``float`` layers, ``nrmse``, ``agreement``, ``max_abs``, ``ok``) and whether the
    tolerance was met (the search also stops at :data:`MAX_FLOAT_SHARE` of the layers).
    """
    order = [r.layer for r in sorted(ranking, key=lambda r: -r.nrmse)]
    limit = int(len(order) * MAX_FLOAT_SHARE)
    kept = list(start)
    steps = []
    while True:
        err = logit_error(reference, evaluate(kept))
        ok = err["nrmse"] <= tolerance and err["agreement"] >= min_agreement
        steps.append({"float": list(kept), **err, "ok": ok})
        if tick is not None:
            tick()
        left = [k for k in order if k not in kept]
        if ok or not left or len(kept) >= limit:
            return FloatChoice(kept, steps, ok)
        kept.append(left[0])
