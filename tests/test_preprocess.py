"""Preprocessing steps and pipelines: numbers, serialisation, errors, anchoring."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pybaselines
import pytest
from scipy.signal import savgol_filter

from pace_edge.errors import DataError, PaceEdgeError
from pace_edge.preprocess import (
    NORMALIZE_METHODS,
    STEPS,
    SUPPORTED_BASELINES,
    Baseline,
    Crop,
    Despike,
    Normalize,
    Pipeline,
    Resample,
    Savgol,
    step_from_dict,
)

AXIS = np.linspace(300.0, 1900.0, 401)  # 4 cm⁻¹ steps


def lorentz(axis: np.ndarray, center: float, hwhm: float, height: float) -> np.ndarray:
    return height / (1.0 + ((axis - center) / hwhm) ** 2)


def peaks(axis: np.ndarray = AXIS) -> np.ndarray:
    return lorentz(axis, 600, 15, 1.0) + lorentz(axis, 1000, 25, 0.6) + lorentz(axis, 1450, 20, 0.8)


def batch(n: int = 3, seed: int = 0, axis: np.ndarray = AXIS) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return peaks(axis) * rng.uniform(0.5, 2.0, (n, 1)) + rng.normal(0, 0.005, (n, axis.size))


# --- steps ------------------------------------------------------------------------------


def test_crop_bounds_inclusive() -> None:
    x = batch()
    y, ax = Crop(400, 1000).apply(x, AXIS)
    keep = (AXIS >= 400) & (AXIS <= 1000)
    assert ax[0] == 400 and ax[-1] == 1000
    np.testing.assert_array_equal(ax, AXIS[keep])
    np.testing.assert_array_equal(y, x[:, keep])


def test_crop_too_few_points_names_ranges() -> None:
    with pytest.raises(DataError, match=r"2000\.\.2100.*300\.\.1900"):
        Crop(2000, 2100).apply(batch(), AXIS)
    with pytest.raises(PaceEdgeError, match="below hi"):
        Crop(5, 1)


def test_resample_exact_at_nodes_and_linear_between() -> None:
    x = batch()
    nodes, _ = Resample(axis=AXIS[10:20].tolist()).apply(x, AXIS)
    np.testing.assert_array_equal(nodes, x[:, 10:20])
    mid = (AXIS[:-1] + AXIS[1:]) / 2
    between, ax = Resample(axis=mid.tolist()).apply(x, AXIS)
    np.testing.assert_array_equal(ax, mid)
    np.testing.assert_allclose(between, (x[:, :-1] + x[:, 1:]) / 2, rtol=1e-12, atol=1e-15)
    grid, ax = Resample(500, 1500, 301).apply(x, AXIS)
    np.testing.assert_array_equal(ax, np.linspace(500, 1500, 301))
    ref = np.stack([np.interp(ax, AXIS, row) for row in x])
    np.testing.assert_allclose(grid, ref, rtol=1e-12, atol=1e-15)


def test_resample_range_tolerance() -> None:
    x = batch()
    # overhang of half a data step (2 cm⁻¹) is held at the edge value ...
    y, _ = Resample(axis=[298.0, 1000.0, 1902.0]).apply(x, AXIS)
    np.testing.assert_array_equal(y[:, [0, 2]], x[:, [0, -1]])
    # ... more is an error naming both ranges
    with pytest.raises(DataError, match=r"290\.\.1000.*300\.\.1900"):
        Resample(axis=[290.0, 1000.0]).apply(x, AXIS)
    with pytest.raises(DataError, match="beyond"):
        Resample(1000, 1950, 20).apply(x, AXIS)


def test_resample_params_validation() -> None:
    with pytest.raises(PaceEdgeError, match="either axis"):
        Resample(1, 2, 3, axis=(1.0, 2.0))
    with pytest.raises(PaceEdgeError, match="needs either"):
        Resample(1, 2)
    with pytest.raises(PaceEdgeError, match="strictly increasing"):
        Resample(axis=[1.0, 1.0, 2.0])
    assert Resample(axis=[1, 2]).params() == {"axis": [1.0, 2.0]}
    assert Resample(0, 1, 5).params() == {"start": 0.0, "stop": 1.0, "num": 5}


def test_savgol_equals_scipy() -> None:
    x = batch()
    for window, order, deriv in [(11, 3, 0), (7, 2, 1)]:
        y, ax = Savgol(window, order, deriv).apply(x, AXIS)
        ref = savgol_filter(x, window, order, deriv=deriv, axis=1)
        half = window // 2
        np.testing.assert_array_equal(y[:, half:-half], ref[:, half:-half])
        np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(Savgol(window, order, deriv).apply(x[1:2], AXIS)[0], y[1:2])
        np.testing.assert_array_equal(ax, AXIS)


@pytest.mark.parametrize(
    ("args", "message"),
    [((10, 3), "odd"), ((5, 5), "polyorder"), ((5, 2, 3), "deriv"), ((5.5, 2), "integer")],
)
def test_savgol_bad_params(args: tuple, message: str) -> None:
    with pytest.raises(PaceEdgeError, match=message):
        Savgol(*args)


def test_savgol_window_longer_than_spectrum() -> None:
    with pytest.raises(DataError, match="longer"):
        Savgol(11, 3).apply(np.ones((1, 5)), np.arange(5.0))


@pytest.mark.parametrize(
    ("method", "options", "gaussian"),
    [
        ("asls", {"lam": 1e5, "p": 0.001}, True),
        ("airpls", {"lam": 1e5}, True),
        ("snip", {"max_half_window": 30}, True),
        ("arpls", {"lam": 1e5}, False),
        ("modpoly", {"poly_order": 3}, False),
    ],
)
def test_baseline_removes_known_baseline(method: str, options: dict, gaussian: bool) -> None:
    clean = peaks()  # Lorentzians 0.6..1.0 high
    t = (AXIS - AXIS[0]) / (AXIS[-1] - AXIS[0])
    background = 0.3 + 0.5 * t + 0.3 * t**2 + gaussian * 0.3 * np.exp(-(((AXIS - 1200) / 600) ** 2))
    y, _ = Baseline(method, options).apply((clean + background)[None], AXIS)
    assert np.abs(y[0] - clean).max() < 0.05
    assert np.abs(y[0] - clean).mean() < 0.02


def test_baseline_matches_pybaselines_directly() -> None:
    x = batch(2)
    y, _ = Baseline("snip", {"max_half_window": 40}).apply(x, AXIS)
    fitter = pybaselines.Baseline(x_data=AXIS)
    for row, out in zip(x, y, strict=True):
        np.testing.assert_array_equal(out, row - fitter.snip(row, max_half_window=40)[0])


def test_baseline_errors() -> None:
    with pytest.raises(PaceEdgeError, match="supported: asls, .*arpls"):
        Baseline("nope")
    with pytest.raises(PaceEdgeError, match="unknown option.*lamda.*allowed: lam"):
        Baseline("asls", {"lamda": 1e6})
    assert all(hasattr(pybaselines.Baseline, m) for m in SUPPORTED_BASELINES)


@pytest.mark.parametrize("method", NORMALIZE_METHODS)
def test_normalize_numbers(method: str) -> None:
    x = batch() + 0.1
    y, _ = Normalize(method).apply(x, AXIS)
    if method == "snv":
        np.testing.assert_allclose(y.mean(axis=1), 0, atol=1e-12)
        np.testing.assert_allclose(y.std(axis=1), 1, rtol=1e-12)
    elif method == "vector":
        np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1, rtol=1e-12)
    elif method == "minmax":
        np.testing.assert_allclose(y.min(axis=1), 0, atol=1e-15)
        np.testing.assert_allclose(y.max(axis=1), 1, rtol=1e-15)
    elif method == "max":
        np.testing.assert_allclose(np.abs(y).max(axis=1), 1, rtol=1e-15)
    else:
        area = np.sum((np.abs(y[:, 1:]) + np.abs(y[:, :-1])) / 2 * np.diff(AXIS), axis=1)
        np.testing.assert_allclose(area, 1, rtol=1e-12)


def test_snv_is_bit_identical_to_numpy_mean_and_std() -> None:
    """Bundles record SNV by name: its numbers must not drift between releases."""
    rng = np.random.default_rng(4)
    for n, length, scale in ((1, 900, 0.04), (5, 401, 1.0), (64, 1024, 3e4)):
        x = rng.normal(size=(n, length)) * scale + rng.uniform(0, 5 * scale)
        y, _ = Normalize("snv").apply(x, np.arange(length, dtype=np.float64))
        expected = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
        np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("method", NORMALIZE_METHODS)
@pytest.mark.parametrize("level", [0.0, 0.1, -3.7])
def test_normalize_flat_spectrum_gives_zeros(method: str, level: float) -> None:
    x = np.vstack([np.full(AXIS.size, level), peaks()])
    y, _ = Normalize(method).apply(x, AXIS)
    assert np.isfinite(y).all()
    if level == 0.0 or method in ("minmax", "snv"):
        np.testing.assert_array_equal(y[0], 0.0)
    assert np.abs(y[1]).max() > 0


def test_despike_removes_injected_spikes_only() -> None:
    clean = batch(2, seed=3)
    spiky = clean.copy()
    spiky[0, 150] += 5.0  # one-pixel cosmic ray
    spiky[0, 400] -= 3.0  # dead last pixel
    spiky[1, 300:302] += [3.0, 4.0]  # two-pixel cosmic ray
    spiky[1, 0] += 2.0
    y, _ = Despike().apply(spiky, AXIS)
    assert np.abs(y - clean).max() < 0.02
    changed = {(int(i), int(j)) for i, j in np.argwhere(y != spiky)}
    assert changed == {(0, 150), (0, 400), (1, 300), (1, 301), (1, 0)}
    window = np.r_[147:150, 151:154]
    assert y[0, 150] == spiky[0, window].mean()


def test_despike_leaves_clean_spectra_bit_identical() -> None:
    x = batch(4, seed=5)  # sharp (HWHM ~4 px), high-SNR bands: steep but not spikes
    y, _ = Despike().apply(x, AXIS)
    assert y is not x
    np.testing.assert_array_equal(y, x)
    flat, _ = Despike().apply(np.zeros((1, 50)), np.arange(50.0))
    np.testing.assert_array_equal(flat, 0.0)


# --- pipeline ---------------------------------------------------------------------------

SPEC = "crop:400:1800,despike,savgol:11:3,baseline:asls:lam=1e6,normalize:snv"


def test_pipeline_1d_and_2d_and_no_mutation() -> None:
    pipe = Pipeline.from_spec(SPEC)
    x = batch()
    before, axis_before = x.copy(), AXIS.copy()
    y2, ax2 = pipe.apply(x, AXIS)
    y1, ax1 = pipe.apply(x[1], AXIS)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(AXIS, axis_before)
    assert y2.shape == (3, ax2.size) and y1.shape == (ax1.size,)
    np.testing.assert_array_equal(y1, y2[1])
    np.testing.assert_array_equal(ax2, pipe.output_axis(AXIS))
    assert ax2[0] >= 400 and ax2[-1] <= 1800


def test_empty_pipeline_returns_copies() -> None:
    x = batch(1)
    y, ax = Pipeline().apply(x, AXIS)
    assert y is not x and ax is not AXIS
    np.testing.assert_array_equal(y, x)


def test_non_finite_input_names_row() -> None:
    x = batch(4)
    x[2, 7] = np.nan
    with pytest.raises(DataError, match=r"row 2: non-finite intensity nan at x=328"):
        Pipeline.from_spec("normalize").apply(x, AXIS)
    with pytest.raises(DataError, match="spectrum: non-finite"):
        Pipeline().apply(x[2], AXIS)


def test_axis_validation() -> None:
    with pytest.raises(DataError, match="axis has 400 points but spectra have 401"):
        Pipeline().apply(batch(), AXIS[:-1])
    with pytest.raises(DataError, match="strictly increasing"):
        Pipeline().apply(batch(), AXIS[::-1])


def test_to_list_from_list_round_trip_through_json() -> None:
    pipe = Pipeline(
        [
            Crop(400, 1800),
            Resample(axis=np.linspace(410, 1790, 7).tolist()),
            Resample(500, 1500, 11),
            Despike(5.0, 2),
            Savgol(11, 3, 1),
            Baseline("imodpoly", {"poly_order": 3, "num_std": 0.7}),
            Normalize("vector"),
        ]
    )
    items = json.loads(json.dumps(pipe.to_list()))
    again = Pipeline.from_list(items)
    assert again == pipe and list(again) == list(pipe) and len(again) == 7
    assert items[0] == {"name": "crop", "lo": 400.0, "hi": 1800.0}
    assert step_from_dict(items[4]) == Savgol(11, 3, 1)
    assert set(STEPS) == {"crop", "resample", "savgol", "baseline", "normalize", "despike"}
    assert "Resample(axis=<7 points 410..1790>)" in repr(pipe)


def test_from_spec_parsing() -> None:
    pipe = Pipeline.from_spec(" crop:400:1800 , savgol:11:3 ,baseline:asls,normalize:snv")
    assert list(pipe) == [Crop(400, 1800), Savgol(11, 3), Baseline("asls"), Normalize("snv")]
    keyed = Pipeline.from_spec(
        "baseline:method=arpls:lam=1e6:max_iter=20,savgol:window=7:polyorder=2"
    )
    assert list(keyed) == [
        Baseline("arpls", {"lam": 1e6, "max_iter": 20}),
        Savgol(7, 2),
    ]
    assert Pipeline.from_spec("baseline:lam=1e5") == Pipeline([Baseline("asls", {"lam": 1e5})])
    assert list(Pipeline.from_spec("resample:500:1500:11,despike:5")) == [
        Resample(500, 1500, 11),
        Despike(5.0),
    ]
    assert len(Pipeline.from_spec("")) == 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("crop:400", r"'crop': missing parameter\(s\) hi; allowed: lo, hi"),
        ("crop:400:1800:5", "at most 2 positional"),
        ("crop:lo=1:hi=2:foo=3", r"'crop': unknown parameter\(s\) foo; allowed: lo, hi"),
        ("savgol:window=11:3", "positional value '3' after key=value"),
        ("normalize:l3", "method must be one of minmax, vector, snv, area, max"),
        ("crop:a:b", "lo must be a number"),
        ("crop:1:2,,normalize", "empty step"),
        ("smooth:5", "unknown preprocessing step 'smooth'; known steps: crop, resample"),
        ("baseline:asls:1e6", "at most 1 positional"),
        ("baseline:asls:lamda=1e6", "unknown option"),
        ("baseline:method=asls:method=arpls", "repeated key"),
    ],
)
def test_from_spec_errors(spec: str, message: str) -> None:
    with pytest.raises(PaceEdgeError, match=message):
        Pipeline.from_spec(spec)


def test_from_list_errors() -> None:
    with pytest.raises(PaceEdgeError, match="unknown preprocessing step 'blur'"):
        Pipeline.from_list([{"name": "blur"}])
    with pytest.raises(PaceEdgeError, match="'name'"):
        Pipeline.from_list([{"window": 3}])
    with pytest.raises(PaceEdgeError, match="list of steps"):
        Pipeline.from_list({"name": "crop"})  # type: ignore[arg-type]


def test_anchored_is_exact_identity_on_its_own_axis() -> None:
    pipe = Pipeline.from_spec(SPEC)
    anchored = pipe.anchored(AXIS)
    assert [s.name for s in anchored] == [
        "resample",
        "crop",
        "despike",
        "savgol",
        "baseline",
        "normalize",
    ]
    x = batch()
    y, ax = pipe.apply(x, AXIS)
    ya, axa = anchored.apply(x, AXIS)
    np.testing.assert_array_equal(ya, y)
    np.testing.assert_array_equal(axa, ax)
    assert anchored.anchored(AXIS) is anchored  # already has a resample step
    assert Pipeline.from_list(json.loads(json.dumps(anchored.to_list()))) == anchored


def test_anchored_maps_other_axes_onto_the_grid() -> None:
    pipe = Pipeline.from_spec("crop:400:1800,normalize:max")
    grid_pipe = pipe.anchored(AXIS)
    grid = pipe.output_axis(AXIS)
    ref, _ = grid_pipe.apply(peaks()[None], AXIS)
    for other in (AXIS + 1.3, np.linspace(350.0, 1850.0, 3001)):  # shifted; denser
        y, ax = grid_pipe.apply(peaks(other)[None], other)
        np.testing.assert_array_equal(ax, grid)
        assert np.abs(y - ref).max() < 0.02
    with pytest.raises(DataError, match="beyond"):  # a spectrometer that misses the grid
        short = np.linspace(500.0, 1800.0, 300)
        grid_pipe.apply(peaks(short), short)


@pytest.mark.parametrize("other", [False, True], ids=["own axis", "other axis"])
def test_bound_pipeline_equals_applying_each_step(other: bool) -> None:
    """Binding does each step's axis work once; the results are those of step.apply in turn."""
    pipe = Pipeline.from_spec(SPEC).anchored(AXIS)
    axis = np.linspace(290.0, 1910.0, 777) if other else AXIS
    x = batch(4, axis=axis)
    expected, expected_axis = x, axis
    for step in pipe:
        expected, expected_axis = step.apply(expected, expected_axis)
    bound = pipe.bind(axis)
    np.testing.assert_array_equal(bound(x), expected)
    np.testing.assert_array_equal(bound(x[2]), expected[2])
    np.testing.assert_array_equal(bound.axis, expected_axis)
    assert not bound.axis.flags.writeable
    np.testing.assert_array_equal(bound(x), expected)  # reusable; inputs untouched
    np.testing.assert_array_equal(x, batch(4, axis=axis))


def test_bound_pipeline_rejects_bad_data_and_axes() -> None:
    bound = Pipeline.from_spec("crop:400:1800,normalize:snv").bind(AXIS)
    with pytest.raises(DataError, match="axis has 401 points but spectra have 400"):
        bound(batch()[:, :-1])
    bad = batch()
    bad[1, 7] = np.inf
    with pytest.raises(DataError, match="row 1: non-finite"):
        bound(bad)
    with pytest.raises(DataError, match="no spectra"):
        bound(np.zeros((0, AXIS.size)))
    with pytest.raises(DataError, match="not strictly increasing"):
        Pipeline.from_spec("normalize:snv").bind(AXIS[::-1])
    with pytest.raises(DataError, match="keeps 0 point"):
        Pipeline.from_spec("crop:2000:2100").bind(AXIS)


def test_no_torch_import() -> None:
    code = (
        "import sys, pace_edge.preprocess as p; "
        "p.Pipeline.from_spec('baseline:asls').apply([[0.0, 1.0, 0.5]], [1.0, 2.0, 3.0]); "
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
