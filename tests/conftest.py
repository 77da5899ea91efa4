"""Shared fixtures: the real COV data set beside the checkout, small trained bundles."""

from __future__ import annotations

from pathlib import Path

import pytest

COV = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "cov"


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
        pytest.skip(f"real COVID-19 Raman data not found at {COV} (../shared/datasets)")
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
