"""Which layers stay float: the cheapest set whose INT8 build meets the task criterion.

Every candidate build is judged by :class:`~.criterion.Criterion` on held-out training spectra
(top-1 agreement with FP32 and the accuracy change, with confidence bounds; logit error breaks
ties) and priced by :mod:`.cost` (multiply-adds; a float layer costs what INT8 would have
saved).

1. :func:`measure_layers` quantises one layer at a time (everything else float): how much each
   layer alone moves the logits and the predictions.
2. :func:`search_float` starts from ``start`` (usually nothing) float and, while the build
   misses the criterion, keeps float the layer with the most sensitivity per unit of extra
   cost, so a sensitive depthwise conv or add goes float long before a pointwise conv does;
   then drops again, most expensive first, every float layer, then every pair of float
   layers, the criterion does not need.
   Of all the sets it measured that meet the criterion it returns the cheapest (the smaller
   logit error on a tie). Each set is measured once. A result that needs more than
   :data:`MAX_FLOAT_SHARE` of the layers float does not count as met.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .cost import LayerCost, build_cost
from .criterion import Verdict, logit_error

MAX_FLOAT_SHARE = 0.5  # never keep more than half the layers in float

Evaluate = Callable[[Sequence[str]], np.ndarray]  # float layer keys -> holdout logits
Judge = Callable[[np.ndarray], Verdict]  # holdout logits -> verdict against FP32

__all__ = ["LayerSensitivity", "SearchResult", "logit_error", "measure_layers", "search_float"]


@dataclass
class LayerSensitivity:
    """The model with only ``layer`` quantised (all other layers float), against FP32."""

    layer: str
    node: str
    op_type: str
    nrmse: float
    agreement: float
    max_abs: float
    disagreements: int = 0
    extra_cost: float = 0.0  # cost units keeping it float adds

    @property
    def score(self) -> float:
        """Sensitivity: the share of predictions it flips plus its logit NRMSE."""
        return (1.0 - self.agreement) + self.nrmse

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_layers(layers: Sequence[Any], evaluate: Evaluate, judge: Judge,
                   costs: dict[str, LayerCost] | None = None,
                   tick: Callable[[], None] | None = None) -> list[LayerSensitivity]:
    """Quantise each of ``layers`` alone and judge the logits against FP32."""
    keys = [la.key for la in layers]
    rows = []
    for la in layers:
        v = judge(evaluate([k for k in keys if k != la.key]))
        rows.append(LayerSensitivity(la.key, la.node, la.op_type, v.nrmse, v.agreement,
                                     v.max_abs, v.disagreements,
                                     costs[la.key].extra if costs else 0.0))
        if tick is not None:
            tick()
    return rows


@dataclass
class SearchResult:
    """The chosen float layers, their verdict, and every set measured on the way."""

    float_layers: list[str]
    verdict: Verdict
    cost: float
    fp32_cost: float
    steps: list[dict[str, Any]] = field(default_factory=list)
    within_limit: bool = True  # at most MAX_FLOAT_SHARE of the layers float (beyond start)

    @property
    def met(self) -> bool:
        """Whether the chosen build meets the criterion within the float-layer limit."""
        return self.verdict.met and self.within_limit

    @property
    def predicted_speedup(self) -> float:
        return self.fp32_cost / self.cost if self.cost else float("inf")


def search_float(
    ranking: Sequence[LayerSensitivity],
    costs: dict[str, LayerCost],
    evaluate: Evaluate,
    judge: Judge,
    start: Sequence[str] = (),
    fixed_cost: float = 0.0,
    max_float_share: float = MAX_FLOAT_SHARE,
    tick: Callable[[], None] | None = None,
) -> SearchResult:
    """The cheapest float set found that meets ``judge`` (see the module docstring).

    ``start`` layers stay float whatever the search finds (``--float-layers``, or layers an
    earlier search chose). ``max_float_share`` of 0 measures ``start`` alone. The greedy
    phase may go up to every layer float (which is FP32); a result with more than
    ``max_float_share`` of the layers (or ``start``, if more) float has ``met`` false.
    """
    order = {r.layer: i for i, r in enumerate(ranking)}
    sens = {r.layer: r for r in ranking}
    measured: dict[frozenset[str], Verdict] = {}
    steps: list[dict[str, Any]] = []
    fp32 = build_cost(costs, costs, fixed_cost)

    def run(floats: Sequence[str], action: str) -> Verdict:
        key = frozenset(floats)
        if key not in measured:
            measured[key] = judge(evaluate(sorted(floats, key=lambda k: order.get(k, 0))))
            if tick is not None:
                tick()
            cost = build_cost(costs, floats, fixed_cost)
            steps.append({"action": action, "float": _ordered(floats, order),
                          "cost": cost, "predicted_speedup": fp32 / cost,
                          **measured[key].to_dict(), "ok": measured[key].met})
        return measured[key]

    def priority(key: str) -> tuple[float, float, int]:
        extra = max(costs[key].extra, 1e-9) if key in costs else 1e-9
        score = sens[key].score if key in sens else 0.0
        return (-score / extra, extra, order.get(key, 0))

    kept = list(dict.fromkeys(start))
    limit = max(int(len(costs) * max_float_share), len(kept))
    verdict = run(kept, "start")
    candidates = sorted((k for k in costs if k not in kept), key=priority)
    while not verdict.met and candidates and max_float_share > 0:
        layer = candidates.pop(0)
        kept.append(layer)
        verdict = run(kept, f"keep {layer} float")
    if verdict.met:  # drop what the criterion does not need, most expensive first
        kept = _prune(kept, start, costs, sens, run)
    passing = [k for k, v in measured.items() if v.met]
    if passing:
        best = min(passing, key=lambda k: (build_cost(costs, k, fixed_cost), measured[k].nrmse,
                                           sorted(order.get(x, 0) for x in k)))
        kept = _ordered(best, order)
    return SearchResult(float_layers=_ordered(kept, order), verdict=measured[frozenset(kept)],
                        cost=build_cost(costs, kept, fixed_cost), fp32_cost=fp32, steps=steps,
                        within_limit=len(kept) <= limit)


def _prune(kept: list[str], start: Sequence[str], costs: dict[str, LayerCost],
           sens: dict[str, LayerSensitivity],
           run: Callable[[Sequence[str], str], Verdict]) -> list[str]:
    """``kept`` less every layer, then every pair of layers, the criterion does not need
    (most expensive first, until nothing more can go). Pairs: two layers whose INT8 errors
    cancel (or one borderline spectrum that either of them flips) survive one-at-a-time
    pruning; at most ``C(k, 2)`` more builds for ``k`` float layers."""
    def weight(k: str) -> tuple[float, float]:
        return (-costs[k].extra, sens[k].score if k in sens else 0.0)

    size = 1
    while size <= 2:
        free = sorted((k for k in kept if k not in start), key=weight)
        for combo in itertools.combinations(free, size):
            trial = [k for k in kept if k not in combo]
            if run(trial, f"quantise {', '.join(combo)} again").met:
                kept, size = trial, 1  # something went: try single layers again
                break
        else:
            size += 1
    return kept


def _ordered(keys: Any, order: dict[str, int]) -> list[str]:
    return sorted(keys, key=lambda k: (order.get(k, len(order)), k))
