"""Sample-aware work end to end: per-sample votes (evaluate --by-group, stream --vote), group
ids through train and the INT8 calibration hold-out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pace_edge.cli.main import main
from pace_edge.data import SpectralDataset, make_synthetic, write_npy_folder
from pace_edge.evaluate import GroupMetrics
from pace_edge.streaming.vote import Voter

CLASSES = ["A", "B", "C"]


def with_groups(data: SpectralDataset, per_group: int) -> SpectralDataset:
    """``data`` with consecutive spectra of a class grouped ``per_group`` at a time."""
    groups = np.empty(len(data), dtype=object)
    for c in range(len(data.classes)):
        members = np.flatnonzero(data.y == c)
        groups[members] = [f"{data.classes[c]}-{i // per_group}" for i in range(members.size)]
    return data.with_groups(groups.astype(str), "test groups")


# --- majority vote per group -----------------------------------------------------------------


def test_group_metrics_majority_vote_ties_and_mixed_labels() -> None:
    groups = np.array(["p1"] * 3 + ["p2"] * 4 + ["p3"] * 2 + ["p4"] * 3)
    y_true = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 1])
    y_pred = np.array([0, 0, 1, 1, 2, 1, 2, 2, 2, 1, 1, 1])
    m = GroupMetrics.from_labels(y_true, y_pred, groups, CLASSES)
    by = {v.group: v for v in m.votes}
    assert by["p1"].verdict == "A" and by["p1"].votes == {"A": 2, "B": 1} and by["p1"].correct
    assert by["p2"].verdict is None and by["p2"].tied == ["B", "C"] and not by["p2"].correct
    assert by["p3"].verdict == "C" and by["p3"].correct
    assert by["p4"].true == "C" and by["p4"].mixed_labels and by["p4"].verdict == "B"
    assert (m.correct, m.total, m.ties) == (2, 4, 1)
    assert [r["correct"] for r in m.per_class()] == [1, 0, 1]
    text = m.to_text()
    assert "accuracy 50.00% (2/4 samples)" in text
    assert "1 sample(s) tied between classes: no verdict, counted as not correct" in text
    assert "p2: true B, verdict tie B = C (B 2, C 2)" in text
    d = m.to_dict()
    assert d["ties"] == 1 and d["mixed_labels"] == 1 and len(d["groups"]) == 4
    assert [g["group"] for g in d["groups"]] == ["p1", "p2", "p3", "p4"]  # order of appearance


def test_evaluate_by_group(synthetic_bundle: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    from pace_edge.bundle import Bundle
    from pace_edge.evaluate.classifier import BundleClassifier

    test = with_groups(make_synthetic(n_per_class=9, seed=5), per_group=3)
    data_dir = write_npy_folder(tmp_path / "data", test, test)
    assert main(["evaluate", "--model", str(synthetic_bundle), "--data", str(data_dir),
                 "--json", "--by-group"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_group = report["by_group"]
    assert by_group["total"] == 9 and len(by_group["groups"]) == 9
    # every verdict is the majority of the model's own predictions for that sample
    bundle = Bundle.load(synthetic_bundle)
    predicted = BundleClassifier(bundle).predict_proba(test.x, test.axis).argmax(axis=1)
    for row in by_group["groups"]:
        members = np.flatnonzero(test.groups == row["group"])
        counts = np.bincount(predicted[members], minlength=3)
        winners = np.flatnonzero(counts == counts.max())
        expected = bundle.classes[winners[0]] if winners.size == 1 else None
        assert row["verdict"] == expected and row["spectra"] == 3
    assert by_group["correct"] == sum(g["correct"] for g in by_group["groups"])

    # text, with the ids from --groups instead (one sample per class: 3 samples)
    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"{test.classes[c]}\n" for c in test.y))
    assert main(["evaluate", "--model", str(synthetic_bundle), "--data", str(data_dir),
                 "--by-group", "--groups", str(ids)]) == 0
    out = capsys.readouterr().out
    assert "per sample (majority vote over each sample's spectra)" in out and "/3 samples" in out


def test_evaluate_by_group_user_errors(synthetic_bundle: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    test = make_synthetic(n_per_class=4, seed=5)
    data_dir = write_npy_folder(tmp_path / "data", test, test)
    assert main(["evaluate", "--model", str(synthetic_bundle), "--data", str(data_dir),
                 "--by-group"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--by-group needs group ids" in err[0]
    short = tmp_path / "short.txt"
    short.write_text("a\nb\n")
    assert main(["evaluate", "--model", str(synthetic_bundle), "--data", str(data_dir),
                 "--by-group", "--groups", str(short)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "short.txt: 2 group ids but" in err[0] and "12 spectra" in err[0]


# --- training ---------------------------------------------------------------------------------


def test_train_with_groups_records_a_group_aware_split(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    data = make_synthetic(n_per_class=12, seed=2)
    folder = write_npy_folder(tmp_path / "data", data)
    ids = tmp_path / "ids.npy"
    np.save(ids, with_groups(data, per_group=3).groups)  # 4 samples per class
    out = tmp_path / "model"
    assert main(["train", "--data", str(folder), "--out", str(out), "--preset", "tiny",
                 "--epochs", "2", "--batch-size", "8", "--groups", str(ids)]) == 0
    assert "12 groups (splits keep each group on one side)" in capsys.readouterr().out
    split = json.loads((out / "model.json").read_text())["training"]["data"]["split"]
    # whole samples are kept out for calibration; selection splits the others
    assert split["group_aware"] is True and split["calibration_groups"] >= 1
    assert split["groups"] + split["calibration_groups"] == 12
    assert sum(split["groups_per_part"]) == split["groups"]  # no group on both sides
    assert split["calibration"] == 3 * split["calibration_groups"]
    assert split["validation"] % 3 == 0  # whole samples of 3

    folds = tmp_path / "folds"
    assert main(["train", "--data", str(folder), "--out", str(folds), "--preset", "tiny",
                 "--epochs", "1", "--batch-size", "8", "--groups", str(ids),
                 "--select-folds", "3"]) == 0
    split = json.loads((folds / "model.json").read_text())["training"]["data"]["split"]
    assert split["group_aware"] is True
    assert sum(split["groups_per_part"]) + split["calibration_groups"] == 12


def test_train_groups_errors_are_one_line(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    data = make_synthetic(n_per_class=6, seed=2)
    folder = write_npy_folder(tmp_path / "data", data)
    cases = [
        ("bad.txt", "p1\np2\n", "bad.txt: 2 group ids but"),
        ("nan.csv", "group\np1\nnan\n" + "p2\n" * 16, "nan.csv: row 1: empty or NaN group id"),
        # one sample per class: validation cannot hold a class without emptying its training
        ("one.txt", "".join(f"{data.classes[c]}\n" for c in data.y), "come from one group"),
    ]
    for name, text, message in cases:
        (tmp_path / name).write_text(text)
        code = main(["train", "--data", str(folder), "--out", str(tmp_path / "m"), "--preset",
                     "tiny", "--epochs", "1", "--groups", str(tmp_path / name)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], err


# --- INT8 calibration hold-out -----------------------------------------------------------------


def test_calibration_holdout_keeps_samples_whole(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from pace_edge.bundle import Bundle
    from pace_edge.export.quantize import select_calibration
    from pace_edge.export.quantize.calibration import model_inputs
    from pace_edge.model import PACE, preset
    from pace_edge.preprocess import Pipeline

    data = with_groups(make_synthetic(n_per_class=40, seed=3), per_group=4)
    data.source = "synthetic (train)"
    torch.manual_seed(0)
    model = PACE(preset("tiny", 3))
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    pipeline = Pipeline.from_spec("normalize:snv").anchored(data.axis)
    Bundle(model.config, weights, data.classes, data.axis, pipeline, {}).save(tmp_path)
    bundle = Bundle.load(tmp_path)

    cal = select_calibration(bundle, data, size=60, seed=0)
    inputs = model_inputs(bundle, data)

    def rows(part: np.ndarray) -> np.ndarray:
        return np.array([int(np.flatnonzero((inputs == r).all(axis=1))[0]) for r in part])

    held, chosen = rows(cal.holdout), rows(cal.inputs)
    assert held.size and chosen.size == 60
    assert not set(data.groups[held]) & set(data.groups[chosen])
    # whole samples held out: every held group has all 4 of its spectra there
    assert all(np.sum(data.groups[held] == g) == 4 for g in set(data.groups[held]))
    assert set(data.y[held]) == {0, 1, 2}
    s = cal.summary
    assert s["group_aware"] is True
    assert s["groups"]["holdout"] == len(set(data.groups[held]))

    plain = select_calibration(bundle, data.with_groups(None, "none"), size=60, seed=0)
    assert plain.summary["group_aware"] is False


# --- stream --vote ----------------------------------------------------------------------------


def test_voter_skips_rejected_and_refused_and_reports_ties() -> None:
    out: list[dict] = []
    voter = Voter(out.append, 3)
    records = [
        {"seq": 1, "class": "A"},
        {"seq": 2, "rejected": "checksum"},
        {"seq": 3, "class": "B", "accepted": False, "reason": "out_of_distribution"},
        {"seq": 4, "class": "A", "accepted": True},
        {"seq": 5, "class": "B"},  # third accepted spectrum: a vote follows
        {"seq": 6, "class": "B"},
        {"seq": 7, "class": "C"},
        {"seq": 8, "class": "A"},  # B, C, A: a three-way tie
        {"seq": 9, "class": "C"},  # left over when the stream stops
    ]
    for r in records:
        voter(r)
    votes = [r for r in out if "vote" in r]
    assert [r for r in out if "vote" not in r] == records  # every record passes unchanged
    assert out.index(votes[0]) == 5 and out.index(votes[1]) == 9  # right after the window
    assert votes[0]["vote"] == "A" and votes[0]["votes"] == {"A": 2, "B": 1}
    assert votes[0]["seq"] == [1, 5] and votes[0]["spectra"] == 3 and votes[0]["complete"]
    assert votes[1]["vote"] is None and votes[1]["tied"] == ["A", "B", "C"]
    voter.flush()
    assert out[-1]["vote"] == "C" and out[-1]["spectra"] == 1 and out[-1]["complete"] is False
    assert voter.summary_text() == "votes over 3 accepted spectra: 3 (A 1, C 1; 1 tied)"
    voter.flush()  # nothing waiting: nothing written
    assert len(out) == len(records) + 3


def test_cli_stream_vote(synthetic_export: Path, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    from pace_edge.streaming.emulator import Emulator

    out = tmp_path / "out.jsonl"
    with Emulator("obp", seed=4) as emu:
        code = main(["stream", "--port", emu.port, "--protocol", "obp", "--model",
                     str(synthetic_export), "--laser-nm", "785", "--max-frames", "14",
                     "--output", str(out), "--threads", "1", "--backend", "onnxruntime",
                     "--vote", "5"])
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    spectra = [r for r in lines if "class" in r]
    votes = [r for r in lines if "vote" in r]
    assert len(spectra) == 14
    voting = [r for r in spectra if r["accepted"]]  # refused ("unknown") spectra do not vote
    sizes = [5] * (len(voting) // 5) + ([len(voting) % 5] if len(voting) % 5 else [])
    assert [v["spectra"] for v in votes] == sizes and len(sizes) >= 2
    assert [v["complete"] for v in votes] == [n == 5 for n in sizes]
    for i, v in enumerate(votes):
        window = voting[5 * i: 5 * i + v["spectra"]]
        classes = [r["class"] for r in window]
        counts = {c: classes.count(c) for c in set(classes)}
        assert v["votes"] == counts
        top = max(counts.values())
        leaders = sorted(c for c, k in counts.items() if k == top)
        assert v["vote"] == (leaders[0] if len(leaders) == 1 else None)
        assert v["seq"] == [window[0]["seq"], window[-1]["seq"]]
    assert f"votes over 5 accepted spectra: {len(sizes)}" in capsys.readouterr().err


# --- synthetic data with repeated samples ------------------------------------------------------


def test_grouped_synthetic_has_a_sample_effect() -> None:
    from pace_edge.data import make_grouped_synthetic

    d = make_grouped_synthetic(samples_per_class=4, spectra_per_sample=5, seed=7)
    assert len(d) == 60 and d.n_groups == 12
    assert all(len(set(d.y[d.groups == g])) == 1 for g in set(d.groups))  # one class a sample
    again = make_grouped_synthetic(samples_per_class=4, spectra_per_sample=5, seed=7)
    np.testing.assert_array_equal(d.x, again.x)
    other = make_grouped_synthetic(samples_per_class=4, spectra_per_sample=5, seed=8)
    assert not set(d.groups) & set(other.groups)
    # normalised spectra of one sample are closer than those of two samples of one class
    z = (d.x - d.x.mean(1, keepdims=True)) / d.x.std(1, keepdims=True)
    within, between = [], []
    for i in range(len(d)):
        for j in range(i + 1, len(d)):
            if d.y[i] == d.y[j]:
                dist = float(np.linalg.norm(z[i] - z[j]))
                (within if d.groups[i] == d.groups[j] else between).append(dist)
    assert np.mean(within) < 0.5 * np.mean(between)
