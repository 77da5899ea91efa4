"""The native runtime (C++ ``pace-stream``) against the Python reference.

Builds once per session with CMake (``pace-edge build-native``'s code path) into ``./build``
(or ``$PACE_NATIVE_BUILD_DIR``), runs its ctest suite, then checks: the preprocessing numbers
against :mod:`pace_edge.preprocess`; the same export and the same (seeded) emulator stream through
``pace-stream`` and through :class:`~pace_edge.streaming.pipeline.StreamClassifier` with the
OpenVINO runner (FP32: |Δp| <= 1e-4, identical classes and rejections); refusal of tampered or
unsupported exports; fault accounting, reconnects and a clean stop on SIGINT.
Skips (with the reason) where CMake, a C++ compiler or OpenVINO's C++ runtime is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from pace_edge.preprocess import NORMALIZE_METHODS, Pipeline
from pace_edge.streaming.drivers import open_spectrometer
from pace_edge.streaming.emulator import Emulator

ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = Path(os.environ.get("PACE_NATIVE_BUILD_DIR", ROOT / "build"))
LASER_NM = 785.0
FP32_MAX_DP = 1e-4
TIMEOUT_S = 1.0  # per spectrum: generous, so that a loaded machine does not turn replies stale


def _missing_toolchain() -> str | None:
    if shutil.which("cmake") is None:
        return "cmake is not installed (the native runtime is built with CMake)"
    if shutil.which(os.environ.get("CXX", "c++")) is None:
        return "no C++ compiler (c++ / $CXX) is installed"
    try:
        import openvino.utils
    except ImportError:
        return "openvino is not installed (its wheel provides the C++ runtime pace-stream links)"
    if not openvino.utils.get_cmake_path():
        return "the openvino package has no CMake config"
    return None


@pytest.fixture(scope="session")
def native_build() -> Path:
    """The CMake build directory with pace-stream, pace-preprocess and the ctest suite."""
    reason = _missing_toolchain()
    if reason:
        pytest.skip(reason)
    from pace_edge.cli.build_native import build_native

    cache = BUILD_DIR / "CMakeCache.txt"
    tensorrt = cache.is_file() and "PACE_WITH_TENSORRT:BOOL=ON" in cache.read_text()
    build_native(BUILD_DIR, tensorrt=tensorrt, jobs=2, quiet=True)  # incremental after once
    return BUILD_DIR


@pytest.fixture(scope="session")
def pace_stream(native_build: Path) -> str:
    return str(native_build / "pace-stream")


@pytest.fixture(scope="module")
def native_export(synthetic_export: Path) -> Path:
    """The x86 export (OpenVINO IR + ONNX, FP32) of the synthetic bundle: resample, despike,
    asls baseline, SNV; tiny PACE."""
    return synthetic_export


@pytest.fixture(scope="module")
def reference_runner(native_export: Path):
    from pace_edge.runtimes import load_runner

    with load_runner(native_export, backend="openvino", threads=1) as runner:
        yield runner


# -- build and unit tests ----------------------------------------------------------------------


CTEST_SUITES = ("json", "hash", "obp", "ascii", "preprocess", "manifest", "signature", "stream",
                "engine_check")


def test_ctest_suite_passes(native_build: Path) -> None:
    """ctest lists every doctest case of every test executable ("SUITE:case") and runs them."""
    listed = subprocess.run(["ctest", "--test-dir", str(native_build), "-N"],
                            capture_output=True, text=True, timeout=120, check=True)
    names = re.findall(r"Test +#\d+: (.+)", listed.stdout)
    for suite in CTEST_SUITES:
        assert sum(n.startswith(f"{suite}:") for n in names) >= 3, (suite, names)
    assert "manifest:failed gates are found and refused without allow failed" in names
    result = subprocess.run(["ctest", "--test-dir", str(native_build), "--output-on-failure"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"0 tests failed out of {len(names)}" in result.stdout


@pytest.mark.parametrize("package", ["OpenSSL", "nlohmann_json", "Eigen3"])
def test_a_missing_system_library_names_the_install_line(tmp_path: Path, package: str) -> None:
    """CMake stops at the first missing system library with the one apt-get line (README)."""
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed (the native runtime is built with CMake)")
    result = subprocess.run(["cmake", "-S", str(ROOT), "-B", str(tmp_path / "build"),
                             f"-DCMAKE_DISABLE_FIND_PACKAGE_{package}=TRUE"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    message = " ".join(result.stderr.split())  # CMake wraps its messages
    assert ("not found; on Debian/Ubuntu (JetPack included): apt-get install -y libssl-dev "
            "nlohmann-json3-dev libeigen3-dev doctest-dev") in message, result.stderr


def test_version_lists_the_backends(pace_stream: str) -> None:
    out = subprocess.run([pace_stream, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("pace-stream ") and "openvino" in out.stdout


# -- preprocessing numbers ---------------------------------------------------------------------


def _spectra(n: int, axis: np.ndarray, seed: int) -> np.ndarray:
    """Raman-like counts: sloped fluorescence, bands, noise, a cosmic spike in every other."""
    rng = np.random.default_rng(seed)
    t = (axis - axis[0]) / (axis[-1] - axis[0])
    x = np.empty((n, axis.size))
    for i in range(n):
        y = 600 + np.polyval(rng.normal(0, 300, 3), t) + 400 * np.exp(-((t - 0.4) / 0.5) ** 2)
        for _ in range(rng.integers(3, 9)):
            centre, width = rng.uniform(0.05, 0.95), rng.uniform(0.003, 0.03)
            y += rng.uniform(50, 900) * np.exp(-0.5 * ((t - centre) / width) ** 2)
        y += rng.normal(0, 6, axis.size)
        if i % 2:
            y[rng.integers(5, axis.size - 5)] += rng.uniform(500, 3000)
        x[i] = np.round(y)
    return x


def _native_preprocess(native_build: Path, steps: list, axis: np.ndarray, x: np.ndarray) -> list:
    spectra = [[None if np.isnan(v) else v for v in row] for row in x.tolist()]  # strict JSON
    doc = {"preprocessing": steps, "axis": axis.tolist(), "spectra": spectra}
    result = subprocess.run([str(native_build / "pace-preprocess")],
                            input=json.dumps(doc, allow_nan=False),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["results"]


AXIS = np.linspace(400.0, 1800.0, 701)
SPECS = [
    "savgol:11:3", "savgol:9:2:1", "savgol:21:4",
    "despike", "despike:4:2",
    "baseline:asls", "baseline:asls:lam=1e5:p=0.02", "baseline:asls:lam=1e4:diff_order=1",
    "baseline:arpls", "baseline:arpls:lam=1e6:max_iter=20",
    "baseline:airpls", "baseline:airpls:lam=1e5:normalize_weights=true",
    "baseline:iarpls", "baseline:iarpls:lam=1e4:diff_order=1",
    "baseline:psalsa", "baseline:psalsa:lam=1e6:p=0.05:k=20",
    "baseline:drpls", "baseline:drpls:lam=1e6:eta=0.3:diff_order=3",
    "baseline:iasls", "baseline:iasls:lam=1e5:p=0.05:lam_1=1e-3",
    "normalize:minmax", "normalize:vector", "normalize:snv", "normalize:area", "normalize:max",
    "crop:450:1750,savgol:11:3,normalize:snv",
    "resample:420:1780:500,baseline:asls:lam=1e5,normalize:snv",
    "despike,baseline:asls:lam=1e5,normalize:snv",
]


def test_parity_specs_cover_every_native_step() -> None:
    """Every step and baseline method that both sides offer is in the parity specs above."""
    from pace_edge.preprocess.native_support import NATIVE_BASELINES, NATIVE_STEPS

    steps = [step for spec in SPECS for step in Pipeline.from_spec(spec).to_list()]
    assert {s["name"] for s in steps} == set(NATIVE_STEPS)
    assert {s["method"] for s in steps if s["name"] == "baseline"} == set(NATIVE_BASELINES)
    assert {s["method"] for s in steps if s["name"] == "normalize"} == set(NORMALIZE_METHODS)


@pytest.mark.parametrize("spec", SPECS)
def test_preprocessing_matches_python(native_build: Path, spec: str) -> None:
    """Every step within 1e-6 of the Python pipeline, relative to the spectrum's scale."""
    x = _spectra(8, AXIS, seed=len(spec))
    pipeline = Pipeline.from_spec(spec)
    results = _native_preprocess(native_build, pipeline.to_list(), AXIS, x)
    for row, result in zip(x, results, strict=True):
        want, want_axis = pipeline.apply(row, AXIS)
        got = np.asarray(result["x"])
        assert got.shape == want.shape
        np.testing.assert_array_equal(np.asarray(result["axis"]), want_axis)
        scale = np.abs(want).max() or 1.0
        assert np.abs(got - want).max() <= 1e-6 * scale, spec


def test_anchored_pipeline_from_a_device_axis(native_build: Path) -> None:
    """The manifest's form (resample onto the model grid first) from a curved device axis."""
    from pace_edge.streaming.emulator import default_coefficients
    from pace_edge.streaming.spectral_axis import SpectralAxis

    pipeline = Pipeline.from_spec("despike,baseline:asls,normalize:snv").anchored(AXIS)
    coeffs = [float(np.float32(c)) for c in default_coefficients(1024)]
    device = SpectralAxis.from_coefficients(coeffs, 1024, LASER_NM).sorted_axis()
    x = _spectra(6, device, seed=3)
    results = _native_preprocess(native_build, pipeline.to_list(), device, x)
    for row, result in zip(x, results, strict=True):
        want, _ = pipeline.apply(row, device)
        assert np.abs(np.asarray(result["x"]) - want).max() <= 1e-6 * np.abs(want).max()


def test_unsupported_steps_are_refused_by_name(native_build: Path) -> None:
    steps = [{"name": "baseline", "method": "snip", "options": {}}]
    result = subprocess.run([str(native_build / "pace-preprocess")], capture_output=True,
                            text=True, input=json.dumps({"preprocessing": steps, "axis": [1, 2],
                                                         "spectra": []}))
    assert result.returncode == 2
    assert "baseline method 'snip' is not implemented in the native runtime" in result.stderr


def test_native_support_matches_the_binary(native_build: Path) -> None:
    """The export's record (pace_edge.preprocess.native_support) says "runs natively" for
    exactly the baseline methods pace-preprocess accepts."""
    from pace_edge.preprocess.baseline import SUPPORTED_BASELINES
    from pace_edge.preprocess.native_support import native_support

    for method in SUPPORTED_BASELINES:
        steps = [{"name": "baseline", "method": method, "options": {}}]
        result = subprocess.run([str(native_build / "pace-preprocess")], capture_output=True,
                                text=True, input=json.dumps({"preprocessing": steps,
                                                             "axis": [1, 2], "spectra": []}))
        assert (result.returncode == 0) == native_support(steps)["preprocessing"], method


def test_data_errors_are_reported_per_spectrum(native_build: Path) -> None:
    steps = Pipeline.from_spec("normalize:snv").to_list()
    bad = np.ones((2, 5))
    bad[1, 2] = np.nan
    results = _native_preprocess(native_build, steps, np.arange(5.0), bad)
    assert "x" in results[0] and "non-finite intensity" in results[1]["error"]


# -- the same stream through both --------------------------------------------------------------


def _run_native(pace_stream: str, export: Path, emu: Emulator, n: int, tmp_path: Path,
                *extra: str) -> tuple[list[dict], dict, str]:
    summary = tmp_path / f"summary-{time.monotonic_ns()}.json"
    command = [pace_stream, "--port", emu.port, "--protocol", emu.protocol, "--model",
               str(export), "--laser-nm", str(LASER_NM), "--timeout", str(TIMEOUT_S),
               "--max-frames", str(n), "--threads", "1", "--summary-json", str(summary), *extra]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    return records, json.loads(summary.read_text()), result.stderr


def _run_python(runner, emu: Emulator, n: int, average: int = 1,
                **options) -> tuple[list[dict], object]:
    from pace_edge.streaming.pipeline import StreamClassifier, StreamConfig

    records: list[dict] = []
    device = open_spectrometer(emu.protocol, emu.port, timeout=TIMEOUT_S, **options)
    try:
        config = StreamConfig(laser_nm=LASER_NM, max_frames=n, average=average)
        stats = StreamClassifier(device, runner, config, records.append).run()
    finally:
        device.close()
    return records, stats


def _compare(native: list[dict], python: list[dict]) -> float:
    """The same outcome for every frame: the same rejections (reason, seq) in the same order,
    the same classified spectra (seq, class, frames) with |Δp| <= 1e-4. Within a micro-batch
    rejections are written before classifications, so only each kind's own order is fixed."""
    assert len(native) == len(python)
    def rejections(out: list[dict]) -> list[tuple[str, int | None]]:
        return [(r["rejected"], r["seq"]) for r in out if "rejected" in r]

    assert rejections(native) == rejections(python)
    got_all = [r for r in native if "class" in r]
    want_all = [r for r in python if "class" in r]
    assert len(got_all) == len(want_all)
    worst = 0.0
    for got, want in zip(got_all, want_all, strict=True):
        assert set(got) == set(want)
        for key in ("seq", "class", "frames", "accepted"):
            assert got[key] == want[key], (got, want)
        assert got.get("reason") == want.get("reason"), (got, want)
        assert list(got["probabilities"]) == list(want["probabilities"])
        dp = np.abs(np.subtract(list(got["probabilities"].values()),
                                list(want["probabilities"].values()))).max()
        worst = max(worst, float(dp))
        assert set(got["latency_ms"]) == {"read", "preprocess", "infer", "total"}
    assert worst <= FP32_MAX_DP
    return worst


OBP_FAULTS = "checksum=0.05,garbage=0.05,truncate=0.02,saturate=0.03,pixels=0.03"
ASCII_FAULTS = "checksum=0.05,garbage=0.05,truncate=0.03,nan=0.05,saturate=0.03,pixels=0.03"


def test_obp_stream_matches_python(pace_stream: str, native_export: Path, reference_runner,
                                   tmp_path: Path) -> None:
    n = 80
    with Emulator("obp", faults=OBP_FAULTS, seed=11) as emu:
        native, summary, log = _run_native(pace_stream, native_export, emu, n, tmp_path)
    with Emulator("obp", faults=OBP_FAULTS, seed=11) as emu:
        python, stats = _run_python(reference_runner, emu, n)
    worst = _compare(native, python)
    print(f"OBP parity: {n} frames, max |Δp| {worst:.2e}")
    assert summary["received"] == n and summary["accounted"]
    assert summary["rejected"] == dict(stats.rejected) and summary["classified"] == stats.classified
    assert set(summary["rejected"]) >= {"checksum_error", "saturated"}
    assert "frames received 80" in log and "peak RSS" in log


def test_ascii_stream_matches_python(pace_stream: str, native_export: Path, reference_runner,
                                     tmp_path: Path) -> None:
    n = 60
    query = "SPEC.READ?"
    with Emulator("ascii", faults=ASCII_FAULTS, seed=12, query=query) as emu:
        coeffs = ",".join(repr(c) for c in emu.coefficients)
        native, summary, _ = _run_native(pace_stream, native_export, emu, n, tmp_path,
                                         "--query", query, "--wavelength-coeffs", coeffs,
                                         "--max-count", "4095")
    with Emulator("ascii", faults=ASCII_FAULTS, seed=12, query=query) as emu:
        python, stats = _run_python(reference_runner, emu, n, query=query, max_count=4095,
                                    wavelength_coefficients=emu.coefficients)
    worst = _compare(native, python)
    print(f"ASCII parity: {n} frames, max |Δp| {worst:.2e}")
    assert summary["rejected"] == dict(stats.rejected) and summary["accounted"]
    assert {"non_finite_value", "non_numeric_value"} <= set(summary["rejected"])


def test_averaging_matches_python(pace_stream: str, native_export: Path, reference_runner,
                                  tmp_path: Path) -> None:
    with Emulator("obp", seed=13) as emu:
        native, summary, _ = _run_native(pace_stream, native_export, emu, 12, tmp_path,
                                         "--average", "4")
    with Emulator("obp", seed=13) as emu:
        python, _ = _run_python(reference_runner, emu, 12, average=4)
    _compare(native, python)
    assert summary["classified"] == 3 and summary["frames_classified"] == 12


def test_fault_soak_accounts_for_every_frame(pace_stream: str, native_export: Path,
                                             tmp_path: Path) -> None:
    """Stalls, disconnects and corrupt frames: nothing crashes, every frame is accounted."""
    n = 200
    faults = "checksum=0.03,truncate=0.01,garbage=0.03,stall=0.01,disconnect=0.015," \
             "saturate=0.02,pixels=0.02"
    with Emulator("obp", faults=faults, seed=5, reconnect_s=0.05) as emu:
        records, summary, log = _run_native(pace_stream, native_export, emu, n, tmp_path)
        served = emu.stats
    f = served.faults
    assert summary["received"] == n == served.frames and summary["accounted"]
    assert len(records) == n
    rejected = summary["rejected"]
    assert rejected.get("transport_closed", 0) == f["disconnect"] == summary["reconnects"] > 0
    assert rejected.get("transport_timeout", 0) == f["stall"]
    assert rejected.get("saturated", 0) == f["saturate"]
    assert summary["classified"] == n - summary["rejected_total"]
    assert "device reconnected" in log


# -- refusals and signals ----------------------------------------------------------------------


def _stream_error(pace_stream: str, export: Path) -> subprocess.CompletedProcess:
    return subprocess.run([pace_stream, "--port", "/dev/null", "--protocol", "obp", "--model",
                           str(export)], capture_output=True, text=True, timeout=60)


def test_tampered_missing_and_unsupported_exports_are_refused(
    pace_stream: str, native_export: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "export"
    shutil.copytree(native_export, copy)
    weights = copy / "model.bin"
    data = bytearray(weights.read_bytes())
    data[100] ^= 1
    weights.write_bytes(bytes(data))
    result = _stream_error(pace_stream, copy)
    assert result.returncode == 2
    assert "model.bin: sha256" in result.stderr and "altered or replaced" in result.stderr

    result = _stream_error(pace_stream, tmp_path / "nowhere")
    assert result.returncode == 2 and "not an export directory" in result.stderr

    shutil.rmtree(copy)
    shutil.copytree(native_export, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["input"]["preprocessing"][2] = {"name": "baseline", "method": "snip", "options": {}}
    _rewrite(copy / "manifest.json", json.dumps(manifest).encode())  # digest kept in step
    result = _stream_error(pace_stream, copy)
    assert result.returncode == 2 and "baseline method 'snip' is not implemented" in result.stderr

    _rewrite(copy / "manifest.json", b"{not json")
    result = _stream_error(pace_stream, copy)
    assert result.returncode == 2 and "not valid JSON" in result.stderr

    result = subprocess.run([pace_stream, "--protocol", "usb"], capture_output=True, text=True)
    assert result.returncode == 2 and "usage: pace-stream" in result.stderr


def test_python_only_preprocessing_is_recorded_and_refused(
    pace_stream: str, native_export: Path, tmp_path: Path
) -> None:
    """The export says whether pace-stream runs its preprocessing; pace-stream reads that
    record and refuses, naming the step, in one line."""
    from pace_edge.preprocess.native_support import native_runtime_entry

    manifest = json.loads((native_export / "manifest.json").read_text())
    assert manifest["runtime"]["pace-stream"] == {"preprocessing": True}
    copy = tmp_path / "export"
    shutil.copytree(native_export, copy)
    manifest["input"]["preprocessing"][2] = {"name": "baseline", "method": "snip", "options": {}}
    manifest["runtime"].update(native_runtime_entry(manifest["input"]["preprocessing"]))
    _rewrite(copy / "manifest.json", json.dumps(manifest).encode())
    result = _stream_error(pace_stream, copy)
    assert result.returncode == 2 and result.stdout == ""
    assert ("manifest.json: pace-stream cannot run this export's preprocessing step baseline:snip "
            "(pace-stream computes the baseline methods asls, iasls, arpls, airpls, iarpls, psalsa "
            "and drpls only; run this export with pace-edge stream (Python))") in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("gate", ["status", "accepted", "accuracy", "parity"])
def test_failed_export_is_refused_unless_allowed(pace_stream: str, native_export: Path,
                                                 tmp_path: Path, gate: str) -> None:
    """The manifest's status.failed_gates (or, written before it, a failed parity row or
    accuracy gate) stops pace-stream in one line unless --allow-failed; a gate accepted with
    export --force (status.accepted_gates) does not."""
    copy = tmp_path / "export"
    shutil.copytree(native_export, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    if gate in ("status", "accepted"):
        failed = ["sensitivity"] if gate == "status" else []
        manifest["status"] = {"passed": False, "failed_gates": failed,
                              "accepted_gates": ["accuracy"],
                              "problems": {"sensitivity": "2 layers over tolerance",
                                           "accuracy": "drop 2.15 pp"}}
        expected = "failed its sensitivity gate (sensitivity: 2 layers over tolerance)"
    elif gate == "accuracy":
        manifest.pop("status", None)  # written before the exporter recorded its gates
        manifest["accuracy"] = {"data": "cov/test", "spectra": 93, "passed": False}
        expected = "failed its accuracy gate (accuracy: on cov/test)"
    else:
        manifest.pop("status", None)
        row = manifest["parity"][0]
        row.update(passed=False, max_abs_diff=None)  # strict JSON: a NaN figure is null
        expected = f"failed its parity gate (parity: {row['artefact']} on {row['runtime']})"
    _rewrite(copy / "manifest.json", json.dumps(manifest).encode())
    if gate != "accepted":
        result = _stream_error(pace_stream, copy)
        assert result.returncode == 2 and result.stdout == ""
        assert f"{copy} {expected}; --allow-failed runs it anyway" in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
    with Emulator("obp", seed=0) as emu:
        extra = () if gate == "accepted" else ("--allow-failed",)
        records, summary, _ = _run_native(pace_stream, copy, emu, 3, tmp_path, *extra)
    assert summary["received"] == 3 and all("class" in r for r in records)


def _rewrite(path: Path, text: bytes) -> None:
    """Replace a manifest and its digest, as a writer that knows the format would."""
    from pace_edge.integrity.digest import write_digest

    path.write_bytes(text)
    write_digest(path, text)


@pytest.mark.parametrize("edit", ["class name", "axis", "preprocessing", "missing digest"])
def test_edited_manifests_are_refused(pace_stream: str, native_export: Path, tmp_path: Path,
                                      edit: str) -> None:
    copy = tmp_path / "export"
    shutil.copytree(native_export, copy)
    path = copy / "manifest.json"
    manifest = json.loads(path.read_text())
    if edit == "class name":
        manifest["classes"][0] = "renamed"
    elif edit == "axis":
        manifest["input"]["axis"][0] += 1.0
    elif edit == "preprocessing":
        manifest["input"]["preprocessing"].pop()
    if edit == "missing digest":
        (copy / "manifest.json.sha256").unlink()
        expected = ("manifest.json.sha256 is missing: manifest.json is not covered by a digest; "
                    "exports written by earlier pace-edge versions lack it; re-export")
    else:
        path.write_text(json.dumps(manifest, indent=2) + "\n")
        expected = "manifest.json was edited after it was written"
    result = _stream_error(pace_stream, copy)
    assert result.returncode == 2 and expected in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_trusted_keys(pace_stream: str, native_export: Path, tmp_path: Path) -> None:
    """Exports signed in Python (cryptography) are checked by pace-stream (OpenSSL)."""
    from pace_edge.export.manifest import sign_export
    from pace_edge.integrity.signing import generate_key_pair, load_private_key

    ours, ours_pub = generate_key_pair(tmp_path / "keys", "lab")
    theirs, _ = generate_key_pair(tmp_path / "keys", "other")
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    shutil.copy(ours_pub, trusted)
    signed = tmp_path / "signed"
    shutil.copytree(native_export, signed)
    sign_export(signed, load_private_key(ours))
    with Emulator("obp", seed=0) as emu:
        records, summary, _ = _run_native(pace_stream, signed, emu, 5, tmp_path,
                                          "--trusted-keys", str(trusted))
    assert summary["received"] == 5 and all("class" in r for r in records)

    foreign = tmp_path / "foreign"
    shutil.copytree(signed, foreign)
    sign_export(foreign, load_private_key(theirs))
    tampered = tmp_path / "tampered"
    shutil.copytree(signed, tampered)
    manifest = json.loads((tampered / "manifest.json").read_text())
    manifest["classes"][0] = "renamed"
    _rewrite(tampered / "manifest.json", json.dumps(manifest).encode())
    cases = {
        native_export: "is not signed (manifest.json.sig is missing) and only exports signed by "
                       f"one of the 1 trusted key in {trusted} may run",
        foreign: f"which is not one of the 1 trusted key in {trusted}",
        tampered: "the signature by trusted key lab.pub.pem does not match: manifest.json was "
                  "altered after signing",
    }
    for export, expected in cases.items():
        result = subprocess.run([pace_stream, "--port", "/dev/null", "--protocol", "obp",
                                 "--model", str(export), "--trusted-keys", str(trusted)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and expected in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
    result = subprocess.run([pace_stream, "--port", "/dev/null", "--protocol", "obp", "--model",
                             str(signed), "--trusted-keys", str(tmp_path / "nowhere")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "is not a directory" in result.stderr


def test_device_must_cover_the_model_axis(pace_stream: str, native_export: Path) -> None:
    with Emulator("obp", seed=0) as emu:
        result = subprocess.run([pace_stream, "--port", emu.port, "--protocol", "obp",
                                 "--model", str(native_export)],  # no --laser-nm: nm axis
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "pass --laser-nm" in result.stderr


def test_sigint_stops_cleanly_with_every_frame_accounted(
    pace_stream: str, native_export: Path, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.json"
    with Emulator("ascii", seed=4, rate=50.0, faults="checksum=0.1") as emu:
        coeffs = ",".join(repr(c) for c in emu.coefficients)
        proc = subprocess.Popen(
            [pace_stream, "--port", emu.port, "--protocol", "ascii", "--model",
             str(native_export), "--laser-nm", str(LASER_NM), "--wavelength-coeffs", coeffs,
             "--summary-json", str(summary)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        try:
            assert proc.stdout is not None
            while len(lines) < 10:
                line = proc.stdout.readline()
                assert line, proc.stderr.read() if proc.stderr else ""
                lines.append(json.loads(line))
            proc.send_signal(signal.SIGINT)
            rest, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    lines += [json.loads(line) for line in rest.splitlines()]
    result = json.loads(summary.read_text())
    assert result["accounted"] and result["received"] == len(lines)
    assert "frames received" in err and "peak RSS" in err


# -- real link speed, load, stop accounting, device identity ------------------------------------


def test_obp_at_9600_baud_with_one_second_integration(pace_stream: str, native_export: Path,
                                                      tmp_path: Path) -> None:
    """2,112-byte replies trickling at 9600 baud after a 1 s exposure, 0.5 s slack."""
    with Emulator("obp", baud=9600, seed=3, integration_us=1_000_000) as emu:
        summary = tmp_path / "s.json"
        result = subprocess.run(
            [pace_stream, "--port", emu.port, "--protocol", "obp", "--model", str(native_export),
             "--laser-nm", str(LASER_NM), "--integration-ms", "1000", "--timeout", "0.5",
             "--max-frames", "2", "--threads", "1", "--summary-json", str(summary)],
            capture_output=True, text=True, timeout=120)
        served = emu.stats.served
    assert result.returncode == 0, result.stderr
    s = json.loads(summary.read_text())
    assert s["received"] == s["classified"] == served == 2 and s["rejected"] == {}


@pytest.mark.parametrize("sig,protocol", [(signal.SIGINT, "obp"), (signal.SIGTERM, "ascii")])
def test_stop_accounts_for_what_the_device_served(pace_stream: str, native_export: Path,
                                                  tmp_path: Path, sig: int, protocol: str) -> None:
    summary = tmp_path / "summary.json"
    options = {"query": "SPEC.READ?"} if protocol == "ascii" else {}
    with Emulator(protocol, seed=4, rate=100, **options) as emu:
        extra = []
        if protocol == "ascii":
            extra = ["--query", "SPEC.READ?", "--wavelength-coeffs",
                     ",".join(repr(c) for c in emu.coefficients)]
        proc = subprocess.Popen(
            [pace_stream, "--port", emu.port, "--protocol", protocol, "--model",
             str(native_export), "--laser-nm", str(LASER_NM), "--summary-json", str(summary),
             "--threads", "1", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            assert json.loads(proc.stdout.readline())["class"]
            time.sleep(0.3)
            proc.send_signal(sig)
            rest, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        served = emu.stats.served
    assert proc.returncode == 0, err
    result = json.loads(summary.read_text())
    assert result["received"] == served == 1 + len(rest.splitlines()) and result["accounted"]


def test_busy_cpu_never_costs_a_frame_native(pace_stream: str, native_export: Path,
                                             tmp_path: Path) -> None:
    """CPU hogs on every core, the device at full speed in its own process."""
    import sys

    link = tmp_path / "sts"
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(os.cpu_count() or 1)]
    try:
        sim = subprocess.Popen(
            [sys.executable, "-m", "pace_edge.cli.main", "simulate", "--protocol", "obp",
             "--link", str(link), "--seed", "8"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert sim.stdout is not None and sim.stdout.readline().strip() == str(link)
        summary = tmp_path / "s.json"
        result = subprocess.run(
            [pace_stream, "--port", str(link), "--protocol", "obp", "--model",
             str(native_export), "--laser-nm", str(LASER_NM), "--timeout", "0.5",
             "--max-frames", "400", "--threads", "1", "--summary-json", str(summary)],
            capture_output=True, text=True, timeout=300)
        sim.send_signal(signal.SIGINT)
        out, _ = sim.communicate(timeout=30)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert result.returncode == 0, result.stderr
    served = int(out.split("served ")[1].split(" frames")[0])
    s = json.loads(summary.read_text())
    assert s["rejected"] == {} and s["received"] == s["classified"] == served == 400


@pytest.mark.parametrize("allow", [False, True])
def test_another_device_after_a_reconnect(pace_stream: str, native_export: Path,
                                          tmp_path: Path, allow: bool) -> None:
    link = tmp_path / "sts"
    summary = tmp_path / "s.json"
    first = Emulator("obp", link_path=link, serial_number="STS-A", rate=50)
    first.start()
    proc = subprocess.Popen(
        [pace_stream, "--port", str(link), "--protocol", "obp", "--model", str(native_export),
         "--laser-nm", str(LASER_NM), "--timeout", "0.3", "--threads", "1",
         "--summary-json", str(summary), *(["--allow-device-change"] if allow else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and json.loads(proc.stdout.readline())["class"]
        first.stop()
        with Emulator("obp", link_path=link, serial_number="STS-B", rate=50, seed=2) as second:
            if allow:
                deadline = time.monotonic() + 20
                while second.stats.served < 5 and time.monotonic() < deadline:
                    time.sleep(0.05)
                proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
            served_b = second.stats.served
    finally:
        if proc.poll() is None:
            proc.kill()
    s = json.loads(summary.read_text())
    assert s["accounted"]
    if allow:
        assert proc.returncode == 0, err
        assert s["device_changes"] == 1 and s["stop_reason"] is None and served_b >= 5
        assert "device changed on reconnect: 'STS-A' -> 'STS-B'" in err
    else:
        assert proc.returncode == 1, err
        assert "identity 'STS-B', expected 'STS-A'" in s["stop_reason"]
        assert "stopped: " in err and served_b == 0
