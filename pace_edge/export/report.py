"""What an export says about itself: the terminal summary and ``report.md``.

Both are rendered from the written :class:`~pace_edge.export.manifest.Manifest` alone, so a
report always describes exactly what the manifest records.
"""

from __future__ import annotations

from typing import Any

from .quantize.report import int8_choice_lines

REPORT_FILE = "report.md"


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
        if "resolution" in acc:
            lines.append(acc["resolution"]["text"])
    problems = (getattr(manifest, "status", None) or {}).get("problems", {})
    if "sensitivity" in problems:
        lines += ["", f"INT8 sensitivity: {problems['sensitivity']}"]
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
        *_trust_section(getattr(manifest, "trust", None)),
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
    if "resolution" not in acc:  # an export written before the statistical gate
        gate = (f"gate: at most {acc['max_drop_pp']:g} percentage points below FP32 — "
                f"**{'passed' if acc['passed'] else 'FAILED'}**.")
        resolution: list[str] = []
    else:
        gate = (f"these spectra only measure and gate (they shape no artefact). Gate: an "
                f"artefact fails when the spectra show, at {acc['confidence']:.0%} confidence "
                f"(exact one-sided Clopper–Pearson bound), that it gets wrong more than "
                f"{acc['max_drop_pp']:g} % of spectra FP32 gets right (a flip below: a "
                f"spectrum FP32 gets right and the artefact wrong) — "
                f"**{'passed' if acc['passed'] else 'FAILED'}**.")
        resolution = [f"What this set can resolve: {acc['resolution']['text']}.", ""]
    return [
        "## Accuracy on eval data",
        "",
        f"{acc['spectra']} labelled spectra from `{acc['data']}`; {gate}",
        "",
        *resolution,
        "| model | runtime | accuracy | drop (pp) | agreement with FP32 | lost / gained | "
        "lost, 95 % bounds (pp) | McNemar p (worse) | gate |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| FP32 PyTorch | {ref['runtime']} | {ref['accuracy']:.2%} | – | – | – | – | – | – |",
        *(f"| {r['artefact']} | {r['runtime']} | {r['accuracy']:.2%} | {r['drop_pp']:+.2f} | "
          f"{r['agreement']:.2%} | {_lost(r)} | "
          f"{'pass' if r['passed'] else '**FAIL**'} |" for r in acc["artefacts"]),
        "",
    ]


def _lost(row: dict[str, Any]) -> str:
    """Lost / gained spectra, the bounds on the lost rate and the McNemar p-value columns."""
    if "fp32_only_right" not in row:
        return "– | – | –"
    return (f"{row['fp32_only_right']} / {row['artefact_only_right']} | "
            f"{row['lost_lower_pp']:.2f} – {row['lost_upper_pp']:.2f} | "
            f"{row['mcnemar_p_worse']:.3g}")


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
        *int8_choice_lines(cal),
    ]
    ov = cal.get("artefacts", {}).get("openvino")
    if ov:
        lines += [f"OpenVINO ({ov['tool']}, {ov['preset']}): float layers "
                  f"{', '.join(ov['float_layers']) or 'none'}", ""]
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
