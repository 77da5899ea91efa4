"""Whether ``pace-stream``, the native (C++) runtime, can run a preprocessing pipeline.

The native runtime (``runtimes/native/src/preprocess.cpp``) implements every step the Python
side offers, but of pybaselines' baseline methods only the Whittaker-smoothing ``asls``,
``iasls``, ``arpls``, ``airpls``, ``iarpls``, ``psalsa`` and ``drpls`` (with their options except
initial ``weights``). The
export records the verdict in the manifest, ``runtime["pace-stream"]``::

    {"preprocessing": true}
    {"preprocessing": false, "step": "baseline:snip", "reason": "..."}

so an export says up front whether it runs natively, and ``pace-stream`` refuses one that
does not with the step named. Torch-free: the device-side import path may use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: The manifest's ``runtime`` key holding the record.
RUNTIME_KEY = "pace-stream"
#: Steps the native runtime implements (every step of :data:`pace_edge.preprocess.STEPS`).
NATIVE_STEPS = ("crop", "resample", "savgol", "baseline", "normalize", "despike")
#: Baseline methods the native runtime computes, with the options it accepts.
NATIVE_BASELINES: dict[str, tuple[str, ...]] = {
    "asls": ("lam", "p", "diff_order", "max_iter", "tol"),
    "iasls": ("lam", "p", "lam_1", "diff_order", "max_iter", "tol"),
    "arpls": ("lam", "diff_order", "max_iter", "tol"),
    "airpls": ("lam", "diff_order", "max_iter", "tol", "normalize_weights"),
    "iarpls": ("lam", "diff_order", "max_iter", "tol"),
    "psalsa": ("lam", "p", "k", "diff_order", "max_iter", "tol"),
    "drpls": ("lam", "eta", "diff_order", "max_iter", "tol"),
}


def unsupported_step(steps: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    """``(step, reason)`` of the first step ``pace-stream`` cannot run, else ``None``.

    ``steps`` is the serialised pipeline (``Pipeline.to_list()``, the manifest's
    ``input.preprocessing``); ``step`` reads as in a spec (``"baseline:snip"``).
    """
    for item in steps:
        name = str(item.get("name"))
        if name not in NATIVE_STEPS:
            return name, f"pace-stream has no '{name}' step"
        if name != "baseline":
            continue
        method = str(item.get("method", "asls"))
        if method not in NATIVE_BASELINES:
            *first, last = NATIVE_BASELINES
            known = f"{', '.join(first)} and {last}"
            return f"baseline:{method}", f"pace-stream computes the baseline methods {known} only"
        options = item.get("options") or {}
        if options.get("weights") is not None:
            return f"baseline:{method}", "pace-stream does not take initial baseline weights"
        extra = sorted(k for k in options if k not in NATIVE_BASELINES[method] + ("weights",))
        if extra:
            return (f"baseline:{method}",
                    f"pace-stream does not take the baseline option(s) {', '.join(extra)}")
    return None


def native_support(steps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The manifest record: ``{"preprocessing": True}``, or ``False`` with the step and why."""
    problem = unsupported_step(steps)
    if problem is None:
        return {"preprocessing": True}
    step, reason = problem
    return {"preprocessing": False, "step": step,
            "reason": f"{reason}; run this export with pace-edge stream (Python)"}


def native_runtime_entry(steps: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{"pace-stream": native_support(steps)}``, to merge into a manifest's ``runtime``."""
    return {RUNTIME_KEY: native_support(steps)}
