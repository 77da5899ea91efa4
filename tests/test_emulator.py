"""The pty spectrometer emulator: fault specs, raw protocol answers, sources, the CLI."""

from __future__ import annotations

import argparse
import os
import struct
import time

import numpy as np
import pytest

from pace_edge.cli import simulate
from pace_edge.data.dataset import SpectralDataset
from pace_edge.errors import PaceEdgeError
from pace_edge.streaming import spectral_axis
from pace_edge.streaming.emulator import (
    FAULT_KINDS,
    DatasetSource,
    Emulator,
    default_coefficients,
    format_faults,
    parse_faults,
)
from pace_edge.streaming.emulator.faults import FaultDraw
from pace_edge.streaming.errors import ConfigError, LineError, PixelCountError, TransportClosed
from pace_edge.streaming.protocols import obp
from pace_edge.streaming.protocols.ascii_lines import LineFormat
from pace_edge.streaming.transport import Deadline, Transport


class ConstantSource:
    """Same counts every frame: makes integration-time scaling exact."""

    def __init__(self, counts: np.ndarray, dark: float = 100.0):
        self.counts = np.asarray(counts, dtype=np.float64)
        self.dark = dark

    def next(self) -> tuple[np.ndarray, int]:
        return self.counts.copy(), 0


# -- fault specs -------------------------------------------------------------------------


def test_fault_spec_grammar():
    spec = (
        "checksum=0.01, truncate=0.01,garbage=0.02,stall=0.005,disconnect=0.001,"
        "nan=0.01, saturate=0.01,pixels=0.01"
    )
    rates = parse_faults(spec)
    assert set(rates) == set(FAULT_KINDS)
    assert rates["stall"] == 0.005
    assert parse_faults("") == parse_faults("none") == parse_faults(None) == {}
    assert format_faults({"checksum": 0.5, "stall": 0.0}) == "checksum=0.5"
    assert parse_faults(format_faults(rates)) == rates


@pytest.mark.parametrize(
    "spec, words",
    [
        ("bogus=0.1", "unknown fault"),
        ("checksum", "kind=probability"),
        ("checksum=abc", "not a number"),
        ("checksum=1.5", "outside 0..1"),
        ("checksum=nan", "outside 0..1"),
        ("stall=0.6,garbage=0.6", "sum to"),
        ("stall=0.1,stall=0.2", "twice"),
        ("stall=0.1,,garbage=0.1", "empty item"),
    ],
)
def test_bad_fault_specs(spec, words):
    with pytest.raises(ConfigError, match=words):
        parse_faults(spec)


def test_fault_draws_are_seeded_and_follow_the_rates():
    rates = {"checksum": 0.2, "stall": 0.1}
    draw1, draw2 = (FaultDraw(rates, np.random.default_rng(5)) for _ in range(2))
    seq1 = [draw1.draw() for _ in range(4000)]
    assert seq1 == [draw2.draw() for _ in range(4000)]
    assert abs(seq1.count("checksum") / 4000 - 0.2) < 0.03
    assert abs(seq1.count("stall") / 4000 - 0.1) < 0.03
    assert set(seq1) == {None, "checksum", "stall"}


def test_nan_fault_is_refused_for_obp():
    with pytest.raises(ConfigError, match="nan"):
        Emulator("obp", faults="nan=0.1")
    with pytest.raises(ConfigError):
        Emulator("usb")


# -- raw protocol over the pty -------------------------------------------------------------


def obp_exchange(t: Transport, parser: obp.FrameParser, msg: obp.Message) -> obp.Message:
    t.write(obp.encode(msg))
    end = t.deadline()
    while True:
        out = parser.feed(t.read_some(end))
        if out:
            (reply,) = out
            assert isinstance(reply, obp.Message)
            return reply


def test_obp_emulator_answers_every_message_over_pyserial():
    with Emulator("obp", serial_number="STS-R1234", seed=2) as emu:
        assert os.path.islink(emu.port) and emu.device_path.startswith("/dev/")
        with Transport.open(emu.port, 115200, timeout=1.0) as t:
            p = obp.FrameParser()
            r = obp_exchange(t, p, obp.Message(obp.MSG_GET_SERIAL, regarding=11))
            assert r.is_response and r.regarding == 11 and r.data == b"STS-R1234"
            assert r.checksum_type == obp.CHECKSUM_MD5
            r = obp_exchange(t, p, obp.Message(obp.MSG_GET_WL_COEFF_COUNT))
            assert r.data == bytes([3])
            coeffs = [
                struct.unpack(
                    "<f",
                    obp_exchange(
                        t, p, obp.Message(obp.MSG_GET_WL_COEFF, immediate=bytes([i]))
                    ).data,
                )[0]
                for i in range(3)
            ]
            assert coeffs == pytest.approx(default_coefficients(1024), rel=1e-6)
            wl = spectral_axis.wavelengths_from_coefficients(coeffs, 1024)
            assert wl[0] == pytest.approx(790) and wl[-1] == pytest.approx(1000, abs=0.01)
            r = obp_exchange(t, p, obp.Message(obp.MSG_GET_RAW_SPECTRUM))
            counts = np.frombuffer(r.data, "<u2")
            assert counts.size == 1024 and counts.max() <= 16383 and counts.min() > 0
            r = obp_exchange(
                t,
                p,
                obp.Message(
                    obp.MSG_SET_INTEGRATION_TIME,
                    immediate=struct.pack("<I", 5),
                    flags=obp.FLAG_ACK_REQUESTED,
                ),
            )
            assert r.is_nack and r.error == obp.ERR_PAYLOAD_INVALID
            r = obp_exchange(t, p, obp.Message(obp.MSG_RESET, flags=obp.FLAG_ACK_REQUESTED))
            assert r.is_ack and not r.is_error
            r = obp_exchange(t, p, obp.Message(0x0BADBEEF))
            assert r.is_nack and r.error == obp.ERR_UNKNOWN_MESSAGE
        stats = emu.stats
    assert stats.frames == stats.good == 1 and stats.requests == 9 and stats.bad_requests == 1
    assert not os.path.exists(emu.port)


def test_obp_integration_time_scales_counts():
    source = ConstantSource(np.linspace(200, 1200, 1024), dark=100.0)
    with Emulator("obp", source=source, checksum="none") as emu:
        with Transport.open(emu.port, timeout=1.0) as t:
            p = obp.FrameParser()
            base = np.frombuffer(
                obp_exchange(t, p, obp.Message(obp.MSG_GET_RAW_SPECTRUM)).data, "<u2"
            )
            obp_exchange(
                t,
                p,
                obp.Message(
                    obp.MSG_SET_INTEGRATION_TIME,
                    immediate=struct.pack("<I", 300_000),
                    flags=obp.FLAG_ACK_REQUESTED,
                ),
            )
            triple = np.frombuffer(
                obp_exchange(t, p, obp.Message(obp.MSG_GET_RAW_SPECTRUM)).data, "<u2"
            )
    assert np.array_equal(base, np.rint(source.counts))
    assert np.allclose(triple, np.minimum(100 + 3 * (source.counts - 100), 16383), atol=0.5)


def test_ascii_free_running_lines_with_header():
    with Emulator("ascii", rate=200, header="SPECTRUM", seed=1) as emu:
        with Transport.open(emu.port, 115200, timeout=1.0) as t:
            t.reset_input()
            t.read_until(b"\n")  # maybe a partial line
            lines = [t.read_until(b"\n") for _ in range(8)]
    headers = [line for line in lines if line.startswith(b"SPECTRUM")]
    data = [line for line in lines if not line.startswith(b"SPECTRUM")]
    assert len(headers) >= 3 and len(data) >= 3
    for line in data:
        assert line.endswith(b",\r\n")
        assert LineFormat(288).parse(line).max() <= 4095


def test_ascii_query_mode_and_integration_command():
    source = ConstantSource(np.full(16, 500.0), dark=100.0)
    with Emulator("ascii", source=source, pixels=16, query="SPEC.READ?") as emu:
        with Transport.open(emu.port, timeout=1.0) as t:
            t.write(b"SPEC.READ?\r\n")
            assert LineFormat(16).parse(t.read_until(b"\n")).tolist() == [500.0] * 16
            t.write(b"SPEC.INTEG 200000\nSPEC.READ?\n")
            assert LineFormat(16).parse(t.read_until(b"\n")).tolist() == [900.0] * 16
            t.write(b"WHAT?\n")
            deadline = time.monotonic() + 5.0  # the device thread reads it in its own time
            while emu.stats.requests < 4 and time.monotonic() < deadline:
                time.sleep(0.01)
    assert emu.stats.requests == 4 and emu.stats.bad_requests == 1


def test_every_ascii_fault_kind_is_served_and_accounted():
    faults = "checksum=0.1,truncate=0.1,garbage=0.1,nan=0.1,saturate=0.1,pixels=0.1"
    fmt = LineFormat(32)
    with Emulator("ascii", pixels=32, query="?", faults=faults, seed=4) as emu:
        with Transport.open(emu.port, timeout=1.0) as t:
            kinds = []
            for _ in range(300):
                t.write(b"?\n")
                try:
                    values = fmt.parse(t.read_until(b"\n"))
                    kinds.append("saturate" if values.min() == 4095 else "good")
                except (LineError, PixelCountError) as exc:
                    kinds.append(type(exc).__name__)
    stats = emu.stats
    assert stats.accounted and stats.frames == 300
    assert kinds.count("saturate") == stats.faults["saturate"]
    assert kinds.count("NonFiniteValue") == stats.faults["nan"]
    assert kinds.count("NonNumericValue") == stats.faults["checksum"] + stats.faults["garbage"]
    assert kinds.count("PixelCountError") == stats.faults["pixels"] + stats.faults["truncate"]
    assert kinds.count("good") == stats.good
    assert stats.garbage_bytes > 0


def test_disconnect_re_points_the_same_path():
    with Emulator("obp", reconnect_s=0.05) as emu:
        t = Transport.open(emu.port, timeout=1.0)
        emu.disconnect()
        with pytest.raises(TransportClosed):
            t.read_some(Deadline(2.0))
        t.close()
        end = time.monotonic() + 3.0
        while not os.path.exists(emu.port) and time.monotonic() < end:
            time.sleep(0.01)
        with Transport.open(emu.port, timeout=1.0) as t2:
            reply = obp_exchange(t2, obp.FrameParser(), obp.Message(obp.MSG_GET_SERIAL))
            assert reply.data == b"EMU-STS-0001"
        assert emu.stats.disconnects == 1


# -- spectrum sources ----------------------------------------------------------------------


def test_dataset_source_resamples_raman_shift_onto_device_pixels():
    axis = np.linspace(400, 1800, 701)
    x = np.zeros((2, axis.size))
    x[0, np.searchsorted(axis, 1000)] = 1.0  # one sharp band at 1000 cm⁻¹
    x[1, np.searchsorted(axis, 1600)] = 1.0
    dataset = SpectralDataset(x, [0, 1], axis, ["a", "b"])
    emu = Emulator("obp", source=dataset, seed=0)
    try:
        shift = emu.axis.axis
        src = emu.device.source
        assert isinstance(src, DatasetSource)
        for _ in range(2):
            counts, label = src.next()
            peak = int(np.argmax(counts))
            assert abs(shift[peak] - (1000 if label == 0 else 1600)) < 5
            assert counts.min() >= 0 and counts[peak] > 0.3 * 16383
    finally:
        emu.stop()


def test_dataset_outside_the_device_range_is_refused():
    axis = np.linspace(5000, 6000, 50)
    dataset = SpectralDataset(np.ones((2, 50)), [0, 1], axis, ["a", "b"])
    with pytest.raises(ConfigError, match="does not overlap"):
        Emulator("ascii", source=dataset)


# -- CLI -----------------------------------------------------------------------------------


def simulate_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    simulate.register(sub)
    return parser.parse_args(["simulate", *argv])


def test_cli_serves_for_a_duration_and_summarises(capsys):
    args = simulate_args("--protocol", "ascii", "--rate", "100", "--duration", "0.3")
    assert args.run(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert out[0].endswith("/pace-spectrometer") and not os.path.exists(out[0])
    assert out[1].startswith("served ") and " frames served (" in out[1]


def test_cli_with_a_dataset(tmp_path, capsys):
    axis = np.linspace(400, 1800, 50)
    lines = ["label," + ",".join(f"{a:g}" for a in axis)]
    lines += [f"{c}," + ",".join("1" for _ in axis) for c in ("a", "b")]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    args = simulate_args(
        "--protocol", "obp", "--dataset", str(tmp_path / "d.csv"), "--duration", "0.1"
    )
    assert args.run(args) == 0


@pytest.mark.parametrize(
    "argv",
    [
        ("--protocol", "obp", "--faults", "stall=2"),
        ("--protocol", "obp", "--faults", "nan=0.1"),
        ("--protocol", "ascii", "--dataset", "/nonexistent/data"),
    ],
)
def test_cli_user_errors_are_pace_edge_errors(argv):
    args = simulate_args(*argv, "--duration", "0.1")
    with pytest.raises(PaceEdgeError):
        args.run(args)


def test_rate_and_baud_pace_the_device():
    with Emulator("obp", rate=40) as emu:
        with Transport.open(emu.port, timeout=1.0) as t:
            p = obp.FrameParser()
            t0 = time.monotonic()
            for _ in range(5):
                obp_exchange(t, p, obp.Message(obp.MSG_GET_RAW_SPECTRUM))
            assert time.monotonic() - t0 >= 4 / 40 - 0.01
    with Emulator("ascii", query="?", baud=115200) as emu:
        with Transport.open(emu.port, timeout=1.0) as t:
            t0 = time.monotonic()
            received = 0
            for _ in range(3):
                t.write(b"?\n")
                received += len(t.read_until(b"\n"))
            # 8N1: 10 bits a byte; each line arrives after its time on the wire
            assert time.monotonic() - t0 >= received * 10 / 115200 - 0.01


def test_link_path_is_stable_and_never_clobbers_a_file(tmp_path):
    link = tmp_path / "spectrometer"
    with Emulator("ascii", link_path=link) as emu:
        assert emu.port == str(link) and link.is_symlink()
    assert not link.exists()
    link.write_text("precious")
    with pytest.raises(ConfigError, match="not a symlink"):
        Emulator("ascii", link_path=link).start()
    assert link.read_text() == "precious"
    with pytest.raises(ConfigError, match="not started"):
        _ = Emulator("obp").port


def test_baud_trickles_bytes_and_waits_for_the_exposure():
    """At 9600 baud a 1024-pixel reply (2,112 bytes) arrives over about 2.2 s, byte by byte,
    and only after the 1 s integration time."""
    with Emulator("obp", baud=9600, integration_us=1_000_000) as emu:
        with Transport.open(emu.port, 9600, timeout=5.0) as t:
            t.write(obp.encode(obp.Message(obp.MSG_GET_RAW_SPECTRUM)))
            t0 = time.monotonic()
            arrivals: list[tuple[float, int]] = []
            got = 0
            while got < 2112:
                chunk = t.read_some(Deadline(5.0))
                got += len(chunk)
                arrivals.append((time.monotonic() - t0, got))
    first, last = arrivals[0][0], arrivals[-1][0]
    assert got == 2112
    assert 1.0 <= first < 1.3  # exposure first (the request itself is 64 bytes: 67 ms)
    assert last - first == pytest.approx(2111 * 10 / 9600, abs=0.15)
    assert len(arrivals) > 50  # many small pieces, not one frame at once
    halfway = next(t for t, n in arrivals if n >= 1056)
    assert halfway - first == pytest.approx(1056 * 10 / 9600, abs=0.15)
    assert emu.stats.served == 1


def test_served_count_excludes_free_running_silence_and_lost_frames():
    with Emulator("ascii", rate=200, faults="stall=0.3", stall_s=0.01, seed=3) as emu:
        assert emu.wait_frames(40)
        stats = emu.stats
    assert stats.silent == stats.faults["stall"] > 0
    assert stats.served == stats.frames - stats.silent - stats.lost


def test_ascii_identify_command_answers_the_serial():
    with Emulator("ascii", query="?", serial_number="C12880-77") as emu:
        with Transport.open(emu.port, timeout=1.0) as t:
            t.write(b"ID?\n")
            assert t.read_until(b"\n").strip() == b"C12880-77"
