"""``pace-edge info``: what a bundle or an export holds, after verifying it.

A bundle: its weights' sha256 against ``model.json``. An export: every file the manifest lists,
through :func:`pace_edge.export.manifest.load_manifest`; then its target, precision, classes,
input axis, preprocessing and the results of the checks made at export time. Needs neither
torch nor a runtime.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .common import positive_int

if TYPE_CHECKING:
    from ..bundle import Bundle
    from ..export.manifest import Manifest
    from ..model import ModelConfig

HELP = ("verify a model bundle or an export (every file's sha256, model.json's or "
        "manifest.json's digest) and describe it")
# Entries of a state dict that are statistics, not trained parameters.
BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help=HELP, description=HELP + ".")
    p.add_argument("model", type=Path, nargs="?", default=None,
                   help="model bundle or export directory")
    p.add_argument("--presets", action="store_true",
                   help="instead, list every architecture preset with its multiply-adds per "
                        "spectrum, parameters and INT8 weight size (for --points and --classes)")
    p.add_argument("--points", type=positive_int, default=900,
                   help="spectrum length for --presets (default: 900, as COV)")
    p.add_argument("--classes", type=positive_int, default=3,
                   help="number of classes for --presets (default: 3)")
    p.add_argument("--json", action="store_true",
                   help="print model.json (bundle) or manifest.json (export) after verifying it")
    p.add_argument("--seal", action="store_true",
                   help="record the digest (model.json.sha256) of a bundle written before "
                        "pace-edge covered model.json by one; check model.json first")
    p.set_defaults(run=run)


def parameter_counts(weights: dict[str, np.ndarray]) -> tuple[int, int]:
    """(trainable parameters, BatchNorm statistics) of a state dict; the "unknown" detector's
    arrays (``trust.*``) are not parameters of the model."""
    weights = {k: v for k, v in weights.items() if not k.startswith("trust.")}
    buffers = sum(int(v.size) for k, v in weights.items() if k.endswith(BUFFER_SUFFIXES))
    return sum(int(v.size) for v in weights.values()) - buffers, buffers


def _steps(preprocessing: list[dict[str, Any]]) -> str:
    """``crop(lo=400, hi=1800) → normalize(method=snv)``, or ``none``."""
    parts = []
    for step in preprocessing:
        items = {k: v for k, v in step.items() if k not in ("name", "options")}
        items.update(step.get("options") or {})
        options = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in items.items() if not isinstance(v, list))
        parts.append(f"{step['name']}({options})" if options else str(step["name"]))
    return " → ".join(parts) or "none"


def _axis(axis: Any, length: int) -> str:
    a = np.asarray(axis, dtype=np.float64)
    return f"{length} points, {a[0]:g} … {a[-1]:g}"


def preset_table(points: int, classes: int) -> list[str]:
    """Every preset's architecture and cost, as a Markdown table."""
    from ..model import PRESETS, preset
    from ..model.cost import human, human_bytes, model_cost

    rows = sorted(((name, preset(name, classes)) for name in PRESETS),
                  key=lambda item: model_cost(item[1], points).multiply_adds)
    lines = ["| preset | dim | depth | kernel | patch | pool_dim | multiply-adds per spectrum | "
             "parameters | INT8 weights |", "|---|---|---|---|---|---|---|---|---|"]
    for name, c in rows:
        cost = model_cost(c, points)
        lines.append(f"| `{name}` | {c.dim} | {c.depth} | {c.kernel} | {c.patch} | "
                     f"{c.pool_dim} | {human(cost.multiply_adds)} | {human(cost.parameters)} | "
                     f"{human_bytes(cost.int8_weight_bytes)} |")
    return lines


def run(args: argparse.Namespace) -> int:
    from ..bundle import META_FILE, Bundle, seal_bundle
    from ..errors import PaceEdgeError
    from ..export.manifest import MANIFEST_FILE, signature_of, verify_export

    if args.presets:
        print(f"presets for {args.points}-point spectra, {args.classes} classes "
              f"(INT8 weights: one byte a parameter)")
        print("\n".join(preset_table(args.points, args.classes)))
        return 0
    if args.model is None:
        raise PaceEdgeError("give a bundle or export directory (or --presets)")
    path = Path(args.model)
    if (path / MANIFEST_FILE).is_file():
        manifest = verify_export(path)  # every listed file, and manifest.json's digest
        if args.json:
            print((path / MANIFEST_FILE).read_text().rstrip())
        else:
            print("\n".join(describe_export(path, manifest, signature_of(path))))
        return 0
    if args.seal:
        print(f"recorded {seal_bundle(path)}")
    bundle = Bundle.load(path)
    if args.json:
        print((path / META_FILE).read_text().rstrip())
    else:
        print("\n".join(describe_bundle(path, bundle)))
    return 0


def cost_line(config: ModelConfig, length: int) -> str:
    """Multiply-adds per spectrum, parameters and the all-INT8 weight size of ``config``."""
    from ..model.cost import human, human_bytes, model_cost

    cost = model_cost(config, length)
    return (f"  cost       {human(cost.multiply_adds)} multiply-adds per spectrum, "
            f"{human(cost.parameters)} parameters, INT8 weights "
            f"{human_bytes(cost.int8_weight_bytes)} at one byte each")


def describe_bundle(path: Path, bundle: Bundle) -> list[str]:
    c = bundle.config
    trainable, statistics = parameter_counts(bundle.weights)
    m = bundle.training.get("metrics", {})
    lines = [
        f"bundle {path} (weights and model.json verified)",
        f"  model      PACE dim={c.dim} depth={c.depth} kernel={c.kernel} patch={c.patch} "
        f"pool_dim={c.pool_dim}, {trainable:,} trainable parameters "
        f"(+ {statistics:,} BatchNorm statistics)",
        cost_line(c, bundle.input_length),
        f"  classes    {', '.join(bundle.classes)}",
        f"  input      {_axis(bundle.axis, bundle.input_length)}",
        f"  preprocess {_steps(bundle.preprocessing.to_list())}",
    ]
    distilled = bundle.training.get("distillation")
    if distilled:
        t = distilled.get("teacher", {})
        lines.append(f"  distilled  from {t.get('bundle')} (weights sha256 "
                     f"{str(t.get('weights_sha256'))[:12]}…), temperature "
                     f"{distilled.get('temperature')}, alpha {distilled.get('alpha')}")
    if m:
        lines.append(f"  training   epoch {m.get('best_epoch')}/{m.get('epochs_run')}, validation "
                     f"accuracy {m.get('val_accuracy', 0):.2%}, {m.get('seconds')} s")
    if "test" in m:
        lines.append(f"  held-out   {m['test']['accuracy']:.2%} on {m['test']['source']}")
    lines.append(_trust_line(bundle.training.get("trust")))
    lines.append("  versions   " + json.dumps(bundle.versions))
    return lines


def _trust_line(trust: dict[str, Any] | None) -> str:
    """The temperature and the "unknown" detector as recorded (bundle or manifest)."""
    if not trust:
        return "  trust      none recorded (probabilities unscaled, no 'unknown' answer)"
    detector = trust.get("detector")
    spectra = (trust.get("calibration") or {}).get("spectra", 0)
    return (f"  trust      temperature {trust.get('temperature', 1.0):.3g}; "
            + (f"'unknown' detector on {detector['feature_dim']} features, threshold "
               f"{detector['threshold']:.4g} (accepts {detector['accept_rate']:.0%} of held-out "
               "training spectra)" if detector else "no 'unknown' detector")
            + f"; calibrated on {spectra} held-out training spectra")


def _export_cost(manifest: Manifest) -> list[str]:
    """The cost line of the exported model, from the architecture its manifest records."""
    from ..errors import PaceEdgeError
    from ..model import ModelConfig

    try:
        config = ModelConfig.from_dict(manifest.source["model"])
    except (KeyError, TypeError, PaceEdgeError):
        return []
    return [cost_line(config, manifest.input.length)]


def describe_export(path: Path, manifest: Manifest,
                    signature: dict[str, Any] | None = None) -> list[str]:
    inp = manifest.input
    lines = [
        f"export {path} ({len(manifest.artefacts)} files verified against {path.name}/"
        "manifest.json)",
        f"  target     {manifest.target}, precision {manifest.precision}, batch {inp.batch}"
        + (f", ONNX opset {manifest.opset}" if manifest.opset else ""),
        *_export_cost(manifest),
        f"  classes    {', '.join(manifest.classes)}",
        f"  input      {inp.name}: {_axis(inp.axis, inp.length)}, {inp.dtype}",
        f"  preprocess {_steps(inp.preprocessing)}",
        f"  output     {manifest.output.name}: {manifest.output.classes} {manifest.output.kind}",
        "  signature  " + (f"Ed25519, key sha256 {str(signature.get('key_sha256'))[:16]}… (checked "
                           "on the device with --trusted-keys)" if signature
                           else "none (unsigned export)"),
    ]
    for a in manifest.artefacts:
        lines.append(f"  file       {a.path} ({a.kind}, {a.precision}, {a.bytes:,} bytes, "
                     f"sha256 {a.sha256[:12]}…)")
    for row in manifest.parity:
        lines.append(
            f"  parity     {row.get('artefact')} on {row.get('runtime')}: max |Δlogit| "
            f"{row.get('max_abs_diff', float('nan')):.2e}, agreement "
            f"{row.get('agreement', float('nan')):.2%} over {row.get('samples')} spectra: "
            f"{'passed' if row.get('passed') else 'FAILED'}")
    if not manifest.parity:
        lines.append("  parity     not recorded")
    acc = manifest.accuracy
    if acc:
        ref = acc.get("reference", {})
        rows = ", ".join(f"{r['artefact']} {r['accuracy']:.2%} ({r['drop_pp']:+.2f} pp)"
                         for r in acc.get("artefacts", []))
        lines.append(
            f"  accuracy   gate {'passed' if acc.get('passed') else 'FAILED'} on "
            f"{acc.get('data')} ({acc.get('spectra')} spectra, max drop "
            f"{acc.get('max_drop_pp')} pp): FP32 {ref.get('accuracy', float('nan')):.2%}; {rows}")
    else:
        lines.append("  accuracy   gate not run (export without --eval)")
    failed, accepted = manifest.failed_gates, manifest.status.get("accepted_gates", [])
    if failed:
        lines.append(f"  status     FAILED its {', '.join(failed)} gate: runners refuse it "
                     "unless --allow-failed")
    elif accepted:
        lines.append(f"  status     failed its {', '.join(accepted)} gate, accepted with --force")
    elif manifest.status:
        lines.append("  status     every gate passed")
    cal = manifest.calibration
    if cal:
        lines.append(f"  INT8       {cal.get('size')} calibration spectra from "
                     f"{cal.get('source')} ({cal.get('method')}); kept float: "
                     f"{', '.join(cal.get('float_layers', [])) or 'none'}")
    source = manifest.source
    lines.append(f"  source     {source.get('bundle')} (weights sha256 "
                 f"{str(source.get('weights_sha256', ''))[:12]}…)")
    if manifest.created:
        lines.append(f"  created    {manifest.created}")
    lines.append(_trust_line(manifest.trust))
    lines.append("  versions   " + json.dumps(manifest.versions))
    return lines
