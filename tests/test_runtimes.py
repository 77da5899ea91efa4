"""Runners: each backend against the PyTorch reference on the same export, batching, threads,
preprocessing, tampering, errors, the comparator and (on a GPU) TensorRT."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

from runtime_exports import (  # noqa: E402
    CLASSES,
    RAW_AXIS,
    raw_spectra,
    runtime_bundle,
    runtime_export,
)

from pace_edge.errors import BundleError, DataError, PaceEdgeError  # noqa: E402
from pace_edge.export.manifest import Artefact, load_manifest, write_manifest  # noqa: E402
from pace_edge.preprocess import Pipeline  # noqa: E402
from pace_edge.runtimes import Runner, load_runner  # noqa: E402
from pace_edge.runtimes.compare import compare_runners  # noqa: E402
from pace_edge.runtimes.select import package_available  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return runtime_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """x86 exports (OpenVINO IR + ONNX) with a dynamic and a fixed batch of 4."""
    return {
        "dynamic": runtime_export(tmp_path_factory, "x86", "dynamic"),
        "4": runtime_export(tmp_path_factory, "x86", "4"),
    }


@pytest.fixture(scope="module")
def reference(bundle: Path) -> Runner:
    runner = load_runner(bundle, threads=1)
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def raw() -> np.ndarray:
    return raw_spectra(11, seed=3)


def onnx_only(export: Path, out: Path) -> Path:
    """A copy of ``export`` whose manifest lists only its ONNX model (a valid, re-hashed one)."""
    out.mkdir()
    shutil.copy2(export / "model.onnx", out / "model.onnx")
    manifest = load_manifest(export)
    manifest.artefacts = [Artefact("model.onnx", "onnx", "fp32")]
    manifest.runtime = {k: v for k, v in manifest.runtime.items() if k == "onnxruntime"}
    write_manifest(out, manifest)
    return out


# --- parity with PyTorch ----------------------------------------------------------------------


@pytest.mark.parametrize("batch", ["dynamic", "4"])
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_fp32_parity_with_torch(exports, reference, raw, backend: str, batch: str) -> None:
    with load_runner(exports[batch], backend=backend, threads=1) as runner:
        assert runner.name == backend and runner.precision == "fp32"
        assert runner.classes == CLASSES == reference.classes
        np.testing.assert_array_equal(runner.axis, reference.axis)
        inputs = reference.preprocess(raw, RAW_AXIS)
        np.testing.assert_array_equal(runner.preprocess(raw, RAW_AXIS), inputs)
        expected, logits = reference.infer(inputs), runner.infer(inputs)
        assert logits.dtype == np.float32 and logits.shape == (11, 3)
        assert np.abs(logits - expected).max() <= 1e-4
        np.testing.assert_array_equal(logits.argmax(1), expected.argmax(1))
        probs = runner.predict_proba(raw, RAW_AXIS)
        np.testing.assert_allclose(probs, reference.predict_proba(raw, RAW_AXIS), atol=1e-5)
        np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)


def test_openvino_fp32_runs_in_f32(exports) -> None:
    with load_runner(exports["dynamic"], backend="openvino") as runner:
        info = runner.describe()
    assert info["inference_precision"] == "f32"  # not this CPU's bf16 default
    assert info["config"]["INFERENCE_PRECISION_HINT"] == "f32"


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_fixed_and_dynamic_batch(exports, reference, backend: str) -> None:
    x = reference.preprocess(raw_spectra(9, seed=5), RAW_AXIS)
    expected = reference.infer(x)
    with load_runner(exports["4"], backend=backend) as fixed, \
            load_runner(exports["dynamic"], backend=backend) as dynamic:
        assert fixed.max_batch == 4 and dynamic.max_batch is None
        for n in (1, 3, 4, 5, 9):  # padded, exact and chunked
            for runner in (fixed, dynamic):
                out = runner.infer(x[:n])
                assert out.shape == (n, 3)
                assert np.abs(out - expected[:n]).max() <= 1e-4
        assert fixed.infer(x[:0]).shape == (0, 3)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_repeated_calls_use_each_calls_own_data(exports, reference, backend: str) -> None:
    """Runners may reuse input buffers between calls: every call still sees only its own
    rows, and a returned array never changes when the runner is called again."""
    x = reference.preprocess(raw_spectra(12, seed=8), RAW_AXIS)
    expected = reference.infer(x)
    with load_runner(exports["dynamic"], backend=backend) as runner:
        seen = []
        for rows in (slice(0, 3), slice(3, 6), slice(6, 7), slice(7, 10), slice(10, 11)):
            out = runner.infer(x[rows])
            assert np.abs(out - expected[rows]).max() <= 1e-4
            seen.append((out, out.copy()))
        for out, copy in seen:
            np.testing.assert_array_equal(out, copy)


@pytest.mark.parametrize("backend, conv", [("openvino", "Convolution"),
                                           ("onnxruntime", "Conv")])
def test_profile_lists_the_executed_layers(exports, reference, backend: str, conv: str) -> None:
    x = reference.preprocess(raw_spectra(3, seed=2), RAW_AXIS)
    with load_runner(exports["dynamic"], backend=backend, threads=1) as runner:
        layers = runner.profile(x, iterations=5, warmup=1)
        np.testing.assert_allclose(runner.infer(x), reference.infer(x), atol=1e-4)  # unharmed
        with pytest.raises(DataError, match=r"model inputs must be \(n, 650\)"):
            runner.profile(x[:, :-1])
    ops = [layer.op for layer in layers]
    assert ops.count(conv) >= 2 and all(layer.ms >= 0 for layer in layers)
    assert [layer.ms for layer in layers] == sorted((layer.ms for layer in layers), reverse=True)
    with load_runner(exports["4"], backend=backend) as fixed:
        with pytest.raises(DataError, match="batches of 4"):
            fixed.profile(x)
    with pytest.raises(PaceEdgeError, match="not available for the torch backend"):
        reference.profile(x)


def test_torch_runner_on_export_runs_its_source_bundle(exports, bundle, reference, raw) -> None:
    with load_runner(exports["dynamic"], backend="torch") as runner:
        assert runner.name == "torch" and runner.artefact == bundle.resolve()
        assert "source bundle" in runner.reason
        x = reference.preprocess(raw, RAW_AXIS)
        np.testing.assert_array_equal(runner.infer(x), reference.infer(x))


def test_torch_runner_refuses_changed_source_bundle(exports, tmp_path: Path) -> None:
    moved = tmp_path / "export"
    shutil.copytree(exports["dynamic"], moved)
    manifest = load_manifest(moved)
    manifest.source["weights_sha256"] = "0" * 64
    write_manifest(moved, manifest)
    with pytest.raises(PaceEdgeError, match="different weights"):
        load_runner(moved, backend="torch")
    manifest.source["bundle"] = str(tmp_path / "gone")
    write_manifest(moved, manifest)
    with pytest.raises(PaceEdgeError, match="source bundle .*gone is not here"):
        load_runner(moved, backend="torch")


# --- threads, describe, lifecycle ---------------------------------------------------------------


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino", "torch"])
@pytest.mark.parametrize("threads", [1, 2])
def test_threads_are_honoured(exports, backend: str, threads: int) -> None:
    with load_runner(exports["dynamic"], backend=backend, threads=threads) as runner:
        info = runner.describe()
        assert info["threads"] == threads == runner.threads  # as the runtime reports it
        if backend == "torch":
            assert torch.get_num_threads() == threads
    if backend == "torch":
        assert torch.get_num_threads() == 1  # restored on close


def test_describe(exports) -> None:
    with load_runner(exports["4"]) as runner:
        info = runner.describe()
    assert {"backend", "precision", "artefact", "threads", "device"} <= set(info)
    assert info["backend"] == "openvino" and info["precision"] == "fp32"
    assert info["artefact"].endswith("model.xml") and info["max_batch"] == 4
    assert info["device"].startswith("CPU") and "OpenVINO IR" in info["reason"]
    json.dumps(info)  # printable as JSON (the stream CLI logs it)


def test_bad_threads(exports) -> None:
    with pytest.raises(PaceEdgeError, match="threads must be a positive number"):
        load_runner(exports["dynamic"], backend="onnxruntime", threads=0)


def test_close_and_context_manager(exports) -> None:
    runner = load_runner(exports["dynamic"], backend="onnxruntime")
    runner.warmup()
    with runner as same:
        assert same is runner
    with pytest.raises(PaceEdgeError, match="onnxruntime runner is closed"):
        runner.infer(np.zeros((1, runner.input_length), np.float32))
    runner.close()  # idempotent
    assert runner.describe()["backend"] == "onnxruntime"


# --- preprocessing and inputs ---------------------------------------------------------------


def test_preprocess_is_the_manifests_pipeline(exports, raw) -> None:
    manifest = load_manifest(exports["dynamic"])
    with load_runner(exports["dynamic"], backend="onnxruntime") as runner:
        x = runner.preprocess(raw, RAW_AXIS)
        expected, _ = Pipeline.from_list(manifest.input.preprocessing).apply(raw, RAW_AXIS)
        np.testing.assert_array_equal(x, expected.astype(np.float32))
        assert x.dtype == np.float32 and x.shape == (11, manifest.input.length)
        one = runner.preprocess(raw[0], RAW_AXIS)  # a single spectrum becomes (1, L)
        np.testing.assert_array_equal(one, x[:1])
        # Another instrument's axis (wider, denser) lands on the model grid too.
        other = np.linspace(380.0, 1820.0, 1500)
        y = np.stack([np.interp(other, RAW_AXIS, r) for r in raw])
        probs = runner.predict_proba(y, other)
        assert probs.shape == (11, 3)
        assert (probs.argmax(1) == runner.predict_proba(raw, RAW_AXIS).argmax(1)).mean() >= 0.8
        prediction = runner.predict(raw, RAW_AXIS)
        assert prediction.labels == [CLASSES[i] for i in prediction.indices]
        # Bound once per axis: an equal axis (a new array) reuses the bound pipeline.
        assert runner.bound_pipeline(RAW_AXIS.copy()) is runner.bound_pipeline(RAW_AXIS)
        assert runner.bound_pipeline(other) is not runner.bound_pipeline(RAW_AXIS)
        frozen = RAW_AXIS.copy()
        frozen.flags.writeable = False  # as a stream passes it
        assert runner.bound_pipeline(frozen) is runner.bound_pipeline(frozen)
        shifted = RAW_AXIS + 0.5  # a writeable axis is looked up by value every call
        first = runner.bound_pipeline(shifted)
        shifted += 0.25
        assert runner.bound_pipeline(shifted) is not first
        np.testing.assert_array_equal(runner.bound_pipeline(shifted).input_axis, shifted)


def test_bad_inputs_are_data_errors(exports, raw) -> None:
    with load_runner(exports["dynamic"], backend="openvino") as runner:
        with pytest.raises(DataError, match="axis has 699 points but spectra have 700"):
            runner.preprocess(raw, RAW_AXIS[:-1])
        bad = raw.copy()
        bad[2, 5] = np.nan
        with pytest.raises(DataError, match="row 2: non-finite"):
            runner.predict_proba(bad, RAW_AXIS)
        with pytest.raises(DataError, match="extends beyond the data.s axis"):
            runner.preprocess(raw[:, 100:], RAW_AXIS[100:])  # misses the model's low end
        with pytest.raises(DataError, match=r"model inputs must be \(n, 650\)"):
            runner.infer(raw)


def test_unresampled_axis_is_refused(tmp_path: Path, reference) -> None:
    """A pipeline that cannot map spectra onto the model's axis is a DataError, not garbage."""
    from pace_edge.runtimes.base import ModelSpec
    from pace_edge.runtimes.torch_runner import TorchRunner

    runner = TorchRunner(reference.bundle)
    runner.spec = ModelSpec(tuple(CLASSES), reference.axis, Pipeline([]))
    with pytest.raises(DataError, match="expects 650"):
        runner.preprocess(raw_spectra(2), RAW_AXIS)
    shifted = reference.axis + 5.0
    with pytest.raises(DataError, match="axis runs"):
        runner.preprocess(np.ones((1, shifted.size)), shifted)
    runner.close()


# --- integrity and precise errors -------------------------------------------------------------


@pytest.mark.parametrize(("backend", "victim"), [
    ("auto", "model.bin"),
    ("onnxruntime", "model.onnx"),
    ("openvino", "model.xml"),
    ("torch", "model.onnx"),
])
def test_tampered_export_is_refused(exports, tmp_path: Path, backend: str, victim: str) -> None:
    copy = tmp_path / "export"
    shutil.copytree(exports["dynamic"], copy)
    data = bytearray((copy / victim).read_bytes())
    data[len(data) // 2] ^= 1
    (copy / victim).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=rf"{victim}: sha256 .* altered"):
        load_runner(copy, backend=backend)


def test_backend_the_export_lacks(exports, tmp_path: Path) -> None:
    only = onnx_only(exports["dynamic"], tmp_path / "onnx-only")
    with pytest.raises(PaceEdgeError) as exc:
        load_runner(only, backend="openvino")
    assert str(exc.value) == f"backend openvino: no OpenVINO IR in {only} (it has: onnx fp32)"
    with pytest.raises(PaceEdgeError, match=r"^no fp16 artefact in .*\(it has: onnx fp32\)"):
        load_runner(only, precision="fp16")
    with pytest.raises(PaceEdgeError, match="backend tensorrt: no TensorRT plan .*build-engine"):
        load_runner(only, backend="tensorrt")
    with load_runner(only) as runner:  # auto: the ONNX model on ONNX Runtime
        assert runner.name == "onnxruntime"
        assert "no OpenVINO IR" in runner.reason


def test_bundle_runs_on_torch_only(bundle) -> None:
    with pytest.raises(PaceEdgeError, match="is a model bundle, not an export"):
        load_runner(bundle, backend="onnxruntime")
    with load_runner(bundle) as runner:
        assert runner.name == "torch" and runner.max_batch is None


# --- the comparator ---------------------------------------------------------------------------


def test_compare_runners(exports, reference, raw) -> None:
    with load_runner(exports["dynamic"], backend="onnxruntime") as ort, \
            load_runner(exports["4"], backend="openvino") as ov:
        result = compare_runners([reference, ort, ov], raw, RAW_AXIS)
        assert result.passed and result.samples == 11
        assert [r.backend for r in result.rows] == ["onnxruntime", "openvino"]
        for row in result.rows:
            assert row.max_abs_logit <= 1e-4 and row.agreement == 1.0
            assert row.max_abs_prob <= 1e-5 and row.max_abs_limit == 1e-4
        table = result.table()
        assert "torch fp32 bundle (reference)" in table and "model.xml" in table
        assert table.count(" ok") == 2
        strict = compare_runners([ort, ov], reference.preprocess(raw, RAW_AXIS), max_abs=0.0)
        assert strict.passed == (strict.rows[0].max_abs_logit == 0.0)
        with pytest.raises(PaceEdgeError, match="at least two"):
            compare_runners([ort], raw, RAW_AXIS)


# --- TensorRT (NVIDIA GPU) --------------------------------------------------------------------


def test_tensorrt_runner_without_tensorrt(exports) -> None:
    if package_available("tensorrt"):
        pytest.skip("tensorrt is installed here")
    from pace_edge.runtimes.tensorrt_runner import TensorRTRunner

    manifest = load_manifest(exports["dynamic"])
    with pytest.raises(PaceEdgeError) as exc:
        TensorRTRunner.from_export(manifest, Artefact("model.plan", "tensorrt-plan", "fp32"))
    assert str(exc.value) == ("backend tensorrt: the tensorrt package is not installed; run "
                              "pace-edge build-engine on the device")


# TensorRT on a GPU (build-engine, its check, the production runner): test_tensorrt_gpu.py
