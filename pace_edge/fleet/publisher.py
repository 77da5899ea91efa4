"""Publishing a stream's results and health to an MQTT broker, off the classification path.

The stream calls :meth:`MqttPublisher.submit` with each JSON-lines record; that only queues it
(no I/O, never blocks). The publisher's own thread stamps the record (device id, model sha256,
stream start, per-stream sequence number ``n``), appends it to the :class:`~.outbox.Outbox`,
fsyncs the batch, and only then hands it to paho-mqtt (QoS 1) under a bounded window. A PUBACK
removes it from the outbox. paho re-sends unacknowledged messages after a reconnect; records
still in the outbox when the process ends are re-sent, in order, by the next stream that opens
the same outbox. Delivery is at-least-once: consumers deduplicate on
``(device_id, stream_start, n)``.

Topics: ``PREFIX/<id>/results`` (QoS 1), ``PREFIX/<id>/health`` (QoS 0, retained, every
``health_interval`` seconds), ``PREFIX/<id>/status`` (retained ``online``; last will and clean
exit ``offline``).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .client import TlsFiles, connect_async, make_client, paho
from .errors import FleetError
from .mqtt_url import BrokerAddress, check_topic_level
from .outbox import Outbox

WINDOW = 1000  # results handed to paho and not yet acknowledged
QUEUE_SIZE = 100_000  # records waiting for the publisher thread
BATCH = 2048  # records spooled per fsync at most
YIELD_EVERY = 4  # records handled between offers of the interpreter lock to the stream thread


@dataclass
class PublisherStats:
    submitted: int = 0
    queue_dropped: int = 0  # the in-memory hand-off was full (the publisher thread stalled)
    published: int = 0  # handed to paho, re-sends after a restart included
    acked: int = 0
    connects: int = 0
    disconnects: int = 0
    refused: str = ""  # the broker's last refusal (bad login...)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


class MqttPublisher:
    """Results to ``PREFIX/<id>/results`` through an outbox; health and status beside them."""

    def __init__(
        self,
        address: BrokerAddress,
        device_id: str,
        outbox: Outbox,
        *,
        stamp: dict[str, Any] | None = None,
        health: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        health_interval: float = 10.0,
        tls: TlsFiles | None = None,
        log: Callable[[str], None] = lambda message: None,
        window: int = WINDOW,
    ) -> None:
        check_topic_level(device_id, "the device id")
        if health_interval <= 0:
            raise FleetError(f"--health-interval must be positive, got {health_interval}")
        self.address = address
        self.device_id = device_id
        self.outbox = outbox
        self.stamp = dict(stamp or {})
        self.health = health
        self.health_interval = float(health_interval)
        self.log = log
        self.window = window
        self.stats = PublisherStats()
        self.topics = {leaf: address.topic(device_id, leaf)
                       for leaf in ("results", "health", "status")}
        self.connected = threading.Event()
        # Unbounded so paho's thread never waits on it; submit() bounds the records in it.
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._pending: deque[tuple[int, bytes]] = deque(outbox.recovered())
        self._inflight: dict[int, int] = {}  # paho mid -> outbox seq
        self._n = 0
        self._online = False  # as last seen by the publisher thread
        self._thread = threading.Thread(target=self._run, name="pace-mqtt", daemon=True)
        self._stopping = threading.Event()
        self._drain_until = 0.0
        mqtt = paho()
        self._mqtt = mqtt
        self.client = make_client(address, f"pace-edge-{device_id}", tls or TlsFiles())
        # No paho limit: the window bounds what paho holds, and a limit would let new messages
        # overtake the older ones paho queues behind it after a reconnect.
        self.client.max_inflight_messages_set(0)
        self.client.will_set(self.topics["status"], b"offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_connect_fail = self._on_connect_fail
        self._failing = False
        if self._pending:
            log(f"outbox {outbox.directory}: {len(self._pending)} unacknowledged results from "
                "an earlier run will be re-sent first")

    # -- the stream's side -------------------------------------------------------------------

    def submit(self, record: dict[str, Any]) -> None:
        """Queue one result for publishing; never blocks (a full queue drops and counts)."""
        if self._queue.qsize() >= QUEUE_SIZE:
            self.stats.queue_dropped += 1
            return
        self._queue.put_nowait(("r", record))
        self.stats.submitted += 1

    def submit_health(self, report: dict[str, Any]) -> None:
        """Publish a health report made elsewhere (the publisher's state is added to it)."""
        self._queue.put_nowait(("h", report))

    # -- lifetime ----------------------------------------------------------------------------

    def start(self) -> MqttPublisher:
        try:
            connect_async(self.client, self.address)
        except (OSError, ValueError) as exc:
            raise FleetError(f"cannot reach the broker {self.address.redacted()}: {exc}") \
                from None
        self._thread.start()
        return self

    def close(self, drain_s: float = 5.0) -> None:
        """Spool every queued record, wait up to ``drain_s`` for the broker to acknowledge what
        is pending (connecting first if need be; not when it refused the login), say ``offline``
        and disconnect. Whatever is left stays in the outbox for the next start."""
        if self._thread.is_alive():
            self._drain_until = time.monotonic() + drain_s
            self._stopping.set()
            self._queue.put(("stop", None))
            self._thread.join()
        if self.connected.is_set():
            info = self.client.publish(self.topics["status"], b"offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=min(drain_s, 2.0))
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()
        self.outbox.close()

    def state(self) -> dict[str, Any]:
        """Publisher and outbox counters, for health and the exit summary."""
        return {"connected": self.connected.is_set(), **self.stats.as_dict(),
                "outbox": self.outbox.stats.as_dict()}

    # -- paho callbacks (paho's network thread) ----------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.stats.refused = str(reason_code)
            self.log(f"broker {self.address.redacted()} refused the connection: {reason_code}")
            return
        self.stats.connects += 1
        self._failing = False
        self.connected.set()
        self._queue.put(("online", True))
        client.publish(self.topics["status"], b"online", qos=1, retain=True)
        self.log(f"connected to {self.address.redacted()}")

    def _on_connect_fail(self, client, userdata) -> None:
        if not self._failing:
            self._failing = True
            self.log(f"cannot connect to {self.address.redacted()} (will keep trying); results "
                     "wait in the outbox")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected.is_set():
            self.stats.disconnects += 1
            self.log(f"broker connection lost ({reason_code}); results wait in the outbox")
        self.connected.clear()
        self._queue.put(("online", False))

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._queue.put(("a", mid))

    # -- the publisher thread ----------------------------------------------------------------

    def _run(self) -> None:
        next_health = time.monotonic() + self.health_interval
        stopping = False
        while True:
            now = time.monotonic()
            timeout = max(0.0, min(next_health - now, 0.2))
            events = self._take(timeout)
            for i, (kind, value) in enumerate(events, 1):
                if i % YIELD_EVERY == 0:
                    _yield()
                if kind == "r":
                    self._spool(value)
                elif kind == "a":
                    self._acked(value)
                elif kind == "online":
                    self._online = value
                elif kind == "h":
                    self._publish_report(value)
                elif kind == "stop":
                    stopping = True
            self.outbox.sync()
            self._hand_over()
            if self.health is not None and time.monotonic() >= next_health:
                self._publish_health()
                next_health = time.monotonic() + self.health_interval
            if stopping and self._queue.empty() and (
                not (self._pending or self._inflight) or self.stats.refused
                or time.monotonic() >= self._drain_until
            ):
                if self.health is not None:
                    self._publish_health()
                return

    def _take(self, timeout: float) -> list[tuple[str, Any]]:
        try:
            events = [self._queue.get(timeout=timeout) if timeout > 0
                      else self._queue.get_nowait()]
        except queue.Empty:
            return []
        while len(events) < BATCH:
            try:
                events.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return events

    def _spool(self, record: dict[str, Any]) -> None:
        stamped = {**record, **self.stamp, "n": self._n}
        self._n += 1
        payload = json.dumps(stamped, separators=(",", ":")).encode()
        seq = self.outbox.append(payload)
        if seq is not None:
            self._pending.append((seq, payload))

    def _acked(self, mid: int) -> None:
        seq = self._inflight.pop(mid, None)
        if seq is not None:
            self.outbox.ack(seq)
            self.stats.acked += 1

    def _hand_over(self) -> None:
        """Hand pending records to paho while connected (paho re-sends what it holds after a
        reconnect, before anything handed over later)."""
        if not self._online:
            return
        topic = self.topics["results"]
        handed = 0
        while self._pending and len(self._inflight) < self.window:
            handed += 1
            if handed % YIELD_EVERY == 0:
                _yield()
            seq, payload = self._pending[0]
            info = self.client.publish(topic, payload, qos=1)
            if info.rc not in (self._mqtt.MQTT_ERR_SUCCESS, self._mqtt.MQTT_ERR_NO_CONN):
                break  # paho refused to queue it; try again next round
            self._pending.popleft()
            self._inflight[info.mid] = seq
            self.stats.published += 1

    def _publish_health(self) -> None:
        assert self.health is not None
        self._publish_report(self.health({}))

    def _publish_report(self, report: dict[str, Any]) -> None:
        report = {**report, "mqtt": self.state()}
        self.client.publish(self.topics["health"], json.dumps(report).encode(), qos=0,
                            retain=True)


def _yield() -> None:
    """Let the classification thread run: a thread holding the interpreter lock keeps it up to
    the switch interval (5 ms) while another waits, which would show in the stream's p99."""
    time.sleep(0)
