"""INT8 building blocks: calibration selection, layer map, QDQ graph rules, sensitivity search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import numpy_helper  # noqa: E402

from pace_edge.bundle import Bundle  # noqa: E402
from pace_edge.data import SpectralDataset, make_synthetic  # noqa: E402
from pace_edge.errors import DataError, PaceEdgeError  # noqa: E402
from pace_edge.export.onnx_graph import export_onnx  # noqa: E402
from pace_edge.export.quantize import check_qdq, quantize_qdq, select_calibration  # noqa: E402
from pace_edge.export.quantize.calibration import model_inputs  # noqa: E402
from pace_edge.export.quantize.layers import pace_layers, resolve  # noqa: E402
from pace_edge.export.quantize.sensitivity import (  # noqa: E402
    LayerSensitivity,
    choose_float,
    logit_error,
)
from pace_edge.model import PACE, preset  # noqa: E402
from pace_edge.preprocess import Pipeline  # noqa: E402


@pytest.fixture(scope="module")
def data() -> SpectralDataset:
    """Unbalanced SYNTHETIC training data (30/60/90 spectra), source marked as a train split."""
    full = make_synthetic(n_per_class=90, seed=3)
    keep = np.concatenate([np.flatnonzero(full.y == c)[: 30 * (c + 1)] for c in range(3)])
    sub = full.subset(np.sort(keep))
    sub.source = "synthetic (train)"
    return sub


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, data: SpectralDataset) -> Bundle:
    """An untrained tiny bundle on the synthetic axis with an anchored SNV pipeline."""
    torch.manual_seed(0)
    model = PACE(preset("tiny", 3))
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    pipeline = Pipeline.from_spec("normalize:snv").anchored(data.axis)
    directory = tmp_path_factory.mktemp("bundle")
    Bundle(model.config, weights, data.classes, data.axis, pipeline, {}).save(directory)
    return Bundle.load(directory)


@pytest.fixture(scope="module")
def fp32_onnx(tmp_path_factory: pytest.TempPathFactory, bundle: Bundle) -> Path:
    return export_onnx(bundle, tmp_path_factory.mktemp("onnx") / "fp32.onnx")


# --- calibration selection ---------------------------------------------------------------


def test_selection_is_stratified_spread_and_disjoint(bundle: Bundle, data: SpectralDataset):
    cal = select_calibration(bundle, data, size=60, seed=0)
    assert cal.inputs.shape == (60, bundle.input_length) and cal.inputs.dtype == np.float32
    assert cal.summary["class_counts"] == {c: 10 * (i + 1) for i, c in enumerate(data.classes)}
    assert cal.summary["size"] == 60 and cal.summary["split"] == "train"
    assert sum(cal.summary["holdout_class_counts"].values()) == cal.summary["holdout"] == 36
    assert all(v >= 1 for v in cal.summary["holdout_class_counts"].values())
    # after the bundle's preprocessing (SNV: zero mean, unit variance per spectrum)
    np.testing.assert_allclose(cal.inputs.mean(1), 0, atol=1e-4)
    np.testing.assert_allclose(cal.inputs.std(1), 1, atol=1e-3)
    # spread over the intensity range, not its middle
    lo, hi = cal.summary["intensity_range"]["available"]
    s_lo, s_hi = cal.summary["intensity_range"]["selected"]
    assert s_lo - lo < 0.15 * (hi - lo) and hi - s_hi < 0.15 * (hi - lo)
    # calibration and holdout are different spectra
    rows = {r.tobytes() for r in cal.inputs}
    assert not rows & {r.tobytes() for r in cal.holdout}
    # deterministic
    again = select_calibration(bundle, data, size=60, seed=0)
    np.testing.assert_array_equal(again.inputs, cal.inputs)


def test_selection_size_all_and_caps(bundle: Bundle, data: SpectralDataset):
    everything = select_calibration(bundle, data, size=None)
    assert everything.summary["size"] + everything.summary["holdout"] == len(data)
    capped = select_calibration(bundle, data, size=10_000)
    assert capped.summary["size"] == everything.summary["size"]


def test_selection_refuses_test_split(bundle: Bundle, data: SpectralDataset):
    test = data.subset(np.arange(10))
    test.source = "somewhere (test)"
    with pytest.raises(PaceEdgeError, match="training split"):
        select_calibration(bundle, test)


def test_calibration_on_another_axis_is_resampled(bundle: Bundle):
    axis = np.linspace(380.0, 1820.0, 500)  # covers the model axis, other spacing
    other = make_synthetic(n_per_class=8, axis=axis, seed=4)
    cal = select_calibration(bundle, other, size=12)
    assert cal.inputs.shape == (12, bundle.input_length) and cal.summary["resampled"]


def test_unmappable_axis_is_a_clear_error(bundle: Bundle):
    short = make_synthetic(n_per_class=4, axis=np.linspace(900.0, 1800.0, 400), seed=4)
    with pytest.raises(DataError, match="cannot be mapped onto the model's axis"):
        select_calibration(bundle, short)


def test_nan_spectra_are_a_clear_error(bundle: Bundle, data: SpectralDataset, tmp_path: Path):
    broken = data.subset(np.arange(20))
    broken.x[3, 7] = np.nan  # after validation, as a caller could do
    with pytest.raises(DataError, match="non-finite intensity"):
        model_inputs(bundle, broken)
    from pace_edge.data import load_dataset, write_npy_folder

    folder = write_npy_folder(tmp_path / "nan", data.subset(np.arange(20)))
    x = np.load(folder / "train_x.npy")
    x[2, 5] = np.nan
    np.save(folder / "train_x.npy", x)
    with pytest.raises(DataError, match="row 2: NaN"):
        load_dataset(folder)


def test_unknown_classes_are_refused(bundle: Bundle, data: SpectralDataset):
    renamed = SpectralDataset(data.x, data.y, data.axis, ["a", "b", "c"], "x (train)")
    with pytest.raises(DataError, match="unknown to the model"):
        select_calibration(bundle, renamed)


# --- layers and QDQ ----------------------------------------------------------------------


def test_layer_map(fp32_onnx: Path):
    keys = [la.key for la in pace_layers(onnx.load(fp32_onnx))]
    assert keys == ["pool", "embed", "blocks.0.dw", "blocks.0.pw", "blocks.0.add",
                    "blocks.1.dw", "blocks.1.pw", "blocks.1.add", "head"]
    layers = pace_layers(onnx.load(fp32_onnx))
    assert [la.key for la in resolve(layers, ["blocks.1", "embed"])] == [
        "blocks.1.dw", "blocks.1.pw", "blocks.1.add", "embed"]
    with pytest.raises(PaceEdgeError, match="no quantisable layer"):
        resolve(layers, ["blocks.7"])


@pytest.fixture(scope="module")
def qdq(tmp_path_factory, bundle: Bundle, data: SpectralDataset, fp32_onnx: Path):
    cal = select_calibration(bundle, data, size=48)
    out = tmp_path_factory.mktemp("qdq") / "int8.onnx"
    info = quantize_qdq(fp32_onnx, out, cal, "minmax", exclude=["embed"])
    return out, info, cal


def test_fold_unfused_weights_keeps_the_numbers(qdq, tmp_path: Path, data: SpectralDataset):
    """Layers ONNX Runtime cannot run in INT8 get their weight stored dequantized (the same
    float32 values); layers whose output is quantised keep their Q/DQ weight."""
    import shutil

    import onnxruntime as ort

    from pace_edge.export.quantize.qdq import fold_unfused_weights

    path, _, cal = qdq
    folded_path = tmp_path / "folded.onnx"
    shutil.copy(path, folded_path)
    folded = fold_unfused_weights(folded_path)
    before, after = onnx.load(path), onnx.load(folded_path)

    def users(model: onnx.ModelProto) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for n in model.graph.node:
            for name in n.input:
                out.setdefault(name, []).append(n.op_type)
        return out

    def weight_producer(model: onnx.ModelProto) -> dict[str, str | None]:
        producers = {o: n.op_type for n in model.graph.node for o in n.output}
        return {n.name: producers.get(n.input[1]) for n in model.graph.node
                if n.op_type in ("Conv", "Gemm", "MatMul")}

    use = users(before)
    unfused = {n.name for n in before.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")
               and weight_producer(before)[n.name] == "DequantizeLinear"
               and set(use.get(n.output[0], [])) != {"QuantizeLinear"}}
    assert unfused and set(folded) == unfused
    after_producer = weight_producer(after)
    for name, producer in weight_producer(before).items():
        assert after_producer[name] == (None if name in unfused else producer)
    x = cal.inputs[:16].astype(np.float32)
    logits = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
              .run(None, {"spectrum": x})[0] for p in (path, folded_path)]
    np.testing.assert_allclose(logits[1], logits[0], rtol=0, atol=1e-4)
    assert check_qdq(folded_path) == []
    assert fold_unfused_weights(folded_path) == []  # nothing left to fold


def test_qdq_graph_follows_tensorrt_rules(qdq):
    path, info, _ = qdq
    assert check_qdq(path) == []
    model = onnx.load(path)
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    nodes = list(model.graph.node)
    producers = {o: n for n in nodes for o in n.output}
    qdq_nodes = [n for n in nodes if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq_nodes
    for n in qdq_nodes:  # symmetric: every zero point is an int8 0
        zp = init[n.input[2]]
        assert zp.dtype == np.int8 and not zp.any()
    convs = [n for n in nodes if n.op_type in ("Conv", "Gemm")]
    quantised = 0
    for conv in convs:
        weight = producers.get(conv.input[1])
        if weight is None or weight.op_type != "DequantizeLinear":
            continue
        quantised += 1
        w, scale = init[weight.input[0]], init[weight.input[1]]
        axis = next((a.i for a in weight.attribute if a.name == "axis"), 1)
        assert w.dtype == np.int8 and w.min() >= -127 and w.max() <= 127
        assert axis == 0 and scale.shape == (w.shape[0],)  # per output channel
        assert len(conv.input) < 3 or conv.input[2] in init  # bias stays float
    assert quantised == len(convs) - 1  # all but the excluded embed conv
    embed = next(n for n in nodes if n.name == info["excluded_nodes"][0])
    assert producers[embed.input[0]].op_type != "DequantizeLinear"
    assert info["excluded_layers"] == ["embed"] and info["method"] == "minmax"
    assert info["activation_amax"] and all(v > 0 for v in info["activation_amax"].values())
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["pace_edge.precision"] == "int8"


def test_qdq_passes_the_tensorrt_rule_checker(qdq):
    rules = pytest.importorskip("pace_edge.export.qdq_rules")
    path, _, _ = qdq
    assert rules.check_qdq(path) == []
    model = onnx.load(path)
    logits = next(n for n in model.graph.node if "logits" in n.output)
    assert logits.op_type == "Gemm"  # no Q/DQ on layer outputs: the logits stay float


def test_check_qdq_reports_violations(qdq, tmp_path: Path):
    path, _, _ = qdq
    model = onnx.load(path)
    dq = next(n for n in model.graph.node if n.op_type == "DequantizeLinear")
    zp = next(i for i in model.graph.initializer if i.name == dq.input[2])
    zp.CopyFrom(numpy_helper.from_array(np.full(numpy_helper.to_array(zp).shape, 3, np.int8),
                                        zp.name))
    onnx.save(model, tmp_path / "bad.onnx")
    assert any(v.rule == "zero-point" for v in check_qdq(tmp_path / "bad.onnx"))


def test_qdq_runs_close_to_fp32(qdq, fp32_onnx: Path):
    from pace_edge.export.parity import onnx_logits

    path, _, cal = qdq
    ref = onnx_logits(fp32_onnx, cal.holdout)
    err = logit_error(ref, onnx_logits(path, cal.holdout))
    assert err["nrmse"] < 0.2  # an untrained model: only a sanity bound


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_other_calibration_methods(bundle, data, fp32_onnx: Path, tmp_path: Path, method: str):
    cal = select_calibration(bundle, data, size=24)
    info = quantize_qdq(fp32_onnx, tmp_path / "m.onnx", cal, method)
    assert info["method"] == method and check_qdq(tmp_path / "m.onnx") == []


def test_unknown_method_is_refused(bundle, data, fp32_onnx: Path, tmp_path: Path):
    cal = select_calibration(bundle, data, size=12)
    with pytest.raises(PaceEdgeError, match="calibration method"):
        quantize_qdq(fp32_onnx, tmp_path / "m.onnx", cal, "magic")


# --- sensitivity search ------------------------------------------------------------------


def test_logit_error():
    ref = np.array([[2.0, 0.0], [0.0, 2.0]])
    assert logit_error(ref, ref) == {"nrmse": 0.0, "agreement": 1.0, "max_abs": 0.0}
    flipped = logit_error(ref, ref[:, ::-1])
    assert flipped["agreement"] == 0.0 and flipped["nrmse"] > 1
    assert logit_error(ref, np.full_like(ref, np.nan))["nrmse"] == float("inf")


def test_choose_float_keeps_most_sensitive_until_within_tolerance():
    cost = {"a": 0.30, "b": 0.02, "c": 0.10, "d": 0.01}
    ranking = [LayerSensitivity(k, k, "Conv", v, 1.0, v) for k, v in cost.items()]
    ref = np.eye(3)

    def evaluate(floats):  # error = sum of the quantised layers' costs
        e = sum(v for k, v in cost.items() if k not in floats)
        return ref + e * np.array([[1.0, -1.0, 0.0]] * 3) / np.sqrt(2 * 3 / 2)

    choice = choose_float(ranking, evaluate, ref, tolerance=0.05)
    assert choice.floats == ["a", "c"] and choice.met
    assert [s["ok"] for s in choice.steps] == [False, False, True]
    choice = choose_float(ranking, evaluate, ref, tolerance=1.0)
    assert choice.floats == [] and choice.met
    choice = choose_float(ranking, evaluate, ref, tolerance=0.0)
    assert len(choice.floats) == 2 and not choice.steps[-1]["ok"]  # at most half the layers
    assert not choice.met  # it stopped outside its tolerance: the export fails on it
