"""Baseline removal with any of a fixed set of pybaselines algorithms."""

from __future__ import annotations

import copy
import inspect
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .steps import Step

#: pybaselines algorithms offered, all called as ``Baseline(x_data=axis).<method>(y, **options)``.
SUPPORTED_BASELINES: tuple[str, ...] = (
    # Whittaker smoothing
    "asls", "iasls", "airpls", "arpls", "drpls", "iarpls", "aspls", "psalsa", "derpsalsa",
    # polynomial
    "poly", "modpoly", "imodpoly", "penalized_poly", "loess", "quant_reg",
    # morphological
    "mor", "imor", "rolling_ball", "tophat",
    # smoothing
    "snip", "noise_median", "swima",
    # splines
    "irsqr", "mixture_model", "pspline_asls", "pspline_arpls", "pspline_airpls",
    "pspline_iarpls",
    # classification
    "dietrich", "fastchrom", "rubberband",
)  # fmt: skip


def _fitter_class() -> type:
    from pybaselines import Baseline as Fitter  # imported lazily: keeps CLI start-up fast

    return Fitter


def method_options(method: str) -> tuple[str, ...]:
    """Keyword options that pybaselines' ``method`` accepts (besides the data)."""
    signature = inspect.signature(getattr(_fitter_class(), method))
    skip = {"self", "data"}
    return tuple(
        p.name
        for p in signature.parameters.values()
        if p.name not in skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )


@dataclass(frozen=True)
class Baseline(Step):
    """Subtract the baseline fitted by pybaselines' ``method`` to each spectrum.

    ``options`` are forwarded as keyword arguments, e.g. ``Baseline("asls", {"lam": 1e6})``.
    """

    name: ClassVar[str] = "baseline"
    positional: ClassVar[tuple[str, ...]] = ("method",)
    method: str = "asls"
    options: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.method not in SUPPORTED_BASELINES:
            raise self._error(
                f"unknown method {self.method!r}; supported: {', '.join(SUPPORTED_BASELINES)}"
            )
        if not isinstance(self.options, dict):
            raise self._error(f"options must be a dict, got {self.options!r}")
        allowed = method_options(self.method)
        unknown = sorted(set(self.options) - set(allowed))
        if unknown:
            raise self._error(
                f"unknown option(s) {', '.join(unknown)} for method {self.method!r}; "
                f"allowed: {', '.join(allowed)}"
            )
        try:
            json.dumps(self.options)
        except (TypeError, ValueError) as exc:
            raise self._error(f"options must be JSON-serialisable ({exc})") from None
        self._set("options", copy.deepcopy(self.options))

    def params(self) -> dict[str, Any]:
        return {"method": self.method, "options": copy.deepcopy(self.options)}

    def fit(self, x: np.ndarray, axis: np.ndarray) -> np.ndarray:
        """The fitted baselines, shape ``(n, L)``."""
        fit = getattr(_fitter_class()(x_data=axis), self.method)
        out = np.empty_like(x)
        try:
            for i, row in enumerate(x):
                out[i] = fit(row, **self.options)[0]
        except (TypeError, ValueError) as exc:  # bad option values reach pybaselines only here
            raise self._error(f"pybaselines {self.method} failed: {exc}") from exc
        return out

    def apply(self, x: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x - self.fit(x, axis), axis.copy()
