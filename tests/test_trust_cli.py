"""Trust through the command line: the default recipe normalises and holds calibration
spectra out, `--preprocess none` warns, evaluate and predict report the verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pace_edge.cli.main import main
from pace_edge.train import Recipe
from pace_edge.train.bundle_training import calibration_split


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pace_edge.data import make_synthetic, write_npy_folder

    root = tmp_path_factory.mktemp("trust-cli")
    return write_npy_folder(root / "data", make_synthetic(n_per_class=40, seed=5),
                            make_synthetic(n_per_class=10, seed=6))


@pytest.fixture(scope="module")
def bundle(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trust-cli-bundle") / "model"
    assert main(["train", "--data", str(data), "--out", str(out), "--preset", "tiny",
                 "--epochs", "4", "--accept-rate", "0.95"]) == 0
    return out


def test_default_recipe_normalises_and_holds_calibration_spectra_out(bundle: Path) -> None:
    meta = json.loads((bundle / "model.json").read_text())
    assert [s["name"] for s in meta["preprocessing"]] == ["resample", "normalize"]
    assert meta["preprocessing"][-1]["method"] == "snv"
    split = meta["training"]["data"]["split"]
    assert split["calibration"] == 12  # 10 % of 40 per class
    assert split["train"] + split["validation"] + split["calibration"] == 120
    trust = meta["training"]["trust"]
    assert trust["detector"]["accept_rate"] == 0.95
    assert trust["calibration"]["spectra"] == 12 and trust["temperature"] > 0


def test_calibration_split_is_stratified_disjoint_and_seeded() -> None:
    y = np.repeat([0, 1, 2], [50, 30, 20])
    fit, cal = calibration_split(y, Recipe(seed=3))
    assert not set(fit) & set(cal) and len(fit) + len(cal) == 100
    assert np.bincount(y[cal]).tolist() == [5, 3, 2]
    assert np.array_equal(cal, calibration_split(y, Recipe(seed=3))[1])
    assert not np.array_equal(cal, calibration_split(y, Recipe(seed=4))[1])
    assert len(calibration_split(y, Recipe(calibration_fraction=0.0))[1]) == 0


def test_calibration_split_keeps_each_group_on_one_side() -> None:
    y = np.repeat([0, 1, 2], 40)
    groups = np.array([f"p{i // 4}" for i in range(len(y))])  # 4 spectra per patient
    fit, cal = calibration_split(y, Recipe(seed=0, calibration_fraction=0.2), groups)
    assert len(cal) and not set(groups[fit]) & set(groups[cal])
    assert set(y[cal]) == {0, 1, 2} and len(cal) % 4 == 0


def test_no_normalisation_warns_about_the_gain(data: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "m"), "--preset",
                 "tiny", "--epochs", "1", "--preprocess", "none"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "gain" in err
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert [s["name"] for s in meta["preprocessing"]] == ["resample"]


def test_evaluate_reports_acceptance_and_calibration_error(bundle: Path, data: Path,
                                                           capsys) -> None:
    assert main(["evaluate", "--model", str(bundle), "--data", str(data), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    trust = out["trust"]
    assert trust["spectra"] == 30 and 0 <= trust["accept_rate"] <= 1
    assert {"ece_before", "ece_after", "refused", "temperature"} <= set(trust)
    assert len(out["predictions"]) == 30
    refused = [p for p in out["predictions"] if not p["accepted"]]
    assert all(p["reason"] and "score" in p and p["class"] for p in refused)
    assert main(["evaluate", "--model", str(bundle), "--data", str(data)]) == 0
    assert "expected calibration error" in capsys.readouterr().out


def test_predict_refuses_a_flat_and_a_dark_spectrum(bundle: Path, data: Path,
                                                    tmp_path: Path, capsys) -> None:
    axis = np.load(data / "wavenumbers.npy")
    good = np.load(data / "test_x.npy")[0]
    rng = np.random.default_rng(0)
    files = []
    for name, y in (("good", good), ("flat", np.full(axis.size, 5.0)),
                    ("dark", 100 + rng.normal(0, 2, axis.size))):
        path = tmp_path / f"{name}.csv"
        np.savetxt(path, np.column_stack([axis, y]), delimiter=",")
        files.append(str(path))
    main(["predict", "--model", str(bundle), "--json", *files])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line.get("reason") for line in lines[1:]] == ["flat", "low_signal"]
    assert all(line["accepted"] is False and line["score"] is None for line in lines[1:])
    assert "accepted" in lines[0] and lines[0]["class"]


def test_info_shows_the_recorded_trust(bundle: Path, capsys) -> None:
    assert main(["info", str(bundle)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("  trust"))
    recorded = json.loads((bundle / "model.json").read_text())["training"]["trust"]
    assert f"threshold {recorded['detector']['threshold']:.4g}" in line
    assert f"calibrated on {recorded['calibration']['spectra']} held-out" in line
