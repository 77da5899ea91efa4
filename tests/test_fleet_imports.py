"""The fleet's device side (stream --mqtt, --config) imports neither torch nor onnx."""

from __future__ import annotations

import json
import subprocess
import sys

MODULES = ["pace_edge.fleet", "pace_edge.fleet.client", "pace_edge.fleet.config",
           "pace_edge.fleet.health", "pace_edge.fleet.mqtt_url", "pace_edge.fleet.outbox",
           "pace_edge.fleet.process", "pace_edge.fleet.publisher", "pace_edge.fleet.view",
           "pace_edge.cli.stream_fleet"]


def test_fleet_modules_import_neither_torch_nor_onnx() -> None:
    script = (f"import importlib, json, sys\n"
              f"for m in {MODULES!r}: importlib.import_module(m)\n"
              "import paho.mqtt.client\n"
              "print(json.dumps(sorted(m for m in sys.modules "
              "if m.split('.')[0] in ('torch', 'onnx'))))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)
    assert json.loads(done.stdout) == []
