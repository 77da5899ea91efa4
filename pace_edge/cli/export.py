"""``pace-edge export``: options -> :func:`pace_edge.export.exporter.export_bundle` -> summary.

The library stages, quantises, verifies, gates and publishes (see :mod:`pace_edge.export.
exporter`); this command parses the options, prints what it did and turns a failed gate into
exit status 1 (the export is written, marked failed in its manifest).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import PaceEdgeError
from ..export import (
    DEFAULT_CALIB_METHOD,
    DEFAULT_CALIB_SIZE,
    DEFAULT_MAX_DROP,
    DEFAULT_OPSET,
    PRECISIONS,
    TARGETS,
    ExportOptions,
)
from ..export.quantize.qdq import METHODS
from .common import QualityGateFailed, positive_int

HELP = "export a model bundle for a runtime (ONNX, OpenVINO, ...) and check its parity"


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
                        "non-empty --out that does not hold a previous export, and accept an "
                        "export that fails the --max-accuracy-drop gate or whose INT8 "
                        "float-layer search stops outside its tolerance (exit 0)")
    q = p.add_argument_group("INT8 calibration and accuracy gate")
    q.add_argument("--calib", type=Path, default=None, metavar="DATA",
                   help="training spectra to calibrate INT8 with (their train split; default: "
                        "the bundle's recorded training data, if readable)")
    q.add_argument("--calib-size", type=calib_size, default=DEFAULT_CALIB_SIZE, metavar="N|all",
                   help=f"calibration spectra, stratified by class and spread over intensity "
                        f"(default {DEFAULT_CALIB_SIZE}; 20%% of the data is held out for checks)")
    q.add_argument("--calib-method", choices=METHODS, default=DEFAULT_CALIB_METHOD,
                   help=f"activation range estimation (default {DEFAULT_CALIB_METHOD}: 99.99th "
                        "percentile of |x|; minmax: largest |x|; entropy: KL-optimal clip)")
    q.add_argument("--float-layers", type=float_layers, default=None, metavar="LAYERS|none",
                   help="keep exactly these layers in float instead of the measured choice: "
                        "comma-separated keys (pool, embed, head, blocks.N, blocks.N.dw, "
                        "blocks.N.pw, blocks.N.add); none quantises every layer, for the most "
                        "throughput (check it with --eval) (default: chosen by sensitivity)")
    q.add_argument("--eval", type=Path, default=None, metavar="DATA",
                   help="labelled held-out data (its test split): measure the FP32 model and "
                        "every artefact on it and apply the accuracy gate (it only measures: "
                        "the artefacts are the same with or without it)")
    q.add_argument("--max-accuracy-drop", type=float, default=DEFAULT_MAX_DROP, metavar="PP",
                   help=f"with --eval, fail an artefact whose predictions differ from FP32 on "
                        f"more than PP %% of spectra at 95 %% confidence (exact binomial bound: "
                        f"one flip on a small set does not fail it); for INT8 also NNCF's "
                        f"accuracy-control limit on held-out training spectra (default "
                        f"{DEFAULT_MAX_DROP:g})")
    p.set_defaults(run=run)


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
    from ..export.exporter import export_bundle
    from ..export.report import summary_table

    args.precision = default_precision(args)
    spec = TARGETS[args.target]
    args.opset = spec.opset(args.opset)
    _check_int8_flags(args)
    options = ExportOptions(
        precision=args.precision,
        batch=args.batch,
        opset=args.opset,
        parity_samples=args.parity_samples,
        calib=args.calib,
        calib_size=args.calib_size,
        calib_method=args.calib_method,
        float_layers=None if args.float_layers is None else tuple(args.float_layers),
        evaluation=args.eval,
        max_accuracy_drop=args.max_accuracy_drop,
        progress=True,
        force=args.force,
        sign=args.sign,
    )
    print(f"exporting {args.model} -> {args.out} (target {args.target}, {args.precision}, "
          f"batch {args.batch}, opset {args.opset})")
    result = export_bundle(args.model, args.target, args.out, options, log=print)
    print(summary_table(result.manifest))
    print(f"wrote {result.manifest_path} and {result.report_path}"
          + (f", signed with {args.sign}" if result.signed else ""))
    if args.sign is not None and not result.signed:
        print("not signed: the export failed its checks")
    for gate in result.accepted_gates:
        print(f"warning: {_gate_line(gate, result.problems[gate])}; accepted because of --force")
    if result.failed_gates:
        detail = "; ".join(_gate_line(g, result.problems[g]) for g in result.failed_gates)
        hint = "" if result.failed_gates == ["parity"] else " (--force accepts it)"
        raise QualityGateFailed(f"{detail}; the export is written but marked failed{hint}")
    return 0


def _gate_line(gate: str, problem: str) -> str:
    if gate == "parity":
        return f"parity check failed ({problem})"
    return f"{gate} gate failed{'' if problem.startswith('on ') else ':'} {problem}"


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
        ("--calib", args.calib, None), ("--calib-size", args.calib_size, DEFAULT_CALIB_SIZE),
        ("--calib-method", args.calib_method, DEFAULT_CALIB_METHOD),
        ("--float-layers", args.float_layers, None)) if value != default]
    if given:
        raise PaceEdgeError(f"{', '.join(given)} only apply to --precision int8")
