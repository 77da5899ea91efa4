"""The device-side path imports neither torch nor onnx.

A device (Jetson, x86 box next to the spectrometer) installs pace-edge without torch or onnx:
loading an export, preprocessing, running it on ONNX Runtime or OpenVINO and streaming must not
import them. Each check runs in a fresh interpreter on an export made earlier in the session
(``onnxruntime`` and ``openvino`` are expected there; ``onnx`` is not).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

DEVICE_MODULES = [
    "pace_edge.runtimes",
    "pace_edge.runtimes.base",
    "pace_edge.runtimes.select",
    "pace_edge.runtimes.compare",
    "pace_edge.runtimes.onnxruntime_runner",
    "pace_edge.runtimes.openvino_runner",
    "pace_edge.runtimes.tensorrt_runner",
    "pace_edge.streaming",
    "pace_edge.streaming.drivers",
    "pace_edge.streaming.spectral_axis",
    "pace_edge.streaming.transport",
    "pace_edge.streaming.pipeline",
    "pace_edge.export.manifest",
    "pace_edge.export.trt_plan",
    "pace_edge.export.trt_verify",
    "pace_edge.export.trt_build",
    "pace_edge.device_check",
    "pace_edge.cli.build_engine",
    "pace_edge.cli.doctor",
    "pace_edge.preprocess",
    "pace_edge.bundle",
]

SCRIPT = """
import importlib, importlib.util, json, sys
{block}
import numpy as np

for name in {modules!r}:
    if importlib.util.find_spec(name) is not None:
        importlib.import_module(name)

from pace_edge.runtimes import load_runner
from pace_edge.runtimes.compare import compare_runners

axis = np.linspace(400.0, 1800.0, 700)
t = np.linspace(0.0, 1.0, 700)
raw = np.stack([300 + 500 * np.exp(-0.5 * ((t - c) / 0.02) ** 2) for c in (0.2, 0.5, 0.8)])
with load_runner({export!r}, backend="onnxruntime", threads=1) as ort, \\
        load_runner({export!r}, backend="openvino", threads=1) as ov, \\
        load_runner({export!r}) as auto:
    probs = auto.predict_proba(raw, axis)
    result = compare_runners([ort, ov], raw, axis)
    backends = [ort.describe()["backend"], ov.describe()["backend"], auto.name]
heavy = sorted({{"torch", "onnx"}} & set(sys.modules))
bundle_error = None
if {try_bundle!r}:
    try:
        load_runner({bundle!r})
    except Exception as exc:
        bundle_error = str(exc)
print(json.dumps({{
    "heavy": heavy,
    "shape": list(probs.shape),
    "sums": probs.sum(1).tolist(),
    "parity": result.passed,
    "max_abs_logit": result.rows[0].max_abs_logit,
    "backends": backends,
    "bundle_error": bundle_error,
}}))
"""

# Makes `import torch` / `import onnx` fail, as on a device where they are not installed.
BLOCK = """
class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("torch", "onnx"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
"""


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from runtime_exports import runtime_export

    return runtime_export(tmp_path_factory, "x86", "dynamic")


def run_device_script(export: Path, block: str = "") -> dict:
    """Run :data:`SCRIPT` in a fresh interpreter; with ``block``, also try the bundle (which
    needs torch) after the imports were recorded."""
    code = SCRIPT.format(block=block, modules=DEVICE_MODULES, export=str(export),
                         bundle=str(export.parent / "bundle"), try_bundle=bool(block))
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_device_path_imports_neither_torch_nor_onnx(export: Path) -> None:
    result = run_device_script(export)
    assert result["heavy"] == []  # neither 'torch' nor 'onnx' in sys.modules
    assert result["backends"] == ["onnxruntime", "openvino", "openvino"]
    assert result["shape"] == [3, 3] and all(abs(s - 1) < 1e-5 for s in result["sums"])
    assert result["parity"] and result["max_abs_logit"] <= 1e-4


def test_device_path_works_without_torch_and_onnx_installed(export: Path) -> None:
    result = run_device_script(export, BLOCK)
    assert result["heavy"] == []
    assert result["backends"] == ["onnxruntime", "openvino", "openvino"]
    assert result["parity"]
    assert result["bundle_error"].startswith("backend torch: the torch package is not installed")
    assert "pip install 'pace-edge[train]'" in result["bundle_error"]  # names the extra
