"""``pace-stream --build-engine`` reads what the Python export writes: the manifest's TensorRT
settings, the engine-check spectra and ONNX Runtime's logits, and refuses what is missing or
altered, before TensorRT is needed. Without TensorRT (this machine) it then says so; the build
and check themselves run where TensorRT and a GPU exist (``scripts/gpu-check``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from test_build_engine import make_export  # noqa: E402
from test_native import native_build, pace_stream  # noqa: E402,F401


def build_engine(exe: str, export: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([exe, "--build-engine", "--model", str(export), *args],
                          capture_output=True, text=True, timeout=60)


def test_pace_stream_reads_the_python_export(pace_stream: str, native_build: Path,  # noqa: F811
                                             tmp_path: Path) -> None:
    tensorrt = "PACE_WITH_TENSORRT:BOOL=ON" in (native_build / "CMakeCache.txt").read_text()
    if tensorrt:
        pytest.skip("this pace-stream has TensorRT: the GPU path runs in scripts/gpu-check")
    export = make_export(tmp_path / "e", qdq=True)
    result = build_engine(pace_stream, export)
    assert result.returncode == 2
    assert f"{export}: int8 plan from model_int8_qdq.onnx, engine check on 24 spectra" in \
        result.stderr
    assert "pace-stream: error: this pace-stream is built without TensorRT" in result.stderr
    result = build_engine(pace_stream, export, "--precision", "fp32")
    assert "fp32 plan from model.onnx, engine check on 24 spectra" in result.stderr


def test_pace_stream_refuses_a_bad_export(pace_stream: str, tmp_path: Path) -> None:  # noqa: F811
    old = make_export(tmp_path / "old", check=False)
    result = build_engine(pace_stream, old)
    assert result.returncode == 2
    assert "no engine-check logits for model.onnx; export it again" in result.stderr
    plain = make_export(tmp_path / "plain")
    assert "an INT8 plan is built from the Q/DQ model" in build_engine(
        pace_stream, plain, "--precision", "int8").stderr
    (plain / "engine_check_model.f32").write_bytes(b"\0" * 8)
    result = build_engine(pace_stream, plain)
    assert result.returncode == 2 and "does not match the manifest" in result.stderr
    result = subprocess.run([pace_stream, "--build-engine"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "--build-engine needs --model EXPORT_DIR" in result.stderr
