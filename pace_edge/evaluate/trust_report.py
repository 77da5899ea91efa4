"""How far to trust a model on labelled spectra: acceptance, refusals by reason, accuracy on
what was accepted, and calibration error before and after temperature scaling."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from ..trust import Verdicts, expected_calibration_error, scaled_softmax


def trust_summary(verdicts: Verdicts, logits: np.ndarray, y: np.ndarray,
                  temperature: float) -> dict[str, Any]:
    """Shares and errors over all spectra (``y``: true class indices into the model's)."""
    y = np.asarray(y, dtype=np.int64)
    accepted = verdicts.accepted
    predicted = np.asarray(logits).argmax(axis=1)
    correct = predicted == y
    refused = Counter(r for r in verdicts.reasons if r is not None)
    return {
        "spectra": int(len(y)),
        "accepted": int(accepted.sum()),
        "accept_rate": float(accepted.mean()) if len(y) else 0.0,
        "refused": dict(sorted(refused.items())),
        "accuracy_accepted": float(correct[accepted].mean()) if accepted.any() else None,
        "accuracy_refused": float(correct[~accepted].mean()) if (~accepted).any() else None,
        "temperature": float(temperature),
        "ece_before": expected_calibration_error(scaled_softmax(logits), y),
        "ece_after": expected_calibration_error(scaled_softmax(logits, temperature), y),
    }


def trust_text(summary: dict[str, Any]) -> str:
    """The summary in two or three plain lines."""
    refused = ", ".join(f"{k} {v}" for k, v in summary["refused"].items()) or "none"
    lines = [f"accepted {summary['accepted']}/{summary['spectra']} "
             f"({summary['accept_rate']:.1%}); refused: {refused}"]
    if summary["accuracy_accepted"] is not None:
        lines.append(f"accuracy on accepted spectra {summary['accuracy_accepted']:.2%}")
    lines.append(f"expected calibration error {summary['ece_before']:.4f} before, "
                 f"{summary['ece_after']:.4f} after temperature scaling "
                 f"(T = {summary['temperature']:.3g})")
    return "\n".join(lines)
