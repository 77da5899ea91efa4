"""``pace-edge stream --mqtt`` against a real Mosquitto broker: topics, nothing lost across a
broker restart or a stream restart, outbox limits, TLS, passwords and the last will."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mqtt_broker import Broker, Recorder, require_mosquitto

from pace_edge.cli.main import main
from pace_edge.streaming.emulator import Emulator

LASER_NM = "785"
DEVICE = "EMU-STS-0001"  # the emulator's serial number


@pytest.fixture(autouse=True)
def _mosquitto() -> None:
    require_mosquitto()


def stream_args(emu: Emulator, export: Path, *extra: str) -> list[str]:
    return ["stream", "--port", emu.port, "--protocol", "obp", "--model", str(export),
            "--laser-nm", LASER_NM, "--backend", "onnxruntime", "--threads", "1", *extra]


def stream_proc(emu: Emulator, export: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pace_edge.cli.main",
                             *stream_args(emu, export, *extra)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_results_health_and_status_arrive_on_the_documented_topics(
        synthetic_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.jsonl"
    with Broker(tmp_path) as b:
        rec = Recorder(b, "lab/#")
        with Emulator("obp", seed=1, rate=100) as emu:
            code = main(stream_args(emu, synthetic_export, "--mqtt", f"{b.url}/lab",
                                    "--health-interval", "0.1", "--outbox",
                                    str(tmp_path / "box"), "--max-frames", "40",
                                    "--output", str(out), "--summary-json",
                                    str(tmp_path / "s.json")))
        assert code == 0
        assert rec.wait_for(lambda: len(rec.on("/results")) >= 40)
        time.sleep(0.3)
        rec.close()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    results = rec.json("/results")
    assert {t for t, _, _ in rec.messages} == {f"lab/{DEVICE}/{leaf}"
                                               for leaf in ("results", "health", "status")}
    assert len(results) == 40 == len(lines)
    sha = hashlib.sha256((synthetic_export / "manifest.json").read_bytes()).hexdigest()
    start = results[0]["stream_start"]
    assert time.time() - 120 < start < time.time()
    for n, (line, result) in enumerate(zip(lines, results, strict=True)):
        assert result == line | {"device_id": DEVICE, "model_sha256": sha, "n": n,
                                 "stream_start": start}
    health = rec.json("/health")
    assert health, "no health message"
    last = health[-1]
    assert last["device_id"] == DEVICE and last["serial"] == DEVICE
    assert last["frames"]["received"] == 40 and last["frames"]["rejected_total"] == 0
    assert last["model"]["sha256"] == sha and last["backend"] == "onnxruntime"
    assert last["model"]["preprocessing"] and last["uptime_s"] > 0
    assert any(h["latency_ms"].get("p99", 0) > 0 for h in health)
    assert any(h["spectra_per_s"] > 0 for h in health)
    assert {"accept_rate", "saturation_share", "mqtt"} <= set(last)
    status = [(p, retain) for _, p, retain in rec.on("/status")]
    assert status[0][0] == b"online" and status[-1][0] == b"offline"
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["mqtt"]["acked"] == 40 and summary["mqtt"]["outbox"]["pending"] == 0
    assert "mqtt: published 40, acknowledged 40" in capsys.readouterr().err
    assert not list((tmp_path / "box").glob("*.log")), "acknowledged segments are removed"


class Lines:
    """Reads a stream process's JSON lines on a thread, so a full pipe never blocks it."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc, self.lines = proc, []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def wait_for(self, n: int, timeout: float = 60.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.lines) < n and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.02)
        return list(self.lines)

    def finish(self, timeout: float = 60.0) -> tuple[list[dict], str]:
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self._thread.join(10)
        assert self.proc.stderr is not None
        return self.lines, self.proc.stderr.read()


def by_n(results: list[dict], start: float) -> dict[int, dict]:
    return {r["n"]: r for r in results if r["stream_start"] == start}


def test_broker_restart_mid_stream_loses_no_result(synthetic_export: Path,
                                                   tmp_path: Path) -> None:
    """The broker goes away for 3 s while spectra stream at 100/s: the stream keeps classifying
    at its pace, and a persistent subscriber ends up with every sequence number, in order."""
    with Broker(tmp_path) as b:
        rec = Recorder(b, "lab/+/results", client_id="archive", persistent=True)
        with Emulator("obp", seed=2, rate=100) as emu:
            proc = stream_proc(emu, synthetic_export, "--mqtt", f"{b.url}/lab", "--outbox",
                               str(tmp_path / "box"), "--max-frames", "700")
            out = Lines(proc)
            try:
                out.wait_for(100)
                assert rec.wait_for(lambda: len(rec.on("/results")) >= 50)
                b.stop()
                time.sleep(3.0)
                b.start()
                lines, err = out.finish()
            finally:
                if proc.poll() is None:
                    proc.kill()
        assert proc.returncode == 0, err
        assert len(lines) == 700  # the stream neither stopped nor dropped spectra
        gaps = [y["time"] - x["time"] for x, y in zip(lines, lines[1:], strict=False)]
        assert max(gaps) < 1.0, "the stream stalled while the broker was away"
        assert "broker connection lost" in err and err.count("connected to") >= 2
        start = None

        def complete() -> bool:
            nonlocal start
            results = rec.json("/results")
            start = results[0]["stream_start"] if results else None
            return results and len(by_n(results, start)) == 700

        assert rec.wait_for(complete, timeout=30)
        rec.close()
    results = rec.json("/results")
    got = by_n(results, start)
    assert sorted(got) == list(range(700))
    for n, line in enumerate(lines):
        assert {k: got[n][k] for k in line} == line
    first_seen = []
    for r in results:  # in order: a re-send may repeat, never jump back past what is new
        if r["n"] not in first_seen:
            first_seen.append(r["n"])
    assert first_seen == sorted(first_seen)


def test_stream_restart_resends_what_was_not_acknowledged(synthetic_export: Path,
                                                          tmp_path: Path) -> None:
    """The broker is down; a stream is killed (SIGKILL) with results in its outbox; the next
    stream on the same outbox sends them first, in order, once the broker is back."""
    box = tmp_path / "box"
    b = Broker(tmp_path)
    b.start()
    rec = Recorder(b, "lab/+/results", client_id="archive", persistent=True)
    b.stop()
    try:
        with Emulator("obp", seed=3, rate=50) as emu:
            proc = stream_proc(emu, synthetic_export, "--mqtt", f"{b.url}/lab", "--outbox",
                               str(box))
            out = Lines(proc)
            try:
                printed = out.wait_for(20)
                time.sleep(0.5)  # well past the outbox's fsync of those 20
            finally:
                proc.send_signal(signal.SIGKILL)
                first_run, _ = out.finish()
        assert len(printed) >= 20 and list(box.glob("*.log"))
        b.start()
        with Emulator("obp", seed=4, rate=100) as emu:
            second = subprocess.run(
                [sys.executable, "-m", "pace_edge.cli.main",
                 *stream_args(emu, synthetic_export, "--mqtt", f"{b.url}/lab", "--outbox",
                              str(box), "--max-frames", "10")],
                capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        assert "unacknowledged results from an earlier run will be re-sent" in second.stderr
        starts: list[float] = []

        def both_runs() -> bool:
            starts[:] = sorted({r["stream_start"] for r in rec.json("/results")})
            return len(starts) == 2 and len(by_n(rec.json("/results"), starts[1])) == 10 and (
                len(by_n(rec.json("/results"), starts[0])) >= 20)

        assert rec.wait_for(both_runs, timeout=30)
        rec.close()
    finally:
        b.stop()
    results = rec.json("/results")
    old = [r for r in results if r["stream_start"] == starts[0]]
    sent = sorted({r["n"] for r in old})
    assert sent == list(range(len(sent))) and len(sent) >= 20  # a prefix, with every n
    assert [r["n"] for r in old] == sorted(r["n"] for r in old)  # re-sent in order
    for r in old:
        line = first_run[r["n"]]
        assert {k: r[k] for k in line} == line
    assert not list(box.glob("*.log")), "everything acknowledged, the outbox is empty"


def test_full_outbox_counts_its_drops_and_the_stream_goes_on(synthetic_export: Path,
                                                             tmp_path: Path) -> None:
    nobody = Broker(tmp_path)  # configured, never started: the broker is away
    box = tmp_path / "box"
    with Emulator("obp", seed=5) as emu:
        done = subprocess.run(
            [sys.executable, "-m", "pace_edge.cli.main",
             *stream_args(emu, synthetic_export, "--mqtt", f"{nobody.url}/lab", "--outbox",
                          str(box), "--outbox-max-mb", "0.01", "--max-frames", "120",
                          "--summary-json", str(tmp_path / "s.json"))],
            capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 120  # every spectrum classified and written
    mqtt = json.loads((tmp_path / "s.json").read_text())["mqtt"]
    box_stats = mqtt["outbox"]
    assert box_stats["dropped"] > 0 and box_stats["appended"] > 0
    assert box_stats["appended"] + box_stats["dropped"] == 120
    assert box_stats["pending"] == box_stats["appended"] and mqtt["acked"] == 0
    on_disk = sum(p.stat().st_size for p in box.glob("*.log"))
    assert on_disk <= 0.01 * 1024 * 1024
    assert f"dropped {box_stats['dropped']}" in done.stderr


def test_last_will_says_offline_when_the_stream_is_killed(synthetic_export: Path,
                                                          tmp_path: Path) -> None:
    with Broker(tmp_path) as b:
        rec = Recorder(b, "lab/+/status")
        with Emulator("obp", seed=6, rate=50) as emu:
            proc = stream_proc(emu, synthetic_export, "--mqtt", f"{b.url}/lab", "--outbox",
                               str(tmp_path / "box"))
            out = Lines(proc)
            try:
                out.wait_for(5)
                assert rec.wait_for(lambda: [p for _, p, _ in rec.on("/status")] == [b"online"])
                proc.send_signal(signal.SIGKILL)
                out.finish()
            finally:
                if proc.poll() is None:
                    proc.kill()
        assert rec.wait_for(lambda: len(rec.on("/status")) == 2, timeout=10)
        assert rec.on("/status")[1][1] == b"offline"
        rec.close()
        late = Recorder(b, "lab/+/status", client_id="late")  # retained: newcomers see it
        assert late.wait_for(lambda: late.on("/status"))
        assert late.on("/status") == [(f"lab/{DEVICE}/status", b"offline", True)]
        late.close()


def test_broker_with_a_password_refuses_a_client_without_it(synthetic_export: Path,
                                                            tmp_path: Path) -> None:
    import shutil

    passwd = shutil.which("mosquitto_passwd")
    if passwd is None:
        pytest.skip("mosquitto_passwd is not installed (Debian package mosquitto)")
    pw = tmp_path / "passwd"
    subprocess.run([passwd, "-c", "-b", str(pw), "lab", "s3cr:t/"], check=True,
                   capture_output=True)
    pw.chmod(0o600)
    with Broker(tmp_path, password_file=pw) as b:
        rec = Recorder(b, "lab/#", login=("lab", "s3cr:t/"))
        with Emulator("obp", seed=7) as emu:
            refused = subprocess.run(
                [sys.executable, "-m", "pace_edge.cli.main",
                 *stream_args(emu, synthetic_export, "--mqtt", f"{b.url}/lab", "--outbox",
                              str(tmp_path / "box1"), "--max-frames", "5")],
                capture_output=True, text=True, timeout=120)
            allowed = subprocess.run(
                [sys.executable, "-m", "pace_edge.cli.main",
                 *stream_args(emu, synthetic_export, "--mqtt",
                              f"mqtt://lab:s3cr%3At%2F@127.0.0.1:{b.port}/lab", "--outbox",
                              str(tmp_path / "box2"), "--max-frames", "5")],
                capture_output=True, text=True, timeout=120)
        assert refused.returncode == 0 and len(refused.stdout.splitlines()) == 5
        assert "refused the connection: Not authorized" in refused.stderr
        assert "s3cr" not in allowed.stderr  # the password is never logged
        assert allowed.returncode == 0, allowed.stderr
        assert rec.wait_for(lambda: len(rec.on("/results")) == 5)
        time.sleep(0.3)
        rec.close()
    assert len(rec.on("/results")) == 5  # only the client with the password got through
    assert sorted(r["n"] for r in rec.json("/results")) == list(range(5))


def test_tls_with_a_test_ca(synthetic_export: Path, tmp_path: Path) -> None:
    """mqtts:// verifies the broker against --mqtt-ca; a broker signed by another CA is refused
    and its results wait in the outbox."""
    from mqtt_broker import make_test_ca

    (tmp_path / "ca").mkdir()
    (tmp_path / "other").mkdir()
    ca, cert, key = make_test_ca(tmp_path / "ca")
    other_ca, _, _ = make_test_ca(tmp_path / "other")
    with Broker(tmp_path, tls=(ca, cert, key)) as b:
        rec = Recorder(b, "lab/#", ca_certs=str(ca))
        with Emulator("obp", seed=8) as emu:
            good = subprocess.run(
                [sys.executable, "-m", "pace_edge.cli.main",
                 *stream_args(emu, synthetic_export, "--mqtt", f"{b.url}/lab", "--mqtt-ca",
                              str(ca), "--outbox", str(tmp_path / "box1"), "--max-frames", "8")],
                capture_output=True, text=True, timeout=120)
            bad = subprocess.run(
                [sys.executable, "-m", "pace_edge.cli.main",
                 *stream_args(emu, synthetic_export, "--mqtt", f"{b.url}/lab", "--mqtt-ca",
                              str(other_ca), "--outbox", str(tmp_path / "box2"),
                              "--max-frames", "4", "--device-id", "impostor",
                              "--summary-json", str(tmp_path / "bad.json"))],
                capture_output=True, text=True, timeout=120)
        assert good.returncode == 0, good.stderr
        assert b.url.startswith("mqtts://") and "connected to mqtts://" in good.stderr
        assert rec.wait_for(lambda: len(rec.on("/results")) == 8)
        time.sleep(0.3)
        rec.close()
    assert bad.returncode == 0 and "connected to" not in bad.stderr
    assert not any("impostor" in t for t, _, _ in rec.messages)
    assert json.loads((tmp_path / "bad.json").read_text())["mqtt"]["outbox"]["pending"] == 4


def test_mqtt_user_errors_are_one_line(synthetic_export: Path, tmp_path: Path) -> None:
    with Emulator("obp", seed=9) as emu:
        for extra, message in [
            (["--mqtt", "http://x/lab"], "--mqtt must be mqtt://"),
            (["--mqtt", "mqtt://127.0.0.1:1"], "has no topic prefix"),
            (["--mqtt", "mqtt://127.0.0.1/lab", "--device-id", "a/b"], "the device id 'a/b'"),
            (["--mqtt", "mqtt://127.0.0.1/lab", "--mqtt-ca", str(tmp_path / "none.pem")],
             "need an mqtts:// address"),
            (["--mqtt-ca", str(tmp_path)], "need --mqtt"),
        ]:
            done = subprocess.run(
                [sys.executable, "-m", "pace_edge.cli.main",
                 *stream_args(emu, synthetic_export, "--outbox", str(tmp_path / "box"),
                              "--max-frames", "2", *extra)],
                capture_output=True, text=True, timeout=120)
            last = done.stderr.strip().splitlines()[-1]
            assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
            assert last.startswith("pace-edge stream: error:") and message in last, last
