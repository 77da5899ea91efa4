"""The device install (``pip install -e '.[device]'``: no torch, onnx, onnxscript, nncf or
matplotlib) through the command line.

Each command runs in a fresh interpreter where importing those packages fails, exactly as
where they are not installed (a ``sys.meta_path`` finder raising ``ModuleNotFoundError``);
``onnxruntime`` and ``openvino`` (the ``[device]`` extra) stay importable. The export it reads
is made earlier in the session, with torch.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

NOT_INSTALLED = ("torch", "onnx", "onnxscript", "nncf", "matplotlib")

WRAPPER = textwrap.dedent("""
    import atexit, sys

    class NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in {blocked!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, NotInstalled())
    atexit.register(lambda: print("imported:", sorted({{m.partition(".")[0] for m in sys.modules
                                                        if m.partition(".")[0] in {blocked!r}}}),
                                  file=sys.stderr))
    from pace_edge.cli.main import main
    sys.exit(main(sys.argv[1:]))
""").format(blocked=NOT_INSTALLED)


def device_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``pace-edge ARGS`` as on a device install; stderr's last line lists what was imported
    of the packages the device lacks (always none)."""
    out = subprocess.run([sys.executable, "-c", WRAPPER, *args], capture_output=True, text=True,
                         timeout=300)
    *rest, imported = out.stderr.strip().splitlines() or [""]
    assert imported == "imported: []", out.stderr
    return subprocess.CompletedProcess(out.args, out.returncode, out.stdout, "\n".join(rest))


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from runtime_exports import runtime_export

    return runtime_export(tmp_path_factory, "x86", "dynamic")


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Labelled raw spectra on the instrument axis the export's bundle was made on."""
    from runtime_exports import CLASSES, RAW_AXIS, raw_spectra

    from pace_edge.data import SpectralDataset, write_npy_folder

    x = raw_spectra(12, seed=3)
    y = np.arange(12) % len(CLASSES)
    data = SpectralDataset(x, y, RAW_AXIS, list(CLASSES))
    return write_npy_folder(tmp_path_factory.mktemp("device-data") / "data", data, data)


def assert_one_line_error(out: subprocess.CompletedProcess[str], command: str,
                          *phrases: str) -> None:
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pace-edge {command}: error: "), lines
    for phrase in phrases:
        assert phrase in lines[0]


def test_info_verifies_and_describes_an_export(export: Path) -> None:
    out = device_cli("info", str(export))
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"export {export} (3 files verified" in text
    assert "target     x86, precision fp32, batch dynamic" in text
    assert "classes    alpha, beta, gamma" in text
    assert "preprocess resample" in text and "savgol(" in text and "normalize(method=snv)" in text
    for name in ("model.xml", "model.bin", "model.onnx"):
        assert f"file       {name} (" in text
    assert text.count(": passed") == 2  # the OpenVINO and ONNX Runtime parity rows
    assert "accuracy   gate not run" in text


def test_info_refuses_an_altered_export(export: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "export"
    shutil.copytree(export, copy)
    data = bytearray((copy / "model.bin").read_bytes())
    data[100] ^= 0xFF
    (copy / "model.bin").write_bytes(bytes(data))
    assert_one_line_error(device_cli("info", str(copy)), "info", "model.bin", "sha256")


def test_predict_and_evaluate_run_an_export_without_torch(export: Path, labelled: Path,
                                                         tmp_path: Path) -> None:
    from runtime_exports import RAW_AXIS, raw_spectra

    batch = tmp_path / "batch.npy"
    np.save(batch, raw_spectra(4, seed=9))
    np.save(tmp_path / "axis.npy", RAW_AXIS)
    out = device_cli("predict", "--model", str(export), "--axis", str(tmp_path / "axis.npy"),
                     str(batch))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [f"{batch}[{i}]" for i in range(4)]
    assert all(line.split(": ")[1].split()[0] in ("alpha", "beta", "gamma") for line in lines)

    out = device_cli("evaluate", "--model", str(export), "--data", str(labelled))
    assert out.returncode == 0, out.stderr
    assert "(openvino fp32)" in out.stdout.splitlines()[0]
    assert out.stdout.splitlines()[1].startswith("accuracy ") and "/12)" in out.stdout


@pytest.mark.parametrize(
    "args, extra",
    [
        (["train", "--data", "DATA", "--out", "OUT"], "pip install 'pace-edge[train]'"),
        (["demo", "--out", "OUT"], "pip install 'pace-edge[train]'"),
        (["export", "--model", "BUNDLE", "--target", "onnx", "--out", "OUT"],
         "pip install 'pace-edge[export]'"),
        (["predict", "--model", "BUNDLE", "DATA/test_x.npy"], "pip install 'pace-edge[train]'"),
        (["evaluate", "--model", "BUNDLE", "--data", "DATA"], "pip install 'pace-edge[train]'"),
        (["evaluate", "--model", "EXPORT", "--data", "DATA", "--confusion-png", "OUT/c.png"],
         "pip install 'pace-edge[train]'"),
        (["benchmark", "--model", "BUNDLE"], "pip install 'pace-edge[export]'"),
    ],
)
def test_commands_needing_a_missing_extra_say_which(export: Path, labelled: Path,
                                                    tmp_path: Path, args: list[str],
                                                    extra: str) -> None:
    names = {"DATA": str(labelled), "OUT": str(tmp_path / "out"), "EXPORT": str(export),
             "BUNDLE": str(export.parent / "bundle")}
    argv = [next((a.replace(k, v) for k, v in names.items() if k in a), a) for a in args]
    assert_one_line_error(device_cli(*argv), args[0], extra)
