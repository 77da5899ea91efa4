"""Session state of the benchmark suite: data, bundles, exports, runners and the eager baseline.

Everything is made once per session (or reused from the work directory, by default pytest's
cache ``.pytest_cache/d/pace-edge-bench``) and shared by the tests:

* data: SYNTHETIC Raman-like spectra on COV's axis (900 points, 400–2112 cm⁻¹), 3 classes,
  an npy folder with train and test splits (INT8 calibrates on its train split);
* bundles: the ``paper`` and ``small`` presets trained briefly (latency does not depend on
  the weights) with SNV normalisation;
* exports: target ``x86`` per precision (one export holds the OpenVINO IR and the ONNX model
  run by ONNX Runtime), through ``pace-edge export`` (:mod:`pace_edge.benchmark.builds`);
* runners: one per preset × backend × precision, ``threads`` CPU threads each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pace_edge.benchmark.builds import Build, BuildSpec, export_build, model_size_mb, open_runner
from pace_edge.benchmark.latency import LatencyStats, measure, model_inputs, settle
from pace_edge.runtimes import Runner
from pace_edge.runtimes.select import gpu_status, package_available

PRESETS = ("paper", "small")
BATCHES = (1, 8, 64)
BACKENDS = ("torch", "onnxruntime", "openvino", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")
AXIS = (400.0, 2112.0, 900)  # COV's range and length
PIPELINE = "normalize:snv"
EPOCHS = {"paper": 1, "small": 2}
TRAIN_PER_CLASS, TEST_PER_CLASS = 60, 20
ORT_FP16_ON_CPU = (
    "ONNX Runtime's CPU provider has no FP16 compute for this model: it inserts Casts and runs "
    "the FP16 ONNX in FP32; FP16 compute needs a GPU provider (CUDA or TensorRT)"
)


class BuildUnavailable(Exception):
    """A build that cannot be measured here: ``skip`` (missing backend) or not (failed export)."""

    def __init__(self, message: str, skip: bool) -> None:
        super().__init__(message)
        self.skip = skip


def unavailable(backend: str, precision: str) -> str | None:
    """Why ``backend`` cannot run ``precision`` on this machine, or ``None``."""
    if backend == "torch":
        if precision != "fp32":
            return "the eager PyTorch baseline runs in FP32 only"
        return None if package_available("torch") else "the torch package is not installed"
    if not package_available(backend):
        return f"the {backend} package is not installed"
    if backend == "onnxruntime" and precision == "fp16":
        return ORT_FP16_ON_CPU
    if precision == "int8" and backend == "openvino" and not package_available("nncf"):
        return "OpenVINO INT8 export needs the nncf package, which is not installed"
    if backend == "tensorrt":
        ok, why = gpu_status()
        if not ok:
            return f"TensorRT needs an NVIDIA GPU: {why}"
    return None


def spec_for(backend: str, precision: str) -> BuildSpec:
    """The export that ``backend`` runs at ``precision`` (x86 holds OpenVINO and ONNX)."""
    if backend == "torch":
        return BuildSpec("torch", "fp32")
    if backend == "tensorrt":
        return BuildSpec("jetson" if precision == "int8" else "tensorrt", precision)
    both = package_available("openvino") and (precision != "int8" or package_available("nncf"))
    if backend == "onnxruntime" and not both:
        return BuildSpec("onnx", precision)
    return BuildSpec("x86", precision, backend)


@dataclass
class Record:
    """One benchmark's figures, for the terminal summary and the optional plot."""

    group: str
    name: str
    info: dict[str, Any]
    samples_ms: np.ndarray | None = None


@dataclass
class BenchSession:
    """Lazily made, cached data, bundles, builds, runners and baselines."""

    root: Path
    threads: int
    reuse: bool = True
    warmup: int = 10
    settle_s: float = 0.2
    records: list[Record] = field(default_factory=list)
    _bundles: dict[str, Path] = field(default_factory=dict)
    _builds: dict[tuple[str, BuildSpec], Build] = field(default_factory=dict)
    _runners: dict[tuple[str, str, str], Runner] = field(default_factory=dict)
    _failed: dict[tuple[str, str, str], BuildUnavailable] = field(default_factory=dict)
    _baselines: dict[tuple[str, int], LatencyStats] = field(default_factory=dict)
    _inputs: dict[str, np.ndarray] = field(default_factory=dict)

    # --- data and bundles ---------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        from pace_edge.data import make_synthetic, write_npy_folder

        folder = self.root / "data"
        if not (folder / "test_x.npy").is_file():
            axis = np.linspace(*AXIS)
            write_npy_folder(folder, make_synthetic(TRAIN_PER_CLASS, axis=axis, seed=5),
                             make_synthetic(TEST_PER_CLASS, axis=axis, seed=6))
        return folder

    def bundle(self, preset: str) -> Path:
        """The bundle of ``preset`` trained on the synthetic data (reused when present)."""
        if preset in self._bundles:
            return self._bundles[preset]
        from pace_edge.bundle import Bundle
        from pace_edge.data import load_dataset
        from pace_edge.model import preset as model_preset
        from pace_edge.preprocess import Pipeline
        from pace_edge.train import Recipe
        from pace_edge.train.bundle_training import train_bundle

        out = self.root / "bundles" / preset
        config = model_preset(preset, 3)
        data_dir = self.data_dir
        if not (self.reuse and (out / "model.json").is_file()
                and _loads_as(Bundle, out, config)):
            train_bundle(load_dataset(data_dir), config,
                         Recipe(epochs=EPOCHS[preset], batch_size=32, lr=3e-3, seed=0),
                         Pipeline.from_spec(PIPELINE), out=out)
        self._bundles[preset] = out
        return out

    def inputs(self, preset: str, batch: int) -> np.ndarray:
        """``batch`` preprocessed test spectra (repeated as needed), float32."""
        if preset not in self._inputs:
            from pace_edge.data import load_dataset

            test = load_dataset(self.data_dir, split="test")
            self._inputs[preset] = self.runner(preset, "torch", "fp32").preprocess(
                test.x[: max(BATCHES)], test.axis)
        rows = self._inputs[preset]
        return model_inputs(rows.shape[1], batch, rows=rows)

    # --- builds and runners ---------------------------------------------------------------------

    def build(self, preset: str, spec: BuildSpec) -> Build:
        key = (preset, spec)
        if key not in self._builds:
            self._builds[key] = export_build(self.bundle(preset), spec,
                                             self.root / "exports" / preset,
                                             calib=self.data_dir, reuse=self.reuse)
        return self._builds[key]

    def first_runner(self, preset: str,
                     preference: list[tuple[str, str]]) -> tuple[str, Runner]:
        """``("backend precision", runner)`` of the first build in ``preference`` that runs
        here; skips the test, naming why each failed, when none does."""
        problems = []
        for backend, precision in preference:
            try:
                return f"{backend} {precision}", self.runner(preset, backend, precision)
            except BuildUnavailable as exc:
                problems.append(f"{backend} {precision}: {exc}")
        pytest.skip(f"no {preset} build runs here: " + "; ".join(problems))

    def runner(self, preset: str, backend: str, precision: str) -> Runner:
        """The runner, or :class:`BuildUnavailable` (skip: missing backend; else: failed)."""
        key = (preset, backend, precision)
        if key in self._runners:
            return self._runners[key]
        if key in self._failed:
            raise self._failed[key]
        why = unavailable(backend, precision)
        if why:
            raise BuildUnavailable(why, skip=True)
        build = self.build(preset, spec_for(backend, precision))
        if not build.runnable:
            failure = BuildUnavailable(f"{build.label}: {build.status_text()}", skip=False)
            self._failed[key] = failure
            raise failure
        runner = open_runner(build, threads=self.threads)
        runner.warmup(self.warmup)
        self._runners[key] = runner
        return runner

    def status(self, preset: str, backend: str, precision: str) -> str:
        return self.build(preset, spec_for(backend, precision)).status_text()

    def size_mb(self, runner: Runner) -> float | None:
        return model_size_mb(runner)

    # --- the eager baseline ---------------------------------------------------------------------

    def baseline(self, preset: str, batch: int) -> LatencyStats:
        """Eager PyTorch FP32 ``runner.infer`` latency at ``batch``, measured once per session
        with per-call ``perf_counter_ns`` (about 3 s of calls, 30 to 300)."""
        key = (preset, batch)
        if key not in self._baselines:
            runner = self.runner(preset, "torch", "fp32")
            x = self.inputs(preset, batch)
            self.settle(lambda: runner.infer(x))
            probe = measure(lambda: runner.infer(x), batch=batch, iterations=3, warmup=0)
            iterations = int(np.clip(3000.0 / max(probe.mean_ms, 1e-3), 30, 300))
            self._baselines[key] = measure(lambda: runner.infer(x), batch=batch,
                                           iterations=iterations, warmup=0)
        return self._baselines[key]

    def baseline_for(self, preset: str, batch: int, backend: str, precision: str,
                     samples_ms: np.ndarray) -> LatencyStats:
        """The baseline a row is compared with. The eager FP32 row *is* the baseline: its own
        samples become the session's baseline at ``batch`` (so it reads 1.00× and the rows
        after it compare with the figures it shows); other rows get :meth:`baseline`."""
        if backend == "torch" and precision == "fp32":
            self._baselines[(preset, batch)] = LatencyStats(
                batch, 0, np.asarray(samples_ms, dtype=np.float64))
        return self.baseline(preset, batch)

    def settle(self, fn: Callable[[], Any]) -> None:
        """Untimed calls: at least :attr:`warmup` and :attr:`settle_s` seconds, so the previous
        benchmark's runtime threads (PyTorch's OpenMP pool spins) are idle before timing."""
        for _ in range(self.warmup):
            fn()
        settle(fn, self.settle_s)

    def close(self) -> None:
        for runner in self._runners.values():
            runner.close()
        self._runners.clear()


def percentiles(samples_s: list[float] | np.ndarray) -> dict[str, float]:
    """p50/p99/mean (ms) of per-call times in seconds."""
    a = np.asarray(samples_s, dtype=np.float64) * 1e3
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "mean_ms": float(a.mean())}


def summary_table(records: list[Record]) -> list[str]:
    """The suite's figures as text, one block per group."""
    lines: list[str] = []
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(r.group, []).append(r)
    for group, rows in groups.items():
        lines.append(f"-- {group} --")
        is_stream = any("overhead_p99_ms" in r.info for r in rows)
        if is_stream:
            header = ["benchmark", "build", "spectra/s", "overhead p50", "overhead p99",
                      "total p99", "lost"]
            body = [[r.name, str(r.info.get("build", "-")), _f(r.info.get("spectra_per_s"), ",.0f"),
                     _f(r.info.get("overhead_p50_ms"), ".3f"), _f(r.info.get("overhead_p99_ms"),
                                                                  ".3f"),
                     _f(r.info.get("total_p99_ms"), ".3f"), str(r.info.get("frames_lost", "-"))]
                    for r in rows]
        else:
            header = ["build", "p50 ms", "p99 ms", "min ms", "spectra/s", "size MB",
                      "speed-up p50", "speed-up min"]
            body = [[r.name, _f(r.info.get("p50_ms"), ".3f"), _f(r.info.get("p99_ms"), ".3f"),
                     _f(r.info.get("min_ms"), ".3f"), _f(r.info.get("spectra_per_s"), ",.0f"),
                     _f(r.info.get("model_size_mb"), ".2f"),
                     _f(r.info.get("speedup_vs_eager_fp32"), ".2f") + "×",
                     _f(r.info.get("speedup_vs_eager_fp32_min"), ".2f") + "×"]
                    for r in rows]
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                  for row in [header, *body]]
    return lines


def _f(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _loads_as(bundle_cls, out: Path, config) -> bool:
    """Whether the cached bundle in ``out`` verifies and has ``config`` (a bundle cached by an
    older pace-edge, without a model.json digest, is retrained)."""
    from pace_edge.errors import BundleError

    try:
        return bundle_cls.load(out).config == config
    except BundleError:
        return False
