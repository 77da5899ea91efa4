"""The "unknown" detector's second graph output: the model's pooled features, whitened.

Added to every ONNX file (FP32, FP16, INT8 QDQ, TensorRT's explicit-quantisation file) and
every OpenVINO IR of an export once the target has written and checked them: the pooled
features are the output of the graph's one ``ReduceMean`` (the input to the classifier head),
and the whitening ``z = W (f − μ)`` is one float ``MatMul`` plus ``Add`` on them, so every
runtime returns ``z`` beside the logits and scores it with the class centres in the manifest.
In an INT8 OpenVINO IR, ``W`` is stored as INT8 with a scale per row (weight-only: the
product is computed in float), since reading the float ``d × d`` matrix cost as much as one
INT8 pointwise convolution at batch 1.
The logits are untouched; the features are checked against the PyTorch model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import PaceEdgeError
from ..trust import MahalanobisDetector, bundle_trust

if TYPE_CHECKING:
    from ..bundle import Bundle

FEATURES_NAME = "ood_features"
ONNX_KINDS = ("onnx", "onnx-qdq")  # the kinds runners load as ONNX (runtimes.select)
OPENVINO_KINDS = ("openvino-xml",)


def _weights(detector: MahalanobisDetector) -> tuple[np.ndarray, np.ndarray]:
    """``(Wᵀ, −W μ)`` as float32: ``z = f @ Wᵀ + b``."""
    w = detector.whiten.astype(np.float64)
    return (np.ascontiguousarray(w.T, dtype=np.float32),
            (-(w @ detector.mean.astype(np.float64))).astype(np.float32))


def add_onnx_features(path: Path, detector: MahalanobisDetector) -> None:
    """Rewrite the ONNX file ``path`` with the ``ood_features`` output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    if any(o.name == FEATURES_NAME for o in graph.output):
        return
    means = [n for n in graph.node if n.op_type == "ReduceMean"]
    if len(means) != 1:
        raise PaceEdgeError(f"{path.name}: expected one ReduceMean (the feature pool), found "
                            f"{len(means)}; cannot add the detector's features output")
    pooled = means[0].output[0]
    wt, bias = _weights(detector)
    graph.initializer.extend([numpy_helper.from_array(wt, "ood.whiten_t"),
                              numpy_helper.from_array(bias, "ood.bias")])
    graph.node.extend([
        helper.make_node("Cast", [pooled], ["ood.pooled_f32"], to=TensorProto.FLOAT,
                         name="ood.cast"),
        helper.make_node("MatMul", ["ood.pooled_f32", "ood.whiten_t"], ["ood.whitened"],
                         name="ood.whiten"),
        helper.make_node("Add", ["ood.whitened", "ood.bias"], [FEATURES_NAME], name="ood.shift"),
    ])
    batch = graph.input[0].type.tensor_type.shape.dim[0]
    out = helper.make_tensor_value_info(FEATURES_NAME, TensorProto.FLOAT, [None, wt.shape[1]])
    out.type.tensor_type.shape.dim[0].CopyFrom(batch)
    graph.output.append(out)
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))


def add_openvino_features(xml: Path, detector: MahalanobisDetector, precision: str) -> None:
    """Rewrite the OpenVINO IR ``xml`` (+ ``.bin``) with the ``ood_features`` output."""
    import openvino as ov
    import openvino.opset13 as ops

    model = ov.Core().read_model(str(xml))
    if any(FEATURES_NAME in r.get_output_tensor(0).get_names() for r in model.get_results()):
        return
    means = [op for op in model.get_ordered_ops() if op.get_type_name() == "ReduceMean"]
    if len(means) != 1:
        raise PaceEdgeError(f"{xml.name}: expected one ReduceMean (the feature pool), found "
                            f"{len(means)}; cannot add the detector's features output")
    wt, bias = _weights(detector)
    pooled = ops.convert(means[0].output(0), "f32")
    if precision == "int8":  # the d × d whitening read per call dominates batch-1 time
        z = ops.add(ops.matmul(pooled, _int8_weights(wt.T), False, True), ops.constant(bias))
    else:
        z = ops.add(ops.matmul(pooled, ops.constant(wt), False, False), ops.constant(bias))
    result = ops.result(z)
    z.get_output_tensor(0).set_names({FEATURES_NAME})
    model.add_results([result])
    xml.unlink()
    xml.with_suffix(".bin").unlink()
    ov.save_model(model, str(xml), compress_to_fp16=precision == "fp16")


def _int8_weights(w: np.ndarray) -> Any:
    """``w`` ``(out, in)`` as INT8 weights with one float32 scale per output row,
    dequantised in the graph (Constant i8 → Convert → Multiply): OpenVINO's CPU plugin keeps
    such a MatMul's weights in INT8 (4× less memory read per call) and computes in float."""
    import openvino.opset13 as ops

    scale = np.maximum(np.abs(w).max(axis=1, keepdims=True), 1e-30) / 127.0
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return ops.multiply(ops.convert(ops.constant(q), "f32"),
                        ops.constant(scale.astype(np.float32)))


def add_features_outputs(bundle: Bundle, out_dir: Path,
                         artefacts: list[dict[str, Any]]) -> str | None:
    """Add the features output to every model artefact of an export; its name, or ``None``
    when the bundle has no detector (then nothing is changed)."""
    _, detector = bundle_trust(bundle)
    if detector is None:
        return None
    for a in artefacts:
        if a["kind"] in ONNX_KINDS:
            add_onnx_features(out_dir / a["path"], detector)
        elif a["kind"] in OPENVINO_KINDS:
            add_openvino_features(out_dir / a["path"], detector, a["precision"])
    return FEATURES_NAME


def _artefact_outputs(path: Path, kind: str, x: np.ndarray, batch: Any,
                      config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Logits and whitened features of an ONNX or OpenVINO artefact on inputs ``x``."""
    from . import INPUT_NAME, OUTPUT_NAME
    from .parity import run_batched

    if kind in ONNX_KINDS:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

        def run(c: np.ndarray) -> np.ndarray:
            logits, z = session.run([OUTPUT_NAME, FEATURES_NAME], {INPUT_NAME: c})
            return np.concatenate([logits, z], axis=1)
    else:
        import openvino as ov

        compiled = ov.Core().compile_model(str(path), "CPU", config)
        request = compiled.create_infer_request()
        ports = compiled.output(OUTPUT_NAME), compiled.output(FEATURES_NAME)

        def run(c: np.ndarray) -> np.ndarray:
            out = request.infer({0: c})
            return np.concatenate([np.array(out[ports[0]]), np.array(out[ports[1]])], axis=1)

    both = run_batched(run, np.ascontiguousarray(x, dtype=np.float32), batch)
    classes = both.shape[1] - _feature_dim(path, kind)
    return both[:, :classes], both[:, classes:]


def _feature_dim(path: Path, kind: str) -> int:
    if kind in ONNX_KINDS:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
        out = next(o for o in model.graph.output if o.name == FEATURES_NAME)
        return int(out.type.tensor_type.shape.dim[1].dim_value)
    import openvino as ov

    model = ov.Core().read_model(str(path))
    port = next(o for o in model.outputs if FEATURES_NAME in o.get_names())
    return int(port.get_partial_shape()[1].get_length())


def _torch_outputs(bundle: Bundle, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits and whitened features of preprocessed ``x`` on PyTorch (the one PyTorch
    inference path, :class:`~pace_edge.evaluate.classifier.BundleClassifier`)."""
    from ..evaluate.classifier import BundleClassifier

    clf = BundleClassifier(bundle)
    assert clf.detector is not None
    logits, features = clf.logits_and_features(np.ascontiguousarray(x, dtype=np.float32))
    return logits, clf.detector.project(features)


def _model_artefacts(artefacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in artefacts if a["kind"] in ONNX_KINDS + OPENVINO_KINDS]


def features_parity(bundle: Bundle, out_dir: Path, artefacts: list[dict[str, Any]],
                    runtime: dict[str, Any], batch: Any, x: np.ndarray) -> list[dict[str, Any]]:
    """Per model artefact: the largest score difference against the PyTorch model relative to
    the threshold, and the share of inputs ``x`` (preprocessed) given the same verdict."""
    trust, detector = bundle_trust(bundle)
    if detector is None:
        return []
    reference = trust.scores(_torch_outputs(bundle, x)[1])
    config = runtime.get("openvino", {}).get("config", {})
    rows = []
    for a in _model_artefacts(artefacts):
        _, z = _artefact_outputs(out_dir / a["path"], a["kind"], x, batch, config)
        scores = trust.scores(z)
        same = (scores <= trust.threshold) == (reference <= trust.threshold)
        rows.append({"artefact": a["path"], "precision": a["precision"],
                     "max_score_delta_over_threshold":
                         float(np.max(np.abs(scores - reference)) / trust.threshold),
                     "same_verdict": float(same.mean()), "spectra": int(len(x))})
    return rows


def trust_evaluation(bundle: Bundle, out_dir: Path, artefacts: list[dict[str, Any]],
                     runtime: dict[str, Any], batch: Any, raw: np.ndarray, x: np.ndarray,
                     y: np.ndarray) -> list[dict[str, Any]]:
    """On labelled eval spectra (``raw`` as loaded, ``x`` preprocessed, ``y`` the model's
    class indices): per model (PyTorch FP32 first), the accepted share and the expected
    calibration error before and after temperature scaling."""
    from ..evaluate.trust_report import trust_summary

    trust, detector = bundle_trust(bundle)
    if detector is None:
        return []
    config = runtime.get("openvino", {}).get("config", {})
    models = [("PyTorch FP32", "torch", lambda: _torch_outputs(bundle, x))]
    for a in _model_artefacts(artefacts):
        models.append((a["path"], a["precision"],
                       lambda a=a: _artefact_outputs(out_dir / a["path"], a["kind"], x, batch,
                                                     config)))
    rows = []
    for name, precision, outputs in models:
        logits, z = outputs()
        summary = trust_summary(trust.judge(raw, logits, z), logits, y, trust.temperature)
        rows.append({"model": name, "precision": precision, **summary})
    return rows
