"""Backend selection: ``auto``'s order and reasons, explicit choices, precise errors.

Only *availability* is faked (which packages import, whether a GPU is visible); the exports
are real manifests over placeholder files, since choosing never runs a model. One test at the
end loads real runners on a real export.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pace_edge.errors import BundleError, PaceEdgeError
from pace_edge.export.engine_record import EngineRecord, read_engine_record, write_engine_record
from pace_edge.export.manifest import (
    Artefact,
    InputSpec,
    Manifest,
    OutputSpec,
    load_manifest,
    write_manifest,
)
from pace_edge.export.trt_plan import PLAN_FILE, PlanHeader, PlanMismatch
from pace_edge.runtimes import select
from pace_edge.runtimes.select import select_backend

ALL = {"onnxruntime", "openvino", "tensorrt", "torch"}


def make_export(
    directory: Path,
    artefacts: list[tuple[str, str, str]],
    precision: str = "fp32",
    runtime: dict | None = None,
    source_bundle: Path | None = None,
) -> Path:
    """An export whose artefacts are placeholder files: ``(path, kind, precision)``."""
    directory.mkdir(parents=True, exist_ok=True)
    for path, _, _ in artefacts:
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_bytes(f"placeholder {path}".encode())
    write_manifest(directory, Manifest(
        target="test",
        precision=precision,
        artefacts=[Artefact(*a) for a in artefacts],
        input=InputSpec("spectrum", 3, "dynamic", [1.0, 2.0, 3.0], []),
        output=OutputSpec("logits", 2),
        classes=["a", "b"],
        source={"bundle": str(source_bundle or directory / "no-bundle"), "weights_sha256": ""},
        runtime=runtime or {},
    ))
    return directory


X86 = [("model.xml", "openvino-xml", "fp32"), ("model.bin", "openvino-bin", "fp32"),
       ("model.onnx", "onnx", "fp32")]


@pytest.fixture
def available(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The packages that count as installed (edit the set); a GPU is visible iff 'gpu' is in it."""
    installed = set(ALL) | {"gpu"}
    monkeypatch.setattr(select, "package_available", lambda name: name in installed)
    monkeypatch.setattr(
        select, "gpu_status",
        lambda: (True, "GPU Fake GPU") if "gpu" in installed else (False, "no NVIDIA GPU is "
                                                                          "visible"),
    )
    return installed


@pytest.fixture
def x86(tmp_path: Path) -> Path:
    return make_export(tmp_path / "x86", X86)


def record_plan(export: Path, plan: str = PLAN_FILE, precision: str = "fp16",
                source: str = "model.onnx", passed: bool = True) -> Path:
    """A placeholder plan beside ``export`` and its record, as build-engine writes them (the
    record names ``source`` with its sha256 as the manifest lists it)."""
    manifest = load_manifest(export)
    source_sha = next(a.sha256 for a in manifest.artefacts if a.path == source)
    (export / plan).parent.mkdir(parents=True, exist_ok=True)
    (export / plan).write_bytes(f"placeholder plan {plan}".encode())
    header = PlanHeader("10.3.0.30", "Fake GPU", "8.7", precision, {"min": 1, "opt": 8,
                        "max": 64}, source, source_sha)
    record = EngineRecord.for_plan(export / plan, header, {"passed": passed})
    record.plan = plan
    write_engine_record(export, record)
    return export


@pytest.fixture
def with_plan(tmp_path: Path) -> Path:
    """A TensorRT export beside which build-engine has written ``model.plan`` and its record."""
    export = make_export(
        tmp_path / "trt", [("model.onnx", "onnx", "fp32"), ("model.xml", "openvino-xml", "fp32")],
        runtime={"tensorrt": {"plan_file": PLAN_FILE, "precision": "fp16"}},
    )
    return record_plan(export)


# --- auto ---------------------------------------------------------------------------------------


def test_auto_prefers_openvino_then_onnxruntime(x86: Path, available: set[str]) -> None:
    choice = select_backend(x86)
    assert choice.backend == "openvino" and choice.artefact.path == "model.xml"
    assert choice.reason == ("openvino: OpenVINO IR model.xml (fp32) in the export and openvino "
                             "is installed; skipped tensorrt: no TensorRT plan in the export")
    available.discard("openvino")
    choice = select_backend(x86)
    assert choice.backend == "onnxruntime" and choice.artefact.path == "model.onnx"
    assert "skipped tensorrt: no TensorRT plan in the export; openvino: the openvino package " \
           "is not installed" in choice.reason
    available.discard("onnxruntime")
    with pytest.raises(PaceEdgeError, match=r"no backend can run .*onnxruntime: the onnxruntime "
                                            r"package is not installed.*it has: openvino fp32, "
                                            r"onnx fp32.*choose backend torch"):
        select_backend(x86)


def test_auto_prefers_tensorrt_with_plan_package_and_gpu(with_plan: Path,
                                                         available: set[str]) -> None:
    choice = select_backend(with_plan)
    assert choice.backend == "tensorrt"
    assert (choice.artefact.path, choice.artefact.kind, choice.artefact.precision) == (
        PLAN_FILE, "tensorrt-plan", "fp16")
    assert choice.reason == ("tensorrt: TensorRT plan model.plan (fp16) in the export and "
                             "tensorrt is installed with GPU Fake GPU")
    available.discard("gpu")
    choice = select_backend(with_plan)
    assert choice.backend == "openvino"
    assert "skipped tensorrt: no NVIDIA GPU is visible" in choice.reason
    available.add("gpu")
    available.discard("tensorrt")
    choice = select_backend(with_plan)
    assert choice.backend == "openvino"
    assert "skipped tensorrt: the tensorrt package is not installed" in choice.reason


def test_plan_in_a_subfolder(tmp_path: Path, available: set[str]) -> None:
    export = make_export(tmp_path / "e", [("model.onnx", "onnx", "fp32")], precision="int8")
    record_plan(export, "engine/pace.plan", "int8")
    choice = select_backend(export)
    assert choice.backend == "tensorrt" and choice.artefact.path == "engine/pace.plan"
    assert choice.artefact.precision == "int8"


def test_no_plan_without_its_record(tmp_path: Path, available: set[str]) -> None:
    export = make_export(tmp_path / "e", [("model.onnx", "onnx", "fp32")],
                         runtime={"tensorrt": {"plan_file": PLAN_FILE, "precision": "fp16"}})
    assert select_backend(export).backend == "onnxruntime"  # build-engine has not run yet
    assert select.artefact_summary(load_manifest(export)) == "onnx fp32"
    # a plan without engine.json (unchecked, e.g. copied in by hand) is never run
    (export / PLAN_FILE).write_bytes(b"PACETRT\0 never read")
    assert select_backend(export).backend == "onnxruntime"
    # nor one listed in the manifest itself (as an older build-engine did)
    listed = make_export(tmp_path / "listed", [("model.onnx", "onnx", "fp32"),
                                              (PLAN_FILE, "tensorrt-plan", "fp16")])
    assert select_backend(listed).backend == "onnxruntime"
    assert select.KINDS["tensorrt"] == ("tensorrt-plan",)


def test_stale_or_unchecked_plan_is_skipped_by_auto_refused_when_asked(
        tmp_path: Path, available: set[str]) -> None:
    export = make_export(tmp_path / "e", [("model.onnx", "onnx", "fp32")])
    record_plan(export, passed=False)
    choice = select_backend(export)
    assert choice.backend == "onnxruntime"
    assert ("skipped tensorrt: engine.json records no passed engine check for model.plan; "
            f"rebuild it with pace-edge build-engine --export {export}") in choice.reason
    with pytest.raises(PlanMismatch, match="^backend tensorrt: engine.json records no passed"):
        select_backend(export, "tensorrt")
    record = read_engine_record(export)  # a record left from an earlier export, say
    record.check, record.source_onnx_sha256 = {"passed": True}, "f" * 64
    write_engine_record(export, record)
    assert ("skipped tensorrt: model.plan was built from model.onnx with sha256 ffffffffffff…, "
            "not from this export's") in select_backend(export).reason
    record.source_onnx = "gone.onnx"
    write_engine_record(export, record)
    with pytest.raises(PlanMismatch, match="built from gone.onnx, which this export's manifest "
                                           "does not list; rebuild it with pace-edge"):
        select_backend(export, "tensorrt")


def test_edited_record_or_swapped_plan_is_refused_whatever_the_backend(
        with_plan: Path, available: set[str]) -> None:
    record = with_plan / "engine.json"
    good = record.read_bytes()
    record.write_bytes(good.replace(b'"precision": "fp16"', b'"precision": "int8"'))
    for backend in ("auto", "onnxruntime", "tensorrt"):
        with pytest.raises(BundleError, match="engine.json was edited after it was written"):
            select_backend(with_plan, backend)
    record.write_bytes(good)
    (with_plan / PLAN_FILE).write_bytes(b"another plan")
    with pytest.raises(BundleError, match="model.plan: sha256 .* does not match engine.json"):
        select_backend(with_plan)
    (with_plan / PLAN_FILE).unlink()
    with pytest.raises(BundleError, match="the plan recorded in engine.json is missing"):
        select_backend(with_plan)


# --- explicit backends ----------------------------------------------------------------------------


def test_explicit_backend_missing_from_export(tmp_path: Path, available: set[str]) -> None:
    export = make_export(tmp_path / "e", [("model.onnx", "onnx", "fp32")])
    with pytest.raises(PaceEdgeError) as exc:
        select_backend(export, "openvino")
    assert str(exc.value) == f"backend openvino: no OpenVINO IR in {export} (it has: onnx fp32)"
    with pytest.raises(PaceEdgeError, match=r"^backend tensorrt: no TensorRT plan in .* \(it "
                                            r"has: onnx fp32\); run pace-edge build-engine on "
                                            r"the device$"):
        select_backend(export, "trt")


def test_explicit_backend_not_installed(with_plan: Path, available: set[str]) -> None:
    available.difference_update({"openvino", "tensorrt"})
    with pytest.raises(PaceEdgeError) as exc:
        select_backend(with_plan, "openvino")
    assert str(exc.value) == ("backend openvino: the openvino package is not installed "
                              "(pip install 'pace-edge[device]')")
    with pytest.raises(PaceEdgeError) as exc:
        select_backend(with_plan, "tensorrt")
    assert str(exc.value) == ("backend tensorrt: the tensorrt package is not installed (JetPack "
                              "or NVIDIA's tensorrt wheels; see pace-edge doctor); run "
                              "pace-edge build-engine on the device")
    available.update({"tensorrt"})
    available.discard("gpu")
    with pytest.raises(PaceEdgeError, match="^backend tensorrt: no NVIDIA GPU is visible"):
        select_backend(with_plan, "tensorrt")
    choice = select_backend(with_plan, "ort")  # aliases
    assert choice.backend == "onnxruntime" and choice.reason.startswith("onnxruntime: requested")


def test_unknown_backend(x86: Path) -> None:
    with pytest.raises(PaceEdgeError, match="unknown backend 'tpu'; choose from auto, "
                                            "onnxruntime, openvino, tensorrt, torch"):
        select_backend(x86, "tpu")


# --- precision ------------------------------------------------------------------------------------


def test_precision_picks_among_artefacts(tmp_path: Path, available: set[str]) -> None:
    export = make_export(tmp_path / "jetson", [
        ("model.onnx", "onnx", "fp32"), ("model_int8_qdq.onnx", "onnx-qdq", "int8"),
        ("engine_check_spectra.f32", "engine-check-spectra", "fp32"),
    ], precision="int8")
    assert select_backend(export).artefact.path == "model_int8_qdq.onnx"  # the export's own
    assert select_backend(export, precision="fp32").artefact.path == "model.onnx"
    with pytest.raises(PaceEdgeError, match=r"^no fp16 artefact in .* \(it has: onnx fp32, "
                                            r"onnx int8\)$"):
        select_backend(export, precision="fp16")
    with pytest.raises(PaceEdgeError, match="backend openvino: no int8 OpenVINO IR"):
        select_backend(export, "openvino", precision="int8")


# --- bundles, torch and paths ---------------------------------------------------------------------


def test_bundle_directory(tmp_path: Path, available: set[str]) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "model.json").write_text("{}")
    choice = select_backend(bundle)
    assert (choice.backend, choice.bundle, choice.artefact) == ("torch", bundle, None)
    assert choice.reason == "torch: a model bundle runs on PyTorch"
    with pytest.raises(PaceEdgeError, match="backend openvino: .* is a model bundle, not an "
                                            "export; run pace-edge export first"):
        select_backend(bundle, "openvino")
    with pytest.raises(PaceEdgeError, match="a bundle runs in fp32, not int8"):
        select_backend(bundle, precision="int8")
    available.discard("torch")
    with pytest.raises(PaceEdgeError, match="backend torch: the torch package is not installed"):
        select_backend(bundle)


def test_torch_on_an_export(tmp_path: Path, available: set[str]) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "model.json").write_text("{}")
    export = make_export(tmp_path / "e", X86, source_bundle=bundle)
    choice = select_backend(export, "pytorch")
    assert choice.backend == "torch" and choice.bundle == bundle
    assert select_backend(export).backend == "openvino"  # auto never falls back to torch
    gone = make_export(tmp_path / "g", X86, source_bundle=tmp_path / "gone")
    with pytest.raises(PaceEdgeError, match="source bundle .*gone is not here"):
        select_backend(gone, "torch")


def test_paths(tmp_path: Path) -> None:
    with pytest.raises(PaceEdgeError, match="does not exist"):
        select_backend(tmp_path / "nope")
    with pytest.raises(PaceEdgeError, match="neither an export directory"):
        select_backend(tmp_path)


def test_tampered_export_is_refused_before_choosing(x86: Path) -> None:
    (x86 / "model.onnx").write_bytes(b"something else")
    with pytest.raises(BundleError, match=r"model\.onnx: sha256 .* altered"):
        select_backend(x86)


def test_gpu_status_without_cuda() -> None:
    if select.package_available("cuda"):
        pytest.skip("cuda-python is installed here")
    ok, why = select.gpu_status()
    assert not ok and "cuda-python is not installed" in why


# --- end to end on a real export ------------------------------------------------------------------


def test_load_runner_follows_the_selection(tmp_path_factory, monkeypatch) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    from runtime_exports import runtime_export

    from pace_edge.runtimes import load_runner

    export = runtime_export(tmp_path_factory, "x86", "dynamic")
    with load_runner(export) as runner:
        assert runner.name == "openvino" and "OpenVINO IR model.xml" in runner.reason
        assert runner.describe()["reason"] == runner.reason
    real = select.package_available
    monkeypatch.setattr(select, "package_available", lambda name: name != "openvino" and real(name))
    with load_runner(export) as runner:
        assert runner.name == "onnxruntime"
        assert "openvino: the openvino package is not installed" in runner.reason
