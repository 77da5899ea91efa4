"""Calibration spectra for INT8: stratified by class, spread over intensity, preprocessed.

Only training spectra are used (a data set whose source says ``(test)`` is refused). Per class,
the spectra are ranked by their raw mean intensity (the baseline/fluorescence level dominates
it) and taken at evenly spaced ranks, so the selection covers the class's whole intensity range
instead of its crowded middle. A stratified share is held out first (``holdout``): INT8 layer
sensitivity and parity are measured on spectra the calibration never saw. When the data carry
group ids (samples or patients), the held-out share is whole groups, so no sample has spectra
on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import DataError, PaceEdgeError
from ...evaluate.scoring import model_labels

if TYPE_CHECKING:
    from ...bundle import Bundle
    from ...data import SpectralDataset

DEFAULT_SIZE = 300
DEFAULT_HOLDOUT = 0.2


@dataclass
class Calibration:
    """Preprocessed model inputs for calibration (``inputs``) and held-out checks (``holdout``).

    Both are float32 ``(n, input_length)`` arrays on the bundle's axis, after its preprocessing;
    ``labels``/``holdout_labels`` are class indices into the bundle's classes. ``summary`` holds
    method-independent facts for the manifest: size, per-class counts, source, selection.
    """

    inputs: np.ndarray
    summary: dict[str, Any]
    holdout: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    holdout_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


def model_inputs(bundle: Bundle, data: SpectralDataset, what: str = "calibration") -> np.ndarray:
    """``data``'s spectra preprocessed by the bundle onto its axis, float32 ``(n, L)``.

    Raises :class:`DataError` naming ``what`` when the spectra are not finite, or their axis
    cannot be mapped onto the model's axis by the bundle's preprocessing.
    """
    span = f"{data.axis[0]:g}…{data.axis[-1]:g} cm⁻¹, {data.axis.size} points"
    model_span = f"{bundle.axis[0]:g}…{bundle.axis[-1]:g}, {bundle.input_length} points"
    bad = ~np.isfinite(data.x)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(f"{what} data {data.where(i)}: non-finite intensity {data.x[i, j]} at "
                        f"x={data.axis[j]:g}; remove or repair it")
    try:
        out_axis = bundle.preprocessing.output_axis(data.axis)
        if out_axis.size != bundle.input_length or not np.allclose(out_axis, bundle.axis):
            raise DataError(f"the preprocessing maps it to {out_axis.size} points "
                            f"{out_axis[0]:g}…{out_axis[-1]:g}")
        x, _ = bundle.preprocessing.apply(data.x, data.axis)
    except DataError as exc:
        raise DataError(f"{what} data {data.source} (axis {span}) cannot be mapped onto the "
                        f"model's axis ({model_span}) by the bundle's preprocessing: {exc}"
                        ) from exc
    bad = ~np.isfinite(x)
    if bad.any():
        i = int(np.argwhere(bad)[0][0])
        raise DataError(f"{what} data {data.where(i)}: preprocessing produced non-finite values")
    return np.ascontiguousarray(x, dtype=np.float32)


def spread_pick(members: np.ndarray, score: np.ndarray, k: int, rng: np.random.Generator
                ) -> np.ndarray:
    """``k`` of ``members`` at evenly spaced ranks of ``score`` (random offset within strata)."""
    if k >= members.size:
        return members
    order = members[np.argsort(score[members], kind="stable")]
    edges = np.linspace(0, members.size, k + 1)
    picks = [int(lo + rng.random() * (hi - lo)) for lo, hi in zip(edges[:-1], edges[1:],
                                                                   strict=True)]
    return order[np.minimum(picks, members.size - 1)]


def _quota(counts: np.ndarray, total: int) -> np.ndarray:
    """``total`` split over classes proportionally (largest remainder), each class capped."""
    total = min(total, int(counts.sum()))
    share = counts / counts.sum() * total
    quota = np.minimum(np.floor(share).astype(int), counts)
    for c in np.argsort(-(share - np.floor(share)), kind="stable"):
        if quota.sum() >= total:
            break
        if quota[c] < counts[c]:
            quota[c] += 1
    while quota.sum() < total:  # caps left some over: give it to classes with room
        c = int(np.argmax(counts - quota))
        quota[c] += 1
    return quota


def _stratified(y: np.ndarray, pool: np.ndarray, score: np.ndarray, total: int,
                rng: np.random.Generator) -> np.ndarray:
    classes = np.unique(y[pool])
    counts = np.array([np.sum(y[pool] == c) for c in classes])
    quota = _quota(counts, total)
    picked = [spread_pick(pool[y[pool] == c], score, int(q), rng)
              for c, q in zip(classes, quota, strict=True) if q]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


def _group_holdout(y: np.ndarray, data: SpectralDataset, holdout: float, seed: int,
                   classes: list[str]) -> np.ndarray:
    """Indices of whole groups held out, about ``holdout`` of each class (``y`` indexes
    ``classes``)."""
    from ...data import stratified_split

    if holdout == 0.0:
        return np.zeros(0, np.int64)
    try:
        _, held = stratified_split(y, holdout, seed, groups=data.groups,
                                   classes=classes)
    except PaceEdgeError as exc:
        raise DataError(f"calibration data {data.source}: cannot hold out whole samples for "
                        f"the INT8 checks: {exc}") from None
    return held


def select_calibration(
    bundle: Bundle,
    data: SpectralDataset,
    size: int | None = DEFAULT_SIZE,
    seed: int = 0,
    holdout: float = DEFAULT_HOLDOUT,
) -> Calibration:
    """Pick calibration spectra from training data ``data`` and preprocess them for ``bundle``.

    A stratified ``holdout`` share (at least one spectrum per class with 2+) is set aside first
    (whole groups, via :func:`~pace_edge.data.stratified_split`, when ``data.groups`` is set);
    of the rest, ``size`` spectra (``None``: all) are taken stratified by class, in proportion,
    and spread over each class's raw mean intensity. Deterministic for a given ``seed``.
    """
    if data.source.rstrip().endswith("(test)"):
        raise PaceEdgeError(f"calibration data must come from the training split, not "
                            f"{data.source}")
    if size is not None and size < 1:
        raise PaceEdgeError(f"calibration size must be positive or all, got {size}")
    if not 0.0 <= holdout < 1.0:
        raise PaceEdgeError(f"calibration holdout must be in [0, 1), got {holdout}")
    y = model_labels(data, bundle.classes, "calibration data")
    x = model_inputs(bundle, data)
    rng = np.random.default_rng(seed)
    score = data.x.mean(axis=1)  # raw total intensity / baseline level
    everything = np.arange(len(data))
    if data.groups is not None:
        held = _group_holdout(y, data, holdout, seed, bundle.classes)
    else:
        n_hold = 0
        if holdout > 0 and len(data) >= 4:
            n_hold = max(int(round(holdout * len(data))), min(len(np.unique(y)), len(data) // 4))
        held = _stratified(y, everything, score, n_hold, rng) if n_hold else everything[:0]
    rest = np.setdiff1d(everything, held)
    total = rest.size if size is None else min(size, rest.size)
    chosen = _stratified(y, rest, score, total, rng)

    def counts(index: np.ndarray) -> dict[str, int]:
        return {c: int(np.sum(y[index] == i)) for i, c in enumerate(bundle.classes)}

    summary = {
        "source": data.source,
        "split": "train",
        "size": int(chosen.size),
        "requested_size": size if size is not None else "all",
        "available": len(data),
        "class_counts": counts(chosen),
        "holdout": int(held.size),
        "holdout_class_counts": counts(held),
        "group_aware": data.groups is not None,
        "selection": "stratified by class, evenly spaced over raw mean intensity; "
                     "preprocessed with the bundle's pipeline",
        "seed": seed,
        "intensity_range": {
            "available": [float(score.min()), float(score.max())],
            "selected": [float(score[chosen].min()), float(score[chosen].max())],
        },
        "resampled": bool(data.axis.size != bundle.input_length
                          or not np.allclose(data.axis, bundle.axis)),
    }
    if data.groups is not None:
        summary["groups"] = {"holdout": int(np.unique(data.groups[held]).size),
                             "calibration": int(np.unique(data.groups[chosen]).size)}
    return Calibration(inputs=x[chosen], summary=summary, holdout=x[held], labels=y[chosen],
                       holdout_labels=y[held])
