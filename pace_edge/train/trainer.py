"""Fit a PACE model: AdamW, cosine schedule, best-validation checkpoint, seeded.

The validation split comes from the training data alone; the test data never reaches this
module, so it cannot influence model selection. With ``recipe.refit`` the number of epochs
chosen on validation is then used to retrain on all the training data, with the cosine
schedule compressed into that many epochs. With ``recipe.precise_bn`` the final model's
BatchNorm statistics are then recomputed on the un-augmented training spectra
(:func:`precise_batchnorm`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import SpectralDataset, group_record, stratified_folds, stratified_split
from ..errors import PaceEdgeError
from ..model import ModelConfig
from ..model.pace import PACE
from .augment import augment as augment_batch
from .checkpoint import Checkpoint, TrainingInterrupted
from .distill import Teacher
from .recipe import Recipe

EpochCallback = Callable[[dict[str, Any]], None]
StopCheck = Callable[[], bool]

REFIT_SEED_OFFSET = 1_000


@dataclass
class FitResult:
    """The selected model and what happened while training it."""

    model: PACE
    best_epoch: int
    val_accuracy: float
    val_loss: float
    epochs_run: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    split: dict[str, int] = field(default_factory=dict)
    refit_epochs: int = 0
    selection_seconds: float = 0.0  # ``seconds`` covers selection, refit and precise BN


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG and return a generator for data order and augmentation."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _tensors(data: SpectralDataset, idx: np.ndarray | slice,
             device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Spectra (float32) and labels of ``data[idx]`` on ``device``."""
    x = torch.as_tensor(data.x[idx], dtype=torch.float32, device=device)
    return x, torch.as_tensor(data.y[idx], device=device)


def _evaluate(model: PACE, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(x[i : i + 256]) for i in range(0, len(x), 256)])
    loss = float(F.cross_entropy(logits, y))
    return float((logits.argmax(1) == y).float().mean()), loss


class _Run:
    """One training run: model, optimiser and schedule over a fixed set of spectra."""

    def __init__(
        self,
        config: ModelConfig,
        recipe: Recipe,
        device: torch.device,
        seed: int,
        t_max: int | None = None,
        teacher: Teacher | None = None,
    ):
        self.recipe, self.device, self.teacher = recipe, device, teacher
        self.g = seed_everything(seed)
        self.model = PACE(config).to(device)
        self.opt = torch.optim.AdamW(
            self.model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay
        )
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.opt, T_max=t_max or recipe.t_max or recipe.epochs
        )

    def epoch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """Train one epoch; return (mean loss, learning rate used)."""
        r = self.recipe
        self.model.train()
        order = torch.randperm(len(x), generator=self.g).to(self.device)
        total = 0.0
        for b in range(0, len(order), r.batch_size):
            j = order[b : b + r.batch_size]
            xb = augment_batch(x[j].cpu(), self.g).to(self.device) if r.augment else x[j]
            logits = self.model(xb)
            loss = (F.cross_entropy(logits, y[j], label_smoothing=r.label_smoothing)
                    if self.teacher is None else
                    self.teacher.loss(logits, xb, y[j], label_smoothing=r.label_smoothing))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += loss.item() * len(j)
        lr = self.opt.param_groups[0]["lr"]
        self.sched.step()
        return total / len(x), lr

    def state(self) -> dict[str, Any]:
        """Everything the next epoch depends on, including the random generators (dropout
        draws from torch's global one)."""
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(),
                "sched": self.sched.state_dict(), "generator": self.g.get_state(),
                "torch_rng": torch.get_rng_state()}

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.g.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])


class _Control:
    """Epoch boundaries: time kept across resumes, checkpoints, and stop requests."""

    def __init__(self, checkpoint: Checkpoint | None, stop: StopCheck | None,
                 on_epoch: EpochCallback | None):
        self.checkpoint, self.stop, self.on_epoch = checkpoint, stop, on_epoch
        self.resumed: dict[str, Any] = dict(checkpoint.state or {}) if checkpoint else {}
        self._before = float(self.resumed.get("elapsed", 0.0))
        self._start = time.perf_counter()
        self._stopping = False

    def elapsed(self) -> float:
        return self._before + time.perf_counter() - self._start

    def emit(self, row: dict[str, Any]) -> None:
        if self.on_epoch is not None:
            self.on_epoch(row)

    def wants_state(self, force: bool = False) -> bool:
        """Called after each epoch: whether :meth:`end_epoch` should get the state to save
        (a save is due, ``force``d, or a stop was requested)."""
        self._stopping = self.stop is not None and self.stop()
        return self.checkpoint is not None and (force or self._stopping
                                                or self.checkpoint.due())

    def end_epoch(self, stage: str, epoch: int, state: dict[str, Any] | None,
                  label: str | None = None) -> None:
        """Save ``state`` if given; stop here if a stop was requested (``label`` names the
        phase in the message)."""
        saved = None
        if state is not None and self.checkpoint is not None:
            self.checkpoint.save({**state, "stage": stage, "epoch": epoch,
                                  "elapsed": self.elapsed()})
            saved = self.checkpoint.path
        if self._stopping:
            raise TrainingInterrupted(label or stage, epoch, saved)


@torch.no_grad()
def precise_batchnorm(model: PACE, x: torch.Tensor, batch_size: int = 512,
                      on_chunk: Callable[[int, int], None] | None = None) -> None:
    """Replace every BatchNorm's running mean and variance by the statistics of ``model``'s
    final weights on ``x`` (the mean over near-equal chunks of at most ``batch_size``, so
    every spectrum weighs about the same).

    During training they are an exponential average over augmented mini-batches, taken while
    the weights were still moving; spectra at inference are neither augmented nor produced by
    earlier weights, and the mismatch shifts every normalised activation. Dropout stays off
    while the statistics are gathered, as it is at inference. Leaves ``model`` in eval mode.
    ``on_chunk(done, total)`` is called after each chunk (for progress reports).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
        m.train()
    chunks = torch.tensor_split(x, max(1, math.ceil(len(x) / batch_size)))
    for i, chunk in enumerate(chunks, start=1):
        model(chunk)
        if on_chunk is not None:
            on_chunk(i, len(chunks))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.eval()


def smoothed_choice(history: list[dict[str, float]], window: int) -> tuple[int, tuple[float,
                                                                                     float]]:
    """The epoch whose centred ``window``-epoch moving average of validation accuracy is
    highest (ties: lowest averaged validation loss), with those averages.

    One validation spectrum moves the accuracy of a small split by a percentage point, so the
    single best epoch is partly luck; a plateau of good epochs is a steadier choice of how long
    to train. Windows are cut short at the ends of the run.
    """
    acc = np.array([row["val_accuracy"] for row in history], dtype=np.float64)
    loss = np.array([row["val_loss"] for row in history], dtype=np.float64)
    half = window // 2
    best_key, best_i = (-math.inf, -math.inf), 0
    for i in range(len(history)):
        lo, hi = max(0, i - half), min(len(history), i + half + 1)
        key = (float(acc[lo:hi].mean()), -float(loss[lo:hi].mean()))
        if key > best_key:
            best_key, best_i = key, i
    return int(history[best_i]["epoch"]), (best_key[0], -best_key[1])


@dataclass
class _Selection:
    """What choosing the epoch count produced (kept in the checkpoint during the refit)."""

    best_epoch: int
    val_accuracy: float
    val_loss: float
    epochs_run: int
    history: list[dict[str, Any]]
    split: dict[str, int]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit(
    train: SpectralDataset,
    config: ModelConfig,
    recipe: Recipe,
    on_epoch: EpochCallback | None = None,
    checkpoint: Checkpoint | None = None,
    stop: StopCheck | None = None,
    teacher: Teacher | None = None,
) -> FitResult:
    """Train on ``train`` (already preprocessed); keep the best-validation-accuracy weights.

    Ties in validation accuracy go to the lower validation loss. With ``select_window`` > 1
    the epoch count is chosen on the moving average (:func:`smoothed_choice`) and the refit
    trains for it; with ``select_folds`` > 1 it is chosen on k folds (:func:`_select_k_fold`).
    ``on_epoch`` receives a dict with phase ("select", "select fold i/k", "refit" or
    "precise-bn"), epoch, epochs (of that phase), and for training epochs loss, lr and, while
    selecting, val_accuracy and val_loss.

    With ``checkpoint`` the state is saved as training goes, and a checkpoint whose
    :attr:`~Checkpoint.state` was loaded is continued from where it stopped. ``stop`` is
    polled after every epoch; when it returns true the state is saved and
    :class:`TrainingInterrupted` raised. With ``teacher`` every training epoch (selection,
    folds, refit) minimises the distillation loss (:mod:`.distill`) instead of cross-entropy.
    """
    recipe.validate()
    if recipe.device == "cuda" and not torch.cuda.is_available():
        raise PaceEdgeError("--device cuda was asked for but torch sees no CUDA device")
    device = torch.device(recipe.device)
    ctl = _Control(checkpoint, stop, on_epoch)
    model: PACE | None = None
    if ctl.resumed.get("stage") == "refit":
        selection = _Selection(**ctl.resumed["selection"])
    elif recipe.select_folds > 1:
        selection = _select_k_fold(train, config, recipe, device, ctl, teacher)
    else:
        selection, model = _select_holdout(train, config, recipe, device, ctl, teacher)
    refit_epochs = 0
    if recipe.refit:
        model = _refit(train, config, recipe, device, selection, ctl, teacher)
        refit_epochs = selection.best_epoch
    assert model is not None  # without a refit the hold-out selection returns its model
    if recipe.precise_bn:
        xa, _ = _tensors(train, slice(None), device)
        precise_batchnorm(model, xa, on_chunk=lambda i, n: ctl.emit(
            {"phase": "precise-bn", "epoch": i, "epochs": n}))
    return FitResult(
        model=model.cpu().eval(),
        best_epoch=selection.best_epoch,
        val_accuracy=selection.val_accuracy,
        val_loss=selection.val_loss,
        epochs_run=selection.epochs_run,
        seconds=ctl.elapsed(),
        history=selection.history,
        split=selection.split,
        refit_epochs=refit_epochs,
        selection_seconds=selection.seconds,
    )


def _select_holdout(train: SpectralDataset, config: ModelConfig, recipe: Recipe,
                    device: torch.device, ctl: _Control,
                    teacher: Teacher | None = None) -> tuple[_Selection, PACE]:
    """Train on a stratified share of ``train``, validate on the rest after every epoch, keep
    the best epoch's weights."""
    train_idx, val_idx = stratified_split(train.y, recipe.val_fraction, recipe.seed,
                                          groups=train.groups, classes=train.classes)
    if len(val_idx) == 0 or len(train_idx) == 0:
        raise PaceEdgeError(
            f"{train.source}: too few spectra ({len(train)}) for a validation split of "
            f"{recipe.val_fraction:g}"
        )
    xt, yt = _tensors(train, train_idx, device)
    xv, yv = _tensors(train, val_idx, device)
    run = _Run(config, recipe, device, recipe.seed, teacher=teacher)
    best: tuple[float, float] = (-1.0, math.inf)
    best_state: dict[str, torch.Tensor] = {}
    best_epoch, stale, history, done = 0, 0, [], 0
    if ctl.resumed.get("stage") == "select":
        s = ctl.resumed
        run.restore(s["run"])
        best, best_state = (s["best"][0], s["best"][1]), s["best_state"]
        best_epoch, stale, history, done = s["best_epoch"], s["stale"], s["history"], s["epoch"]
    stopped = bool(recipe.patience and stale >= recipe.patience)
    for epoch in range(done + 1, recipe.epochs + 1):
        if stopped:
            break
        loss, lr = run.epoch(xt, yt)
        val_acc, val_loss = _evaluate(run.model, xv, yv)
        row = {"epoch": epoch, "loss": loss, "val_accuracy": val_acc, "val_loss": val_loss,
               "lr": lr}
        history.append(row)
        if (val_acc, -val_loss) > (best[0], -best[1]):
            best, best_epoch, stale = (val_acc, val_loss), epoch, 0
            best_state = copy.deepcopy(run.model.state_dict())
        else:
            stale += 1
        ctl.emit({"phase": "select", **row, "epochs": recipe.epochs, "best_epoch": best_epoch,
                  "best_val_accuracy": best[0]})
        stopped = bool(recipe.patience and stale >= recipe.patience)
        if epoch < recipe.epochs and not stopped:
            ctl.end_epoch("select", epoch, {
                "run": run.state(), "best": list(best), "best_state": best_state,
                "best_epoch": best_epoch, "stale": stale, "history": history,
            } if ctl.wants_state() else None)
    model = run.model
    model.load_state_dict(best_state)
    if recipe.select_window > 1:  # the refit only needs the epoch count
        best_epoch, best = smoothed_choice(history, recipe.select_window)
    selection = _Selection(best_epoch, best[0], best[1], len(history), history,
                           {"train": int(len(train_idx)), "validation": int(len(val_idx)),
                            **group_record(train.groups, [train_idx, val_idx])},
                           ctl.elapsed())
    return selection, model


def _refit(train: SpectralDataset, config: ModelConfig, recipe: Recipe, device: torch.device,
           selection: _Selection, ctl: _Control, teacher: Teacher | None = None) -> PACE:
    """Train on all of ``train`` for the selected number of epochs, the whole cosine schedule
    fitted into them (so the model ends annealed instead of being cut off at a high learning
    rate)."""
    epochs = selection.best_epoch
    xa, ya = _tensors(train, slice(None), device)
    refit = _Run(config, recipe, device, recipe.seed + REFIT_SEED_OFFSET, t_max=epochs,
                 teacher=teacher)
    done = 0
    if ctl.resumed.get("stage") == "refit" and ctl.resumed.get("run") is not None:
        refit.restore(ctl.resumed["run"])
        done = ctl.resumed["epoch"]
    else:  # the selection is finished: never redo it
        ctl.wants_state(force=True)
        ctl.end_epoch("refit", 0, {"run": None, "selection": selection.to_dict()})
    for epoch in range(done + 1, epochs + 1):
        loss, lr = refit.epoch(xa, ya)
        ctl.emit({"phase": "refit", "epoch": epoch, "loss": loss, "lr": lr, "epochs": epochs})
        if epoch < epochs:
            ctl.end_epoch("refit", epoch, {"run": refit.state(), "selection": selection.to_dict()}
                          if ctl.wants_state() else None)
    return refit.model


def _select_k_fold(train: SpectralDataset, config: ModelConfig, recipe: Recipe,
                   device: torch.device, ctl: _Control,
                   teacher: Teacher | None = None) -> _Selection:
    """Choose the epoch count on the mean validation curve of ``select_folds`` folds (each
    spectrum validates once); the refit then trains on everything for that many epochs.

    Every fold trains for ``epochs`` from its own seed; the choice is the epoch of highest
    mean validation accuracy (ties: lowest mean validation loss), smoothed by
    ``select_window`` when that is above 1.
    """
    k = recipe.select_folds
    folds = stratified_folds(train.y, k, recipe.seed, groups=train.groups,
                             classes=train.classes)
    acc = np.zeros((k, recipe.epochs))
    loss = np.zeros((k, recipe.epochs))
    first_fold, resumed_run, done = 0, None, 0
    if ctl.resumed.get("stage") == "fold":
        s = ctl.resumed
        acc, loss = np.array(s["acc"]), np.array(s["loss"])
        first_fold, resumed_run, done = s["fold"], s["run"], s["epoch"]
    for f in range(first_fold, k):
        train_idx, val_idx = folds[f]
        xt, yt = _tensors(train, train_idx, device)
        xv, yv = _tensors(train, val_idx, device)
        run = _Run(config, recipe, device, recipe.seed + f, teacher=teacher)
        start = 0
        if f == first_fold and resumed_run is not None:
            run.restore(resumed_run)
            start = done
        for epoch in range(start + 1, recipe.epochs + 1):
            train_loss, lr = run.epoch(xt, yt)
            acc[f, epoch - 1], loss[f, epoch - 1] = _evaluate(run.model, xv, yv)
            ctl.emit({"phase": f"select fold {f + 1}/{k}", "epoch": epoch,
                      "epochs": recipe.epochs, "loss": train_loss,
                      "val_accuracy": acc[f, epoch - 1], "val_loss": loss[f, epoch - 1],
                      "lr": lr})
            last = epoch == recipe.epochs
            if not (last and f == k - 1):
                ctl.end_epoch("fold", epoch, {
                    "fold": f + 1 if last else f, "run": None if last else run.state(),
                    "acc": acc.tolist(), "loss": loss.tolist(),
                } if ctl.wants_state(force=last) else None, label=f"select fold {f + 1}/{k}")
    history = [{"epoch": e + 1, "val_accuracy": float(acc[:, e].mean()),
                "val_loss": float(loss[:, e].mean()),
                "fold_val_accuracy": [float(a) for a in acc[:, e]]}
               for e in range(recipe.epochs)]
    best_epoch, (val_acc, val_loss) = smoothed_choice(history, recipe.select_window)
    return _Selection(best_epoch, val_acc, val_loss, recipe.epochs, history,
                      {"train": int(len(train)), "validation": int(len(train)), "folds": k,
                       **group_record(train.groups, [v for _, v in folds])},
                      ctl.elapsed())
