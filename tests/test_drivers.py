"""Drivers end to end over a real pty against the emulator: handshake, spectra, errors,
fault soaks with exact accounting, reconnects."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest

from pace_edge.streaming.drivers import (
    DRIVERS,
    AsciiSpectrometer,
    ObpSpectrometer,
    RawFrame,
    open_spectrometer,
)
from pace_edge.streaming.emulator import Emulator, default_coefficients
from pace_edge.streaming.errors import (
    ConfigError,
    DeviceChanged,
    DeviceError,
    StreamError,
    TransportClosed,
    TransportTimeout,
    TruncatedFrame,
)
from pace_edge.streaming.protocols import obp
from pace_edge.streaming.spectral_axis import SpectralAxis


class ConstantSource:
    def __init__(self, counts: np.ndarray, dark: float = 100.0):
        self.counts = np.asarray(counts, dtype=np.float64)
        self.dark = dark

    def next(self) -> tuple[np.ndarray, int]:
        return self.counts.copy(), 1


def test_registry():
    assert DRIVERS == {"obp": ObpSpectrometer, "ascii": AsciiSpectrometer}
    with pytest.raises(ConfigError, match="unknown protocol"):
        open_spectrometer("usb", "/dev/null")
    with pytest.raises(ConfigError, match="colour"):
        open_spectrometer("obp", "/dev/null", colour="red")


def test_missing_port_is_transport_closed(tmp_path):
    with pytest.raises(TransportClosed):
        open_spectrometer("ascii", str(tmp_path / "nope"))


# -- OBP -----------------------------------------------------------------------------------


def test_obp_driver_end_to_end():
    with Emulator("obp", serial_number="STS-R9", seed=7) as emu:
        with open_spectrometer("obp", emu.port, timeout=1.0) as spec:
            assert isinstance(spec, ObpSpectrometer)
            assert spec.serial_number == "STS-R9"
            assert spec.pixels == 1024 and spec.max_count == 16383
            assert spec.coefficients == pytest.approx(default_coefficients(1024), rel=1e-6)
            wl = spec.wavelengths()
            assert wl.shape == (1024,) and wl[0] == pytest.approx(790.0)
            assert 999 < wl[-1] < 1001
            frames = [spec.read_spectrum() for _ in range(3)]
            assert [f.sequence for f in frames] == [0, 1, 2]
            assert all(isinstance(f, RawFrame) and f.counts.shape == (1024,) for f in frames)
            assert frames[0].counts.dtype == np.float64 and not frames[0].saturated
            assert frames[0].nbytes == 64 + 2048
            assert frames[0].timestamp_ns <= frames[2].timestamp_ns
            shift = SpectralAxis(wl, laser_nm=785.0)
            intensity, axis = shift.apply(frames[0].counts)
            assert np.all(np.diff(axis) > 0) and 75 < axis[0] < 85 and intensity.size == 1024
        assert spec.stats.frames == 3 and not spec.stats.errors


def test_obp_integration_time_and_nacks():
    source = ConstantSource(np.full(1024, 1100.0))
    with Emulator("obp", source=source, checksum="none") as emu:
        spec = open_spectrometer("obp", emu.port, timeout=1.0, checksum="none")
        try:
            assert spec.read_spectrum().counts[0] == 1100
            spec.set_integration_time_us(250_000)  # 2.5 × the emulator's 100 ms
            assert spec.read_spectrum().counts[0] == 100 + 2.5 * 1000
            with pytest.raises(DeviceError) as info:
                spec.set_integration_time_us(3)  # below the STS minimum (10 µs)
            assert info.value.error_number == 6
            assert info.value.error_name == "payload data invalid"
            with pytest.raises(DeviceError) as info:
                spec.request(0x00ABCDEF)
            assert info.value.error_number == 2 and "unknown message type" in str(info.value)
            with pytest.raises(ConfigError):
                spec.set_integration_time_us(0)
            spec.reset()
            assert spec.read_spectrum().counts[0] == 1100  # still usable, back to 100 ms
        finally:
            spec.close()


def test_obp_stall_is_a_timeout_and_late_replies_are_dropped():
    with Emulator("obp", faults="stall=1.0") as emu:
        with open_spectrometer("obp", emu.port, timeout=0.2) as spec:
            t0 = time.monotonic()
            with pytest.raises(TransportTimeout):
                spec.read_spectrum()
            assert time.monotonic() - t0 < 1.0
            assert spec.stats.errors["TransportTimeout"] == 1
            # a reply to an older request (other 'regarding') is ignored, not returned
            stale = obp.Message(
                obp.MSG_GET_SERIAL, immediate=b"OLD", flags=obp.FLAG_RESPONSE, regarding=999
            )
            spec.transport.unread(obp.encode(stale))
            assert spec.read_serial_number() == "EMU-STS-0001"
            assert spec.stale_replies == 1


# -- ASCII ---------------------------------------------------------------------------------


def test_ascii_query_driver_end_to_end():
    coeffs = [790.0, 0.7]
    with Emulator("ascii", query="SPEC.READ?", seed=3) as emu:
        with open_spectrometer(
            "ascii",
            emu.port,
            query="SPEC.READ?",
            timeout=1.0,
            max_count=4095,
            wavelength_coefficients=coeffs,
            integration_command="SPEC.INTEG {us}",
            serial_number="C12880MA-1",
        ) as spec:
            assert spec.pixels == 288 and spec.serial_number == "C12880MA-1"
            assert spec.wavelengths()[-1] == pytest.approx(790.0 + 0.7 * 287)
            frame = spec.read_spectrum()
            assert frame.counts.shape == (288,) and frame.nbytes > 288
            spec.set_integration_time_us(150_000)
            assert spec.read_spectrum().counts.shape == (288,)
        assert emu.stats.requests == 3 and emu.stats.bad_requests == 0


def test_ascii_free_running_with_header_lines_and_c12666_pixels():
    with Emulator("ascii", pixels=256, rate=300, header="SPEC", separator=";") as emu:
        with open_spectrometer(
            "ascii", emu.port, pixels=256, header_prefix="SPEC", timeout=1.0
        ) as spec:
            frames = [spec.read_spectrum() for _ in range(10)]
            assert all(f.counts.shape == (256,) for f in frames)
            assert spec.skipped_lines >= 9
            assert spec.wavelengths() is None
            with pytest.raises(ConfigError, match="integration_command"):
                spec.set_integration_time_us(1000)


def test_ascii_free_running_faults_only_raise_typed_errors():
    faults = "checksum=0.05,truncate=0.05,garbage=0.05,stall=0.02,nan=0.05,pixels=0.05"
    with Emulator("ascii", pixels=64, rate=400, faults=faults, stall_s=0.05, seed=9) as emu:
        with open_spectrometer("ascii", emu.port, pixels=64, timeout=0.5) as spec:
            seen: Counter[str] = Counter()
            for _ in range(150):
                try:
                    spec.read_spectrum()
                    seen["good"] += 1
                except StreamError as exc:
                    seen[type(exc).__name__] += 1
    assert seen["good"] > 80
    assert set(seen) <= {
        "good", "NonNumericValue", "NonFiniteValue", "PixelCountError", "TransportTimeout",
        "TruncatedFrame",
    }  # fmt: skip


# -- soak: every frame accounted for ------------------------------------------------------

SOAK_FAULTS = (
    "checksum=0.02,truncate=0.002,garbage=0.02,stall=0.002,disconnect=0.0015,"
    "saturate=0.01,pixels=0.01"
)


def soak(spec_factory, emu: Emulator, n: int) -> Counter[str]:
    spec = spec_factory()
    seen: Counter[str] = Counter()
    try:
        for _ in range(n):
            try:
                frame = spec.read_spectrum()
                seen["saturated" if frame.saturated else "good"] += 1
            except StreamError as exc:  # anything else escaping fails the test
                seen[type(exc).__name__] += 1
                if isinstance(exc, TransportClosed):
                    spec.reconnect(timeout_s=5.0)
    finally:
        spec.close()
    assert emu.error is None
    return seen


def test_obp_fault_soak_accounts_for_every_frame():
    n = 2000
    with Emulator("obp", faults=SOAK_FAULTS, seed=11, reconnect_s=0.02) as emu:
        seen = soak(lambda: open_spectrometer("obp", emu.port, timeout=0.3), emu, n)
        stats = emu.stats
    f = stats.faults
    assert sum(seen.values()) == n == stats.frames and stats.accounted
    assert all(f[k] > 0 for k in ("checksum", "truncate", "garbage", "stall", "disconnect"))
    assert seen["good"] == stats.good + f["garbage"]  # garbage is skipped, the frame recovered
    assert seen["saturated"] == f["saturate"]
    assert seen["ChecksumError"] == f["checksum"]
    assert seen["TruncatedFrame"] == f["truncate"]
    assert seen["PixelCountError"] == f["pixels"]
    assert seen["TransportTimeout"] == f["stall"]
    assert seen["TransportClosed"] == f["disconnect"] == stats.disconnects


def test_ascii_fault_soak_accounts_for_every_frame():
    n = 2000
    faults = SOAK_FAULTS + ",nan=0.01"
    with Emulator("ascii", query="SPEC.READ?", faults=faults, seed=12, reconnect_s=0.02) as emu:
        seen = soak(
            lambda: open_spectrometer(
                "ascii", emu.port, query="SPEC.READ?", timeout=0.3, max_count=4095
            ),
            emu,
            n,
        )
        stats = emu.stats
    f = stats.faults
    assert sum(seen.values()) == n == stats.frames and stats.accounted
    assert all(f[k] > 0 for k in ("checksum", "truncate", "garbage", "stall", "disconnect"))
    assert seen["good"] == stats.good
    assert seen["saturated"] == f["saturate"]
    assert seen["NonNumericValue"] == f["checksum"] + f["garbage"]
    assert seen["NonFiniteValue"] == f["nan"]
    assert seen["PixelCountError"] == f["pixels"] + f["truncate"]
    assert seen["TransportTimeout"] == f["stall"]
    assert seen["TransportClosed"] == f["disconnect"]


# -- reconnect ------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["obp", "ascii"])
def test_reconnect_after_the_emulator_drops_and_comes_back(protocol):
    options = {"query": "?"} if protocol == "ascii" else {}
    with Emulator(protocol, reconnect_s=0.2, **options) as emu:
        spec = open_spectrometer(protocol, emu.port, timeout=1.0, **options)
        try:
            spec.read_spectrum()
            first = emu.device_path
            emu.disconnect()
            with pytest.raises(TransportClosed):
                for _ in range(50):  # the drop lands between two reads at the latest
                    spec.read_spectrum()
            spec.reconnect(timeout_s=5.0)
            assert spec.read_spectrum().counts.shape == (spec.pixels,)
            assert spec.stats.reconnects == 1 and emu.device_path is not None
            assert emu.stats.disconnects == 1 and first is not None
        finally:
            spec.close()


def test_reconnect_gives_up_with_transport_closed(tmp_path):
    spec = ObpSpectrometer(str(tmp_path / "gone"), timeout=0.2)
    t0 = time.monotonic()
    with pytest.raises(TransportClosed):
        spec.reconnect(timeout_s=0.3)
    assert time.monotonic() - t0 < 2.0


# -- transport -----------------------------------------------------------------------------


def test_transport_reads_with_deadlines_over_a_pty():
    import os
    import tty

    from pace_edge.streaming.transport import Deadline, Transport

    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        with Transport.open(os.ttyname(slave), 9600, timeout=0.2) as t:
            os.write(master, b"abc")
            with pytest.raises(TransportTimeout, match="3 of 5"):
                t.read_exact(5)
            os.write(master, b"de\nrest")
            assert t.read_exact(5) == b"abcde"  # what arrived before the timeout is kept
            assert t.read_until(b"\n") == b"\n"
            with pytest.raises(TransportTimeout):
                t.read_until(b"\n", deadline=Deadline(0.1))
            assert t.read_some() == b"rest"
            os.write(master, b"late")
            time.sleep(0.05)
            # a reader that comes back after its deadline still gets what the device sent
            assert t.read_some(Deadline(0)) == b"late"
            with pytest.raises(TransportTimeout):
                t.read_some(Deadline(0))
            t.write(b"ping")
            assert os.read(master, 4) == b"ping"
            os.close(master)
            master = -1
            with pytest.raises(TransportClosed):
                t.read_some()
    finally:
        for fd in (master, slave):
            if fd >= 0:
                os.close(fd)
    with pytest.raises(ConfigError):
        Transport.open("nosuchscheme://x")


# -- real link speed ------------------------------------------------------------------------


def test_obp_sts_at_9600_baud_with_one_second_integration():
    """A 1024-pixel reply is 2,112 bytes: 2.2 s on a 9600-baud wire, after a 1 s exposure.
    The deadline follows from the link, so a 0.5 s slack is enough."""
    with Emulator("obp", baud=9600, seed=3) as emu:
        with open_spectrometer("obp", emu.port, timeout=0.5) as spec:
            spec.set_integration_time_us(1_000_000)
            timing = spec.reply_timing(64, spec.spectrum_reply_bytes, spec.work_seconds())
            assert timing.first_byte_s == pytest.approx(64 * 10 / 9600 + 1.0 + 0.5)
            assert timing.gap_s == 0.5
            assert timing.total_s > 2 * 2112 * 10 / 9600
            t0 = time.monotonic()
            frames = [spec.read_spectrum() for _ in range(2)]
            elapsed = time.monotonic() - t0
    assert [f.nbytes for f in frames] == [2112, 2112]
    assert all(f.counts.shape == (1024,) for f in frames)
    per_frame = 1.0 + 2112 * 10 / 9600  # exposure, then the reply on the wire
    assert elapsed >= 2 * per_frame - 0.05
    assert spec.stats.errors == Counter()


@pytest.mark.parametrize("baud", [115200, 9600])
def test_ascii_c12880_at_real_baud(baud):
    """288 pixels as text (about 1.4 kB a line): 0.13 s at 115200 baud, 1.5 s at 9600."""
    with Emulator("ascii", baud=baud, query="?", seed=4) as emu:
        opts = {"query": "?", "baudrate": baud, "timeout": 0.4,
                "integration_command": "SPEC.INTEG {us}"}
        with open_spectrometer("ascii", emu.port, **opts) as spec:
            spec.set_integration_time_us(50_000)
            t0 = time.monotonic()
            frames = [spec.read_spectrum() for _ in range(2)]
            elapsed = time.monotonic() - t0
    nbytes = sum(f.nbytes for f in frames)
    assert all(f.counts.shape == (288,) for f in frames)
    assert elapsed >= nbytes * 10 / baud + 2 * 0.05 - 0.05
    assert spec.stats.errors == Counter()


def test_a_line_that_falls_silent_is_truncated_not_waited_for():
    """The whole-reply budget is long at 9600 baud, but silence ends a cut reply quickly."""
    with Emulator("obp", baud=9600, faults="truncate=1.0", seed=1) as emu:
        with open_spectrometer("obp", emu.port, timeout=0.3) as spec:
            t0 = time.monotonic()
            with pytest.raises(TruncatedFrame, match="silent for 0.3 s"):
                spec.read_spectrum()
            elapsed = time.monotonic() - t0
    # at most the cut frame's wire time (< 2.2 s) plus one silence limit
    assert elapsed < 2112 * 10 / 9600 + 0.3 + 0.5


# -- device identity on reconnect -----------------------------------------------------------


@pytest.mark.parametrize("protocol", ["obp", "ascii"])
def test_reconnect_to_another_device_is_refused(tmp_path, protocol):
    link = tmp_path / "spectrometer"
    options = {"query": "?", "identify": "ID?"} if protocol == "ascii" else {}
    emu_options = {"query": "?"} if protocol == "ascii" else {}
    with Emulator(protocol, link_path=link, serial_number="UNIT-A", **emu_options):
        spec = open_spectrometer(protocol, str(link), timeout=0.5, **options)
        assert spec.identity == "UNIT-A"
        spec.read_spectrum()
    try:
        with Emulator(protocol, link_path=link, serial_number="UNIT-B", **emu_options):
            with pytest.raises(DeviceChanged, match="'UNIT-B', expected 'UNIT-A'") as info:
                spec.reconnect(timeout_s=2.0)
            assert (info.value.expected, info.value.found) == ("UNIT-A", "UNIT-B")
            assert not spec.is_open
            spec.allow_device_change = True
            spec.reconnect(timeout_s=2.0)
            assert spec.identity == "UNIT-B" and spec.device_changes == [("UNIT-A", "UNIT-B")]
            assert spec.read_spectrum().counts.shape == (spec.pixels,)
        with Emulator(protocol, link_path=link, serial_number="UNIT-B", **emu_options):
            spec.reconnect(timeout_s=2.0)  # the same device again: fine
            assert spec.device_changes == [("UNIT-A", "UNIT-B")]
    finally:
        spec.close()
