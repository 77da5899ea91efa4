"""``pace-edge rightsize`` as a library call: train the ladder, export and time every candidate,
choose, and write the frontier files.

Layout of the output folder::

    DIR/candidates/<name>/      one bundle per candidate (while training: its training state)
    DIR/teacher/                the distillation teacher: the largest size without the refit
    DIR/candidates.json         what each finished model was trained with (for reuse)
    DIR/exports/<name>/<target>-int8/
    DIR/chosen/                 the chosen candidate's bundle, an ordinary bundle
    DIR/frontier.json, DIR/frontier.png, DIR/report.md

Running again with the same data and recipe reuses every finished candidate and continues an
interrupted one from its training state; candidates trained with other settings are refused
(use another folder). The selection rule, the target and the latency settings may change
between runs: they use no training.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..bundle import WEIGHTS_FILE, Bundle, sha256_file
from ..data import SpectralDataset, load_dataset
from ..errors import PaceEdgeError
from ..preprocess import Pipeline
from ..train.distill import DistillSettings
from ..train.recipe import Recipe
from . import frontier
from .export_step import DEFAULT_QAT_EPOCHS
from .ladder import Candidate, Rung, candidates
from .record import CandidateRecord
from .select import (
    DEFAULT_MAX_DROP_PP,
    DEFAULT_STANDARD_ERRORS,
    Choice,
    under_budget,
    within_drop,
)

if TYPE_CHECKING:
    from ..model import ModelConfig
    from ..train.distill import Teacher

CANDIDATES = "candidates"
TEACHER = "teacher"  # the distillation teacher's folder and registry name
CANDIDATES_FILE = "candidates.json"
EXPORTS = "exports"
CHOSEN = "chosen"
BATCHES = (1, 64)

Progress = Callable[[], AbstractContextManager[Any]]  # entered value has .update(row)


@dataclass
class Plan:
    """Everything one rightsize run is asked to do."""

    data: Path
    out: Path
    rungs: list[Rung]  # smallest first; the last is the teacher
    recipe: Recipe
    pipeline: Pipeline
    target: str = "x86"
    max_drop_pp: float = DEFAULT_MAX_DROP_PP
    standard_errors: float = DEFAULT_STANDARD_ERRORS
    budget_ms: float | None = None
    distill: DistillSettings = field(default_factory=DistillSettings)
    eval: Path | None = None
    groups: Path | None = None
    teacher: Path | None = None  # the largest size already trained without refit (teacher)
    qat: int = DEFAULT_QAT_EPOCHS  # fine-tuning epochs for a build that misses the criterion
    iterations: int = 200
    warmup: int = 20
    threads: int | None = None


class Interrupted(Exception):
    """A stop was requested between two exports; what is finished is kept for the next run."""


@dataclass
class Outcome:
    records: list[CandidateRecord]
    choice: Choice
    files: list[Path]


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


class _Registry:
    """``candidates.json``: the settings each finished candidate was trained with."""

    def __init__(self, out: Path) -> None:
        self.path = out / CANDIDATES_FILE
        self.entries: dict[str, Any] = (json.loads(self.path.read_text())
                                        if self.path.is_file() else {})

    def finished(self, name: str, folder: Path, key: dict[str, Any]) -> bool:
        """Whether ``folder`` holds ``name`` trained with ``key`` (raise if with another)."""
        entry = self.entries.get(name)
        if entry is None or not (folder / WEIGHTS_FILE).is_file():
            return False
        if entry["key"] != key:
            changed = sorted(k for k in set(key) | set(entry["key"])
                             if key.get(k) != entry["key"].get(k))
            raise PaceEdgeError(
                f"{folder} was trained with other settings ({', '.join(changed)} differ): "
                f"run with another --out, or delete {folder} to train it again")
        if sha256_file(folder / WEIGHTS_FILE) != entry["weights_sha256"]:
            raise PaceEdgeError(f"{folder}: its weights changed since rightsize trained it; "
                                f"delete it to train it again")
        return True

    def add(self, name: str, folder: Path, key: dict[str, Any]) -> None:
        self.entries[name] = {"key": key, "weights_sha256": sha256_file(folder / WEIGHTS_FILE)}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.entries, indent=1, sort_keys=True) + "\n")
        tmp.replace(self.path)


def check_out(out: Path) -> None:
    """Refuse an ``--out`` that holds something other than a rightsize run."""
    if out.exists() and not out.is_dir():
        raise PaceEdgeError(f"--out {out} is a file")
    if out.is_dir() and any(out.iterdir()) and not (
            (out / CANDIDATES_FILE).is_file() or (out / CANDIDATES).is_dir()):
        raise PaceEdgeError(f"--out {out} is not empty and holds no rightsize run; choose a new "
                            f"folder")


def _check_teacher(bundle: Bundle, rung: Rung, recipe: Recipe, pipeline: Pipeline,
                   data: SpectralDataset) -> None:
    """A ``--teacher`` bundle must be the largest size trained with ``recipe`` (the plan's,
    without the refit), preprocessing and data, or the candidates' validation accuracies would
    not compare."""
    t = bundle.training
    problems = []
    if bundle.config != rung.config:
        problems.append(f"its architecture {bundle.config.to_dict()} is not {rung.name}'s")
    if Recipe.from_dict(t.get("recipe", {})) != recipe:
        problems.append("its training recipe differs")
    if bundle.preprocessing != pipeline:
        problems.append("its preprocessing differs")
    if bundle.classes != data.classes:
        problems.append(f"its classes {bundle.classes} differ from {data.classes}")
    recorded = t.get("data", {})
    if (recorded.get("spectra") != len(data)
            or recorded.get("class_counts") != data.class_counts()):
        problems.append(f"it was trained on other data ({recorded.get('spectra')} spectra)")
    if problems:
        raise PaceEdgeError(f"--teacher {bundle.path}: " + "; ".join(problems))


def _fit_split_teacher(plan: Plan, registry: _Registry, base_key: dict[str, Any], rung: Rung,
                       data: SpectralDataset, pipeline: Pipeline, log: Callable[[str], None],
                       progress: Progress | None, stop: Callable[[], bool] | None) -> Teacher:
    """The model the students learn from: the largest size trained with the recipe but without
    its refit, so it has never seen the validation spectra the candidates are chosen on. A
    refitted teacher passes them on through its soft targets, and its students then look better
    on validation than they are (measured on COV: +1.5 to +3.5 pp on validation, −0.4 to −6 pp
    on test). ``plan.teacher``, if given, must be that model (``train --no-refit``)."""
    from ..train.distill import Teacher

    recipe = replace(plan.recipe, refit=False)
    if plan.teacher is not None:  # checked before any training (rightsize)
        log(f"teacher ({rung.name}, no refit): the given {plan.teacher}")
        return Teacher(Bundle.load(plan.teacher), plan.distill, device=recipe.device)
    if not plan.recipe.refit:  # the largest candidate is that model
        return Teacher(Bundle.load(plan.out / CANDIDATES / rung.name), plan.distill,
                       device=recipe.device)
    where = plan.out / TEACHER
    key = {**base_key, "recipe": recipe.to_dict(), "model": rung.config.to_dict(),
           "distillation": None}
    head = f"teacher ({rung.name}, no refit)"
    if registry.finished(TEACHER, where, key):
        log(f"{head}: trained before, reused")
    else:
        _train(registry, TEACHER, where, key, rung.config, recipe, data, pipeline,
               f"{head}: training", log, progress, stop)
    return Teacher(Bundle.load(where), plan.distill, device=recipe.device)


def _train(registry: _Registry, name: str, where: Path, key: dict[str, Any],
           config: ModelConfig, recipe: Recipe, data: SpectralDataset, pipeline: Pipeline,
           what: str,
           log: Callable[[str], None], progress: Progress | None,
           stop: Callable[[], bool] | None, teacher: Teacher | None = None) -> None:
    """Train ``name`` into ``where`` (continuing its saved state, if any) and register it."""
    from ..train.bundle_training import train_bundle
    from ..train.checkpoint import Checkpoint

    checkpoint = Checkpoint(where, {"rightsize": key})
    resumed = checkpoint.exists()
    if resumed:
        checkpoint.load()
    log(what + (" (continuing from its saved state)" if resumed else ""))
    with (progress() if progress is not None else nullcontext()) as bar:
        bundle, _ = train_bundle(data, config, recipe, pipeline,
                                 on_epoch=bar.update if bar is not None else None,
                                 checkpoint=checkpoint, stop=stop, teacher=teacher)
    bundle.save(where)
    checkpoint.remove()
    registry.add(name, where, key)


def rightsize(
    plan: Plan,
    *,
    log: Callable[[str], None] = lambda message: None,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
) -> Outcome:
    """Run ``plan``: train (or reuse) every candidate, export and time each, choose, write the
    files. ``log`` gets one line per step and candidate; ``progress()`` gives a context manager
    whose ``update(row)`` receives each training epoch. A stop request (``stop``) ends training
    after the current epoch with its state saved
    (:class:`~pace_edge.train.checkpoint.TrainingInterrupted`); running the plan again
    continues."""
    from ..train.checkpoint import data_digest

    plan.recipe.validate()
    plan.distill.validate()
    check_out(plan.out)
    data = load_dataset(plan.data, split="train", groups=plan.groups)
    held_out = load_dataset(plan.eval, split="test") if plan.eval else None
    pipeline = plan.pipeline.anchored(data.axis)
    x, _ = pipeline.apply(data.x, data.axis)
    base_key = {
        "recipe": plan.recipe.to_dict(),
        "preprocessing": pipeline.to_list(),
        "data_sha256": data_digest(data.x, data.y),
        "groups_sha256": None if data.groups is None else _digest(data.groups.astype(str)),
    }
    if plan.teacher is not None:  # a wrong one is refused before any training
        _check_teacher(Bundle.load(plan.teacher), plan.rungs[-1],
                       replace(plan.recipe, refit=False), pipeline, data)
    plan.out.mkdir(parents=True, exist_ok=True)
    registry = _Registry(plan.out)
    folder = plan.out / CANDIDATES
    todo = candidates(plan.rungs)
    teacher_rung = plan.rungs[-1]
    order = ([c for c in todo if c.rung == teacher_rung]
             + [c for c in todo if c.rung != teacher_rung])
    teacher: Teacher | None = None
    records: list[CandidateRecord] = []
    for i, cand in enumerate(order, start=1):
        where = folder / cand.name
        key = {**base_key, "model": cand.rung.config.to_dict(), "distillation": None}
        if cand.distilled and teacher is None:
            teacher = _fit_split_teacher(plan, registry, base_key, teacher_rung, data,
                                         pipeline, log, progress, stop)
        if cand.distilled:
            assert teacher is not None
            key["distillation"] = {"teacher_weights_sha256":
                                   teacher.record()["teacher"]["weights_sha256"],
                                   "temperature": plan.distill.temperature,
                                   "alpha": plan.distill.alpha}
        head = f"[{i}/{len(order)}] {cand.name}"
        reused = registry.finished(cand.name, where, key)
        if reused:
            log(f"{head}: trained before, reused")
        else:
            t = teacher if cand.distilled else None
            _train(registry, cand.name, where, key, cand.rung.config, plan.recipe, data,
                   pipeline, f"{head}: training"
                   + (f", distilled from {teacher_rung.name}" if t else ""),
                   log, progress, stop, teacher=t)
        bundle = Bundle.load(where)
        records.append(_record(cand, bundle, where, x.shape[1], held_out, reused))
        log(f"{head}: validation {records[-1].val_accuracy:.2%}"
            + (f", test {records[-1].test_accuracy:.2%} (measured only)"
               if records[-1].test_accuracy is not None else ""))
    records.sort(key=lambda r: (r.multiply_adds, r.distilled))
    runners = _export_all(plan, records, held_out, log, stop)
    rows = pipeline.apply(data.x[:64], data.axis)[0].astype(np.float32)
    if runners:
        log(f"timing {len({k[0] for k in runners})} INT8 builds at batch "
            f"{' and '.join(map(str, BATCHES))} with {_threads_text(plan.threads)}, "
            f"interleaved, {plan.iterations} calls each")
    from .measure import time_runners

    timed = time_runners({_key(*k): v for k, v in runners.items()}, rows, BATCHES,
                         plan.iterations, plan.warmup)
    for r in records:
        r.latency = _fastest(r.name, timed, runners)
        r.timings = {_label(t): timed[_key(n, t)] for (n, t) in runners if n == r.name}
    choice = (under_budget(records, plan.budget_ms) if plan.budget_ms is not None
              else within_drop(records, plan.max_drop_pp, plan.standard_errors))
    files = _write(plan, records, choice, data, pipeline, runners)
    return Outcome(records, choice, files)


def thread_choices(threads: int | None) -> tuple[int | None, ...]:
    """The thread settings every INT8 build is timed with: the given one, or the runtime's
    default and one thread. A small network at batch 1 has too little work per layer to share
    between cores (on COV's 2-core machine the small preset's INT8 build took 0.097-0.107 ms
    on one thread and 0.109-0.127 ms on two, the paper preset's 0.53-0.55 and 0.33-0.35 ms), so
    each build is reported at its faster setting, as it would be deployed."""
    if threads is not None:
        return (threads,)
    return (None, 1) if (os.cpu_count() or 1) > 1 else (None,)


def _threads_text(threads: int | None) -> str:
    if threads is not None:
        return f"{threads} thread(s)"
    return "the runtime's default threads and 1 thread (the faster kept per batch)"


def _label(threads: int | None) -> str:
    return "default" if threads is None else str(threads)


def _key(name: str, threads: int | None) -> str:
    return f"{name}@{_label(threads)}"


def _fastest(name: str, timed: dict[str, dict[str, dict[str, Any]]],
             runners: dict[tuple[str, int | None], Any]) -> dict[str, dict[str, Any]]:
    """Per batch size, the summary of ``name``'s faster thread setting (lower p50), with the
    thread count the runtime reported for it."""
    best: dict[str, dict[str, Any]] = {}
    for (n, threads), runner in runners.items():
        if n != name:
            continue
        for batch, summary in timed.get(_key(n, threads), {}).items():
            if batch not in best or summary["p50_ms"] < best[batch]["p50_ms"]:
                best[batch] = {**summary, "threads": runner.describe().get("threads", threads)}
    return best


def _record(cand: Candidate, bundle: Bundle, where: Path, length: int,
            held_out: SpectralDataset | None, reused: bool) -> CandidateRecord:
    from .measure import bundle_accuracy

    cost = cand.rung.cost(length)
    t = bundle.training
    return CandidateRecord(
        name=cand.name, size=cand.rung.name, distilled=cand.distilled,
        model=bundle.config.to_dict(), multiply_adds=cost.multiply_adds,
        parameters=cost.parameters, int8_weight_bytes=cost.int8_weight_bytes,
        val_accuracy=float(t["metrics"]["val_accuracy"]),
        val_spectra=int(t["data"]["split"].get("validation", 0)),
        bundle=str(where), train_seconds=float(t["metrics"].get("seconds", 0.0)),
        test_accuracy=None if held_out is None else bundle_accuracy(bundle, held_out),
        reused=reused)


def _export_all(plan: Plan, records: Sequence[CandidateRecord],
                held_out: SpectralDataset | None, log: Callable[[str], None],
                stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Export every candidate at INT8 (reusing matching exports); its runner if it runs here.
    A stop request is honoured between two exports (:class:`Interrupted`)."""
    from ..benchmark.builds import model_size_mb, open_runner
    from .export_step import export_int8
    from .measure import runner_accuracy

    runners: dict[tuple[str, int | None], Any] = {}
    for i, r in enumerate(records, start=1):
        if stop is not None and stop():
            raise Interrupted(f"stopped before exporting {r.name}")
        build, r.export_qat = export_int8(Path(r.bundle), plan.target,
                                          plan.out / EXPORTS / r.name, plan.data, plan.qat)
        r.export_status, r.export_reason = build.status, build.reason
        r.export = str(build.path) if build.path is not None else None
        head = (f"export [{i}/{len(records)}] {r.name} {plan.target}:int8"
                + (f" (post-training INT8 missed the criterion; {r.export_qat} epochs of "
                   f"quantisation-aware fine-tuning)" if r.export_qat else ""))
        if not build.runnable:
            log(f"{head}: {build.status_text()}")
            continue
        try:
            opened = {t: open_runner(build, t) for t in thread_choices(plan.threads)}
        except PaceEdgeError as exc:
            r.export_status, r.export_reason = "exported, cannot run here", str(exc)
            log(f"{head}: exported, cannot run here ({exc})")
            continue
        runner = next(iter(opened.values()))
        size = model_size_mb(runner)
        r.int8_bytes = None if size is None else int(round(size * 1e6))
        if held_out is not None:
            r.int8_test_accuracy = runner_accuracy(runner, held_out)
        runners.update({(r.name, t): opened[t] for t in opened})
        log(f"{head}: {'reused' if build.reused else 'exported'} ({build.status_text()})")
    return runners


def _write(plan: Plan, records: list[CandidateRecord], choice: Choice, data: SpectralDataset,
           pipeline: Pipeline, runners: dict[tuple[str, int | None], Any]) -> list[Path]:
    out = plan.out
    chosen_dir = out / CHOSEN
    if chosen_dir.exists():
        shutil.rmtree(chosen_dir)
    if choice.chosen is not None:
        shutil.copytree(choice.chosen.bundle, chosen_dir)
    first = next(iter(runners.values()), None)
    teacher = next((r for r in records if r.size == plan.rungs[-1].name and not r.distilled),
                   None)
    split = next((r.val_spectra for r in records), 0)
    context = {
        "data": str(plan.data), "out": str(out), "spectra": len(data),
        "validation": f"{split} spectra" + (", whole groups" if data.groups is not None
                                            else ""),
        "group_aware": data.groups is not None,
        "target": plan.target, "precision": "int8",
        "backend": getattr(first, "name", None) if first is not None else None,
        "threads": plan.threads, "thread_choices": list(thread_choices(plan.threads)),
        "iterations": plan.iterations, "batches": list(BATCHES),
        "max_drop_pp": plan.max_drop_pp, "budget_ms": plan.budget_ms,
        "standard_errors": plan.standard_errors, "qat": plan.qat,
        "recipe": plan.recipe.to_dict(), "preprocessing": plan.pipeline.to_list(),
        "teacher": teacher.name if teacher is not None else None,
        "temperature": plan.distill.temperature, "alpha": plan.distill.alpha,
        "eval": str(plan.eval) if plan.eval else None,
    }
    files = [frontier.write_json(out / frontier.JSON_FILE, records, choice, context),
             frontier.write_report(out / frontier.REPORT_FILE, records, choice, context)]
    png = frontier.plot(out / frontier.PNG_FILE, records, choice)
    if png is not None:
        files.append(png)
    if choice.chosen is not None:
        files.append(chosen_dir)
    return files


__all__ = ["BATCHES", "CANDIDATES", "CANDIDATES_FILE", "CHOSEN", "EXPORTS", "Interrupted",
           "Outcome", "Plan", "check_out", "rightsize", "thread_choices"]
