"""The engine check: a TensorRT plan's logits against ONNX Runtime's on the same ONNX file.

What ``polygraphy run model.onnx --trt --onnxrt`` compares, split in two because a Jetson need
not have ONNX Runtime: at export time ONNX Runtime runs every ONNX file a plan may be built from
on the export's parity spectra and the logits are saved beside it (raw little-endian float32,
shapes in ``manifest.runtime.tensorrt.engine_check``, hashed by the manifest); on the device
``pace-edge build-engine`` (or ``pace-stream --build-engine``) runs the freshly built plan on
the same spectra and compares: top-1 agreement and max |Δlogit| against :data:`TOLERANCES`, one
per plan precision, used by every builder and every test. Torch-free, TensorRT-free.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BundleError, PaceEdgeError
from .parity import ParityResult, compare

if TYPE_CHECKING:
    from .manifest import Manifest

SPECTRA_FILE = "engine_check_spectra.f32"


@dataclass(frozen=True)
class Tolerance:
    """Largest |Δlogit| allowed (``None``: not limited) and the least top-1 agreement."""

    max_abs: float | None
    min_agreement: float


# The plan against ONNX Runtime (CPU) on the ONNX file it was built from. FP32 plans are built
# with TF32 cleared, so only kernel choice and summation order differ (1e-3 leaves room for
# logits of magnitude ~10 summed over 1024 channels). FP16 rounds every activation to 11
# significant bits. INT8 plans are compared with the same Q/DQ model on ONNX Runtime: rounding
# of a requantised value may differ by one step, so only agreement is limited. Expectations,
# not measurements: no TensorRT engine has run where this project is developed.
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(1e-3, 0.99),
    "fp16": Tolerance(5e-2, 0.99),
    "int8": Tolerance(None, 0.98),
}


def tolerance_record() -> dict[str, dict[str, float | None]]:
    """:data:`TOLERANCES` as the manifest records them (``pace-stream`` reads them there)."""
    return {p: {"max_abs": t.max_abs, "min_agreement": t.min_agreement}
            for p, t in TOLERANCES.items()}


class EngineCheckFailed(PaceEdgeError):
    """The built plan does not reproduce ONNX Runtime's logits within its tolerance."""


def reference_file(source: str) -> str:
    """``engine_check_<stem>.f32``: ONNX Runtime's logits of ONNX file ``source``."""
    return f"engine_check_{PurePosixPath(source).stem}.f32"


def write_f32(path: Path, array: np.ndarray) -> Path:
    """``array`` as raw little-endian float32, row-major."""
    Path(path).write_bytes(np.ascontiguousarray(array, dtype="<f4").tobytes())
    return Path(path)


def read_f32(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A raw little-endian float32 file of ``shape``; :class:`BundleError` if its size differs."""
    data = Path(path).read_bytes()
    if len(data) != 4 * shape[0] * shape[1]:
        raise BundleError(f"{path}: {len(data)} bytes, expected {shape[0]}x{shape[1]} float32")
    return np.frombuffer(data, dtype="<f4").reshape(shape).astype(np.float32)


@dataclass(frozen=True)
class EngineCheckData:
    """The spectra and ONNX Runtime's logits for one source ONNX file of an export."""

    source: str
    spectra: np.ndarray
    reference: np.ndarray
    reference_runtime: str


def load_check_data(manifest: Manifest, source: str) -> EngineCheckData:
    """The engine-check spectra and reference logits of ``source`` from a verified export.

    Their hashes were checked when the manifest was loaded; :class:`BundleError` when the
    export has none for ``source`` (exported by an older pace-edge: export it again).
    """
    root = manifest.path or Path(".")
    check = (manifest.runtime.get("tensorrt") or {}).get("engine_check") or {}
    ref = (check.get("references") or {}).get(source)
    if not ref:
        raise BundleError(f"{root}: the export has no engine-check logits for {source}; export "
                          "it again with this pace-edge (--target jetson or tensorrt)")
    listed = {a.path for a in manifest.artefacts}
    for name in (check["spectra"], ref["file"]):
        if name not in listed:
            raise BundleError(f"{root}: engine-check file {name} is not listed in the manifest")
    n, length = int(check["count"]), int(check["length"])
    classes = int(check.get("classes", manifest.output.classes))
    return EngineCheckData(
        source=source,
        spectra=read_f32(root / check["spectra"], (n, length)),
        reference=read_f32(root / ref["file"], (n, classes)),
        reference_runtime=str(ref.get("runtime", "onnxruntime")),
    )


def check_engine(
    run: Callable[[np.ndarray], np.ndarray],
    data: EngineCheckData,
    precision: str,
    *,
    artefact: str,
    runtime: str,
) -> ParityResult:
    """Compare ``run`` (the plan's logits of ``(n, L)`` spectra) with ONNX Runtime's."""
    if precision not in TOLERANCES:
        raise PaceEdgeError(f"no engine tolerance for precision {precision!r}")
    tol = TOLERANCES[precision]
    logits = np.asarray(run(data.spectra), dtype=np.float32)
    return compare(data.reference, logits, artefact=artefact, runtime=runtime,
                   precision=precision, max_abs=tol.max_abs, min_agreement=tol.min_agreement)


def check_record(result: ParityResult, data: EngineCheckData, builder: str) -> dict[str, Any]:
    """What the manifest records about a plan's check (``runtime.tensorrt.plan.check``)."""
    return {
        **result.to_dict(),
        "reference": f"{data.source} on {data.reference_runtime}",
        "builder": builder,
    }


__all__ = [
    "SPECTRA_FILE",
    "TOLERANCES",
    "EngineCheckData",
    "EngineCheckFailed",
    "Tolerance",
    "check_engine",
    "check_record",
    "load_check_data",
    "read_f32",
    "reference_file",
    "tolerance_record",
    "write_f32",
]
