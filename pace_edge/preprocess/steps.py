"""Preprocessing steps: small frozen dataclasses with one call shape.

Every step has a registry ``name``, ``apply(x, axis) -> (x, axis)`` on ``(n, L)`` float64
spectra with a strictly increasing ``(L,)`` axis (it returns new arrays and never mutates
its inputs), ``output_axis(axis)`` and JSON-serialisable ``params()``.
Parameter problems raise :class:`PaceEdgeError` when the step is built; problems with the
data raise :class:`DataError` from ``apply``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
from scipy.signal import savgol_filter

from ..errors import DataError, PaceEdgeError


class Step:
    """Base of every preprocessing step (subclasses are frozen dataclasses)."""

    name: ClassVar[str]
    #: Fields that a compact spec (``"savgol:11:3"``) may give positionally, in order.
    positional: ClassVar[tuple[str, ...]] = ()

    def apply(self, x: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Transform ``(n, L)`` spectra on ``axis``; return new ``(x, axis)`` arrays."""
        raise NotImplementedError

    def output_axis(self, axis: np.ndarray) -> np.ndarray:
        """The axis ``apply`` would return for data on ``axis`` (identity by default)."""
        return np.asarray(axis, dtype=np.float64).copy()

    def bind(self, axis: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
        """For data on a fixed ``axis``: ``(f, output_axis)`` with ``f(x) == apply(x, axis)[0]``.

        Steps whose work depends on the axis alone (crop masks, interpolation plans) do it
        here, once; a stream of spectra from one instrument then pays only for the data.
        """
        fixed = np.array(axis, dtype=np.float64)
        out_axis = self.output_axis(fixed)
        return (lambda x: self.apply(x, fixed)[0]), out_axis

    def params(self) -> dict[str, Any]:
        """JSON-serialisable parameters; ``type(self)(**params())`` rebuilds the step."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    def _set(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)  # normalise a field of a frozen dataclass

    def _error(self, message: str) -> PaceEdgeError:
        return PaceEdgeError(f"preprocessing step '{self.name}': {message}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def as_float(step: Step, key: str, value: Any) -> float:
    """``value`` as a finite float, or a PaceEdgeError naming the step and parameter."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise step._error(f"{key} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise step._error(f"{key} must be finite, got {value!r}")
    return float(value)


def as_int(step: Step, key: str, value: Any, minimum: int | None = None) -> int:
    """``value`` as an int (integral floats accepted), optionally ``>= minimum``."""
    number = as_float(step, key, value)
    if number != int(number):
        raise step._error(f"{key} must be an integer, got {value!r}")
    if minimum is not None and number < minimum:
        raise step._error(f"{key} must be >= {minimum}, got {value!r}")
    return int(number)


def as_choice(step: Step, key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise step._error(f"{key} must be one of {', '.join(choices)}; got {value!r}")
    return str(value)


def _span(axis: np.ndarray) -> str:
    return f"{axis[0]:g}..{axis[-1]:g}"


@dataclass(frozen=True)
class Crop(Step):
    """Keep the points with ``lo <= axis <= hi``."""

    name: ClassVar[str] = "crop"
    positional: ClassVar[tuple[str, ...]] = ("lo", "hi")
    lo: float
    hi: float

    def __post_init__(self) -> None:
        self._set("lo", as_float(self, "lo", self.lo))
        self._set("hi", as_float(self, "hi", self.hi))
        if self.lo >= self.hi:
            raise self._error(f"lo ({self.lo:g}) must be below hi ({self.hi:g})")

    def _keep(self, axis: np.ndarray) -> np.ndarray:
        keep = (axis >= self.lo) & (axis <= self.hi)
        if keep.sum() < 2:
            raise DataError(
                f"crop {self.lo:g}..{self.hi:g} keeps {int(keep.sum())} point(s) of the data's "
                f"axis {_span(axis)}; need at least 2"
            )
        return keep

    def output_axis(self, axis: np.ndarray) -> np.ndarray:
        axis = np.asarray(axis, dtype=np.float64)
        return axis[self._keep(axis)]

    def apply(self, x: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = self._keep(axis)
        return x[:, keep], axis[keep]

    def bind(self, axis: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
        axis = np.asarray(axis, dtype=np.float64)
        keep = self._keep(axis)
        return (lambda x: x[:, keep]), axis[keep]


@dataclass(frozen=True, repr=False)
class Resample(Step):
    """Linearly interpolate onto ``axis``, or onto ``num`` points evenly spaced in
    ``start..stop``.

    The target may overhang the data's axis by at most half the data's end step (the edge
    pixel's footprint); there the edge value is held. Target points that coincide with data
    points get exactly the data's values.
    """

    name: ClassVar[str] = "resample"
    positional: ClassVar[tuple[str, ...]] = ("start", "stop", "num")
    start: float | None = None
    stop: float | None = None
    num: int | None = None
    axis: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        grid = (self.start, self.stop, self.num)
        if self.axis is not None:
            if any(v is not None for v in grid):
                raise self._error("give either axis or start, stop, num, not both")
            self._set_axis(self.axis)
        elif any(v is None for v in grid):
            raise self._error("needs either axis, or all of start, stop, num")
        else:
            self._set("start", as_float(self, "start", self.start))
            self._set("stop", as_float(self, "stop", self.stop))
            self._set("num", as_int(self, "num", self.num, minimum=2))
            if self.start >= self.stop:  # type: ignore[operator]
                raise self._error(f"start ({self.start:g}) must be below stop ({self.stop:g})")

    def _set_axis(self, axis: Any) -> None:
        if isinstance(axis, str | bytes) or not hasattr(axis, "__len__"):
            raise self._error(f"axis must be a list of numbers, got {axis!r}")
        values = tuple(as_float(self, "axis", v) for v in axis)
        if len(values) < 2:
            raise self._error(f"axis needs at least 2 points, got {len(values)}")
        if (np.diff(values) <= 0).any():
            raise self._error("axis must be strictly increasing")
        self._set("axis", values)

    def __repr__(self) -> str:
        if self.axis is None:
            return f"Resample(start={self.start!r}, stop={self.stop!r}, num={self.num!r})"
        return f"Resample(axis=<{len(self.axis)} points {self.axis[0]:g}..{self.axis[-1]:g}>)"

    def target(self) -> np.ndarray:
        """The target axis as a float64 array (built once, then shared read-only)."""
        cached = self.__dict__.get("_target")
        if cached is None:
            if self.axis is not None:
                cached = np.array(self.axis, dtype=np.float64)
            else:
                cached = np.linspace(self.start, self.stop, self.num)  # type: ignore[arg-type]
            cached.flags.writeable = False
            object.__setattr__(self, "_target", cached)
        return cached

    def params(self) -> dict[str, Any]:
        if self.axis is not None:
            return {"axis": list(self.axis)}
        return {"start": self.start, "stop": self.stop, "num": self.num}

    def output_axis(self, axis: np.ndarray) -> np.ndarray:
        target = self.target()
        self._check_range(target, np.asarray(axis, dtype=np.float64))
        return target.copy()

    def apply(self, x: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        target = self.target()
        self._check_range(target, axis)
        return interp_rows(target, axis, x), target.copy()

    def bind(self, axis: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
        target = self.target()
        axis = np.asarray(axis, dtype=np.float64)
        self._check_range(target, axis)
        plan = _interp_plan(target.tobytes(), axis.tobytes())
        return functools.partial(_interp_planned, plan), target.copy()

    @staticmethod
    def _check_range(target: np.ndarray, axis: np.ndarray) -> None:
        slack = 1.0 + 1e-9  # forgive rounding in the half-step arithmetic
        below = 0.5 * (axis[1] - axis[0]) * slack
        above = 0.5 * (axis[-1] - axis[-2]) * slack
        if target[0] < axis[0] - below or target[-1] > axis[-1] + above:
            raise DataError(
                f"resample target axis {_span(target)} extends beyond the data's axis "
                f"{_span(axis)} by more than half a step"
            )


def interp_rows(target: np.ndarray, axis: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``np.interp(target, axis, row)`` for every row of ``x`` at once.

    Same formula as ``np.interp`` (edge values held); targets equal to an axis point get
    that point's value exactly.
    """
    key = (np.asarray(target, dtype=np.float64).tobytes(),
           np.asarray(axis, dtype=np.float64).tobytes())
    return _interp_planned(_interp_plan(*key), x)


def _interp_planned(plan: tuple[np.ndarray, ...], x: np.ndarray) -> np.ndarray:
    """:func:`interp_rows` with the plan of its (target, axis) pair already worked out."""
    j, j1, step, offset, on_left, on_right = plan
    left, right = x[:, j], x[:, j1]
    with np.errstate(invalid="ignore", over="ignore"):
        out = (right - left) / step * offset + left
    if on_left.size:  # targets on an axis point (or below the axis): that point's value
        out[:, on_left] = left[:, on_left]
    if on_right.size:
        out[:, on_right] = right[:, on_right]
    return out


@functools.lru_cache(maxsize=16)
def _interp_plan(target_bytes: bytes, axis_bytes: bytes) -> tuple[np.ndarray, ...]:
    """Indices, steps and exact-value positions of :func:`interp_rows` for one (target,
    axis) pair.

    A spectrometer streams every spectrum on the same axis, so this is worked out once.
    """
    target = np.frombuffer(target_bytes, dtype=np.float64)
    axis = np.frombuffer(axis_bytes, dtype=np.float64)
    j = np.clip(np.searchsorted(axis, target, side="right") - 1, 0, axis.size - 2)
    on_left = np.flatnonzero((target == axis[j]) | (target < axis[0]))
    on_right = np.flatnonzero((target == axis[j + 1]) | (target > axis[-1]))
    return j, j + 1, axis[j + 1] - axis[j], target - axis[j], on_left, on_right


@dataclass(frozen=True)
class Savgol(Step):
    """Savitzky–Golay smoothing (``deriv=0``) or derivative, per spectrum.

    ``scipy.signal.savgol_filter`` with its default ``mode="interp"``; derivatives are per
    pixel (``delta=1``), not per axis unit. The polynomial-fitted edges are recomputed with
    fixed weights so that a spectrum gets bit-identical results alone or in any batch.
    """

    name: ClassVar[str] = "savgol"
    positional: ClassVar[tuple[str, ...]] = ("window", "polyorder", "deriv")
    window: int
    polyorder: int
    deriv: int = 0

    def __post_init__(self) -> None:
        self._set("window", as_int(self, "window", self.window, minimum=1))
        self._set("polyorder", as_int(self, "polyorder", self.polyorder, minimum=0))
        self._set("deriv", as_int(self, "deriv", self.deriv, minimum=0))
        if self.window % 2 == 0:
            raise self._error(f"window must be odd, got {self.window}")
        if self.polyorder >= self.window:
            raise self._error(f"polyorder ({self.polyorder}) must be below window ({self.window})")
        if self.deriv > self.polyorder:
            raise self._error(f"deriv ({self.deriv}) must not exceed polyorder ({self.polyorder})")

    def apply(self, x: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w, length = self.window, x.shape[1]
        if w > length:
            raise DataError(f"savgol window {w} is longer than the spectra ({length} points)")
        out = savgol_filter(x, w, self.polyorder, deriv=self.deriv, axis=1)
        half = w // 2
        if half:  # scipy fits the edges per batch with lstsq: redo them row-independently
            left, right = _savgol_edge_weights(w, self.polyorder, self.deriv)
            out[:, :half] = _weighted_sum(x[:, :w], left)
            out[:, length - half :] = _weighted_sum(x[:, length - w :], right)
        return out, axis.copy()


@functools.lru_cache(maxsize=32)
def _savgol_edge_weights(window: int, polyorder: int, deriv: int) -> tuple[np.ndarray, ...]:
    """``(window, half)`` weights of the first/last ``window`` inputs on the ``half`` edge
    outputs of ``savgol_filter(mode="interp")`` (it is linear: filter the unit vectors)."""
    response = savgol_filter(np.eye(window), window, polyorder, deriv=deriv, axis=1)
    half = window // 2
    return response[:, :half], response[:, window - half :]


def _weighted_sum(block: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``block @ weights`` summed in a fixed order (BLAS may vary it with the batch size)."""
    acc = block[:, :1] * weights[0]
    for k in range(1, weights.shape[0]):
        acc = acc + block[:, k : k + 1] * weights[k]
    return acc


NORMALIZE_METHODS = ("minmax", "vector", "snv", "area", "max")
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 on older edge devices
_TINY = 1e-12  # a denominator below _TINY * max|x| counts as zero: the row becomes zeros


@dataclass(frozen=True)
class Normalize(Step):
    """Per-spectrum scaling.

    ``minmax``: (x - min) / (max - min); ``vector``: x / ||x||₂; ``snv``: (x - mean) / std
    (population std); ``area``: x / ∫|x| d(axis) (trapezoid); ``max``: x / max|x|.
    A spectrum whose denominator is zero (flat or all-zero) becomes all zeros, never NaN.
    """

    name: ClassVar[str] = "normalize"
    positional: ClassVar[tuple[str, ...]] = ("method",)
    method: str = "snv"

    def __post_init__(self) -> None:
        self._set("method", as_choice(self, "method", self.method, NORMALIZE_METHODS))

    def apply(self, x: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = self.method
        if m == "minmax":
            lo = x.min(axis=1, keepdims=True)
            num, den = x - lo, x.max(axis=1, keepdims=True) - lo
        elif m == "snv":  # x.std's own arithmetic, spelt out to share the centred values
            n = x.shape[1]
            num = x - np.add.reduce(x, axis=1, keepdims=True) / n
            den = np.sqrt(np.add.reduce(num * num, axis=1, keepdims=True) / n)
        elif m == "vector":
            num, den = x, np.linalg.norm(x, axis=1, keepdims=True)
        elif m == "area":
            num, den = x, _trapezoid(np.abs(x), axis, axis=1)[:, None]
        else:
            num, den = x, np.abs(x).max(axis=1, keepdims=True)
        return _safe_divide(num, den, np.abs(x).max(axis=1, keepdims=True)), axis.copy()


def _safe_divide(num: np.ndarray, den: np.ndarray, scale: np.ndarray) -> np.ndarray:
    ok = den > _TINY * scale
    if ok.all():
        return num / den
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=ok)
    return out
