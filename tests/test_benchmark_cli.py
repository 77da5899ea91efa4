"""``pace-edge benchmark`` and :mod:`pace_edge.benchmark`: fast checks on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pace_edge.benchmark import BuildSpec, LatencyStats, measure, measure_interleaved, parse_builds
from pace_edge.benchmark.builds import STATUS_UNRUNNABLE
from pace_edge.cli.main import main
from pace_edge.data import make_synthetic, write_npy_folder
from pace_edge.errors import PaceEdgeError
from pace_edge.runtimes.select import package_available

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")


@pytest.fixture(scope="module")
def eval_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bench-data")
    return write_npy_folder(root / "data", make_synthetic(n_per_class=4, seed=11),
                            make_synthetic(n_per_class=5, seed=12))


@pytest.fixture(scope="module")
def wrong_labels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Test spectra each labelled with the next class: no sensible model scores 100 %."""
    data = make_synthetic(n_per_class=5, seed=12)
    shifted = type(data)(data.x, (data.y + 1) % len(data.classes), data.axis, data.classes)
    root = tmp_path_factory.mktemp("bench-wrong")
    return write_npy_folder(root / "data", shifted, shifted)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench-work")


@pytest.fixture(scope="module")
def first_run(synthetic_bundle: Path, eval_data: Path, workdir: Path,
              tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench-out")
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = main(["benchmark", "--model", str(synthetic_bundle), "--targets", "onnx:fp32",
                   "--data", str(eval_data), "--batch", "1,4", "--iterations", "6",
                   "--warmup", "1", "--threads", "1", "--workdir", str(workdir),
                   "--json", str(out / "bench.json"), "--plot", str(out / "bench.png"),
                   "--profile"])
    return {"rc": rc, "stdout": stdout.getvalue(), "out": out}


def test_table_has_every_column_and_a_row_per_build(first_run: dict) -> None:
    assert first_run["rc"] == 0
    lines = first_run["stdout"].splitlines()
    header = lines[0]
    for column in ("build", "status", "size MB", "accuracy", "p50 ms (b1)", "p99 ms (b1)",
                   "spectra/s (b4)", "speed-up b1", "speed-up b4"):
        assert column in header
    assert lines[1].startswith("torch:fp32 (baseline)") and " ok " in lines[1]
    assert lines[2].startswith("onnx:fp32") and " ok " in lines[2]
    assert "1.00×" in lines[1]


def test_json_holds_every_sample_and_the_speedup(first_run: dict, eval_data: Path) -> None:
    report = json.loads((first_run["out"] / "bench.json").read_text())
    assert report["batches"] == [1, 4] and report["iterations"] == 6 and report["threads"] == 1
    assert report["data"].startswith(str(eval_data))
    assert report["machine"]["usable_cpus"] >= 1 and "cpu_flags" in report["machine"]
    builds = {b["build"]: b for b in report["builds"]}
    assert list(builds) == ["torch:fp32", "onnx:fp32"]
    onnx = builds["onnx:fp32"]
    assert onnx["status"] == "ok" and onnx["backend"] == "onnxruntime" and onnx["size_mb"] > 0
    assert 0.0 <= onnx["accuracy"] <= 1.0
    assert onnx["runtime"]["threads"] == 1
    for batch in ("1", "4"):
        lat = onnx["latency"][batch]
        assert len(lat["samples_ms"]) == 6 and lat["p99_ms"] >= lat["p50_ms"] > 0
        assert lat["spectra_per_s"] == pytest.approx(1e3 * int(batch) / lat["mean_ms"])
        assert builds["torch:fp32"]["speedup"][batch] == pytest.approx(1.0)
        base = builds["torch:fp32"]["latency"][batch]["p50_ms"]
        assert onnx["speedup"][batch] == pytest.approx(base / lat["p50_ms"])
        base_min = builds["torch:fp32"]["latency"][batch]["min_ms"]
        assert onnx["speedup_min"][batch] == pytest.approx(base_min / lat["min_ms"])


def test_profile_says_where_the_time_goes(first_run: dict) -> None:
    text = first_run["stdout"]
    assert "torch:fp32: no per-layer profile (per-layer profiling is not available for the " \
           "torch backend)" in text
    assert "onnx:fp32, batch 1:" in text and "onnx:fp32, batch 4:" in text
    builds = {b["build"]: b for b in
              json.loads((first_run["out"] / "bench.json").read_text())["builds"]}
    for batch in ("1", "4"):
        layers = builds["onnx:fp32"]["profile"][batch]
        ops = {layer["op"] for layer in layers}
        assert "Conv" in ops and ("Gemm" in ops or "MatMul" in ops)
        times = [layer["ms"] for layer in layers]
        assert min(times) >= 0 and sum(times) > 0
        assert times == sorted(times, reverse=True)
    assert builds["torch:fp32"]["profile"] == {}


def test_plot_is_a_png(first_run: dict) -> None:
    assert (first_run["out"] / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_exports_are_reused_from_the_workdir(synthetic_bundle: Path, workdir: Path,
                                             first_run: dict, tmp_path: Path) -> None:
    assert first_run["rc"] == 0
    rc = main(["benchmark", "--model", str(synthetic_bundle), "--targets", "onnx", "--batch",
               "2", "--iterations", "2", "--warmup", "0", "--workdir", str(workdir),
               "--json", str(tmp_path / "b.json")])
    assert rc == 0
    builds = {b["build"]: b for b in json.loads((tmp_path / "b.json").read_text())["builds"]}
    assert builds["onnx:fp32"]["reused"] is True


def test_exit_1_below_min_accuracy(synthetic_bundle: Path, wrong_labels: Path, workdir: Path,
                                   first_run: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert first_run["rc"] == 0
    args = ["benchmark", "--model", str(synthetic_bundle), "--targets", "onnx:fp32",
            "--data", str(wrong_labels), "--batch", "1", "--iterations", "2", "--warmup", "0",
            "--workdir", str(workdir)]
    assert main([*args, "--min-accuracy", "100%"]) == 1
    err = capsys.readouterr().err
    assert "below --min-accuracy 100.00%" in err and "onnx:fp32 (" in err
    assert main([*args, "--min-accuracy", "0"]) == 0


def test_export_user_error_is_one_line_and_unrunnable_builds_are_reported(
    synthetic_bundle: Path, workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the bundle was trained on synthetic data: INT8 has no calibration spectra to read, a user
    # error like any other command's (one line, exit 2), not a table row
    rc = main(["benchmark", "--model", str(synthetic_bundle), "--targets", "onnx:int8",
               "--batch", "1", "--iterations", "2", "--warmup", "0", "--workdir", str(workdir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("pace-edge benchmark: error: INT8 export needs calibration "
                              "spectra: pass --calib DATA")
    if package_available("tensorrt"):
        return
    rc = main(["benchmark", "--model", str(synthetic_bundle), "--targets", "tensorrt:fp32",
               "--batch", "1", "--iterations", "2", "--warmup", "0", "--workdir", str(workdir),
               "--json", str(tmp_path / "b.json")])
    assert rc == 1  # no requested build could be measured
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1].startswith(
        "pace-edge benchmark: failed: no build could be measured: tensorrt:fp32: exported, "
        "cannot run here (")
    builds = {b["build"]: b for b in json.loads((tmp_path / "b.json").read_text())["builds"]}
    assert builds["tensorrt:fp32"]["status"] == STATUS_UNRUNNABLE  # exported, no engine here
    assert "TensorRT is not installed" in builds["tensorrt:fp32"]["reason"]
    assert "[1] build-engine: " in captured.out


def test_unknown_target_is_a_clear_error(synthetic_bundle: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["benchmark", "--model", str(synthetic_bundle), "--targets", "onnx,coreml:fp16"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "unknown target 'coreml'; choose from torch, onnx, openvino" in err


def test_min_accuracy_needs_data(synthetic_bundle: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["benchmark", "--model", str(synthetic_bundle), "--min-accuracy", "0.9"]) == 2
    assert "--min-accuracy needs --data" in capsys.readouterr().err


def test_parse_builds() -> None:
    specs = parse_builds("onnx, openvino:int8, onnx:fp32, x86:int8@ort, torch, openvino:int8@ov")
    assert [s.label for s in specs] == ["onnx:fp32", "openvino:int8", "x86:int8@onnxruntime",
                                        "torch:fp32"]
    assert specs[2].runtime == "onnxruntime" and specs[1].runtime == "openvino"
    assert BuildSpec("x86", "int8", "openvino").label == "x86:int8"  # the default backend
    for bad, message in (("torch:int8", "does not build int8"), ("onnx:fp8", "unknown precision"),
                         ("jetson:bf16", "unknown precision"), ("", "no builds given"),
                         ("onnx@tflite", "unknown backend")):
        with pytest.raises(PaceEdgeError, match=message):
            parse_builds(bad)


def test_measure_times_each_call_after_warmup() -> None:
    calls = []
    stats = measure(lambda: calls.append(1), batch=8, iterations=7, warmup=3)
    assert len(calls) == 10 and stats.iterations == 7 and stats.warmup == 3
    assert stats.p99_ms >= stats.p50_ms >= stats.min_ms >= 0
    fixed = LatencyStats(4, 0, np.array([1.0, 2.0, 3.0, 4.0]))
    assert fixed.mean_ms == 2.5 and fixed.p50_ms == 2.5 and fixed.spectra_per_s == 1600.0
    assert set(fixed.summary()) >= {"p50_ms", "p99_ms", "mean_ms", "spectra_per_s"}
    with pytest.raises(PaceEdgeError):
        measure(lambda: None, batch=1, iterations=0)


def test_interleaved_measurement_gives_each_callable_its_iterations() -> None:
    order: list[str] = []
    result = measure_interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                                 batch=1, iterations=5, warmup=1, blocks=2, settle_s=0.0)
    assert {k: v.iterations for k, v in result.items()} == {"a": 5, "b": 5}
    # warm-up, then per block one untimed settling call and the timed calls
    assert order == ["a", "b"] + ["a"] * 4 + ["b"] * 4 + ["a"] * 3 + ["b"] * 3


def test_data_with_classes_the_model_lacks_is_refused(synthetic_bundle: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_npy_folder(tmp_path / "four", make_synthetic(n_per_class=2, n_classes=4),
                              make_synthetic(n_per_class=2, n_classes=4, seed=1))
    rc = main(["benchmark", "--model", str(synthetic_bundle), "--data", str(folder),
               "--targets", "torch", "--workdir", str(tmp_path / "work")])
    assert rc == 2 and "synthetic-D" in capsys.readouterr().err
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())
