"""The command line: help, user errors as one line with exit 2, and the main sub-commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pace_edge.cli.main import main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pace_edge.cli.main", *args],
        capture_output=True, text=True, timeout=300,
    )


def test_help_lists_every_command() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    for command in ("demo", "train", "evaluate", "predict", "info"):
        assert command in out.stdout
        sub = run_cli(command, "--help")
        assert sub.returncode == 0 and "usage: pace-edge " + command in sub.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--data", "/nonexistent/data", "--out", "OUT"], "/nonexistent/data"),
        (["evaluate", "--model", "/nonexistent/model", "--data", "x"], "/nonexistent/model"),
        (["info", "/nonexistent/model"], "not a model bundle"),
        (["train", "--data", "DATA", "--out", "OUT", "--preprocess", "frobnicate"],
         "frobnicate"),
        (["train", "--data", "DATA", "--out", "OUT", "--label-smoothing", "1.5"],
         "label smoothing must be in [0, 1)"),
        (["train", "--data", "DATA", "--out", "OUT", "--weight-decay", "-1"],
         "weight decay must be non-negative"),
        (["train", "--data", "DATA", "--out", "OUT", "--select-folds", "3", "--no-refit"],
         "k-fold selection needs the refit"),
    ],
)
def test_user_errors_are_one_line_without_traceback(
    tmp_path: Path, args: list[str], message: str
) -> None:
    from pace_edge.data import make_synthetic, write_npy_folder

    write_npy_folder(tmp_path / "data", make_synthetic(n_per_class=5, seed=0))
    args = [a.replace("DATA", str(tmp_path / "data")).replace("OUT", str(tmp_path / "out"))
            for a in args]
    out = run_cli(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pace-edge ") and message in lines[0]


def test_bad_option_value_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", "x", "--out", "y", "--epochs", "0"])
    assert exc.value.code == 2
    assert "positive" in capsys.readouterr().err


def test_evaluate_predict_info(synthetic_bundle: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    from pace_edge.data import make_synthetic, write_npy_folder

    test = make_synthetic(n_per_class=6, seed=99)
    data_dir = write_npy_folder(tmp_path / "data", test, test)
    assert main(["evaluate", "--model", str(synthetic_bundle), "--data", str(data_dir),
                 "--json", "--confusion-png", str(tmp_path / "c.png")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total"] == 18 and len(report["confusion"]) == 3
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"

    # predict: a two-column file on a denser, shifted axis is resampled onto the model axis
    axis = np.linspace(390.0, 1810.0, 1500)
    spectrum = np.interp(axis, test.axis, test.x[0])
    good = tmp_path / "good.txt"
    np.savetxt(good, np.column_stack([axis, spectrum]), delimiter="\t")
    bad = tmp_path / "bad.txt"
    bad.write_text("1,2\n3,nan\n")
    code = main(["predict", "--model", str(synthetic_bundle), "--json", str(good), str(bad)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 2  # one file could not be read (a user error), the good one was classified
    assert lines[0]["class"] in test.classes
    assert sum(lines[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert "error" in lines[1] and "bad.txt" in lines[1]["error"]

    assert main(["info", str(synthetic_bundle)]) == 0
    assert "weights and model.json verified" in capsys.readouterr().out


@pytest.mark.parametrize("flag, expected", [([], True), (["--no-precise-bn"], False)])
def test_train_records_precise_bn_choice(tmp_path: Path, flag: list[str],
                                         expected: bool) -> None:
    from pace_edge.data import make_synthetic, write_npy_folder

    data = write_npy_folder(tmp_path / "data", make_synthetic(n_per_class=8, seed=2))
    out = tmp_path / "model"
    assert main(["train", "--data", str(data), "--out", str(out), "--preset", "tiny",
                 "--epochs", "2", "--batch-size", "8", *flag]) == 0
    recipe = json.loads((out / "model.json").read_text())["training"]["recipe"]
    assert recipe["precise_bn"] is expected
