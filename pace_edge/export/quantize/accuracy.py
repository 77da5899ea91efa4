"""The accuracy gate: FP32 (PyTorch) against each exported artefact on labelled eval data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .calibration import bundle_labels, model_inputs

if TYPE_CHECKING:
    from ...bundle import Bundle
    from ...data import SpectralDataset

DEFAULT_MAX_DROP = 1.0  # percentage points


def eval_inputs(bundle: Bundle, data: SpectralDataset) -> tuple[np.ndarray, np.ndarray]:
    """``data`` preprocessed for ``bundle`` and its labels as the bundle's class indices."""
    return model_inputs(bundle, data, "eval"), bundle_labels(bundle, data, "eval")


def accuracy_report(
    reference: np.ndarray,
    candidates: dict[str, tuple[str, np.ndarray]],
    labels: np.ndarray,
    source: str,
    max_drop: float = DEFAULT_MAX_DROP,
) -> dict[str, Any]:
    """Accuracy of the reference logits and of each ``{artefact: (runtime, logits)}``.

    ``drop_pp`` is reference minus artefact accuracy in percentage points; an artefact passes
    when it is at most ``max_drop``. ``passed`` is true when every artefact passes.
    """
    ref_pred = reference.argmax(1)
    ref_acc = float(np.mean(ref_pred == labels))
    rows = []
    for artefact, (runtime, logits) in candidates.items():
        pred = logits.argmax(1)
        acc = float(np.mean(pred == labels))
        drop = (ref_acc - acc) * 100.0
        rows.append({
            "artefact": artefact,
            "runtime": runtime,
            "accuracy": acc,
            "drop_pp": drop,
            "agreement": float(np.mean(pred == ref_pred)),
            "passed": bool(drop <= max_drop + 1e-9),
        })
    return {
        "data": source,
        "spectra": int(labels.size),
        "max_drop_pp": max_drop,
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
    from ..parity import torch_logits

    x, y = eval_inputs(bundle, data)
    reference = torch_logits(bundle, x)
    logits = {name: (runtime, fn(x)) for name, (runtime, fn) in runners.items()}
    return accuracy_report(reference, logits, y, data.source, max_drop)


def describe_failures(accuracy: dict[str, Any]) -> str:
    """One line naming each artefact whose accuracy drop exceeds the limit."""
    ref = accuracy["reference"]["accuracy"]
    return "; ".join(
        f"{r['artefact']} on {r['runtime']}: {r['accuracy']:.2%} vs FP32 {ref:.2%} "
        f"(drop {r['drop_pp']:.2f} pp > {accuracy['max_drop_pp']:g} pp, agreement "
        f"{r['agreement']:.2%})"
        for r in accuracy["artefacts"] if not r["passed"]
    )


def artefact_runners(
    directory: Path, artefacts: list[dict[str, Any]], runtime: dict[str, Any], batch: Any
) -> dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]]:
    """Logit functions for the ONNX and OpenVINO artefacts in ``directory`` (for the gate).

    OpenVINO IRs are compiled with the manifest ``runtime`` config (e.g. f32 inference).
    """
    from ..parity import onnx_logits, openvino_logits

    runners: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {}
    config = runtime.get("openvino", {}).get("config", {})
    for a in artefacts:
        path = Path(directory) / a["path"]
        if a["kind"] == "onnx":
            runners[a["path"]] = ("onnxruntime-cpu",
                                  lambda x, p=path: onnx_logits(p, x, batch))
        elif a["kind"] == "openvino-xml":
            runners[a["path"]] = ("openvino-cpu",
                                  lambda x, p=path: openvino_logits(p, x, batch, config))
    return runners
