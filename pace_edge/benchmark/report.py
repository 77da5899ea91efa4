"""Benchmark results: one row per build, as a table, JSON and a PNG of latency distributions.

Speed-up is the eager PyTorch FP32 baseline's median (p50) latency over the build's, at the
same batch size, measured in the same run (interleaved, see
:func:`~pace_edge.benchmark.latency.measure_interleaved`).
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ..runtimes.base import LayerTime
from .builds import Build
from .latency import LatencyStats

CPU_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx_vnni", "amx_bf16", "amx_int8")
LIBRARIES = ("numpy", "torch", "onnxruntime", "openvino", "nncf", "tensorrt")


def machine_info() -> dict[str, Any]:
    """CPU model, the SIMD flags that matter for INT8/BF16 kernels, cores, load, libraries."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpu": model,
        "cpu_flags": [f for f in CPU_FLAGS if f in flags],
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg")
        else None,
        "python": platform.python_version(),
        "versions": versions,
    }


@dataclass
class BuildResult:
    """One build: its status, size, accuracy and latency per batch size."""

    build: Build
    size_mb: float | None = None
    accuracy: float | None = None
    latency: dict[int, LatencyStats] = field(default_factory=dict)
    runtime: dict[str, Any] = field(default_factory=dict)  # runner.describe()
    error: str = ""  # why it could not be loaded or run
    profile: dict[int, list[LayerTime]] = field(default_factory=dict)  # per batch, slowest first
    profile_note: str = ""  # why there is no profile

    @property
    def label(self) -> str:
        return self.build.label

    @property
    def status(self) -> str:
        return self.build.status

    @property
    def reason(self) -> str:
        return "; ".join(r for r in (self.build.reason, self.error) if r)

    def to_dict(self, samples: bool = True) -> dict[str, Any]:
        b = self.build
        return {
            "build": b.label,
            "target": b.spec.target,
            "precision": b.spec.precision,
            "backend": b.spec.runtime,
            "status": b.status,
            "reason": self.reason,
            "path": str(b.path) if b.path is not None else None,
            "reused": b.reused,
            "export_s": round(b.export_s, 2),
            "size_mb": self.size_mb,
            "accuracy": self.accuracy,
            "runtime": self.runtime,
            "latency": {str(k): (v.to_dict() if samples else v.summary())
                        for k, v in self.latency.items()},
            "profile": {str(k): [asdict(layer) for layer in v] for k, v in self.profile.items()},
            "profile_note": self.profile_note,
        }


@dataclass
class Report:
    """Every build's result, the baseline's label, and how it was measured."""

    model: str
    results: list[BuildResult]
    batches: list[int]
    iterations: int
    warmup: int
    threads: int | None
    baseline: str = "torch:fp32"
    data: str | None = None
    min_accuracy: float | None = None
    machine: dict[str, Any] = field(default_factory=machine_info)

    def result(self, label: str) -> BuildResult | None:
        return next((r for r in self.results if r.label == label), None)

    def speedup(self, result: BuildResult, batch: int, stat: str = "p50_ms") -> float | None:
        """Baseline over build latency at ``batch`` (``stat``: ``p50_ms`` or ``min_ms``);
        ``None`` if either is missing."""
        base = self.result(self.baseline)
        if base is None or batch not in base.latency or batch not in result.latency:
            return None
        return getattr(base.latency[batch], stat) / getattr(result.latency[batch], stat)

    def below_min_accuracy(self) -> list[BuildResult]:
        """Builds under :attr:`min_accuracy`, counting builds without an accuracy."""
        if self.min_accuracy is None:
            return []
        return [r for r in self.results
                if r.accuracy is None or r.accuracy < self.min_accuracy - 1e-12]

    def table(self) -> str:
        """One row per build; reasons as numbered notes under the table."""
        small, large = min(self.batches), max(self.batches)
        header = ["build", "status", "size MB", "accuracy", f"p50 ms (b{small})",
                  f"p99 ms (b{small})", f"spectra/s (b{large})", f"speed-up b{small}"]
        if large != small:
            header.append(f"speed-up b{large}")
        rows, notes = [], []
        for r in self.results:
            status = r.status
            if r.reason:
                notes.append(r.reason)
                status += f" [{len(notes)}]"
            lo, hi = r.latency.get(small), r.latency.get(large)
            row = [
                r.label + (" (baseline)" if r.label == self.baseline else ""),
                status,
                _num(r.size_mb, "{:.2f}"),
                _num(r.accuracy, "{:.2%}"),
                _num(lo.p50_ms if lo else None, "{:.3f}"),
                _num(lo.p99_ms if lo else None, "{:.3f}"),
                _num(hi.spectra_per_s if hi else None, "{:,.0f}"),
                _num(self.speedup(r, small), "{:.2f}×"),
            ]
            if large != small:
                row.append(_num(self.speedup(r, large), "{:.2f}×"))
            rows.append(row)
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                 for row in [header, *rows]]
        lines += [f"[{i}] {note}" for i, note in enumerate(notes, 1)]
        m = self.machine
        lines.append(
            f"{self.iterations} timed calls per build and batch after {self.warmup} warm-up "
            f"calls; threads {self.threads}; {m['cpu']} ({m['usable_cpus']} CPUs usable, "
            f"load average {m['load_average']}); speed-up = baseline p50 / build p50; each "
            "call returns what `pace-edge stream` uses (the logits, and the \"unknown\" "
            "detector's features when the model has one)"
        )
        return "\n".join(lines)

    def profile_text(self, top: int = 6) -> str:
        """Per profiled build and batch: the runtime's total, then its slowest layers."""
        lines: list[str] = []
        for r in self.results:
            if r.profile_note:
                lines.append(f"{r.label}: no per-layer profile ({r.profile_note})")
            for batch, layers in r.profile.items():
                total = sum(layer.ms for layer in layers)
                lines.append(f"{r.label}, batch {batch}: {total:.3f} ms in {len(layers)} "
                             "layers (runtime's own counters); slowest:")
                for layer in layers[:top]:
                    share = layer.ms / total if total else 0.0
                    lines.append(f"  {layer.ms:8.3f} ms {share:6.1%}  {layer.op:<18} "
                                 f"{layer.kernel:<30} {layer.name}")
        return "\n".join(lines)

    def to_dict(self, samples: bool = True) -> dict[str, Any]:
        small, large = min(self.batches), max(self.batches)
        rows = []
        for r in self.results:
            row = r.to_dict(samples)
            row["speedup"] = {str(b): self.speedup(r, b) for b in self.batches}
            row["speedup_min"] = {str(b): self.speedup(r, b, "min_ms") for b in self.batches}
            rows.append(row)
        return {
            "model": self.model,
            "data": self.data,
            "baseline": self.baseline,
            "batches": self.batches,
            "iterations": self.iterations,
            "warmup": self.warmup,
            "threads": self.threads,
            "min_accuracy": self.min_accuracy,
            "speedup_definition": "baseline p50 latency / build p50 latency, same batch "
                                  "(speedup_min: min / min)",
            "summary_batches": {"latency": small, "throughput": large},
            "machine": self.machine,
            "builds": rows,
        }

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def plot(self, path: str | Path) -> Path:
        """A PNG: per batch size, the distribution of per-call latency of every build."""
        return plot_latency(
            {r.label: r.latency for r in self.results if r.latency}, path,
            title=f"{Path(self.model).name}: latency per call ({self.threads} threads)",
        )


LEGEND = ("median (p50)", "mean", "box: p25–p75", "whiskers: p1–p99", "calls beyond p1–p99")


def plot_latency(per_build: dict[str, dict[int, LatencyStats]], path: str | Path,
                 title: str = "latency per call") -> Path:
    """Box plots (whiskers p1–p99, median line, mean marker) of per-call latency per build, one
    panel per batch size (stacked), log scale, with a legend saying which mark is which."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = latency_figure(per_build, title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_figure(per_build: dict[str, dict[int, LatencyStats]],
                   title: str = "latency per call") -> Any:
    """The matplotlib figure of :func:`plot_latency`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = sorted({b for lat in per_build.values() for b in lat})
    n = max(len(batches), 1)
    fig, axes = plt.subplots(n, 1, figsize=(max(6.0, 0.7 * len(per_build) + 2.0) + 1.8,
                                            3.4 * n + 0.8),
                             squeeze=False)
    for ax, batch in zip(axes[:, 0], batches or [0], strict=False):
        labels = [name for name, lat in per_build.items() if batch in lat]
        data = [per_build[name][batch].samples_ms for name in labels]
        if data:
            parts = ax.boxplot(data, whis=(1, 99), showmeans=True, showfliers=True,
                               flierprops={"markersize": 2, "alpha": 0.4})
            handles = [parts[key][0] for key in ("medians", "means", "boxes", "whiskers",
                                                 "fliers")]
            if ax is axes[0, 0]:  # once, beside the top panel, clear of the data
                ax.legend(handles, LEGEND, fontsize=7, loc="upper left",
                          bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
            ax.set_xticks(range(1, len(labels) + 1), labels, rotation=30, ha="right",
                          fontsize=8)
            ax.set_yscale("log")
        ax.set_title(f"batch {batch}")
        ax.set_ylabel("ms per call")
        ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


__all__ = ["BuildResult", "Report", "latency_figure", "machine_info", "plot_latency"]
