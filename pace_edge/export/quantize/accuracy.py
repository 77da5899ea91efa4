"""The accuracy gate: FP32 (PyTorch) against each exported artefact on labelled eval data.

Evaluation data only measure and gate here; nothing measured on them shapes an artefact. The
gate counts each artefact's *lost* spectra (FP32 classifies them right, the artefact does not:
the flips that can lower accuracy; the accuracy drop never exceeds their share) and judges them
with an exact binomial bound (:class:`~pace_edge.evaluate.agreement.AgreementGate`): it fails
when the set shows, at 95 % confidence, that the artefact loses more than ``max_drop`` pp of
spectra. A single flip on a small set therefore does not fail it, and an artefact that is right
where FP32 was wrong is never penalised. Accuracy, the drop, all flips, the agreement and the
exact McNemar p-value that the artefact is less accurate than FP32 are reported beside.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...evaluate.agreement import DEFAULT_CONFIDENCE, AgreementGate, mcnemar_worse
from ...evaluate.scoring import model_labels
from .. import DEFAULT_MAX_DROP
from ..parity import onnx_logits, openvino_logits, torch_logits
from .calibration import model_inputs

if TYPE_CHECKING:
    from ...bundle import Bundle
    from ...data import SpectralDataset


def eval_inputs(bundle: Bundle, data: SpectralDataset) -> tuple[np.ndarray, np.ndarray]:
    """``data`` preprocessed for ``bundle`` and its labels as the bundle's class indices."""
    return model_inputs(bundle, data, "eval"), model_labels(data, bundle.classes, "eval data")


def accuracy_report(
    reference: np.ndarray,
    candidates: dict[str, tuple[str, np.ndarray]],
    labels: np.ndarray,
    source: str,
    max_drop: float = DEFAULT_MAX_DROP,
) -> dict[str, Any]:
    """Accuracy of the reference logits and of each ``{artefact: (runtime, logits)}``.

    ``drop_pp`` is reference minus artefact accuracy in percentage points; ``flips`` the spectra
    whose prediction differs from the reference, ``fp32_only_right`` those of them the reference
    had right (lost). An artefact passes unless the lower 95 % bound on its lost rate exceeds
    ``max_drop`` pp. ``passed`` is true when every
    artefact passes; ``resolution`` says what a set of this size can resolve.
    """
    ref_pred = reference.argmax(1)
    ref_right = ref_pred == labels
    ref_acc = float(np.mean(ref_right)) if labels.size else float("nan")
    n = int(labels.size)
    rows = []
    for artefact, (runtime, logits) in candidates.items():
        pred = logits.argmax(1)
        right = pred == labels
        acc = float(np.mean(right)) if n else float("nan")
        fp32_only, quant_only = int(np.sum(ref_right & ~right)), int(np.sum(right & ~ref_right))
        gate = AgreementGate(n, fp32_only, max_drop / 100.0)
        rows.append({
            "artefact": artefact,
            "runtime": runtime,
            "accuracy": acc,
            "drop_pp": (ref_acc - acc) * 100.0,
            "agreement": float(np.mean(pred == ref_pred)) if n else 1.0,
            "flips": int(np.sum(pred != ref_pred)),
            "fp32_only_right": fp32_only,
            "artefact_only_right": quant_only,
            "mcnemar_p_worse": mcnemar_worse(fp32_only, quant_only),
            "lost_lower_pp": 100.0 * gate.disagreement_lower,
            "lost_upper_pp": 100.0 * gate.disagreement_upper,
            "passed": gate.passed,
        })
    limit = AgreementGate(n, 0, max_drop / 100.0)
    return {
        "data": source,
        "spectra": n,
        "max_drop_pp": max_drop,
        "confidence": DEFAULT_CONFIDENCE,
        "test": "one-sided exact (Clopper-Pearson) lower bound on the rate of spectra FP32 "
                "classifies right and the artefact wrong",
        "resolution": {**limit.resolution(), "text": limit.describe_resolution()},
        "reference": {"runtime": "pytorch-fp32", "accuracy": ref_acc},
        "artefacts": rows,
        "passed": all(r["passed"] for r in rows),
    }


def measure_accuracy(
    bundle: Bundle,
    data: SpectralDataset,
    runners: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]],
    max_drop: float = DEFAULT_MAX_DROP,
) -> dict[str, Any]:
    """:func:`accuracy_report` of the bundle's PyTorch model and ``runners`` on ``data``.

    ``runners`` maps an artefact to ``(runtime, fn)`` with ``fn(inputs) -> logits``.
    """
    x, y = eval_inputs(bundle, data)
    reference = torch_logits(bundle, x)
    logits = {name: (runtime, fn(x)) for name, (runtime, fn) in runners.items()}
    return accuracy_report(reference, logits, y, data.source, max_drop)


def describe_failures(accuracy: dict[str, Any]) -> str:
    """One line naming each artefact that loses more spectra than the limit allows."""
    ref = accuracy["reference"]["accuracy"]
    return "; ".join(
        f"{r['artefact']} on {r['runtime']}: {r['fp32_only_right']} of {accuracy['spectra']} "
        f"spectra right on FP32 are wrong (lost ≥ {r['lost_lower_pp']:.2f} pp at "
        f"{accuracy['confidence']:.0%} confidence > {accuracy['max_drop_pp']:g} pp; accuracy "
        f"{r['accuracy']:.2%} vs FP32 {ref:.2%})"
        for r in accuracy["artefacts"] if not r["passed"]
    )


def artefact_runners(
    directory: Path, artefacts: list[dict[str, Any]], runtime: dict[str, Any], batch: Any
) -> dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]]:
    """Logit functions for the ONNX and OpenVINO artefacts in ``directory`` (for the gate).

    OpenVINO IRs are compiled with the manifest ``runtime`` config (e.g. f32 inference).
    """
    runners: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {}
    config = runtime.get("openvino", {}).get("config", {})
    for a in artefacts:
        path = Path(directory) / a["path"]
        if a["kind"] in ("onnx", "onnx-qdq"):
            runners[a["path"]] = ("onnxruntime-cpu",
                                  lambda x, p=path: onnx_logits(p, x, batch))
        elif a["kind"] == "openvino-xml":
            runners[a["path"]] = ("openvino-cpu",
                                  lambda x, p=path: openvino_logits(p, x, batch, config))
    return runners
