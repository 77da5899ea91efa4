"""PNG figures for the INT8 export report (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_activation_ranges(stats: Sequence[dict[str, Any]], amax: dict[str, float],
                           float_tensors: set[str], path: str | Path) -> Path:
    """Per tensor (log scale): max, |min|, 99.9 % |x|, std and the INT8 step; resolution."""
    plt = _pyplot()
    labels = [f"{s['tensor']} → {', '.join(s['read_by'])}" for s in stats]
    y = list(range(len(stats)))[::-1]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 0.38 * len(stats) + 1.8), sharey=True,
                                  gridspec_kw={"width_ratios": [3, 1.3]})
    series = [
        ("max", lambda s: s["max"], "^", "tab:red"),
        ("|min|", lambda s: abs(s["min"]), "v", "tab:blue"),
        ("99.9 % |x|", lambda s: s["p999_abs"], "|", "k"),
        ("std", lambda s: s["std"], "o", "0.4"),
        ("INT8 step (amax/127)", lambda s: amax.get(s["tensor"], max(abs(s["min"]), s["max"]))
         / 127, "D", "tab:green"),
    ]
    for name, value, marker, color in series:
        ax.scatter([max(value(s), 1e-6) for s in stats], y, marker=marker, color=color,
                   label=name, zorder=3, s=28)
    for yi, s in zip(y, stats, strict=True):
        ax.plot([s["std"], max(abs(s["min"]), s["max"])], [yi, yi], color="0.85", lw=5,
                zorder=1)
        ax2.barh(yi, s["resolution"],
                 color="tab:green" if s["tensor"] in float_tensors else "tab:orange")
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("magnitude (log scale)")
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=5, frameon=False)
    fig.suptitle("Activations read by each layer (FP32, calibration spectra)", fontsize=10)
    ax2.set_xlabel("std in INT8 steps (std·127/amax)")
    ax2.set_title("resolution (green: read only by float layers)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_sensitivity(rows: Sequence[dict[str, Any]], float_layers: Sequence[str],
                     tolerance: float | None, path: str | Path) -> Path:
    """Logit NRMSE on held-out spectra with only one layer quantised, per layer."""
    plt = _pyplot()
    keys = [r["layer"] for r in rows]
    values = [r["nrmse"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(rows) + 1.4))
    y = list(range(len(rows)))[::-1]
    ax.barh(y, values, color=["tab:green" if k in float_layers else "tab:blue" for k in keys])
    if tolerance is not None:
        ax.axvline(tolerance, color="tab:red", ls="--", lw=1,
                   label=f"tolerance for the whole INT8 model ({tolerance:g})")
    ax.set_yticks(y, keys, fontsize=8)
    ax.set_xlabel("logit NRMSE vs FP32 with only this layer INT8 (held-out training spectra)")
    ax.set_title("Per-layer INT8 sensitivity (green: kept float)", fontsize=9)
    if tolerance is not None:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
