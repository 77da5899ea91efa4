"""Runners: one interface to run an export (or a bundle) on ONNX Runtime, OpenVINO, TensorRT or
PyTorch, in the manner of Polygraphy's runners.

    with load_runner("export/", backend="auto", threads=2) as runner:
        probabilities = runner.predict_proba(raw, axis)   # raw spectra on any axis
        print(runner.describe())                          # backend, precision, threads, why

:func:`load_runner` verifies the export's manifest (its digest, every file's sha256 and,
with ``trusted_keys``, its signature) before anything is loaded, picks or checks the backend
(:mod:`.select`) and builds its runner. Each backend lives in its own module, imported on use;
:mod:`.compare` runs several runners on the same inputs.
This package imports neither torch nor onnx: only the torch backend does, when chosen.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .base import BACKENDS, LayerTime, ModelSpec, Prediction, Runner, softmax
from .select import Selection, select_backend

if TYPE_CHECKING:
    from ..export.manifest import Manifest
    from ..integrity.signing import TrustedKeys


def load_runner(
    path: str | Path,
    backend: str = "auto",
    precision: str | None = None,
    threads: int | None = None,
    trusted_keys: str | Path | TrustedKeys | None = None,
    allow_failed: bool = False,
) -> Runner:
    """A runner for the export directory (``manifest.json``) or bundle directory (``model.json``)
    at ``path``.

    ``backend``: ``auto`` (best available, see :mod:`.select`), ``onnxruntime``, ``openvino``,
    ``tensorrt`` or ``torch``; ``precision`` picks among the export's artefacts (default: the
    export's own); ``threads`` sets the runtime's CPU threads; ``trusted_keys`` (a folder of
    Ed25519 public keys, or :class:`~pace_edge.integrity.signing.TrustedKeys`) runs only an
    export signed by one of them. The runner's ``reason`` says which backend was chosen and
    why. :class:`~pace_edge.errors.BundleError` for a tampered, malformed or (with
    ``trusted_keys``) unsigned or foreign-signed export, or one whose manifest records a failed
    gate (unless ``allow_failed``), :class:`~pace_edge.errors.PaceEdgeError` for a backend the
    export lacks or this machine cannot run.
    """
    from ..export.manifest import MANIFEST_FILE, load_manifest

    path = Path(path)
    trusted = _trusted(trusted_keys)
    is_export = (path / MANIFEST_FILE).is_file()
    if trusted is not None and not is_export:
        from ..integrity.signing import SignatureError

        raise SignatureError(f"{path} is not an export, and only exports signed by a key in "
                             f"{trusted.directory} may run; export it with pace-edge export "
                             "--sign KEY")
    manifest = load_manifest(path, trusted) if is_export else None
    selection = select_backend(manifest if manifest is not None else path, backend, precision,
                               allow_failed)
    runner = _build(selection, manifest, threads)
    runner.reason = selection.reason
    return runner


def _trusted(keys: str | Path | TrustedKeys | None) -> TrustedKeys | None:
    if keys is None or not isinstance(keys, str | Path):
        return keys
    from ..integrity.signing import load_trusted_keys

    return load_trusted_keys(keys)


def _build(selection: Selection, manifest: Manifest | None, threads: int | None) -> Runner:
    if selection.backend == "torch":
        from .torch_runner import TorchRunner

        assert selection.bundle is not None
        if manifest is None:
            return TorchRunner.from_path(selection.bundle, threads=threads)
        return TorchRunner.from_export(manifest, selection.bundle, threads=threads)
    assert manifest is not None and selection.artefact is not None
    if selection.backend == "onnxruntime":
        from .onnxruntime_runner import OnnxRuntimeRunner

        return OnnxRuntimeRunner.from_export(manifest, selection.artefact, threads=threads)
    if selection.backend == "openvino":
        from .openvino_runner import OpenVINORunner

        return OpenVINORunner.from_export(manifest, selection.artefact, threads=threads)
    from .tensorrt_runner import TensorRTRunner

    return TensorRTRunner.from_export(manifest, selection.artefact, threads=threads)


__all__ = [
    "BACKENDS",
    "LayerTime",
    "ModelSpec",
    "Prediction",
    "Runner",
    "Selection",
    "load_runner",
    "select_backend",
    "softmax",
]
