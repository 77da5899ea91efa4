"""Training progress reports, the training state on disk, and ``pace-edge train --resume``."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pace_edge.bundle import Bundle
from pace_edge.cli.progress import TrainingProgress, clock
from pace_edge.data import make_synthetic, write_npy_folder
from pace_edge.errors import PaceEdgeError
from pace_edge.model import preset
from pace_edge.preprocess import Pipeline
from pace_edge.train import Recipe
from pace_edge.train.checkpoint import STATE_FILE, Checkpoint, TrainingInterrupted
from pace_edge.train.trainer import fit

PACE_EDGE = [sys.executable, "-m", "pace_edge.cli.main"]


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def select_row(epoch: int, epochs: int = 10) -> dict:
    return {"phase": "select", "epoch": epoch, "epochs": epochs, "loss": 1.0 / epoch,
            "val_accuracy": 0.5 + epoch / 100, "val_loss": 0.7, "best_epoch": epoch,
            "best_val_accuracy": 0.5 + epoch / 100}


def test_plain_lines_every_few_seconds_with_eta_and_each_phase_end() -> None:
    out, now = io.StringIO(), FakeClock()
    with TrainingProgress(stream=out, interval=5.0, now=now) as progress:
        for epoch in range(1, 11):  # 2 s an epoch
            now.t += 2.0
            progress.update(select_row(epoch))
        for epoch in range(1, 5):
            now.t += 3.0
            progress.update({"phase": "refit", "epoch": epoch, "epochs": 4, "loss": 0.2})
        now.t += 0.5
        progress.update({"phase": "precise-bn", "epoch": 1, "epochs": 1})
    lines = out.getvalue().splitlines()
    assert lines[0] == ("select 1/10  loss 1.000  val 51.0% (best 51.0% @1)  "
                        "elapsed 0:02, ~0:18 left in select")
    assert [line.split()[1] for line in lines] == ["1/10", "4/10", "7/10", "10/10", "1/4",
                                                   "3/4", "4/4", "1/1"]
    assert lines[3].endswith("elapsed 0:20, ~0:00 left in select")
    assert lines[4] == "refit 1/4  loss 0.200  elapsed 0:23, ~0:09 left in refit"
    assert lines[-1].startswith("precise-bn 1/1  elapsed 0:32")


def test_a_phase_cut_short_still_reports_where_it_ended() -> None:
    out, now = io.StringIO(), FakeClock()
    with TrainingProgress(stream=out, interval=60.0, now=now) as progress:
        for epoch in range(1, 4):
            now.t += 1.0
            progress.update(select_row(epoch, epochs=100))
    assert [line.split()[1] for line in out.getvalue().splitlines()] == ["1/100", "3/100"]


def test_quiet_prints_nothing_and_a_terminal_gets_a_bar() -> None:
    quiet = io.StringIO()
    with TrainingProgress(quiet=True, stream=quiet) as progress:
        progress.update(select_row(1))
    assert quiet.getvalue() == ""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    with TrainingProgress(stream=tty) as progress:
        for epoch in range(1, 4):
            progress.update(select_row(epoch, epochs=3))
    text = tty.getvalue()
    assert "\r" in text and "select: 100%" in text and "3/3" in text and "val 53.0%" in text


def test_clock() -> None:
    assert (clock(0), clock(75), clock(3725)) == ("0:00", "1:15", "1:02:05")


def small_data():
    data = make_synthetic(n_per_class=20, seed=3)
    x, axis = Pipeline.from_spec("baseline:asls,normalize:snv").apply(data.x, data.axis)
    return type(data)(x, data.y, axis, data.classes, data.source)


@pytest.mark.parametrize("recipe, stop_at", [
    (Recipe(epochs=6, batch_size=16, seed=2, augment=True), ("select", 2)),
    (Recipe(epochs=6, batch_size=16, seed=2, augment=True), ("refit", 2)),
    (Recipe(epochs=4, batch_size=16, seed=2, select_folds=3), ("select fold 2/3", 3)),
    (Recipe(epochs=4, batch_size=16, seed=2, select_folds=3), ("select fold 3/3", 4)),
    (Recipe(epochs=5, batch_size=16, refit=False), ("select", 3)),
], ids=["select", "refit", "fold", "end-of-folds", "no-refit"])
def test_resumed_training_equals_an_uninterrupted_run(tmp_path: Path, recipe: Recipe,
                                                      stop_at: tuple[str, int]) -> None:
    data, config = small_data(), preset("tiny", 3)
    reference = fit(data, config, recipe)
    seen: list[tuple[str, int]] = []
    checkpoint = Checkpoint(tmp_path, {"run": "a"}, every_s=1e9)
    with pytest.raises(TrainingInterrupted):
        fit(data, config, recipe, on_epoch=lambda row: seen.append((row["phase"], row["epoch"])),
            checkpoint=checkpoint, stop=lambda: bool(seen) and seen[-1] == stop_at)
    assert (tmp_path / STATE_FILE).is_file()
    resumed_checkpoint = Checkpoint(tmp_path, {"run": "a"})
    resumed_checkpoint.load()
    phases: list[str] = []
    resumed = fit(data, config, recipe, on_epoch=lambda row: phases.append(row["phase"]),
                  checkpoint=resumed_checkpoint)
    assert len(phases) < len(seen) + 10  # it continued; it did not start over
    for a, b in zip(reference.model.state_dict().values(), resumed.model.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    assert (resumed.best_epoch, resumed.history) == (reference.best_epoch, reference.history)


def test_a_state_from_another_run_is_refused(tmp_path: Path) -> None:
    Checkpoint(tmp_path, {"options": {"seed": 1}}).save({"stage": "select"})
    with pytest.raises(PaceEdgeError, match=r"different run: its options was \{'seed': 1\}"):
        Checkpoint(tmp_path, {"options": {"seed": 2}}).load()
    (tmp_path / STATE_FILE).write_bytes(b"not a state")
    with pytest.raises(PaceEdgeError, match="not a readable training state"):
        Checkpoint(tmp_path, {}).load()


# --- the command line, as a user runs it (no terminal: plain lines on stderr) -------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_npy_folder(tmp_path_factory.mktemp("data") / "synthetic",
                            make_synthetic(n_per_class=20, seed=1),
                            make_synthetic(n_per_class=10, seed=2))


def train_cli(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*PACE_EDGE, "train", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def test_cli_reports_progress_unless_quiet(data_dir: Path, tmp_path: Path) -> None:
    loud = train_cli("--data", data_dir, "--out", tmp_path / "a", "--preset", "tiny",
                     "--epochs", "3")
    assert loud.returncode == 0, loud.stderr
    assert "select 1/3  loss" in loud.stderr and "select 3/3  loss" in loud.stderr
    # the refit runs as many epochs as the selection chose
    assert re.search(r"^refit (\d+)/\1  loss", loud.stderr, re.MULTILINE), loud.stderr
    assert "precise-bn 1/1" in loud.stderr and "left in select" in loud.stderr
    assert "training took" in loud.stdout and "(selection " in loud.stdout
    assert "+ refit and precise BN " in loud.stdout
    quiet = train_cli("--data", data_dir, "--out", tmp_path / "b", "--preset", "tiny",
                      "--epochs", "3", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_failed_run_leaves_no_empty_folder(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "never"
    result = train_cli("--data", data_dir, "--out", out, "--preset", "tiny",
                       "--preprocess", "crop:5000:6000")
    assert result.returncode == 2 and "pace-edge train: error:" in result.stderr
    assert not out.exists()


def test_ctrl_c_saves_the_state_and_resume_finishes_like_an_uninterrupted_run(
        data_dir: Path, tmp_path: Path) -> None:
    options = ["--data", str(data_dir), "--preset", "tiny", "--epochs", "40", "--seed", "3"]
    out = tmp_path / "interrupted"
    proc = subprocess.Popen([*PACE_EDGE, "train", *options, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        while line and not line.startswith("select "):
            line = proc.stderr.readline()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "stopping after this epoch" in stderr
    assert f"Continue with: pace-edge train --out {out} --resume" in stderr
    assert sorted(p.name for p in out.iterdir()) == [STATE_FILE]  # nothing that looks a bundle

    again = train_cli("--out", out, "--data", data_dir, "--preset", "tiny")
    assert again.returncode == 2 and "holds an interrupted training run" in again.stderr
    other = train_cli("--out", out, "--resume", "--seed", "4")
    assert other.returncode == 2 and "--seed 4 differs from the interrupted run's 3" in other.stderr

    resumed = train_cli("--out", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "continuing after" in resumed.stdout
    assert "counting the time before the interruption" in resumed.stdout
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.json.sha256",
                                                     "weights.safetensors"]
    uninterrupted = train_cli(*options, "--out", tmp_path / "whole")
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    a, b = Bundle.load(out), Bundle.load(tmp_path / "whole")
    assert a.training["metrics"]["best_epoch"] == b.training["metrics"]["best_epoch"]
    for name, value in a.weights.items():
        np.testing.assert_array_equal(value, b.weights[name], err_msg=name)


def test_resume_needs_an_interrupted_run(tmp_path: Path) -> None:
    result = train_cli("--out", tmp_path, "--resume")
    assert result.returncode == 2
    assert f"--resume: {tmp_path} holds no interrupted training run" in result.stderr


def test_checkpoints_are_written_as_training_goes(tmp_path: Path) -> None:
    data = small_data()
    checkpoint = Checkpoint(tmp_path, {}, every_s=0.0)  # every epoch
    stages: list[tuple[str, int]] = []
    original = checkpoint.save

    def save(state: dict) -> None:
        stages.append((state["stage"], state["epoch"]))
        original(state)

    checkpoint.save = save  # type: ignore[method-assign]
    fit(data, preset("tiny", 3), Recipe(epochs=3, batch_size=16), checkpoint=checkpoint)
    assert stages == [("select", 1), ("select", 2), ("refit", 0), ("refit", 1), ("refit", 2)]
    assert os.path.getsize(tmp_path / STATE_FILE) > 0
