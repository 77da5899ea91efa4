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


# -- under load, at stop, odd outputs, another device ---------------------------------------


@pytest.fixture
def cpu_hogs():
    """A busy loop on every core, for the duration of the test."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(os.cpu_count() or 1)]
    try:
        yield len(hogs)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


class GilHeavyRunner:
    """Wraps a runner: each inference first spins in Python bytecode (holding the GIL in
    its slices) for ``spin_s``, as a heavy Python preprocessing step would."""

    def __init__(self, runner, spin_s: float = 0.01, nan_every: int = 0):
        self._runner = runner
        self.classes, self.axis = runner.classes, runner.axis
        self.spin_s = spin_s
        self.nan_every = nan_every
        self.calls = 0

    def preprocess(self, raw, axis):
        return self._runner.preprocess(raw, axis)

    def infer(self, inputs):
        return self._heavy(self._runner.infer(inputs))

    def judge_inputs(self, raw, inputs):
        """What the stream calls: the wrapped runner's verdicts on the spun (and poisoned)
        logits."""
        logits, features = self._runner.infer_with_features(inputs)
        logits = self._heavy(logits)
        return self._runner.spec.trust.judge(raw, logits, features), logits

    def _heavy(self, logits):
        end = time.perf_counter() + self.spin_s
        while time.perf_counter() < end:
            pass
        logits = np.array(logits, dtype=np.float32)
        if self.nan_every:
            for i in range(len(logits)):
                self.calls += 1
                if self.calls % self.nan_every == 0:
                    logits[i, 0] = np.nan
        return logits


def start_simulator(protocol: str, link: Path, *args: str) -> subprocess.Popen:
    """``pace-edge simulate`` in its own process (a device with its own CPU share)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pace_edge.cli.main", "simulate", "--protocol", protocol,
         "--link", str(link), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == str(link)
    return proc


def served_by(proc: subprocess.Popen) -> int:
    """Stop a simulator and read the count it prints: ``served N frames served ...``."""
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return int(out.split("served ")[1].split(" frames")[0])


@pytest.mark.parametrize("schedule", ["threaded", "inline"])
def test_busy_cpu_never_costs_a_frame(runner, cpu_hogs: int, tmp_path: Path,
                                      schedule: str) -> None:
    """CPU hogs on every core, the device at full speed in its own process, a GIL-heavy
    model: every frame the device served is received and classified."""
    link = tmp_path / "sts"
    sim = start_simulator("obp", link, "--seed", "8")
    try:
        device = open_spectrometer("obp", str(link), timeout=0.5)
        try:
            stats = StreamClassifier(device, GilHeavyRunner(runner), StreamConfig(
                laser_nm=LASER_NM, max_frames=300, schedule=schedule, max_batch=8),
                lambda r: None).run()
        finally:
            device.close()
    finally:
        served = served_by(sim)
    assert stats.rejected == {} and stats.silences == 0
    assert stats.received == stats.classified == served == 300


def test_free_running_overrun_is_counted_not_timed_out(runner) -> None:
    """A free-running device outruns a full backlog: lost frames are 'overrun', each one
    counted, and the reader never reports a timeout."""
    with Emulator("ascii", rate=1500, seed=2) as emu:
        device = open_spectrometer("ascii", emu.port, timeout=0.5, max_count=4095,
                                   wavelength_coefficients=emu.coefficients)
        records: list[dict] = []
        try:
            slow = GilHeavyRunner(runner, spin_s=0.03)
            stats = StreamClassifier(device, slow, StreamConfig(
                laser_nm=LASER_NM, max_frames=300, max_batch=1, queue_size=4),
                records.append).run()
        finally:
            device.close()
    assert set(stats.rejected) == {"overrun"} and stats.rejected["overrun"] > 0
    assert stats.received == device.stats.frames == 300 and stats.accounted
    overrun_records = [r for r in records if r.get("rejected") == "overrun"]
    assert sum(r["frames"] for r in overrun_records) == stats.rejected["overrun"]


@pytest.mark.parametrize("schedule", ["threaded", "inline"])
def test_frames_read_after_a_stop_are_still_classified(runner, schedule: str) -> None:
    """Stop while a backlog waits: everything the device served is received."""
    import threading

    with Emulator("obp", seed=9) as emu:
        device = open_spectrometer("obp", emu.port, timeout=0.5)
        try:
            sc = StreamClassifier(device, GilHeavyRunner(runner, spin_s=0.02), StreamConfig(
                laser_nm=LASER_NM, max_batch=1, queue_size=16, schedule=schedule),
                lambda r: None)
            threading.Timer(0.5, sc.stop).start()
            stats = sc.run()
        finally:
            device.close()
        served = emu.stats.served
    assert stats.received == served == stats.classified > 10 and stats.accounted


def test_non_finite_outputs_are_rejected_and_lines_stay_strict_json(runner) -> None:
    import io

    from pace_edge.streaming.pipeline import JsonLines

    out = io.StringIO()
    with Emulator("obp", seed=1) as emu:
        device = open_spectrometer("obp", emu.port, timeout=0.5)
        try:
            stats = StreamClassifier(device, GilHeavyRunner(runner, 0.0, nan_every=3),
                                     StreamConfig(laser_nm=LASER_NM, max_frames=30),
                                     JsonLines(out)).run()
        finally:
            device.close()
    assert stats.rejected == {"non_finite_output": 10} and stats.classified == 20

    def refuse(constant: str) -> None:
        raise AssertionError(f"non-strict JSON constant {constant}")

    lines = [json.loads(line, parse_constant=refuse) for line in out.getvalue().splitlines()]
    assert len(lines) == 30
    with pytest.raises(ValueError):
        JsonLines(io.StringIO())({"probability": float("nan")})


def test_an_average_that_cannot_finish_is_counted_not_fatal(runner) -> None:
    from dataclasses import replace

    with Emulator("obp", seed=3) as emu:
        device = open_spectrometer("obp", emu.port, timeout=0.5)
        read = device.read_spectrum

        def short_every_fifth():
            frame = read()
            if frame.sequence % 5 == 4:  # a frame the averager cannot add to the others
                return replace(frame, counts=frame.counts[:-8])
            return frame

        device.read_spectrum = short_every_fifth
        try:
            stats = StreamClassifier(device, runner, StreamConfig(
                laser_nm=LASER_NM, max_frames=40, average=3), lambda r: None).run()
        finally:
            device.close()
    assert stats.received == 40 and stats.accounted
    assert stats.rejected["average"] > 0 and stats.classified > 0


def test_sigint_and_sigterm_account_for_what_the_device_served(synthetic_export: Path) -> None:
    for sig, protocol in ((signal.SIGINT, "obp"), (signal.SIGTERM, "ascii")):
        extra = ["--query", "SPEC.READ?", "--max-count", "4095"] if protocol == "ascii" else []
        options = {"query": "SPEC.READ?"} if protocol == "ascii" else {}
        with Emulator(protocol, seed=6, rate=150, **options) as emu:
            if protocol == "ascii":
                extra += ["--wavelength-coeffs", ",".join(map(str, emu.coefficients))]
            proc = subprocess.Popen(
                [sys.executable, "-m", "pace_edge.cli.main", "stream", "--port", emu.port,
                 "--protocol", protocol, "--model", str(synthetic_export), "--laser-nm", "785",
                 "--backend", "onnxruntime", "--threads", "1", *extra],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
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
        received = int(err.split("frames received ")[1].split(",")[0])
        assert received == served == 1 + len(rest.splitlines()), (protocol, err)


def test_stream_refuses_another_device_after_a_reconnect(runner, tmp_path: Path) -> None:
    import threading

    link = tmp_path / "sts"
    logs: list[str] = []
    for allow in (False, True):
        logs.clear()
        first = Emulator("obp", link_path=link, serial_number="STS-A", reconnect_s=0.05)
        first.start()
        device = open_spectrometer("obp", str(link), timeout=0.3, allow_device_change=allow)
        sc = StreamClassifier(device, runner, StreamConfig(
            laser_nm=LASER_NM, reconnect_initial_s=0.05, max_frames=None if not allow else 400),
            lambda r: None, logs.append)
        result: list = []
        worker = threading.Thread(target=lambda sc=sc, result=result: result.append(sc.run()))
        worker.start()
        time.sleep(0.3)
        first.stop()
        second = Emulator("obp", link_path=link, serial_number="STS-B", seed=4)
        with second:
            worker.join(timeout=30)
            assert not worker.is_alive()
            served_b = second.stats.served
        device.close()
        stats = result[0]
        assert stats.accounted
        if not allow:
            assert "'STS-B', expected 'STS-A'" in stats.stop_reason
            assert any("stopping:" in m and "STS-B" in m for m in logs)
            assert served_b == 0 and "stopped: " in stats.summary_text()
        else:
            assert stats.stop_reason is None and stats.device_changes == 1
            assert served_b > 0 and any("'STS-A' -> 'STS-B'" in m for m in logs)


def test_cli_streams_an_sts_at_9600_baud_with_one_second_integration(
        synthetic_export: Path, tmp_path: Path) -> None:
    """The issue's measurement: 2,112-byte replies after a 1 s exposure on a 9600-baud line,
    default options: every frame classified (was: every frame 'truncated_frame')."""
    summary = tmp_path / "s.json"
    with Emulator("obp", baud=9600, integration_us=1_000_000, seed=5) as emu:
        code = main(["stream", "--port", emu.port, "--protocol", "obp", "--model",
                     str(synthetic_export), "--laser-nm", str(LASER_NM), "--integration-ms",
                     "1000", "--max-frames", "2", "--output", str(tmp_path / "o.jsonl"),
                     "--summary-json", str(summary), "--backend", "onnxruntime",
                     "--threads", "1"])
        served = emu.stats.served
    s = json.loads(summary.read_text())
    assert code == 0 and s["received"] == s["classified"] == served == 2 and not s["rejected"]


def test_cli_exits_1_when_another_device_answers(synthetic_export: Path, tmp_path: Path) -> None:
    link = tmp_path / "sts"
    first = Emulator("obp", link_path=link, serial_number="STS-A", rate=50)
    first.start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pace_edge.cli.main", "stream", "--port", str(link),
         "--protocol", "obp", "--model", str(synthetic_export), "--laser-nm", "785",
         "--timeout", "0.3", "--backend", "onnxruntime", "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and json.loads(proc.stdout.readline())["class"]
        first.stop()
        with Emulator("obp", link_path=link, serial_number="STS-B", rate=50):
            _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert "stopped: " in err and "identity 'STS-B', expected 'STS-A'" in err
    assert "Traceback" not in err
