"""pace-edge rightsize: ladder, selection and budget rules, resume, frontier files, and the
chosen bundle as an ordinary bundle (synthetic data, tiny sizes, few epochs)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pace_edge.bundle import Bundle
from pace_edge.cli.main import main
from pace_edge.data import make_grouped_synthetic, make_synthetic
from pace_edge.data.npy_folder import write_npy_folder
from pace_edge.errors import PaceEdgeError
from pace_edge.model import preset
from pace_edge.model.cost import model_cost, multiply_adds, parameters
from pace_edge.preprocess import Pipeline
from pace_edge.rightsize import (
    CandidateRecord,
    candidates,
    parse_ladder,
    standard_error,
    under_budget,
    within_drop,
)
from pace_edge.rightsize.search import Plan, rightsize
from pace_edge.train import Recipe
from pace_edge.train.checkpoint import TrainingInterrupted

# --- cost -----------------------------------------------------------------------------------


def test_multiply_adds_of_the_paper_preset_on_900_points() -> None:
    c = preset("paper", 3)
    # pool 900 x 256 (a matrix: 900 is not a multiple of 256), 16 tokens:
    # embed 16 * 1024 * 16; 4 blocks of 16 * (1024 * 9 + 1024 * 1024); head 1024 * 3
    expected = 900 * 256 + 16 * 1024 * 16 + 4 * 16 * (1024 * 9 + 1024 * 1024) + 1024 * 3
    assert multiply_adds(c, 900) == expected == 68_194_304
    assert multiply_adds(c, 1024) == expected - 900 * 256 + 1024  # a window average
    small = multiply_adds(preset("small", 3), 900)
    assert expected / small > 20


@pytest.mark.parametrize("name", ["tiny", "small", "medium", "paper"])
def test_parameter_count_is_the_networks(name: str) -> None:
    from pace_edge.model.pace import PACE

    config = preset(name, 4)
    assert parameters(config) == sum(p.numel() for p in PACE(config).parameters())
    assert model_cost(config, 900).int8_weight_bytes == parameters(config)


# --- ladder ---------------------------------------------------------------------------------


def test_ladder_default_smallest_first_and_shapes() -> None:
    rungs = parse_ladder(None, 3, 900)
    assert [r.name for r in rungs] == ["tiny", "small", "medium", "paper"]
    costs = [r.cost(900).multiply_adds for r in rungs]
    assert costs == sorted(costs)
    custom = parse_ladder("paper, 64x2 ,small", 3, 900)
    assert [r.name for r in custom] == ["64x2", "small", "paper"]
    assert (custom[0].config.dim, custom[0].config.depth, custom[0].config.kernel) == (64, 2, 9)


def test_ladder_candidates_distil_every_size_but_the_teacher() -> None:
    rungs = parse_ladder("tiny,small,paper", 3, 900)
    names = [c.name for c in candidates(rungs)]
    assert names == ["tiny", "small", "paper", "tiny-distilled", "small-distilled"]


@pytest.mark.parametrize("sizes, message", [
    ("tiny,huge", "unknown size 'huge'"),
    ("small", "at least two sizes"),
    ("small,128x4", "are the same architecture"),
    ("0x2,small", "must be positive"),
])
def test_ladder_refuses(sizes: str, message: str) -> None:
    with pytest.raises(PaceEdgeError, match=message):
        parse_ladder(sizes, 3, 900)


# --- selection rules -------------------------------------------------------------------------


def record(name: str, macs: int, val: float, p50: float | None = 1.0,
           status: str = "ok", distilled: bool = False) -> CandidateRecord:
    latency = {} if p50 is None else {"1": {"p50_ms": p50, "p99_ms": p50 * 2,
                                            "spectra_per_s": 1e3 / p50},
                                      "64": {"p50_ms": p50 * 10, "p99_ms": p50 * 20,
                                             "spectra_per_s": 6.4e3 / p50}}
    return CandidateRecord(name=name, size=name.split("-")[0], distilled=distilled, model={},
                           multiply_adds=macs, parameters=macs // 10,
                           int8_weight_bytes=macs // 10, val_accuracy=val, val_spectra=74,
                           bundle=f"/x/{name}", export_status=status, latency=latency)


def test_accuracy_rule_takes_the_smallest_within_the_drop() -> None:
    rs = [record("tiny", 1, 0.90), record("small", 10, 0.945), record("paper", 100, 0.95),
          record("medium", 50, 0.96)]
    assert within_drop(rs, 0.5, 0).chosen.name == "medium"  # only it is within 0.5 pp of 96 %
    assert within_drop(rs, 1.5, 0).chosen.name == "small"   # 94.5 >= 96 - 1.5
    assert within_drop(rs, 6.0, 0).chosen.name == "tiny"
    choice = within_drop(rs, 1.5, 0)
    assert "best 96.00% (medium)" in choice.reason and "1.5 pp" in choice.rule


def test_accuracy_rule_takes_the_distilled_variant_only_beyond_the_tolerance() -> None:
    rs = [record("small", 10, 0.93), record("small-distilled", 10, 0.94, distilled=True),
          record("paper", 100, 0.94)]
    assert within_drop(rs, 0.5, 0).chosen.name == "small-distilled"  # plain is 1 pp behind
    assert within_drop(rs, 1.0, 0).chosen.name == "small"  # within 1 pp: the plain recipe
    tie = [record("small", 10, 0.94), record("small-distilled", 10, 0.94, distilled=True)]
    assert within_drop(tie, 0.5, 0).chosen.name == "small"
    two = [record("small", 10, 0.90), record("small-64", 10, 0.92), record("paper", 100, 0.92)]
    assert within_drop(two, 3.0, 0).chosen.name == "small-64"  # same recipe: the more accurate


def test_accuracy_rule_skips_builds_that_failed_their_checks() -> None:
    rs = [record("tiny", 1, 0.95, status="exported but failed validation"),
          record("small", 10, 0.95, status="export failed", p50=None),
          record("medium", 50, 0.95, status="exported, cannot run here", p50=None),
          record("paper", 100, 0.95)]
    assert within_drop(rs, 0.5, 0).chosen.name == "medium"  # a TensorRT build: runs on the device
    none = within_drop(rs[:2], 0.5, 0)
    assert none.chosen is None and "passed its checks" in none.reason
    assert under_budget(rs, 1e6).chosen.name == "paper"  # the budget needs a timed build


def test_accuracy_rule_widens_the_drop_by_the_best_accuracys_standard_error() -> None:
    """The one-standard-error rule: on 74 validation spectra the best's 96 % has a standard
    error of sqrt(0.96 * 0.04 / 74) = 2.28 pp, so 94.5 % (1.5 pp below) is within 0.5 pp + 1
    standard error and 93 % (3 pp below) is not; on 10,000 spectra it is 0.20 pp."""
    assert standard_error(0.96, 74) == pytest.approx(0.022780, abs=1e-6)
    assert standard_error(1.0, 74) == 0.0 and standard_error(0.5, 0) == 0.0
    rs = [record("tiny", 1, 0.93), record("small", 10, 0.945), record("medium", 50, 0.96)]
    choice = within_drop(rs, 0.5)  # one standard error is the default
    assert choice.chosen.name == "small"
    assert "+ 1 standard error (2.28 pp)" in choice.rule and "within 2.78 pp" in choice.reason
    assert within_drop(rs, 0.5, 2.0).chosen.name == "tiny"  # 0.5 + 4.56 pp
    assert within_drop(rs, 0.5, 0).chosen.name == "medium"  # the strict rule
    many = [replace(r, val_spectra=10_000) for r in rs]
    assert within_drop(many, 0.5).chosen.name == "medium"  # 0.70 pp: 94.5 % is too far


def test_budget_rule_takes_the_most_accurate_within_the_budget() -> None:
    rs = [record("tiny", 1, 0.90, p50=0.05), record("small", 10, 0.94, p50=0.08),
          record("small-distilled", 10, 0.94, p50=0.07, distilled=True),
          record("paper", 100, 0.96, p50=0.30)]
    assert under_budget(rs, 1.0).chosen.name == "paper"
    assert under_budget(rs, 0.1).chosen.name == "small-distilled"  # same accuracy, faster
    assert under_budget(rs, 0.06).chosen.name == "tiny"
    none = under_budget(rs, 0.01)
    assert none.chosen is None and "the fastest, tiny, took 0.050 ms" in none.reason


def test_a_build_that_misses_the_int8_criterion_is_fine_tuned_and_exported_again(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """export_int8 keeps a post-training build that passes; one that misses the criterion is
    exported again after --qat epochs into qat<N>/, and kept only if that one passes."""
    import pace_edge.benchmark.builds as builds
    from pace_edge.rightsize import export_step

    outcomes: dict[int, str] = {}
    calls: list[tuple[Path, int]] = []

    def fake_export(bundle_dir: Path, spec: Any, workdir: Path, *, calib: Any = None,
                    reuse: bool = True, qat: int = 0) -> Any:
        calls.append((workdir, qat))
        failed = outcomes[qat] != builds.STATUS_OK
        return builds.Build(spec, outcomes[qat], workdir / spec.export_name,
                            "sensitivity: missed" if failed else "",
                            failed_gates=("sensitivity",) if failed else ())

    monkeypatch.setattr(builds, "export_build", fake_export)
    work = tmp_path / "exports" / "small"

    def run(qat: int, ptq: str, tuned: str = builds.STATUS_OK) -> tuple[Any, int]:
        calls.clear()
        outcomes.update({0: ptq, qat: tuned} if qat else {0: ptq})
        return export_step.export_int8(tmp_path / "b", "x86", work, tmp_path / "d", qat)

    build, epochs = run(3, builds.STATUS_OK)
    assert (build.status, epochs, calls) == ("ok", 0, [(work, 0)])
    build, epochs = run(3, builds.STATUS_INVALID)
    assert (build.status, epochs) == ("ok", 3)
    assert calls == [(work, 0), (work / "qat3", 3)] and build.path == work / "qat3" / "x86-int8"
    build, epochs = run(2, builds.STATUS_INVALID, builds.STATUS_INVALID)
    assert (build.status, epochs, build.path) == (builds.STATUS_INVALID, 0, work / "x86-int8")
    assert "after 2 epochs of quantisation-aware fine-tuning it failed too" in build.reason
    build, epochs = run(0, builds.STATUS_INVALID)
    assert (build.status, epochs, calls) == (builds.STATUS_INVALID, 0, [(work, 0)])


# --- end to end -----------------------------------------------------------------------------

SIZES = "8x1,16x1"
EPOCHS = 3


def _plan(data: Path, out: Path, **kw: Any) -> Plan:
    return Plan(data=data, out=out, rungs=parse_ladder(SIZES, 3, 701),
                recipe=Recipe(epochs=EPOCHS, batch_size=16, seed=1),
                pipeline=Pipeline.from_spec("normalize:snv"), iterations=4, warmup=1,
                **{"threads": 1, **kw})


class _Counter:
    """A progress sink that counts epochs per candidate (the n-th time it is entered)."""

    def __init__(self) -> None:
        self.entered = 0
        self.rows = 0

    def __call__(self) -> _Counter:
        self.entered += 1
        self.rows = 0
        return self

    def __enter__(self) -> _Counter:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, row: dict[str, Any]) -> None:
        self.rows += 1


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A rightsize run on data with group ids (3 spectra per sample), interrupted in the second
    candidate's selection, then run again."""
    root = tmp_path_factory.mktemp("rightsize")
    data = write_npy_folder(root / "data",
                            make_grouped_synthetic(samples_per_class=4, spectra_per_sample=3,
                                                   seed=3),
                            make_grouped_synthetic(samples_per_class=2, spectra_per_sample=3,
                                                   seed=4))
    out = root / "out"
    counter = _Counter()
    first: list[str] = []
    with pytest.raises(TrainingInterrupted):
        rightsize(_plan(data, out), log=first.append, progress=counter,
                  stop=lambda: counter.entered == 2 and counter.rows >= 2)
    interrupted = {
        "state": (out / "candidates" / "8x1" / "training-state.pt").is_file(),
        "registry": json.loads((out / "candidates.json").read_text()),
    }
    second: list[str] = []
    outcome = rightsize(_plan(data, out, eval=data), log=second.append)
    return {"data": data, "out": out, "first": first, "second": second,
            "outcome": outcome, "interrupted": interrupted}


def test_resume_reuses_finished_candidates_and_continues_the_interrupted_one(
        run: dict[str, Any]) -> None:
    assert run["interrupted"]["state"]  # the teacher (16x1) first, then 8x1 was interrupted
    assert list(run["interrupted"]["registry"]) == ["16x1"]
    second = run["second"]
    assert "[1/3] 16x1: trained before, reused" in second
    assert "[2/3] 8x1: training (continuing from its saved state)" in second
    assert any(line.startswith("[3/3] 8x1-distilled: training, distilled from 16x1")
               for line in second)
    assert not (run["out"] / "candidates" / "8x1" / "training-state.pt").exists()


def test_resumed_candidate_equals_an_uninterrupted_run(run: dict[str, Any]) -> None:
    from pace_edge.data import load_dataset
    from pace_edge.train.bundle_training import train_bundle

    plan = _plan(run["data"], run["out"])
    data = load_dataset(run["data"], split="train")
    fresh, _ = train_bundle(data, plan.rungs[0].config, plan.recipe, plan.pipeline)
    resumed = Bundle.load(run["out"] / "candidates" / "8x1")
    assert fresh.weights.keys() == resumed.weights.keys()
    # ravel: a saved 0-d BatchNorm counter comes back with shape (1,)
    assert all(np.array_equal(fresh.weights[k].ravel(), resumed.weights[k].ravel())
               for k in fresh.weights)


def test_frontier_files_hold_every_candidate_and_the_choice(run: dict[str, Any]) -> None:
    out, outcome = run["out"], run["outcome"]
    front = json.loads((out / "frontier.json").read_text())
    assert front["format"] == "pace-edge-rightsize"
    names = [c["name"] for c in front["candidates"]]
    assert sorted(names) == ["16x1", "8x1", "8x1-distilled"]
    for c in front["candidates"]:
        assert 0.0 <= c["val_accuracy"] <= 1.0 and c["val_spectra"] > 0
        assert c["multiply_adds"] > 0 and c["parameters"] > 0
        assert c["test_accuracy"] is not None  # --eval measured it
        if c["export_status"] == "ok":
            assert set(c["latency"]) == {"1", "64"}
            assert c["latency"]["64"]["batch"] == 64 and c["latency"]["1"]["iterations"] == 4
            assert c["int8_bytes"] > 0 and c["int8_test_accuracy"] is not None
    assert front["target"] == "x86" and front["batches"] == [1, 64]
    # validation held whole samples, the same ones for every candidate
    assert front["group_aware"] is True
    splits = [Bundle.load(c["bundle"]).training["data"]["split"] for c in front["candidates"]]
    assert all(sp["group_aware"] and sp == splits[0] for sp in splits)
    # the recorded choice is the accuracy rule applied to the recorded candidates
    records = [CandidateRecord(**c) for c in front["candidates"]]
    expected = within_drop(records, front["max_drop_pp"], front["standard_errors"]).chosen
    assert front["chosen"] == (expected.name if expected else None)
    assert front["chosen"] == (outcome.choice.chosen.name if outcome.choice.chosen else None)
    report = (out / "report.md").read_text()
    for name in names:
        assert f"| {name} |" in report or f"| **{name}** |" in report
    assert "validation accuracy only" in report
    png = out / "frontier.png"
    if any(r.latency for r in records):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chosen_is_an_ordinary_bundle_that_exports_and_streams(run: dict[str, Any],
                                                              tmp_path: Path) -> None:
    from pace_edge.streaming.emulator import Emulator

    out, outcome = run["out"], run["outcome"]
    if outcome.choice.chosen is None:  # every INT8 build failed its checks: nothing to stream
        pytest.fail(f"no candidate chosen: {outcome.choice.reason}")
    chosen = Bundle.load(out / "chosen")
    source = Bundle.load(outcome.choice.chosen.bundle)
    assert all(np.array_equal(chosen.weights[k], source.weights[k]) for k in chosen.weights)
    export = tmp_path / "onnx"
    assert main(["export", "--model", str(out / "chosen"), "--target", "onnx",
                 "--out", str(export)]) == 0
    lines = tmp_path / "out.jsonl"
    with Emulator("obp", seed=4) as emu:
        assert main(["stream", "--port", emu.port, "--protocol", "obp", "--model",
                     str(export), "--laser-nm", "785", "--max-frames", "5",
                     "--output", str(lines), "--threads", "1",
                     "--backend", "onnxruntime"]) == 0
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert len(records) == 5 and all(r["class"] in chosen.classes for r in records)


def test_budget_rerun_reuses_everything_and_other_settings_are_refused(
        run: dict[str, Any]) -> None:
    lines: list[str] = []
    outcome = rightsize(_plan(run["data"], run["out"], budget_ms=1e6), log=lines.append)
    assert sum("trained before, reused" in line for line in lines) == 4  # and the teacher
    assert "teacher (16x1, no refit): trained before, reused" in lines
    assert all(": reused (" in line for line in lines if line.startswith("export ["))
    timed = [r for r in outcome.records if r.deployable]
    if timed:
        best = max(r.val_accuracy for r in timed)
        assert outcome.choice.chosen is not None
        assert outcome.choice.chosen.val_accuracy == best
    other = _plan(run["data"], run["out"])
    other.recipe = Recipe(epochs=EPOCHS + 1, batch_size=16, seed=1)
    with pytest.raises(PaceEdgeError, match="trained with other settings"):
        rightsize(other)


def test_cli_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_npy_folder(tmp_path / "data", make_synthetic(n_per_class=4, seed=1))
    assert main(["rightsize", "--data", str(data), "--out", str(tmp_path / "o"),
                 "--sizes", "tiny,huge"]) == 2
    assert "unknown size 'huge'" in capsys.readouterr().err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert main(["rightsize", "--data", str(data), "--out", str(tmp_path / "busy")]) == 2
    assert "holds no rightsize run" in capsys.readouterr().err
    assert main(["rightsize", "--data", str(data), "--out", str(tmp_path / "o"),
                 "--teacher", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pace-edge rightsize: error:") and len(err.strip().splitlines()) == 1


def test_info_reports_cost_of_presets_bundles_and_exports(
        run: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--presets"]) == 0
    table = capsys.readouterr().out
    assert "| `paper` | 1024 | 4 | 9 | 16 | 256 | 68.2 M | 4.28 M | 4.28 MB |" in table
    assert "| `small` | 128 | 4 | 9 | 16 | 256 | 1.39 M | 76 k | 76 kB |" in table
    student = run["out"] / "candidates" / "8x1-distilled"
    assert main(["info", str(student)]) == 0
    text = capsys.readouterr().out
    cost = model_cost(preset("paper", 3, dim=8, depth=1), 701)
    assert (f"cost       {cost.multiply_adds / 1e3:.3g} k multiply-adds per spectrum, "
            f"{cost.parameters} parameters") in text
    assert f"distilled  from {run['out'] / 'teacher'}" in text  # the fit-split teacher
    exported = [Path(r.export) for r in run["outcome"].records if r.export]
    if exported:
        assert main(["info", str(exported[0])]) == 0
        assert "multiply-adds per spectrum" in capsys.readouterr().out
    assert main(["info"]) == 2
    assert "give a bundle or export directory" in capsys.readouterr().err


def test_a_stop_between_exports_keeps_what_is_finished(run: dict[str, Any]) -> None:
    from pace_edge.rightsize.search import Interrupted

    before = json.loads((run["out"] / "candidates.json").read_text())
    with pytest.raises(Interrupted, match="stopped before exporting"):
        rightsize(_plan(run["data"], run["out"]), stop=lambda: True)
    assert json.loads((run["out"] / "candidates.json").read_text()) == before


def test_students_learn_from_a_teacher_that_never_saw_the_validation_spectra(
        run: dict[str, Any], tmp_path: Path) -> None:
    """The refitted largest candidate has seen the validation split the candidates are chosen
    on; the distillation teacher is the same size trained without the refit, and a refitted
    --teacher is refused."""
    from pace_edge.bundle import WEIGHTS_FILE, Bundle, sha256_file

    out = run["out"]
    teacher = Bundle.load(out / "teacher")
    assert teacher.training["recipe"]["refit"] is False
    assert Bundle.load(out / "candidates" / "16x1").training["recipe"]["refit"] is True
    student = Bundle.load(out / "candidates" / "8x1-distilled")
    record = student.training["distillation"]["teacher"]
    assert record["weights_sha256"] == sha256_file(out / "teacher" / WEIGHTS_FILE)
    assert any(line.startswith("teacher (16x1, no refit): training") for line in run["second"])
    refitted = _plan(run["data"], tmp_path / "o", teacher=out / "candidates" / "16x1")
    with pytest.raises(PaceEdgeError, match="its training recipe differs"):
        rightsize(refitted)
    given = _plan(run["data"], tmp_path / "g", teacher=out / "teacher")
    lines: list[str] = []
    rightsize(given, log=lines.append)
    assert f"teacher (16x1, no refit): the given {out / 'teacher'}" in lines


def test_each_build_is_timed_at_its_faster_thread_setting(
        run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --threads every INT8 build is timed with the runtime's default threads and with
    one thread, and each batch size keeps the faster (a small model at batch 1 has too little
    work to share between cores)."""
    import os

    from pace_edge.rightsize import search

    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert search.thread_choices(None) == (None,)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert search.thread_choices(None) == (None, 1) and search.thread_choices(3) == (3,)

    class Described:
        def __init__(self, threads: int) -> None:
            self.threads = threads

        def describe(self) -> dict[str, int]:
            return {"threads": self.threads}

    runners = {("small", None): Described(4), ("small", 1): Described(1)}
    timed = {"small@default": {"1": {"p50_ms": 0.12}, "64": {"p50_ms": 5.0}},
             "small@1": {"1": {"p50_ms": 0.10}, "64": {"p50_ms": 9.0}}}
    assert search._fastest("small", timed, runners) == {
        "1": {"p50_ms": 0.10, "threads": 1}, "64": {"p50_ms": 5.0, "threads": 4}}

    monkeypatch.undo()
    outcome = rightsize(_plan(run["data"], run["out"], threads=None))
    choices = search.thread_choices(None)
    front = json.loads((run["out"] / "frontier.json").read_text())
    assert front["threads"] is None and front["thread_choices"] == list(choices)
    labels = {"default" if t is None else str(t) for t in choices}
    for r in outcome.records:
        if r.deployable:
            assert set(r.timings) == labels  # every setting is kept in frontier.json
            for b in ("1", "64"):
                assert r.latency[b]["p50_ms"] == min(t[b]["p50_ms"] for t in r.timings.values())
    report = (run["out"] / "report.md").read_text()
    assert "threads (batch 1 / 64)" in report
    if len(choices) > 1:
        assert "faster kept per batch size" in report
