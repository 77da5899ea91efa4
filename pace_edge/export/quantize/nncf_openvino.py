"""OpenVINO INT8 IR through NNCF post-training quantisation of the FP32 ONNX graph.

``nncf.quantize`` with a :class:`.choose.Recipe` (default: the PERFORMANCE preset, symmetric INT8
weights and activations, per-channel weights, fast bias correction; or full bias correction,
SmoothQuant on convolutions, the MIXED preset), the calibration method mapped to NNCF range
estimators, and the float layers chosen by the search in ``ignored_scope``. Which layers stay
float is the search's decision (``sensitivity.py``, on held-out training spectra), so NNCF's
accuracy control is not used.

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
    tick: Callable[[int], None] | None = None,
    recipe: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """Quantise ``fp32_onnx`` with NNCF; save the IR to ``xml_out`` (if given).

    ``recipe`` (a :class:`.choose.Recipe`) sets the preset,
    bias correction and SmoothQuant (default: performance preset, fast bias correction).
    Returns the ``ov.Model`` and an info dict.
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
    from nncf.quantization.advanced_parameters import AdvancedSmoothQuantParameters

    from .choose import OPENVINO_RECIPES

    recipe = recipe or OPENVINO_RECIPES[0]
    smooth = (AdvancedSmoothQuantParameters(convolution=recipe.smooth_quant, matmul=-1)
              if recipe.smooth_quant is not None else AdvancedSmoothQuantParameters())
    params = AdvancedQuantizationParameters(
        activations_range_estimator_params=_range_estimator(method),
        smooth_quant_alphas=smooth)
    common = dict(
        preset=(nncf.QuantizationPreset.MIXED if recipe.preset == "mixed"
                else nncf.QuantizationPreset.PERFORMANCE),
        subset_size=len(calibration),
        ignored_scope=ignored_scope(model, floats),
        fast_bias_correction=recipe.fast_bias_correction,
        # SmoothQuant runs only for transformer-type models in NNCF
        **({"model_type": nncf.ModelType.TRANSFORMER} if recipe.smooth_quant is not None
           else {}),
    )
    with quiet("nncf"):  # NNCF's own bars and logs off; ours is the calibration bar
        quantized = nncf.quantize(model, dataset, advanced_parameters=params, **common)
    if xml_out is not None:
        save_ir(quantized, xml_out)
    info = ov_summary(quantized, layers, method)
    info["recipe"] = recipe.name
    info["preset"] = recipe.describe()
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
