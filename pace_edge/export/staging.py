"""Where an export is written: a staging folder inside ``out``, published only when finished.

A crash while exporting leaves the previous export in ``out`` as it was. An ``out`` that already
holds an export (or any other files) is refused unless ``force``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import PaceEdgeError
from ..paths import writable_dir
from .manifest import INTEGRITY_FILES, MANIFEST_FILE, read_manifest
from .report import REPORT_FILE


def previous_export(out: Path, force: bool, log: Callable[[str], None]) -> list[str]:
    """Create ``out`` or check it may be written; return the previous export's file names."""
    writable_dir(out, "export")
    if not any(out.iterdir()):
        return []
    try:
        old = read_manifest(out)
    except PaceEdgeError:
        if force:
            return []
        raise PaceEdgeError(
            f"{out} is not empty and holds no previous export; choose another --out or --force"
        ) from None
    listed = {Path(a["path"]).parts[0] for a in old.get("artefacts", []) if a.get("path")}
    names = sorted(n for n in listed | {MANIFEST_FILE, *INTEGRITY_FILES, REPORT_FILE}
                   if (out / n).exists())
    what = f"target {old.get('target')}, {old.get('precision')}"
    if not force:
        raise PaceEdgeError(
            f"{out} already holds an export ({what}); --force replaces it, or choose another "
            "--out")
    log(f"replacing the export in {out} ({what}): {', '.join(names)}")
    return names


def stage(out: Path) -> Path:
    """A fresh staging folder inside ``out`` (removed by the caller)."""
    return Path(tempfile.mkdtemp(prefix=".export-", dir=out))


def publish(staged: Path, out: Path, old_files: list[str]) -> None:
    """Replace the previous export's files in ``out`` with the staged ones."""
    for name in old_files:
        old = out / name
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink(missing_ok=True)
    for item in staged.iterdir():
        target = out / item.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        item.replace(target)
