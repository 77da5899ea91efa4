"""The files that show every candidate: ``frontier.json``, ``frontier.png`` and ``report.md``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..integrity.digest import strict_json
from ..model.cost import human
from .record import CandidateRecord
from .select import Choice

FORMAT = "pace-edge-rightsize"
FORMAT_VERSION = 1
JSON_FILE = "frontier.json"
PNG_FILE = "frontier.png"
REPORT_FILE = "report.md"


def frontier_dict(records: Sequence[CandidateRecord], choice: Choice,
                  context: dict[str, Any]) -> dict[str, Any]:
    """``frontier.json``'s content: the run's context, the rule, the choice, every candidate."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **context,
        "rule": choice.rule,
        "reason": choice.reason,
        "chosen": choice.chosen.name if choice.chosen is not None else None,
        "candidates": [r.to_dict() for r in records],
    }


def write_json(path: Path, records: Sequence[CandidateRecord], choice: Choice,
               context: dict[str, Any]) -> Path:
    path.write_text(strict_json(frontier_dict(records, choice, context), indent=1))
    return path


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.2%}"


def _ms(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def _rate(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f}"


def _count(v: int | None) -> str:
    return "–" if v is None else str(v)


def _threads(context: dict[str, Any]) -> str:
    choices = context.get("thread_choices") or [context.get("threads")]
    if len(choices) == 1:
        return (f"{choices[0]} thread(s)" if choices[0] is not None
                else "the runtime's default threads")
    return ("each build timed with the runtime's default threads and with 1 thread, the "
            "faster kept per batch size")


def _relative(path: str, context: dict[str, Any]) -> str:
    """``path`` relative to the run's folder, where it is inside it."""
    try:
        return str(Path(path).relative_to(context.get("out", "")))
    except ValueError:
        return path


def _chosen_line(choice: Choice, context: dict[str, Any]) -> str:
    chosen = choice.chosen
    if chosen is None:
        return f"**No candidate chosen**: {choice.reason}."
    build = f", its INT8 build `{_relative(chosen.export, context)}`" if chosen.export else ""
    return f"**Chosen: {chosen.name}** ({choice.reason}); its bundle is `chosen/`{build}."


def report_lines(records: Sequence[CandidateRecord], choice: Choice,
                 context: dict[str, Any]) -> list[str]:
    """``report.md``: the choice and a table of every candidate."""
    chosen = choice.chosen
    lines = [
        "# pace-edge rightsize",
        "",
        f"Data: {context.get('data')} ({context.get('spectra')} training spectra; validation "
        f"{context.get('validation')}). Target: {context.get('target')} INT8. "
        f"Rule: {choice.rule}.",
        "",
        _chosen_line(choice, context),
        "",
        "Choices use validation accuracy only; test accuracy (with `--eval`) only measures. "
        f"Latency: INT8 build on {context.get('backend')}, {_threads(context)}, "
        f"batches timed interleaved in one run, {context.get('iterations')} calls "
        "each.",
        "",
        "| candidate | multiply-adds | parameters | INT8 MB | validation | test (FP32) | "
        "test (INT8) | p50 ms (batch 1) | p99 ms (batch 1) | spectra/s (batch 64) | threads "
        "(batch 1 / 64) | build |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        mark = "**" if chosen is not None and r.name == chosen.name else ""
        b1 = r.latency.get("1", {})
        size = "–" if r.int8_bytes is None else f"{r.int8_bytes / 1e6:.2f}"
        status = r.export_status + (f" ({r.export_reason})" if r.export_reason else "")
        if r.export_qat:
            status += (f"; after {r.export_qat} epochs of quantisation-aware fine-tuning "
                       "(post-training INT8 missed the criterion)")
        lines.append(
            f"| {mark}{r.name}{mark} | {human(r.multiply_adds)} | {human(r.parameters)} | "
            f"{size} | {_pct(r.val_accuracy)} | {_pct(r.test_accuracy)} | "
            f"{_pct(r.int8_test_accuracy)} | {_ms(b1.get('p50_ms'))} | "
            f"{_ms(b1.get('p99_ms'))} | {_rate(r.spectra_per_s(64))} | "
            f"{_count(b1.get('threads'))} / {_count(r.latency.get('64', {}).get('threads'))} | "
            f"{status} |")
    teacher = context.get("teacher")
    if teacher:
        lines += ["", f"Distilled candidates learnt from `{teacher}` (temperature "
                      f"{context.get('temperature'):g}, alpha {context.get('alpha'):g})."]
    return lines


def write_report(path: Path, records: Sequence[CandidateRecord], choice: Choice,
                 context: dict[str, Any]) -> Path:
    path.write_text("\n".join(report_lines(records, choice, context)) + "\n")
    return path


def plot(path: Path, records: Sequence[CandidateRecord], choice: Choice,
         title: str = "") -> Path | None:
    """Validation accuracy against INT8 latency at batch 1 (left) and throughput at batch 64
    (right); marker area grows with multiply-adds, squares are distilled; the chosen is
    ringed. ``None`` (nothing drawn) when no build was timed."""
    timed = [r for r in records if r.p50_ms(1) is not None or r.spectra_per_s(64) is not None]
    if not timed:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    biggest = max(r.multiply_adds for r in timed)
    panels = ((axes[0], lambda r: r.p50_ms(1), "INT8 p50 latency at batch 1 (ms)"),
              (axes[1], lambda r: r.spectra_per_s(64), "INT8 spectra/s at batch 64"))
    for ax, value, label in panels:
        for r in timed:
            x = value(r)
            if x is None:
                continue
            area = 30 + 400 * (r.multiply_adds / biggest) ** 0.5
            ax.scatter([x], [100 * r.val_accuracy], s=area, marker="s" if r.distilled else "o",
                       alpha=0.6, color="tab:orange" if r.distilled else "tab:blue")
            ax.annotate(r.name, (x, 100 * r.val_accuracy), textcoords="offset points",
                        xytext=(6, 4), fontsize=8)
            if choice.chosen is not None and r.name == choice.chosen.name:
                ax.scatter([x], [100 * r.val_accuracy], s=area * 2.2, facecolors="none",
                           edgecolors="black", linewidths=1.5)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(label)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("validation accuracy (%)")
    fig.suptitle(title or "rightsize: circles = recipe, squares = distilled, area ~ "
                 "multiply-adds, ring = chosen", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


__all__ = ["FORMAT", "FORMAT_VERSION", "JSON_FILE", "PNG_FILE", "REPORT_FILE",
           "frontier_dict", "plot", "report_lines", "write_json", "write_report"]
