"""A quick measured speed-up of an INT8 build over its FP32 graph, on this machine, at export.

The two are timed interleaved (FP32 call, INT8 call, ...) on the same batch so that load from
other processes hits both alike; the ratio of their median times is reported beside the
prediction of :mod:`.cost`. It is a sanity check at export time, not a benchmark
(``pace-edge benchmark`` is that).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

DEFAULT_BATCH = 64
DEFAULT_CALLS = 15


def interleaved_ratio(fp32: Callable[[np.ndarray], Any], int8: Callable[[np.ndarray], Any],
                      x: np.ndarray, calls: int = DEFAULT_CALLS, warmup: int = 3
                      ) -> dict[str, float]:
    """Median ms per call of ``fp32`` and ``int8`` on ``x`` and their ratio (the speed-up)."""
    for _ in range(warmup):
        fp32(x)
        int8(x)
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    for _ in range(calls):
        for name, fn in (("fp32", fp32), ("int8", int8)):
            t0 = time.perf_counter()
            fn(x)
            times[name].append((time.perf_counter() - t0) * 1e3)
    a, b = float(np.median(times["fp32"])), float(np.median(times["int8"]))
    return {"fp32_ms": a, "int8_ms": b, "speedup": a / b if b > 0 else float("inf")}


def openvino_speedup(fp32_onnx: Any, int8_model: Any, x: np.ndarray,
                     batch: int = DEFAULT_BATCH, calls: int = DEFAULT_CALLS) -> dict[str, Any]:
    """Measured speed-up of an OpenVINO INT8 model (``ov.Model`` or IR path) over the FP32
    ONNX graph compiled by OpenVINO, both with the export's compile config, at ``batch``."""
    import openvino as ov

    from .nncf_openvino import COMPILE_CONFIG

    core = ov.Core()
    rows = np.resize(x, (batch, x.shape[1])).astype(np.float32)

    def runner(model: Any) -> Callable[[np.ndarray], Any]:
        compiled = core.compile_model(model if not isinstance(model, str) else model, "CPU",
                                      COMPILE_CONFIG)
        request = compiled.create_infer_request()
        return lambda b: request.infer({0: b})

    out = interleaved_ratio(runner(str(fp32_onnx)), runner(int8_model), rows, calls)
    return {"runtime": "openvino-cpu", "batch": batch, "calls": calls, **out}


def onnxruntime_speedup(fp32_onnx: Any, int8_onnx: Any, x: np.ndarray,
                        batch: int = DEFAULT_BATCH, calls: int = DEFAULT_CALLS) -> dict[str, Any]:
    """Measured speed-up of an INT8 ONNX file over the FP32 one on ONNX Runtime's CPU."""
    import onnxruntime as ort

    from .. import INPUT_NAME

    rows = np.resize(x, (batch, x.shape[1])).astype(np.float32)

    def runner(path: Any) -> Callable[[np.ndarray], Any]:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda b: session.run(None, {INPUT_NAME: b})

    out = interleaved_ratio(runner(fp32_onnx), runner(int8_onnx), rows, calls)
    return {"runtime": "onnxruntime-cpu", "batch": batch, "calls": calls, **out}
