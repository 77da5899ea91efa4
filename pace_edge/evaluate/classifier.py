"""Classify raw spectra with a bundle in PyTorch: the bundle's preprocessing, then the model."""

from __future__ import annotations

import numpy as np
import torch

from ..bundle import Bundle
from ..errors import DataError
from ..model.pace import build_model
from ..trust import Verdicts, bundle_trust, scaled_softmax


class BundleClassifier:
    """A bundle's model ready for inference on spectra from any axis the pipeline maps."""

    def __init__(self, bundle: Bundle, batch_size: int = 256) -> None:
        self.bundle = bundle
        self.model = build_model(bundle.config, bundle.weights)
        self.batch_size = batch_size
        self.trust, self.detector = bundle_trust(bundle)

    @property
    def classes(self) -> list[str]:
        return self.bundle.classes

    def preprocess(self, x: np.ndarray, axis: np.ndarray) -> np.ndarray:
        """Raw spectra ``(n, L)`` on ``axis`` → model inputs on the bundle's axis."""
        out, out_axis = self.bundle.preprocessing.apply(np.atleast_2d(x), axis)
        if out.shape[-1] != self.bundle.input_length:
            raise DataError(
                f"after preprocessing the spectra have {out.shape[-1]} points but the model "
                f"expects {self.bundle.input_length} (axis {self.bundle.axis[0]:g}…"
                f"{self.bundle.axis[-1]:g}); the bundle's pipeline does not resample"
            )
        return out

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        """Model logits for already-preprocessed inputs ``(n, L)``."""
        t = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
        if not len(t):
            return np.zeros((0, len(self.classes)), np.float32)
        with torch.inference_mode():
            step = self.batch_size
            parts = [self.model(t[i : i + step]) for i in range(0, len(t), step)]
        return torch.cat(parts).numpy()

    def logits_and_features(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits and pooled features ``(n, dim)`` for already-preprocessed inputs."""
        t = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
        logits, feats = [], []
        with torch.inference_mode():
            for i in range(0, len(t), self.batch_size):
                f = self.model.features(t[i : i + self.batch_size])
                feats.append(f)
                logits.append(self.model.head(f))
        return torch.cat(logits).numpy(), torch.cat(feats).numpy()

    def predict_proba(self, x: np.ndarray, axis: np.ndarray) -> np.ndarray:
        """Temperature-scaled class probabilities ``(n, classes)`` for raw spectra on
        ``axis``."""
        return scaled_softmax(self.logits(self.preprocess(x, axis)), self.trust.temperature)

    def judge(self, x: np.ndarray, axis: np.ndarray) -> tuple[Verdicts, np.ndarray]:
        """Verdicts (accepted, reason, score, calibrated probabilities) and raw logits of raw
        spectra ``x`` on ``axis``: physical checks on ``x``, then the detector."""
        raw = np.atleast_2d(x)
        logits, feats = self.logits_and_features(self.preprocess(raw, axis))
        projected = self.detector.project(feats) if self.detector is not None else None
        return self.trust.judge(raw, logits, projected), logits
