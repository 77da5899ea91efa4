"""sha256 of files and the ``NAME.sha256`` sidecar that covers a metadata file.

A bundle's ``model.json`` and an export's ``manifest.json`` each get a sidecar,
``model.json.sha256`` / ``manifest.json.sha256``, in the format of ``sha256sum`` (so
``sha256sum -c manifest.json.sha256`` checks it too)::

    3b1f…e9  manifest.json

The metadata file lists the sha256 of every other file (weights, artefacts), so the sidecar
closes the chain: an edit to classes, axis, preprocessing or thresholds changes the metadata's
bytes and no longer matches. Like the weight hashes, a digest catches accidental and naive
edits; authenticity needs a signature (:mod:`.signing`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from ..errors import BundleError

DIGEST_SUFFIX = ".sha256"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def digest_path(path: Path) -> Path:
    """The sidecar of ``path``: ``manifest.json`` → ``manifest.json.sha256``."""
    return path.with_name(path.name + DIGEST_SUFFIX)


def write_digest(path: Path, data: bytes) -> Path:
    """Write the sidecar of ``path`` for its content ``data``; return the sidecar's path."""
    sidecar = digest_path(path)
    sidecar.write_text(f"{sha256_bytes(data)}  {path.name}\n")
    return sidecar


def verify_digest(path: Path, data: bytes, missing_hint: str) -> None:
    """Check ``data`` (the bytes read from ``path``) against ``path``'s sidecar.

    :class:`BundleError` when the sidecar is missing (``missing_hint`` says what to do),
    malformed, names another file, or records another sha256 (the file was edited).
    """
    sidecar = digest_path(path)
    if not sidecar.is_file():
        raise BundleError(f"{sidecar} is missing: {path.name} is not covered by a digest; "
                          f"{missing_hint}")
    try:
        fields = sidecar.read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"{sidecar}: unreadable digest ({exc})") from exc
    if len(fields) != 2 or not _HEX64.fullmatch(fields[0]):
        raise BundleError(f"{sidecar}: malformed digest (expected '<sha256>  {path.name}')")
    if fields[1].lstrip("*") != path.name:
        raise BundleError(f"{sidecar}: digest of {fields[1]!r}, not of {path.name}")
    actual = sha256_bytes(data)
    if actual != fields[0]:
        raise BundleError(
            f"{path}: sha256 {actual[:12]}… does not match {sidecar.name} ({fields[0][:12]}…): "
            f"{path.name} was edited after it was written"
        )


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def strict_json(value: Any, indent: int | None = 2) -> str:
    """``value`` as strict JSON (RFC 8259): NaN and ±inf written as ``null``, never ``NaN``."""
    return json.dumps(_finite(value), indent=indent, allow_nan=False) + "\n"
