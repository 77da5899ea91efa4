"""The "unknown" verdict and calibrated probabilities survive export: every runtime (PyTorch,
ONNX Runtime and OpenVINO, FP32 and INT8) accepts and refuses the same spectra."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pace_edge.cli.main import main

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")


def _other_spectra(axis: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Raman-like spectra with bands where no training class has them."""
    rng = np.random.default_rng(seed)
    t = (axis - axis[0]) / (axis[-1] - axis[0])
    x = 600 + 100 * t + rng.normal(0, 5, (n, axis.size))
    for i in range(n):
        for _ in range(6):
            x[i] += rng.uniform(300, 900) * np.exp(-0.5 * ((t - rng.uniform()) / 0.01) ** 2)
    return x


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from pace_edge.data import load_dataset, make_synthetic, write_npy_folder
    from pace_edge.model import preset
    from pace_edge.preprocess import Pipeline
    from pace_edge.train import Recipe
    from pace_edge.train.bundle_training import train_bundle

    root = tmp_path_factory.mktemp("trust-export")
    folder = write_npy_folder(root / "data", make_synthetic(n_per_class=100, seed=3),
                              make_synthetic(n_per_class=20, seed=4))
    train_bundle(load_dataset(folder), preset("tiny", 3),
                 Recipe(epochs=30, batch_size=32, lr=3e-3, seed=0),
                 Pipeline.from_spec("normalize:snv"), out=root / "bundle")
    return folder, root / "bundle"


@pytest.fixture(scope="module")
def exports(trained: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, Path]:
    folder, bundle = trained
    root = tmp_path_factory.mktemp("trust-exports")
    out = {"fp32": root / "fp32", "int8": root / "int8"}
    assert main(["export", "--model", str(bundle), "--target", "x86", "--out",
                 str(out["fp32"])]) == 0
    assert main(["export", "--model", str(bundle), "--target", "x86", "--precision", "int8",
                 "--calib", str(folder), "--eval", str(folder), "--force", "--out",
                 str(out["int8"])]) == 0
    return out


def test_manifest_carries_the_detector_and_report_shows_calibration(exports) -> None:
    manifest = json.loads((exports["int8"] / "manifest.json").read_text())
    trust = manifest["trust"]
    assert trust["features_output"] == "ood_features"
    assert trust["detector"]["threshold"] > 0 and trust["temperature"] > 0
    assert {r["artefact"] for r in trust["features_parity"]} == {"model.xml", "model.onnx"}
    evaluation = trust["evaluation"]
    assert evaluation[0]["model"] == "PyTorch FP32"
    assert all(0 <= r["ece_after"] <= 1 and 0 <= r["ece_before"] <= 1 for r in evaluation)
    report = (exports["int8"] / "report.md").read_text()
    assert "ECE before" in report and "unknown" in report


def test_every_runtime_gives_the_same_verdicts(trained, exports) -> None:
    from pace_edge.data import load_dataset
    from pace_edge.runtimes import load_runner
    from pace_edge.trust.ood import auroc

    folder, bundle = trained
    test = load_dataset(folder, split="test")
    x = np.concatenate([test.x, _other_spectra(test.axis, 60, seed=9),
                        np.ones((2, test.axis.size))])
    n_in = len(test.x)
    verdicts = {}
    with load_runner(bundle, backend="torch", threads=1) as r:
        verdicts["torch"] = r.judge(x, test.axis)
    for precision, path in exports.items():
        for backend in ("onnxruntime", "openvino"):
            with load_runner(path, backend=backend, threads=1) as r:
                verdicts[f"{backend} {precision}"] = r.judge(x, test.axis)
    ref = verdicts["torch"]
    assert ref.reasons[-2:] == ["flat", "flat"]
    assert (~ref.accepted[n_in:-2]).mean() > 0.5  # the detector refuses most other spectra
    ref_auroc = auroc(ref.scores[:n_in], ref.scores[n_in:-2])
    for name, v in verdicts.items():
        if name.endswith("fp32"):  # the same graph: the same verdict on every spectrum
            assert v.reasons == ref.reasons, name
            np.testing.assert_allclose(v.scores[:-2], ref.scores[:-2], rtol=1e-3)
            np.testing.assert_allclose(v.probabilities, ref.probabilities, atol=1e-5)
        else:  # INT8: near-threshold spectra may flip; ranking quality holds
            assert (v.accepted == ref.accepted).mean() >= 0.95, name
            assert abs(auroc(v.scores[:n_in], v.scores[n_in:-2]) - ref_auroc) <= 0.01, name


def test_runner_of_an_export_without_the_output_is_refused(trained, exports, tmp_path) -> None:
    """A manifest promising the detector's output over a graph without it fails to load."""
    import shutil

    from pace_edge.errors import BundleError
    from pace_edge.export.manifest import load_manifest, write_manifest
    from pace_edge.runtimes import load_runner

    copy = tmp_path / "x"
    shutil.copytree(exports["fp32"], copy)
    manifest = load_manifest(copy)
    manifest.trust["features_output"] = "missing_output"
    write_manifest(copy, manifest)
    with pytest.raises(BundleError, match="missing_output"):
        load_runner(copy, backend="onnxruntime", threads=1)


def test_benchmark_times_what_the_stream_asks_for(trained, exports, tmp_path) -> None:
    """With a detector, every timed call returns the logits AND the features, PyTorch's
    included (an export computes its features output on every call anyway); PyTorch projects
    like the graph does, in float32, to the reference's precision."""
    from pace_edge.benchmark.latency import deployed_call
    from pace_edge.bundle import Bundle
    from pace_edge.runtimes import load_runner
    from pace_edge.trust import bundle_trust

    _, bundle_dir = trained
    detector = bundle_trust(Bundle.load(bundle_dir))[1]
    assert detector is not None
    for path in (bundle_dir, exports["int8"]):
        runner = load_runner(path)
        try:
            x = np.random.default_rng(0).normal(size=(3, runner.input_length)).astype(np.float32)
            logits, z = deployed_call(runner, x)()
            assert logits.shape == (3, 3) and z.shape == (3, detector.dim)
            assert np.array_equal(z, runner.infer_with_features(x)[1])
        finally:
            runner.close()
    torch_runner = load_runner(bundle_dir)
    try:
        x = np.random.default_rng(1).normal(size=(4, torch_runner.input_length))
        x = x.astype(np.float32)
        _, z = torch_runner.infer_with_features(x)
        reference = detector.project(torch_runner._classifier.logits_and_features(x)[1])
        np.testing.assert_allclose(z, reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max())
    finally:
        torch_runner.close()


def test_int8_openvino_keeps_the_whitening_weights_in_int8(exports) -> None:
    """The d × d whitening of an INT8 IR is stored as INT8 with a scale per row (4× fewer
    bytes read per call); the FP32 IR keeps it float. Verdict parity is checked at export."""
    import openvino as ov

    def whitening_weights(xml: Path) -> str:
        model = ov.Core().read_model(str(xml))
        result = next(r for r in model.get_results()
                      if "ood_features" in r.get_output_tensor(0).get_names())
        add = result.input_value(0).get_node()
        matmul = next(v.get_node() for v in add.input_values()
                      if v.get_node().get_type_name() == "MatMul")
        node = matmul.input_value(1).get_node()
        while node.get_type_name() != "Constant":
            node = node.input_value(0).get_node()
        return node.get_element_type().get_type_name()

    assert whitening_weights(exports["int8"] / "model.xml") == "i8"
    assert whitening_weights(exports["fp32"] / "model.xml") == "f32"
    manifest = json.loads((exports["int8"] / "manifest.json").read_text())
    ov_row = next(r for r in manifest["trust"]["features_parity"]
                  if r["artefact"] == "model.xml")
    assert ov_row["same_verdict"] == 1.0
