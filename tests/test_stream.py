"""The streaming classifier end to end: emulator on a pty → driver → pipeline → runner → JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pace_edge.cli.main import main
from pace_edge.streaming.drivers import open_spectrometer
from pace_edge.streaming.emulator import Emulator
from pace_edge.streaming.errors import ConfigError
from pace_edge.streaming.pipeline import StreamClassifier, StreamConfig

LASER_NM = 785.0  # the emulator's default laser: its 790-1000 nm axis covers 400-1800 cm-1


@pytest.fixture(scope="module")
def runner(synthetic_export: Path):
    from pace_edge.runtimes import load_runner

    with load_runner(synthetic_export, backend="onnxruntime", threads=1) as r:
        yield r


def stream(emu: Emulator, runner, n: int, **config) -> tuple[list[dict], object]:
    records: list[dict] = []
    options = {"timeout": 0.3} | ({"query": emu_query(emu)} if emu.protocol == "ascii" else {})
    if emu.protocol == "ascii":
        options["wavelength_coefficients"] = emu.coefficients
        options["max_count"] = 4095
    device = open_spectrometer(emu.protocol, emu.port, **options)
    try:
        sc = StreamClassifier(device, runner, StreamConfig(laser_nm=LASER_NM, max_frames=n,
                                                           **config), records.append)
        stats = sc.run()
    finally:
        device.close()
    return records, stats


def emu_query(emu: Emulator) -> str:
    return "SPEC.READ?"


@pytest.mark.parametrize("schedule", ["threaded", "inline"])
@pytest.mark.parametrize("protocol", ["obp", "ascii"])
def test_every_frame_classified_with_latency_split(runner, protocol: str, schedule: str) -> None:
    extra = {"query": "SPEC.READ?"} if protocol == "ascii" else {}
    with Emulator(protocol, seed=1, **extra) as emu:
        records, stats = stream(emu, runner, 40, schedule=schedule)
        served = sum(emu.stats.labels.values())
    assert stats.received == 40 and stats.classified == 40 and stats.accounted
    assert len(records) == 40
    first = records[0]
    assert first["class"] in runner.classes
    assert sum(first["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert set(first["latency_ms"]) == {"read", "preprocess", "infer", "total"}
    assert [r["seq"] for r in records] == sorted(r["seq"] for r in records)
    assert served >= 40
    summary = stats.summary()
    assert summary["latency_ms"]["infer"]["p99"] >= summary["latency_ms"]["infer"]["p50"]


def test_predictions_match_the_runner_on_the_same_spectra(runner) -> None:
    """The streaming path gives the probabilities the batch path gives for the same frames."""
    from pace_edge.streaming.spectral_axis import SpectralAxis

    records: list[dict] = []
    frames = []
    with Emulator("obp", seed=2) as emu:
        device = open_spectrometer("obp", emu.port, timeout=0.5)
        read = device.read_spectrum

        def recording_read():
            frame = read()
            frames.append(frame)
            return frame

        device.read_spectrum = recording_read
        try:
            stats = StreamClassifier(device, runner, StreamConfig(laser_nm=LASER_NM,
                                                                   max_frames=12),
                                     records.append).run()
        finally:
            device.close()
        axis = SpectralAxis(device.wavelengths(), LASER_NM)
    assert stats.classified == 12 and len(frames) == 12
    for record, frame in zip(records, frames, strict=True):
        assert record["seq"] == frame.sequence
        intensity, shift = axis.apply(frame.counts)
        proba = runner.predict_proba(intensity, shift)[0]
        assert runner.classes[int(proba.argmax())] == record["class"]
        np.testing.assert_allclose(proba, list(record["probabilities"].values()), atol=1e-6)


@pytest.mark.parametrize("schedule", ["threaded", "inline"])
@pytest.mark.parametrize("protocol", ["obp", "ascii"])
def test_fault_soak_accounts_for_every_frame(runner, protocol: str, schedule: str) -> None:
    faults = "checksum=0.03,truncate=0.005,garbage=0.03,stall=0.005,disconnect=0.004," \
             "saturate=0.02,pixels=0.02" + (",nan=0.02" if protocol == "ascii" else "")
    extra = {"query": "SPEC.READ?"} if protocol == "ascii" else {}
    n = 600
    with Emulator(protocol, faults=faults, seed=5, reconnect_s=0.02, **extra) as emu:
        records, stats = stream(emu, runner, n, schedule=schedule)
        served = emu.stats
    f = served.faults
    assert stats.received == n == served.frames
    assert stats.accounted and len(records) == n
    rejected = stats.rejected
    assert rejected["saturated"] == f["saturate"]
    assert rejected["transport_closed"] == f["disconnect"] == stats.reconnects
    assert rejected["transport_timeout"] == f["stall"]
    assert stats.classified == n - sum(rejected.values())
    assert all("rejected" in r or "class" in r for r in records)


def test_averaging_folds_frames_into_one_spectrum(runner) -> None:
    with Emulator("obp", seed=3) as emu:
        records, stats = stream(emu, runner, 20, average=4)
    assert stats.received == 20 and stats.classified == 5 and stats.frames_classified == 20
    assert all(r["frames"] == 4 for r in records) and stats.accounted


@pytest.mark.parametrize("schedule", ["threaded", "inline"])
def test_schedule_decides_which_thread_reads(runner, schedule: str) -> None:
    """inline reads and classifies on the calling thread; threaded reads on its own."""
    import threading

    readers: set[str] = set()
    with Emulator("obp", seed=2) as emu:
        device = open_spectrometer("obp", emu.port, timeout=0.5)
        read = device.read_spectrum

        def traced_read():
            readers.add(threading.current_thread().name)
            return read()

        device.read_spectrum = traced_read
        try:
            stats = StreamClassifier(device, runner, StreamConfig(
                laser_nm=LASER_NM, max_frames=10, schedule=schedule), lambda r: None).run()
        finally:
            device.close()
    assert stats.classified == 10 and stats.accounted
    expected = threading.current_thread().name if schedule == "inline" else "pace-reader"
    assert readers == {expected}
    if schedule == "inline":
        assert stats.batches == 10  # no micro-batching


def test_unknown_schedule_is_a_config_error(runner) -> None:
    with Emulator("obp", seed=0) as emu:
        device = open_spectrometer("obp", emu.port, timeout=0.5)
        try:
            with pytest.raises(ConfigError, match="schedule must be one of threaded, inline"):
                StreamClassifier(device, runner, StreamConfig(laser_nm=LASER_NM,
                                                              schedule="fast"), print)
        finally:
            device.close()


def test_device_axis_must_cover_the_model(runner) -> None:
    with Emulator("obp", seed=0) as emu:
        device = open_spectrometer("obp", emu.port, timeout=0.5)
        try:
            with pytest.raises(ConfigError, match="pass --laser-nm"):
                StreamClassifier(device, runner, StreamConfig(laser_nm=None), print)
        finally:
            device.close()


@pytest.mark.parametrize("schedule", ["threaded", "inline"])
def test_cli_stream_writes_json_lines_and_summary(synthetic_export: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  schedule: str) -> None:
    out, summary = tmp_path / "out.jsonl", tmp_path / "summary.json"
    with Emulator("obp", seed=4) as emu:
        code = main(["stream", "--port", emu.port, "--protocol", "obp", "--model",
                     str(synthetic_export), "--laser-nm", str(LASER_NM), "--max-frames", "15",
                     "--output", str(out), "--summary-json", str(summary), "--threads", "1",
                     "--backend", "onnxruntime", "--schedule", schedule])
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 15
    if schedule == "inline":
        assert all(line["batch"] == 1 for line in lines)
    s = json.loads(summary.read_text())
    assert s["received"] == 15 and s["accounted"]
    err = capsys.readouterr().err
    assert "backend onnxruntime" in err and "frames received 15" in err


def test_cli_stream_stops_cleanly_on_sigint(synthetic_export: Path) -> None:
    with Emulator("obp", seed=6, rate=200) as emu:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pace_edge.cli.main", "stream", "--port", emu.port,
             "--protocol", "obp", "--model", str(synthetic_export), "--laser-nm", "785"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()  # a classified spectrum has arrived
            assert json.loads(first)["class"]
            time.sleep(0.2)
            os.kill(proc.pid, signal.SIGINT)
            rest, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "frames received" in err
    received = int(err.split("frames received ")[1].split(",")[0])
    assert received == 1 + len(rest.splitlines())


def test_cli_stream_user_errors(synthetic_export: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pace_edge.cli.main", "stream", "--port",
         str(tmp_path / "no-such-port"), "--protocol", "obp", "--model", str(synthetic_export)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 2  # backend line, then the one error line
    assert "no-such-port" in out.stderr.strip().splitlines()[-1]
