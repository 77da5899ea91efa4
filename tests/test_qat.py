"""Quantisation-aware fine-tuning: the export's rounding rules, parity with the FP32 parent on a
tiny SYNTHETIC model, what the bundle records, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from pace_edge.bundle import Bundle  # noqa: E402
from pace_edge.data import load_dataset  # noqa: E402
from pace_edge.export.onnx_graph import export_onnx  # noqa: E402
from pace_edge.export.parity import onnx_logits, torch_logits  # noqa: E402
from pace_edge.export.quantize import select_calibration  # noqa: E402
from pace_edge.export.quantize.criterion import Criterion  # noqa: E402
from pace_edge.export.quantize.qdq import QdqQuantizer  # noqa: E402
from pace_edge.train.qat import (  # noqa: E402
    QatOptions,
    fake_quant_act,
    fake_quant_weight,
    qat_finetune,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from factories import train_synthetic

    return train_synthetic(tmp_path_factory.mktemp("qat"), seed=5, per_class=60,
                           test_per_class=20, epochs=30)


def test_fake_quantisation_follows_the_export_rules():
    w = torch.randn(6, 4, 3) * torch.arange(1, 7).view(6, 1, 1)
    q = fake_quant_weight(w)
    scale = w.abs().flatten(1).amax(1) / 127  # per output channel, zero point 0
    steps = q / scale.view(6, 1, 1)
    assert torch.allclose(steps, steps.round(), atol=1e-3)
    assert steps.abs().max() <= 127 + 1e-3 and (steps.abs().flatten(1).amax(1) > 126.9).all()
    x = torch.linspace(-3, 3, 101)
    qa = fake_quant_act(x, 2.0)  # clipped to the range, symmetric steps of 2/127
    assert qa.max() <= 2.0 + 1e-6 and qa.min() >= -128 * 2 / 127 - 1e-6
    assert torch.allclose(qa / (2 / 127), (qa / (2 / 127)).round(), atol=1e-4)
    # straight-through: gradients flow inside the range
    w.requires_grad_(True)
    fake_quant_weight(w).sum().backward()
    assert w.grad is not None and torch.all(w.grad == 1)


def test_qat_reaches_parity_with_its_fp32_parent_and_is_recorded(trained, tmp_path: Path):
    folder, bundle_dir = trained
    parent = Bundle.load(bundle_dir)
    data = load_dataset(folder)
    result = qat_finetune(parent, data, QatOptions(epochs=2, seed=0))
    record = result.bundle.training["qat"]
    assert record is result.record
    assert record["options"]["epochs"] == 2 and len(record["history"]) == 2
    assert record["parent_weights_sha256"] and record["spectra"] > record["holdout_spectra"] > 0
    assert record["holdout_agreement_int8_after"] == 1.0
    # the fine-tuned bundle saves, loads and keeps the record
    saved = Bundle.load(result.bundle.save(tmp_path / "qat-bundle"))
    assert saved.training["qat"]["holdout_agreement_int8_after"] == 1.0
    # its INT8 export (every layer INT8) meets the criterion against the FP32 PARENT on the
    # export's held-out training spectra
    cal = select_calibration(saved, load_dataset(folder), 96, 0)
    fp32 = export_onnx(saved, tmp_path / "fp32.onnx")
    quantizer = QdqQuantizer(fp32, cal, "percentile", tmp_path)
    quantizer.write(tmp_path / "int8.onnx", [])
    verdict = Criterion().judge(torch_logits(parent, cal.holdout),
                                onnx_logits(tmp_path / "int8.onnx", cal.holdout),
                                cal.holdout_labels)
    assert verdict.met and verdict.disagreements == 0, verdict.describe()


def test_qat_is_deterministic(trained):
    folder, bundle_dir = trained
    parent = Bundle.load(bundle_dir)
    runs = [qat_finetune(parent, load_dataset(folder), QatOptions(epochs=1, seed=3))
            for _ in range(2)]
    for key, value in runs[0].bundle.weights.items():
        assert np.array_equal(value, runs[1].bundle.weights[key]), key
    assert any(not np.array_equal(v, parent.weights[k])
               for k, v in runs[0].bundle.weights.items())  # it did change the weights


def test_int8_export_with_qat_records_it_and_judges_against_the_parent(trained, tmp_path: Path):
    from pace_edge.export import ExportOptions, run_target

    folder, bundle_dir = trained
    parent = Bundle.load(bundle_dir)
    result = run_target(parent, tmp_path, "onnx", ExportOptions(
        precision="int8", calib=folder, calib_size=96, qat=1))
    cal = result.calibration
    assert cal["qat"]["options"]["epochs"] == 1 and cal["qat"]["tensors_sha256"]
    assert cal["met"] and cal["verdict"]["disagreements"] == 0
    # the criterion's reference is the parent: its logits on the held-out spectra
    held = select_calibration(parent, load_dataset(folder), 96, 0).holdout
    parent_int8 = onnx_logits(tmp_path / "model.onnx", held)
    assert Criterion().judge(torch_logits(parent, held), parent_int8).disagreements == 0


def test_qat_export_keeps_the_unknown_detector(tmp_path: Path):
    """A bundle with an "unknown" detector exports with --qat: the fine-tuned bundle keeps the
    parent's detector arrays, and the export adds and checks the features output."""
    from factories import train_synthetic

    from pace_edge.export import ExportOptions
    from pace_edge.export.exporter import export_bundle
    from pace_edge.model.pace import TRUST_PREFIX

    folder, bundle_dir = train_synthetic(tmp_path / "trained", seed=5, per_class=60,
                                         test_per_class=20, epochs=30, calibration_fraction=0.1)
    parent = Bundle.load(bundle_dir)
    assert any(k.startswith(TRUST_PREFIX) for k in parent.weights)  # the recipe fits one
    result = qat_finetune(parent, load_dataset(folder), QatOptions(epochs=1, seed=0))
    for key in (k for k in parent.weights if k.startswith(TRUST_PREFIX)):
        assert np.array_equal(result.bundle.weights[key], parent.weights[key]), key
    assert result.record["detector"] == "the parent's (not refitted)"
    manifest = export_bundle(parent, "onnx", tmp_path / "export", ExportOptions(
        precision="int8", calib=folder, calib_size=96, qat=1)).manifest
    assert manifest.trust["features_output"] == "ood_features"
    (row,) = manifest.trust["features_parity"]
    assert row["same_verdict"] >= 0.95


def test_a_benchmark_build_is_reused_only_for_the_same_fine_tuning(trained, tmp_path: Path):
    """benchmark and rightsize reuse an export in their work folder only when it was made with
    the same quantisation-aware epochs (a post-training build is not a fine-tuned one)."""
    from pace_edge.benchmark.builds import BuildSpec, export_build, qat_epochs
    from pace_edge.export.manifest import load_manifest

    folder, bundle_dir = trained
    spec = BuildSpec("onnx", "int8")
    tuned = export_build(bundle_dir, spec, tmp_path, calib=folder, qat=1)
    assert not tuned.reused and qat_epochs(load_manifest(tuned.path)) == 1
    assert export_build(bundle_dir, spec, tmp_path, calib=folder, qat=1).reused
    plain = export_build(bundle_dir, spec, tmp_path, calib=folder)
    assert not plain.reused and qat_epochs(load_manifest(plain.path)) == 0
