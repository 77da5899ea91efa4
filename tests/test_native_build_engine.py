"""``pace-stream --build-engine`` reads what the Python export writes: the manifest's TensorRT
settings, the engine-check spectra and ONNX Runtime's logits, and refuses what is missing or
altered, before TensorRT is needed. Without TensorRT (this machine) it then says so; the build
and check themselves run where TensorRT and a GPU exist (``scripts/gpu-check``). A plan built
beside a signed export (by ``pace-edge build-engine`` with a stand-in TensorRT) is verified
through its record ``engine.json`` under ``--trusted-keys``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from test_build_engine import make_export, signed, stand_in  # noqa: E402,F401
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


# --- a plan built beside a signed export, as pace-stream sees it ------------------------------


def stream_model(exe: str, export: Path, trusted: Path) -> subprocess.CompletedProcess:
    """``pace-stream --trusted-keys``: the export, its plan and the backend are checked before
    any port is opened."""
    return subprocess.run([exe, "--model", str(export), "--trusted-keys", str(trusted),
                           "--port", "/dev/pace-edge-no-such-port", "--protocol", "obp"],
                          capture_output=True, text=True, timeout=60)


def test_pace_stream_accepts_the_plan_of_a_signed_export(
        pace_stream: str, native_build: Path, signed, stand_in, tmp_path: Path) -> None:  # noqa: F811
    """build-engine (Python, stand-in TensorRT) on a signed export leaves manifest.json and its
    signature byte-identical; pace-stream --trusted-keys verifies the export and the plan's
    record, and refuses an edited record, a swapped plan and a plan built from another ONNX."""
    from pace_edge.cli.main import main
    from pace_edge.export.engine_record import read_engine_record, write_engine_record

    tensorrt = "PACE_WITH_TENSORRT:BOOL=ON" in (native_build / "CMakeCache.txt").read_text()
    export, trusted = signed
    signed_bytes = {n: (export / n).read_bytes() for n in ("manifest.json", "manifest.json.sig")}
    stand_in()
    assert main(["build-engine", "--export", str(export), "--trusted-keys", str(trusted)]) == 0
    assert {n: (export / n).read_bytes() for n in signed_bytes} == signed_bytes

    result = stream_model(pace_stream, export, trusted)
    err = result.stderr.strip().splitlines()
    if tensorrt:  # the plan is chosen, then refused: built on the stand-in's "Fake GPU"
        assert result.returncode == 2 and "built on 'Fake GPU', this GPU is" in result.stderr
    else:  # the plan verifies, but this pace-stream cannot run it (and the export has no IR)
        assert result.returncode == 2 and len(err) == 1
        assert ("its TensorRT plan model.plan (fp16, engine check passed) needs a pace-stream "
                "built with -DPACE_WITH_TENSORRT=ON") in err[0]

    good = (export / "engine.json").read_bytes()
    (export / "engine.json").write_bytes(good.replace(b'"gpu_name": "Fake GPU"',
                                                      b'"gpu_name": "Orin GPU"'))
    result = stream_model(pace_stream, export, trusted)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "engine.json was edited after it was written" in result.stderr

    (export / "engine.json").write_bytes(good)
    plan = (export / "model.plan").read_bytes()
    (export / "model.plan").write_bytes(plan + b"!")
    result = stream_model(pace_stream, export, trusted)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "model.plan: sha256" in result.stderr and "does not match engine.json" in result.stderr

    (export / "model.plan").write_bytes(plan)
    record = read_engine_record(export)
    record.source_onnx_sha256 = "0" * 64  # a record left from another export into this folder
    write_engine_record(export, record)
    result = stream_model(pace_stream, export, trusted)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert ("TensorRT plan not used: model.plan was built from model.onnx with sha256 "
            "000000000000…, not from this export's") in result.stderr
    assert f"rebuild it with pace-stream --build-engine --model {export}" in result.stderr
    assert {n: (export / n).read_bytes() for n in signed_bytes} == signed_bytes


def test_pace_stream_build_engine_honours_trusted_keys(pace_stream: str, signed,  # noqa: F811
                                                       tmp_path: Path) -> None:
    _, trusted = signed
    unsigned = make_export(tmp_path / "unsigned")
    result = build_engine(pace_stream, unsigned, "--trusted-keys", str(trusted))
    assert result.returncode == 2
    assert "is not signed (manifest.json.sig is missing)" in result.stderr
    assert not (unsigned / "engine.json").exists()
