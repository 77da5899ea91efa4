"""``pace-edge simulate``: README's fault examples apply, a fault a protocol cannot show is
refused with that protocol's list, and the printed ``pace-edge stream`` command reads the
emulator as typed."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pace_edge.cli.main import main
from pace_edge.streaming.emulator import FAULT_KINDS

ROOT = Path(__file__).resolve().parents[1]
FAULT_EXAMPLE = re.compile(r"simulate --protocol (obp|ascii)[^`\n]*?--faults (\S+?)`")


def readme_fault_examples() -> list[tuple[str, str]]:
    return FAULT_EXAMPLE.findall((ROOT / "README.md").read_text())


def test_readme_shows_a_fault_example_per_protocol() -> None:
    examples = readme_fault_examples()
    assert {protocol for protocol, _ in examples} == {"obp", "ascii"}
    shown = {kind.partition("=")[0] for _, spec in examples for kind in spec.split(",")}
    assert shown == set(FAULT_KINDS)  # every fault is shown with a protocol that has it


@pytest.mark.parametrize("protocol, spec", readme_fault_examples())
def test_readme_fault_examples_apply(protocol: str, spec: str, capsys) -> None:
    assert main(["simulate", "--protocol", protocol, "--faults", spec, "--duration", "0.2"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("served ")


def test_a_fault_the_protocol_lacks_is_refused_with_its_faults(capsys) -> None:
    assert main(["simulate", "--protocol", "obp", "--faults", "checksum=0.01,nan=0.01"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["pace-edge simulate: error: fault 'nan' does not apply to the obp protocol; "
                     "its faults are checksum, truncate, garbage, stall, disconnect, saturate, "
                     "pixels"]


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from runtime_exports import runtime_export

    return runtime_export(tmp_path_factory, "onnx", "dynamic")


@pytest.mark.parametrize("argv", [
    ["--protocol", "ascii", "--query", "SPEC.READ?"],
    ["--protocol", "ascii", "--pixels", "512"],  # free-running, another calibration
    ["--protocol", "obp"],
])
def test_the_printed_stream_command_reads_the_emulator(export: Path, tmp_path: Path,
                                                       argv: list[str]) -> None:
    link = tmp_path / "spectrometer"
    sim = subprocess.Popen([sys.executable, "-m", "pace_edge.cli.main", "simulate", *argv,
                            "--link", str(link), "--rate", "50", "--duration", "60"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert sim.stdout is not None and sim.stderr is not None
        assert sim.stdout.readline().strip() == str(link)
        hint = sim.stderr.readline().strip()
        prefix = "pace-edge simulate: stream from it with: "
        assert hint.startswith(prefix) and hint.endswith(" --model EXPORT_DIR")
        command = shlex.split(hint[len(prefix):])
        assert command[:2] == ["pace-edge", "stream"] and "--laser-nm" in command
        assert command[command.index("--port") + 1] == str(link)
        command[-1] = str(export)
        out = subprocess.run([sys.executable, "-m", "pace_edge.cli.main", *command[1:],
                              "--max-frames", "3"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        records = [line for line in out.stdout.splitlines() if '"class"' in line]
        assert len(records) == 3, out.stdout + out.stderr
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.communicate(timeout=30)
