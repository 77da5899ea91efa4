"""``report.md`` lines for the INT8 choice: criterion, per-layer sensitivity and cost, the
search, the options tried, predicted and measured speed (from the manifest's calibration)."""

from __future__ import annotations

from typing import Any


def _pct(value: Any) -> str:
    return "–" if value is None else f"{value:.1%}"


def _speed_lines(cal: dict[str, Any]) -> list[str]:
    lines = []
    for name, art in cal.get("artefacts", {}).items():
        speed = art.get("speed")
        if not speed:
            continue
        m = speed["measured"]
        lines.append(
            f"- {name}: predicted {speed['predicted_speedup']:.2f}× FP32 (multiply-add model); "
            f"measured {m['speedup']:.2f}× on {m['runtime']} at batch {m['batch']} "
            f"({m['fp32_ms']:.2f} → {m['int8_ms']:.2f} ms per call, median of {m['calls']} "
            "interleaved calls during the export; `pace-edge benchmark` measures properly)")
    return lines


def int8_choice_lines(cal: dict[str, Any]) -> list[str]:
    """The report's INT8 choice section (markdown lines)."""
    crit = cal.get("criterion", {})
    verdict = cal.get("verdict") or {}
    costs = cal.get("layer_costs", {})
    fp32_cost = sum(c["float_cost"] for c in costs.values()) or 1.0
    lines = [
        "### How the float layers were chosen",
        "",
        f"Each candidate build is judged against FP32 on {cal['check_spectra']} held-out "
        "training spectra (never calibration, never the test split): it must agree with FP32's "
        f"top-1 class, with the {crit.get('bound', '')} upper bound "
        f"({crit.get('confidence', 0):.0%}) of the disagreement rate at most "
        f"{crit.get('max_disagreement', 0):.1%}, and the bound of the share of spectra it "
        f"gets wrong that FP32 got right at most {crit.get('max_accuracy_drop', 0):.1%}, and "
        "its expected disagreement (every spectrum's INT8 logit error applied to every other "
        "spectrum's FP32 logits) at most "
        f"{crit.get('max_expected_disagreement', 0):.1%}. "
        f"These spectra can certify at best {cal.get('resolution', 1):.1%}"
        + ("" if cal.get("resolution", 1) <= min(crit.get("max_disagreement", 1),
                                                 crit.get("max_accuracy_drop", 1))
           else " (more than the limit: the criterion then asks for no disagreement at all)")
        + ". Logit NRMSE only breaks ties. Among the float sets that meet it, the cheapest in "
        "multiply-adds is kept: a float layer costs what INT8 would have saved.",
        "",
        f"- chosen: {', '.join(cal['float_layers']) or 'no layer'} float, calibration "
        f"{cal['method']}; criterion "
        + ("**met**" if cal.get("met") else
           "**not met: the export fails its sensitivity gate unless --force**")
        + (f": {verdict['spectra'] - verdict['disagreements']}/{verdict['spectra']} agree, "
           f"disagreement ≤ {_pct(verdict['disagreement_upper'])}, expected "
           f"{verdict['expected_disagreement']:.2%}, lost {verdict['lost']}, "
           f"gained {verdict['gained']}, NRMSE {verdict['nrmse']:.4f}, probability drift "
           f"{verdict['probability_drift']:.4f}" if verdict else ""),
        f"- predicted speed-up over FP32: {cal.get('predicted_speedup', 0):.2f}×",
        *_speed_lines(cal),
        "",
        "| layer | op | multiply-adds / spectrum | share of the model | quantised alone: "
        "NRMSE | agreement | kept float |",
        "|---|---|---|---|---|---|---|",
        *(f"| {r['layer']} | {r['op_type']} | {costs.get(r['layer'], {}).get('macs', 0):,} | "
          f"{costs.get(r['layer'], {}).get('float_cost', 0) / fp32_cost:.1%} | "
          f"{r['nrmse']:.4f} | {r['agreement']:.2%} | "
          f"{'yes' if r['layer'] in cal['float_layers'] else ''} |"
          for r in cal.get("sensitivity", [])),
        "",
        "![per-layer sensitivity](int8_sensitivity.png)",
        "",
        "Search (ONNX Runtime QDQ, calibration " + cal["method"] + "):",
        "",
        "| step | float layers | predicted speed-up | agree | disagreement bound | expected | "
        "lost | NRMSE | meets |",
        "|---|---|---|---|---|---|---|---|---|",
        *(f"| {s['action']} | {', '.join(s['float']) or '(none)'} | "
          f"{s['predicted_speedup']:.2f}× | {s['spectra'] - s['disagreements']}/{s['spectra']} | "
          f"{_pct(s['disagreement_upper'])} | {s['expected_disagreement']:.2%} | "
          f"{'–' if s['lost'] is None else s['lost']} | "
          f"{s['nrmse']:.4f} | {'yes' if s['ok'] else 'no'} |" for s in cal.get("search", [])),
        "",
    ]
    qat = cal.get("qat")
    if qat:
        lines += [f"Quantisation-aware fine-tuning first: {qat['options']['epochs']} epochs on "
                  f"{qat['spectra']} calibration spectra ({qat['rules']}); INT8 agreement with "
                  f"the FP32 parent on the {qat['holdout_spectra']} held-out spectra "
                  f"{qat['holdout_agreement_int8_before']:.2%} before, "
                  f"{qat['holdout_agreement_int8_after']:.2%} after; the criterion above "
                  "compares with the parent.", ""]
    tried = cal.get("methods_tried", [])
    if len(tried) > 1:
        lines += ["Calibration ranges tried: " + "; ".join(
            f"{t['method']}: {', '.join(t['float_layers']) or 'none'} float, "
            f"{'meets' if t['met'] else 'misses'}, NRMSE {t['nrmse']:.4f}" for t in tried), ""]
    ov = cal.get("artefacts", {}).get("openvino")
    if ov and ov.get("recipes_tried"):
        lines += ["NNCF recipes tried at the QDQ search's float layers: " + "; ".join(
            f"{t['recipe']} ({t['description']}): {t['spectra'] - t['disagreements']}/"
            f"{t['spectra']} agree, NRMSE {t['nrmse']:.4f}" for t in ov["recipes_tried"])
            + ("" if ov.get("outlier_channels") else
               " (SmoothQuant not tried: no activation has outlier channels)"), ""]
    return lines
