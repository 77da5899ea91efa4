"""The publisher in a process of its own, so that publishing costs the classification thread
one JSON encoding and one non-blocking pipe write per result, and no other thread of the
stream's process competes with it for the interpreter lock.

:class:`PublisherProcess` (in the stream's process) starts a child (``spawn``) that runs an
:class:`~.outbox.Outbox` and a :class:`~.publisher.MqttPublisher`. Results go to it as JSON
lines over a pipe written without blocking: what the pipe cannot take waits in a bounded
backlog, written with the next result (beyond the bound, results are dropped and counted).
Health reports (every ``health_interval`` seconds, from a timer thread) and the stop request
go over a separate queue. The child ignores
SIGINT/SIGTERM (the stream stops it, after draining) and, if the stream process dies, exits at
once without a clean disconnect, so the broker sends the last will and the outbox keeps what
was not acknowledged for the next start.
"""

from __future__ import annotations

import fcntl
import json
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .client import TlsFiles, check_tls, paho
from .errors import FleetError
from .mqtt_url import BrokerAddress, check_topic_level

BACKLOG_BYTES = 64 * 1024 * 1024  # results the pipe could not take yet, at most
PIPE_BYTES = 1024 * 1024  # asked of the kernel for the results pipe
START_TIMEOUT_S = 60.0
PARENT_POLL_S = 0.5
READ_POLL_S = 0.01  # the publisher reads the results pipe this often


@dataclass(frozen=True)
class PublisherSettings:
    """Everything the child needs (picklable)."""

    address: BrokerAddress
    device_id: str
    outbox: Path
    outbox_max_bytes: int
    stamp: dict[str, Any]
    tls: TlsFiles
    log_prefix: str = "pace-edge stream: "


class PublisherProcess:
    """Publishing off the stream's process; same ``submit``/``close``/``state`` as
    :class:`~.publisher.MqttPublisher`."""

    def __init__(self, settings: PublisherSettings,
                 health: Callable[[], dict[str, Any]] | None = None,
                 health_interval: float = 10.0) -> None:
        paho()  # installed?
        check_topic_level(settings.device_id, "the device id")
        check_tls(settings.address, settings.tls)
        if health_interval <= 0:
            raise FleetError(f"--health-interval must be positive, got {health_interval}")
        self.settings = settings
        self.health = health
        self.health_interval = float(health_interval)
        ctx = mp.get_context("spawn")
        self._read_end, self._write_end = ctx.Pipe(duplex=False)
        self._fd = self._write_end.fileno()
        os.set_blocking(self._fd, False)
        try:
            fcntl.fcntl(self._fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
        except OSError:
            pass  # the default 64 KiB pipe; the backlog takes the rest
        self._backlog = bytearray()
        self._queue = ctx.Queue()
        self._replies = ctx.Queue()
        self._process = ctx.Process(target=_child,
                                    args=(settings, self._read_end, self._queue, self._replies),
                                    name="pace-mqtt", daemon=True)
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._health_loop, name="pace-health",
                                       daemon=True)
        self.dropped = 0
        self.final: dict[str, Any] | None = None

    def start(self) -> PublisherProcess:
        self._process.start()
        self._read_end.close()  # the child has its own
        try:
            kind, value = self._replies.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            self._process.kill()
            raise FleetError("the MQTT publisher process did not start") from None
        if kind == "error":
            self._process.join(5)
            raise FleetError(value)
        if self.health is not None:
            self._timer.start()
        return self

    def submit(self, record: dict[str, Any]) -> None:
        """Hand one result to the publisher process; never blocks (drops and counts)."""
        line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
        if len(self._backlog) + len(line) > BACKLOG_BYTES:
            self.dropped += 1
            return
        self._backlog += line
        self._write()

    def _write(self) -> None:
        try:
            written = os.write(self._fd, self._backlog)
        except BlockingIOError:
            return
        except OSError:  # the publisher process is gone: results stay in the JSON lines only
            self.dropped += self._backlog.count(b"\n")
            written = len(self._backlog)
        del self._backlog[:written]

    def _health_loop(self) -> None:
        assert self.health is not None
        while not self._stop.wait(self.health_interval):
            self._send_health()

    def _send_health(self) -> None:
        assert self.health is not None
        try:
            self._queue.put_nowait(("h", self.health()))
        except queue.Full:
            pass

    def close(self, drain_s: float = 5.0) -> None:
        """A last health report, then the child drains (up to ``drain_s``) and stops."""
        self._stop.set()
        if self._timer.is_alive():
            self._timer.join()
        if not self._process.is_alive():
            self._write_end.close()
            return
        os.set_blocking(self._fd, True)
        while self._backlog:
            self._write()
        self._write_end.close()  # the child reads to the end, then stops
        if self.health is not None:
            self._send_health()
        self._queue.put(("stop", drain_s))
        try:
            while True:
                kind, value = self._replies.get(timeout=drain_s + 10)
                if kind == "state":
                    self.final = value
                    break
        except queue.Empty:
            pass
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()

    def state(self) -> dict[str, Any]:
        """The child's final counters (after :meth:`close`), plus drops on this side."""
        state = dict(self.final or {"connected": False, "published": 0, "acked": 0,
                                    "queue_dropped": 0, "outbox": {}})
        state["queue_dropped"] = state.get("queue_dropped", 0) + self.dropped
        return state


def _child(settings: PublisherSettings, results: Any, control: Any, replies: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = os.getppid()
    from .outbox import Outbox
    from .publisher import MqttPublisher

    def log(message: str) -> None:
        print(f"{settings.log_prefix}{message}", file=sys.stderr, flush=True)

    try:
        outbox = Outbox(settings.outbox, settings.outbox_max_bytes)
        try:
            publisher = MqttPublisher(settings.address, settings.device_id, outbox,
                                      stamp=settings.stamp, tls=settings.tls, log=log)
            publisher.start()
        except BaseException:
            outbox.close()
            raise
    except FleetError as exc:
        replies.put(("error", str(exc)))
        return
    replies.put(("ready", None))
    reader = threading.Thread(target=_read_results, args=(results.fileno(), publisher),
                              name="pace-results", daemon=True)
    reader.start()
    while True:
        try:
            kind, value = control.get(timeout=PARENT_POLL_S)
        except queue.Empty:
            if os.getppid() != parent:  # the stream died: no clean goodbye, the will fires
                os._exit(1)
            continue
        if kind == "h":
            publisher.submit_health(value)
        elif kind == "stop":
            reader.join()  # every result the stream wrote has been handed on
            publisher.close(drain_s=value)
            replies.put(("state", publisher.state()))
            return


def _read_results(fd: int, publisher: Any) -> None:
    """JSON lines from the stream's pipe to the publisher, until the stream closes it.

    Polled every ``READ_POLL_S`` rather than waited on: a reader blocked in ``read`` is woken by
    every write, and on a busy CPU the kernel may run it at once in place of the writer, the
    classification thread."""
    os.set_blocking(fd, False)
    pending = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            time.sleep(READ_POLL_S)
            continue
        if not chunk:
            return
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            publisher.submit(json.loads(line))
