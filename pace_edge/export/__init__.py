"""Export a model bundle to deployable artefacts (ONNX, OpenVINO IR) with a verified manifest.

Importing this package is light (no torch, onnx or openvino): each target lives in its own
module, loaded on use through :data:`TARGETS`. A target module provides

    export(bundle, out_dir: Path, options: ExportOptions) -> TargetResult

(named by the target's ``entry``, ``"module:function"``), writing its artefacts into
``out_dir`` and measuring their parity with the PyTorch model.
:func:`pace_edge.export.exporter.export_bundle` is the one call that runs a target in a staging
folder, applies the gates, writes ``manifest.json`` (:mod:`.manifest`) and ``report.md``
(:mod:`.report`) and publishes the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import PaceEdgeError

if TYPE_CHECKING:
    from ..bundle import Bundle

Batch = int | Literal["dynamic"]

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_OPSET = 20
MIN_OPSET = 20  # the first opset with a native Gelu operator
INPUT_NAME = "spectrum"
OUTPUT_NAME = "logits"
# The TensorRT release the tensorrt/jetson targets are written for (JetPack 6 ships 10.3) and the
# highest ONNX opset its ONNX parser imports: onnx-tensorrt's docs/operators.md reads "TensorRT
# 10.0 supports operators in the inclusive range of opset 9 to opset 20" on its 10.0-GA and
# 10.1-GA branches; 10.3 is taken to be the same (later 10.x releases raised it).
TENSORRT_VERSION = "10.3"
TENSORRT_MAX_OPSET = {"10.3": 20}


# INT8 defaults (the quantize package reads them from here).
DEFAULT_CALIB_SIZE = 300
DEFAULT_CALIB_METHOD = "percentile"  # measured best on COV (fewest float layers at equal accuracy)
DEFAULT_MAX_DROP = 1.0  # percentage points of FP32-vs-INT8 disagreement the accuracy gate allows


@dataclass(frozen=True)
class ExportOptions:
    """How to export: precision, batch, ONNX opset, parity, INT8 calibration, gates, signing.

    INT8 (:mod:`pace_edge.export.quantize.pipeline`): ``calib`` (training data: a path or a
    :class:`~pace_edge.data.SpectralDataset`; default the bundle's recorded training source),
    ``calib_size`` (``None``: all), ``calib_method``, ``float_layers`` (keep exactly these float
    instead of searching), ``tolerance`` (logit NRMSE of the search; ``None``: its default).
    These shape the artefacts and come from training spectra only. ``evaluation`` (labelled
    held-out data) only measures: the FP32 model and every artefact on it, and the accuracy
    gate (``max_accuracy_drop`` pp). ``force`` replaces a previous export in ``out`` and
    accepts an export that fails the accuracy gate or the sensitivity tolerance; ``sign`` is an
    Ed25519 private key file. ``extra`` carries target-specific settings (``batch_profile``).
    """

    precision: str = "fp32"
    batch: Batch = "dynamic"
    opset: int = DEFAULT_OPSET
    parity_samples: int = 256
    seed: int = 0
    parity_data: Any = None  # preprocessed real spectra (n, L) to check parity on, if given
    calib: Any = None
    calib_size: int | None = DEFAULT_CALIB_SIZE
    calib_method: str = DEFAULT_CALIB_METHOD
    float_layers: tuple[str, ...] | None = None
    tolerance: float | None = None
    evaluation: Any = None  # SpectralDataset (its test split) or a path
    max_accuracy_drop: float = DEFAULT_MAX_DROP
    progress: bool = False
    force: bool = False
    sign: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TargetResult:
    """What a target wrote and measured. Artefact paths are relative to the output directory."""

    artefacts: list[dict[str, Any]]  # {"path", "kind", "precision"}
    parity: list[dict[str, Any]]  # ParityResult.to_dict() rows
    executed_graph: dict[str, Any] = field(default_factory=dict)
    runtime: dict[str, Any] = field(default_factory=dict)  # settings runners must use
    opset: int | None = None
    calibration: dict[str, Any] | None = None
    accuracy: dict[str, Any] | None = None
    sensitivity_met: bool | None = None  # INT8: whether the float-layer search met its tolerance


@dataclass(frozen=True)
class TargetSpec:
    """A registered export target: ``entry`` is ``"module:function"``, ``None`` if not yet."""

    name: str
    help: str
    entry: str | None
    precisions: tuple[str, ...] = ("fp32", "fp16")
    max_opset: int | None = None  # the highest ONNX opset the target's runtime parses

    def opset(self, requested: int | None) -> int:
        """``requested`` (default :data:`DEFAULT_OPSET`), refused above :attr:`max_opset` and
        below :data:`MIN_OPSET`; ``None`` gives the default capped at :attr:`max_opset`."""
        if requested is None:
            return min(DEFAULT_OPSET, self.max_opset or DEFAULT_OPSET)
        if requested < MIN_OPSET:
            raise PaceEdgeError(f"opset {requested} is below {MIN_OPSET}, the first opset with "
                                "the native Gelu operator the export writes")
        if self.max_opset is not None and requested > self.max_opset:
            raise PaceEdgeError(
                f"target {self.name} is built by TensorRT {TENSORRT_VERSION}, whose ONNX parser "
                f"reads opsets up to {self.max_opset}, not {requested}"
            )
        return requested

    def load(self) -> Callable[[Bundle, Path, ExportOptions], TargetResult]:
        """The target's export function; refuse targets that are not available."""
        if self.entry is None:
            raise PaceEdgeError(f"export target {self.name!r} is not available yet")
        module, _, function = self.entry.partition(":")
        return getattr(import_module(module), function)


_HERE = __name__
TARGETS: dict[str, TargetSpec] = {
    spec.name: spec
    for spec in (
        TargetSpec("onnx", "ONNX model for ONNX Runtime", f"{_HERE}.onnx_target:export",
                   PRECISIONS),
        TargetSpec("openvino", "OpenVINO IR", f"{_HERE}.openvino_target:export", PRECISIONS),
        TargetSpec("tensorrt", "TensorRT engine (NVIDIA GPU)", f"{_HERE}.tensorrt_target:export",
                   ("fp32", "fp16"), TENSORRT_MAX_OPSET[TENSORRT_VERSION]),
        TargetSpec("jetson", "TensorRT engine for NVIDIA Jetson",
                   f"{_HERE}.tensorrt_target:export_jetson", PRECISIONS,
                   TENSORRT_MAX_OPSET[TENSORRT_VERSION]),
        TargetSpec("x86", "OpenVINO IR + ONNX for x86 CPUs", f"{_HERE}.openvino_target:export_x86",
                   PRECISIONS),
    )
}


def get_target(name: str, precision: str) -> TargetSpec:
    """The registered target ``name``, checked to support ``precision``."""
    spec = TARGETS.get(name)
    if spec is None:
        raise PaceEdgeError(f"unknown export target {name!r}; choose from {', '.join(TARGETS)}")
    if spec.entry is None:
        spec.load()
    if precision not in PRECISIONS:
        raise PaceEdgeError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if precision not in spec.precisions:
        hint = "; for INT8 TensorRT builds use --target jetson" if name == "tensorrt" else ""
        raise PaceEdgeError(
            f"target {name} does not support precision {precision} "
            f"(it offers {', '.join(spec.precisions)}){hint}"
        )
    return spec


def run_target(bundle: Bundle, out_dir: Path, target: str, options: ExportOptions) -> TargetResult:
    """Export ``bundle`` with ``target`` into ``out_dir`` (which must exist)."""
    spec = get_target(target, options.precision)
    return spec.load()(bundle, Path(out_dir), options)


__all__ = [
    "DEFAULT_CALIB_METHOD",
    "DEFAULT_CALIB_SIZE",
    "DEFAULT_MAX_DROP",
    "DEFAULT_OPSET",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "PRECISIONS",
    "TARGETS",
    "TENSORRT_MAX_OPSET",
    "TENSORRT_VERSION",
    "Batch",
    "ExportOptions",
    "TargetResult",
    "TargetSpec",
    "get_target",
    "run_target",
]
