"""Quantise better before keeping layers float: try calibration ranges and NNCF recipes.

Every option is judged by the same task criterion on the same held-out training spectra, and
the winner is the option whose float set (found by :func:`.sensitivity.search_float`) is the
cheapest; the smaller logit error breaks ties.

* ONNX QDQ (the TensorRT rules: symmetric, zero point 0, per-channel weights): the activation
  range estimator, ``percentile`` first, then ``entropy`` and ``minmax`` when the first needs a
  layer float beyond :data:`CHEAP_SHARE` of the model's cost or misses the criterion.
* OpenVINO through NNCF, where TensorRT's rules do not bind: at the float set the QDQ search
  chose, the recipes of :data:`OPENVINO_RECIPES` in order (fast bias correction, full bias
  correction, SmoothQuant scaling of convolution inputs when some activation has outlier
  channels, the mixed preset with asymmetric activations) until one meets the criterion;
  if none does, the search goes on from the best of them, keeping more layers float.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .cost import LayerCost
from .criterion import Verdict
from .sensitivity import Judge, LayerSensitivity, SearchResult, measure_layers, search_float

CHEAP_SHARE = 0.02  # float layers costing less than this share of the model need no 2nd try
METHOD_ORDER = ("percentile", "entropy", "minmax")
OUTLIER_RATIO = 8.0  # a channel's |max| this many times the median channel's: an outlier


@dataclass(frozen=True)
class Recipe:
    """One way NNCF quantises: preset, bias correction and SmoothQuant."""

    name: str
    preset: str = "performance"  # or "mixed" (asymmetric activations)
    fast_bias_correction: bool = True
    smooth_quant: float | None = None  # SmoothQuant alpha for convolutions, None: off
    needs_outliers: bool = False

    def describe(self) -> str:
        parts = [f"{self.preset} preset",
                 "fast bias correction" if self.fast_bias_correction else "bias correction"]
        if self.smooth_quant is not None:
            parts.append(f"SmoothQuant alpha {self.smooth_quant:g} on convolutions")
        return ", ".join(parts)


OPENVINO_RECIPES = (
    Recipe("performance"),
    Recipe("bias-correction", fast_bias_correction=False),
    Recipe("smooth-quant", smooth_quant=0.15, needs_outliers=True),
    Recipe("mixed", preset="mixed"),
)


@dataclass
class Choice:
    """A float set with the option that produced it."""

    option: str
    search: SearchResult
    ranking: list[LayerSensitivity] = field(default_factory=list)
    tried: list[dict[str, Any]] = field(default_factory=list)

    @property
    def float_layers(self) -> list[str]:
        return self.search.float_layers

    @property
    def met(self) -> bool:
        return self.search.met


def _better(a: SearchResult, b: SearchResult) -> bool:
    """Whether ``a`` beats ``b``: meets the criterion, then cheaper, then smaller error."""
    return (not a.met, a.cost, a.verdict.nrmse) < (not b.met, b.cost, b.verdict.nrmse)


def needs_more(result: SearchResult, costs: dict[str, LayerCost],
               start: Sequence[str] = ()) -> bool:
    """Whether a search result is worth another option: it misses the criterion, or keeps
    float layers (beyond ``start``) whose extra cost exceeds :data:`CHEAP_SHARE`."""
    extra = sum(costs[k].extra for k in result.float_layers if k not in start and k in costs)
    return not result.met or extra > CHEAP_SHARE * result.fp32_cost


def choose_qdq(
    methods: Sequence[str],
    evaluator: Callable[[str], Callable[[Sequence[str]], np.ndarray]],
    layers: Sequence[Any],
    costs: dict[str, LayerCost],
    judge: Judge,
    start: Sequence[str] = (),
    fixed_cost: float = 0.0,
    search: bool = True,
    tick: Callable[[], None] | None = None,
) -> Choice:
    """The best float set over calibration ``methods`` (first the first; the others only when
    :func:`needs_more`). ``evaluator(method)`` gives ``evaluate(float_layers) -> logits``.
    Without ``search``, ``start`` is measured as given with the first method only."""
    best: Choice | None = None
    tried = []
    for method in methods:
        evaluate = evaluator(method)
        ranking = measure_layers(layers, evaluate, judge, costs, tick)
        result = search_float(ranking, costs, evaluate, judge, start, fixed_cost,
                              max_float_share=0.5 if search else 0.0)
        tried.append({"method": method, "float_layers": result.float_layers, "met": result.met,
                      "cost": result.cost, "nrmse": result.verdict.nrmse})
        if best is None or _better(result, best.search):
            best = Choice(method, result, ranking)
        if not search or not needs_more(best.search, costs, start):
            break
    assert best is not None
    best.tried = tried
    return best


def outlier_channels(stats: Sequence[dict[str, Any]]) -> list[str]:
    """Tensors whose largest channel |max| is :data:`OUTLIER_RATIO` times the median one's."""
    return [s["tensor"] for s in stats
            if s.get("channel_amax_median", 0) > 0
            and s["channel_amax_max"] > OUTLIER_RATIO * s["channel_amax_median"]]


def choose_openvino(
    start: Sequence[str],
    evaluator: Callable[[Recipe], Callable[[Sequence[str]], np.ndarray]],
    ranking: Sequence[LayerSensitivity],
    costs: dict[str, LayerCost],
    judge: Judge,
    outliers: bool,
    fixed_cost: float = 0.0,
    search: bool = True,
) -> tuple[Recipe, SearchResult, list[dict[str, Any]]]:
    """The NNCF recipe and float set for OpenVINO, starting from the QDQ search's ``start``.

    Recipes are tried in order at ``start`` until one meets the criterion (SmoothQuant only
    when ``outliers``); if none does, the search keeps more layers float with the best one.
    Returns the recipe, the search result and a row per recipe tried.
    """
    tried: list[dict[str, Any]] = []
    best: tuple[Recipe, Verdict] | None = None
    for recipe in OPENVINO_RECIPES:
        if recipe.needs_outliers and not outliers:
            continue
        verdict = judge(evaluator(recipe)(list(start)))
        tried.append({"recipe": recipe.name, "description": recipe.describe(),
                      "float_layers": list(start), **verdict.to_dict()})
        if best is None or verdict.rank() < best[1].rank():
            best = (recipe, verdict)
        if verdict.met or not search:
            break
    assert best is not None
    recipe = best[0]
    result = search_float(ranking, costs, evaluator(recipe), judge, start, fixed_cost,
                          max_float_share=0.5 if search else 0.0)
    return recipe, result, tried
