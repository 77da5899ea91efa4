"""Summarise rightsize runs (one frontier.json per seed): what each run chose against its
largest size, and per candidate, mean ± std over the seeds of validation and test accuracy
(FP32 and INT8) and the INT8 build's latency relative to the largest size's build timed in the
same run.

    python benchmarks/rightsize_summary.py runs/rightsize/rightsize-s*/frontier.json

Prints Markdown tables (the figures in README's "Right-sizing" section come from it).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any


def mean_std(values: list[float], scale: float = 100.0, digits: int = 2) -> str:
    if not values:
        return "–"
    m = statistics.fmean(values) * scale
    if len(values) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {statistics.stdev(values) * scale:.{digits}f}"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2f} %"


def chosen_rows(runs: list[dict[str, Any]], paths: list[Path]) -> list[str]:
    """One Markdown row per run: the chosen candidate against the largest plain size."""
    rows = ["| run | chosen | multiply-adds vs largest | test FP32 / INT8 | largest's test | "
            "batch 1, chosen vs largest INT8 (threads) | the same, both at the runtime's default "
            "threads | spectra/s at batch 64 | INT8 build |",
            "|---|---|---|---|---|---|---|---|---|"]
    for run, path in zip(runs, paths, strict=True):
        cands = {c["name"]: c for c in run["candidates"]}
        c = cands.get(str(run.get("chosen")))
        if c is None:
            rows.append(f"| {path.parent.name} | none ({run.get('reason')}) ||||||||")
            continue
        big = max((x for x in cands.values() if not x["distilled"]),
                  key=lambda x: x["multiply_adds"])
        b1, t1 = c["latency"].get("1", {}), big["latency"].get("1", {})
        ratio = (t1["p50_ms"] / b1["p50_ms"]) if b1 and t1 else float("nan")
        d1 = c.get("timings", {}).get("default", {}).get("1")
        t1d = big.get("timings", {}).get("default", {}).get("1")
        same = (f"{d1['p50_ms']:.3f} vs {t1d['p50_ms']:.3f} ms, "
                f"{t1d['p50_ms'] / d1['p50_ms']:.2f}×" if d1 and t1d else "–")
        build = "post-training INT8" if not c.get("export_qat") else (
            f"after {c['export_qat']} epochs of QAT")
        rows.append(
            f"| {path.parent.name} | {c['name']} | "
            f"{big['multiply_adds'] / c['multiply_adds']:.1f}× fewer | "
            f"{_pct(c.get('test_accuracy'))} / {_pct(c.get('int8_test_accuracy'))} | "
            f"{_pct(big.get('test_accuracy'))} | {b1.get('p50_ms', float('nan')):.3f} "
            f"({b1.get('threads', '?')}) vs {t1.get('p50_ms', float('nan')):.3f} "
            f"({t1.get('threads', '?')}) ms, {ratio:.2f}× | {same} | "
            f"{c['latency'].get('64', {}).get('spectra_per_s', float('nan')):,.0f} | {build} |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("frontiers", nargs="+", type=Path)
    args = p.parse_args()
    runs = [json.loads(f.read_text()) for f in args.frontiers]
    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    chosen: list[str] = []
    speed: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        chosen.append(str(run.get("chosen")))
        cands = run["candidates"]
        teacher = max((c for c in cands if not c["distilled"]), key=lambda c: c["multiply_adds"])
        for c in cands:
            by_name[c["name"]].append(c)
            if c.get("latency") and teacher.get("latency"):
                b1, t1 = c["latency"]["1"], teacher["latency"]["1"]
                b64 = c["latency"]["64"]
                speed[c["name"]]["p50"].append(b1["p50_ms"])
                speed[c["name"]]["speedup1"].append(t1["p50_ms"] / b1["p50_ms"])
                speed[c["name"]]["rate64"].append(b64["spectra_per_s"])
    order = sorted(by_name, key=lambda n: (by_name[n][0]["multiply_adds"], n))
    print(f"{len(runs)} run(s); chosen: {', '.join(chosen)}\n")
    print("\n".join(chosen_rows(runs, args.frontiers)) + "\n")
    print("| candidate | multiply-adds | seeds | validation % | test % (FP32) | test % (INT8) |")
    print("|---|---|---|---|---|---|")
    for n in order:
        rows = by_name[n]
        print(f"| {n} | {rows[0]['multiply_adds'] / 1e6:.2f} M | {len(rows)} | "
              f"{mean_std([r['val_accuracy'] for r in rows])} | "
              f"{mean_std([r['test_accuracy'] for r in rows if r.get('test_accuracy') is not None])} | "  # noqa: E501
              f"{mean_std([r['int8_test_accuracy'] for r in rows if r.get('int8_test_accuracy') is not None])} |")  # noqa: E501
    print("\n| size | seeds | distilled − plain, validation pp | distilled − plain, test pp |")
    print("|---|---|---|---|")
    for n in order:
        if n.endswith("-distilled"):
            continue
        pairs = [(a, b) for run in runs for a in run["candidates"] for b in run["candidates"]
                 if a["name"] == n and b["name"] == n + "-distilled"]
        if not pairs:
            continue
        val = [b["val_accuracy"] - a["val_accuracy"] for a, b in pairs]
        test = [b["test_accuracy"] - a["test_accuracy"] for a, b in pairs
                if a.get("test_accuracy") is not None and b.get("test_accuracy") is not None]
        print(f"| {n} | {len(pairs)} | {mean_std(val)} | {mean_std(test)} |")
    print("\n| INT8 build | runs | p50 ms (batch 1) | × faster than the largest at batch 1 | "
          "spectra/s (batch 64) |")
    print("|---|---|---|---|---|")
    for n in order:
        s = speed.get(n)
        if not s:
            continue
        print(f"| {n} | {len(s['p50'])} | {mean_std(s['p50'], 1.0, 3)} | "
              f"{mean_std(s['speedup1'], 1.0, 2)} | {mean_std(s['rate64'], 1.0, 0)} |")


if __name__ == "__main__":
    main()
