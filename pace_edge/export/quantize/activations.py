"""FP32 activation statistics of the tensors each quantisable layer reads (for the report)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import INPUT_NAME
from .layers import Layer
from .qdq import batches, input_batch


def activation_stats(fp32_onnx: str | Path, layers: Sequence[Layer], x: np.ndarray,
                     limit: int = 128) -> list[dict[str, Any]]:
    """Per activation tensor read by ``layers``: range, spread and per-channel outliers.

    Run on the first ``limit`` rows of ``x`` with ONNX Runtime. ``resolution`` is the tensor's
    standard deviation in INT8 steps of a symmetric min/max scale (``std / (amax / 127)``):
    below ~10 the quantisation noise is a visible share of the signal.
    """
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(fp32_onnx))
    names = list(dict.fromkeys(i for la in layers for i in la.inputs))
    readers = {n: [la.key for la in layers if n in la.inputs] for n in names}
    del model.graph.output[:]
    for n in names:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(n))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    sample = x[:limit]
    runs = [session.run(None, {INPUT_NAME: c}) for c in batches(sample, input_batch(model))]
    rows = []
    for k, name in enumerate(names):
        a = np.concatenate([r[k] for r in runs])[: len(sample)].astype(np.float64)
        amax = float(np.abs(a).max())
        row = {
            "tensor": name,
            "read_by": readers[name],
            "min": float(a.min()),
            "max": float(a.max()),
            "std": float(a.std()),
            "p999_abs": float(np.quantile(np.abs(a), 0.999)),
            "resolution": float(a.std() / (amax / 127)) if amax > 0 else 0.0,
        }
        if a.ndim == 3 and a.shape[1] > 1:
            per_channel = np.abs(a).max(axis=(0, 2))
            row["channel_amax_median"] = float(np.median(per_channel))
            row["channel_amax_max"] = float(per_channel.max())
        rows.append(row)
    return rows
