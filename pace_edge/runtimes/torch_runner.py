"""PyTorch reference runner: a bundle's original model (with its BatchNorms), in FP32 on CPU.

Runs a bundle directory, or an export's source bundle when the manifest records one that is
present (its weights must still be the ones exported). ``threads`` calls
``torch.set_num_threads``, which is process-wide: the previous value is restored on close.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import PaceEdgeError
from .base import ModelSpec, Runner

if TYPE_CHECKING:
    from ..bundle import Bundle
    from ..export.manifest import Manifest


class TorchRunner(Runner):
    """A bundle's model through :class:`~pace_edge.evaluate.classifier.BundleClassifier`."""

    name = "torch"

    def __init__(self, bundle: Bundle, threads: int | None = None) -> None:
        super().__init__(
            ModelSpec.from_bundle(bundle),
            precision="fp32",
            artefact=None if bundle.path is None else Path(bundle.path),
            threads=threads,
        )
        try:
            import torch
        except ImportError as exc:
            raise PaceEdgeError("backend torch: the torch package is not installed") from exc
        from ..evaluate.classifier import BundleClassifier

        self._torch = torch
        self._previous_threads: int | None = None
        if self.threads is not None:
            self._previous_threads = torch.get_num_threads()
            torch.set_num_threads(self.threads)
        self.bundle = bundle
        from ..trust import bundle_trust

        self._classifier = BundleClassifier(bundle)  # the one PyTorch inference path
        self._detector = bundle_trust(bundle)[1]
        if self._detector is not None:  # z = (f − μ) Wᵀ in float32, as the exports compute it,
            # on torch's threads (numpy's BLAS threads fight torch's spinning ones on few cores)
            self._whiten_t = torch.from_numpy(
                np.ascontiguousarray(self._detector.whiten.T, dtype=np.float32))
            self._mean = torch.from_numpy(self._detector.mean.astype(np.float32))
        self.max_batch = None

    @classmethod
    def from_path(cls, path: str | Path, threads: int | None = None) -> TorchRunner:
        """The runner of the bundle directory ``path`` (verified on load)."""
        from ..bundle import Bundle

        return cls(Bundle.load(path), threads=threads)

    @classmethod
    def from_export(
        cls, manifest: Manifest, bundle_dir: str | Path, threads: int | None = None
    ) -> TorchRunner:
        """The runner of the export's source bundle, refused if its weights changed since."""
        from ..bundle import META_FILE, Bundle, read_metadata, sha256_file

        bundle = Bundle.load(bundle_dir)  # verifies the weights against model.json
        exported = manifest.source.get("weights_sha256")
        current = read_metadata(Path(bundle_dir))["weights"]["sha256"]
        metadata = manifest.source.get("metadata_sha256")
        if metadata and sha256_file(Path(bundle_dir) / META_FILE) != metadata:
            raise PaceEdgeError(
                f"backend torch: the source bundle {bundle_dir} has a different model.json from "
                f"the one exported to {manifest.path} (sha256 differs)"
            )
        if exported and current != exported:
            raise PaceEdgeError(
                f"backend torch: the source bundle {bundle_dir} has different weights from the "
                f"ones exported to {manifest.path} (sha256 differs)"
            )
        same_classes = list(bundle.classes) == list(manifest.classes)
        if bundle.preprocessing.to_list() != manifest.input.preprocessing or not same_classes:
            raise PaceEdgeError(
                f"backend torch: the source bundle {bundle_dir} no longer matches the export "
                f"{manifest.path} (preprocessing or classes differ)"
            )
        return cls(bundle, threads=threads)

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self._classifier.logits(x)

    def _run_features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._detector is None:
            return super()._run_features(x)
        logits, features = self._classifier.logits_and_features(x)
        with self._torch.inference_mode():
            z = (self._torch.from_numpy(features) - self._mean) @ self._whiten_t
        return logits, z.numpy()

    def _release(self) -> None:
        del self._classifier
        if self._previous_threads is not None:
            self._torch.set_num_threads(self._previous_threads)

    def _describe(self) -> dict[str, Any]:
        return {"threads": self._torch.get_num_threads(), "device": "cpu",
                "torch": self._torch.__version__}
