"""INT8 post-training quantisation of a PACE export: calibration, sensitivity, QDQ and NNCF.

Stable API (also used by the TensorRT target)::

    select_calibration(bundle, data, size=300, seed=0) -> Calibration
    quantize_qdq(fp32_onnx, out, calibration, method="minmax", exclude=()) -> dict

Importing this package is light: onnx, onnxruntime, openvino and nncf load on use.
"""

from __future__ import annotations

from ..qdq_rules import check_qdq
from .calibration import Calibration, select_calibration
from .qdq import METHODS, quantize_qdq

__all__ = ["METHODS", "Calibration", "check_qdq", "quantize_qdq", "select_calibration"]
