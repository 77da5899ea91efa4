"""Choosing INT8 float layers by the task and by cost: the criterion's decisions on small sets,
the cost-first selection rule, the options tried before layers go float, determinism."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from pace_edge.export.quantize.choose import (
    CHEAP_SHARE,
    OPENVINO_RECIPES,
    choose_openvino,
    choose_qdq,
    needs_more,
    outlier_channels,
)
from pace_edge.export.quantize.cost import LayerCost, build_cost, predicted_speedup
from pace_edge.export.quantize.criterion import Criterion, upper_bound
from pace_edge.export.quantize.layers import Layer
from pace_edge.export.quantize.sensitivity import measure_layers, search_float

# --- the criterion ------------------------------------------------------------------------


def _logits(n: int, seed: int = 0, margin: float = 2.0) -> np.ndarray:
    """``n`` rows of 3-class logits whose top class wins by ``margin``; classes cycle."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 0.1, (n, 3))
    z[np.arange(n), np.arange(n) % 3] += margin
    return z


def _flip(z: np.ndarray, rows: Sequence[int]) -> np.ndarray:
    """``z`` with the top class of ``rows`` moved to the next class."""
    out = z.copy()
    for i in rows:
        top = int(out[i].argmax())
        out[i, (top + 1) % 3] = out[i, top] + 1.0
    return out


def test_clopper_pearson_upper_bound():
    # no event in n: the bound solves (1 - p)^n = 1 - confidence
    assert upper_bound(0, 75) == pytest.approx(1 - 0.05 ** (1 / 75), rel=1e-9)
    assert upper_bound(0, 75) == pytest.approx(0.0392, abs=1e-4)
    assert upper_bound(1, 100) == pytest.approx(0.0466, abs=1e-4)
    assert upper_bound(2, 100) == pytest.approx(0.0616, abs=1e-4)
    assert upper_bound(5, 5) == 1.0 and upper_bound(0, 0) == 1.0


def test_criterion_on_a_set_that_resolves_the_limit():
    crit = Criterion(max_disagreement=0.05, max_accuracy_drop=0.05, max_expected_disagreement=1)
    ref = _logits(100)
    assert crit.judge(ref, ref).met
    one = crit.judge(ref, _flip(ref, [7]))
    assert one.met and one.disagreements == 1 and one.resolved  # bound 4.7 % <= 5 %
    two = crit.judge(ref, _flip(ref, [7, 8]))
    assert not two.met and two.disagreement_upper > 0.05  # bound 6.2 %
    # logit error alone never fails a build that agrees
    noisy = ref + np.random.default_rng(1).normal(0, 0.3, ref.shape) * 0.1
    v = crit.judge(ref, noisy)
    assert v.disagreements == 0 and v.nrmse > 0.01 and v.met


def test_criterion_counts_lost_and_gained_spectra_with_labels():
    ref = _logits(100)
    labels = ref.argmax(1).copy()
    labels[:3] = (labels[:3] + 1) % 3  # FP32 wrong on the first three
    # the build flips row 0 to its true class (gained) and row 50 away from it (lost)
    cand = _flip(ref, [0, 50])
    v = Criterion(max_disagreement=0.1, max_expected_disagreement=1).judge(ref, cand, labels)
    assert (v.lost, v.gained, v.accuracy_change) == (1, 1, 0.0) and v.met
    assert v.drop_upper == pytest.approx(upper_bound(1, 100))
    # a tighter limit on the accuracy drop than on disagreement binds
    assert not Criterion(max_disagreement=0.1, max_accuracy_drop=0.04,
                         max_expected_disagreement=1).judge(ref, cand, labels).met


def test_criterion_on_a_set_too_small_to_resolve_the_limit_asks_for_no_disagreement():
    crit = Criterion(max_disagreement=0.05)
    ref = _logits(20)  # 0 of 20 certifies only 13.9 %
    assert crit.resolution(20) > 0.05
    same = crit.judge(ref, ref + 0.01)
    assert same.met and not same.resolved
    assert not crit.judge(ref, _flip(ref, [3])).met
    assert not crit.judge(ref, np.full_like(ref, np.nan)).met


def test_expected_disagreement_sees_errors_that_flip_nothing_yet():
    ref = _logits(80, margin=2.0)
    ref[:40] *= 0.5  # half the spectra have a margin of about 1, the others about 2
    crit = Criterion()
    # an error that shrinks every margin by 0.4 flips nothing, here or on any other spectrum
    small = crit.judge(ref, ref + _push(ref, slice(0, 80), 0.2))
    assert small.disagreements == 0 and small.expected_disagreement == 0.0 and small.met
    # one that shrinks the large margins by 1.2 flips none of them either, but would flip
    # the spectra with small margins: counting flips passes it, the expected rate does not
    large = crit.judge(ref, ref + _push(ref, slice(40, 80), 0.6))
    assert large.disagreements == 0 and large.disagreement_upper < 0.05
    assert large.expected_disagreement > 0.05 and not large.met


# --- cost and the selection rule ----------------------------------------------------------


def _costs(**extra: float) -> dict[str, LayerCost]:
    """Layers whose float version costs ``4/3 * extra`` units and INT8 ``1/3 * extra``."""
    return {k: LayerCost(k, "Conv", int(4 * v), 1, 4 * v, v) for k, v in
            {k: e / 3 for k, e in extra.items()}.items()}


def _model(sensitivity: dict[str, np.ndarray], ref: np.ndarray):
    """A synthetic model: each quantised layer adds its own error vector to the logits."""
    def evaluate(floats: Sequence[str]) -> np.ndarray:
        out = ref.copy()
        for k, e in sensitivity.items():
            if k not in floats:
                out = out + e
        return out
    return evaluate


def _push(ref: np.ndarray, rows: slice, amount: float) -> np.ndarray:
    """An error moving ``amount`` of the top-class margin to the second class on ``rows``."""
    e = np.zeros_like(ref)
    idx = np.arange(len(ref))[rows]
    top = ref[idx].argmax(1)
    e[idx, top] -= amount
    e[idx, (top + 1) % 3] += amount
    return e


def test_the_cheap_layer_goes_float_when_a_cheap_and_an_expensive_layer_are_equally_sensitive():
    ref = _logits(120, margin=2.0)
    # each alone moves 30 spectra by 0.6 of their margin (no flip); both together flip them
    same = _push(ref, slice(0, 30), 0.6)
    sens = {"cheap": same, "expensive": same.copy(), "quiet": np.zeros_like(ref)}
    layers = [Layer(k, k, "Conv", ()) for k in ("expensive", "cheap", "quiet")]
    costs = _costs(expensive=100.0, cheap=1.0, quiet=0.5)
    evaluate, judge = _model(sens, ref), lambda z: Criterion().judge(ref, z)
    ranking = measure_layers(layers, evaluate, judge, costs)
    by = {r.layer: r for r in ranking}
    assert by["cheap"].nrmse == pytest.approx(by["expensive"].nrmse)
    assert by["cheap"].agreement == 1.0 and by["quiet"].nrmse == 0.0
    found = search_float(ranking, costs, evaluate, judge)
    assert found.float_layers == ["cheap"] and found.met
    assert found.cost == pytest.approx(build_cost(costs, ["cheap"]))
    assert found.predicted_speedup == pytest.approx(predicted_speedup(costs, ["cheap"]))
    assert found.steps[0]["action"] == "start" and not found.steps[0]["ok"]
    # the same model with the costs swapped keeps the other one float
    swapped = _costs(expensive=1.0, cheap=100.0, quiet=0.5)
    ranking = measure_layers(layers, evaluate, judge, swapped)
    assert search_float(ranking, swapped, evaluate, judge).float_layers == ["expensive"]


def test_search_drops_float_layers_the_criterion_does_not_need():
    ref = _logits(120)
    # "a" flips 10 spectra alone; "b" looks sensitive (large logit error) but flips nothing
    sens = {"a": _push(ref, slice(0, 10), 3.0), "b": _push(ref, slice(10, 120), 0.5),
            "c": np.zeros_like(ref), "d": np.zeros_like(ref)}
    layers = [Layer(k, k, "Conv", ()) for k in sens]
    costs = _costs(a=10.0, b=1.0, c=1.0, d=1.0)
    evaluate, judge = _model(sens, ref), lambda z: Criterion().judge(ref, z)
    ranking = measure_layers(layers, evaluate, judge, costs)
    found = search_float(ranking, costs, evaluate, judge)
    assert found.float_layers == ["a"] and found.met
    assert any(s["action"] == "quantise b again" and s["ok"] for s in found.steps)


def test_search_that_cannot_meet_the_criterion_says_so():
    ref = _logits(60)
    sens = {k: _push(ref, slice(i * 20, i * 20 + 20), 3.0) for i, k in enumerate("abc")}
    sens["d"] = _push(ref, slice(0, 60), 3.0)
    layers = [Layer(k, k, "Conv", ()) for k in sens]
    costs = _costs(a=1.0, b=1.0, c=1.0, d=1.0)
    evaluate, judge = _model(sens, ref), lambda z: Criterion().judge(ref, z)
    ranking = measure_layers(layers, evaluate, judge, costs)
    found = search_float(ranking, costs, evaluate, judge)
    # only every layer float (FP32 itself) meets it: more than half the layers, so not met
    assert found.float_layers == ["a", "b", "c", "d"] and found.verdict.met
    assert not found.within_limit and not found.met
    # given float layers are kept, and nothing more is searched
    given = search_float(ranking, costs, evaluate, judge, start=["d"], max_float_share=0.0)
    assert given.float_layers == ["d"] and len(given.steps) == 1


def test_search_is_deterministic():
    ref = _logits(150, seed=4)
    rng = np.random.default_rng(9)
    sens = {f"l{i}": rng.normal(0, 0.4, ref.shape) for i in range(6)}
    layers = [Layer(k, k, "Conv", ()) for k in sens]
    costs = _costs(**{k: float(1 + 7 * i) for i, k in enumerate(sens)})
    evaluate, judge = _model(sens, ref), lambda z: Criterion().judge(ref, z)
    runs = [search_float(measure_layers(layers, evaluate, judge, costs), costs, evaluate, judge)
            for _ in range(2)]
    assert runs[0].float_layers == runs[1].float_layers
    assert runs[0].steps == runs[1].steps


# --- options tried before layers go float -------------------------------------------------


def test_another_calibration_range_is_tried_when_the_first_needs_an_expensive_layer():
    ref = _logits(120)
    layers = [Layer(k, k, "Conv", ()) for k in ("pw", "dw")]
    costs = _costs(pw=100.0, dw=1.0)
    per_method = {  # percentile: pw flips 20 spectra; entropy: nothing flips
        "percentile": {"pw": _push(ref, slice(0, 20), 3.0), "dw": np.zeros_like(ref)},
        "entropy": {"pw": _push(ref, slice(0, 20), 0.2), "dw": np.zeros_like(ref)},
        "minmax": {"pw": _push(ref, slice(0, 20), 3.0), "dw": np.zeros_like(ref)},
    }
    asked = []

    def evaluator(method: str):
        asked.append(method)
        return _model(per_method[method], ref)

    judge = lambda z: Criterion().judge(ref, z)  # noqa: E731
    choice = choose_qdq(["percentile", "entropy", "minmax"], evaluator, layers, costs, judge)
    assert choice.option == "entropy" and choice.float_layers == [] and choice.met
    assert asked == ["percentile", "entropy"]  # entropy needs nothing float: no third try
    assert [t["method"] for t in choice.tried] == ["percentile", "entropy"]
    assert needs_more(choice.tried and choice.search, costs) is False
    # a first method that meets with only cheap layers float is not second-guessed
    cheap = {"pw": np.zeros_like(ref), "dw": _push(ref, slice(0, 20), 3.0)}
    asked.clear()
    choice = choose_qdq(["percentile", "entropy"], lambda m: asked.append(m) or _model(cheap, ref),
                        layers, costs, judge)
    assert choice.float_layers == ["dw"] and asked == ["percentile"]
    assert costs["dw"].extra < CHEAP_SHARE * build_cost(costs, costs)


def test_openvino_recipes_are_tried_in_order_before_layers_go_float():
    ref = _logits(90)
    bad = _push(ref, slice(0, 20), 3.0)
    fixes = {"performance": bad, "bias-correction": bad, "smooth-quant": np.zeros_like(ref),
             "mixed": np.zeros_like(ref)}

    def evaluator(recipe):
        return _model({"pw": fixes[recipe.name]}, ref)

    layers = [Layer("pw", "pw", "Conv", ())]
    costs = _costs(pw=100.0)
    judge = lambda z: Criterion().judge(ref, z)  # noqa: E731
    ranking = measure_layers(layers, evaluator(OPENVINO_RECIPES[0]), judge, costs)
    recipe, found, tried = choose_openvino([], evaluator, ranking, costs, judge, outliers=False)
    # without outlier channels SmoothQuant is skipped; the mixed preset fixes it
    assert [t["recipe"] for t in tried] == ["performance", "bias-correction", "mixed"]
    assert recipe.name == "mixed" and found.float_layers == [] and found.met
    recipe, _, tried = choose_openvino([], evaluator, ranking, costs, judge, outliers=True)
    assert recipe.name == "smooth-quant" and tried[-1]["recipe"] == "smooth-quant"


def test_outlier_channels():
    stats = [{"tensor": "a", "channel_amax_median": 1.0, "channel_amax_max": 20.0},
             {"tensor": "b", "channel_amax_median": 1.0, "channel_amax_max": 3.0},
             {"tensor": "c"}]
    assert outlier_channels(stats) == ["a"]


def test_every_nncf_recipe_quantises_a_pace_graph(tmp_path):
    """Each OpenVINO recipe runs NNCF for real on a tiny PACE graph (SYNTHETIC spectra)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("nncf")
    import onnx

    from pace_edge.bundle import Bundle
    from pace_edge.data import make_synthetic
    from pace_edge.export.onnx_graph import export_onnx
    from pace_edge.export.quantize import select_calibration
    from pace_edge.export.quantize.layers import pace_layers
    from pace_edge.export.quantize.nncf_openvino import openvino_run, quantize_openvino
    from pace_edge.model import PACE, preset
    from pace_edge.preprocess import Pipeline

    data = make_synthetic(n_per_class=20, seed=2)
    data.source = "synthetic (train)"
    torch.manual_seed(0)
    model = PACE(preset("tiny", 3))
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    pipeline = Pipeline.from_spec("normalize:snv").anchored(data.axis)
    bundle = Bundle.load(Bundle(model.config, weights, data.classes, data.axis, pipeline,
                                {}).save(tmp_path / "bundle"))
    fp32 = export_onnx(bundle, tmp_path / "fp32.onnx")
    layers = pace_layers(onnx.load(str(fp32)))
    cal = select_calibration(bundle, data, 32, 0)
    for recipe in OPENVINO_RECIPES:
        quantized, info = quantize_openvino(fp32, None, cal, layers, "minmax", ["pool"],
                                            recipe=recipe)
        assert info["recipe"] == recipe.name and info["fake_quantize"] > 0, recipe
        assert "pool" in info["float_layers"] and info["int8_layers"]
        assert np.isfinite(openvino_run(quantized, cal.holdout)).all()


def test_search_drops_a_pair_of_float_layers_that_only_go_together():
    ref = _logits(120)
    # "a" and "b" each flip spectra; "c" and "d" flip spectra alone but their INT8 errors
    # cancel when both are quantised: once the greedy phase has kept c and d float, neither
    # goes alone, and only the pair step finds the cheaper {a, b}
    swing = _push(ref, slice(60, 80), 3.0)
    sens = {"a": _push(ref, slice(0, 20), 3.0), "b": _push(ref, slice(20, 40), 3.0),
            "c": swing, "d": -swing}
    layers = [Layer(k, k, "Conv", ()) for k in sens]
    costs = _costs(a=1.0, c=2.0, b=3.0, d=5.0)
    evaluate, judge = _model(sens, ref), lambda z: Criterion().judge(ref, z)
    ranking = measure_layers(layers, evaluate, judge, costs)
    found = search_float(ranking, costs, evaluate, judge, max_float_share=1.0)
    assert found.float_layers == ["a", "b"] and found.met
    assert any(s["action"] == "quantise d, c again" and s["ok"] for s in found.steps)
    assert not any(s["ok"] for s in found.steps if s["action"] in
                   ("quantise c again", "quantise d again"))
