"""A paho-mqtt client configured for a :class:`~.mqtt_url.BrokerAddress` (login, TLS, backoff)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import FleetError
from .mqtt_url import BrokerAddress

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

RECONNECT_MIN_S = 0.1
RECONNECT_MAX_S = 5.0
KEEPALIVE_S = 15


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for ``mqtts://``: the CA that signed the broker, and an optional client pair."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    @property
    def given(self) -> bool:
        return any(p is not None for p in (self.ca, self.cert, self.key))


def paho():
    """The paho-mqtt client module, or a one-line error saying how to install it."""
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise FleetError("MQTT needs the paho-mqtt package: pip install 'pace-edge[fleet]'") \
            from None
    return mqtt


def check_tls(address: BrokerAddress, tls: TlsFiles) -> None:
    """Refuse TLS files that cannot be used with ``address``, or do not exist."""
    if tls.given and not address.tls:
        raise FleetError("--mqtt-ca/--mqtt-cert/--mqtt-key need an mqtts:// address")
    if (tls.cert is None) != (tls.key is None):
        raise FleetError("--mqtt-cert and --mqtt-key go together")
    for what, path in (("--mqtt-ca", tls.ca), ("--mqtt-cert", tls.cert), ("--mqtt-key", tls.key)):
        if path is not None and not Path(path).is_file():
            raise FleetError(f"{what} {path}: no such file")


def make_client(address: BrokerAddress, client_id: str, tls: TlsFiles | None = None,
                clean_session: bool = True) -> mqtt.Client:
    """A client (callback API v2, MQTT 3.1.1) with login, TLS and reconnect backoff set; not
    yet connected."""
    mqtt = paho()
    tls = tls or TlsFiles()
    check_tls(address, tls)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         clean_session=clean_session, protocol=mqtt.MQTTv311)
    if address.username is not None:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        try:
            client.tls_set(ca_certs=None if tls.ca is None else str(tls.ca),
                           certfile=None if tls.cert is None else str(tls.cert),
                           keyfile=None if tls.key is None else str(tls.key))
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise FleetError(f"cannot use the TLS files: {exc}") from None
    client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
    return client


def connect_async(client: mqtt.Client, address: BrokerAddress) -> None:
    """Start connecting in the background; paho keeps reconnecting with backoff."""
    client.connect_async(address.host, address.port, keepalive=KEEPALIVE_S)
    client.loop_start()
