"""TensorRT calibration cache: header, hex float encoding, byte-exact round trip, Q/DQ amax."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from pace_edge.errors import BundleError
from pace_edge.export.trt_calibration_cache import (
    CalibrationCache,
    decode_scale,
    encode_scale,
    header,
    read_cache,
    retarget,
    version_number,
    write_cache,
)

# Lines as TensorRT 7.2 wrote them for a Caffe MNIST network (public sample): unnamed tensors
# carry spaces, brackets and "*" in their names.
TRT_SAMPLE = (
    "TRT-7202-EntropyCalibration2\n"
    "data: 3c008912\n"
    "conv1: 3c60dd38\n"
    "(Unnamed Layer* 4) [Fully Connected]_output: 3d65992f\n"
    "prob: 3c083ffd\n"
)


@pytest.mark.parametrize(("version", "number"), [
    ("10.3.0", 100300), ("10.3.0.30", 100300), ((10, 13, 2), 101302), ("11.1.0", 110100),
    ("8.6.1", 8601), ("8.5.2", 8502), ("7.2.2", 7202),
])
def test_version_number(version, number) -> None:
    assert version_number(version) == number


def test_header() -> None:
    assert header("10.3.0") == "TRT-100300-EntropyCalibration2"
    assert header("8.6.1", "MinMaxCalibration") == "TRT-8601-MinMaxCalibration"
    with pytest.raises(ValueError):
        header("10.3.0", "Percentile")
    with pytest.raises(ValueError):
        version_number("10.100.0")


def test_scale_hex_is_big_endian_float32_bits() -> None:
    scale = 1 / 127
    assert encode_scale(scale) == struct.pack(">f", scale).hex() == "3c010204"
    assert encode_scale(1.0) == "3f800000"
    assert decode_scale("3c010204") == np.float32(1 / 127)
    assert decode_scale("3c008912") == struct.unpack(">f", bytes.fromhex("3c008912"))[0]
    assert decode_scale("6ce3ee") == struct.unpack(">f", bytes.fromhex("006ce3ee"))[0]
    for bad in ("", "xyz", "123456789", "-1"):
        with pytest.raises(ValueError):
            decode_scale(bad)


def test_write_is_byte_exact(tmp_path: Path) -> None:
    path = write_cache(tmp_path / "c.cache", {"spectrum": 1.0, "a: b": 127.0}, "10.3.0")
    assert path.read_bytes() == (
        b"TRT-100300-EntropyCalibration2\nspectrum: 3c010204\na: b: 3f800000\n"
    )


def test_round_trip(tmp_path: Path) -> None:
    amax = {"spectrum": 3.25, "/embed/Conv_output_0": 0.01, "logits": 1e3}
    path = write_cache(tmp_path / "c.cache", amax, "10.3.0")
    cache = read_cache(path)
    assert (cache.version, cache.algorithm) == (100300, "EntropyCalibration2")
    assert list(cache.scales) == list(amax)
    for name, value in amax.items():
        assert cache.scales[name] == np.float32(value / 127)
        assert cache.amax()[name] == pytest.approx(value, rel=1e-6)
    assert cache.to_text() == path.read_text()
    again = CalibrationCache.from_amax(cache.amax(), "10.3.0")
    assert again.to_text() == path.read_text()  # amax -> scale -> amax is bit-stable


def test_parses_tensorrt_written_cache_and_rewrites_it_identically() -> None:
    cache = CalibrationCache.parse(TRT_SAMPLE)
    assert cache.header == "TRT-7202-EntropyCalibration2"
    assert "(Unnamed Layer* 4) [Fully Connected]_output" in cache.scales
    assert cache.to_text() == TRT_SAMPLE


def test_retarget_changes_only_the_header() -> None:
    text = retarget(TRT_SAMPLE, "10.3.0")
    assert text.splitlines()[0] == "TRT-100300-EntropyCalibration2"
    assert text.splitlines()[1:] == TRT_SAMPLE.splitlines()[1:]


@pytest.mark.parametrize("text", [
    "", "TRT-abc-EntropyCalibration2\n", "calibration\nx: 3f800000\n",
    "TRT-100300-EntropyCalibration2\nx 3f800000\n",
    "TRT-100300-EntropyCalibration2\nx: zz\n",
])
def test_malformed_cache(text: str) -> None:
    with pytest.raises(BundleError):
        CalibrationCache.parse(text)


@pytest.mark.parametrize("amax", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_amax(amax: float) -> None:
    with pytest.raises(ValueError):
        CalibrationCache.from_amax({"x": amax})


def test_amax_from_qdq(tmp_path: Path) -> None:
    """Keys are the FP32 graph's names; the input takes the Unsqueeze output's range."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from _trt_helpers import conv_model, ort_qdq
    from onnx import numpy_helper

    from pace_edge.export.trt_calibration_cache import amax_from_qdq

    fp32 = conv_model(tmp_path / "m.onnx")
    x = np.random.default_rng(0).normal(size=(16, 32)).astype(np.float32)
    qdq = ort_qdq(fp32, tmp_path / "q.onnx", x)
    amax = amax_from_qdq(qdq, fp32)
    names = ["spectrum", "x3d", "conv1", "relu1", "conv2", "pooled", "logits"]
    assert list(amax) == names  # graph order; "logits" restored from the renamed output
    init = {t.name: numpy_helper.to_array(t) for t in onnx.load(qdq).graph.initializer}
    assert amax["conv1"] == pytest.approx(float(init["conv1_scale"]) * 127)
    assert amax["spectrum"] == amax["x3d"]
    assert amax["x3d"] >= np.abs(x).max() * 0.999  # minmax calibration covers the data
    weights = {t.name for t in onnx.load(fp32).graph.initializer}
    assert not weights & set(amax)
    assert amax_from_qdq(qdq, fp32, input_amax={"spectrum": 9.0})["spectrum"] == 9.0
    cache = CalibrationCache.from_amax(amax, "10.3.0")
    scale_of = {n: f"{n}_scale" for n in names} | {"spectrum": "x3d_scale"}
    for name in names:  # the cache's scale is the Q/DQ scale, bit for bit
        assert cache.scales[name] == np.float32(init[scale_of[name]])
