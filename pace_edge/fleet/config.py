"""``device.toml``: every option of a command in one flat TOML file, keys named like the
long options (``port``, ``laser-nm`` or ``laser_nm``, ``mqtt``, ``outbox-max-mb``...)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .errors import FleetError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def read_toml(path: str | Path) -> dict[str, Any]:
    """The parsed file; :class:`FleetError` naming the file and the problem."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise FleetError(f"--config {path}: no such file") from None
    except OSError as exc:
        raise FleetError(f"--config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FleetError(f"--config {path}: not valid TOML ({exc})") from None


def load_options(path: str | Path,
                 known: Mapping[str, Callable[[Any], Any]]) -> dict[str, Any]:
    """Options from ``path`` keyed by destination (``laser-nm`` → ``laser_nm``), each passed
    through its converter. Unknown keys, tables and values a converter refuses are one-line
    :class:`FleetError` s."""
    values: dict[str, Any] = {}
    for key, value in read_toml(path).items():
        dest = key.replace("-", "_")
        if dest not in known:
            raise FleetError(f"--config {path}: unknown key {key!r} (known: "
                             f"{', '.join(sorted(k.replace('_', '-') for k in known))})")
        if isinstance(value, dict):
            raise FleetError(f"--config {path}: {key} must be a value, not a table")
        try:
            values[dest] = known[dest](value)
        except (ValueError, TypeError) as exc:
            raise FleetError(f"--config {path}: {key}: {exc}") from None
    return values
