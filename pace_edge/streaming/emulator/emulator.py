"""The spectrometer emulator: a device thread serving one protocol on a pseudo-terminal."""

from __future__ import annotations

import errno
import os
import select
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ...data.dataset import SpectralDataset
from .. import spectral_axis
from ..errors import ConfigError
from ..protocols import obp
from ..protocols.ascii_lines import LineFormat
from .ascii_responder import AsciiResponder
from .device import Acquire, Action, DeviceState, Disconnect, EmulatorStats, Send, Silence
from .faults import FaultDraw, check_protocol, parse_faults
from .obp_responder import ObpResponder
from .pty_link import PtyLink
from .sources import DatasetSource, SpectrumSource, SyntheticSource

PROTOCOLS = ("obp", "ascii")
LINK_NAME = "pace-spectrometer"
DEFAULTS = {"obp": {"pixels": 1024, "bits": 14}, "ascii": {"pixels": 288, "bits": 12}}
SERIALS = {"obp": "EMU-STS-0001", "ascii": "EMU-C12880-0001"}
WRITE_TIMEOUT_S = 1.0  # a reply the client does not take within this is dropped
FREE_RUN_WRITE_S = 0.02  # free-running: a full pty loses the frame, as a UART would
MIN_RENDER_LEAD_S = 0.001  # paced: render a frame at least this long before its slot
TRICKLE_S = 0.005  # with ``baud``: bytes are released in slices of this much wire time


def default_coefficients(pixels: int) -> list[float]:
    """A gently curved calibration from 790 to 1000 nm (a 785 nm Raman STS, say)."""
    n = max(pixels - 1, 1)
    return [790.0, 210.0 * 0.95 / n, 210.0 * 0.05 / n**2]


class Emulator:
    """A spectrometer on a pty, answering as ``protocol`` (``obp`` or ``ascii``) says.

    Use as a context manager; pass :attr:`port` (a stable symlink to the current pty slave)
    to pyserial or a driver. Spectra come from ``source``: None for the synthetic generator
    (``n_classes`` classes), a :class:`SpectralDataset` (axis in cm⁻¹ Raman shift), or any
    :class:`SpectrumSource`. The device's pixel axis is ``coefficients`` (nm polynomial)
    seen from a ``laser_nm`` laser. ``faults`` is a spec string (see :mod:`.faults`).

    ASCII: free-running at ``rate`` Hz (default 10) unless ``query`` is set. OBP or ASCII
    with ``query``: answers as fast as possible, or at most ``rate`` spectra per second; then a
    requested spectrum is rendered shortly before its slot (as a detector is read out at the
    end of its exposure), not while the client is still busy with the previous one.
    ``baud`` makes it behave like the wire: a request counts as received once its last byte
    would have arrived, output trickles out at a UART's rate (8N1: 10 bits a byte, sent in
    slices of :data:`TRICKLE_S`), and a requested spectrum is only answered once the
    integration time has passed since the request (the detector exposes first). None sends at
    pty speed and answers at once. ``serial_number`` is what OBP's "get serial number" and
    ASCII's ``identify_command`` answer.
    """

    def __init__(
        self,
        protocol: str = "obp",
        *,
        source: SpectrumSource | SpectralDataset | None = None,
        faults: str | Mapping[str, float] | None = None,
        seed: int = 0,
        pixels: int | None = None,
        bits: int | None = None,
        coefficients: Sequence[float] | None = None,
        laser_nm: float = 785.0,
        rate: float | None = None,
        baud: int | None = None,
        checksum: str = "md5",
        serial_number: str | None = None,
        query: str | None = None,
        header: str | None = None,
        separator: str = ",",
        trailing_separator: bool = True,
        decimals: int | None = None,
        integration_command: str | None = "SPEC.INTEG {us}",
        identify_command: str | None = "ID?",
        integration_us: int = 100_000,
        n_classes: int = 3,
        stall_s: float = 2.0,
        reconnect_s: float = 0.2,
        link_path: str | Path | None = None,
    ):
        if protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {protocol!r}; choose obp or ascii")
        self.protocol = protocol
        serial_number = SERIALS[protocol] if serial_number is None else serial_number
        self.serial_number = serial_number
        pixels = DEFAULTS[protocol]["pixels"] if pixels is None else int(pixels)
        bits = DEFAULTS[protocol]["bits"] if bits is None else int(bits)
        if pixels < 2:
            raise ConfigError(f"pixels must be at least 2, got {pixels}")
        if not 1 <= bits <= 16:
            raise ConfigError(f"ADC bits must be 1..16, got {bits}")
        if rate is not None and not rate > 0:
            raise ConfigError(f"rate must be positive, got {rate}")
        if baud is not None and baud <= 0:
            raise ConfigError(f"baud must be positive, got {baud}")
        if checksum not in ("md5", "none"):
            raise ConfigError(f"checksum must be md5 or none, got {checksum!r}")
        self.rates = parse_faults(faults)
        check_protocol(self.rates, protocol)
        self.coefficients = [
            float(np.float32(c)) for c in (coefficients or default_coefficients(pixels))
        ]
        self.axis = spectral_axis.SpectralAxis.from_coefficients(
            self.coefficients, pixels, laser_nm
        )
        self.laser_nm = laser_nm
        fault_seed, detail_seed, source_seed = np.random.SeedSequence(seed).spawn(3)
        full_scale = float(2**bits - 1)
        shift = self.axis.axis
        if source is None:
            src: SpectrumSource = SyntheticSource(
                shift,
                np.random.default_rng(source_seed),
                n_classes=n_classes,
                peak_counts=0.05 * full_scale,
            )
        elif isinstance(source, SpectralDataset):
            src = DatasetSource(
                source, shift, np.random.default_rng(source_seed), full_scale=full_scale
            )
        else:
            src = source
        self.device = DeviceState(
            src,
            pixels=pixels,
            bits=bits,
            faults=FaultDraw(self.rates, np.random.default_rng(fault_seed)),
            rng=np.random.default_rng(detail_seed),
            integration_us=integration_us,
        )
        self.rate = rate
        self.baud = baud
        self.reconnect_s = reconnect_s
        self.responder: ObpResponder | AsciiResponder
        if protocol == "obp":
            self.responder = ObpResponder(
                self.device,
                serial_number=serial_number,
                coefficients=self.coefficients,
                checksum_type=obp.CHECKSUM_MD5 if checksum == "md5" else obp.CHECKSUM_NONE,
            )
        else:
            self.line_format = LineFormat(
                pixels, separator, trailing_separator=trailing_separator, decimals=decimals
            )
            self.responder = AsciiResponder(
                self.device,
                self.line_format,
                query=query,
                rate=rate or 10.0,
                header=header,
                integration_command=integration_command,
                identify_command=identify_command,
                serial_number=serial_number,
                stall_s=stall_s,
                clock=time.monotonic(),
            )
        self._link_path = None if link_path is None else Path(link_path)
        self._own_dir: Path | None = None
        self.link = PtyLink(self._link_path or Path(LINK_NAME))  # placed by start()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._disconnect = threading.Event()
        self._wake_r, self._wake_w = -1, -1
        self._next_slot = 0.0
        self._render_s = 0.0  # recent (decaying) maximum time to render a frame
        self._wire_free_at = 0.0
        self._silent_until = 0.0
        self._requested_at = 0.0
        self.error: BaseException | None = None  # what ended the device thread, if not stop()

    # -- public ----------------------------------------------------------------------------

    @property
    def port(self) -> str:
        """The path a client opens (stable across emulated disconnects); set by start()."""
        if self._thread is None:
            raise ConfigError("the emulator is not started (use it as a context manager)")
        return str(self.link.path)

    @property
    def device_path(self) -> str | None:
        """The current pty slave, e.g. ``/dev/pts/7``."""
        return self.link.device_path

    @property
    def pixels(self) -> int:
        return self.device.pixels

    @property
    def stats(self) -> EmulatorStats:
        """A consistent snapshot of what has been served so far."""
        with self.device.lock:
            return self.device.stats.copy()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Emulator:
        if self._thread is not None:
            return self
        if self._link_path is None:
            self._own_dir = Path(tempfile.mkdtemp(prefix="pace-emu-"))
            self.link = PtyLink(self._own_dir / LINK_NAME)
        self.link.open()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name="pace-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the device thread and remove the pty and its path."""
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self.link.drop()
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None

    def disconnect(self) -> None:
        """Drop the link now (as the 'disconnect' fault does), outside the fault schedule."""
        self._disconnect.set()
        self._wake()

    def wait_frames(self, n: int, timeout_s: float = 5.0) -> bool:
        """Block until at least ``n`` frames were produced (free-running tests)."""
        end = time.monotonic() + timeout_s
        while self.stats.frames < n:
            if time.monotonic() > end or not self.running:
                return False
            time.sleep(0.005)
        return True

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- device thread ---------------------------------------------------------------------

    def _wake(self) -> None:
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                self._step()
        except BaseException as exc:  # keep the failure for the test / CLI to report
            self.error = exc

    def _step(self) -> None:
        if self._disconnect.is_set():
            self._disconnect.clear()
            self._drop_link()
            return
        now = time.monotonic()
        due = self.responder.due()
        if due is not None:
            due = max(due, self._silent_until)
        wait = 0.5 if due is None else min(max(due - now, 0.0), 0.5)
        master = self.link.master
        assert master is not None
        readable, _, _ = select.select([master, self._wake_r], [], [], wait)
        if self._wake_r in readable:
            os.read(self._wake_r, 4096)
        if master in readable:
            try:
                data = os.read(master, 1 << 16)
            except OSError as exc:  # EIO: nobody holds the slave (cannot happen: we do)
                if exc.errno not in (errno.EAGAIN, errno.EIO):
                    raise
                data = b""
            if data:
                # with ``baud``, a request is complete once its last byte would have arrived
                self._requested_at = time.monotonic() + (
                    len(data) * 10.0 / self.baud if self.baud else 0.0)
                self._run(self.responder.on_input(data))
        due = self.responder.due()
        now = time.monotonic()
        if due is not None and now >= max(due, self._silent_until):
            self._run(self.responder.tick(now))

    def _run(self, actions: list[Action]) -> bool:
        """Carry out ``actions``; False once the link was dropped or the emulator stops."""
        for action in actions:
            if self._stop.is_set():
                return False
            if isinstance(action, Acquire):
                if self.baud:  # the detector integrates before it can be read out
                    exposure = self.device.integration_us * 1e-6
                    if self._stop.wait(max(self._requested_at + exposure - time.monotonic(),
                                           0.0)):
                        return False
                if self._paced():
                    lead = min(0.5 / float(self.rate or 1.0), max(MIN_RENDER_LEAD_S,
                                                                   4.0 * self._render_s))
                    if self._stop.wait(max(self._next_slot - lead - time.monotonic(), 0.0)):
                        return False
                start = time.monotonic()
                rendered = action.render()
                self._render_s = max(time.monotonic() - start, 0.9 * self._render_s)
                if not self._run(rendered):
                    return False
            elif isinstance(action, Send):
                if action.frame and self._paced():
                    self._pace()
                sent = self._write(action.data)
                if action.frame and sent == 0:
                    self.device.count(lost=1)
            elif isinstance(action, Silence):
                self._silent_until = time.monotonic() + action.seconds
            elif isinstance(action, Disconnect):
                self._drop_link()
                return False
        return True

    def _paced(self) -> bool:
        """Requested frames are held to ``rate`` (free-running ones are timed by ``due``)."""
        return bool(self.rate) and self.responder.due() is None

    def _pace(self) -> None:
        now = time.monotonic()
        if self._next_slot > now:
            self._stop.wait(self._next_slot - now)
        self._next_slot = max(self._next_slot, now) + 1.0 / float(self.rate or 1.0)

    def _write(self, data: bytes) -> int:
        """Write all of ``data`` unless the pty stays full (free-running: drop at once);
        returns the bytes written.

        With ``baud`` set, bytes leave as a UART sends them: slices of :data:`TRICKLE_S`
        wire time, each written when a UART would have finished it (10 bits a byte, back to
        back with what went before).
        """
        if not self.baud:
            return self._write_now(data)
        byte_s = 10.0 / self.baud
        start = max(time.monotonic(), self._wire_free_at, self._requested_at)
        step = max(1, int(TRICKLE_S / byte_s))
        sent = 0
        for i in range(0, len(data), step):
            part = data[i : i + step]
            due = start + (i + len(part)) * byte_s
            if self._stop.wait(max(due - time.monotonic(), 0.0)):
                break
            n = self._write_now(part)
            sent += n
            if n < len(part):
                self.device.count(dropped_bytes=len(data) - i - len(part))
                break
        self._wire_free_at = max(start + sent * byte_s, time.monotonic())
        return sent

    def _write_now(self, data: bytes) -> int:
        master = self.link.master
        view = memoryview(data)
        sent = 0
        patience = WRITE_TIMEOUT_S if self.responder.due() is None else FREE_RUN_WRITE_S
        end = time.monotonic() + patience
        while master is not None and sent < len(data) and not self._stop.is_set():
            try:
                sent += os.write(master, view[sent:])
                continue
            except BlockingIOError:
                pass
            except OSError:
                break
            left = end - time.monotonic()
            if left <= 0:
                break
            select.select([], [master], [], min(left, 0.05))
        self.device.count(bytes_sent=sent, dropped_bytes=len(data) - sent)
        return sent

    def _drop_link(self) -> None:
        self.device.count(disconnects=1)
        self.link.drop()
        if self._stop.wait(self.reconnect_s):
            return
        self.link.open()
        self.responder.on_reconnect()
