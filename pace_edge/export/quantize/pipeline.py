"""INT8 export of a bundle (targets ``onnx``, ``openvino``, ``x86``): calibrate, measure, decide.

1. Calibration spectra from the training data (:func:`.calibration.select_calibration`).
2. ONNX Runtime calibrates the FP32 graph once; each layer is quantised alone and its logit
   error measured on held-out training spectra (:mod:`.sensitivity`).
3. The most sensitive layers stay float until the INT8 model is within tolerance.
4. ONNX QDQ (:mod:`.qdq`) and/or OpenVINO IR through NNCF (:mod:`.nncf_openvino`) with those
   layers float; NNCF's accuracy control and parity on the held-out training spectra.

Only training spectra shape the artefacts: calibration and the held-out (validation) spectra are
disjoint subsets of the training data (whole samples apart where the data carry group ids).
Evaluation data never reach this module; the exporter measures and gates with them afterwards.
The options read are :class:`~pace_edge.export.ExportOptions`' INT8 fields.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import PaceEdgeError
from .. import ExportOptions, TargetResult
from ..onnx_graph import ONNX_FILE, build_onnx, finalize, ort_graph_counts
from ..ov_graph import BIN_FILE, DEVICE, XML_FILE, executed_graph, save_ir
from ..parity import compare, onnx_logits, torch_logits
from .calibration import Calibration, select_calibration
from .sensitivity import (
    DEFAULT_MIN_AGREEMENT,
    DEFAULT_TOLERANCE,
    LayerSensitivity,
    choose_float,
    measure_layers,
)

if TYPE_CHECKING:
    from ...bundle import Bundle
    from ...data import SpectralDataset
    from .qdq import QdqQuantizer

ACTIVATIONS_PNG = "int8_activations.png"
SENSITIVITY_PNG = "int8_sensitivity.png"
PARITY_MIN_AGREEMENT = DEFAULT_MIN_AGREEMENT  # catches broken artefacts; --eval gates accuracy


def training_source(bundle: Bundle) -> Path | None:
    """The bundle's recorded training data path, if it still exists."""
    source = str(bundle.training.get("data", {}).get("source", ""))
    path = re.sub(r"\s+\((train|test|all)\)$", "", source)
    return Path(path) if path and Path(path).exists() else None


def calibration_data(bundle: Bundle, calib: Any) -> SpectralDataset:
    """The training split of ``calib`` (a path or data set), else of the training source."""
    from ...data import SpectralDataset, load_dataset

    if isinstance(calib, SpectralDataset):
        return calib
    if calib is None:
        calib = training_source(bundle)
        if calib is None:
            recorded = bundle.training.get("data", {}).get("source", "nothing")
            raise PaceEdgeError(
                "INT8 export needs calibration spectra: pass --calib DATA (training data; the "
                f"bundle records {recorded!r}, which is not a readable path here)")
    return load_dataset(calib, split="train")


class _Bars:
    """tqdm bars (calibration, sensitivity); quiet unless enabled and stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._open: list[Any] = []

    def bar(self, total: int, desc: str, unit: str) -> Callable[[int], None]:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False,
                   disable=None if self.enabled else True, dynamic_ncols=True)
        self._open.append(bar)

        def tick(n: int = 1) -> None:
            bar.update(min(n, bar.total - bar.n))
            if bar.n >= bar.total:
                bar.close()

        return tick

    def close(self) -> None:
        for bar in self._open:
            bar.close()


class _Clock:
    """Seconds per named phase."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 2)
        self._last = now


@dataclass
class _Int8:
    """One INT8 export in progress: calibration, FP32 reference, layer ranking, float layers."""

    bundle: Bundle
    options: ExportOptions
    cal: Calibration
    fp32: Path
    quantizer: QdqQuantizer
    bars: _Bars
    clock: _Clock
    method: str
    tolerance: float
    check: np.ndarray = field(init=False)
    reference: np.ndarray = field(init=False)
    ranking: list[LayerSensitivity] = field(default_factory=list)
    floats: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    met: bool = True

    def __post_init__(self) -> None:
        self.check = self.cal.holdout if len(self.cal.holdout) else self.cal.inputs
        self.reference = self.ort(self.fp32, self.check)

    @property
    def searching(self) -> bool:
        return self.options.float_layers is None

    def ort(self, path: Path, x: np.ndarray) -> np.ndarray:
        return onnx_logits(path, x, self.options.batch)

    def search(self, work: Path) -> None:
        """Rank the layers by sensitivity and choose the float ones (ONNX Runtime QDQ)."""
        from .layers import resolve

        variant = work / "variant.onnx"

        def evaluate(floats: Sequence[str]) -> np.ndarray:
            self.quantizer.write(variant, floats)
            return self.ort(variant, self.check)

        tick = self.bars.bar(len(self.quantizer.layers), "layer sensitivity", "layer")
        self.ranking = measure_layers(self.quantizer.layers, evaluate, self.reference, tick)
        if self.searching:
            choice = choose_float(self.ranking, evaluate, self.reference, self.tolerance)
        else:  # given: measure it, search nothing
            given = resolve(self.quantizer.layers, self.options.float_layers or ())
            choice = choose_float(self.ranking, evaluate, self.reference, float("inf"), 0.0,
                                  start=[la.key for la in given])
        self.floats, self.steps, self.met = choice.floats, choice.steps, choice.met
        self.clock.lap("sensitivity")

    def parity(self, artefact: str, runtime: str, logits: np.ndarray,
               torch_ref: np.ndarray) -> dict[str, Any]:
        row = compare(torch_ref, logits, artefact=artefact, runtime=runtime, precision="int8",
                      min_agreement=PARITY_MIN_AGREEMENT).to_dict()
        row["inputs"] = "held-out training spectra"
        return row

    def openvino(self, out_dir: Path, result: TargetResult, torch_ref: np.ndarray
                 ) -> dict[str, Any]:
        """NNCF INT8 IR: the search's float layers, more if OpenVINO needs them (its own
        search, then NNCF's accuracy control on the held-out training spectra)."""
        from .nncf_openvino import COMPILE_CONFIG, openvino_run, ov_summary, quantize_openvino

        layers = self.quantizer.layers
        models: dict[tuple[str, ...], Any] = {}
        tick: Callable[[int], None] | None = self.bars.bar(
            len(self.cal), f"calibrating OpenVINO ({self.method})", "spectra")

        def evaluate(floats: Sequence[str]) -> np.ndarray:
            nonlocal tick
            model, _ = quantize_openvino(self.fp32, None, self.cal, layers, self.method, floats,
                                         tick=tick)
            tick = None
            models[tuple(floats)] = model
            return openvino_run(model, self.check)

        choice = choose_float(
            self.ranking, evaluate, self.reference,
            self.tolerance if self.searching else float("inf"),
            DEFAULT_MIN_AGREEMENT if self.searching else 0.0, start=self.floats)
        self.met = self.met and choice.met
        xml = out_dir / XML_FILE
        validation = self.validation() if self.searching else None
        if validation is None:  # given float layers are kept exactly
            save_ir(models[tuple(choice.floats)], xml)
            info = ov_summary(models[tuple(choice.floats)], layers, self.method)
        else:  # NNCF may keep more layers float to stay within --max-accuracy-drop on the
            # held-out training spectra (never on evaluation data: those only measure)
            _, info = quantize_openvino(self.fp32, xml, self.cal, layers, self.method,
                                        choice.floats, validation,
                                        max(self.options.max_accuracy_drop, 0.0) / 100.0)
        info["search"] = choice.steps
        runtime = f"openvino-{DEVICE.lower()}"
        result.artefacts += [{"path": XML_FILE, "kind": "openvino-xml", "precision": "int8"},
                             {"path": BIN_FILE, "kind": "openvino-bin", "precision": "int8"}]
        graph = executed_graph(xml, DEVICE, COMPILE_CONFIG)
        result.executed_graph[runtime] = graph
        result.runtime["openvino"] = {"device": DEVICE, "config": dict(COMPILE_CONFIG)}
        row = self.parity(XML_FILE, runtime, openvino_run(xml, self.check), torch_ref)
        row["inference_precision"] = graph["inference_precision"]
        result.parity.append(row)
        self.clock.lap("openvino")
        return info

    def validation(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Held-out training spectra and labels for NNCF's accuracy control, if any."""
        if not len(self.cal.holdout):
            return None
        return self.cal.holdout, self.cal.holdout_labels

    def onnx(self, out_dir: Path, result: TargetResult, torch_ref: np.ndarray,
             for_onnxruntime: bool = True) -> dict[str, Any]:
        """ONNX QDQ with the search's float layers (for ONNX Runtime, or TensorRT's parser)."""
        path = out_dir / ONNX_FILE
        info = self.quantizer.write(path, self.floats)
        if for_onnxruntime:
            from .qdq import fold_unfused_weights

            info["float_output_layers"] = fold_unfused_weights(path)
        result.artefacts.append({"path": ONNX_FILE, "kind": "onnx", "precision": "int8"})
        result.executed_graph["onnxruntime-cpu"] = {"op_counts": ort_graph_counts(path)}
        result.runtime["onnxruntime"] = {"providers": ["CPUExecutionProvider"]}
        result.parity.append(self.parity(ONNX_FILE, "onnxruntime-cpu",
                                         self.ort(path, self.check), torch_ref))
        self.clock.lap("onnx")
        return info

    def figures(self, out_dir: Path) -> dict[str, Any]:
        """The report's PNGs; returns the activation statistics and amax for the manifest."""
        from .activations import activation_stats
        from .layers import resolve
        from .report_plot import plot_activation_ranges, plot_sensitivity

        layers = self.quantizer.layers
        amax = self.quantizer.activation_amax()
        stats = activation_stats(self.fp32, layers, self.cal.inputs)
        floats = resolve(layers, self.floats)
        read_by_int8 = {i for la in layers if la not in floats for i in la.inputs}
        float_tensors = {s["tensor"] for s in stats} - read_by_int8
        plot_activation_ranges(stats, amax, float_tensors, out_dir / ACTIVATIONS_PNG)
        plot_sensitivity([r.to_dict() for r in self.ranking], self.floats, self.tolerance,
                         out_dir / SENSITIVITY_PNG)
        self.clock.lap("figures")
        return {"activation_amax": amax, "activations": stats}


def export_int8(bundle: Bundle, out_dir: Path, options: ExportOptions,
                kinds: Sequence[str]) -> TargetResult:
    """Write the INT8 artefacts of ``kinds`` into ``out_dir``: ``openvino`` (IR), ``onnx``
    (QDQ ONNX for ONNX Runtime) or ``onnx-qdq`` (the same for TensorRT's parser, every weight
    kept behind its Q/DQ pair)."""
    import onnx

    from .qdq import QdqQuantizer

    clock = _Clock()
    method = options.calib_method
    cal = select_calibration(bundle, calibration_data(bundle, options.calib),
                             options.calib_size, options.seed)
    clock.lap("select")
    bars = _Bars(options.progress)
    result = TargetResult(artefacts=[], parity=[], opset=options.opset)
    with tempfile.TemporaryDirectory(prefix="pace-int8-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        model = finalize(build_onnx(bundle, options.batch, options.opset), bundle, "fp32")
        onnx.save_model(model, str(fp32))
        clock.lap("onnx_export")
        quantizer = QdqQuantizer(fp32, cal, method, tmp, progress=bars.bar(
            len(cal), f"calibrating ({method})", "spectra"))
        try:
            tolerance = DEFAULT_TOLERANCE if options.tolerance is None else options.tolerance
            run = _Int8(bundle, options, cal, fp32, quantizer, bars, clock, method, tolerance)
            run.search(Path(tmp))
            torch_ref = torch_logits(bundle, run.check)
            artefacts = {}
            if "openvino" in kinds:
                artefacts["openvino"] = run.openvino(out_dir, result, torch_ref)
            if "onnx" in kinds or "onnx-qdq" in kinds:
                artefacts["onnx"] = run.onnx(out_dir, result, torch_ref,
                                             for_onnxruntime="onnx" in kinds)
            figures = run.figures(out_dir)
        finally:
            bars.close()
            quantizer.close()
    result.artefacts += [{"path": ACTIVATIONS_PNG, "kind": "figure", "precision": "int8"},
                         {"path": SENSITIVITY_PNG, "kind": "figure", "precision": "int8"}]
    result.calibration = {
        **cal.summary,
        "method": method,
        "float_layers": run.floats,
        "tolerance_nrmse": run.tolerance,
        "check_spectra": int(len(run.check)),
        "sensitivity": [r.to_dict() for r in run.ranking],
        "search": run.steps,
        "tolerance_met": run.met,
        "artefacts": artefacts,
        **figures,
        "seconds": clock.seconds,
    }
    result.sensitivity_met = run.met
    return result
