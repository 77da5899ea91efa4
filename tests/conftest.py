"""Shared fixtures (the real COV data set beside the checkout, small trained bundles) and the
strict-skip rule of CI.

Under ``CI=true`` (``.ci/run`` sets it) a skipped test fails the run unless it is one of the
ALLOWED SKIPS, the only ones, listed here in one place:

1. tests marked ``gpu`` (TensorRT needs an NVIDIA GPU, which CI does not have);
2. tests that need the real serum data at ``../shared/datasets`` where it is absent (their
   skip reason names ``../shared/datasets``).

Anything else CI skips (a module-level ``importorskip`` of a package CI installs, a missing
toolchain or ``mosquitto`` broker that ``.ci/run`` installs) would hide tests, so it fails.
Outside CI skips are reported as usual.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

COV = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "cov"
SHARED_DATA_MARK = "../shared/datasets"  # in the skip reason of every test that needs it


def ci_strict() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def allowed_skip(report: pytest.CollectReport | pytest.TestReport) -> bool:
    """Whether a skip is one of the ALLOWED SKIPS above."""
    if "gpu" in getattr(report, "keywords", {}):
        return True
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return SHARED_DATA_MARK in reason


_FORBIDDEN_SKIPS: list[str] = []


def _check_skip(report: pytest.CollectReport | pytest.TestReport) -> None:
    if (report.skipped and not hasattr(report, "wasxfail") and ci_strict()
            and not allowed_skip(report)):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        _FORBIDDEN_SKIPS.append(f"{report.nodeid or report.fspath}: {reason}")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _check_skip(report)  # a whole module skipped, e.g. by a module-level importorskip


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _check_skip(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _FORBIDDEN_SKIPS and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _FORBIDDEN_SKIPS:
        terminalreporter.section("skips CI does not allow (CI=true; see tests/conftest.py)",
                                 red=True)
        for line in _FORBIDDEN_SKIPS:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tests run small models: one torch thread avoids waiting on a busy second core."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def cov_dir() -> Path:
    """``../shared/datasets/cov``; tests using it skip with the reason where it is absent."""
    if not (COV / "train_x.npy").is_file():
        pytest.skip(f"real COVID-19 Raman data not found at {COV} ({SHARED_DATA_MARK})")
    return COV


@pytest.fixture(scope="session")
def synthetic_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny bundle trained briefly on synthetic spectra with a full preprocessing chain."""
    from pace_edge.data import make_synthetic
    from pace_edge.model import preset
    from pace_edge.preprocess import Pipeline
    from pace_edge.train import Recipe
    from pace_edge.train.bundle_training import train_bundle

    data = make_synthetic(n_per_class=30, seed=1)
    out = tmp_path_factory.mktemp("bundle") / "model"
    train_bundle(
        data,
        preset("tiny", len(data.classes)),
        Recipe(epochs=3, batch_size=32, seed=0, augment=False, refit=False),
        Pipeline.from_spec("despike,baseline:asls,normalize:snv"),
        out=out,
    )
    return out


@pytest.fixture(scope="session")
def synthetic_export(synthetic_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """x86 export (OpenVINO IR + ONNX, FP32) of :func:`synthetic_bundle`."""
    from pace_edge.cli.main import main

    out = tmp_path_factory.mktemp("export") / "x86"
    assert main(["export", "--model", str(synthetic_bundle), "--target", "x86",
                 "--out", str(out)]) == 0
    return out
