"""The one call through which ``pace-edge rightsize`` exports a candidate (INT8, one target).

Post-training quantisation first. A small network can miss the INT8 criterion (the export's
sensitivity gate: its build must classify held-out training spectra like FP32) unless most of
its layers stay float; with ``qat`` epochs, such a candidate is fine-tuned with INT8 rounding
in the loop (``pace-edge export --qat``) and exported again, judged against the same FP32
model. The fine-tuned build is the candidate's when it passes; otherwise the post-training one
stays, with the fine-tuned attempt named in its reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..benchmark.builds import Build

SENSITIVITY_GATE = "sensitivity"
DEFAULT_QAT_EPOCHS = 3  # what `pace-edge export --qat` took to pass on COV's small model


def qat_folder(workdir: Path, epochs: int) -> Path:
    """Where the fine-tuned export of a candidate goes (beside its post-training one)."""
    return workdir / f"qat{epochs}"


def failed_sensitivity(build: Build) -> bool:
    """Whether ``build`` was exported but its INT8 build missed the criterion."""
    from ..benchmark.builds import STATUS_INVALID

    return build.status == STATUS_INVALID and SENSITIVITY_GATE in build.failed_gates


def export_int8(bundle_dir: Path, target: str, workdir: Path, calib: Path,
                qat: int = 0) -> tuple[Build, int]:
    """Export ``bundle_dir`` for ``target`` at INT8 into ``workdir/<target>-int8``, calibrated
    on ``calib``'s training spectra (an export already there of the same weights is reused);
    if that build misses the INT8 criterion and ``qat`` > 0, again after ``qat`` epochs of
    quantisation-aware fine-tuning into ``workdir/qat<N>/<target>-int8``. Returns the build
    and the fine-tuning epochs it took (0: post-training quantisation)."""
    from ..benchmark.builds import STATUS_INVALID, BuildSpec, export_build

    spec = BuildSpec(target, "int8")
    build = export_build(bundle_dir, spec, workdir, calib=calib)
    if qat <= 0 or not failed_sensitivity(build):
        return build, 0
    tuned = export_build(bundle_dir, spec, qat_folder(workdir, qat), calib=calib, qat=qat)
    if tuned.status != STATUS_INVALID:
        return tuned, qat
    build.reason += (f"; after {qat} epochs of quantisation-aware fine-tuning it failed too "
                     f"({tuned.path})")
    return build, 0


__all__ = ["DEFAULT_QAT_EPOCHS", "export_int8", "failed_sensitivity", "qat_folder"]
