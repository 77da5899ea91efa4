"""Ed25519 signatures over an export's ``manifest.json``: key pairs, signing, trusted keys.

``manifest.json`` lists every artefact with its sha256, so signing its bytes signs the whole
export. The signature sits beside it in ``manifest.json.sig``::

    {"format": "pace-edge-signature", "format_version": 1, "algorithm": "ed25519",
     "file": "manifest.json", "key_sha256": "<sha256 of the raw 32-byte public key>",
     "signature": "<64 bytes, hex>"}

A device trusts the public keys (PEM, SubjectPublicKeyInfo) in one folder
(:func:`load_trusted_keys`); :func:`verify_signature` refuses an unsigned manifest, one signed
by a key outside that folder, and one altered after signing. Uses ``cryptography`` (OpenSSL);
the native ``pace-stream`` checks the same file with OpenSSL's EVP_DigestVerify.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BundleError, PaceEdgeError
from .digest import sha256_bytes

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

SIGNATURE_SUFFIX = ".sig"
FORMAT = "pace-edge-signature"
FORMAT_VERSION = 1
ALGORITHM = "ed25519"
PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub.pem"
DEFAULT_KEY_NAME = "pace-edge"


class SignatureError(BundleError):
    """An export that is unsigned, signed by an untrusted key, or altered after signing."""


@dataclass(frozen=True)
class TrustedKey:
    """One trusted Ed25519 public key: its file and the sha256 of its raw 32 bytes."""

    path: Path
    key_sha256: str
    key: Ed25519PublicKey


@dataclass(frozen=True)
class TrustedKeys:
    """The public keys of one folder (``--trusted-keys DIR``)."""

    directory: Path
    keys: tuple[TrustedKey, ...]

    def find(self, key_sha256: str) -> TrustedKey | None:
        return next((k for k in self.keys if k.key_sha256 == key_sha256), None)


def signature_path(path: Path) -> Path:
    """Where the signature of ``path`` lives: ``manifest.json`` → ``manifest.json.sig``."""
    return path.with_name(path.name + SIGNATURE_SUFFIX)


def _raw_public(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """sha256 (hex) of the raw public key: names a key in signatures and messages."""
    return sha256_bytes(_raw_public(key))


def generate_key_pair(directory: str | Path, name: str = DEFAULT_KEY_NAME) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair into ``directory``: ``NAME.key`` (PKCS #8 PEM, owner-only,
    mode 0600) and ``NAME.pub.pem`` (the public key for devices' trusted folders). Refuses to
    replace existing files. Returns (private, public) paths."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not name or "/" in name or name.startswith("."):
        raise PaceEdgeError(f"key name {name!r} must be a plain file name")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise PaceEdgeError(f"{directory} exists and is not a directory")
    private_path = directory / f"{name}{PRIVATE_SUFFIX}"
    public_path = directory / f"{name}{PUBLIC_SUFFIX}"
    for path in (private_path, public_path):
        if path.exists():
            raise PaceEdgeError(f"{path} already exists; choose another --name or folder "
                                "(a key is never overwritten)")
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_pair(Ed25519PrivateKey.generate(), private_path, public_path)
    except OSError as exc:
        raise PaceEdgeError(f"cannot write the key pair into {directory}: {exc.strerror}") from None
    return private_path, public_path


def _write_pair(key: Ed25519PrivateKey, private_path: Path, public_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # whatever the umask
        f.write(private_pem)
    public_path.write_bytes(public_pem)


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in PEM file ``path``; :class:`PaceEdgeError` saying why not."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PaceEdgeError(f"{path}: cannot read the signing key ({exc.strerror})") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise PaceEdgeError(f"{path}: the key is encrypted; pace-edge signs with an "
                            "unencrypted key (pace-edge keygen)") from None
    except ValueError:
        raise PaceEdgeError(f"{path}: not a PEM private key (make one with pace-edge "
                            "keygen)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise PaceEdgeError(f"{path}: not an Ed25519 key (pace-edge keygen makes one)")
    return key


def load_public_key(path: Path) -> TrustedKey:
    """The Ed25519 public key in PEM file ``path``; :class:`PaceEdgeError` saying why not."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PaceEdgeError(f"{path}: cannot read the public key ({exc.strerror})") from None
    if b"PRIVATE KEY" in data:
        raise PaceEdgeError(f"{path} holds a private key; a trusted-keys folder holds public "
                            "keys only (NAME.pub.pem from pace-edge keygen)")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise PaceEdgeError(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise PaceEdgeError(f"{path}: not an Ed25519 public key")
    return TrustedKey(path, key_id(key), key)


def load_trusted_keys(directory: str | Path) -> TrustedKeys:
    """Every ``*.pem`` public key in ``directory``; :class:`PaceEdgeError` if there is none
    or one is not an Ed25519 public key."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PaceEdgeError(f"trusted keys: {directory} is not a directory")
    keys = tuple(load_public_key(p) for p in sorted(directory.glob("*.pem")) if p.is_file())
    if not keys:
        raise PaceEdgeError(f"trusted keys: {directory} holds no public key (*.pem); copy the "
                            "NAME.pub.pem that pace-edge keygen wrote there")
    return TrustedKeys(directory, keys)


def sign_file(path: str | Path, key: Ed25519PrivateKey) -> Path:
    """Sign the bytes of ``path`` and write ``path``.sig; return the signature's path."""
    path = Path(path)
    data = path.read_bytes()
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "algorithm": ALGORITHM,
        "file": path.name,
        "key_sha256": key_id(key.public_key()),
        "signature": key.sign(data).hex(),
    }
    out = signature_path(path)
    out.write_text(json.dumps(document, indent=2) + "\n")
    return out


def read_signature(sig_path: Path, signed_name: str) -> dict[str, Any]:
    """The checked-for-form signature document ``sig_path`` over file ``signed_name`` (the
    signature itself is not verified); :class:`SignatureError` if malformed."""
    try:
        document = json.loads(sig_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SignatureError(f"{sig_path}: unreadable signature ({exc})") from None
    ok = (isinstance(document, dict) and document.get("format") == FORMAT
          and isinstance(document.get("key_sha256"), str)
          and isinstance(document.get("signature"), str))
    if not ok:
        raise SignatureError(f"{sig_path}: not a pace-edge signature")
    if document.get("format_version") != FORMAT_VERSION or document.get("algorithm") != ALGORITHM:
        raise SignatureError(f"{sig_path}: unsupported signature (format "
                             f"{document.get('format_version')}, {document.get('algorithm')}); "
                             "expected ed25519")
    if document.get("file") != signed_name:
        raise SignatureError(f"{sig_path}: signs {document.get('file')!r}, not {signed_name}")
    return document


def verify_signature(path: Path, data: bytes, trusted: TrustedKeys) -> TrustedKey:
    """Check that ``data`` (the bytes read from ``path``) carries a valid signature by one of
    ``trusted``; return that key. :class:`SignatureError` with one clear line otherwise."""
    from cryptography.exceptions import InvalidSignature

    sig_path = signature_path(path)
    n = len(trusted.keys)
    keys = f"{n} trusted key{'s' if n != 1 else ''} in {trusted.directory}"
    if not sig_path.is_file():
        raise SignatureError(f"{path.parent} is not signed ({sig_path.name} is missing) and "
                             f"only exports signed by one of the {keys} may run; sign it with "
                             "pace-edge export --sign KEY")
    document = read_signature(sig_path, path.name)
    signer = trusted.find(document["key_sha256"])
    if signer is None:
        raise SignatureError(f"{path.parent} is signed by key {document['key_sha256'][:16]}…, "
                             f"which is not one of the {keys}")
    try:
        signature = bytes.fromhex(document["signature"])
        signer.key.verify(signature, data)
    except (ValueError, InvalidSignature):
        raise SignatureError(f"{path}: the signature by trusted key {signer.path.name} does "
                             f"not match: {path.name} was altered after signing") from None
    return signer
