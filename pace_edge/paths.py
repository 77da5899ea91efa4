"""Output folders shared by every stage."""

from __future__ import annotations

from pathlib import Path

from .errors import PaceEdgeError


def writable_dir(path: Path, what: str = "output") -> Path:
    """Create ``path`` if needed; refuse a path that exists as a file."""
    if path.exists() and not path.is_dir():
        raise PaceEdgeError(f"{what} {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PaceEdgeError(f"cannot create {what} directory {path}: {exc.strerror}") from exc
    return path
