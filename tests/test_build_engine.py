"""``pace-edge build-engine``: the builder, the engine check and what the manifest records.

Without a GPU: the batch profile, the builder's calls checked against a stand-in ``tensorrt``
module that has only the documented API (TF32 cleared, precision flags, profile), the CLI's
refusals, the engine check's pass/fail logic and what it records, and the runner's refusal of a
stale plan. The stand-in "runs" a plan by ONNX Runtime on its source ONNX, so these test
pace-edge's logic, never TensorRT; the GPU tests are in ``test_tensorrt_gpu.py``.
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
pytest.importorskip("onnxruntime")

from _trt_helpers import conv_model, ort_qdq  # noqa: E402

from pace_edge.cli.main import main  # noqa: E402
from pace_edge.errors import BundleError, PaceEdgeError  # noqa: E402
from pace_edge.export.manifest import (  # noqa: E402
    Artefact,
    InputSpec,
    Manifest,
    OutputSpec,
    load_manifest,
    write_manifest,
)
from pace_edge.export.parity import onnx_logits  # noqa: E402
from pace_edge.export.trt_build import (  # noqa: E402
    BatchProfile,
    BuildSettings,
    build_engine,
    builder_flags,
)
from pace_edge.export.trt_plan import PlanHeader, PlanMismatch, read_plan, write_plan  # noqa: E402
from pace_edge.export.trt_verify import (  # noqa: E402
    SPECTRA_FILE,
    TOLERANCES,
    EngineCheckData,
    check_engine,
    reference_file,
    tolerance_record,
    write_f32,
)

L = 32
N = 24


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


def test_builder_flags() -> None:
    assert builder_flags(True, True) == ["INT8", "FP16"]
    assert builder_flags(True, False, 8) == ["FP16"]
    assert builder_flags(True, True, 11) == []


# --- the engine check's gate -----------------------------------------------------------------


def check_data(classes: int = 3) -> EngineCheckData:
    rng = np.random.default_rng(1)
    reference = rng.normal(0, 3, (200, classes)).astype(np.float32)
    return EngineCheckData("model.onnx", rng.normal(size=(200, L)).astype(np.float32),
                           reference, "onnxruntime test")


def shifted(data: EngineCheckData, delta: float, flips: int = 0):
    """A stand-in plan: ONNX Runtime's logits + ``delta``, with the top-1 of ``flips`` rows
    moved to another class."""
    def run(x: np.ndarray) -> np.ndarray:
        assert x is data.spectra
        out = data.reference + np.float32(delta)
        for i in range(flips):
            top = out[i].argmax()
            out[i, (top + 1) % out.shape[1]] = out[i, top] + 1.0
        return out
    return run


@pytest.mark.parametrize(("precision", "delta", "flips", "passed"), [
    ("fp32", 5e-4, 0, True),
    ("fp32", 2e-3, 0, False),   # beyond FP32's 1e-3
    ("fp16", 2e-3, 0, True),
    ("fp16", 0.1, 0, False),    # beyond FP16's 5e-2
    ("fp16", 0.0, 4, False),    # 98 % top-1 agreement < 99 %
    ("int8", 0.3, 0, True),     # INT8 limits agreement only
    ("int8", 0.0, 4, True),     # 98 %
    ("int8", 0.0, 5, False),    # 97.5 %
])
def test_engine_check_tolerances(precision: str, delta: float, flips: int, passed: bool) -> None:
    data = check_data()
    result = check_engine(shifted(data, delta, flips), data, precision, artefact="model.plan",
                          runtime="stand-in")
    assert result.passed is passed, result.describe()
    tol = TOLERANCES[precision]
    assert (result.max_abs_limit, result.min_agreement) == (tol.max_abs, tol.min_agreement)
    assert result.samples == 200


def test_engine_check_refuses_nan_and_unknown_precision() -> None:
    data = check_data()
    result = check_engine(lambda x: np.full_like(data.reference, np.nan), data, "int8",
                          artefact="model.plan", runtime="stand-in")
    assert not result.passed
    with pytest.raises(PaceEdgeError, match="no engine tolerance"):
        check_engine(shifted(data, 0), data, "bf16", artefact="model.plan", runtime="x")


# --- a hand-made export ----------------------------------------------------------------------


def make_export(root: Path, batch: int | str = "dynamic", qdq: bool = False,
                check: bool = True) -> Path:
    """An export directory with a tiny ONNX model (no torch), its engine-check data (ONNX
    Runtime's logits, as the export writes them) and its verified manifest."""
    root.mkdir(parents=True, exist_ok=True)
    conv_model(root / "model.onnx", length=L, batch="N" if batch == "dynamic" else batch)
    artefacts = [Artefact("model.onnx", "onnx", "fp32")]
    precision, sources = "fp16", ["model.onnx"]
    if qdq:
        x = np.random.default_rng(0).normal(size=(16, L)).astype(np.float32)
        ort_qdq(root / "model.onnx", root / "model_int8_qdq.onnx", x,
                batch=8 if batch == "dynamic" else int(batch))
        artefacts.append(Artefact("model_int8_qdq.onnx", "onnx", "int8"))
        precision, sources = "int8", ["model_int8_qdq.onnx", "model.onnx"]
    settings: dict[str, Any] = {"precision": precision,
                                "profile": BatchProfile.from_batch(batch).to_dict(),
                                "workspace_mb": 256}
    if check:
        spectra = np.random.default_rng(2).normal(size=(N, L)).astype(np.float32)
        write_f32(root / SPECTRA_FILE, spectra)
        artefacts.append(Artefact(SPECTRA_FILE, "engine-check-spectra", "fp32"))
        refs = {}
        for source in sources:
            write_f32(root / reference_file(source), onnx_logits(root / source, spectra, batch))
            artefacts.append(Artefact(reference_file(source), "engine-check-logits", "fp32"))
            refs[source] = {"file": reference_file(source), "runtime": "onnxruntime"}
        settings["engine_check"] = {"spectra": SPECTRA_FILE, "count": N, "length": L,
                                    "classes": 3, "references": refs,
                                    "tolerances": tolerance_record()}
    manifest = Manifest(
        target="jetson" if qdq else "tensorrt", precision=precision, artefacts=artefacts,
        input=InputSpec("spectrum", L, batch, list(np.linspace(0, 1, L)), []),
        output=OutputSpec("logits", 3), classes=["a", "b", "c"], source={},
        runtime={"tensorrt": settings},
    )
    write_manifest(root, manifest)
    return root


@pytest.fixture
def no_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError


def test_cli_without_tensorrt(tmp_path: Path, capsys, no_tensorrt) -> None:
    export = make_export(tmp_path / "export")
    before = (export / "manifest.json").read_bytes()
    assert main(["build-engine", "--export", str(export)]) == 2
    _, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("pace-edge build-engine: error: TensorRT is not installed here")
    assert "pace-stream --build-engine --model DIR" in err and "pace-edge doctor" in err
    assert not (export / "model.plan").exists()
    assert (export / "manifest.json").read_bytes() == before


def test_cli_refusals(tmp_path: Path, capsys, no_tensorrt) -> None:
    export = make_export(tmp_path / "export")
    assert main(["build-engine", "--export", str(export), "--precision", "int8"]) == 2
    assert "an INT8 plan is built from the Q/DQ model model_int8_qdq.onnx" in \
        capsys.readouterr().err
    old = make_export(tmp_path / "old", check=False)  # exported before the engine check
    assert main(["build-engine", "--export", str(old)]) == 2
    assert "no engine-check logits for model.onnx; export it again" in capsys.readouterr().err
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

        def clear_flag(self, flag) -> None:
            calls.append(("clear_flag", flag))

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
    flags = {"TF32": "TF32"}
    if major < 11:  # removed in TensorRT 11 (strongly typed networks only)
        flags |= {"FP16": "FP16", "INT8": "INT8"}
    trt.BuilderFlag = SimpleNamespace(**flags)
    return trt


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch):
    """Install the stand-in tensorrt; its "plan" runs as ONNX Runtime on the plan's source ONNX
    plus ``delta`` (to fail the check on purpose)."""
    import pace_edge.cli.build_engine as cli

    def install(delta: float = 0.0, **kwargs: Any) -> types.ModuleType:
        trt = fake_tensorrt(**kwargs)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        monkeypatch.setattr("pace_edge.export.trt_build.gpu_info", lambda: ("Fake GPU", "8.7"))

        def plan_logits(plan: Path, manifest: Manifest):
            header, _ = read_plan(plan)
            source = manifest.path / header.source_onnx
            batch = manifest.input.batch
            trt.calls.append(("run plan", plan.name))
            return (lambda x: onnx_logits(source, x, batch) + np.float32(delta),
                    "stand-in", lambda: trt.calls.append(("release",)))

        monkeypatch.setattr(cli, "plan_logits", plan_logits)
        return trt

    return install


def test_cli_builds_checks_and_lists_the_plan(tmp_path: Path, stand_in, capsys) -> None:
    trt = stand_in()
    export = make_export(tmp_path / "export", qdq=True)
    assert main(["build-engine", "--export", str(export)]) == 0
    header, engine = read_plan(export / "model.plan")
    assert engine == b"\x01engine-bytes" * 10
    assert (header.tensorrt_version, header.gpu_name, header.compute_capability) == (
        "10.3.0.30", "Fake GPU", "8.7")
    assert header.precision == "int8" and header.builder_flags == ["INT8", "FP16"]
    assert header.cleared_flags == ["TF32"]
    assert header.source_onnx == "model_int8_qdq.onnx" and header.input_length == L
    assert header.batch == {"min": 1, "opt": 8, "max": 64}
    qdq_bytes = (export / "model_int8_qdq.onnx").read_bytes()
    assert trt.calls == [
        ("Logger", "WARNING"), ("Builder",), ("create_network", 0),  # TensorRT 10: no flags
        ("parse", qdq_bytes[:4], "model_int8_qdq.onnx"),
        ("set_memory_pool_limit", "WORKSPACE", 256 << 20),
        ("set_flag", "INT8"), ("set_flag", "FP16"), ("clear_flag", "TF32"),
        ("set_shape", "spectrum", (1, L), (8, L), (64, L)),
        ("add_optimization_profile", "Profile"),
        ("build_serialized_network",),
        ("run plan", "model.plan.building"), ("release",),  # checked before it is installed
    ]
    manifest = load_manifest(export)  # re-hashed, plan listed
    plan = [a for a in manifest.artefacts if a.kind == "tensorrt-plan"]
    assert [(a.path, a.precision) for a in plan] == [("model.plan", "int8")]
    recorded = manifest.runtime["tensorrt"]["plan"]
    assert recorded["cleared_flags"] == ["TF32"] and recorded["source_onnx"] == header.source_onnx
    check = recorded["check"]
    assert check["passed"] and check["samples"] == N and check["precision"] == "int8"
    assert check["reference"] == "model_int8_qdq.onnx on onnxruntime"
    assert check["min_agreement"] == TOLERANCES["int8"].min_agreement
    assert manifest.runtime["tensorrt"]["engine_built"] is True
    out = capsys.readouterr().out
    assert "engine check against model_int8_qdq.onnx" in out and "cleared ['TF32']" in out


def test_fp32_plan_clears_tf32_and_sets_no_precision_flag(tmp_path: Path, stand_in) -> None:
    trt = stand_in()
    export = make_export(tmp_path / "export")
    assert main(["build-engine", "--export", str(export), "--precision", "fp32"]) == 0
    flags = [c for c in trt.calls if c[0] in ("set_flag", "clear_flag")]
    assert flags == [("clear_flag", "TF32")]
    assert load_manifest(export).runtime["tensorrt"]["plan"]["check"]["max_abs_limit"] == 1e-3


def test_cli_rejects_a_plan_that_fails_its_check(tmp_path: Path, stand_in, capsys) -> None:
    stand_in(delta=0.2)  # beyond FP16's max |Δlogit| of 5e-2
    export = make_export(tmp_path / "export")
    assert main(["build-engine", "--export", str(export)]) == 2
    err = capsys.readouterr().err
    assert "fails the fp16 engine check" in err and len(err.strip().splitlines()) == 1
    assert not (export / "model.plan").exists() and (export / "model.plan.rejected").is_file()
    assert not (export / "model.plan.building").exists()
    manifest = load_manifest(export)
    assert not [a for a in manifest.artefacts if a.kind == "tensorrt-plan"]
    rejected = manifest.runtime["tensorrt"]["rejected_plan"]
    assert rejected["check"]["passed"] is False and rejected["path"] is None
    assert rejected["check"]["max_abs_diff"] == pytest.approx(0.2, abs=1e-6)


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
    assert ("clear_flag", "TF32") in trt.calls


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


# --- the runner never rewrites an export -----------------------------------------------------


def plan_export(tmp_path: Path, checked: bool = True) -> Path:
    """An export with a plan (stand-in engine bytes) listed as build-engine lists it."""
    export = make_export(tmp_path / "export")
    manifest = load_manifest(export)
    onnx_sha = next(a.sha256 for a in manifest.artefacts if a.path == "model.onnx")
    header = PlanHeader("10.3.0.30", "Orin (nvgpu)", "8.7", "fp16", {"min": 1, "opt": 8,
                        "max": 64}, "model.onnx", onnx_sha, input_length=L)
    write_plan(export / "model.plan", b"engine", header)
    manifest.artefacts.append(Artefact("model.plan", "tensorrt-plan", "fp16"))
    manifest.runtime["tensorrt"]["plan"] = {"path": "model.plan",
                                            "check": {"passed": checked}}
    write_manifest(export, manifest)
    return export


def fake_device(monkeypatch: pytest.MonkeyPatch, version: str, gpu: str, cc: str) -> None:
    import pace_edge.runtimes.tensorrt_runner as runner

    monkeypatch.setattr(runner, "import_tensorrt", lambda: SimpleNamespace(__version__=version))
    monkeypatch.setattr(runner, "cuda_runtime", lambda: object())
    monkeypatch.setattr(runner, "gpu_name", lambda cudart: gpu)
    monkeypatch.setattr(runner, "compute_capability", lambda cudart: cc)


def test_runner_refuses_a_stale_plan_and_rewrites_nothing(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from pace_edge.runtimes.tensorrt_runner import TensorRTRunner

    export = plan_export(tmp_path)
    before = {p.name: p.read_bytes() for p in export.iterdir()}
    manifest = load_manifest(export)
    plan = next(a for a in manifest.artefacts if a.kind == "tensorrt-plan")
    fake_device(monkeypatch, "10.4.0.26", "Orin (nvgpu)", "8.7")
    with pytest.raises(PlanMismatch) as exc:
        TensorRTRunner.from_export(manifest, plan)
    assert "built with TensorRT 10.3.0.30, running 10.4.0.26" in str(exc.value)
    assert f"rebuild it with pace-edge build-engine --export {export}" in str(exc.value)
    assert "pace-stream --build-engine" in str(exc.value)
    assert {p.name: p.read_bytes() for p in export.iterdir()} == before


def test_runner_refuses_an_unchecked_plan(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from pace_edge.runtimes.tensorrt_runner import TensorRTRunner

    export = plan_export(tmp_path, checked=False)
    manifest = load_manifest(export)
    plan = next(a for a in manifest.artefacts if a.kind == "tensorrt-plan")
    fake_device(monkeypatch, "10.3.0.30", "Orin (nvgpu)", "8.7")
    with pytest.raises(BundleError, match="records no passed engine check"):
        TensorRTRunner.from_export(manifest, plan)
