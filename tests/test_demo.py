"""``pace-edge demo --quick`` end to end, as a user runs it, and its closing hint."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pace_edge.cli.demo import QUICK

pytest.importorskip("openvino")  # the demo exports for x86; CI installs it (strict skips)


def pace_edge_command() -> list[str]:
    """The console script next to this interpreter (as installed), else the module."""
    script = Path(sys.executable).with_name("pace-edge")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "pace_edge.cli.main"]


def test_quick_demo_runs_every_step_and_its_next_command_works(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = subprocess.run([*pace_edge_command(), "demo", "--quick", "--out", str(out)],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    text = result.stdout
    for step in ("1/5 data", "2/5 train", "3/5 evaluate", "4/5 export", "5/5 stream"):
        assert step in text
    assert f"{QUICK['preset']} PACE for {QUICK['epochs']} epochs" in text
    assert f"select {QUICK['epochs']}/{QUICK['epochs']}" in result.stderr  # progress
    assert (out / "model" / "model.json").is_file() and (out / "export-x86").is_dir()

    stream = re.search(r"(\d+) spectra from an emulated OBP spectrometer.*?: (\d+) classified "
                       r"on (\w+) fp32.*?the bundle gives (\d+) of them the same class", text,
                       re.S)
    assert stream is not None, text
    received, classified, backend, agree = stream.groups()
    assert int(received) == int(classified) == QUICK["frames"]
    assert backend == "openvino"
    assert int(agree) >= int(classified) - 1  # the stream classifies as the bundle does offline
    assert "from a spectrum's arrival to its result p50 / p99" in text

    hint = re.search(r"Next: (.+)$", text.strip().splitlines()[-1])
    assert hint is not None, text
    command = hint.group(1)
    if command.startswith("pace-edge ") and shutil.which("pace-edge") is None:
        pytest.fail(f"the hint {command!r} names pace-edge, which is not on PATH here")
    follow = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert follow.returncode == 0, follow.stdout + follow.stderr
    assert re.search(r"accuracy \d+\.\d+%", follow.stdout), follow.stdout
