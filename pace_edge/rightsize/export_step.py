"""The one call through which ``pace-edge rightsize`` exports a candidate (INT8, one target).

Kept to a single function so that the export's entry point can change in one place.
"""

from __future__ import annotations

from pathlib import Path

from ..benchmark.builds import Build, BuildSpec, export_build


def export_int8(bundle_dir: Path, target: str, workdir: Path, calib: Path) -> Build:
    """Export ``bundle_dir`` for ``target`` at INT8 into ``workdir/<target>-int8``, calibrated
    on ``calib``'s training spectra; an export already there of the same weights is reused."""
    return export_build(bundle_dir, BuildSpec(target, "int8"), workdir, calib=calib)


__all__ = ["export_int8"]
