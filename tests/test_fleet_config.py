"""``pace-edge stream --config device.toml``: every option from one file, flags win, and bad
files are one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pace_edge.cli.main import main
from pace_edge.streaming.emulator import Emulator


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_config_file_runs_a_stream_and_flags_override_it(synthetic_export: Path,
                                                             tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with Emulator("obp", seed=1) as emu:
        conf = write(tmp_path / "device.toml", f"""
port = "{emu.port}"
protocol = "obp"
model = "{synthetic_export}"
backend = "onnxruntime"
threads = 1
laser-nm = 785
max_frames = 6
schedule = "inline"
output = "{out}"
summary-json = "{tmp_path / 's.json'}"
""")
        assert main(["stream", "--config", str(conf)]) == 0
        assert len(out.read_text().splitlines()) == 6
        assert main(["stream", "--config", str(conf), "--max-frames", "3"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 9 and all(line["batch"] == 1 for line in lines)  # inline, from file
    assert json.loads((tmp_path / "s.json").read_text())["received"] == 3


@pytest.mark.parametrize("text, message", [
    ('port = "/dev/x"\nprotcol = "obp"\n', "unknown key 'protcol' (known: "),
    ('port = "/dev/x"\nprotocol = "spi"\n', "protocol: expected one of obp, ascii, got 'spi'"),
    ('port = "/dev/x"\naverage = 0\n', "average: expected a positive number, got 0"),
    ('port = "/dev/x"\n[mqtt]\nurl = "x"\n', "mqtt must be a value, not a table"),
    ('port = "/dev/x\n', "not valid TOML"),
    ('protocol = "obp"\nmodel = "m"\n', "--port is required (on the command line or in --config)"),
])
def test_bad_config_files_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    conf = write(tmp_path / "device.toml", text)
    done = subprocess.run([sys.executable, "-m", "pace_edge.cli.main", "stream", "--config",
                           str(conf)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pace-edge stream: error: "), done.stderr
    assert message in lines[0]


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stream", "--config", str(tmp_path / "nope.toml")]) == 2
    err = capsys.readouterr().err
    assert err == f"pace-edge stream: error: --config {tmp_path / 'nope.toml'}: no such file\n"
