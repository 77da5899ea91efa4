"""``manifest.json`` of an export directory: what each artefact is, how to feed it, its hashes.

Torch-free and onnx-free: device runners import this to find and verify their model.
:func:`load_manifest` re-hashes every listed file and refuses anything missing or altered.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any

from ..bundle import read_json, sha256_file
from ..errors import BundleError

MANIFEST_FILE = "manifest.json"
FORMAT = "pace-edge-export"
FORMAT_VERSION = 1


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
        return cls(**values)


def _safe_relative(directory: Path, name: str) -> Path:
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise BundleError(f"{directory / MANIFEST_FILE}: artefact path {name!r} leaves the export")
    return directory / rel


def write_manifest(directory: str | Path, manifest: Manifest) -> Path:
    """Hash every artefact in ``directory`` and write ``manifest.json``; return its path."""
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
    out.write_text(json.dumps(manifest.to_dict(), indent=2, allow_nan=True) + "\n")
    return out


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The parsed, format-checked ``manifest.json`` of ``directory`` (files not verified)."""
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(f"{directory}: not an export directory ({MANIFEST_FILE} is missing)")
    data = read_json(path)
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


def load_manifest(directory: str | Path) -> Manifest:
    """Read ``manifest.json`` and verify every artefact's sha256; :class:`BundleError` if not."""
    directory = Path(directory)
    data = read_manifest(directory)
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
