"""An ordered, serialisable list of preprocessing steps: the one code path used at training,
export and streaming time."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import MISSING, fields
from typing import Any

import numpy as np

from ..errors import DataError, PaceEdgeError
from .baseline import Baseline
from .despike import Despike
from .steps import Crop, Normalize, Resample, Savgol, Step

STEPS: dict[str, type[Step]] = {
    cls.name: cls for cls in (Crop, Resample, Savgol, Baseline, Normalize, Despike)
}


def _step_class(name: Any) -> type[Step]:
    if name not in STEPS:
        raise PaceEdgeError(f"unknown preprocessing step {name!r}; known steps: {', '.join(STEPS)}")
    return STEPS[name]


def _field_names(cls: type[Step]) -> list[str]:
    return [f.name for f in fields(cls)]  # type: ignore[arg-type]


def step_from_dict(d: Mapping[str, Any]) -> Step:
    """Build a step from ``{"name": ..., **params}`` (the form ``Step.params`` produces)."""
    if not isinstance(d, Mapping) or "name" not in d:
        raise PaceEdgeError(f"a preprocessing step must be a mapping with a 'name', got {d!r}")
    cls = _step_class(d["name"])
    params = {k: v for k, v in d.items() if k != "name"}
    allowed = _field_names(cls)
    unknown = sorted(set(params) - set(allowed))
    required = [
        f.name
        for f in fields(cls)  # type: ignore[arg-type]
        if f.default is MISSING and f.default_factory is MISSING
    ]
    missing = [k for k in required if k not in params]
    if unknown or missing:
        problem = (
            f"unknown parameter(s) {', '.join(unknown)}"
            if unknown
            else f"missing parameter(s) {', '.join(missing)}"
        )
        raise PaceEdgeError(
            f"preprocessing step '{cls.name}': {problem}; allowed: {', '.join(allowed)}"
        )
    return cls(**params)


def _parse_value(text: str) -> Any:
    """Spec value: int, float, bool (true/false) or the string itself."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _parse_spec_step(item: str) -> dict[str, Any]:
    """``"baseline:asls:lam=1e6"`` -> ``{"name": "baseline", "method": "asls", ...}``."""
    name, *args = (part.strip() for part in item.split(":"))
    cls = _step_class(name)
    allowed = _field_names(cls)
    out: dict[str, Any] = {"name": name}
    extra: dict[str, Any] = {}  # unknown keys of a step with an `options` dict
    n_positional, keyed = 0, False
    for arg in args:
        key, sep, value = arg.partition("=")
        key = key.strip()
        if not sep:
            if keyed:
                raise PaceEdgeError(f"spec '{item}': positional value {arg!r} after key=value")
            if n_positional >= len(cls.positional):
                raise PaceEdgeError(
                    f"spec '{item}': step '{name}' takes at most {len(cls.positional)} "
                    f"positional value(s) ({', '.join(cls.positional)})"
                )
            out[cls.positional[n_positional]] = _parse_value(arg)
            n_positional += 1
            continue
        keyed = True
        target = out if key in allowed or "options" not in allowed else extra
        if not key or key in target or key == "options":
            raise PaceEdgeError(f"spec '{item}': bad or repeated key {key!r}")
        target[key] = _parse_value(value.strip())
    if extra:
        out["options"] = extra
    return out


def _check_axis(axis: np.ndarray, length: int) -> None:
    if axis.ndim != 1 or axis.size != length:
        raise DataError(f"axis has {axis.size} points but spectra have {length}")
    if length < 2:
        raise DataError(f"spectra need at least 2 points, got {length}")
    if not np.isfinite(axis).all():
        raise DataError("axis contains NaN or inf")
    step = np.diff(axis)
    if (step <= 0).any():
        j = int(np.flatnonzero(step <= 0)[0])
        raise DataError(
            f"axis is not strictly increasing at point {j + 1} ({axis[j]:g} then {axis[j + 1]:g})"
        )


def _check_finite(x: np.ndarray, axis: np.ndarray, single: bool) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        where = "spectrum" if single else f"row {i}"
        raise DataError(f"{where}: non-finite intensity {x[i, j]} at x={axis[j]:g}")


class Pipeline:
    """Steps applied in order; ``apply`` accepts one spectrum ``(L,)`` or a batch ``(n, L)``."""

    def __init__(self, steps: Iterable[Step] = ()) -> None:
        self.steps: tuple[Step, ...] = tuple(steps)
        for step in self.steps:
            if not isinstance(step, Step):
                raise TypeError(f"not a preprocessing step: {step!r}")

    def apply(self, x: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Preprocess ``x`` on ``axis``; returns new ``(x, axis)``, ``x`` of the input's rank."""
        bound = self.bind(axis)
        return bound(x), bound.axis.copy()

    def bind(self, axis: np.ndarray) -> BoundPipeline:
        """This pipeline fixed to data on ``axis`` (checked and planned once; see
        :class:`BoundPipeline`). ``bind(axis)(x)`` equals ``apply(x, axis)[0]``."""
        return BoundPipeline(self, axis)

    def output_axis(self, input_axis: np.ndarray) -> np.ndarray:
        """The axis that ``apply`` returns for data on ``input_axis``."""
        axis = np.asarray(input_axis, dtype=np.float64)
        _check_axis(axis, axis.size)
        for step in self.steps:
            axis = step.output_axis(axis)
        return axis

    def anchored(self, input_axis: np.ndarray) -> Pipeline:
        """An equivalent pipeline for data on ``input_axis`` that maps data on any axis onto
        the same grid.

        Unchanged if it already has a ``resample`` step. Otherwise a ``resample`` onto the
        axis after the leading ``crop`` steps (the grid) is inserted *before* them: on
        ``input_axis`` it only picks existing points, so results are bit-identical, and the
        crops that follow keep the whole grid. Resampling ahead of the crops lets data on
        another axis use its points just outside the crop range to interpolate the grid's
        end points.
        """
        if any(isinstance(step, Resample) for step in self.steps):
            return self
        k = 0
        while k < len(self.steps) and isinstance(self.steps[k], Crop):
            k += 1
        grid = Pipeline(self.steps[:k]).output_axis(input_axis)
        return Pipeline([Resample(axis=tuple(grid.tolist())), *self.steps])

    def to_list(self) -> list[dict[str, Any]]:
        """JSON-serialisable ``[{"name": ..., **params}, ...]``."""
        return [{"name": step.name, **step.params()} for step in self.steps]

    @classmethod
    def from_list(cls, items: Iterable[Mapping[str, Any]]) -> Pipeline:
        """Inverse of :meth:`to_list`."""
        if isinstance(items, str | bytes | Mapping):
            raise PaceEdgeError(f"preprocessing must be a list of steps, got {items!r}")
        return cls(step_from_dict(d) for d in items)

    @classmethod
    def from_spec(cls, spec: str) -> Pipeline:
        """Parse ``"crop:400:1800,savgol:11:3,baseline:asls:lam=1e6,normalize:snv"``.

        Values are positional in field order or ``key=value``; keys that ``baseline`` does
        not have go to its pybaselines ``options``. An empty spec is the empty pipeline.
        """
        if not spec.strip():
            return cls()
        items = [item.strip() for item in spec.split(",")]
        if not all(items):
            raise PaceEdgeError(f"empty step in preprocessing spec {spec!r}")
        return cls.from_list(_parse_spec_step(item) for item in items)

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pipeline):
            return NotImplemented
        return self.to_list() == other.to_list()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Pipeline([{', '.join(repr(step) for step in self.steps)}])"


class BoundPipeline:
    """A :class:`Pipeline` fixed to one input axis, as a spectrometer stream uses it.

    The axis is checked and every step's axis-only work (crop masks, interpolation plans) is
    done once, when binding; calling it then only checks and transforms the data. ``axis`` is
    the (read-only) output axis.
    """

    def __init__(self, pipeline: Pipeline, axis: np.ndarray) -> None:
        input_axis = np.array(axis, dtype=np.float64)
        _check_axis(input_axis, input_axis.size)
        input_axis.flags.writeable = False
        self.pipeline = pipeline
        self.input_axis = input_axis
        self._steps: list[Callable[[np.ndarray], np.ndarray]] = []
        out = input_axis
        for step in pipeline.steps:
            fn, out = step.bind(out)
            self._steps.append(fn)
        out = np.array(out, dtype=np.float64)
        out.flags.writeable = False
        self.axis = out

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Preprocess spectra ``(L,)`` or ``(n, L)`` on the bound axis; same rank back."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim not in (1, 2):
            raise DataError(f"spectra must be 1-D (L,) or 2-D (n, L), got shape {x.shape}")
        single = x.ndim == 1
        batch = x[None, :] if single else x
        if batch.shape[0] == 0:
            raise DataError("no spectra")
        if batch.shape[1] != self.input_axis.size:
            raise DataError(
                f"axis has {self.input_axis.size} points but spectra have {batch.shape[1]}"
            )
        _check_finite(batch, self.input_axis, single)
        if not self._steps:  # steps return new arrays; never hand back the caller's
            batch = batch.copy()
        for fn in self._steps:
            batch = fn(batch)
        return batch[0] if single else batch
