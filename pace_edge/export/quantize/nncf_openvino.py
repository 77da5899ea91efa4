"""OpenVINO INT8 IR through NNCF post-training quantisation of the FP32 ONNX graph.

``nncf.quantize`` with the PERFORMANCE preset (symmetric INT8 weights and activations, per-channel
weights), the calibration method mapped to NNCF range estimators, and the float layers chosen by
the sensitivity search in ``ignored_scope``. With validation data,
``nncf.quantize_with_accuracy_control`` may return more layers to float to meet ``max_drop``.

The IR is compiled with ``INFERENCE_PRECISION_HINT=f32`` (:data:`COMPILE_CONFIG`): the
quantised layers run INT8 either way; the float layers would otherwise run bf16 on CPUs with
AVX512-BF16/AMX, unlike the f32 in which NNCF and the sensitivity search measured them (on the
COV paper model the difference is small: logit NRMSE 0.0191 f32 vs 0.0198 bf16).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..ov_graph import save_ir
from .calibration import Calibration
from .layers import Layer, openvino_names, resolve
from .qdq import CALIB_BATCH, batches, quiet

COMPILE_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


def _range_estimator(method: str) -> Any:
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet as Sets

    return {"minmax": Sets.MINMAX, "percentile": Sets.MEAN_QUANTILE,
            "entropy": Sets.HISTOGRAM}[method]


def ignored_scope(model: Any, layers: Sequence[Layer]) -> Any:
    """An ``nncf.IgnoredScope`` naming the OpenVINO ops converted from ``layers``."""
    import nncf

    ops = [op.get_friendly_name() for op in model.get_ops()]
    return nncf.IgnoredScope(names=[n for la in layers for n in openvino_names(la, ops)])


def quantize_openvino(
    fp32_onnx: str | Path,
    xml_out: str | Path | None,
    calibration: Calibration,
    layers: Sequence[Layer],
    method: str = "minmax",
    float_layers: Sequence[str] = (),
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    max_drop: float | None = None,
    tick: Callable[[int], None] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Quantise ``fp32_onnx`` with NNCF; save the IR to ``xml_out`` (if given).

    ``validation`` (inputs, labels) and ``max_drop`` (a fraction, e.g. 0.01) switch to
    ``quantize_with_accuracy_control``. Returns the ``ov.Model`` and an info dict.
    """
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters

    model = ov.convert_model(str(fp32_onnx))
    batch = model.inputs[0].get_partial_shape()[0]
    fixed = batch.get_length() if batch.is_static else None
    chunks = batches(calibration.inputs, fixed, CALIB_BATCH)

    def transform(chunk: np.ndarray) -> np.ndarray:
        if tick is not None:
            tick(len(chunk))
        return chunk

    dataset = nncf.Dataset(chunks, transform)
    floats = resolve(layers, float_layers)
    params = AdvancedQuantizationParameters(
        activations_range_estimator_params=_range_estimator(method))
    common = dict(
        preset=nncf.QuantizationPreset.PERFORMANCE,
        subset_size=len(calibration),
        ignored_scope=ignored_scope(model, floats),
    )
    with quiet("nncf"):  # NNCF's own bars and logs off; ours is the calibration bar
        if validation is not None and max_drop is not None:
            x_val, y_val = validation
            val_chunks = list(zip(batches(x_val, fixed, 64), _label_chunks(y_val, fixed, 64),
                                  strict=True))

            def validate(compiled: Any, items: Any) -> tuple[float, None]:
                right = total = 0
                for xb, yb in items:
                    logits = compiled(xb)[0][: len(yb)]
                    right += int(np.sum(np.argmax(logits, 1) == yb))
                    total += len(yb)
                return right / max(total, 1), None

            quantized = nncf.quantize_with_accuracy_control(
                model, dataset, nncf.Dataset(val_chunks), validate,
                max_drop=max_drop, drop_type=nncf.DropType.ABSOLUTE,
                advanced_quantization_parameters=params, **common)
        else:
            quantized = nncf.quantize(model, dataset, advanced_parameters=params, **common)
    if xml_out is not None:
        save_ir(quantized, xml_out)
    info = ov_summary(quantized, layers, method)
    if validation is not None and max_drop is not None:
        info["accuracy_control"] = {"max_drop_pp": max_drop * 100, "requested_float":
                                    [la.key for la in floats], "validation_spectra":
                                    int(len(validation[1]))}
    return quantized, info


def quantized_layers(model: Any, layers: Sequence[Layer]) -> list[str]:
    """Keys of ``layers`` whose OpenVINO op reads a FakeQuantize output (runs INT8)."""
    ops = {op.get_friendly_name(): op for op in model.get_ops()}
    out = []
    for la in layers:
        for name in openvino_names(la, ops):
            op = ops[name]
            if any(op.input_value(i).get_node().get_type_name() == "FakeQuantize"
                   for i in range(op.get_input_size())):
                out.append(la.key)
                break
    return out


def ov_summary(model: Any, layers: Sequence[Layer], method: str) -> dict[str, Any]:
    """What NNCF did: tool, preset, range estimator, INT8 and float layers, FakeQuantize count."""
    import nncf

    int8 = quantized_layers(model, layers)
    return {
        "tool": f"nncf {nncf.__version__}",
        "preset": "performance (symmetric INT8 activations and weights)",
        "range_estimator": method,
        "int8_layers": int8,
        "float_layers": [la.key for la in layers if la.key not in int8],
        "fake_quantize": sum(op.get_type_name() == "FakeQuantize" for op in model.get_ops()),
    }


def _label_chunks(y: np.ndarray, batch: int | None, size: int) -> list[np.ndarray]:
    step = batch or size
    return [y[i : i + step] for i in range(0, len(y), step)]


def openvino_run(model: Any, x: np.ndarray) -> np.ndarray:
    """Logits of an ``ov.Model`` (or IR path) on CPU with :data:`COMPILE_CONFIG`."""
    import openvino as ov

    compiled = ov.Core().compile_model(model if not isinstance(model, str | Path)
                                       else str(model), "CPU", COMPILE_CONFIG)
    batch = compiled.inputs[0].get_partial_shape()[0]
    fixed = batch.get_length() if batch.is_static else None
    request = compiled.create_infer_request()
    out = []
    for chunk, n in zip(batches(x, fixed, 64), _sizes(len(x), fixed, 64), strict=True):
        out.append(np.array(request.infer({0: chunk})[compiled.output(0)])[:n])
    return np.concatenate(out)


def _sizes(n: int, batch: int | None, size: int) -> list[int]:
    step = batch or size
    return [min(step, n - i) for i in range(0, n, step)]
