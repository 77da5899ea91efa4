"""``pace-edge export``: turn a bundle into deployable artefacts with a verified manifest.

The target writes into a staging folder inside ``--out``; only a finished export (artefacts,
``manifest.json``, ``report.md``) replaces what was there, so a crash leaves the old export.
An ``--out`` that already holds an export (or any other files) is refused without ``--force``.
Exit status 1 when the export is written but fails its parity check or accuracy gate.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import PaceEdgeError
from ..export import DEFAULT_OPSET, PRECISIONS, TARGETS, ExportOptions
from ..export.quantize.accuracy import DEFAULT_MAX_DROP
from ..export.quantize.calibration import DEFAULT_SIZE
from ..export.quantize.pipeline import DEFAULT_METHOD
from ..export.quantize.qdq import METHODS
from .common import QualityGateFailed, positive_int, writable_dir

HELP = "export a model bundle for a runtime (ONNX, OpenVINO, ...) and check its parity"
REPORT_FILE = "report.md"


def batch_size(text: str) -> int | str:
    """``--batch``: a positive whole number or ``dynamic``."""
    return "dynamic" if text == "dynamic" else positive_int(text)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help=HELP, description=HELP + ".")
    p.add_argument("--model", required=True, type=Path, help="model bundle directory")
    p.add_argument("--target", required=True, choices=list(TARGETS),
                   help="; ".join(f"{s.name}: {s.help}" for s in TARGETS.values()))
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="numeric precision of the artefacts (default fp32; jetson: fp16, or "
                        "int8 when --calib is given)")
    p.add_argument("--batch", type=batch_size, default="dynamic", metavar="N|dynamic",
                   help="fixed batch size, or dynamic (default)")
    p.add_argument("--opset", type=positive_int, default=None,
                   help=f"ONNX opset (default {DEFAULT_OPSET}, the first with a native Gelu; "
                        "tensorrt/jetson: capped at what their TensorRT version parses)")
    p.add_argument("--parity-samples", type=positive_int, default=256, metavar="N",
                   help="synthetic spectra for the parity check (default 256)")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--sign", type=Path, default=None, metavar="KEY",
                   help="sign manifest.json (which lists every file's sha256) with this Ed25519 "
                        "private key (pace-edge keygen); devices run it with --trusted-keys")
    p.add_argument("--force", action="store_true",
                   help="replace the export already in --out (its files only), write into a "
                        "non-empty --out that does not hold a previous export, and keep an "
                        "export that fails the --max-accuracy-drop gate (exit 0)")
    q = p.add_argument_group("INT8 calibration and accuracy gate")
    q.add_argument("--calib", type=Path, default=None, metavar="DATA",
                   help="training spectra to calibrate INT8 with (their train split; default: "
                        "the bundle's recorded training data, if readable)")
    q.add_argument("--calib-size", type=calib_size, default=DEFAULT_SIZE, metavar="N|all",
                   help=f"calibration spectra, stratified by class and spread over intensity "
                        f"(default {DEFAULT_SIZE}; 20%% of the data is held out for checks)")
    q.add_argument("--calib-method", choices=METHODS, default=DEFAULT_METHOD,
                   help=f"activation range estimation (default {DEFAULT_METHOD}: 99.99th "
                        "percentile of |x|; minmax: largest |x|; entropy: KL-optimal clip)")
    q.add_argument("--float-layers", type=float_layers, default=None, metavar="LAYERS|none",
                   help="keep exactly these layers in float instead of the measured choice: "
                        "comma-separated keys (pool, embed, head, blocks.N, blocks.N.dw, "
                        "blocks.N.pw, blocks.N.add); none quantises every layer, for the most "
                        "throughput (check it with --eval) (default: chosen by sensitivity)")
    q.add_argument("--eval", type=Path, default=None, metavar="DATA",
                   help="labelled held-out data (its test split): measure the FP32 model and "
                        "every artefact on it and apply the accuracy gate")
    q.add_argument("--max-accuracy-drop", type=float, default=DEFAULT_MAX_DROP, metavar="PP",
                   help=f"with --eval, fail when an artefact's accuracy is more than PP "
                        f"percentage points below FP32 (default {DEFAULT_MAX_DROP:g})")
    p.set_defaults(run=run)


def export_trust(bundle: Any, features_output: str | None) -> dict[str, Any]:
    """The bundle's trust record for the manifest. The detector goes with it only when the
    exported graphs have the whitened-features output it scores (``features_output``);
    otherwise runners still apply the temperature and the physical checks."""
    from ..trust import bundle_trust

    record = bundle_trust(bundle)[0].to_dict()
    if record["detector"] is not None and features_output:
        record["features_output"] = features_output
    else:
        record["detector"] = None
    return record


def calib_size(text: str) -> int | None:
    """``--calib-size``: a positive whole number or ``all``."""
    return None if text == "all" else positive_int(text)


def float_layers(text: str) -> list[str]:
    """``--float-layers``: ``none`` or comma-separated layer keys."""
    if text.strip().lower() == "none":
        return []
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise argparse.ArgumentTypeError("give layer keys such as pool,embed or none")
    return keys


def run(args: argparse.Namespace) -> int:
    from ..bundle import META_FILE, WEIGHTS_FILE, Bundle, library_versions, sha256_file
    from ..data import load_dataset
    from ..export import OUTPUT_NAME, get_target, run_target
    from ..export.manifest import (
        SIGNATURE_FILE,
        Artefact,
        InputSpec,
        Manifest,
        OutputSpec,
        sign_export,
        write_manifest,
    )
    from ..integrity.signing import load_private_key

    args.precision = default_precision(args)
    spec = get_target(args.target, args.precision)  # refuse unavailable targets/precisions early
    args.opset = spec.opset(args.opset)
    _check_int8_flags(args)
    bundle = Bundle.load(args.model)
    signing_key = load_private_key(args.sign) if args.sign else None
    evaluation = load_dataset(args.eval, split="test") if args.eval else None
    old_files = _check_out(args.out, args.force)
    options = ExportOptions(
        precision=args.precision,
        batch=args.batch,
        opset=args.opset,
        parity_samples=args.parity_samples,
        parity_data=None if evaluation is None else bundle.preprocessing.apply(
            evaluation.x, evaluation.axis)[0],
        extra={
            "calib": args.calib,
            "calib_size": args.calib_size,
            "calib_method": args.calib_method,
            "eval": evaluation,
            "max_accuracy_drop": args.max_accuracy_drop,
            "progress": True,
            **({} if args.float_layers is None else {"float_layers": args.float_layers}),
        } if args.precision == "int8" else {},
    )
    print(f"exporting {args.model} -> {args.out} (target {args.target}, {args.precision}, "
          f"batch {args.batch}, opset {args.opset})")
    stage = Path(tempfile.mkdtemp(prefix=".export-", dir=args.out))
    try:
        result = run_target(bundle, stage, args.target, options)
        from ..export.features_output import (
            add_features_outputs,
            features_parity,
            trust_evaluation,
        )
        from ..export.parity import inputs_for

        features = add_features_outputs(bundle, stage, result.artefacts)
        trust = export_trust(bundle, features)
        if features:
            trust["features_parity"] = features_parity(
                bundle, stage, result.artefacts, result.runtime, args.batch,
                inputs_for(bundle, options))
            if evaluation is not None:
                trust["evaluation"] = trust_evaluation(
                    bundle, stage, result.artefacts, result.runtime, args.batch,
                    evaluation.x, options.parity_data, model_labels(bundle, evaluation))
        if evaluation is not None and result.accuracy is None:
            from ..export.quantize.accuracy import artefact_runners, measure_accuracy

            runners = artefact_runners(stage, result.artefacts, result.runtime, args.batch)
            result.accuracy = measure_accuracy(bundle, evaluation, runners,
                                               args.max_accuracy_drop)
        manifest = Manifest(
            target=args.target,
            precision=args.precision,
            artefacts=[Artefact(**a) for a in result.artefacts],
            input=InputSpec(
                name="spectrum",
                length=bundle.input_length,
                batch=args.batch,
                axis=[float(v) for v in bundle.axis],
                preprocessing=bundle.preprocessing.to_list(),
            ),
            output=OutputSpec(name=OUTPUT_NAME, classes=len(bundle.classes)),
            classes=list(bundle.classes),
            source={
                "bundle": str(Path(args.model).resolve()),
                "weights_sha256": sha256_file(Path(args.model) / WEIGHTS_FILE),
                "metadata_sha256": sha256_file(Path(args.model) / META_FILE),
                "model": bundle.config.to_dict(),
            },
            opset=result.opset,
            runtime=result.runtime,
            parity=result.parity,
            executed_graph=result.executed_graph,
            calibration=result.calibration,
            accuracy=result.accuracy,
            trust=trust,
            versions=library_versions("torch", "onnx", "onnxscript", "onnxruntime", "openvino",
                                      *(("nncf",) if args.precision == "int8" else ())),
        )
        write_manifest(stage, manifest)
        gate_ok = not manifest.accuracy or manifest.accuracy["passed"] or args.force
        if signing_key is not None and manifest.parity_passed and gate_ok:
            sign_export(stage, signing_key)  # a failed export is never signed
        (stage / REPORT_FILE).write_text(render_report(manifest))
        _publish(stage, args.out, old_files)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    print(summary_table(manifest))
    signed = (args.out / SIGNATURE_FILE).is_file()
    print(f"wrote {args.out / 'manifest.json'} and {args.out / REPORT_FILE}"
          + (f", signed with {args.sign}" if signed else ""))
    if signing_key is not None and not signed:
        print("not signed: the export failed its checks")
    failed = [row for row in manifest.parity if not row["passed"]]
    if failed:
        from ..export.parity import ParityResult

        detail = "; ".join(ParityResult(**_parity_fields(r)).describe() for r in failed)
        raise QualityGateFailed(f"parity check failed ({detail}); the export is marked failed")
    if manifest.accuracy and not manifest.accuracy["passed"]:
        from ..export.quantize.accuracy import describe_failures

        detail = describe_failures(manifest.accuracy)
        if not args.force:
            raise QualityGateFailed(
                f"accuracy gate failed on {manifest.accuracy['data']}: {detail}; the export "
                "is written but marked failed (--force accepts it)")
        print(f"warning: accuracy gate failed ({detail}); accepted because of --force")
    return 0


def default_precision(args: argparse.Namespace) -> str:
    """``--precision`` as given, else fp32; for ``jetson`` fp16, or int8 when ``--calib`` is
    given (INT8 is explicit Q/DQ, calibrated on those spectra). Says what it chose and how to
    get the other."""
    if args.precision is not None:
        return args.precision
    if args.target != "jetson":
        return "fp32"
    if args.calib is not None:
        print(f"jetson: INT8 (Q/DQ, FP16 fallback) calibrated on {args.calib}; "
              "--precision fp16 for an FP16 engine instead")
        return "int8"
    print("jetson: FP16 (no --calib given); --calib DATA (training spectra) for an INT8 Q/DQ "
          "engine, --precision fp32 for FP32")
    return "fp16"


def _check_int8_flags(args: argparse.Namespace) -> None:
    """Refuse calibration flags without ``--precision int8``."""
    if args.precision == "int8":
        return
    given = [flag for flag, value, default in (
        ("--calib", args.calib, None), ("--calib-size", args.calib_size, DEFAULT_SIZE),
        ("--calib-method", args.calib_method, DEFAULT_METHOD),
        ("--float-layers", args.float_layers, None)) if value != default]
    if given:
        raise PaceEdgeError(f"{', '.join(given)} only apply to --precision int8")


def _check_out(out: Path, force: bool) -> list[str]:
    """Create ``out`` or check it may be written; return the previous export's file names."""
    from ..export.manifest import INTEGRITY_FILES, MANIFEST_FILE, read_manifest

    writable_dir(out, "export")
    if not any(out.iterdir()):
        return []
    try:
        old = read_manifest(out)
    except PaceEdgeError:
        if force:
            return []
        raise PaceEdgeError(
            f"{out} is not empty and holds no previous export; choose another --out or --force"
        ) from None
    listed = {Path(a["path"]).parts[0] for a in old.get("artefacts", []) if a.get("path")}
    names = sorted(n for n in listed | {MANIFEST_FILE, *INTEGRITY_FILES, REPORT_FILE}
                   if (out / n).exists())
    what = f"target {old.get('target')}, {old.get('precision')}"
    if not force:
        raise PaceEdgeError(
            f"{out} already holds an export ({what}); --force replaces it, or choose another "
            "--out")
    print(f"replacing the export in {out} ({what}): {', '.join(names)}")
    return names


def _publish(stage: Path, out: Path, old_files: list[str]) -> None:
    """Replace the previous export's files in ``out`` with the staged ones."""
    for name in old_files:
        old = out / name
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink(missing_ok=True)
    for item in stage.iterdir():
        target = out / item.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        item.replace(target)


def _parity_fields(row: dict[str, Any]) -> dict[str, Any]:
    from dataclasses import fields

    from ..export.parity import ParityResult

    return {f.name: row[f.name] for f in fields(ParityResult)}


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in [header, *rows]]


def summary_table(manifest: Any) -> str:
    """Artefact, precision, size, runtime, parity max |Δlogit| and argmax agreement.

    With eval data, a second table: accuracy of FP32 and each artefact, drop and agreement.
    """
    parity = {row["artefact"]: row for row in manifest.parity}
    rows = []
    for a in manifest.artefacts:
        if a.kind == "figure":
            continue
        p = parity.get(a.path)
        rows.append([
            a.path,
            a.precision,
            f"{a.bytes / 1e6:.2f}",
            p["runtime"] if p else "-",
            f"{p['max_abs_diff']:.2e}" if p else "-",
            f"{p['agreement']:.2%}" if p else "-",
            ("ok" if p["passed"] else "FAILED") if p else "-",
        ])
    header = ["artefact", "precision", "size MB", "runtime", "max|Δlogit|", "agreement", "parity"]
    lines = _table(header, rows)
    cal = manifest.calibration
    if cal:
        lines += ["", f"INT8 calibration: {cal['method']}, {cal['size']} training spectra "
                      f"({', '.join(f'{k} {v}' for k, v in cal['class_counts'].items())}); "
                      f"kept float: {', '.join(cal['float_layers']) or 'none'}"]
    acc = manifest.accuracy
    if acc:
        ref = acc["reference"]
        rows = [["FP32 (PyTorch)", ref["runtime"], f"{ref['accuracy']:.2%}", "-", "-", "-"]]
        rows += [[r["artefact"], r["runtime"], f"{r['accuracy']:.2%}", f"{r['drop_pp']:+.2f}",
                  f"{r['agreement']:.2%}", "ok" if r["passed"] else "FAILED"]
                 for r in acc["artefacts"]]
        lines += ["", f"accuracy on {acc['data']} ({acc['spectra']} spectra, max drop "
                      f"{acc['max_drop_pp']:g} pp):"]
        lines += _table(["model", "runtime", "accuracy", "drop pp", "agreement", "gate"], rows)
    return "\n".join(lines)


def render_report(manifest: Any) -> str:
    """``report.md``: what was exported, its parity and what the runtime executes."""
    c = manifest.source["model"]
    lines = [
        f"# PACE export: {manifest.target} ({manifest.precision})",
        "",
        f"- source bundle: `{manifest.source['bundle']}` "
        f"(weights sha256 `{manifest.source['weights_sha256'][:16]}…`)",
        f"- model: PACE dim={c['dim']} depth={c['depth']} kernel={c['kernel']} "
        f"patch={c['patch']} pool_dim={c['pool_dim']}, {len(manifest.classes)} classes: "
        f"{', '.join(manifest.classes)}",
        f"- input `{manifest.input.name}`: float32 ({manifest.input.batch}, "
        f"{manifest.input.length}), axis {manifest.input.axis[0]:g} … "
        f"{manifest.input.axis[-1]:g}; preprocessing: "
        f"{' → '.join(s['name'] for s in manifest.input.preprocessing) or 'none'}",
        f"- output `{manifest.output.name}`: float32 (batch, {manifest.output.classes}) logits",
        f"- ONNX opset: {manifest.opset}",
        f"- runtime settings: `{manifest.runtime}`",
        "",
        "## Artefacts",
        "",
        "| file | kind | precision | bytes | sha256 |",
        "|---|---|---|---|---|",
        *(f"| {a.path} | {a.kind} | {a.precision} | {a.bytes} | `{a.sha256}` |"
          for a in manifest.artefacts),
        "",
        "## Parity with the PyTorch model",
        "",
        _parity_note(manifest),
        "",
        "| artefact | runtime | max abs Δlogit | mean abs Δlogit | argmax agreement | result |",
        "|---|---|---|---|---|---|",
        *(f"| {p['artefact']} | {p['runtime']} | {p['max_abs_diff']:.3g} | "
          f"{p['mean_abs_diff']:.3g} | {p['agreement']:.2%} | "
          f"{'pass' if p['passed'] else '**FAIL**'} |" for p in manifest.parity),
        "",
        *_accuracy_section(manifest.accuracy),
        *_calibration_section(manifest.calibration),
        *_trust_section(manifest.trust),
        "## Executed graph",
        "",
    ]
    for runtime, graph in manifest.executed_graph.items():
        lines += _graph_section(runtime, graph)
    lines += ["## Versions", "", *(f"- {k}: {v}" for k, v in manifest.versions.items()), ""]
    return "\n".join(lines)


def _parity_note(manifest: Any) -> str:
    samples = manifest.parity[0]["samples"] if manifest.parity else 0
    if manifest.precision == "int8":
        return (f"{samples} held-out training spectra (never used for calibration); INT8 needs "
                f"≥ {manifest.parity[0]['min_agreement']:.0%} argmax agreement"
                if manifest.parity else "no parity rows")
    return (f"{samples} synthetic standardised spectra; FP32 needs max |Δlogit| ≤ 1e-4 and "
            "100 % argmax agreement, FP16 ≥ 99.9 %.")


def _accuracy_section(acc: dict[str, Any] | None) -> list[str]:
    if not acc:
        return []
    ref = acc["reference"]
    return [
        "## Accuracy on eval data",
        "",
        f"{acc['spectra']} labelled spectra from `{acc['data']}`; gate: at most "
        f"{acc['max_drop_pp']:g} percentage points below FP32 — "
        f"**{'passed' if acc['passed'] else 'FAILED'}**.",
        "",
        "| model | runtime | accuracy | drop (pp) | agreement with FP32 | gate |",
        "|---|---|---|---|---|---|",
        f"| FP32 PyTorch | {ref['runtime']} | {ref['accuracy']:.2%} | – | – | – |",
        *(f"| {r['artefact']} | {r['runtime']} | {r['accuracy']:.2%} | {r['drop_pp']:+.2f} | "
          f"{r['agreement']:.2%} | {'pass' if r['passed'] else '**FAIL**'} |"
          for r in acc["artefacts"]),
        "",
    ]


def model_labels(bundle: Any, data: Any) -> Any:
    """``data``'s labels as indices into the bundle's classes (same names, any order)."""
    import numpy as np

    index = [bundle.classes.index(c) if c in bundle.classes else -1 for c in data.classes]
    return np.array([index[int(v)] for v in data.y])


def _trust_section(trust: dict[str, Any] | None) -> list[str]:
    if not trust:
        return []
    detector = trust.get("detector")
    lines = ["## Trust: calibrated probabilities and the \"unknown\" answer", "",
             f"- temperature {trust['temperature']:.4g} (fitted on "
             f"{trust.get('calibration', {}).get('spectra', 0)} held-out training spectra)"]
    if detector:
        lines.append(f"- detector: Mahalanobis distance on the `{trust.get('features_output')}` "
                     f"output, threshold {detector['threshold']:.4g} (accept rate "
                     f"{detector['accept_rate']:.0%} of held-out training spectra)")
    else:
        lines.append("- no \"unknown\" detector (the bundle has none)")
    lines.append("")
    if trust.get("features_parity"):
        lines += ["| artefact | max score Δ / threshold | same verdict as PyTorch |",
                  "|---|---|---|",
                  *(f"| {r['artefact']} | {r['max_score_delta_over_threshold']:.3g} | "
                    f"{r['same_verdict']:.2%} |" for r in trust["features_parity"]), ""]
    if trust.get("evaluation"):
        lines += ["| model | accepted | accuracy on accepted | ECE before | ECE after |",
                  "|---|---|---|---|---|",
                  *(f"| {r['model']} | {r['accept_rate']:.2%} | "
                    + (f"{r['accuracy_accepted']:.2%}" if r["accuracy_accepted"] is not None
                       else "–")
                    + f" | {r['ece_before']:.4f} | {r['ece_after']:.4f} |"
                    for r in trust["evaluation"]), ""]
    return lines


def _calibration_section(cal: dict[str, Any] | None) -> list[str]:
    if not cal:
        return []
    counts = ", ".join(f"{k} {v}" for k, v in cal["class_counts"].items())
    lines = [
        "## INT8 calibration",
        "",
        f"- {cal['size']} calibration spectra from `{cal['source']}` ({counts}); "
        f"{cal['holdout']} more held out for sensitivity and parity; {cal['selection']}",
        f"- activation ranges: {cal['method']}; symmetric INT8 activations and weights "
        "(zero point 0), per-channel weight scales",
        f"- kept float (measured, see below): {', '.join(cal['float_layers']) or 'none'}",
        f"- time: {', '.join(f'{k} {v:.1f} s' for k, v in cal.get('seconds', {}).items())}",
        "",
        "### Per-layer sensitivity",
        "",
        f"Logit NRMSE and argmax agreement against FP32 on {cal['check_spectra']} held-out "
        "training spectra with only that layer quantised (every other layer float). The most "
        "sensitive layers are kept float, in order, until the quantised rest has NRMSE ≤ "
        f"{cal['tolerance_nrmse']:g} (agreement ≥ 97 % as a sanity floor; at most half the "
        "layers float).",
        "",
        "![per-layer sensitivity](int8_sensitivity.png)",
        "",
        "| layer | node | NRMSE | agreement | max abs Δlogit | kept float |",
        "|---|---|---|---|---|---|",
        *(f"| {r['layer']} | {r['node']} | {r['nrmse']:.4f} | {r['agreement']:.2%} | "
          f"{r['max_abs']:.3g} | {'yes' if r['layer'] in cal['float_layers'] else ''} |"
          for r in cal["sensitivity"]),
        "",
        "Search (ONNX Runtime QDQ):",
        "",
        "| float layers | NRMSE | agreement | within tolerance |",
        "|---|---|---|---|",
        *(f"| {', '.join(s['float']) or '(none)'} | {s['nrmse']:.4f} | {s['agreement']:.2%} | "
          f"{'yes' if s['ok'] else 'no'} |" for s in cal["search"]),
        "",
    ]
    ov = cal.get("artefacts", {}).get("openvino")
    if ov:
        lines += [f"OpenVINO ({ov['tool']}, preset {ov['preset']}): float layers "
                  f"{', '.join(ov['float_layers']) or 'none'}"
                  + (f"; nncf.quantize_with_accuracy_control with max drop "
                     f"{ov['accuracy_control']['max_drop_pp']:g} pp on the eval data (it keeps "
                     "more layers float only when the drop exceeds that; the gate above then "
                     "measured on the same data)" if "accuracy_control" in ov else ""), ""]
    lines += [
        "### Activation ranges",
        "",
        "FP32 range of each tensor a quantisable layer reads, its INT8 clipping range and its "
        "standard deviation in INT8 steps.",
        "",
        "![activation ranges per layer](int8_activations.png)",
        "",
    ]
    return lines


def _graph_section(runtime: str, graph: dict[str, Any]) -> list[str]:
    counts = graph.get("layer_counts") or graph.get("op_counts") or {}
    lines = [f"### {runtime}", ""]
    if "inference_precision" in graph:
        lines.append(f"- device {graph.get('device_name', graph.get('device'))}, inference "
                     f"precision {graph['inference_precision']}")
    lines.append("- executed nodes by type: "
                 + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if "blocks" in graph:
        lines.append(f"- standalone GELU nodes: {graph['standalone_gelu']}; embed conv+GELU "
                     f"fused: {graph['embed_gelu_fused']}")
        lines += [
            f"- block {b['block']}: dw conv {b['dw_primitive']} (GELU fused: "
            f"{b['dw_gelu_fused']}), pw conv {b['pw_primitive']} (residual+GELU fused: "
            f"{b['pw_residual_gelu_fused']})"
            for b in graph["blocks"]
        ]
    return [*lines, ""]
