"""Smaller fixes a new user tripped on: ``info`` counts trainable parameters, the benchmark's
baseline row is 1.00× against itself, the latency plot has a legend, README's example output
folders are ignored by git."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pace_edge.benchmark.latency import LatencyStats
from pace_edge.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


def test_info_counts_trainable_parameters_not_batchnorm_statistics(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from factories import random_pace, save_bundle

    model = random_pace("small", 3)
    save_bundle(tmp_path / "bundle", model, np.linspace(400.0, 1800.0, 900))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    statistics = sum(b.numel() for b in model.buffers())
    assert main(["info", str(tmp_path / "bundle")]) == 0
    text = capsys.readouterr().out
    assert f"{trainable:,} trainable parameters (+ {statistics:,} BatchNorm statistics)" in text
    assert round(trainable / 1000) == 76  # README's presets table: small, 3 classes, 76 k


def test_the_eager_row_is_its_own_baseline(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from _builds import BenchSession
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))

    session = BenchSession(tmp_path, threads=1)

    def no_measuring(*args: object) -> None:
        raise AssertionError("the baseline was measured again")

    monkeypatch.setattr(session, "runner", no_measuring)
    eager = np.array([3.0, 2.0, 9.0, 2.5, 2.2])  # a stall at 9 ms: p50 2.5, min 2.0
    base = session.baseline_for("small", 8, "torch", "fp32", eager)
    assert base.p50_ms / float(np.percentile(eager, 50)) == 1.0
    assert base.min_ms / float(eager.min()) == 1.0
    # builds after it compare with the figures the eager row shows
    assert session.baseline_for("small", 8, "openvino", "int8", eager / 4) is base


def test_latency_plot_has_a_legend() -> None:
    from pace_edge.benchmark.report import LEGEND, latency_figure

    rng = np.random.default_rng(0)
    per_build = {name: {b: LatencyStats(b, 0, rng.gamma(4.0, scale, 50)) for b in (1, 64)}
                 for name, scale in (("torch:fp32", 1.0), ("x86:int8", 0.2))}
    fig = latency_figure(per_build)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["batch 1", "batch 64"]
    legend = panels[0].get_legend()  # one legend, beside the top panel
    assert legend is not None and panels[1].get_legend() is None
    assert [t.get_text() for t in legend.get_texts()] == list(LEGEND)
    # the legend sits beside the panel, not over its boxes
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = legend.get_window_extent(renderer)
    assert box.x0 >= panels[0].get_window_extent(renderer).x1


OUTPUT_FLAG = re.compile(r"--(?:out|workdir|model|export|build-dir|json|plot) ([\w./$-]+)"
                         r"|cmake -S \. -B (\w+)")


def readme_output_folders() -> set[str]:
    """The first path component of every folder README's commands write (or read back)."""
    found = set()
    for match in OUTPUT_FLAG.finditer((ROOT / "README.md").read_text()):
        path = match.group(1) or match.group(2)
        if path.startswith(("/", "..", "$")) or path.isupper() or path == "DIR":
            continue
        found.add(path.split("/")[0])
    return found


def test_readme_output_folders_are_ignored_by_git() -> None:
    if shutil.which("git") is None or subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    folders = readme_output_folders()
    assert {"build-x86", "build-jetson", "runs", "build", "model"} <= folders
    for folder in sorted(folders):
        check = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q",
                                f"{folder}/file"], capture_output=True)
        assert check.returncode == 0, f"{folder}/ is not in .gitignore"
    # source folders of the same names stay tracked
    assert subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q",
                           "pace_edge/model/pace.py"]).returncode == 1
