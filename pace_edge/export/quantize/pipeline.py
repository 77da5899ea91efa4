"""INT8 export of a bundle (targets ``onnx``, ``openvino``, ``x86``): calibrate, measure, decide.

1. Calibration spectra from the training data (:func:`.calibration.select_calibration`).
2. ONNX Runtime calibrates the FP32 graph; each layer is quantised alone and judged against
   FP32 on held-out training spectra (:mod:`.sensitivity`, :mod:`.criterion`).
3. The cheapest float set whose build meets the task criterion (top-1 agreement and accuracy
   change with confidence bounds) is kept, by multiply-add cost (:mod:`.cost`); other
   calibration ranges and NNCF recipes are tried before heavy layers go float
   (:mod:`.choose`).
4. ONNX QDQ (:mod:`.qdq`) and/or OpenVINO IR through NNCF (:mod:`.nncf_openvino`) with those
   layers float; parity on the held-out spectra; the predicted and a measured speed-up
   (:mod:`.speed`); with eval data, the accuracy-gate numbers.

Only training spectra shape the artefacts: calibration and the held-out (validation) spectra are
disjoint subsets of the training data (whole samples apart where the data carry group ids).
Evaluation data never reach this module; the exporter measures and gates with them afterwards.
The options read are :class:`~pace_edge.export.ExportOptions`' INT8 fields, ``qat`` (epochs of
quantisation-aware fine-tuning first) and ``extra["criterion"]`` (a :class:`.criterion.Criterion`).
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
from .choose import METHOD_ORDER, Recipe, choose_openvino, choose_qdq, outlier_channels
from .cost import LayerCost, fixed_cost, layer_costs, predicted_speedup
from .criterion import Criterion, Verdict
from .sensitivity import LayerSensitivity, SearchResult

if TYPE_CHECKING:
    from ...bundle import Bundle
    from ...data import SpectralDataset
    from .qdq import QdqQuantizer

ACTIVATIONS_PNG = "int8_activations.png"
SENSITIVITY_PNG = "int8_sensitivity.png"
PARITY_MIN_AGREEMENT = 0.97  # catches broken artefacts; the criterion and --eval gate accuracy


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
    criterion: Criterion
    work: Path
    check: np.ndarray = field(init=False)
    check_labels: np.ndarray | None = field(init=False)
    reference: np.ndarray = field(init=False)
    costs: dict[str, LayerCost] = field(init=False)
    fixed: float = field(init=False)
    ranking: list[LayerSensitivity] = field(default_factory=list)
    floats: list[str] = field(default_factory=list)
    result: SearchResult | None = None
    openvino_result: SearchResult | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    tried: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        import onnx

        held = len(self.cal.holdout) > 0
        self.check = self.cal.holdout if held else self.cal.inputs
        labels = self.cal.holdout_labels if held else self.cal.labels
        self.check_labels = labels if len(labels) == len(self.check) else None
        self.reference = self.ort(self.fp32, self.check)
        model = onnx.load(str(self.fp32))
        self.costs = layer_costs(model, self.quantizer.layers)
        self.fixed = fixed_cost(model, self.quantizer.layers)

    @property
    def met(self) -> bool:
        """Whether every artefact's float set meets the criterion (within the limit)."""
        return all(r.met for r in (self.result, self.openvino_result) if r is not None)

    @property
    def searching(self) -> bool:
        return self.options.float_layers is None

    def judge(self, logits: np.ndarray) -> Verdict:
        return self.criterion.judge(self.reference, logits, self.check_labels)

    def ort(self, path: Path, x: np.ndarray) -> np.ndarray:
        return onnx_logits(path, x, self.options.batch)

    def quantizer_for(self, method: str) -> QdqQuantizer:
        from .qdq import QdqQuantizer

        if method == self.quantizer.method:
            return self.quantizer
        return QdqQuantizer(self.fp32, self.cal, method, self.work)

    def search(self, work: Path) -> None:
        """Choose the float layers by the criterion and their cost (ONNX Runtime QDQ)."""
        from .layers import resolve

        variant = work / "variant.onnx"
        quantizers: dict[str, QdqQuantizer] = {}

        def evaluator(method: str) -> Callable[[Sequence[str]], np.ndarray]:
            quantizers[method] = self.quantizer_for(method)

            def evaluate(floats: Sequence[str]) -> np.ndarray:
                quantizers[method].write(variant, floats)
                return self.ort(variant, self.check)

            return evaluate

        start = ([la.key for la in resolve(self.quantizer.layers,
                                           self.options.float_layers or ())]
                 if not self.searching else [])
        methods = [self.method, *(m for m in METHOD_ORDER if m != self.method)]
        if self.options.calib_method is not None:  # asked for one: use it alone
            methods = [self.method]
        tick = self.bars.bar(len(self.quantizer.layers), "layer sensitivity", "layer")
        choice = choose_qdq(methods, evaluator, self.quantizer.layers, self.costs, self.judge,
                            start, self.fixed, self.searching, tick)
        for method, q in quantizers.items():
            if method != choice.option and q is not self.quantizer:
                q.close()
        if choice.option != self.method:
            self.quantizer.close()
            self.quantizer, self.method = quantizers[choice.option], choice.option
        self.ranking, self.result, self.tried = choice.ranking, choice.search, choice.tried
        self.floats, self.steps = choice.float_layers, choice.search.steps
        self.clock.lap("sensitivity")

    def parity(self, artefact: str, runtime: str, logits: np.ndarray,
               torch_ref: np.ndarray) -> dict[str, Any]:
        row = compare(torch_ref, logits, artefact=artefact, runtime=runtime, precision="int8",
                      min_agreement=PARITY_MIN_AGREEMENT).to_dict()
        row["inputs"] = "held-out training spectra"
        return row

    def openvino(self, out_dir: Path, result: TargetResult, torch_ref: np.ndarray
                 ) -> dict[str, Any]:
        """NNCF INT8 IR: the search's float layers, a better NNCF recipe or more float layers
        if OpenVINO needs them (judged by the same criterion on the held-out training
        spectra)."""
        from .activations import activation_stats
        from .nncf_openvino import COMPILE_CONFIG, openvino_run, ov_summary, quantize_openvino
        from .speed import openvino_speedup

        layers = self.quantizer.layers
        models: dict[tuple[str, tuple[str, ...]], Any] = {}
        tick: Callable[[int], None] | None = self.bars.bar(
            len(self.cal), f"calibrating OpenVINO ({self.method})", "spectra")

        def evaluator(recipe: Recipe) -> Callable[[Sequence[str]], np.ndarray]:
            def evaluate(floats: Sequence[str]) -> np.ndarray:
                nonlocal tick
                key = (recipe.name, tuple(floats))
                if key not in models:
                    models[key], _ = quantize_openvino(self.fp32, None, self.cal, layers,
                                                       self.method, floats, tick=tick,
                                                       recipe=recipe)
                    tick = None
                return openvino_run(models[key], self.check)

            return evaluate

        stats = activation_stats(self.fp32, layers, self.cal.inputs)
        outliers = bool(outlier_channels(stats))
        recipe, found, tried = choose_openvino(self.floats, evaluator, self.ranking, self.costs,
                                               self.judge, outliers, self.fixed, self.searching)
        floats = found.float_layers
        model = models[(recipe.name, tuple(floats))]
        self.openvino_result = found
        xml = out_dir / XML_FILE
        save_ir(model, xml)
        info = ov_summary(model, layers, self.method)
        info.update(recipe=recipe.name, preset=recipe.describe())
        info["search"] = found.steps
        info["recipes_tried"] = tried
        info["outlier_channels"] = outliers
        info["verdict"] = found.verdict.to_dict()
        info["met"] = found.met
        kept = info["float_layers"]
        batch = self.options.batch if isinstance(self.options.batch, int) else 64
        info["speed"] = {
            "predicted_speedup": predicted_speedup(self.costs, kept, self.fixed),
            "measured": openvino_speedup(self.fp32, str(xml), self.check, batch),
        }
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
        if for_onnxruntime:
            from .speed import onnxruntime_speedup

            batch = self.options.batch if isinstance(self.options.batch, int) else 64
            info["speed"] = {
                "predicted_speedup": predicted_speedup(self.costs, self.floats, self.fixed),
                "measured": onnxruntime_speedup(self.fp32, path, self.check, batch),
            }
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
        plot_sensitivity([r.to_dict() for r in self.ranking], self.floats, None,
                         out_dir / SENSITIVITY_PNG)
        self.clock.lap("figures")
        return {"activation_amax": amax, "activations": stats}


def quantisation_aware(bundle: Bundle, data: SpectralDataset, qat: Any, seed: int
                       ) -> tuple[Bundle, dict[str, Any]]:
    """``bundle`` fine-tuned with INT8 rounding in the loop (:mod:`pace_edge.train.qat`) on
    training spectra ``data``; ``qat`` is an epoch count or a ``QatOptions``. Returns the
    fine-tuned bundle and its record (with the digest of its weights)."""
    from ...integrity.digest import sha256_bytes
    from ...train.qat import QatOptions, qat_finetune

    opts = qat if isinstance(qat, QatOptions) else QatOptions(epochs=int(qat), seed=seed)
    tuned = qat_finetune(bundle, data, opts)
    digest = sha256_bytes(b"".join(np.ascontiguousarray(tuned.bundle.weights[k]).tobytes()
                                   for k in sorted(tuned.bundle.weights)))
    return tuned.bundle, {**tuned.record, "tensors_sha256": digest}


def export_int8(bundle: Bundle, out_dir: Path, options: ExportOptions,
                kinds: Sequence[str]) -> TargetResult:
    """Write the INT8 artefacts of ``kinds`` into ``out_dir``: ``openvino`` (IR), ``onnx``
    (QDQ ONNX for ONNX Runtime) or ``onnx-qdq`` (the same for TensorRT's parser, every weight
    kept behind its Q/DQ pair)."""
    import onnx

    from .. import DEFAULT_CALIB_METHOD
    from .qdq import QdqQuantizer

    clock = _Clock()
    method = options.calib_method or DEFAULT_CALIB_METHOD  # None: the default, then others
    training = calibration_data(bundle, options.calib)
    parent, qat = bundle, None
    if options.qat:  # fine-tune with INT8 rounding first; judge against the parent
        bundle, qat = quantisation_aware(bundle, training, options.qat, options.seed)
        clock.lap("qat")
    cal = select_calibration(bundle, training, options.calib_size, options.seed)
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
        run: _Int8 | None = None
        try:
            run = _Int8(bundle, options, cal, fp32, quantizer, bars, clock, method,
                        options.extra.get("criterion") or Criterion(), Path(tmp))
            if qat is not None:
                run.reference = torch_logits(parent, run.check)
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
            if run is not None and run.quantizer is not quantizer:
                run.quantizer.close()
            quantizer.close()
    result.artefacts += [{"path": ACTIVATIONS_PNG, "kind": "figure", "precision": "int8"},
                         {"path": SENSITIVITY_PNG, "kind": "figure", "precision": "int8"}]
    result.calibration = {
        **cal.summary,
        "method": run.method,
        "float_layers": run.floats,
        "criterion": run.criterion.to_dict(),
        "verdict": run.result.verdict.to_dict() if run.result else None,
        "met": run.met,
        "resolution": run.criterion.resolution(len(run.check)),
        "check_spectra": int(len(run.check)),
        "methods_tried": run.tried,
        "layer_costs": {k: c.to_dict() for k, c in run.costs.items()},
        "predicted_speedup": predicted_speedup(run.costs, run.floats, run.fixed),
        "sensitivity": [r.to_dict() for r in run.ranking],
        "search": run.steps,
        **({"qat": qat} if qat is not None else {}),
        "artefacts": artefacts,
        **figures,
        "seconds": clock.seconds,
    }
    result.sensitivity_met = run.met
    return result
