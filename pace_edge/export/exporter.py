"""Export a bundle in one call: :func:`export_bundle`.

It runs the target (fold, convert, quantise, parity) in a staging folder inside ``out``,
measures the artefacts on the evaluation data (if given: they only measure and gate), applies
the gates, writes ``manifest.json`` with the export's ``status`` and ``report.md``, signs a
passing export, and only then replaces what ``out`` held. It prints nothing and returns an
:class:`ExportResult`; a failed gate is a result, not an exception.

Gates: ``parity`` (every artefact against PyTorch; never accepted), ``accuracy`` (with
evaluation data, :mod:`.quantize.accuracy`) and ``sensitivity`` (INT8: the float-layer search
met its tolerance). ``options.force`` accepts a failed accuracy or sensitivity gate: the
manifest then lists it under ``status.accepted_gates`` instead of ``status.failed_gates``.
Runners refuse an export whose ``status.failed_gates`` is not empty unless told to allow it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..bundle import META_FILE, WEIGHTS_FILE, Bundle, library_versions, sha256_file
from ..preprocess.native_support import native_runtime_entry
from . import OUTPUT_NAME, ExportOptions, TargetResult, get_target, run_target
from .manifest import (
    MANIFEST_FILE,
    Artefact,
    InputSpec,
    Manifest,
    OutputSpec,
    gate_status,
    sign_export,
    write_manifest,
)
from .parity import ParityResult
from .quantize.accuracy import artefact_runners, describe_failures, measure_accuracy
from .report import REPORT_FILE, render_report
from .staging import previous_export, publish, stage

FORCEABLE = ("accuracy", "sensitivity")  # gates --force may accept; parity never


@dataclass
class ExportResult:
    """What :func:`export_bundle` wrote and what its gates said."""

    out: Path
    manifest: Manifest
    problems: dict[str, str] = field(default_factory=dict)  # gate -> one line on what failed
    replaced: list[str] = field(default_factory=list)  # the previous export's files
    signed: bool = False

    @property
    def failed_gates(self) -> list[str]:
        """Gates that failed and were not accepted (runners refuse the export)."""
        return list(self.manifest.status.get("failed_gates", []))

    @property
    def accepted_gates(self) -> list[str]:
        """Gates that failed but were accepted with ``force``."""
        return list(self.manifest.status.get("accepted_gates", []))

    @property
    def passed(self) -> bool:
        return not self.failed_gates

    @property
    def manifest_path(self) -> Path:
        return self.out / MANIFEST_FILE

    @property
    def report_path(self) -> Path:
        return self.out / REPORT_FILE


def export_bundle(
    bundle: Bundle | str | Path,
    target: str,
    out: str | Path,
    options: ExportOptions,
    log: Callable[[str], None] = lambda line: None,
) -> ExportResult:
    """Export ``bundle`` (a loaded bundle or its folder) for ``target`` into ``out``.

    :class:`~pace_edge.errors.PaceEdgeError` for user errors (unknown target or precision, an
    ``out`` that holds other files without ``force``, unreadable data or key), raised before
    anything in ``out`` changes. ``log`` receives the few lines worth telling a user (the
    previous export being replaced).
    """
    from ..integrity.signing import load_private_key

    spec = get_target(target, options.precision)  # refuse unavailable targets/precisions early
    options = replace(options, opset=spec.opset(options.opset))
    if not isinstance(bundle, Bundle):
        bundle = Bundle.load(bundle)
    if bundle.path is None:
        raise ValueError("export_bundle needs a bundle saved in a folder (Bundle.path)")
    key = load_private_key(options.sign) if options.sign else None
    evaluation = _evaluation(options.evaluation)
    if evaluation is not None and options.parity_data is None and options.precision != "int8":
        options = replace(options, parity_data=bundle.preprocessing.apply(
            evaluation.x, evaluation.axis)[0])
    out = Path(out)
    old_files = previous_export(out, options.force, log)
    staged = stage(out)
    try:
        result = run_target(bundle, staged, target, options)
        trust = _trust(bundle, staged, result, options, evaluation)
        if evaluation is not None:  # the artefacts of the export's precision, if listed as such
            own = [a for a in result.artefacts if a["precision"] == options.precision]
            runners = artefact_runners(staged, own or result.artefacts, result.runtime,
                                       options.batch)
            result.accuracy = measure_accuracy(bundle, evaluation, runners,
                                               options.max_accuracy_drop)
        problems = _gate_problems(result)
        manifest = _manifest(bundle, target, options, result, problems, trust)
        write_manifest(staged, manifest)
        if key is not None and not manifest.status["failed_gates"]:
            sign_export(staged, key)  # a failed export is never signed
        (staged / REPORT_FILE).write_text(render_report(manifest))
        publish(staged, out, old_files)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    manifest.path = out
    return ExportResult(out, manifest, problems, old_files, signed=key is not None
                        and not manifest.status["failed_gates"])


def _evaluation(value: Any) -> Any:
    """The test split of ``value`` (a path or data set), or ``None``."""
    from ..data import SpectralDataset, load_dataset

    if value is None or isinstance(value, SpectralDataset):
        return value
    return load_dataset(value, split="test")


def _gate_problems(result: TargetResult) -> dict[str, str]:
    """One line per failed gate."""
    problems: dict[str, str] = {}
    failed = [row for row in result.parity if not row["passed"]]
    if failed:
        names = {f.name for f in fields(ParityResult)}
        problems["parity"] = "; ".join(
            ParityResult(**{k: v for k, v in row.items() if k in names}).describe()
            for row in failed)
    if result.accuracy and not result.accuracy["passed"]:
        problems["accuracy"] = (f"on {result.accuracy['data']}: "
                                f"{describe_failures(result.accuracy)}")
    if result.sensitivity_met is False:
        cal = result.calibration or {}
        v = cal.get("verdict") or {}
        floats = ", ".join(cal.get("float_layers", [])) or "no layer"
        problems["sensitivity"] = (
            f"no INT8 build with at most half the layers float meets the criterion on the "
            f"held-out training spectra: the chosen one ({floats} float) agrees with "
            f"FP32 on {v.get('spectra', 0) - v.get('disagreements', 0)}/{v.get('spectra', 0)}"
            f" spectra, expected disagreement {v.get('expected_disagreement', float('nan')):.2%}"
            " (see report.md; export --qat N fine-tunes with INT8 in the loop)")
    return problems


def _trust(bundle: Bundle, staged: Path, result: TargetResult, options: ExportOptions,
           evaluation: Any) -> dict[str, Any]:
    """The manifest's trust record: the bundle's temperature, physical checks and "unknown"
    detector. Every ONNX and OpenVINO artefact gets the detector's ``ood_features`` output
    (:mod:`.features_output`), checked against PyTorch (``features_parity``); with evaluation
    data, the accepted share and calibration error per artefact (``evaluation``)."""
    from ..evaluate.scoring import model_labels
    from ..trust import bundle_trust
    from .features_output import add_features_outputs, features_parity, trust_evaluation
    from .parity import inputs_for

    features = add_features_outputs(bundle, staged, result.artefacts)
    record = bundle_trust(bundle)[0].to_dict()
    if record["detector"] is None or not features:
        record["detector"] = None  # runners still apply the temperature and physical checks
        return record
    record["features_output"] = features
    record["features_parity"] = features_parity(bundle, staged, result.artefacts,
                                                result.runtime, options.batch,
                                                inputs_for(bundle, options))
    if evaluation is not None:
        x = bundle.preprocessing.apply(evaluation.x, evaluation.axis)[0]
        record["evaluation"] = trust_evaluation(
            bundle, staged, result.artefacts, result.runtime, options.batch, evaluation.x,
            x, model_labels(evaluation, bundle.classes, "evaluation data"))
    return record


def _manifest(bundle: Bundle, target: str, options: ExportOptions, result: TargetResult,
              problems: dict[str, str], trust: dict[str, Any]) -> Manifest:
    source = Path(bundle.path or ".")
    return Manifest(
        target=target,
        precision=options.precision,
        artefacts=[Artefact(**a) for a in result.artefacts],
        input=InputSpec(
            name="spectrum",
            length=bundle.input_length,
            batch=options.batch,
            axis=[float(v) for v in bundle.axis],
            preprocessing=bundle.preprocessing.to_list(),
        ),
        output=OutputSpec(name=OUTPUT_NAME, classes=len(bundle.classes)),
        classes=list(bundle.classes),
        source={
            "bundle": str(source.resolve()),
            "weights_sha256": sha256_file(source / WEIGHTS_FILE),
            "metadata_sha256": sha256_file(source / META_FILE),
            "model": bundle.config.to_dict(),
        },
        opset=result.opset,
        runtime={**result.runtime, **native_runtime_entry(bundle.preprocessing.to_list())},
        parity=result.parity,
        executed_graph=result.executed_graph,
        calibration=result.calibration,
        accuracy=result.accuracy,
        trust=trust,
        status=gate_status(problems, accepted=FORCEABLE if options.force else ()),
        versions=library_versions("torch", "onnx", "onnxscript", "onnxruntime", "openvino",
                                  *(("nncf",) if options.precision == "int8" else ())),
    )


__all__ = ["FORCEABLE", "ExportResult", "export_bundle"]
