"""TensorRT's INT8 calibration cache (calibration table): write, read and derive from Q/DQ ONNX.

The text format TensorRT's calibrators write and read (``IInt8Calibrator.write_calibration_cache``
/ ``read_calibration_cache``; ``trtexec --calib=FILE``)::

    TRT-100300-EntropyCalibration2
    spectrum: 3c010204
    /embed/Conv_output_0: 3d8f5c29

The first line is ``TRT-<version>-<algorithm>``, ``<version>`` being TensorRT's version integer
(``NV_TENSORRT_VERSION``: ``major*10000 + minor*100 + patch`` since TensorRT 10, e.g. 100300 for
10.3.0; ``major*1000 + minor*100 + patch`` before, e.g. 8601 for 8.6.1). Then one line per
network tensor: ``name: <hex>``, the hex being the big-endian IEEE-754 bits of the float32 scale,
where ``scale = amax / 127`` (the tensor's dynamic range is ``[-amax, amax]``). Tensor names are
the TensorRT network's, which the ONNX parser takes from the ONNX value names.

TensorRT reads the cache only in implicit-quantisation mode (a calibrator on an FP32 network),
deprecated since TensorRT 10.1 and removed in 11; with a Q/DQ network it is ignored. Torch-free
and onnx-free unless :func:`amax_from_qdq` is used.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BundleError

ALGORITHM = "EntropyCalibration2"  # IInt8EntropyCalibrator2, the one trtexec uses
ALGORITHMS = ("EntropyCalibration2", "EntropyCalibration", "MinMaxCalibration", "LegacyCalibration")
DEFAULT_TENSORRT_VERSION = "10.3.0"  # JetPack 6.1 / 6.2
QMAX = 127.0

_HEADER = re.compile(r"^TRT-(\d+)-([A-Za-z0-9]+)$")
_HEX = re.compile(r"^[0-9a-fA-F]{1,8}$")
# Ops that only move or reshape data: a tensor has the same range as their output.
_SHAPE_OPS = frozenset({"Unsqueeze", "Squeeze", "Reshape", "Flatten", "Identity", "Transpose"})


def parse_version(version: str | Iterable[int]) -> tuple[int, int, int]:
    """``(major, minor, patch)`` of ``"10.3.0"``, ``"10.3.0.30"`` or ``(10, 3, 0)``."""
    parts = [int(p) for p in (version.split(".") if isinstance(version, str) else version)]
    if not parts or len(parts) > 4 or any(p < 0 for p in parts):
        raise ValueError(f"not a TensorRT version: {version!r}")
    major, minor, patch = (parts + [0, 0])[:3]
    return major, minor, patch


def version_number(version: str | Iterable[int]) -> int:
    """TensorRT's version integer (``NV_TENSORRT_VERSION``): 100300 for 10.3.0, 8601 for 8.6.1."""
    major, minor, patch = parse_version(version)
    if minor > 99 or patch > 99:
        raise ValueError(f"TensorRT version part out of range: {version!r}")
    return major * (10000 if major >= 10 else 1000) + minor * 100 + patch


def header(
    version: str | Iterable[int] = DEFAULT_TENSORRT_VERSION, algorithm: str = ALGORITHM
) -> str:
    """The cache's first line, e.g. ``TRT-100300-EntropyCalibration2``."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown calibration algorithm {algorithm!r}")
    return f"TRT-{version_number(version)}-{algorithm}"


def encode_scale(scale: float) -> str:
    """The 8 hex digits of ``scale`` as a big-endian float32 (``1/127`` -> ``3c010204``)."""
    return struct.pack(">f", scale).hex()


def decode_scale(text: str) -> float:
    """The float32 whose big-endian bits are the hex ``text`` (1 to 8 digits)."""
    if not _HEX.match(text):
        raise ValueError(f"not a hex float32: {text!r}")
    return struct.unpack(">f", int(text, 16).to_bytes(4, "big"))[0]


def _check_scale(name: str, value: float) -> float:
    value32 = struct.unpack(">f", struct.pack(">f", value))[0]
    if not (math.isfinite(value32) and value32 > 0.0):
        raise ValueError(f"tensor {name!r}: scale must be positive and finite, got {value!r}")
    return value32


@dataclass
class CalibrationCache:
    """A parsed cache: its header and each tensor's float32 scale, in file order."""

    version: int
    algorithm: str = ALGORITHM
    scales: dict[str, float] = field(default_factory=dict)

    @property
    def header(self) -> str:
        return f"TRT-{self.version}-{self.algorithm}"

    def amax(self) -> dict[str, float]:
        """Each tensor's dynamic range ``scale * 127``."""
        return {name: scale * QMAX for name, scale in self.scales.items()}

    def to_text(self) -> str:
        lines = [self.header]
        for name, scale in self.scales.items():
            if not name or "\n" in name:
                raise ValueError(f"tensor name {name!r} cannot be written to a calibration cache")
            lines.append(f"{name}: {encode_scale(_check_scale(name, scale))}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_amax(
        cls,
        amax: Mapping[str, float],
        version: str | Iterable[int] = DEFAULT_TENSORRT_VERSION,
        algorithm: str = ALGORITHM,
    ) -> CalibrationCache:
        """A cache with ``scale = amax / 127`` per tensor (float32)."""
        header(version, algorithm)  # validates both
        scales = {name: _check_scale(name, float(a) / QMAX) for name, a in amax.items()}
        return cls(version_number(version), algorithm, scales)

    @classmethod
    def parse(cls, text: str, source: str = "calibration cache") -> CalibrationCache:
        """Parse cache text; :class:`BundleError` on a malformed header or line."""
        lines = text.splitlines()
        match = _HEADER.match(lines[0].strip()) if lines else None
        if match is None:
            first = lines[0][:60] if lines else ""
            raise BundleError(f"{source}: not a TensorRT calibration cache (header {first!r})")
        cache = cls(int(match.group(1)), match.group(2))
        for number, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            name, sep, value = line.rpartition(": ")  # names may contain ": " themselves
            try:
                if not sep or not name:
                    raise ValueError("expected 'name: hex'")
                cache.scales[name] = decode_scale(value.strip())
            except ValueError as exc:
                raise BundleError(f"{source}: line {number} {line[:60]!r}: {exc}") from None
        return cache


def write_cache(
    path: str | Path,
    amax: Mapping[str, float],
    version: str | Iterable[int] = DEFAULT_TENSORRT_VERSION,
    algorithm: str = ALGORITHM,
) -> Path:
    """Write the cache for tensors' ``amax`` (dynamic ranges) to ``path``."""
    path = Path(path)
    path.write_text(CalibrationCache.from_amax(amax, version, algorithm).to_text())
    return path


def read_cache(path: str | Path) -> CalibrationCache:
    """Read and parse a cache file."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: cannot read calibration cache ({exc})") from exc
    return CalibrationCache.parse(text, str(path))


def retarget(text: str, version: str | Iterable[int]) -> str:
    """``text`` with its header's TensorRT version replaced (the rest byte-identical).

    TensorRT may refuse a cache whose header names another TensorRT version, so a cache made
    for one version is re-headed before use with another.
    """
    cache = CalibrationCache.parse(text)
    _, _, rest = text.partition("\n")
    return f"TRT-{version_number(version)}-{cache.algorithm}\n{rest}"


# --- from a Q/DQ ONNX graph -------------------------------------------------------------------


def _constants(model: Any) -> dict[str, Any]:
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _value_names(model: Any) -> list[str]:
    """Graph inputs then node outputs, in order: the tensors a TensorRT network will have."""
    init = {t.name for t in model.graph.initializer}
    names = [v.name for v in model.graph.input if v.name not in init]
    for node in model.graph.node:
        if node.op_type != "Constant":
            names.extend(o for o in node.output if o)
    return names


def _load(model: Any) -> Any:
    import onnx

    return onnx.load(str(model)) if isinstance(model, (str, Path)) else model


def amax_from_qdq(
    qdq_model: Any,
    fp32_model: Any | None = None,
    input_amax: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Per-tensor ``amax`` (= QuantizeLinear scale x 127) of a Q/DQ graph's activations.

    Keys are the FP32 graph's value names (``fp32_model``, or the Q/DQ graph's own names when
    not given): a quantised activation's name is its QuantizeLinear input, or, where the quantiser
    renamed a graph output, the name its DequantizeLinear restores. Weights (constant Q/DQ
    inputs) are skipped. A graph input that is not quantised itself takes the range of the
    data-movement op (Unsqueeze, Reshape, ...) it feeds, or ``input_amax`` when given, which
    always wins for the names it holds. Ordered as the FP32 graph's tensors.
    """
    qdq = _load(qdq_model)
    fp32 = _load(fp32_model) if fp32_model is not None else qdq
    constants = _constants(qdq)
    order = _value_names(fp32)
    known = set(order)
    dq_output = {n.input[0]: n.output[0] for n in qdq.graph.node if n.op_type == "DequantizeLinear"}
    found: dict[str, float] = {}
    for node in qdq.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in constants:
            continue
        scale = constants.get(node.input[1])
        if scale is None or scale.size != 1:
            continue  # non-constant or per-channel activation scale: not TensorRT-conforming
        name = node.input[0]
        if name not in known:
            name = dq_output.get(node.output[0], name)
        if name in known:
            found[name] = float(scale.reshape(())) * QMAX
    consumers: dict[str, list[Any]] = {}
    for node in fp32.graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    init = {t.name for t in fp32.graph.initializer}
    for value in fp32.graph.input:
        name = value.name
        if name in init or name in found:
            continue
        frontier = [name]
        while frontier and name not in found:
            current = frontier.pop()
            for node in consumers.get(current, []):
                if node.op_type in _SHAPE_OPS and node.input[0] == current:
                    out = node.output[0]
                    if out in found:
                        found[name] = found[out]
                        break
                    frontier.append(out)
    for name, value in (input_amax or {}).items():
        found[name] = float(value)
    return {name: found[name] for name in order if name in found} | {
        name: value for name, value in found.items() if name not in known
    }
