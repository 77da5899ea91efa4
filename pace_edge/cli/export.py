"""``pace-edge export``: turn a bundle into deployable artefacts with a verified manifest.

The target writes into a staging folder inside ``--out``; only a finished export (artefacts,
``manifest.json``, ``report.md``) replaces what was there, so a crash leaves the old export.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import PaceEdgeError
from ..export import DEFAULT_OPSET, PRECISIONS, TARGETS, ExportOptions
from .common import positive_int, writable_dir

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
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="numeric precision of the artefacts (default fp32)")
    p.add_argument("--batch", type=batch_size, default="dynamic", metavar="N|dynamic",
                   help="fixed batch size, or dynamic (default)")
    p.add_argument("--opset", type=positive_int, default=DEFAULT_OPSET,
                   help=f"ONNX opset (default {DEFAULT_OPSET}, the first with a native Gelu)")
    p.add_argument("--parity-samples", type=positive_int, default=256, metavar="N",
                   help="synthetic spectra for the parity check (default 256)")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty --out that does not hold a previous export")
    # INT8 (--calib, --calib-size, --calib-method, --eval, --max-accuracy-drop) goes here,
    # passed to the target through ExportOptions.extra.
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..bundle import WEIGHTS_FILE, Bundle, library_versions, sha256_file
    from ..export import OUTPUT_NAME, get_target, run_target
    from ..export.manifest import Artefact, InputSpec, Manifest, OutputSpec, write_manifest

    get_target(args.target, args.precision)  # refuse unavailable targets/precisions early
    bundle = Bundle.load(args.model)
    old_files = _check_out(args.out, args.force)
    options = ExportOptions(
        precision=args.precision,
        batch=args.batch,
        opset=args.opset,
        parity_samples=args.parity_samples,
    )
    print(f"exporting {args.model} -> {args.out} (target {args.target}, {args.precision}, "
          f"batch {args.batch}, opset {args.opset})")
    stage = Path(tempfile.mkdtemp(prefix=".export-", dir=args.out))
    try:
        result = run_target(bundle, stage, args.target, options)
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
                "model": bundle.config.to_dict(),
            },
            opset=result.opset,
            runtime=result.runtime,
            parity=result.parity,
            executed_graph=result.executed_graph,
            calibration=result.calibration,
            accuracy=result.accuracy,
            versions=library_versions("torch", "onnx", "onnxscript", "onnxruntime", "openvino"),
        )
        write_manifest(stage, manifest)
        (stage / REPORT_FILE).write_text(render_report(manifest))
        _publish(stage, args.out, old_files)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    print(summary_table(manifest))
    print(f"wrote {args.out / 'manifest.json'} and {args.out / REPORT_FILE}")
    failed = [row for row in manifest.parity if not row["passed"]]
    if failed:
        from ..export.parity import ParityResult

        detail = "; ".join(ParityResult(**_parity_fields(r)).describe() for r in failed)
        raise PaceEdgeError(f"parity check failed ({detail}); the export is marked failed")
    return 0


def _check_out(out: Path, force: bool) -> list[str]:
    """Create ``out`` or check it may be written; return the previous export's file names."""
    from ..export.manifest import MANIFEST_FILE, read_manifest

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
    names = {Path(a["path"]).parts[0] for a in old.get("artefacts", []) if a.get("path")}
    return sorted(names | {MANIFEST_FILE, REPORT_FILE})


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
    """Artefact, precision, size, runtime, parity max |Δlogit| and argmax agreement."""
    parity = {row["artefact"]: row for row in manifest.parity}
    rows = []
    for a in manifest.artefacts:
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
    return "\n".join(_table(header, rows))


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
        f"{manifest.parity[0]['samples'] if manifest.parity else 0} synthetic standardised "
        "spectra; FP32 needs max |Δlogit| ≤ 1e-4 and 100 % argmax agreement, FP16 ≥ 99.9 %.",
        "",
        "| artefact | runtime | max abs Δlogit | mean abs Δlogit | argmax agreement | result |",
        "|---|---|---|---|---|---|",
        *(f"| {p['artefact']} | {p['runtime']} | {p['max_abs_diff']:.3g} | "
          f"{p['mean_abs_diff']:.3g} | {p['agreement']:.2%} | "
          f"{'pass' if p['passed'] else '**FAIL**'} |" for p in manifest.parity),
        "",
        "## Executed graph",
        "",
    ]
    for runtime, graph in manifest.executed_graph.items():
        lines += _graph_section(runtime, graph)
    lines += ["## Versions", "", *(f"- {k}: {v}" for k, v in manifest.versions.items()), ""]
    return "\n".join(lines)


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
