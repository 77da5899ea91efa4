"""Summarise the bundles of benchmarks/cov_sizes.sh: per size (plain and distilled), mean ± std
over the seeds that finished of validation and test accuracy, with the test counts per seed.

    python benchmarks/sizes_summary.py runs/cov-sizes
"""

from __future__ import annotations

import argparse
import re
import statistics
from collections import defaultdict
from pathlib import Path

from pace_edge.bundle import Bundle
from pace_edge.model.cost import human, model_cost


def mean_std(values: list[float]) -> str:
    m = 100 * statistics.fmean(values)
    return f"{m:.2f}" if len(values) == 1 else f"{m:.2f} ± {100 * statistics.stdev(values):.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path)
    args = p.parse_args()
    groups: dict[str, list[tuple[int, Bundle]]] = defaultdict(list)
    for folder in sorted(args.root.iterdir()):
        m = re.fullmatch(r"(.+)-s(\d+)", folder.name)
        if m is None or not (folder / "model.json").is_file():
            continue
        groups[m[1]].append((int(m[2]), Bundle.load(folder)))
    print("| model | multiply-adds | seeds | validation % | test % | test correct per seed |")
    print("|---|---|---|---|---|---|")
    for name, runs in sorted(groups.items(), key=lambda kv: (
            model_cost(kv[1][0][1].config, kv[1][0][1].input_length).multiply_adds, kv[0])):
        runs.sort(key=lambda r: r[0])
        b = runs[0][1]
        val = [r.training["metrics"]["val_accuracy"] for _, r in runs]
        tests = [r.training["metrics"]["test"] for _, r in runs]
        counts = ", ".join(f"s{s}: {t['correct']}/{t['total']}"
                           for (s, _), t in zip(runs, tests, strict=True))
        print(f"| {name} | {human(model_cost(b.config, b.input_length).multiply_adds)} | "
              f"{len(runs)} | {mean_std(val)} | {mean_std([t['accuracy'] for t in tests])} | "
              f"{counts} |")


if __name__ == "__main__":
    main()
