"""ONNX INT8 in explicit QDQ form (onnxruntime.quantization), TensorRT-parser compatible.

Every file written is checked against TensorRT's explicit-quantisation rules by the one checker,
:func:`pace_edge.export.qdq_rules.check_qdq`: INT8 activations and weights, all zero points 0
(symmetric), weights in [-127, 127], Conv weight scales per output channel (axis 0), activations
per tensor. A constant MatMul operand (the input pool) is quantised per tensor, biases stay
float. Layers in ``exclude`` stay float: their inputs get no QuantizeLinear/DequantizeLinear.

Calibration runs once per :class:`QdqQuantizer`; its ranges are cached, so writing variants
that exclude different layers (the sensitivity search) costs no further calibration.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ... import __version__
from ...errors import PaceEdgeError
from .. import INPUT_NAME
from ..qdq_rules import require_conforming
from .calibration import Calibration
from .layers import Layer, pace_layers, resolve

METHODS = ("minmax", "percentile", "entropy")
PERCENTILE = 99.99
CALIB_BATCH = 16
QUANTIZED_OPS = ("Conv", "Gemm", "MatMul", "Add")
ENTROPY_BINS = 1024


def _ort_method(method: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    table = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
             "entropy": CalibrationMethod.Entropy}
    if method not in table:
        raise PaceEdgeError(f"unknown calibration method {method!r}; choose from "
                            f"{', '.join(METHODS)}")
    return table[method]


def input_batch(model: Any) -> int | None:
    """The fixed batch size of the model's ``spectrum`` input, ``None`` if dynamic."""
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    return int(dim.dim_value) if dim.HasField("dim_value") else None


def batches(x: np.ndarray, batch: int | None, size: int = CALIB_BATCH) -> list[np.ndarray]:
    """``x`` in chunks; for a fixed ``batch``, exactly that many rows (the last wraps round)."""
    step = batch or size
    out = []
    for start in range(0, len(x), step):
        chunk = x[start : start + step]
        if batch and len(chunk) < batch:
            chunk = np.concatenate([chunk, np.resize(x, (batch - len(chunk), x.shape[1]))])
        out.append(np.ascontiguousarray(chunk, dtype=np.float32))
    return out


def _reader(chunks: list[np.ndarray], tick: Callable[[int], None] | None) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[np.ndarray] = iter(chunks)

        def get_next(self) -> dict[str, np.ndarray] | None:
            chunk = next(self._it, None)
            if chunk is None:
                return None
            if tick is not None:
                tick(len(chunk))
            return {INPUT_NAME: chunk}

        def __len__(self) -> int:
            return len(chunks)

    return Reader()


@contextlib.contextmanager
def quiet(logger: str | None = None) -> Iterator[None]:
    """Silence a quantisation library's info logs (``logger``; None: the root logger, where
    onnxruntime.quantization logs its pre-processing advice) and its prints to stdout."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        log.setLevel(level)


class QdqQuantizer:
    """Calibrates an FP32 ONNX model once and writes QDQ INT8 variants of it."""

    def __init__(self, fp32_onnx: str | Path, calibration: Calibration, method: str = "minmax",
                 workdir: str | Path | None = None,
                 progress: Callable[[int], None] | None = None) -> None:
        import onnx

        if len(calibration) == 0:
            raise PaceEdgeError("no calibration spectra")
        self.fp32 = Path(fp32_onnx)
        self.model = onnx.load(str(self.fp32))
        self.layers = pace_layers(self.model)
        self.method = method
        self._method = _ort_method(method)
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="pace-qdq-")
            workdir = self._tmp.name
        self.cache = Path(workdir) / f"calibration-{method}.json"
        self.cache.unlink(missing_ok=True)
        # histogram calibrators stack each tensor's batches: they must all be the same size
        size = CALIB_BATCH if method == "minmax" else 1
        self._chunks = batches(calibration.inputs, input_batch(self.model), size)
        self._progress = progress

    def calibrate(self) -> None:
        """Collect activation ranges (once) into the cache file ``write`` reads."""
        from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

        if self.cache.is_file():
            return
        options = {"symmetric": True, "percentile": PERCENTILE}
        if self.method == "entropy":  # ORT's default 128 bins leave entropy no choice but max
            options.update(num_bins=ENTROPY_BINS, num_quantized_bins=128)
        with tempfile.TemporaryDirectory(prefix="pace-calib-") as tmp, quiet():
            calibrator = create_calibrator(
                self.fp32, list(QUANTIZED_OPS),
                augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                calibrate_method=self._method, extra_options=options)
            calibrator.collect_data(_reader(self._chunks, self._progress))
            save_tensors_data(calibrator.compute_data(), self.cache)

    def write(self, out: str | Path, exclude: Sequence[str] = ()) -> dict[str, Any]:
        """Write the QDQ model to ``out`` with ``exclude`` (layer keys or node names) float."""
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

        excluded = resolve(self.layers, exclude)
        self.calibrate()
        consts = {i.name for i in self.model.graph.initializer}
        extra = {
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "QuantizeBias": False,
            # Q/DQ on what a layer reads, never on what it writes: outputs feed GELU, the
            # mean or the graph output (logits), which run float anyway (TensorRT placement)
            "OpTypesToExcludeOutputQuantization": list(QUANTIZED_OPS),
            # the input pool's constant MatMul operand gets one scale: TensorRT takes no
            # per-row (reduction axis) scales on a MatMul
            "TensorQuantOverrides": {
                name: [{"quant_type": QuantType.QInt8, "symmetric": True}]
                for node in self.model.graph.node if node.op_type == "MatMul"
                for name in node.input if name in consts
            },
        }
        with quiet():
            quantize_static(
                str(self.fp32), str(out), None,
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=self._method,
                nodes_to_exclude=[la.node for la in excluded],
                op_types_to_quantize=list(QUANTIZED_OPS),
                extra_options=extra,
                calibration_cache_path=self.cache,
            )
        _tag(out, self.model)
        require_conforming(out, f"the QDQ model {out.name}")
        return {
            "method": self.method,
            "excluded_layers": [la.key for la in excluded],
            "excluded_nodes": [la.node for la in excluded],
            "activation_amax": self.activation_amax(
                [la for la in self.layers if la not in excluded]),
        }

    def ranges(self) -> dict[str, tuple[float, float]]:
        """Calibrated ``(low, high)`` of every tensor the quantisable ops read."""
        from onnxruntime.quantization.calibrate import load_tensors_data

        self.calibrate()
        data = load_tensors_data(self.cache)
        return {k: tuple(float(v) for v in np.ravel(t.range_value)[:2]) for k, t in data.items()}

    def activation_amax(self, layers: Sequence[Layer] | None = None) -> dict[str, float]:
        """Symmetric range ``max(|low|, |high|)`` of the activations ``layers`` read."""
        ranges = self.ranges()
        names = [i for la in (self.layers if layers is None else layers) for i in la.inputs]
        return {n: max(abs(ranges[n][0]), abs(ranges[n][1])) for n in dict.fromkeys(names)
                if n in ranges}

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def _tag(path: str | Path, source: Any) -> None:
    """Copy pace-edge metadata to the QDQ file, marked ``int8``."""
    import onnx

    model = onnx.load(str(path))
    meta = {p.key: p.value for p in source.metadata_props}
    meta["pace_edge.precision"] = "int8"
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    model.producer_name = "pace-edge"
    model.producer_version = __version__
    model.doc_string = "PACE spectral classifier (int8 QDQ): spectrum -> logits"
    onnx.save_model(model, str(path))


def fold_unfused_weights(path: str | Path) -> list[str]:
    """For ONNX Runtime: store the dequantized weights of layers it cannot run in INT8.

    ONNX Runtime's CPU provider runs a QDQ Conv, Gemm or MatMul as an integer kernel only when
    its output goes to a QuantizeLinear; otherwise it runs the float layer and dequantizes the
    constant weight again on every call (on the paper model, the first block's pointwise conv,
    whose residual Add the sensitivity search keeps float, spent most of a batch-1 call there).
    For those layers the weight's DequantizeLinear is replaced by its output, the same float32
    values ``q * scale``, so the numbers do not change. Rewrites ``path``; returns the layers.
    (Not for TensorRT, which fuses weight Q/DQ itself and expects them: see ``qdq_rules``.)
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    init = {i.name: i for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    folded, dropped = [], []
    for node in graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.input) < 2:
            continue
        after = users.get(node.output[0], [])
        if after and all(u.op_type == "QuantizeLinear" for u in after):
            continue  # ONNX Runtime fuses this one into an integer kernel
        dq = producer.get(node.input[1])
        if (dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in init
                or len(users.get(dq.output[0], [])) != 1):
            continue
        q = numpy_helper.to_array(init[dq.input[0]]).astype(np.float32)
        scale = numpy_helper.to_array(init[dq.input[1]]).astype(np.float32)
        zero = (numpy_helper.to_array(init[dq.input[2]]).astype(np.float32)
                if len(dq.input) > 2 and dq.input[2] in init else np.float32(0))
        if scale.ndim == 1 and scale.size > 1:
            axis = next((a.i for a in dq.attribute if a.name == "axis"), 1) % q.ndim
            shape = [1] * q.ndim
            shape[axis] = scale.size
            scale, zero = scale.reshape(shape), np.reshape(zero, shape if np.ndim(zero) else ())
        weight = ((q - zero) * scale).astype(np.float32)
        name = f"{node.name}_weight_dequantized"
        graph.initializer.append(numpy_helper.from_array(weight, name))
        node.input[1] = name
        dropped.append(dq)
        folded.append(node.name)
    for dq in dropped:
        graph.node.remove(dq)
    live = {name for node in graph.node for name in node.input}
    for tensor in [i for i in graph.initializer if i.name not in live]:
        graph.initializer.remove(tensor)
    if folded:
        onnx.save_model(model, str(path))
    return folded


def quantize_qdq(
    fp32_onnx: Path,
    out: Path,
    calibration: Calibration,
    method: str = "minmax",
    exclude: Sequence[str] = (),
) -> dict[str, Any]:
    """Write an explicit-quantisation (QDQ) INT8 ONNX of ``fp32_onnx`` to ``out``.

    Symmetric INT8 activations and weights (zero point 0), per-channel weight scales on axis 0,
    weights in [-127, 127]; ``exclude`` names layers (keys such as ``pool``, ``embed``,
    ``blocks.0.pw`` or ONNX node names) left in float. Returns ``method``, the excluded layers
    and nodes, and each quantised activation's calibrated amax.
    """
    quantizer = QdqQuantizer(fp32_onnx, calibration, method)
    try:
        return quantizer.write(out, exclude)
    finally:
        quantizer.close()
