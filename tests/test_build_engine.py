"""``pace-edge build-engine``, the builder and the trtexec command.

Without a GPU: the batch profile, the exact trtexec command lines, the CLI's refusal where
TensorRT is missing, and the builder's calls checked against a stand-in ``tensorrt`` module that
has only the documented API (a consistency check, not a TensorRT run). The GPU tests build real
engines and compare their logits with ONNX Runtime.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx")

from _trt_helpers import GPU_REASON, conv_model, tensorrt_gpu_available  # noqa: E402

from pace_edge.cli.main import main  # noqa: E402
from pace_edge.errors import PaceEdgeError  # noqa: E402
from pace_edge.export.manifest import (  # noqa: E402
    Artefact,
    InputSpec,
    Manifest,
    OutputSpec,
    load_manifest,
    write_manifest,
)
from pace_edge.export.trt_build import (  # noqa: E402
    BatchProfile,
    BuildSettings,
    build_engine,
    builder_flags,
    shell_command,
    trtexec_command,
)
from pace_edge.export.trt_plan import read_plan  # noqa: E402

L = 32
requires_tensorrt_gpu = pytest.mark.skipif(not tensorrt_gpu_available(), reason=GPU_REASON)


# --- profile and trtexec ---------------------------------------------------------------------


def test_batch_profile() -> None:
    assert BatchProfile.from_batch(4).to_dict() == {"min": 4, "opt": 4, "max": 4}
    assert BatchProfile.from_batch(4).fixed
    assert BatchProfile.from_batch("dynamic").to_dict() == {"min": 1, "opt": 8, "max": 64}
    assert BatchProfile.from_batch("dynamic", (2, 4, 16)).shapes(L)["opt"] == (4, L)
    for bad in ((0, 1, 2), (4, 2, 8), (1, 8, 4)):
        with pytest.raises(PaceEdgeError):
            BatchProfile(*bad)
    with pytest.raises(PaceEdgeError):
        BatchProfile.from_batch("big")


def test_trtexec_fp16_dynamic() -> None:
    args = trtexec_command("model.onnx", "model.engine", input_name="spectrum", length=1024,
                           profile=BatchProfile(1, 8, 64), fp16=True, workspace_mb=512)
    assert shell_command(args) == (
        "trtexec --onnx=model.onnx --saveEngine=model.engine --fp16 "
        "--minShapes=spectrum:1x1024 --optShapes=spectrum:8x1024 --maxShapes=spectrum:64x1024 "
        "--memPoolSize=workspace:512M --skipInference"
    )


def test_trtexec_int8_qdq_fixed_batch() -> None:
    args = trtexec_command("model_int8_qdq.onnx", "out dir/model.engine", input_name="spectrum",
                           length=900, profile=None, fp16=True, int8=True,
                           trtexec="/usr/src/tensorrt/bin/trtexec")
    assert shell_command(args) == (
        "/usr/src/tensorrt/bin/trtexec --onnx=model_int8_qdq.onnx "
        "'--saveEngine=out dir/model.engine' --int8 --fp16 --memPoolSize=workspace:1024M "
        "--skipInference"
    )


def test_trtexec_implicit_int8_and_tensorrt_11() -> None:
    implicit = trtexec_command("model.onnx", "m.engine", input_name="spectrum", length=8,
                               profile=None, fp16=True, int8=True, calib="calibration.cache")
    assert "--calib=calibration.cache" in implicit and "--int8" in implicit
    strong = trtexec_command("model_int8_qdq.onnx", "m.engine", input_name="spectrum",
                             length=8, profile=BatchProfile(1, 1, 2), int8=True,
                             tensorrt_major=11)
    assert not {"--int8", "--fp16"} & set(strong)  # removed in TensorRT 11
    assert "--maxShapes=spectrum:2x8" in strong
    with pytest.raises(PaceEdgeError, match="TensorRT 11 removed"):
        trtexec_command("m.onnx", "m.engine", input_name="spectrum", length=8, profile=None,
                        fp16=True, tensorrt_major=11)
    with pytest.raises(PaceEdgeError, match="only used for an INT8"):
        trtexec_command("m.onnx", "m.engine", input_name="spectrum", length=8, profile=None,
                        calib="c.cache")


def test_builder_flags() -> None:
    assert builder_flags(True, True) == ["INT8", "FP16"]
    assert builder_flags(True, False, 8) == ["FP16"]
    assert builder_flags(True, True, 11) == []


# --- a hand-made export ----------------------------------------------------------------------


def make_export(root: Path, batch: int | str = "dynamic", qdq: bool = False) -> Path:
    """An export directory with a tiny ONNX model (no torch) and its verified manifest."""
    root.mkdir(parents=True, exist_ok=True)
    conv_model(root / "model.onnx", length=L, batch="N" if batch == "dynamic" else batch)
    artefacts = [Artefact("model.onnx", "onnx", "fp32")]
    precision = "fp16"
    if qdq:
        from _trt_helpers import ort_qdq

        x = np.random.default_rng(0).normal(size=(16, L)).astype(np.float32)
        ort_qdq(root / "model.onnx", root / "model_int8_qdq.onnx", x,
                batch=8 if batch == "dynamic" else int(batch))
        artefacts.append(Artefact("model_int8_qdq.onnx", "onnx", "int8"))
        precision = "int8"
    profile = BatchProfile.from_batch(batch).to_dict()
    manifest = Manifest(
        target="jetson" if qdq else "tensorrt", precision=precision, artefacts=artefacts,
        input=InputSpec("spectrum", L, batch, list(np.linspace(0, 1, L)), []),
        output=OutputSpec("logits", 3), classes=["a", "b", "c"], source={},
        runtime={"tensorrt": {"precision": precision, "profile": profile, "workspace_mb": 256}},
    )
    write_manifest(root, manifest)
    return root


@pytest.fixture
def no_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError


def test_cli_without_tensorrt(tmp_path: Path, capsys, no_tensorrt) -> None:
    export = make_export(tmp_path / "export")
    assert main(["build-engine", "--export", str(export)]) == 2
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("pace-edge build-engine: error: TensorRT is not installed here")
    assert "trtexec command above" in err
    assert f"cd {export} && trtexec --onnx=model.onnx --saveEngine=model.engine --fp16 " \
           "--minShapes=spectrum:1x32 --optShapes=spectrum:8x32 --maxShapes=spectrum:64x32 " \
           "--memPoolSize=workspace:256M --skipInference" in out
    assert not (export / "model.plan").exists()


def test_cli_int8_and_workspace(tmp_path: Path, capsys, no_tensorrt) -> None:
    export = make_export(tmp_path / "export", batch=4, qdq=True)
    assert main(["build-engine", "--export", str(export), "--workspace", "64"]) == 2
    out, _ = capsys.readouterr()
    assert ("trtexec --onnx=model_int8_qdq.onnx --saveEngine=model.engine --int8 --fp16 "
            "--memPoolSize=workspace:64M --skipInference") in out
    assert main(["build-engine", "--export", str(export), "--int8"]) == 2
    out, _ = capsys.readouterr()
    assert "--int8 --memPoolSize" in out  # exactly the flags asked for: INT8, FP32 fallback


def test_cli_refusals(tmp_path: Path, capsys, no_tensorrt) -> None:
    export = make_export(tmp_path / "export")
    assert main(["build-engine", "--export", str(export), "--int8"]) == 2
    assert "--int8 needs the Q/DQ model" in capsys.readouterr().err
    (export / "model.onnx").write_bytes(b"tampered")
    assert main(["build-engine", "--export", str(export)]) == 2
    assert "sha256" in capsys.readouterr().err
    assert main(["build-engine", "--export", str(tmp_path / "nowhere")]) == 2


# --- the builder against a stand-in tensorrt module ------------------------------------------


def fake_tensorrt(version: str = "10.3.0.30", shape: tuple[int, ...] = (-1, L),
                  parse_ok: bool = True) -> types.ModuleType:
    """A ``tensorrt`` stand-in with only the documented names; records every call."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    calls: list[tuple[Any, ...]] = []
    trt.calls = calls
    major = int(version.split(".")[0])

    class Logger:
        WARNING = "WARNING"

        def __init__(self, level: str) -> None:
            calls.append(("Logger", level))

    class Profile:
        def set_shape(self, name, lo, opt, hi) -> None:
            calls.append(("set_shape", name, lo, opt, hi))

    class Config:
        def set_memory_pool_limit(self, pool, size) -> None:
            calls.append(("set_memory_pool_limit", pool, size))

        def set_flag(self, flag) -> None:
            calls.append(("set_flag", flag))

        def add_optimization_profile(self, profile) -> None:
            calls.append(("add_optimization_profile", type(profile).__name__))

    network = SimpleNamespace(num_inputs=1,
                              get_input=lambda i: SimpleNamespace(name="spectrum", shape=shape))

    class Builder:
        def __init__(self, logger) -> None:
            calls.append(("Builder",))

        def create_network(self, flags) -> Any:
            calls.append(("create_network", flags))
            return network

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, net, config) -> Any:
            calls.append(("build_serialized_network",))
            return memoryview(b"\x01engine-bytes" * 10)

    class OnnxParser:
        num_errors = 0 if parse_ok else 1

        def __init__(self, net, logger) -> None:
            assert net is network

        def parse(self, data: bytes, path: str) -> bool:
            calls.append(("parse", data[:4], Path(path).name))
            return parse_ok

        def get_error(self, i: int) -> str:
            return "In node 3 (importGelu): UNSUPPORTED_NODE: no importer for Gelu"

    trt.Logger, trt.Builder, trt.OnnxParser = Logger, Builder, OnnxParser
    trt.NetworkDefinitionCreationFlag = SimpleNamespace(EXPLICIT_BATCH=0, STRONGLY_TYPED=1)
    trt.MemoryPoolType = SimpleNamespace(WORKSPACE="WORKSPACE")
    flags = {} if major >= 11 else {"FP16": "FP16", "INT8": "INT8"}  # removed in TensorRT 11
    trt.BuilderFlag = SimpleNamespace(**flags)
    return trt


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch):
    def install(**kwargs: Any) -> types.ModuleType:
        trt = fake_tensorrt(**kwargs)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        monkeypatch.setattr("pace_edge.export.trt_build.gpu_info", lambda: ("Fake GPU", "8.7"))
        return trt

    return install


def test_cli_builds_plan_with_the_documented_calls(tmp_path: Path, stand_in, capsys) -> None:
    trt = stand_in()
    export = make_export(tmp_path / "export", qdq=True)
    assert main(["build-engine", "--export", str(export)]) == 0
    header, engine = read_plan(export / "model.plan")
    assert engine == b"\x01engine-bytes" * 10
    assert (header.tensorrt_version, header.gpu_name, header.compute_capability) == (
        "10.3.0.30", "Fake GPU", "8.7")
    assert header.precision == "int8" and header.builder_flags == ["INT8", "FP16"]
    assert header.source_onnx == "model_int8_qdq.onnx" and header.input_length == L
    assert header.batch == {"min": 1, "opt": 8, "max": 64}
    qdq_bytes = (export / "model_int8_qdq.onnx").read_bytes()
    assert trt.calls == [
        ("Logger", "WARNING"), ("Builder",), ("create_network", 0),  # TensorRT 10: no flags
        ("parse", qdq_bytes[:4], "model_int8_qdq.onnx"),
        ("set_memory_pool_limit", "WORKSPACE", 256 << 20),
        ("set_flag", "INT8"), ("set_flag", "FP16"),
        ("set_shape", "spectrum", (1, L), (8, L), (64, L)),
        ("add_optimization_profile", "Profile"),
        ("build_serialized_network",),
    ]
    manifest = load_manifest(export)  # re-hashed, plan listed
    plan = [a for a in manifest.artefacts if a.kind == "tensorrt-plan"]
    assert [(a.path, a.precision) for a in plan] == [("model.plan", "int8")]
    assert manifest.runtime["tensorrt"]["engine_built"] is True
    assert "wrote" in capsys.readouterr().out


def test_builder_versions(tmp_path: Path, stand_in) -> None:
    onnx_path = conv_model(tmp_path / "m.onnx", length=L)
    settings = BuildSettings(onnx_path, "spectrum", L, BatchProfile(1, 2, 4), fp16=True)
    trt = stand_in(version="8.6.1.6")
    build_engine(settings, trt)
    assert ("create_network", 1 << 0) in trt.calls  # explicit batch flag before TensorRT 10
    assert ("set_flag", "FP16") in trt.calls
    trt = stand_in(version="11.1.0.5")
    with pytest.raises(PaceEdgeError, match="no FP16 builder flag"):
        build_engine(settings, trt)
    build_engine(BuildSettings(onnx_path, "spectrum", L, BatchProfile(1, 2, 4), int8=True), trt)
    assert not [c for c in trt.calls if c[0] == "set_flag"]  # strongly typed: no flags


def test_builder_errors(tmp_path: Path, stand_in) -> None:
    onnx_path = conv_model(tmp_path / "m.onnx", length=L)
    settings = BuildSettings(onnx_path, "spectrum", L, BatchProfile(1, 8, 64))
    with pytest.raises(PaceEdgeError, match="rejected m.onnx.*no importer for Gelu"):
        build_engine(settings, stand_in(parse_ok=False))
    with pytest.raises(PaceEdgeError, match="fixed batch of 4"):
        build_engine(settings, stand_in(shape=(4, L)))
    fixed = BuildSettings(onnx_path, "spectrum", L, BatchProfile(4, 4, 4))
    trt = stand_in(shape=(4, L))
    build_engine(fixed, trt)
    assert not [c for c in trt.calls if c[0] == "set_shape"]  # static input: no profile
    with pytest.raises(PaceEdgeError, match="not \\(batch, 33\\)"):
        build_engine(BuildSettings(onnx_path, "spectrum", 33, BatchProfile(1, 8, 64)),
                     stand_in())


# --- on a GPU ----------------------------------------------------------------------------------
# Tolerances here are expectations, not measurements: none of these has run (no GPU here).


@pytest.fixture(scope="module")
def gpu_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A PACE bundle (1024 points) exported for ``tensorrt`` fp16 and ``jetson`` int8."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("run_engine needs a CUDA build of PyTorch for GPU buffers")
    from test_export_onnx import make_bundle

    from pace_edge.data import SpectralDataset, write_npy_folder
    from pace_edge.export.parity import parity_inputs

    root = tmp_path_factory.mktemp("trt-gpu")
    bundle = make_bundle(root / "bundle", 1024)
    calib = SpectralDataset(parity_inputs(1024, 200, seed=9).astype(np.float64),
                            np.arange(200) % 3, bundle.axis, bundle.classes, source="synthetic")
    write_npy_folder(root / "calib", calib)
    common = ["export", "--model", str(root / "bundle"), "--parity-samples", "64"]
    assert main([*common, "--target", "tensorrt", "--precision", "fp16",
                 "--out", str(root / "tensorrt")]) == 0
    assert main([*common, "--target", "jetson", "--precision", "int8", "--calib",
                 str(root / "calib"), "--out", str(root / "jetson")]) == 0
    return {"tensorrt": root / "tensorrt", "jetson": root / "jetson"}


@pytest.mark.gpu
@requires_tensorrt_gpu
@pytest.mark.parametrize(("precision", "max_abs", "agreement"), [
    ("fp32", 1e-2, 1.0),  # TF32 is on by default for FP32 layers on Ampere and newer
    ("fp16", None, 0.999),
])
def test_engine_logits_match_onnxruntime(gpu_exports: dict[str, Path], precision: str,
                                         max_abs: float | None, agreement: float) -> None:
    from pace_edge.export.parity import compare, onnx_logits, parity_inputs
    from pace_edge.export.trt_build import build_plan, run_engine

    export = gpu_exports["tensorrt"]
    plan = build_plan(export / "model.onnx", export / f"{precision}.plan", precision=precision)
    header, engine = read_plan(plan)
    x = parity_inputs(1024, 512, seed=5)
    result = compare(onnx_logits(export / "model.onnx", x), run_engine(engine, x),
                     artefact=plan.name, runtime=f"tensorrt-{header.tensorrt_version}",
                     precision=precision, max_abs=max_abs, min_agreement=agreement)
    assert result.passed, result.describe()


@pytest.mark.gpu
@requires_tensorrt_gpu
def test_int8_engine_matches_qdq_on_onnxruntime(gpu_exports: dict[str, Path]) -> None:
    from pace_edge.export.parity import compare, onnx_logits, parity_inputs
    from pace_edge.export.trt_build import run_engine

    export = gpu_exports["jetson"]
    assert main(["build-engine", "--export", str(export)]) == 0
    header, engine = read_plan(export / "model.plan")
    assert header.precision == "int8" and header.source_onnx == "model_int8_qdq.onnx"
    x = parity_inputs(1024, 512, seed=6)
    result = compare(onnx_logits(export / "model_int8_qdq.onnx", x), run_engine(engine, x),
                     artefact="model.plan", runtime=f"tensorrt-{header.tensorrt_version}",
                     precision="int8", min_agreement=0.98)
    assert result.passed, result.describe()
    assert any(a.kind == "tensorrt-plan" for a in load_manifest(export).artefacts)


@pytest.mark.gpu
@requires_tensorrt_gpu
def test_build_engine_cli_on_gpu(gpu_exports: dict[str, Path]) -> None:
    export = gpu_exports["tensorrt"]
    assert main(["build-engine", "--export", str(export)]) == 0
    header, _ = read_plan(export / "model.plan")
    assert header.precision == "fp16" and header.builder_flags in (["FP16"], [])
