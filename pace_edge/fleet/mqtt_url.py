"""``mqtt://[user:pass@]HOST[:PORT]/PREFIX`` and ``mqtts://...`` (TLS) broker addresses."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .errors import FleetError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_TOPIC_FORBIDDEN = set("+#\0")


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is, how to log in, and the topic prefix every device publishes under."""

    host: str
    port: int
    prefix: str
    tls: bool = False
    username: str | None = None
    password: str | None = None

    def topic(self, device_id: str, leaf: str) -> str:
        """``PREFIX/<device-id>/<leaf>``."""
        return f"{self.prefix}/{device_id}/{leaf}"

    def redacted(self) -> str:
        """The address without the password, for logs."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}/{self.prefix}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse a broker address; :class:`FleetError` naming what is wrong."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise FleetError(f"--mqtt must be mqtt://[user:pass@]HOST[:PORT]/PREFIX or mqtts://..., "
                         f"got {url!r}")
    if not parts.hostname:
        raise FleetError(f"--mqtt {url!r} names no broker host")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise FleetError(f"--mqtt {url!r}: the port is not a number from 1 to 65535") from None
    prefix = parts.path.strip("/")
    if not prefix:
        raise FleetError(f"--mqtt {url!r} has no topic prefix (add /PREFIX, e.g. /lab1)")
    check_topic_level(prefix, "the topic prefix", allow_slash=True)
    if parts.query or parts.fragment:
        raise FleetError(f"--mqtt {url!r}: no query or fragment expected")
    return BrokerAddress(
        host=parts.hostname,
        port=port,
        prefix=prefix,
        tls=scheme == "mqtts",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def check_topic_level(value: str, what: str, allow_slash: bool = False) -> str:
    """Refuse MQTT wildcards (``+``, ``#``), NUL, empty levels and (unless allowed) ``/``."""
    if not value or _TOPIC_FORBIDDEN & set(value) or (not allow_slash and "/" in value) or (
        "//" in value
    ):
        raise FleetError(f"{what} {value!r} cannot be used in an MQTT topic (no +, #, empty "
                         f"levels{'' if allow_slash else ' or /'})")
    return value
