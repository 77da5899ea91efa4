"""The model bundle: a directory with ``weights.safetensors``, ``model.json`` and
``model.json.sha256``.

``model.json`` describes everything needed to use the weights without the training code:
architecture, classes, the model's input axis, the preprocessing, the training recipe and
metrics, library versions and the sha256 of the weights. ``model.json.sha256`` (``sha256sum``
format) covers ``model.json`` itself, so an edited class name, axis or preprocessing step is
refused like edited weights. Loading never unpickles anything, needs no torch (weights come
back as numpy arrays) and refuses weights or metadata whose hash differs. A bundle written
before the metadata digest existed is refused until :func:`seal_bundle` (``pace-edge info DIR
--seal``) records it.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import BundleError, PaceEdgeError
from .integrity.digest import digest_path, sha256_file, strict_json, verify_digest, write_digest
from .model.config import ModelConfig
from .preprocess import Pipeline

FORMAT = "pace-edge-bundle"
FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "model.json"


__all__ = ["Bundle", "read_json", "read_metadata", "seal_bundle", "sha256_file"]
SEAL_HINT = ("bundles written by earlier pace-edge versions lack it; check model.json, then "
             "record its digest with pace-edge info DIR --seal")


def library_versions(*names: str) -> dict[str, str]:
    """Installed versions of pace-edge, Python and the named distributions (if installed)."""
    out = {"pace-edge": __version__, "python": platform.python_version()}
    for name in ("numpy", *names):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@dataclass
class Bundle:
    """A trained model: architecture, weights and everything needed to feed it."""

    config: ModelConfig
    weights: dict[str, np.ndarray]
    classes: list[str]
    axis: np.ndarray
    preprocessing: Pipeline
    training: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    @property
    def input_length(self) -> int:
        return int(self.axis.size)

    def save(self, directory: str | Path) -> Path:
        """Write the bundle to ``directory`` (created; existing bundle files are replaced)."""
        from safetensors.numpy import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights_path = directory / WEIGHTS_FILE
        tensors = {k: np.ascontiguousarray(v) for k, v in self.weights.items()}
        save_file(tensors, str(weights_path), metadata={"format": FORMAT})
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": self.config.to_dict(),
            "classes": list(self.classes),
            "input": {"length": self.input_length, "axis": [float(v) for v in self.axis]},
            "preprocessing": self.preprocessing.to_list(),
            "training": self.training,
            "versions": self.versions or library_versions("torch", "safetensors"),
            "weights": {"file": WEIGHTS_FILE, "sha256": sha256_file(weights_path)},
        }
        text = strict_json(meta).encode()
        (directory / META_FILE).write_bytes(text)
        write_digest(directory / META_FILE, text)
        self.path = directory
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Bundle:
        """Read and verify a bundle; raise :class:`BundleError` on anything missing or altered."""
        directory = Path(directory)
        meta = read_metadata(directory)
        weights_path = directory / meta["weights"]["file"]
        if not weights_path.is_file():
            raise BundleError(f"{directory}: weights file {weights_path.name} is missing")
        digest = sha256_file(weights_path)
        if digest != meta["weights"]["sha256"]:
            raise BundleError(
                f"{weights_path}: sha256 {digest[:12]}… does not match model.json "
                f"({str(meta['weights']['sha256'])[:12]}…): the weights were altered or replaced"
            )
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            weights = load_file(str(weights_path))
        except (SafetensorError, OSError) as exc:
            raise BundleError(f"{weights_path}: unreadable weights ({exc})") from exc
        try:
            config = ModelConfig.from_dict(meta["model"])
            config.validate()
            preprocessing = Pipeline.from_list(meta["preprocessing"])
        except (PaceEdgeError, TypeError) as exc:
            raise BundleError(f"{directory / META_FILE}: {exc}") from exc
        axis = np.asarray(meta["input"]["axis"], dtype=np.float64)
        if axis.size != meta["input"]["length"]:
            raise BundleError(f"{directory / META_FILE}: input axis length mismatch")
        if len(meta["classes"]) != config.num_classes:
            raise BundleError(
                f"{directory / META_FILE}: {len(meta['classes'])} class names for a "
                f"{config.num_classes}-class model"
            )
        return cls(
            config=config,
            weights=weights,
            classes=[str(c) for c in meta["classes"]],
            axis=axis,
            preprocessing=preprocessing,
            training=meta.get("training", {}),
            versions=meta.get("versions", {}),
            path=directory,
        )


def read_json(path: Path, data: bytes | None = None) -> dict[str, Any]:
    """The JSON object in ``path`` (or in ``data``, its bytes already read); :class:`BundleError`
    if not valid JSON or not an object."""
    try:
        data = json.loads(path.read_bytes() if data is None else data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise BundleError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


_REQUIRED = ("format", "format_version", "model", "classes", "input", "preprocessing", "weights")


def read_metadata(directory: Path, *, verify: bool = True) -> dict[str, Any]:
    """The parsed, structurally checked ``model.json`` of a bundle directory, checked against
    ``model.json.sha256`` first (``verify=False`` only for :func:`seal_bundle`)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BundleError(f"{directory}: not a model bundle directory (does not exist)")
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise BundleError(f"{directory}: not a model bundle ({META_FILE} is missing)")
    data = meta_path.read_bytes()
    if verify:
        verify_digest(meta_path, data, SEAL_HINT)
    meta = read_json(meta_path, data)
    if meta.get("format") != FORMAT:
        raise BundleError(f"{meta_path}: not a pace-edge bundle (format field missing or wrong)")
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise BundleError(f"{meta_path}: missing fields: {', '.join(missing)}")
    if meta["format_version"] > FORMAT_VERSION:
        raise BundleError(
            f"{meta_path}: bundle format {meta['format_version']} is newer than this pace-edge "
            f"understands ({FORMAT_VERSION}); upgrade pace-edge"
        )
    if not isinstance(meta["weights"], dict) or {"file", "sha256"} - set(meta["weights"]):
        raise BundleError(f"{meta_path}: weights entry must name a file and its sha256")
    return meta


def seal_bundle(directory: str | Path) -> Path:
    """Record the digest of a bundle's current ``model.json`` (``model.json.sha256``), for
    bundles written before the digest existed; the bundle must otherwise load (weights hash,
    structure). Returns the digest file. Only seal a ``model.json`` you have checked."""
    directory = Path(directory)
    read_metadata(directory, verify=False)
    meta_path = directory / META_FILE
    if digest_path(meta_path).exists():
        raise BundleError(f"{digest_path(meta_path)} already exists: --seal is only for bundles "
                          "written before metadata digests (it never re-seals an edited one)")
    data = meta_path.read_bytes()
    sidecar = write_digest(meta_path, data)
    try:
        Bundle.load(directory)
    except BundleError:
        sidecar.unlink()
        raise
    return sidecar
