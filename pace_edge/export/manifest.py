"""``manifest.json`` of an export directory: what each artefact is, how to feed it, its hashes.

Torch-free and onnx-free: device runners import this to find and verify their model.
:func:`verify_export` (alias :func:`load_manifest`) checks ``manifest.json`` against its digest
``manifest.json.sha256``, optionally its Ed25519 signature ``manifest.json.sig`` against trusted
public keys, then re-hashes every listed file; anything missing or altered is refused. The
manifest is strict JSON: a non-finite figure (NaN parity of a broken artefact) is written as
``null`` and read back as NaN.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ..bundle import read_json
from ..errors import BundleError
from ..integrity.digest import sha256_file, strict_json, verify_digest, write_digest
from ..integrity.signing import signature_path, verify_signature

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ..integrity.signing import TrustedKeys

MANIFEST_FILE = "manifest.json"
FORMAT = "pace-edge-export"
FORMAT_VERSION = 1
DIGEST_FILE = MANIFEST_FILE + ".sha256"
SIGNATURE_FILE = MANIFEST_FILE + ".sig"
# Files that belong to the manifest itself (replaced with it, never listed in it).
INTEGRITY_FILES = (DIGEST_FILE, SIGNATURE_FILE)
REEXPORT_HINT = ("exports written by earlier pace-edge versions lack it; re-export the bundle "
                 "with pace-edge export")
_PARITY_FIGURES = ("max_abs_diff", "mean_abs_diff", "agreement")


@dataclass
class Artefact:
    """One exported file, relative to the export directory (sha256/bytes filled on write)."""

    path: str
    kind: str  # "onnx", "openvino-xml", "openvino-bin", ...
    precision: str
    sha256: str = ""
    bytes: int = 0


@dataclass
class InputSpec:
    """The model input: name, points per spectrum, batch, dtype, axis and preprocessing."""

    name: str
    length: int
    batch: int | str  # a fixed size or "dynamic"
    axis: list[float]
    preprocessing: list[dict[str, Any]]
    dtype: str = "float32"


@dataclass
class OutputSpec:
    """The model output: ``logits`` (N, classes); apply softmax for probabilities."""

    name: str
    classes: int
    dtype: str = "float32"
    kind: str = "logits"


@dataclass
class Manifest:
    """Everything a runner needs to use an export, plus how it was made and checked."""

    target: str
    precision: str
    artefacts: list[Artefact]
    input: InputSpec
    output: OutputSpec
    classes: list[str]
    source: dict[str, Any]  # bundle path, weights sha256, model config
    opset: int | None = None
    runtime: dict[str, Any] = field(default_factory=dict)  # settings runners must apply
    parity: list[dict[str, Any]] = field(default_factory=list)
    executed_graph: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    accuracy: dict[str, Any] | None = None
    # temperature, physical checks and the "unknown" detector (pace_edge.trust.Trust.to_dict)
    trust: dict[str, Any] | None = None
    status: dict[str, Any] = field(default_factory=dict)  # gate_status(): failed gates
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # the export directory, once written or loaded

    def artefact(self, kind: str) -> Path:
        """Absolute path of the (first) artefact of ``kind``; :class:`BundleError` if none."""
        for a in self.artefacts:
            if a.kind == kind:
                return (self.path or Path(".")) / a.path
        kinds = ", ".join(a.kind for a in self.artefacts)
        raise BundleError(f"export has no {kind} artefact (it has: {kinds})")

    @property
    def parity_passed(self) -> bool:
        return all(row.get("passed", False) for row in self.parity)

    @property
    def failed_gates(self) -> list[str]:
        """Gates this export failed and nobody accepted: ``status.failed_gates``; for exports
        written before the status was recorded, failed parity rows and a failed accuracy
        gate."""
        if "failed_gates" in self.status:
            return list(self.status["failed_gates"])
        old = ["parity"] if not self.parity_passed else []
        return old + (["accuracy"] if self.accuracy and not self.accuracy.get("passed") else [])

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("path")
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        known = {f.name for f in fields(cls)} - {"path"}
        values = {k: v for k, v in data.items() if k in known}
        values["artefacts"] = [Artefact(**a) for a in data["artefacts"]]
        values["input"] = InputSpec(**data["input"])
        values["output"] = OutputSpec(**data["output"])
        values["parity"] = [
            {k: float("nan") if v is None and k in _PARITY_FIGURES else v for k, v in row.items()}
            for row in data.get("parity", [])
        ]
        return cls(**values)


def gate_status(problems: dict[str, str], accepted: tuple[str, ...] = ()) -> dict[str, Any]:
    """The manifest's ``status``: ``passed`` (no gate failed), ``failed_gates`` (runners refuse
    the export unless allowed), ``accepted_gates`` (failed, accepted with ``--force``) and one
    line per failed gate in ``problems``."""
    return {
        "passed": not problems,
        "failed_gates": [g for g in problems if g not in accepted],
        "accepted_gates": [g for g in problems if g in accepted],
        "problems": dict(problems),
    }


def refuse_failed(manifest: Manifest, allow_failed: bool = False) -> None:
    """:class:`BundleError` naming the gate when ``manifest``'s export failed one, unless
    ``allow_failed``."""
    failed = manifest.failed_gates
    if not failed or allow_failed:
        return
    problems = manifest.status.get("problems", {})
    detail = "; ".join(f"{g}: {problems[g]}" if g in problems else g for g in failed)
    raise BundleError(
        f"{manifest.path or 'the export'} failed its {' and '.join(failed)} gate"
        f"{'s' if len(failed) > 1 else ''} ({detail}); --allow-failed runs it anyway")


def _safe_relative(directory: Path, name: str) -> Path:
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise BundleError(f"{directory / MANIFEST_FILE}: artefact path {name!r} leaves the export")
    return directory / rel


def write_manifest(directory: str | Path, manifest: Manifest) -> Path:
    """Hash every artefact in ``directory`` and write ``manifest.json`` (strict JSON) and its
    digest ``manifest.json.sha256``; return the manifest's path. A signature of a previous
    manifest no longer matches and is removed (sign again with :func:`sign_export`)."""
    directory = Path(directory)
    for a in manifest.artefacts:
        file = _safe_relative(directory, a.path)
        if not file.is_file():
            raise BundleError(f"{directory}: artefact {a.path} does not exist")
        a.sha256 = sha256_file(file)
        a.bytes = file.stat().st_size
    if not manifest.created:
        manifest.created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    manifest.path = directory
    out = directory / MANIFEST_FILE
    text = strict_json(manifest.to_dict()).encode()
    signature_path(out).unlink(missing_ok=True)
    out.write_bytes(text)
    write_digest(out, text)
    return out


def sign_export(directory: str | Path, key: Ed25519PrivateKey) -> Path:
    """Sign ``directory``/manifest.json (which lists every artefact's sha256) with ``key``;
    the manifest must verify first. Returns ``manifest.json.sig``."""
    from ..integrity.signing import sign_file

    verify_export(directory)
    return sign_file(Path(directory) / MANIFEST_FILE, key)


def is_signed(directory: str | Path) -> bool:
    """Whether ``directory`` holds a manifest signature (not verified)."""
    return (Path(directory) / SIGNATURE_FILE).is_file()


def signature_of(directory: str | Path) -> dict[str, Any] | None:
    """The export's signature document (``algorithm``, ``key_sha256``, ...) for describing it,
    or ``None`` when unsigned. Not verified: pass trusted keys to :func:`verify_export` for
    that."""
    from ..integrity.signing import read_signature

    path = Path(directory) / SIGNATURE_FILE
    return read_signature(path, MANIFEST_FILE) if path.is_file() else None


def read_manifest(directory: str | Path, data: bytes | None = None) -> dict[str, Any]:
    """The parsed, format-checked ``manifest.json`` of ``directory`` (or ``data``, its bytes
    already read); neither the digest nor the files are verified."""
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    if data is None and not path.is_file():
        raise BundleError(f"{directory}: not an export directory ({MANIFEST_FILE} is missing)")
    data = read_json(path, data)
    if data.get("format") != FORMAT:
        raise BundleError(f"{path}: not a pace-edge export manifest")
    if not isinstance(data.get("format_version"), int) or data["format_version"] > FORMAT_VERSION:
        raise BundleError(
            f"{path}: export format {data.get('format_version')} is newer than this pace-edge "
            f"understands ({FORMAT_VERSION}); upgrade pace-edge"
        )
    return data


def is_export_dir(directory: str | Path) -> bool:
    """Whether ``directory`` holds a pace-edge export manifest (not verified)."""
    try:
        read_manifest(directory)
    except BundleError:
        return False
    return True


def verify_export(directory: str | Path, trusted_keys: TrustedKeys | None = None) -> Manifest:
    """The verified manifest of the export in ``directory``.

    Checks, in order and on the same bytes: ``manifest.json`` against ``manifest.json.sha256``;
    with ``trusted_keys``, its signature ``manifest.json.sig`` by one of those keys; its format;
    every listed artefact's sha256. :class:`BundleError` (:class:`~pace_edge.integrity.signing.
    SignatureError` for signatures) with one line saying what is wrong.
    """
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(f"{directory}: not an export directory ({MANIFEST_FILE} is missing)")
    text = path.read_bytes()
    verify_digest(path, text, REEXPORT_HINT)
    if trusted_keys is not None:
        verify_signature(path, text, trusted_keys)
    data = read_manifest(directory, text)
    try:
        manifest = Manifest.from_dict(data)
    except (KeyError, TypeError) as exc:
        raise BundleError(f"{directory / MANIFEST_FILE}: malformed manifest ({exc})") from exc
    for a in manifest.artefacts:
        file = _safe_relative(directory, a.path)
        if not file.is_file():
            raise BundleError(f"{directory}: artefact {a.path} listed in the manifest is missing")
        digest = sha256_file(file)
        if digest != a.sha256:
            raise BundleError(
                f"{file}: sha256 {digest[:12]}… does not match the manifest "
                f"({a.sha256[:12]}…): the file was altered or replaced"
            )
    manifest.path = directory
    return manifest


def load_manifest(directory: str | Path, trusted_keys: TrustedKeys | None = None) -> Manifest:
    """:func:`verify_export` (the name runners and tools have used)."""
    return verify_export(directory, trusted_keys)
