"""The export's record of whether pace-stream (C++) runs a bundle's preprocessing.

The native binary itself is checked against these verdicts in ``tests/test_native.py``
(``test_native_support_matches_the_binary``); here the record alone, without a C++ build.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pace_edge.preprocess import STEPS, Pipeline
from pace_edge.preprocess.baseline import SUPPORTED_BASELINES, method_options
from pace_edge.preprocess.native_support import (
    NATIVE_BASELINES,
    NATIVE_STEPS,
    RUNTIME_KEY,
    native_runtime_entry,
    native_support,
    unsupported_step,
)


def test_every_python_step_has_a_native_twin() -> None:
    """A step added to the Python side must be added to the native runtime (or here)."""
    assert set(NATIVE_STEPS) == set(STEPS)
    assert set(NATIVE_BASELINES) <= set(SUPPORTED_BASELINES)


@pytest.mark.parametrize("method", sorted(NATIVE_BASELINES))
def test_native_baselines_take_every_option_but_initial_weights(method: str) -> None:
    assert set(NATIVE_BASELINES[method]) | {"weights"} == set(method_options(method))


@pytest.mark.parametrize("method", SUPPORTED_BASELINES)
def test_baseline_methods(method: str) -> None:
    steps = Pipeline.from_spec(f"despike,baseline:{method},normalize:snv").to_list()
    record = native_support(steps)
    if method in NATIVE_BASELINES:
        assert record == {"preprocessing": True}
    else:
        assert record["preprocessing"] is False
        assert record["step"] == f"baseline:{method}"
        assert "asls, iasls, arpls, airpls, iarpls, psalsa and drpls only" in record["reason"]
        assert record["reason"].endswith("run this export with pace-edge stream (Python)")


def test_options_the_native_runtime_lacks() -> None:
    assert native_support(Pipeline.from_spec("baseline:asls:lam=1e5:p=0.02:tol=1e-4").to_list()) \
        == {"preprocessing": True}
    weighted = [{"name": "baseline", "method": "arpls", "options": {"weights": [1.0, 1.0]}}]
    assert unsupported_step(weighted) == ("baseline:arpls",
                                          "pace-stream does not take initial baseline weights")
    unknown = [{"name": "baseline", "method": "asls", "options": {"x_data": [1, 2]}}]
    assert unsupported_step(unknown) == (
        "baseline:asls", "pace-stream does not take the baseline option(s) x_data")
    assert unsupported_step([{"name": "wavelet"}]) == ("wavelet",
                                                       "pace-stream has no 'wavelet' step")
    assert native_support([]) == {"preprocessing": True}


def test_the_first_unsupported_step_is_named() -> None:
    steps = Pipeline.from_spec("baseline:snip,savgol:11:3,baseline:airpls").to_list()
    assert native_runtime_entry(steps)[RUNTIME_KEY]["step"] == "baseline:snip"


def test_an_export_records_it(synthetic_export: Path) -> None:
    manifest = json.loads((synthetic_export / "manifest.json").read_text())
    assert manifest["runtime"][RUNTIME_KEY] == {"preprocessing": True}
    # the settings of the runtimes the export targets are still there beside it
    assert "openvino" in manifest["runtime"]
