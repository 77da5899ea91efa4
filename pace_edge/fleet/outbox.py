"""An on-disk outbox: results are spooled here, fsync'd in batches, before they are published,
and removed once the broker has acknowledged them.

Layout: a directory of segments. ``<first-seq>.log`` holds records appended one per line as
``SEQ CRC32 PAYLOAD`` (the payload is one line of JSON), ``<first-seq>.ack`` the sequence numbers
the broker acknowledged. A segment whose records are all acknowledged is deleted, so the disk
holds what is not yet delivered plus at most the segment being written. Opening the outbox
again (after a crash, a power cut or a restart) yields the unacknowledged records in order; a
record torn by a crash mid-write fails its checksum and is counted, not delivered.

Bounded: once the segments on disk reach ``max_bytes``, new records are **dropped and counted**
(``dropped``), keeping the oldest undelivered history intact; the stream's own JSON-lines output
still has them. Single-threaded: the publisher thread owns it.
"""

from __future__ import annotations

import bisect
import fcntl
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .errors import FleetError

MIN_SEGMENT_BYTES = 64 * 1024
SEGMENTS = 16  # a full outbox is about this many segments


@dataclass
class _Segment:
    first: int
    log: Path
    ack: Path
    seqs: list[int] = field(default_factory=list)
    acked: set[int] = field(default_factory=set)
    size: int = 0
    ack_file: BinaryIO | None = None

    @property
    def done(self) -> bool:
        return len(self.acked) >= len(self.seqs)


@dataclass
class OutboxStats:
    """Counters since the outbox was opened (``pending`` and ``bytes`` are current)."""

    appended: int = 0
    acked: int = 0
    dropped: int = 0
    recovered: int = 0  # unacknowledged records found on disk when opened
    torn: int = 0  # records that failed their checksum when read back
    fsyncs: int = 0
    fsync_s: float = 0.0
    pending: int = 0
    bytes: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in vars(self).items()}


class Outbox:
    """Append-only, fsync'd spool of records awaiting acknowledgement (see the module doc)."""

    def __init__(self, directory: str | Path, max_bytes: int,
                 segment_bytes: int | None = None) -> None:
        if max_bytes < 1:
            raise FleetError(f"--outbox-max-mb must be positive, got {max_bytes} bytes")
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self.segment_bytes = segment_bytes or max(MIN_SEGMENT_BYTES, self.max_bytes // SEGMENTS)
        self.stats = OutboxStats()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.directory / "lock", "a+b")  # noqa: SIM115
        except OSError as exc:
            raise FleetError(f"cannot use the outbox {self.directory}: {exc.strerror}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            raise FleetError(f"the outbox {self.directory} is in use by another pace-edge "
                             "stream (give each stream its own --outbox)") from None
        self._segments: list[_Segment] = []
        self._firsts: list[int] = []
        self._recovered: list[tuple[int, bytes]] = []
        self._next = 0
        self._load()
        self._writer: BinaryIO | None = None
        self._dirty = False

    # -- opening -----------------------------------------------------------------------------

    def _load(self) -> None:
        for log in sorted(self.directory.glob("*.log")):
            try:
                first = int(log.stem)
            except ValueError:
                continue
            segment = _Segment(first, log, log.with_suffix(".ack"))
            if segment.ack.exists():
                segment.acked = {int(line) for line in segment.ack.read_bytes().split()
                                 if line.isdigit()}
            data = log.read_bytes()
            segment.size = len(data)
            for line in data.split(b"\n"):
                record = _parse(line)
                if record is None:
                    self.stats.torn += bool(line)
                    continue
                seq, payload = record
                segment.seqs.append(seq)
                self._next = max(self._next, seq + 1)
                if seq not in segment.acked:
                    self._recovered.append((seq, payload))
            segment.acked &= set(segment.seqs)
            if segment.done:
                self._delete(segment, listed=False)
            else:
                self._add(segment)
        self.stats.recovered = len(self._recovered)
        self.stats.pending = len(self._recovered)
        self.stats.bytes = sum(s.size for s in self._segments)

    def recovered(self) -> list[tuple[int, bytes]]:
        """The records found on disk and not acknowledged, oldest first (once)."""
        records, self._recovered = self._recovered, []
        return records

    # -- writing -----------------------------------------------------------------------------

    def append(self, payload: bytes) -> int | None:
        """Spool one record (one line, no newline inside); its sequence number, or ``None``
        when the outbox is full and the record is dropped (counted)."""
        line = b"%d %08x %s\n" % (self._next, zlib.crc32(payload), payload)
        if self.stats.bytes + len(line) > self.max_bytes:
            self.stats.dropped += 1
            return None
        segment = self._current()
        assert self._writer is not None
        self._writer.write(line)
        seq = self._next
        self._next += 1
        segment.seqs.append(seq)
        segment.size += len(line)
        self.stats.bytes += len(line)
        self.stats.appended += 1
        self.stats.pending += 1
        self._dirty = True
        return seq

    def sync(self) -> None:
        """Flush and fsync what was appended since the last sync (one fsync per batch)."""
        if not self._dirty or self._writer is None:
            return
        start = time.perf_counter()
        self._writer.flush()
        os.fsync(self._writer.fileno())
        self.stats.fsync_s += time.perf_counter() - start
        self.stats.fsyncs += 1
        self._dirty = False
        for segment in self._segments:
            if segment.ack_file is not None:
                segment.ack_file.flush()

    def ack(self, seq: int) -> None:
        """The broker has the record ``seq``: mark it, and delete its segment once all are."""
        i = bisect.bisect_right(self._firsts, seq) - 1
        if i < 0:
            return
        segment = self._segments[i]
        if seq in segment.acked or seq >= self._next:
            return
        segment.acked.add(seq)
        self.stats.acked += 1
        self.stats.pending -= 1
        if segment.done and (segment is not self._segments[-1] or self._writer is None):
            self._delete(segment)
            return
        if segment.ack_file is None:
            segment.ack_file = open(segment.ack, "ab")  # noqa: SIM115
        segment.ack_file.write(b"%d\n" % seq)

    def close(self) -> None:
        self.sync()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for segment in list(self._segments):
            if segment.ack_file is not None:
                segment.ack_file.close()
                segment.ack_file = None
            if segment.done:
                self._delete(segment)
        self._lock.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- segments ----------------------------------------------------------------------------

    def _current(self) -> _Segment:
        last = self._segments[-1] if self._segments else None
        if self._writer is not None and last is not None and last.size < self.segment_bytes:
            return last
        if self._writer is not None:
            self.sync()
            self._writer.close()
            self._writer = None
            if last is not None and last.done:
                self._delete(last)
        log = self.directory / f"{self._next:016d}.log"
        segment = _Segment(self._next, log, log.with_suffix(".ack"))
        self._writer = open(log, "ab")  # noqa: SIM115
        _fsync_dir(self.directory)
        self._add(segment)
        return segment

    def _add(self, segment: _Segment) -> None:
        self._segments.append(segment)
        self._firsts.append(segment.first)

    def _delete(self, segment: _Segment, listed: bool = True) -> None:
        if segment.ack_file is not None:
            segment.ack_file.close()
            segment.ack_file = None
        for path in (segment.log, segment.ack):
            path.unlink(missing_ok=True)
        if listed:
            i = self._segments.index(segment)
            del self._segments[i], self._firsts[i]
            self.stats.bytes -= segment.size


def _parse(line: bytes) -> tuple[int, bytes] | None:
    parts = line.split(b" ", 2)
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    try:
        crc = int(parts[1], 16)
    except ValueError:
        return None
    if zlib.crc32(parts[2]) != crc:
        return None
    return int(parts[0]), parts[2]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
