"""TensorRT on an NVIDIA GPU: build, check and run plans with the production code paths.

``pace-edge build-engine`` builds each plan (TensorRT Python API, TF32 cleared) and gates it on
the export's engine check; the production :class:`TensorRTRunner` (cuda-python buffers, no
torch) then runs it on spectra the check never saw, compared with ONNX Runtime on the same ONNX
under the same per-precision tolerance (:data:`pace_edge.export.trt_verify.TOLERANCES`).
Marked ``gpu``; skipped where ``tensorrt`` or a GPU is missing (always, where this project is
developed: none of these has run there). ``scripts/gpu-check`` runs them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from _trt_helpers import GPU_REASON, tensorrt_gpu_available  # noqa: E402

from pace_edge.cli.main import main  # noqa: E402
from pace_edge.export.engine_record import read_engine_record  # noqa: E402
from pace_edge.export.parity import compare, onnx_logits, parity_inputs  # noqa: E402
from pace_edge.export.trt_plan import read_header  # noqa: E402
from pace_edge.export.trt_verify import TOLERANCES  # noqa: E402

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not tensorrt_gpu_available(), reason=GPU_REASON)]
L = 1024


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A PACE bundle of 1024 points exported for jetson in fp32, fp16 and int8."""
    from test_export_onnx import make_bundle

    from pace_edge.data import SpectralDataset, write_npy_folder

    root = tmp_path_factory.mktemp("trt-gpu")
    bundle = make_bundle(root / "bundle", L)
    calib = SpectralDataset(parity_inputs(L, 200, seed=9).astype(np.float64),
                            np.arange(200) % len(bundle.classes), bundle.axis,
                            list(bundle.classes), source="synthetic")
    write_npy_folder(root / "calib", calib)
    common = ["export", "--model", str(root / "bundle"), "--target", "jetson",
              "--parity-samples", "128"]
    assert main([*common, "--precision", "fp32", "--out", str(root / "fp32")]) == 0
    assert main([*common, "--out", str(root / "fp16")]) == 0  # the plain export: FP16
    assert main([*common, "--calib", str(root / "calib"), "--out", str(root / "int8")]) == 0
    return {p: root / p for p in ("fp32", "fp16", "int8")}


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_build_engine_then_production_runner(exports: dict[str, Path], precision: str) -> None:
    from pace_edge.runtimes import load_runner

    export = exports[precision]
    before = (export / "manifest.json").read_bytes()
    assert main(["build-engine", "--export", str(export)]) == 0
    assert (export / "manifest.json").read_bytes() == before  # recorded beside it, not in it
    header = read_header(export / "model.plan")
    assert header.precision == precision and header.cleared_flags == ["TF32"]
    assert read_engine_record(export).check["passed"] is True
    source = export / header.source_onnx
    x = parity_inputs(L, 300, seed=5)  # not the spectra the engine check used
    with load_runner(export, backend="tensorrt") as runner:
        assert runner.name == "tensorrt" and runner.precision == precision
        logits = runner.infer(x)
        one = runner.infer(x[:1])  # batch 1, the profile's minimum
    tol = TOLERANCES[precision]
    result = compare(onnx_logits(source, x), logits, artefact="model.plan",
                     runtime="tensorrt", precision=precision, max_abs=tol.max_abs,
                     min_agreement=tol.min_agreement)
    assert result.passed, result.describe()
    np.testing.assert_allclose(one, logits[:1], rtol=0, atol=tol.max_abs or 0.5)


def test_stale_plan_is_refused_not_rebuilt(exports: dict[str, Path], tmp_path: Path) -> None:
    """A plan recorded as built by another TensorRT is refused with the rebuild command; the
    runner writes nothing."""
    import shutil

    from pace_edge.export.engine_record import EngineRecord, write_engine_record
    from pace_edge.export.trt_plan import PlanMismatch, read_plan, write_plan
    from pace_edge.runtimes import load_runner

    export = tmp_path / "copied"
    shutil.copytree(exports["fp16"], export)
    if not (export / "model.plan").exists():
        assert main(["build-engine", "--export", str(export)]) == 0
    header, engine = read_plan(export / "model.plan")
    header.tensorrt_version = "8.6.1"  # as if built on another machine, then copied here
    write_plan(export / "model.plan", engine, header)
    check = read_engine_record(export).check
    write_engine_record(export, EngineRecord.for_plan(export / "model.plan", header, check))
    before = {p.name: p.read_bytes() for p in export.iterdir()}
    with pytest.raises(PlanMismatch, match="rebuild it with pace-edge build-engine --export"):
        load_runner(export, backend="tensorrt")
    assert {p.name: p.read_bytes() for p in export.iterdir()} == before
