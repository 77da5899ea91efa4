"""Knowledge distillation: the loss against a hand-computed example, and train --distill-from."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from pace_edge.bundle import Bundle, sha256_file
from pace_edge.cli.main import main
from pace_edge.data import make_synthetic
from pace_edge.data.npy_folder import write_npy_folder
from pace_edge.train.distill import distillation_loss


def test_loss_matches_a_hand_computed_example() -> None:
    # Two classes, student logits (0, 0), teacher logits (2, 0), label 0, T = 2, alpha = 0.5.
    # Teacher at T = 2: softmax(1, 0) = (e / (e + 1), 1 / (e + 1)) = (0.731059, 0.268941);
    # student at T = 2: (0.5, 0.5).
    # KL = 0.731059 ln(0.731059 / 0.5) + 0.268941 ln(0.268941 / 0.5) = 0.110944;
    # times T² = 0.443776. Cross-entropy of (0, 0) against label 0 = ln 2 = 0.693147.
    # Loss = 0.5 * 0.443776 + 0.5 * 0.693147 = 0.568462.
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[2.0, 0.0]])
    labels = torch.tensor([0])
    loss = distillation_loss(student, teacher, labels, temperature=2.0, alpha=0.5)
    assert float(loss) == pytest.approx(0.568462, abs=1e-6)
    # alpha = 0: plain cross-entropy; alpha = 1: the soft term alone
    assert float(distillation_loss(student, teacher, labels, 2.0, 0.0)) == pytest.approx(
        math.log(2), abs=1e-7)
    assert float(distillation_loss(student, teacher, labels, 2.0, 1.0)) == pytest.approx(
        0.443776, abs=1e-6)


def test_soft_term_vanishes_when_the_student_matches_the_teacher() -> None:
    logits = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.4, -2.0]])
    labels = torch.tensor([2, 0])
    for t in (1.0, 4.0):
        assert float(distillation_loss(logits, logits.clone(), labels, t, 1.0)) == \
            pytest.approx(0.0, abs=1e-7)


def test_loss_is_a_batch_mean_and_pulls_towards_the_teacher() -> None:
    student = torch.zeros(4, 3, requires_grad=True)
    teacher = torch.tensor([[3.0, 0.0, 0.0]]).repeat(4, 1)
    loss = distillation_loss(student, teacher, torch.tensor([1, 1, 1, 1]), 4.0, 1.0)
    one = distillation_loss(student[:1], teacher[:1], torch.tensor([1]), 4.0, 1.0)
    assert float(loss.detach()) == pytest.approx(float(one.detach()), rel=1e-6)
    loss.backward()
    assert student.grad is not None and float(student.grad[0, 0]) < 0  # raise class 0


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("distil") / "data"
    return write_npy_folder(folder, make_synthetic(n_per_class=10, seed=3))


@pytest.fixture(scope="module")
def teacher(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("distil") / "teacher"
    assert main(["train", "--data", str(data_dir), "--out", str(out), "--preset", "tiny",
                 "--dim", "24", "--epochs", "2", "--preprocess", "normalize:snv",
                 "--quiet"]) == 0
    return out


def test_train_distill_from_records_the_teacher(data_dir: Path, teacher: Path,
                                                tmp_path: Path) -> None:
    out = tmp_path / "student"
    assert main(["train", "--data", str(data_dir), "--out", str(out), "--preset", "tiny",
                 "--dim", "8", "--depth", "1", "--epochs", "2", "--distill-from", str(teacher),
                 "--distill-temperature", "3", "--distill-alpha", "0.7", "--quiet"]) == 0
    student, parent = Bundle.load(out), Bundle.load(teacher)
    assert (student.config.dim, student.config.depth) == (8, 1)
    record = student.training["distillation"]
    assert record["teacher"]["weights_sha256"] == sha256_file(teacher / "weights.safetensors")
    assert record["teacher"]["model_json_sha256"] == sha256_file(teacher / "model.json")
    assert record["teacher"]["model"]["dim"] == 24
    assert (record["temperature"], record["alpha"]) == (3.0, 0.7)
    assert student.preprocessing == parent.preprocessing  # the teacher's, without --preprocess
    meta = json.loads((out / "model.json").read_text())
    assert meta["training"]["distillation"] == record


def test_distillation_changes_what_the_student_learns(data_dir: Path, teacher: Path,
                                                      tmp_path: Path) -> None:
    common = ["--data", str(data_dir), "--preset", "tiny", "--dim", "8", "--depth", "1",
              "--epochs", "2", "--preprocess", "normalize:snv", "--quiet"]
    assert main(["train", *common, "--out", str(tmp_path / "plain")]) == 0
    assert main(["train", *common, "--out", str(tmp_path / "taught"),
                 "--distill-from", str(teacher)]) == 0
    plain, taught = Bundle.load(tmp_path / "plain"), Bundle.load(tmp_path / "taught")
    assert plain.weights.keys() == taught.weights.keys()
    assert any((plain.weights[k] != taught.weights[k]).any() for k in plain.weights)


def test_distill_from_refuses_other_preprocessing_and_bad_settings(
        data_dir: Path, teacher: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    base = ["train", "--data", str(data_dir), "--out", str(tmp_path / "s"), "--preset", "tiny",
            "--epochs", "1", "--distill-from", str(teacher), "--quiet"]
    assert main([*base, "--preprocess", "normalize:vector"]) == 2
    assert "differs from the teacher's preprocessing" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([*base, "--distill-alpha", "1.5"])
    assert exc.value.code == 2
    assert "[0, 1]" in capsys.readouterr().err
    assert main([*base[:-3], "--distill-from", str(tmp_path / "nothing"), "--quiet"]) == 2
    assert not (tmp_path / "s").exists()
