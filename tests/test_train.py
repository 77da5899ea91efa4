"""Training: determinism, selection on validation only, refit, and real-data learning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pace_edge.bundle import Bundle
from pace_edge.data import load_dataset, make_synthetic
from pace_edge.errors import PaceEdgeError
from pace_edge.model import preset
from pace_edge.preprocess import Pipeline
from pace_edge.train import Recipe
from pace_edge.train.augment import augment, blur, gaussian_noise, intensity_scale, mask
from pace_edge.train.bundle_training import train_bundle
from pace_edge.train.trainer import fit, precise_batchnorm, smoothed_choice


def small_data():
    data = make_synthetic(n_per_class=20, seed=3)
    x, axis = Pipeline.from_spec("baseline:asls,normalize:snv").apply(data.x, data.axis)
    return type(data)(x, data.y, axis, data.classes, data.source)


def weights(model: torch.nn.Module) -> list[np.ndarray]:
    return [v.detach().numpy().copy() for v in model.state_dict().values()]


def test_same_seed_same_model_other_seed_differs() -> None:
    data = small_data()
    recipe = Recipe(epochs=3, batch_size=16, seed=5, augment=True)
    a = fit(data, preset("tiny", 3), recipe)
    b = fit(data, preset("tiny", 3), recipe)
    c = fit(data, preset("tiny", 3), Recipe(epochs=3, batch_size=16, seed=6, augment=True))
    assert all(np.array_equal(u, v) for u, v in zip(weights(a.model), weights(b.model),
                                                       strict=True))
    assert not all(np.array_equal(u, v) for u, v in zip(weights(a.model), weights(c.model),
                                                           strict=True))
    assert [h["val_accuracy"] for h in a.history] == [h["val_accuracy"] for h in b.history]


def test_selection_keeps_best_validation_epoch_and_refit_uses_it() -> None:
    data = small_data()
    result = fit(data, preset("tiny", 3), Recipe(epochs=6, batch_size=16, seed=0, refit=False))
    accs = [h["val_accuracy"] for h in result.history]
    assert result.val_accuracy == max(accs)
    assert accs[result.best_epoch - 1] == max(accs)
    assert result.split == {"train": 48, "validation": 12}
    refit = fit(data, preset("tiny", 3), Recipe(epochs=6, batch_size=16, seed=0, refit=True))
    assert refit.best_epoch == result.best_epoch
    assert refit.refit_epochs == result.best_epoch


def embed_statistics(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor,
                                                                       torch.Tensor]:
    """Per-channel mean and unbiased variance of the patch embedding's conv output on ``x``."""
    with torch.no_grad():
        z = model.embed(model.pool(x.unsqueeze(1)))
    return z.mean(dim=(0, 2)), z.var(dim=(0, 2), unbiased=True)


def test_precise_batchnorm_sets_statistics_of_the_given_spectra() -> None:
    model = fit(small_data(), preset("tiny", 3),
                Recipe(epochs=2, batch_size=16, refit=False, precise_bn=False)).model
    x = torch.as_tensor(small_data().x, dtype=torch.float32)
    mean, var = embed_statistics(model, x)
    before = model.embed_bn.running_mean.clone()
    assert not torch.allclose(before, mean, atol=1e-4)  # running stats lag the final weights
    params = [p.detach().clone() for p in model.parameters()]
    precise_batchnorm(model, x)
    assert not model.training
    torch.testing.assert_close(model.embed_bn.running_mean, mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model.embed_bn.running_var, var, rtol=1e-4, atol=1e-5)
    assert all(torch.equal(p, q) for p, q in zip(params, model.parameters(), strict=True))
    # in batches: the equal-weight mean of the per-batch statistics
    precise_batchnorm(model, x, batch_size=30)
    halves = [embed_statistics(model, x[:30]), embed_statistics(model, x[30:])]
    torch.testing.assert_close(model.embed_bn.running_mean,
                               (halves[0][0] + halves[1][0]) / 2, rtol=1e-4, atol=1e-5)


def test_precise_batchnorm_gathers_statistics_with_dropout_off() -> None:
    from dataclasses import replace

    from pace_edge.model.pace import PACE

    model = PACE(replace(preset("tiny", 3), dropout=0.5))
    x = torch.as_tensor(small_data().x, dtype=torch.float32)
    precise_batchnorm(model, x)
    first = model.blocks[0].dw_bn.running_mean.clone()
    precise_batchnorm(model, x)  # random dropout masks would change the later layers' stats
    assert torch.equal(model.blocks[0].dw_bn.running_mean, first)
    assert model.embed_bn.momentum == 0.1 and not model.training


def test_precise_bn_changes_only_the_batchnorm_statistics() -> None:
    data = small_data()
    on = fit(data, preset("tiny", 3), Recipe(epochs=3, batch_size=16, seed=1))
    off = fit(data, preset("tiny", 3), Recipe(epochs=3, batch_size=16, seed=1,
                                              precise_bn=False))
    a, b = on.model.state_dict(), off.model.state_dict()
    stats = {k for k in a if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    assert all(torch.equal(a[k], b[k]) for k in a if k not in stats)
    assert not torch.allclose(a["embed_bn.running_mean"], b["embed_bn.running_mean"])
    x = torch.as_tensor(data.x, dtype=torch.float32)  # the refit's data: all of it, clean
    torch.testing.assert_close(a["embed_bn.running_mean"], embed_statistics(on.model, x)[0],
                               rtol=1e-4, atol=1e-5)


def test_recipes_of_older_bundles_did_not_use_precise_bn() -> None:
    assert Recipe.from_dict({"epochs": 5}).precise_bn is False
    assert Recipe.from_dict(Recipe().to_dict()) == Recipe()


def test_patience_stops_early() -> None:
    data = small_data()
    result = fit(data, preset("tiny", 3),
                 Recipe(epochs=50, batch_size=16, patience=2, refit=False))
    assert result.epochs_run < 50
    assert result.epochs_run - result.best_epoch == 2


def test_smoothed_choice_prefers_a_plateau_to_a_lucky_spike() -> None:
    accs = [0.5, 0.6, 0.95, 0.6, 0.6, 0.85, 0.9, 0.9, 0.9, 0.85, 0.8]
    history = [{"epoch": i + 1, "val_accuracy": a, "val_loss": 1.0 - a}
               for i, a in enumerate(accs)]
    assert smoothed_choice(history, 1) == (3, (0.95, pytest.approx(0.05)))
    epoch, (acc, loss) = smoothed_choice(history, 3)
    assert epoch == 8 and acc == pytest.approx(0.9) and loss == pytest.approx(0.1)
    # Equal averages: the lower averaged validation loss wins.
    flat = [{"epoch": i + 1, "val_accuracy": 0.8, "val_loss": v}
            for i, v in enumerate([0.5, 0.4, 0.3, 0.35, 0.5])]
    assert smoothed_choice(flat, 3)[0] == 3


def test_select_window_sets_the_refit_length_and_history_is_kept(tmp_path: Path) -> None:
    data = small_data()
    recipe = Recipe(epochs=8, batch_size=16, seed=1, refit=True, select_window=5)
    result = fit(data, preset("tiny", 3), recipe)
    expected, (acc, _) = smoothed_choice(result.history, 5)
    assert result.best_epoch == result.refit_epochs == expected
    assert result.val_accuracy == pytest.approx(acc)
    bundle, _ = train_bundle(make_synthetic(n_per_class=10, seed=0), preset("tiny", 3),
                             Recipe(epochs=3, batch_size=16, select_window=3),
                             Pipeline.from_spec("normalize:vector"), out=tmp_path / "b")
    history = Bundle.load(tmp_path / "b").training["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert all(0.0 <= row["val_accuracy"] <= 1.0 for row in history)


def test_k_fold_selection_chooses_on_the_mean_curve_then_refits() -> None:
    data = small_data()
    recipe = Recipe(epochs=4, batch_size=16, seed=2, refit=True, select_folds=3)
    result = fit(data, preset("tiny", 3), recipe)
    assert result.split == {"train": 60, "validation": 60, "folds": 3}
    assert len(result.history) == 4
    for row in result.history:
        assert len(row["fold_val_accuracy"]) == 3
        assert row["val_accuracy"] == pytest.approx(np.mean(row["fold_val_accuracy"]))
    best, (acc, _) = smoothed_choice(result.history, 1)
    assert result.best_epoch == result.refit_epochs == best
    assert result.val_accuracy == pytest.approx(acc)
    again = fit(data, preset("tiny", 3), recipe)  # deterministic for a seed
    assert all(np.array_equal(u, v) for u, v in zip(weights(result.model),
                                                       weights(again.model), strict=True))


def test_recipe_validation() -> None:
    with pytest.raises(PaceEdgeError, match="validation fraction"):
        Recipe(val_fraction=1.0).validate()
    with pytest.raises(PaceEdgeError, match="learning rate"):
        Recipe(lr=0).validate()
    with pytest.raises(PaceEdgeError, match="odd number of epochs"):
        Recipe(select_window=4).validate()
    with pytest.raises(PaceEdgeError, match="needs the refit"):
        Recipe(select_window=5, refit=False).validate()
    with pytest.raises(PaceEdgeError, match="k-fold selection needs the refit"):
        Recipe(select_folds=5, refit=False).validate()
    with pytest.raises(PaceEdgeError, match="too few spectra"):
        data = make_synthetic(n_per_class=1, seed=0)
        fit(data, preset("tiny", 3), Recipe(epochs=1))


def test_augmentations_change_spectra_but_keep_shape() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 200) + 1
    for fn in (gaussian_noise, intensity_scale, augment):
        y = fn(x, g)
        assert y.shape == x.shape and not torch.equal(y, x)
    assert torch.equal(x, torch.rand(8, 200, generator=torch.Generator().manual_seed(0)) * 0
                       + x)  # inputs untouched
    masked = mask(x, g, p=1.0)
    assert (masked == 0).any(dim=1).all()
    smooth = blur(torch.sin(torch.arange(200.0))[None].repeat(4, 1), torch.Generator()
                  .manual_seed(3), max_sigma=3.0)
    assert smooth.shape == (4, 200)


def test_bundle_records_recipe_and_pipeline(tmp_path: Path) -> None:
    data = make_synthetic(n_per_class=10, seed=0)
    bundle, _ = train_bundle(data, preset("tiny", 3), Recipe(epochs=2, batch_size=16),
                             Pipeline.from_spec("normalize:vector"), out=tmp_path / "b")
    loaded = Bundle.load(tmp_path / "b")
    assert loaded.training["recipe"]["epochs"] == 2
    assert loaded.training["data"]["class_counts"] == data.class_counts()
    assert [s["name"] for s in loaded.preprocessing.to_list()] == ["resample", "normalize"]
    np.testing.assert_array_equal(loaded.axis, data.axis)


def test_short_real_training_beats_chance(cov_dir: Path) -> None:
    """A few epochs of the small preset on real serum Raman spectra learn something."""
    from pace_edge.evaluate.scoring import score_bundle

    train = load_dataset(cov_dir, split="train")
    test = load_dataset(cov_dir, split="test")
    recipe = Recipe(epochs=25, lr=1e-3, seed=0, augment=False, refit=False)
    bundle, result = train_bundle(train, preset("small", 3), recipe, Pipeline([]))
    metrics = score_bundle(bundle, test)
    assert result.val_accuracy > 0.55
    assert metrics.accuracy > 0.55  # chance is 1/3
