"""The emulated text-line device: an Arduino printing a micro-spectrometer's counts."""

from __future__ import annotations

import numpy as np

from ..protocols.ascii_lines import LineFormat
from .device import Acquire, Action, DeviceState, Disconnect, Send, Silence

CORRUPT_CHARS = b"#@!?%&x"  # none of these can be part of a number


class AsciiResponder:
    """Free-running at ``rate`` Hz (``query=None``) or one line per ``query`` command.

    ``header``: a line printed before every spectrum. ``integration_command``: a template
    such as ``"SPEC.INTEG {us}"``; a command with that prefix and an integer sets the
    integration time (no reply). ``identify_command`` (``ID?``) is answered with the
    ``serial_number`` line. Other commands are ignored, as most sketches do.
    """

    def __init__(
        self,
        device: DeviceState,
        line_format: LineFormat,
        *,
        query: str | None = None,
        rate: float = 10.0,
        header: str | None = None,
        integration_command: str | None = "SPEC.INTEG {us}",
        identify_command: str | None = "ID?",
        serial_number: str = "EMU-C12880-0001",
        stall_s: float = 2.0,
        clock: float = 0.0,
    ):
        self.device = device
        self.format = line_format
        self.query = query
        self.period = 1.0 / rate
        self.header = header.encode("ascii") + line_format.eol if header else b""
        self.integration_prefix = (
            integration_command.split("{", 1)[0].strip() if integration_command else None
        )
        self.identify_command = identify_command
        self.serial_number = serial_number
        self.stall_s = stall_s
        self._commands = bytearray()
        self._next = clock

    def on_reconnect(self) -> None:
        self._commands.clear()
        self.device.reset()

    # -- free-running ----------------------------------------------------------------------

    def due(self) -> float | None:
        return None if self.query is not None else self._next

    def tick(self, now: float) -> list[Action]:
        self._next = max(self._next + self.period, now)
        return self.spectrum()

    # -- commands --------------------------------------------------------------------------

    def on_input(self, data: bytes) -> list[Action]:
        self._commands += data
        actions: list[Action] = []
        while True:
            cut = [i for i in (self._commands.find(b"\n"), self._commands.find(b"\r")) if i >= 0]
            if not cut:
                if len(self._commands) > 4096:
                    self._commands.clear()
                return actions
            i = min(cut)
            command = bytes(self._commands[:i]).strip().decode("ascii", "replace")
            del self._commands[: i + 1]
            if command:
                actions += self.command(command)

    def command(self, command: str) -> list[Action]:
        self.device.count(requests=1)
        if self.query is not None and command == self.query:
            return [Acquire(self.spectrum)]
        if self.identify_command is not None and command == self.identify_command:
            return [Send(self.serial_number.encode("ascii") + self.format.eol)]
        prefix = self.integration_prefix
        if prefix and command.startswith(prefix):
            try:
                us = int(command[len(prefix) :].strip())
            except ValueError:
                us = -1
            lo, hi = self.device.integration_range_us
            if lo <= us <= hi:
                self.device.integration_us = us
                return []
        self.device.count(bad_requests=1)
        return []

    def spectrum(self) -> list[Action]:
        dev = self.device
        frame = dev.next_frame()
        if frame.fault == "stall":
            if self.query is None:
                dev.count(silent=1)
                return [Silence(self.stall_s)]
            return []
        if frame.fault == "disconnect":
            return [Disconnect()]
        line = self.format.format(frame.counts)
        body, eol = line[: -len(self.format.eol)], self.format.eol
        if frame.fault == "checksum":
            data = bytearray(body)
            data[int(dev.rng.integers(len(data)))] = CORRUPT_CHARS[
                int(dev.rng.integers(len(CORRUPT_CHARS)))
            ]
            body = bytes(data)
        elif frame.fault == "truncate":
            sep = (self.format.separator or ",").encode()
            text = body[: -len(sep)] if self.format.trailing_separator else body
            last_value_start = text.rfind(sep) + len(sep)
            body = body[: int(dev.rng.integers(1, max(last_value_start, 1) + 1))]
        elif frame.fault == "garbage":
            noise = np.frombuffer(dev.noise_bytes(32), np.uint8) | 0x80  # never ASCII
            dev.count(garbage_bytes=noise.size)
            body = noise.tobytes() + body
        return [Send(self.header + body + eol, frame=True)]
