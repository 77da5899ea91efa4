"""``pace-edge fleet`` against a real broker with two emulated devices streaming at once, and
the view's bookkeeping (deduplication, table) on its own."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from mqtt_broker import Broker, require_mosquitto

from pace_edge.fleet.view import FleetView, Seen, render_table
from pace_edge.streaming.emulator import Emulator


def test_fleet_shows_two_devices_streaming_at_once(synthetic_export: Path,
                                                   tmp_path: Path) -> None:
    require_mosquitto()
    record = tmp_path / "results.jsonl"
    with Broker(tmp_path) as b:
        fleet = subprocess.Popen(
            [sys.executable, "-m", "pace_edge.cli.main", "fleet", "--mqtt", f"{b.url}/plant",
             "--json", "--interval", "0.3", "--record", str(record)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            with Emulator("obp", seed=1, rate=40, serial_number="EMU-A") as a, \
                    Emulator("obp", seed=2, rate=40, serial_number="EMU-B") as bb:
                streams = [subprocess.Popen(
                    [sys.executable, "-m", "pace_edge.cli.main", "stream", "--port", emu.port,
                     "--protocol", "obp", "--model", str(synthetic_export), "--laser-nm",
                     "785", "--backend", "onnxruntime", "--threads", "1", "--max-frames",
                     "120", "--mqtt", f"{b.url}/plant", "--health-interval", "0.5",
                     "--outbox", str(tmp_path / name)],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    for name, emu in (("a", a), ("b", bb))]
                try:
                    outs = [s.communicate(timeout=120) for s in streams]
                finally:
                    for s in streams:
                        if s.poll() is None:
                            s.kill()
            assert all(s.returncode == 0 for s in streams), outs
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (
                    not record.exists() or len(record.read_text().splitlines()) < 240):
                time.sleep(0.1)
            time.sleep(1.0)  # the last status and a refresh
            fleet.send_signal(signal.SIGTERM)
            out, err = fleet.communicate(timeout=30)
        finally:
            if fleet.poll() is None:
                fleet.kill()
    assert fleet.returncode == 0, err
    snapshots = [json.loads(line) for line in out.splitlines()]
    final = {d["device"]: d for d in snapshots[-1]["devices"]}
    assert set(final) == {"EMU-A", "EMU-B"}
    sha = hashlib.sha256((synthetic_export / "manifest.json").read_bytes()).hexdigest()
    for device, (stdout, _) in zip(("EMU-A", "EMU-B"), outs, strict=True):
        lines = [json.loads(line) for line in stdout.splitlines()]
        row = final[device]
        assert row["results"] == 120 == len(lines)
        assert row["classes"] == dict(sorted(Counter(x["class"] for x in lines).items()))
        assert row["accept_rate"] == 1.0 and row["p99_ms"] > 0 and row["model"] == sha
        assert row["online"] is False  # the stream ended cleanly and said so
    both_live = [s for s in snapshots if len(s["devices"]) == 2 and all(
        d["online"] and (d["spectra_per_s"] or 0) > 0 for d in s["devices"])]
    assert both_live, "never saw both devices online and streaming in one refresh"
    recorded = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(recorded) == 240
    for device in ("EMU-A", "EMU-B"):
        assert sorted(r["n"] for r in recorded if r["device_id"] == device) == list(range(120))


def result(n: int, start: float = 1.0, cls: str | None = "a", t: float = 0.0) -> bytes:
    r = {"time": 100.0 + t, "seq": n, "n": n, "stream_start": start, "device_id": "d",
         "model_sha256": "ab" * 32, "latency_ms": {"total": 1.0 + n}}
    r.update({"class": cls} if cls else {"rejected": "saturated"})
    return json.dumps(r).encode()


def test_view_counts_each_result_once_and_renders_a_table() -> None:
    view = FleetView("lab")
    assert view.handle("lab/d/status", b"online") is None
    firsts = [view.handle("lab/d/results", result(n, t=n * 0.1)) for n in (0, 1, 2, 1, 0, 3)]
    assert [f is not None for f in firsts] == [True, True, True, False, False, True]
    view.handle("lab/d/results", result(0, start=2.0, cls=None))  # a new stream: not a dupe
    view.handle("lab/d/results", b"not json")
    view.handle("other/d/results", result(9))  # another prefix: ignored
    (row,) = view.rows()
    assert row["results"] == 5 and row["duplicates"] == 2 and row["classes"] == {"a": 4}
    assert row["accept_rate"] == 0.8 and row["online"] is True and view.malformed == 1
    assert row["spectra_per_s"] > 0 and row["p99_ms"] > 1
    text = render_table(view.rows())
    assert text.splitlines()[0].split()[:2] == ["device", "online"]
    assert "d  " in text.splitlines()[1] and "a:4" in text and "80.0 %" in text
    view.handle("lab/d/status", b"offline")
    assert view.rows()[0]["online"] is False


def test_seen_keeps_a_high_water_mark() -> None:
    seen = Seen()
    assert all(seen.add(1.0, n) for n in (3, 0, 2, 1))
    assert not seen.add(1.0, 2) and seen.add(1.0, 4)
    assert seen._streams[1.0] == (5, set())
