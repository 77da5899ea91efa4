"""TensorRT reads the "unknown" detector's second output by name.

TensorRT 10's ``execute_async_v3`` needs an address for every I/O tensor of an engine, so a
plan built from an export with the ``ood_features`` output must have it bound even where it is
not read. Without a GPU, the runner's I/O plan (:func:`engine_io`) is checked against engine
descriptions answering TensorRT 10's documented ``ICudaEngine`` calls (``num_io_tensors``,
``get_tensor_name``, ``get_tensor_mode``, ``get_tensor_shape``, ``get_tensor_dtype``,
``get_tensor_profile_shape``); the ``gpu`` test runs a plan of a model with a detector and
compares its verdicts with ONNX Runtime's.
"""

from __future__ import annotations

import enum
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pace_edge.errors import BundleError
from pace_edge.preprocess import Pipeline
from pace_edge.runtimes.base import ModelSpec
from pace_edge.runtimes.tensorrt_runner import engine_io
from pace_edge.trust import Trust

L, CLASSES, DIM = 64, 3, 16


class _Mode(enum.Enum):
    INPUT = 0
    OUTPUT = 1


# the two names of the tensorrt module the I/O plan uses
TRT = SimpleNamespace(TensorIOMode=_Mode, nptype=lambda dtype: dtype)


class EngineDescription:
    """Tensors of an engine as TensorRT 10's ICudaEngine reports them (no execution)."""

    def __init__(self, tensors: list[tuple[str, _Mode, tuple[int, ...]]],
                 profile: tuple[int, int, int] = (1, 8, 64)) -> None:
        self.tensors = tensors
        self.profile = profile

    @property
    def num_io_tensors(self) -> int:
        return len(self.tensors)

    def get_tensor_name(self, i: int) -> str:
        return self.tensors[i][0]

    def _find(self, name: str) -> tuple[str, _Mode, tuple[int, ...]]:
        return next(t for t in self.tensors if t[0] == name)

    def get_tensor_mode(self, name: str) -> _Mode:
        return self._find(name)[1]

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return self._find(name)[2]

    def get_tensor_dtype(self, name: str) -> type:
        return np.float32

    def get_tensor_profile_shape(self, name: str, profile: int) -> list[tuple[int, int]]:
        assert self._find(name)[1] is _Mode.INPUT and profile == 0
        return [(b, L) for b in self.profile]


def _spec(detector: bool) -> ModelSpec:
    trust = Trust(centers=np.zeros((CLASSES, DIM), np.float32), threshold=1.0) if detector \
        else Trust()
    return ModelSpec(classes=tuple("abc"), axis=np.arange(float(L)), pipeline=Pipeline([]),
                     trust=trust, features_name="ood_features" if detector else None)


def _engine(features: tuple[int, ...] | None = (-1, DIM), batch: int = -1,
            order: str = "in-out-feat") -> EngineDescription:
    tensors = [("spectrum", _Mode.INPUT, (batch, L)), ("logits", _Mode.OUTPUT, (batch, CLASSES))]
    if features is not None:
        tensors.append(("ood_features", _Mode.OUTPUT, features))
    if order == "feat-first":
        tensors.reverse()
    return EngineDescription(tensors)


def test_every_output_is_bound_and_the_features_are_read_by_name() -> None:
    io = engine_io(_engine(order="feat-first"), TRT, _spec(detector=True), Path("model.plan"))
    assert io.input.name == "spectrum" and io.input.row_shape == (L,)
    assert [o.name for o in io.outputs] == ["ood_features", "logits"]  # the engine's order
    assert io.output("logits").row_shape == (CLASSES,)
    assert io.output("ood_features").row_size == DIM
    assert io.dynamic and (io.min_batch, io.max_batch) == (1, 64)


def test_an_unread_second_output_still_gets_an_address() -> None:
    """A manifest without a detector (or a runner that only wants logits) on an engine with
    the features output: the output is still in the plan, so it is bound before enqueueing."""
    io = engine_io(_engine(), TRT, _spec(detector=False), None)
    assert {o.name for o in io.outputs} == {"logits", "ood_features"}


def test_fixed_batch_engine() -> None:
    io = engine_io(_engine(features=(4, DIM), batch=4), TRT, _spec(detector=True), None)
    assert not io.dynamic and io.min_batch == io.max_batch == 4


@pytest.mark.parametrize(("engine", "message"), [
    (_engine(features=None), "no output 'ood_features'"),
    (_engine(features=(-1, DIM + 1)),
     r"'ood_features' has rows of shape \(17,\), expected \(16,\)"),
    (_engine(features=(-1, -1)), "only the batch dimension may be dynamic"),
    (EngineDescription([("x", _Mode.INPUT, (-1, L)), ("logits", _Mode.OUTPUT, (-1, 3))]),
     "is not one input 'spectrum'"),
])
def test_engines_the_manifest_does_not_describe_are_refused(engine, message) -> None:
    with pytest.raises(BundleError, match=message):
        engine_io(engine, TRT, _spec(detector=True), Path("model.plan"))


@pytest.mark.gpu
def test_plan_of_a_model_with_a_detector_judges_as_onnxruntime(tmp_path: Path) -> None:
    """On a GPU: a default-recipe bundle (with its detector) exported for jetson, its plan
    built; TensorRT's verdicts and scores match ONNX Runtime's on the same ONNX file."""
    from _trt_helpers import GPU_REASON, tensorrt_gpu_available

    if not tensorrt_gpu_available():
        pytest.skip(GPU_REASON)
    from pace_edge.cli.main import main
    from pace_edge.data import load_dataset, make_synthetic, write_npy_folder
    from pace_edge.model import preset
    from pace_edge.runtimes import load_runner
    from pace_edge.train import Recipe
    from pace_edge.train.bundle_training import train_bundle

    folder = write_npy_folder(tmp_path / "data", make_synthetic(n_per_class=60, seed=3),
                              make_synthetic(n_per_class=20, seed=4))
    train_bundle(load_dataset(folder), preset("tiny", 3), Recipe(epochs=5, seed=0),
                 Pipeline.from_spec("normalize:snv"), out=tmp_path / "bundle")
    export = tmp_path / "jetson"
    assert main(["export", "--model", str(tmp_path / "bundle"), "--target", "jetson",
                 "--precision", "fp32", "--out", str(export)]) == 0
    assert main(["build-engine", "--export", str(export)]) == 0
    test = load_dataset(folder, split="test")
    u = np.linspace(0.0, 1.0, test.x.shape[1])
    background = 10 * np.ptp(test.x, axis=1, keepdims=True) * np.exp(-((u - 0.7) / 0.5) ** 2)
    x = np.concatenate([test.x, test.x + background])  # known, and heavy fluorescence
    with load_runner(export, backend="tensorrt") as trt_runner:
        got = trt_runner.judge(x, test.axis)
    with load_runner(export, backend="onnxruntime") as ort_runner:
        want = ort_runner.judge(x, test.axis)
    assert (got.accepted == want.accepted).mean() >= 0.99
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-3, atol=1e-3)
