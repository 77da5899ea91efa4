"""What ``pace-edge rightsize`` knows about one candidate: cost, accuracy, its INT8 build and
that build's latency (the rows of ``frontier.json`` and ``report.md``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Build statuses (pace_edge.benchmark.builds) of an export that passed its checks.
EXPORTED = ("ok", "exported, cannot run here")


@dataclass
class CandidateRecord:
    """One trained candidate. Accuracies are fractions; ``val_accuracy`` is the only one any
    choice uses, the test figures only measure."""

    name: str
    size: str
    distilled: bool
    model: dict[str, Any]
    multiply_adds: int
    parameters: int
    int8_weight_bytes: int
    val_accuracy: float
    val_spectra: int
    bundle: str
    train_seconds: float = 0.0
    test_accuracy: float | None = None
    export_status: str = "not exported"
    export_reason: str = ""
    export: str | None = None
    export_qat: int = 0  # epochs of quantisation-aware fine-tuning its INT8 build needed
    int8_bytes: int | None = None  # the INT8 model file(s) the runtime loads
    int8_test_accuracy: float | None = None
    latency: dict[str, dict[str, float]] = field(default_factory=dict)  # batch -> summary
    # every thread setting timed ("default" or a count) -> batch -> summary; latency holds the
    # faster per batch
    timings: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    reused: bool = False

    @property
    def exported(self) -> bool:
        """Its INT8 build passed the export's checks (whether or not it runs here: a TensorRT
        build needs the device)."""
        return self.export_status in EXPORTED

    @property
    def deployable(self) -> bool:
        """Its INT8 build passed the export's checks and was timed here."""
        return self.exported and bool(self.latency)

    def p50_ms(self, batch: int = 1) -> float | None:
        row = self.latency.get(str(batch))
        return None if row is None else float(row["p50_ms"])

    def spectra_per_s(self, batch: int = 64) -> float | None:
        row = self.latency.get(str(batch))
        return None if row is None else float(row["spectra_per_s"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = ["CandidateRecord"]
