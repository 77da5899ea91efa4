"""Which backend runs an export or bundle: explicit choices checked, ``auto`` explained.

``auto`` on an export picks the best backend that can run one of its artefacts here:

1. ``tensorrt``: a TensorRT plan was built beside the export on this device (``pace-edge
   build-engine`` or ``pace-stream --build-engine`` write ``model.plan`` and its record
   ``engine.json``, never the manifest) and its record verifies against the export
   (:mod:`pace_edge.export.engine_record`: record digest, plan sha256, source ONNX sha256 as
   listed by the verified manifest, engine check passed), the ``tensorrt`` package is installed
   and an NVIDIA GPU is visible (through cuda-python, which the TensorRT runner uses for device
   memory). An edited record or a swapped plan is refused whatever the backend; a stale or
   unchecked plan is skipped by ``auto`` (with the reason) and refused when asked for;
2. ``openvino``: an OpenVINO IR (``openvino-xml``) is listed and ``openvino`` is installed;
3. ``onnxruntime``: an ONNX model (``onnx``, or ``onnx-qdq`` for INT8) is listed and
   ``onnxruntime`` is installed.

A bundle directory runs on ``torch``. An export never falls back to PyTorch on its own: choose
``torch`` explicitly to run the export's source bundle as a reference. Availability is checked
without importing the runtimes (:func:`package_available`), so selection stays cheap.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PaceEdgeError
from .base import BACKENDS

if TYPE_CHECKING:
    from ..export.engine_record import EngineRecord
    from ..export.manifest import Artefact, Manifest

ALIASES = {"onnx": "onnxruntime", "ort": "onnxruntime", "ov": "openvino", "trt": "tensorrt",
           "pytorch": "torch"}
# Artefact kinds each backend runs (the first listed is the canonical one).
KINDS: dict[str, tuple[str, ...]] = {
    "onnxruntime": ("onnx", "onnx-qdq"),
    "openvino": ("openvino-xml",),
    "tensorrt": ("tensorrt-plan",),
}
WHAT = {"onnxruntime": "ONNX model", "openvino": "OpenVINO IR", "tensorrt": "TensorRT plan"}
PACKAGES = {"onnxruntime": "onnxruntime", "openvino": "openvino", "tensorrt": "tensorrt",
            "torch": "torch"}
AUTO_ORDER = ("tensorrt", "openvino", "onnxruntime")
_LABELS = {"onnxruntime": "onnx", "openvino": "openvino", "tensorrt": "tensorrt"}
BUILD_HINT = "run pace-edge build-engine on the device"


@dataclass(frozen=True)
class DevicePlan:
    """The export's device-built plan as selection sees it: its verified record, and why it
    may not run the export (``""`` when it may)."""

    record: EngineRecord
    problem: str = ""

    @property
    def usable(self) -> bool:
        return not self.problem


def device_plan(manifest: Manifest) -> DevicePlan | None:
    """The plan built beside the verified export ``manifest`` (``None`` if none was built);
    :class:`~pace_edge.errors.BundleError` when its record was edited or the plan swapped."""
    from ..export.engine_record import device_plan as read_plan_record
    from ..export.engine_record import plan_problem

    record = read_plan_record(manifest)
    return None if record is None else DevicePlan(record, plan_problem(manifest, record))


@dataclass(frozen=True)
class Selection:
    """The chosen backend, the artefact it runs (``None`` for a bundle) and why."""

    backend: str
    reason: str
    artefact: Artefact | None = None
    bundle: Path | None = None  # the bundle directory the torch backend runs


def package_available(name: str) -> bool:
    """Whether ``name`` can be imported here, found without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def gpu_status() -> tuple[bool, str]:
    """Whether an NVIDIA GPU is usable for TensorRT, and a phrase saying which or why not."""
    from .tensorrt_runner import cuda_runtime, gpu_name

    try:
        cudart = cuda_runtime()
        return True, f"GPU {gpu_name(cudart)}"
    except PaceEdgeError as exc:
        return False, str(exc)


def runnable_artefacts(manifest: Manifest, plan: DevicePlan | None = None
                       ) -> list[tuple[str, Artefact]]:
    """``(backend, artefact)`` for every artefact of the export some backend runs, plus the
    device-built TensorRT plan when ``plan`` is usable. A plan comes only from its verified
    record (``engine.json``): a ``model.plan`` without one, or one listed in a manifest by an
    older pace-edge, is not run."""
    found = [(backend, a) for a in manifest.artefacts
             for backend, kinds in KINDS.items() if a.kind in kinds and backend != "tensorrt"]
    if plan is not None and plan.usable:
        found.append(("tensorrt", plan.record.artefact()))
    return found


def artefact_summary(manifest: Manifest, plan: DevicePlan | None = None) -> str:
    """``"onnx fp32, openvino fp32"``: what an export can be run from."""
    items = [f"{_LABELS[b]} {a.precision}" for b, a in runnable_artefacts(manifest, plan)]
    return ", ".join(items) or "no runnable artefacts"


def pick_artefact(manifest: Manifest, backend: str, precision: str | None,
                  plan: DevicePlan | None = None) -> Artefact | None:
    """The artefact ``backend`` would run: of ``precision`` if given, else preferably of the
    export's own precision, else the first listed; ``None`` if there is none."""
    found = [a for b, a in runnable_artefacts(manifest, plan) if b == backend]
    if precision is not None:
        found = [a for a in found if a.precision == precision]
    preferred = [a for a in found if a.precision == manifest.precision]
    return (preferred or found or [None])[0]


def normalize_backend(backend: str) -> str:
    name = ALIASES.get(backend.lower(), backend.lower())
    if name != "auto" and name not in BACKENDS:
        raise PaceEdgeError(
            f"unknown backend {backend!r}; choose from auto, {', '.join(BACKENDS)}"
        )
    return name


def select_backend(
    source: str | Path | Manifest, backend: str = "auto", precision: str | None = None,
    allow_failed: bool = False,
) -> Selection:
    """Check or choose the backend for an export (a verified :class:`Manifest`, or its
    directory, verified here: the manifest against its digest, then every file's sha256) or a
    bundle directory; :class:`PaceEdgeError` saying precisely why when the choice cannot run
    here. An export whose manifest records a failed gate (parity, accuracy, INT8 sensitivity)
    is refused, naming the gate, unless ``allow_failed``. Signatures are checked by
    :func:`~pace_edge.runtimes.load_runner` (``trusted_keys``)."""
    from ..export.manifest import MANIFEST_FILE, Manifest, load_manifest, refuse_failed

    backend = normalize_backend(backend)
    if isinstance(source, Manifest):
        refuse_failed(source, allow_failed)
        return _for_export(source, backend, precision)
    path = Path(source)
    if (path / MANIFEST_FILE).is_file():
        manifest = load_manifest(path)
        refuse_failed(manifest, allow_failed)
        return _for_export(manifest, backend, precision)
    if (path / "model.json").is_file():
        return _for_bundle(path, backend, precision)
    if not path.exists():
        raise PaceEdgeError(f"{path} does not exist")
    raise PaceEdgeError(
        f"{path} is neither an export directory ({MANIFEST_FILE}) nor a model bundle (model.json)"
    )


# What brings each backend's package (pyproject.toml's extras; TensorRT comes with JetPack).
INSTALL_HINTS = {"onnxruntime": "pip install 'pace-edge[device]'",
                 "openvino": "pip install 'pace-edge[device]'",
                 "torch": "pip install 'pace-edge[train]'",
                 "tensorrt": "JetPack or NVIDIA's tensorrt wheels; see pace-edge doctor"}


def _not_installed(backend: str) -> str:
    package = PACKAGES[backend]
    return f"the {package} package is not installed ({INSTALL_HINTS[backend]})"


def _for_bundle(path: Path, backend: str, precision: str | None) -> Selection:
    if backend not in ("auto", "torch"):
        raise PaceEdgeError(
            f"backend {backend}: {path} is a model bundle, not an export; run pace-edge export "
            "first, or choose backend torch"
        )
    if precision not in (None, "fp32"):
        raise PaceEdgeError(f"backend torch: a bundle runs in fp32, not {precision}")
    if not package_available("torch"):
        raise PaceEdgeError(
            f"backend torch: {_not_installed('torch')}; export the bundle (pace-edge export) "
            "to run it with ONNX Runtime or OpenVINO"
        )
    why = "a model bundle runs on PyTorch" if backend == "auto" else "requested"
    return Selection("torch", f"torch: {why}", bundle=path)


def _source_bundle(manifest: Manifest) -> Path:
    recorded = manifest.source.get("bundle")
    where = manifest.path or Path(".")
    if not recorded:
        raise PaceEdgeError(f"backend torch: the export {where} records no source bundle")
    bundle = Path(recorded)
    if not (bundle / "model.json").is_file():
        raise PaceEdgeError(
            f"backend torch: the export's source bundle {bundle} is not here; load the bundle "
            "directory instead"
        )
    return bundle


def _plan_unusable(manifest: Manifest, plan: DevicePlan | None) -> str:
    """Why the export's device-built plan may not run it (with the command that rebuilds it),
    or ``""`` when there is none or it may."""
    if plan is None or plan.usable:
        return ""
    return f"{plan.problem}; rebuild it with {_rebuild(manifest)}"


def _rebuild(manifest: Manifest) -> str:
    from .tensorrt_runner import rebuild_command

    return rebuild_command(manifest.path or Path("."))


def _for_export(manifest: Manifest, backend: str, precision: str | None) -> Selection:
    where = manifest.path or Path(".")
    plan = device_plan(manifest)
    if precision is not None and not any(
        a.precision == precision for _, a in runnable_artefacts(manifest, plan)
    ):
        raise PaceEdgeError(
            f"no {precision} artefact in {where} (it has: {artefact_summary(manifest, plan)})"
        )
    if backend == "torch":
        if precision not in (None, "fp32"):
            raise PaceEdgeError(f"backend torch: runs the source bundle in fp32, not {precision}")
        bundle = _source_bundle(manifest)
        if not package_available("torch"):
            raise PaceEdgeError(f"backend torch: {_not_installed('torch')}")
        return Selection("torch", f"torch: requested; runs the source bundle {bundle}",
                         bundle=bundle)
    if backend != "auto":
        return _explicit(manifest, backend, precision, plan)
    skipped = []
    for name in AUTO_ORDER:
        artefact = pick_artefact(manifest, name, precision, plan)
        stale = _plan_unusable(manifest, plan) if name == "tensorrt" else ""
        if artefact is None:
            skipped.append(f"{name}: {stale or f'no {WHAT[name]} in the export'}")
            continue
        problem = _unavailable(name)
        if problem:
            skipped.append(f"{name}: {problem}")
            continue
        reason = (f"{name}: {WHAT[name]} {artefact.path} ({artefact.precision}) in the export "
                  f"and {_available_phrase(name)}")
        if skipped:
            reason += f"; skipped {'; '.join(skipped)}"
        return Selection(name, reason, artefact=artefact)
    raise PaceEdgeError(
        f"no backend can run {where} here ({'; '.join(skipped)}); it has: "
        f"{artefact_summary(manifest, plan)}. Install onnxruntime or openvino, or choose backend "
        "torch to run the source bundle"
    )


def _explicit(manifest: Manifest, backend: str, precision: str | None,
              plan: DevicePlan | None) -> Selection:
    where = manifest.path or Path(".")
    artefact = pick_artefact(manifest, backend, precision, plan)
    if backend == "tensorrt" and artefact is None and plan is not None and not plan.usable:
        from ..export.trt_plan import PlanMismatch

        raise PlanMismatch(f"backend tensorrt: {plan.problem}", f"rebuild it with "
                           f"{_rebuild(manifest)}")
    if artefact is None:
        what = f"{precision} {WHAT[backend]}" if precision else WHAT[backend]
        hint = f"; {BUILD_HINT}" if backend == "tensorrt" else ""
        raise PaceEdgeError(
            f"backend {backend}: no {what} in {where} (it has: "
            f"{artefact_summary(manifest, plan)})"
            f"{hint}"
        )
    problem = _unavailable(backend)
    if problem:
        hint = f"; {BUILD_HINT}" if backend == "tensorrt" else ""
        raise PaceEdgeError(f"backend {backend}: {problem}{hint}")
    return Selection(backend, f"{backend}: requested ({artefact.path}, {artefact.precision})",
                     artefact=artefact)


def _unavailable(backend: str) -> str:
    """Why ``backend`` cannot run here, or ``""`` if it can."""
    if not package_available(PACKAGES[backend]):
        return _not_installed(backend)
    if backend == "tensorrt":
        ok, why = gpu_status()
        if not ok:
            return why
    return ""


def _available_phrase(backend: str) -> str:
    if backend == "tensorrt":
        return f"tensorrt is installed with {gpu_status()[1]}"
    return f"{PACKAGES[backend]} is installed"
