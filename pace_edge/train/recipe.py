"""The training recipe as plain, serialisable config (recorded in every bundle)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import PaceEdgeError


@dataclass(frozen=True)
class Recipe:
    """How a PACE model is trained. Defaults are the recipe that reproduces the paper on COV."""

    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    t_max: int = 0  # cosine period in epochs; 0 = the whole run
    val_fraction: float = 0.2
    patience: int = 0  # stop after this many epochs without a better validation; 0 = never
    seed: int = 0
    augment: bool = True
    refit: bool = True  # retrain on all training data for the selected number of epochs
    select_window: int = 1  # epochs in the centred moving average of validation that selects
    select_folds: int = 1  # >1: choose the epoch count on the mean curve of k validation folds
    label_smoothing: float = 0.0
    precise_bn: bool = True  # recompute BatchNorm statistics on the clean training spectra
    # stratified share of the training spectra kept out of every fit (selection and refit) to
    # calibrate the temperature and the "unknown" threshold on spectra the model never saw
    calibration_fraction: float = 0.1
    accept_rate: float = 0.99  # share of in-distribution spectra the OOD threshold accepts
    device: str = "cpu"

    def validate(self) -> None:
        checks = [
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch size must be at least 1"),
            (self.lr > 0, "learning rate must be positive"),
            (self.weight_decay >= 0, "weight decay must be non-negative"),
            (self.t_max >= 0, "t_max must be non-negative"),
            (0.0 < self.val_fraction < 1.0, "validation fraction must be in (0, 1)"),
            (self.patience >= 0, "patience must be non-negative"),
            (self.select_window >= 1 and self.select_window % 2 == 1,
             "select window must be an odd number of epochs (1 = no smoothing)"),
            (self.select_window == 1 or self.refit,
             "a select window above 1 needs the refit (no weights are kept per epoch)"),
            (self.select_folds >= 1, "select folds must be at least 1"),
            (self.select_folds == 1 or self.refit,
             "k-fold selection needs the refit (it only chooses the epoch count)"),
            (0.0 <= self.label_smoothing < 1.0, "label smoothing must be in [0, 1)"),
            (0.0 <= self.calibration_fraction < 1.0,
             "calibration fraction must be in [0, 1)"),
            (0.5 <= self.accept_rate < 1.0, "accept rate must be in [0.5, 1)"),
            (self.device in ("cpu", "cuda"), "device must be cpu or cuda"),
        ]
        for ok, message in checks:
            if not ok:
                raise PaceEdgeError(message)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """The recipe a bundle recorded. Unknown keys are ignored; a missing ``precise_bn``
        means a bundle from before that option, which kept the running statistics, and a
        missing ``calibration_fraction`` one that held no calibration spectra out."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("precise_bn", False)
        values.setdefault("calibration_fraction", 0.0)
        return cls(**values)
