"""``pace-edge predict`` on ``.npy`` batches, pairs and ``--axis`` (README, "Using real data").

The shapes are read by fixed rules (``read_spectra``): rows of the model's length are a
batch, even two of them; ``(2, n)`` / ``(n, 2)`` of another length are x and intensity.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pace_edge.cli.main import main
from pace_edge.data.spectrum_file import read_spectra
from pace_edge.errors import DataError

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from runtime_exports import runtime_export

    return runtime_export(tmp_path_factory, "x86", "dynamic")


@pytest.fixture(scope="module")
def model_axis(export: Path) -> np.ndarray:
    return np.asarray(json.loads((export / "manifest.json").read_text())["input"]["axis"])


def predict(capsys: pytest.CaptureFixture[str], export: Path, *args: str) -> tuple[int, list]:
    code = main(["predict", "--model", str(export), "--json", *args])
    return code, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def on_axis(model_axis: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` raw spectra interpolated onto the model's axis."""
    from runtime_exports import RAW_AXIS, raw_spectra

    return np.stack([np.interp(model_axis, RAW_AXIS, s) for s in raw_spectra(n, seed=seed)])


def test_a_batch_is_one_prediction_per_row(export: Path, model_axis: np.ndarray,
                                           tmp_path: Path, capsys) -> None:
    spectra = on_axis(model_axis, 5, seed=1)
    np.save(tmp_path / "batch.npy", spectra)
    singles = []
    for i, row in enumerate(spectra):
        np.save(tmp_path / f"one{i}.npy", row)
        singles.append(tmp_path / f"one{i}.npy")
    code, batch = predict(capsys, export, str(tmp_path / "batch.npy"))
    assert code == 0 and [r["index"] for r in batch] == [0, 1, 2, 3, 4]
    code, one = predict(capsys, export, *map(str, singles))
    assert code == 0 and "index" not in one[0]
    for b, s in zip(batch, one, strict=True):
        assert b["class"] == s["class"]
        assert b["probability"] == pytest.approx(s["probability"], abs=1e-5)


def test_two_rows_of_the_model_length_are_two_spectra(export: Path, model_axis: np.ndarray,
                                                      tmp_path: Path, capsys) -> None:
    spectra = on_axis(model_axis, 2, seed=2)
    np.save(tmp_path / "two.npy", spectra)
    code, rows = predict(capsys, export, str(tmp_path / "two.npy"))
    assert code == 0 and len(rows) == 2  # not one spectrum with row 0 as its x values
    np.save(tmp_path / "second.npy", spectra[1])
    _, second = predict(capsys, export, str(tmp_path / "second.npy"))
    assert rows[1]["probabilities"] == pytest.approx(second[0]["probabilities"], abs=1e-5)


def test_x_and_intensity_pairs_are_one_spectrum(export: Path, model_axis: np.ndarray,
                                                tmp_path: Path, capsys) -> None:
    from runtime_exports import RAW_AXIS, raw_spectra

    raw = raw_spectra(1, seed=3)[0]
    np.save(tmp_path / "pairs.npy", np.stack([RAW_AXIS, raw]))  # (2, 700): not the model length
    np.save(tmp_path / "columns.npy", np.stack([RAW_AXIS, raw], axis=1))  # (700, 2)
    spectrum = on_axis(model_axis, 1, seed=3)[0]
    np.save(tmp_path / "on_axis.npy", np.stack([model_axis, spectrum]))  # row 0 is the axis
    code, rows = predict(capsys, export, *(str(tmp_path / f) for f in
                                           ("pairs.npy", "columns.npy", "on_axis.npy")))
    assert code == 0 and len(rows) == 3 and all("index" not in r for r in rows)
    assert rows[0]["probabilities"] == pytest.approx(rows[1]["probabilities"], abs=1e-6)


def test_axis_option_reads_intensities_on_another_axis(export: Path, tmp_path: Path,
                                                       capsys) -> None:
    from runtime_exports import RAW_AXIS, raw_spectra

    raw = raw_spectra(3, seed=4)
    np.save(tmp_path / "raw.npy", raw)
    np.save(tmp_path / "axis.npy", RAW_AXIS)
    np.save(tmp_path / "pairs.npy", np.stack([RAW_AXIS, raw[2]]))
    code, rows = predict(capsys, export, "--axis", str(tmp_path / "axis.npy"),
                         str(tmp_path / "raw.npy"), str(tmp_path / "pairs.npy"))
    assert code == 0 and len(rows) == 4
    assert rows[2]["probabilities"] == pytest.approx(rows[3]["probabilities"], abs=1e-6)


@pytest.mark.parametrize("shape", [(3, 7), (2, 3, 4), (11,)])
def test_other_shapes_are_refused_with_the_rules(export: Path, tmp_path: Path, capsys,
                                                 shape: tuple[int, ...]) -> None:
    np.save(tmp_path / "odd.npy", np.ones(shape))
    assert main(["predict", "--model", str(export), str(tmp_path / "odd.npy")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pace-edge predict: error: ")
    assert "odd.npy" in lines[0] and "expect" in lines[0]


def test_read_spectra_rules(tmp_path: Path) -> None:
    axis = np.linspace(400.0, 1800.0, 6)
    np.save(tmp_path / "batch.npy", np.arange(12.0).reshape(2, 6))
    assert read_spectra(tmp_path / "batch.npy", 6, axis)[0] is None
    np.save(tmp_path / "pair.npy", np.stack([axis, np.ones(6)]))
    x, y = read_spectra(tmp_path / "pair.npy", 6, axis)
    assert np.array_equal(x, axis) and y.shape == (1, 6)
    np.save(tmp_path / "nan.npy", np.array([[1.0, 2, 3, 4, 5, 6], [1, 2, np.nan, 4, 5, 6]]))
    with pytest.raises(DataError, match="spectrum 1, point 2"):
        read_spectra(tmp_path / "nan.npy", 6, axis)
