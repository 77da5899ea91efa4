"""Classify raw spectra with a bundle in PyTorch: the bundle's preprocessing, then the model."""

from __future__ import annotations

import numpy as np
import torch

from ..bundle import Bundle
from ..errors import DataError
from ..model.pace import build_model
from ..runtimes.base import softmax


class BundleClassifier:
    """A bundle's model ready for inference on spectra from any axis the pipeline maps."""

    def __init__(self, bundle: Bundle, batch_size: int = 256) -> None:
        self.bundle = bundle
        self.model = build_model(bundle.config, bundle.weights)
        self.batch_size = batch_size

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

    def predict_proba(self, x: np.ndarray, axis: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, classes)`` for raw spectra on ``axis``."""
        return softmax(self.logits(self.preprocess(x, axis)))
