"""The model bundle: a directory with ``weights.safetensors`` and ``model.json``.

``model.json`` describes everything needed to use the weights without the training code:
architecture, classes, the model's input axis, the preprocessing, the training recipe and
metrics, library versions and the sha256 of the weights. Loading never unpickles anything,
needs no torch (weights come back as numpy arrays) and refuses weights whose hash differs.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import BundleError, PaceEdgeError
from .model.config import ModelConfig
from .preprocess import Pipeline

FORMAT = "pace-edge-bundle"
FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "model.json"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
        (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
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


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; :class:`BundleError` if not valid JSON or not an object."""
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise BundleError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


_REQUIRED = ("format", "format_version", "model", "classes", "input", "preprocessing", "weights")


def read_metadata(directory: Path) -> dict[str, Any]:
    """The parsed, structurally checked ``model.json`` of a bundle directory."""
    if not directory.is_dir():
        raise BundleError(f"{directory}: not a model bundle directory (does not exist)")
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise BundleError(f"{directory}: not a model bundle ({META_FILE} is missing)")
    meta = read_json(meta_path)
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
