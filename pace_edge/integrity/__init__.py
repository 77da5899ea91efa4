"""Integrity of bundles and exports: digests of metadata files and Ed25519 signatures.

Light on purpose (no torch, no onnx, no numpy): the device-side runners import it to verify
what they are about to run. :mod:`.digest` holds the sha256 helpers and the ``NAME.sha256``
sidecar files that cover ``model.json`` and ``manifest.json``; :mod:`.signing` makes key pairs,
signs ``manifest.json`` and checks a signature against a folder of trusted public keys.
"""

from .digest import (
    DIGEST_SUFFIX,
    digest_path,
    sha256_bytes,
    sha256_file,
    strict_json,
    verify_digest,
    write_digest,
)

__all__ = [
    "DIGEST_SUFFIX",
    "digest_path",
    "sha256_bytes",
    "sha256_file",
    "strict_json",
    "verify_digest",
    "write_digest",
]
