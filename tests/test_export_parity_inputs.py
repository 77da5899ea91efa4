"""Which spectra an export checks parity on: real ones when given, else scaled synthetic ones."""

from __future__ import annotations

import numpy as np

from pace_edge.bundle import Bundle
from pace_edge.export import ExportOptions
from pace_edge.export.parity import inputs_for
from pace_edge.model import preset
from pace_edge.preprocess import Pipeline


def bundle_with(training: dict) -> Bundle:
    config = preset("tiny", 3)
    return Bundle(config, {}, ["a", "b", "c"], np.linspace(400, 1800, 300), Pipeline([]),
                  training)


def test_real_spectra_are_used_as_given() -> None:
    real = np.random.default_rng(0).normal(0.1, 0.04, (7, 300))
    x = inputs_for(bundle_with({}), ExportOptions(parity_data=real))
    assert x.dtype == np.float32 and x.shape == (7, 300)
    np.testing.assert_allclose(x, real, rtol=1e-6)


def test_synthetic_spectra_follow_the_recorded_training_scale() -> None:
    stats = {"data": {"input_stats": {"mean": 0.1, "std": 0.04}}}
    x = inputs_for(bundle_with(stats), ExportOptions(parity_samples=64))
    assert x.shape == (64, 300)
    assert abs(float(x.mean()) - 0.1) < 0.01 and abs(float(x.std()) - 0.04) < 0.01
    plain = inputs_for(bundle_with({}), ExportOptions(parity_samples=64))
    assert abs(float(plain.std()) - 1.0) < 0.05  # SNV-like when nothing was recorded
