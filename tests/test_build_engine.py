"""``pace-edge build-engine``: the builder, the engine check and the plan's record ``engine.json``.

Without a GPU: the batch profile, the builder's calls checked against a stand-in ``tensorrt``
module that has only the documented API (TF32 cleared, precision flags, profile), the CLI's
refusals, the engine check's pass/fail logic and what it records (beside the export, never in
its manifest, so a signed export stays signed), and the runner's refusal of a stale, swapped or
unchecked plan. The stand-in "runs" a plan by ONNX Runtime on its source ONNX, so these test
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
from pace_edge.export.engine_record import (  # noqa: E402
    REJECTED_FILE,
    EngineRecord,
    device_plan,
    plan_problem,
    read_engine_record,
    write_engine_record,
)
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
from pace_edge.integrity.digest import sha256_file  # noqa: E402

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
    import pace_edge.export.engine_build as cli

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


def test_cli_builds_checks_and_records_the_plan(tmp_path: Path, stand_in, capsys) -> None:
    trt = stand_in()
    export = make_export(tmp_path / "export", qdq=True)
    before = (export / "manifest.json").read_bytes()
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
    manifest = load_manifest(export)  # the export is untouched: no plan listed in it
    assert (export / "manifest.json").read_bytes() == before
    assert not [a for a in manifest.artefacts if a.kind == "tensorrt-plan"]
    record = read_engine_record(export)
    assert (record.plan, record.precision, record.source_onnx) == (
        "model.plan", "int8", "model_int8_qdq.onnx")
    assert record.plan_sha256 == sha256_file(export / "model.plan")
    assert record.source_onnx_sha256 == next(
        a.sha256 for a in manifest.artefacts if a.path == "model_int8_qdq.onnx")
    assert (record.tensorrt_version, record.gpu_name) == ("10.3.0.30", "Fake GPU")
    assert record.cleared_flags == ["TF32"] and record.builder_flags == ["INT8", "FP16"]
    check = record.check
    assert check["passed"] and check["samples"] == N and check["precision"] == "int8"
    assert check["reference"] == "model_int8_qdq.onnx on onnxruntime"
    assert check["min_agreement"] == TOLERANCES["int8"].min_agreement
    assert device_plan(manifest) == record and plan_problem(manifest, record) == ""
    out = capsys.readouterr().out
    assert "engine check against model_int8_qdq.onnx" in out and "cleared ['TF32']" in out


def test_fp32_plan_clears_tf32_and_sets_no_precision_flag(tmp_path: Path, stand_in) -> None:
    trt = stand_in()
    export = make_export(tmp_path / "export")
    assert main(["build-engine", "--export", str(export), "--precision", "fp32"]) == 0
    flags = [c for c in trt.calls if c[0] in ("set_flag", "clear_flag")]
    assert flags == [("clear_flag", "TF32")]
    assert read_engine_record(export).check["max_abs_limit"] == 1e-3


def test_cli_rejects_a_plan_that_fails_its_check(tmp_path: Path, stand_in, capsys) -> None:
    stand_in(delta=0.2)  # beyond FP16's max |Δlogit| of 5e-2
    export = make_export(tmp_path / "export")
    before = (export / "manifest.json").read_bytes()
    assert main(["build-engine", "--export", str(export)]) == 2
    err = capsys.readouterr().err
    assert "fails the fp16 engine check" in err and len(err.strip().splitlines()) == 1
    assert "kept as model.plan.rejected, not used, the result is in engine.rejected.json" in err
    assert not (export / "model.plan").exists() and (export / "model.plan.rejected").is_file()
    assert not (export / "model.plan.building").exists()
    assert (export / "manifest.json").read_bytes() == before
    assert read_engine_record(export) is None  # nothing a runner would use
    rejected = read_engine_record(export, REJECTED_FILE)
    assert rejected.plan == "model.plan.rejected" and rejected.check["passed"] is False
    assert rejected.check["max_abs_diff"] == pytest.approx(0.2, abs=1e-6)


def test_a_failed_rebuild_keeps_the_previous_plan(tmp_path: Path, stand_in) -> None:
    stand_in()
    export = make_export(tmp_path / "export")
    assert main(["build-engine", "--export", str(export)]) == 0
    kept = {name: (export / name).read_bytes() for name in ("model.plan", "engine.json")}
    stand_in(delta=0.2)
    assert main(["build-engine", "--export", str(export)]) == 2
    assert {name: (export / name).read_bytes() for name in kept} == kept
    assert device_plan(load_manifest(export)).passed


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
    """An export with a plan (stand-in engine bytes) and its record, as build-engine writes."""
    export = make_export(tmp_path / "export")
    manifest = load_manifest(export)
    onnx_sha = next(a.sha256 for a in manifest.artefacts if a.path == "model.onnx")
    header = PlanHeader("10.3.0.30", "Orin (nvgpu)", "8.7", "fp16", {"min": 1, "opt": 8,
                        "max": 64}, "model.onnx", onnx_sha, input_length=L)
    write_plan(export / "model.plan", b"engine", header)
    write_engine_record(export, EngineRecord.for_plan(export / "model.plan", header,
                                                      {"passed": checked}))
    return export


def fake_device(monkeypatch: pytest.MonkeyPatch, version: str, gpu: str, cc: str) -> None:
    import pace_edge.runtimes.tensorrt_runner as runner

    monkeypatch.setattr(runner, "import_tensorrt", lambda: SimpleNamespace(__version__=version))
    monkeypatch.setattr(runner, "cuda_runtime", lambda: object())
    monkeypatch.setattr(runner, "gpu_name", lambda cudart: gpu)
    monkeypatch.setattr(runner, "compute_capability", lambda cudart: cc)


def the_plan(export: Path) -> Artefact:
    return read_engine_record(export).artefact()


def test_runner_refuses_a_stale_plan_and_rewrites_nothing(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from pace_edge.runtimes.tensorrt_runner import TensorRTRunner

    export = plan_export(tmp_path)
    before = {p.name: p.read_bytes() for p in export.iterdir()}
    manifest = load_manifest(export)
    fake_device(monkeypatch, "10.4.0.26", "Orin (nvgpu)", "8.7")
    with pytest.raises(PlanMismatch) as exc:
        TensorRTRunner.from_export(manifest, the_plan(export))
    assert "built with TensorRT 10.3.0.30, running 10.4.0.26" in str(exc.value)
    assert f"rebuild it with pace-edge build-engine --export {export}" in str(exc.value)
    assert "pace-stream --build-engine" in str(exc.value)
    assert {p.name: p.read_bytes() for p in export.iterdir()} == before


def test_runner_refuses_an_unchecked_plan(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from pace_edge.runtimes.tensorrt_runner import TensorRTRunner

    export = plan_export(tmp_path, checked=False)
    manifest = load_manifest(export)
    fake_device(monkeypatch, "10.3.0.30", "Orin (nvgpu)", "8.7")
    with pytest.raises(PlanMismatch, match="engine.json records no passed engine check"):
        TensorRTRunner.from_export(manifest, the_plan(export))


def test_a_plan_listed_without_a_record_is_not_run(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan in the manifest (as an older build-engine listed it) or a model.plan without
    engine.json is not the device's checked plan."""
    from pace_edge.runtimes.tensorrt_runner import TensorRTRunner

    export = plan_export(tmp_path)
    (export / "engine.json").unlink()
    manifest = load_manifest(export)
    manifest.artefacts.append(Artefact("model.plan", "tensorrt-plan", "fp16"))
    write_manifest(export, manifest)
    manifest = load_manifest(export)
    fake_device(monkeypatch, "10.3.0.30", "Orin (nvgpu)", "8.7")
    with pytest.raises(BundleError, match="no engine.json beside the export records this plan"):
        TensorRTRunner.from_export(manifest, Artefact("model.plan", "tensorrt-plan", "fp16"))


# --- signed exports: the plan is recorded beside the signed manifest --------------------------


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, Path]:
    """A signed export (Ed25519) and the folder of keys trusted to run it."""
    from pace_edge.export.manifest import sign_export
    from pace_edge.integrity.signing import generate_key_pair, load_private_key

    private, public = generate_key_pair(tmp_path / "keys", "lab")
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (trusted / public.name).write_bytes(public.read_bytes())
    export = make_export(tmp_path / "export")
    sign_export(export, load_private_key(private))
    return export, trusted


@pytest.fixture
def gpu_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """Selection sees tensorrt, onnxruntime and a GPU (availability only; nothing runs)."""
    from pace_edge.runtimes import select

    monkeypatch.setattr(select, "package_available", lambda name: True)
    monkeypatch.setattr(select, "gpu_status", lambda: (True, "GPU Fake GPU"))


def stream(export: Path, trusted: Path, capsys, *extra: str) -> tuple[int, list[str]]:
    """``pace-edge stream --trusted-keys``: the runner is loaded before any port is opened."""
    code = main(["stream", "--model", str(export), "--trusted-keys", str(trusted),
                 "--port", "/dev/pace-edge-no-such-port", "--protocol", "obp", *extra])
    return code, capsys.readouterr().err.strip().splitlines()


def test_build_engine_keeps_a_signed_export_signed(signed, stand_in, gpu_here, capsys,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from pace_edge.integrity.signing import load_trusted_keys
    from pace_edge.runtimes.select import select_backend
    from pace_edge.runtimes.tensorrt_runner import checked_plan

    export, trusted = signed
    before = {name: (export / name).read_bytes()
              for name in ("manifest.json", "manifest.json.sha256", "manifest.json.sig")}
    stand_in()
    assert main(["build-engine", "--export", str(export), "--trusted-keys", str(trusted)]) == 0
    assert "manifest.json is unchanged" in capsys.readouterr().out
    assert {name: (export / name).read_bytes() for name in before} == before
    assert (export / "engine.json.sha256").is_file()

    manifest = load_manifest(export, load_trusted_keys(trusted))  # still signed by our key
    choice = select_backend(manifest)
    assert choice.backend == "tensorrt" and choice.artefact.path == "model.plan"
    assert choice.reason.startswith("tensorrt: TensorRT plan model.plan (fp16) in the export")
    header, engine = checked_plan(manifest, export / "model.plan", "10.3.0.30", "Fake GPU",
                                  "8.7")
    assert engine == b"\x01engine-bytes" * 10 and header.precision == "fp16"


def test_build_engine_with_trusted_keys_refuses_an_unsigned_export(signed, stand_in, capsys
                                                                   ) -> None:
    _, trusted = signed
    stand_in()
    unsigned = make_export(Path(trusted).parent / "unsigned")
    assert main(["build-engine", "--export", str(unsigned), "--trusted-keys", str(trusted)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not signed (manifest.json.sig is missing)" in err[0]
    assert not (unsigned / "model.plan").exists() and not (unsigned / "engine.json").exists()


def test_an_edited_record_or_a_swapped_plan_is_refused(signed, stand_in, gpu_here,
                                                        capsys) -> None:
    export, trusted = signed
    stand_in()
    assert main(["build-engine", "--export", str(export)]) == 0
    capsys.readouterr()
    record, plan = (export / "engine.json"), (export / "model.plan")
    good_record, good_plan = record.read_bytes(), plan.read_bytes()

    record.write_bytes(good_record.replace(b'"passed": true', b'"passed": false '))
    code, err = stream(export, trusted, capsys)
    assert code == 2 and len(err) == 1
    assert "engine.json was edited after it was written" in err[0]

    record.write_bytes(good_record)
    header, engine = read_plan(plan)
    write_plan(plan, engine + b"!", header)  # another engine, a self-consistent plan file
    code, err = stream(export, trusted, capsys)
    assert code == 2 and len(err) == 1
    assert "model.plan: sha256" in err[0] and "does not match engine.json" in err[0]
    assert "replaced or altered after it was built" in err[0]

    plan.write_bytes(good_plan)  # and a refused export is never rewritten
    assert (export / "manifest.json.sig").is_file() and record.read_bytes() == good_record


def test_a_plan_from_another_onnx_is_refused(signed, stand_in, gpu_here, capsys) -> None:
    """A record that verifies but names another source ONNX (e.g. left from a previous export
    into the same folder): auto skips the plan and says why; --backend tensorrt refuses it."""
    from pace_edge.runtimes.select import select_backend

    export, trusted = signed
    stand_in()
    assert main(["build-engine", "--export", str(export)]) == 0
    record = read_engine_record(export)
    record.source_onnx_sha256 = "0" * 64
    write_engine_record(export, record)
    manifest = load_manifest(export)
    choice = select_backend(manifest)
    assert choice.backend == "onnxruntime"
    assert ("skipped tensorrt: model.plan was built from model.onnx with sha256 000000000000…, "
            "not from this export's") in choice.reason
    capsys.readouterr()
    code, err = stream(export, trusted, capsys, "--backend", "tensorrt")
    assert code == 2 and len(err) == 1
    assert "backend tensorrt: model.plan was built from model.onnx with sha256 000000000000…" \
        in err[0]
    assert f"rebuild it with pace-edge build-engine --export {export}" in err[0]
