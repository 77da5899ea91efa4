"""The emulated OBP device: answers requests as an Ocean STS would."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from ..errors import ProtocolError
from ..protocols import obp
from .device import Acquire, Action, DeviceState, Disconnect, Send


class ObpResponder:
    """Serial number, wavelength coefficients, integration time, reset and raw spectra.

    Spectrum replies carry ``pixels`` uint16 counts; faults are applied to them only.
    Unknown message types get a NACK (error 2), bad payloads a NACK (5 or 6); corrupt
    requests are ignored. Replies echo the request's ``regarding`` field.
    """

    def __init__(
        self,
        device: DeviceState,
        *,
        serial_number: str,
        coefficients: Sequence[float],
        checksum_type: int = obp.CHECKSUM_MD5,
    ):
        self.device = device
        self.serial_number = serial_number
        self.coefficients = [float(np.float32(c)) for c in coefficients]
        self.checksum_type = checksum_type
        self.parser = obp.FrameParser()

    def on_reconnect(self) -> None:
        self.parser.reset()
        self.device.reset()

    def due(self) -> float | None:
        return None

    def tick(self) -> list[Action]:
        return []

    def on_input(self, data: bytes) -> list[Action]:
        actions: list[Action] = []
        for item in self.parser.feed(data):
            if isinstance(item, ProtocolError):
                self.device.count(bad_requests=1)
                continue
            if item.is_response:
                continue
            self.device.count(requests=1)
            actions += self.handle(item)
        return actions

    # -- messages --------------------------------------------------------------------------

    def handle(self, msg: obp.Message) -> list[Action]:
        t = msg.message_type
        if t == obp.MSG_GET_RAW_SPECTRUM:
            return [Acquire(lambda: self.spectrum(msg))]
        if t == obp.MSG_GET_SERIAL:
            return [self.reply(msg, self.serial_number.encode("ascii"))]
        if t == obp.MSG_GET_WL_COEFF_COUNT:
            return [self.reply(msg, bytes([len(self.coefficients)]))]
        if t == obp.MSG_GET_WL_COEFF:
            if len(msg.data) != 1:
                return [self.nack(msg, obp.ERR_PAYLOAD_LENGTH)]
            if msg.data[0] >= len(self.coefficients):
                return [self.nack(msg, obp.ERR_PAYLOAD_INVALID)]
            return [self.reply(msg, struct.pack("<f", self.coefficients[msg.data[0]]))]
        if t == obp.MSG_SET_INTEGRATION_TIME:
            if len(msg.data) != 4:
                return [self.nack(msg, obp.ERR_PAYLOAD_LENGTH)]
            (us,) = struct.unpack("<I", msg.data)
            lo, hi = self.device.integration_range_us
            if not lo <= us <= hi:
                return [self.nack(msg, obp.ERR_PAYLOAD_INVALID)]
            self.device.integration_us = us
            return self.ack(msg)
        if t == obp.MSG_RESET:
            self.device.reset()
            return self.ack(msg)
        self.device.count(bad_requests=1)
        return [self.nack(msg, obp.ERR_UNKNOWN_MESSAGE)]

    def reply(self, msg: obp.Message, data: bytes = b"", flags: int = 0) -> Send:
        flags |= obp.FLAG_RESPONSE | (obp.FLAG_ACK if msg.ack_requested else 0)
        out = obp.Message.with_data(
            msg.message_type,
            data,
            flags=flags,
            regarding=msg.regarding,
            checksum_type=self.checksum_type,
        )
        return Send(obp.encode(out))

    def ack(self, msg: obp.Message) -> list[Action]:
        return [self.reply(msg)] if msg.ack_requested else []

    def nack(self, msg: obp.Message, error: int) -> Send:
        out = obp.Message(
            msg.message_type,
            flags=obp.FLAG_RESPONSE | obp.FLAG_NACK,
            error=error,
            regarding=msg.regarding,
            checksum_type=self.checksum_type,
        )
        return Send(obp.encode(out))

    def spectrum(self, msg: obp.Message) -> list[Action]:
        dev = self.device
        frame = dev.next_frame()
        if frame.fault == "stall":
            return []
        if frame.fault == "disconnect":
            return [Disconnect()]
        payload = frame.counts.astype("<u2").tobytes()
        if frame.fault == "checksum":
            out = obp.Message.with_data(
                msg.message_type,
                payload,
                flags=obp.FLAG_RESPONSE,
                regarding=msg.regarding,
                checksum_type=obp.CHECKSUM_MD5,
            )
            data = bytearray(obp.encode(out))
            i = obp.HEADER_SIZE + int(dev.rng.integers(len(out.payload) or 1))
            data[i] ^= 1 << int(dev.rng.integers(8))
            return [Send(bytes(data), frame=True)]
        data = self.reply(msg, payload).data
        if frame.fault == "truncate":
            cut = int(dev.rng.integers(2, obp.HEADER_SIZE + len(payload)))
            return [Send(data[:cut], frame=True)]
        if frame.fault == "garbage":
            noise = dev.noise_bytes(64, exclude=obp.START[:1])
            dev.count(garbage_bytes=len(noise))
            return [Send(noise + data, frame=True)]
        return [Send(data, frame=True)]
