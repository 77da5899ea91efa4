"""Knowledge distillation: a student learns from a trained teacher's soft targets and the labels.

The loss (Hinton, Vinyals and Dean, 2015) is

    alpha * T² * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, y)

with the KL divergence averaged over the batch. The ``T²`` keeps the soft term's gradients on the
scale of the hard term's whatever the temperature. The teacher sees exactly the (augmented)
batch the student sees, in eval mode and without gradients; it draws no random numbers, so a
resumed run trains exactly as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import PaceEdgeError

if TYPE_CHECKING:  # torch loads on first use: the command line reads the defaults without it
    import torch

    from ..bundle import Bundle

DEFAULT_TEMPERATURE = 4.0
DEFAULT_ALPHA = 0.5


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor,
                      temperature: float = DEFAULT_TEMPERATURE, alpha: float = DEFAULT_ALPHA,
                      label_smoothing: float = 0.0) -> torch.Tensor:
    """The distillation loss of ``student`` logits against ``teacher`` logits and ``labels``."""
    import torch.nn.functional as F

    t = float(temperature)
    soft = F.kl_div(F.log_softmax(student / t, dim=1), F.log_softmax(teacher / t, dim=1),
                    reduction="batchmean", log_target=True) * (t * t)
    hard = F.cross_entropy(student, labels, label_smoothing=label_smoothing)
    return alpha * soft + (1.0 - alpha) * hard


@dataclass(frozen=True)
class DistillSettings:
    """How a student is distilled: the softmax temperature and the soft term's weight."""

    temperature: float = DEFAULT_TEMPERATURE
    alpha: float = DEFAULT_ALPHA

    def validate(self) -> None:
        if not self.temperature > 0:
            raise PaceEdgeError(f"distillation temperature must be positive, got "
                                f"{self.temperature:g}")
        if not 0.0 <= self.alpha <= 1.0:
            raise PaceEdgeError(f"distillation alpha must be in [0, 1], got {self.alpha:g}")


class Teacher:
    """A trained bundle's network, frozen, giving soft targets for a student's batches."""

    def __init__(self, bundle: Bundle, settings: DistillSettings | None = None,
                 device: str = "cpu") -> None:
        from ..model import build_model

        self.bundle = bundle
        self.settings = settings or DistillSettings()
        self.settings.validate()
        self.model = build_model(bundle.config, bundle.weights).to(device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def loss(self, student_logits: torch.Tensor, x: torch.Tensor, labels: torch.Tensor,
             label_smoothing: float = 0.0) -> torch.Tensor:
        """The distillation loss of ``student_logits`` on inputs ``x`` with ``labels``."""
        import torch

        with torch.no_grad():
            teacher_logits = self.model(x)
        s = self.settings
        return distillation_loss(student_logits, teacher_logits, labels, s.temperature,
                                 s.alpha, label_smoothing)

    def check_student(self, classes: list[str], axis: np.ndarray) -> None:
        """Refuse a student whose classes or preprocessed input axis differ from the teacher's
        (its soft targets would mean other classes, or come from other inputs)."""
        b = self.bundle
        if list(classes) != list(b.classes):
            raise PaceEdgeError(f"the teacher's classes {b.classes} differ from the data's "
                                f"{list(classes)}: distil on the data the teacher learnt")
        if axis.shape != b.axis.shape or not np.allclose(axis, b.axis, rtol=0, atol=1e-6):
            raise PaceEdgeError(
                f"after preprocessing the spectra have {axis.size} points "
                f"({axis[0]:g}…{axis[-1]:g}) but the teacher takes {b.input_length} "
                f"({b.axis[0]:g}…{b.axis[-1]:g}): use the teacher's preprocessing")

    def record(self) -> dict[str, Any]:
        """What a student's bundle records about its teacher and the settings."""
        from ..bundle import META_FILE, WEIGHTS_FILE, sha256_file

        b = self.bundle
        where = b.path
        return {
            "teacher": {
                "bundle": str(where.resolve()) if where is not None else None,
                "weights_sha256": (sha256_file(where / WEIGHTS_FILE) if where is not None
                                   else None),
                "model_json_sha256": (sha256_file(where / META_FILE) if where is not None
                                      else None),
                "model": b.config.to_dict(),
            },
            "temperature": self.settings.temperature,
            "alpha": self.settings.alpha,
        }


__all__ = ["DEFAULT_ALPHA", "DEFAULT_TEMPERATURE", "DistillSettings", "Teacher",
           "distillation_loss"]
