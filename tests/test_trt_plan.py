"""pace-edge's TensorRT plan file: header round trip, integrity and machine-mismatch checks."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pace_edge.errors import BundleError, PaceEdgeError
from pace_edge.export.trt_plan import (
    MAGIC,
    PlanHeader,
    PlanMismatch,
    check_compatible,
    check_plan,
    check_source,
    read_header,
    read_plan,
    write_plan,
)

ENGINE = bytes(range(256)) * 40  # stands in for IHostMemory bytes


def header(**changes) -> PlanHeader:
    values = {
        "tensorrt_version": "10.3.0.30",
        "gpu_name": "Orin (nvgpu)",
        "compute_capability": "8.7",
        "precision": "int8",
        "batch": {"min": 1, "opt": 8, "max": 64},
        "source_onnx": "model_int8_qdq.onnx",
        "source_onnx_sha256": "ab" * 32,
        "input_length": 1024,
        "builder_flags": ["INT8", "FP16"],
        "workspace_mb": 1024,
    }
    return PlanHeader(**(values | changes))


def test_round_trip(tmp_path: Path) -> None:
    path = write_plan(tmp_path / "model.plan", ENGINE, header())
    data = path.read_bytes()
    assert data.startswith(MAGIC) and data.endswith(ENGINE)
    magic, version, length = struct.unpack("<8sII", data[:16])
    assert (magic, version) == (MAGIC, 1) and len(data) == 16 + length + len(ENGINE)
    got, engine = read_plan(path)
    assert engine == ENGINE
    assert got.engine_bytes == len(ENGINE) and len(got.engine_sha256) == 64
    assert got.batch == {"min": 1, "opt": 8, "max": 64} and got.builder_flags == ["INT8", "FP16"]
    assert got.created and got.pace_edge
    assert read_header(path) == got
    assert not (tmp_path / "model.plan.tmp").exists()


def test_tampered_or_truncated_engine(tmp_path: Path) -> None:
    path = write_plan(tmp_path / "model.plan", ENGINE, header())
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        read_plan(path)
    path.write_bytes(bytes(data[:-10]))
    with pytest.raises(BundleError, match="truncated"):
        read_plan(path)


def test_not_a_plan(tmp_path: Path) -> None:
    raw = tmp_path / "model.engine"
    raw.write_bytes(b"ftrt" + ENGINE)  # a raw engine from trtexec has no pace-edge header
    with pytest.raises(BundleError, match="not a pace-edge TensorRT plan.*build-engine"):
        read_plan(raw)
    with pytest.raises(BundleError, match="cannot read"):
        read_header(tmp_path / "missing.plan")
    newer = tmp_path / "newer.plan"
    newer.write_bytes(struct.pack("<8sII", MAGIC, 99, 2) + b"{}")
    with pytest.raises(BundleError, match="newer"):
        read_header(newer)
    corrupt = tmp_path / "corrupt.plan"
    corrupt.write_bytes(struct.pack("<8sII", MAGIC, 1, 5) + b"{oops" + ENGINE)
    with pytest.raises(BundleError, match="corrupt"):
        read_header(corrupt)


def test_empty_engine_refused(tmp_path: Path) -> None:
    with pytest.raises(PaceEdgeError, match="empty"):
        write_plan(tmp_path / "p.plan", b"", header())


def test_compatible_same_release_any_build_number() -> None:
    check_compatible(header(), "10.3.0.30", "Orin (nvgpu)", "8.7")
    check_compatible(header(), "10.3.0.26")  # only major.minor.patch must agree
    check_plan(header(), tensorrt_version="10.3.0", gpu="Orin (nvgpu)")


@pytest.mark.parametrize(("version", "gpu", "cc", "match"), [
    ("10.7.0.23", None, None, "built with TensorRT 10.3.0.30, running 10.7.0.23"),
    ("8.6.2.3", None, None, "TensorRT"),
    ("10.3.0", "NVIDIA GeForce RTX 4090", None, "this GPU is 'NVIDIA GeForce RTX 4090'"),
    ("10.3.0", None, "8.9", "compute capability 8.7, this GPU is 8.9"),
])
def test_mismatch(version, gpu, cc, match) -> None:
    with pytest.raises(PlanMismatch, match=match) as info:
        check_compatible(header(), version, gpu, cc)
    assert "build-engine" in str(info.value) and isinstance(info.value, PaceEdgeError)
    with pytest.raises(PlanMismatch):
        check_plan(header(), tensorrt_version=version, gpu=gpu, compute_capability=cc)


def test_source_check() -> None:
    check_source(header(), "ab" * 32)
    with pytest.raises(PlanMismatch, match="model_int8_qdq.onnx"):
        check_source(header(), "cd" * 32)


def test_trt_modules_are_light() -> None:
    """Devices have no torch or onnx; tensorrt itself is imported only when building."""
    import subprocess
    import sys

    code = ("import sys, pace_edge.export.trt_plan, pace_edge.export.trt_build, "
            "pace_edge.export.trt_verify; "
            "print(sorted(m for m in ('torch', 'tensorrt', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
