"""A real Mosquitto broker for tests: a generated config on a free loopback port, started,
stopped (gracefully or killed) and restarted on the same port; and a recording subscriber."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)


def require_mosquitto() -> str:
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (Debian package mosquitto; .ci/run installs it)")
    return MOSQUITTO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Broker:
    """``mosquitto -c DIR/mosquitto.conf`` with persistence, optional password and TLS."""

    directory: Path
    port: int = field(default_factory=free_port)
    password_file: Path | None = None
    tls: tuple[Path, Path, Path] | None = None  # ca, cert, key
    proc: subprocess.Popen | None = None

    def config(self) -> str:
        lines = [f"listener {self.port} 127.0.0.1",
                 f"allow_anonymous {'false' if self.password_file else 'true'}",
                 "persistence true", f"persistence_location {self.directory}/",
                 "autosave_interval 1",
                 f"log_dest file {self.directory / 'mosquitto.log'}",
                 "max_queued_messages 100000"]
        if os.geteuid() == 0:  # stay root: the default drop to 'mosquitto' cannot write here
            lines.append("user root")
        if self.password_file is not None:
            lines.append(f"password_file {self.password_file}")
        if self.tls is not None:
            ca, cert, key = self.tls
            lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
        return "\n".join(lines) + "\n"

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self) -> Broker:
        conf = self.directory / "mosquitto.conf"
        conf.write_text(self.config())
        self.proc = subprocess.Popen([require_mosquitto(), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Recorder:
    """A subscriber that records every message; ``persistent`` keeps its session (and the
    broker queues QoS 1 messages for it) while it is disconnected."""

    def __init__(self, broker: Broker, topic: str, client_id: str = "recorder",
                 persistent: bool = False, login: tuple[str, str] | None = None,
                 **tls) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=not persistent, protocol=mqtt.MQTTv311)
        if tls:
            self.client.tls_set(**tls)
        if login:
            self.client.username_pw_set(*login)
        self.client.reconnect_delay_set(0.05, 0.5)
        self.topic = topic

        def on_connect(client, userdata, flags, reason_code, properties):
            client.subscribe(topic, qos=1)
            self.connected.set()

        def on_disconnect(client, userdata, flags, reason_code, properties):
            self.connected.clear()

        def on_message(client, userdata, message):
            with self.lock:
                self.messages.append((message.topic, message.payload, message.retain))

        self.client.on_connect = on_connect
        self.client.on_disconnect = on_disconnect
        self.client.on_message = on_message
        self.client.connect_async("127.0.0.1", broker.port, keepalive=5)
        self.client.loop_start()
        if not self.connected.wait(10):
            raise RuntimeError("recorder could not connect")
        time.sleep(0.2)  # the SUBACK

    def on(self, suffix: str) -> list[tuple[str, bytes, bool]]:
        with self.lock:
            return [m for m in self.messages if m[0].endswith(suffix)]

    def json(self, suffix: str) -> list[dict]:
        return [json.loads(m[1]) for m in self.on(suffix)]

    def wait_for(self, predicate, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_test_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 it signed: (ca, cert, key) PEM."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pace-edge test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
                ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return paths
