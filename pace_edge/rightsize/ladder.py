"""The ladder of architectures ``pace-edge rightsize`` trains, and its candidates.

A rung is a named architecture: a preset (``tiny``, ``small``, ``medium``, ``paper``) or
``DIMxDEPTH`` (``64x2``), with the paper's kernel, patch and pool. The largest rung (most
multiply-adds) is trained with the recipe and, without the recipe's refit, once more as the
teacher; every other rung is trained twice, with the recipe and distilled from the teacher, so
each gives two candidates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import PaceEdgeError
from ..model import PRESETS, ModelConfig, preset
from ..model.cost import ModelCost, model_cost

DEFAULT_SIZES = ("tiny", "small", "medium", "paper")
_SHAPE = re.compile(r"^(\d+)x(\d+)$")


@dataclass(frozen=True)
class Rung:
    """One architecture of the ladder."""

    name: str
    config: ModelConfig

    def cost(self, length: int) -> ModelCost:
        return model_cost(self.config, length)


@dataclass(frozen=True)
class Candidate:
    """One model to train: a rung, plain or distilled from the teacher."""

    rung: Rung
    distilled: bool

    @property
    def name(self) -> str:
        """``small`` or ``small-distilled``: the candidate's folder name."""
        return self.rung.name + ("-distilled" if self.distilled else "")


def parse_rung(text: str, num_classes: int) -> Rung:
    """``small`` (a preset) or ``64x2`` (dim x depth, the paper's kernel and patch)."""
    name = text.strip().lower()
    if name in PRESETS:
        return Rung(name, preset(name, num_classes))
    match = _SHAPE.match(name)
    if match is None:
        raise PaceEdgeError(f"unknown size {text!r}: give a preset ({', '.join(PRESETS)}) or "
                            f"DIMxDEPTH such as 64x2")
    dim, depth = int(match[1]), int(match[2])
    if dim < 1 or depth < 1:
        raise PaceEdgeError(f"size {text!r}: dim and depth must be positive")
    return Rung(name, preset("paper", num_classes, dim=dim, depth=depth))


def parse_ladder(text: str | None, num_classes: int, length: int) -> list[Rung]:
    """The rungs of ``--sizes`` (comma-separated; default :data:`DEFAULT_SIZES`), smallest
    first by multiply-adds; at least two, no architecture twice."""
    items = [t for t in (text.split(",") if text else DEFAULT_SIZES) if t.strip()]
    rungs = [parse_rung(t, num_classes) for t in items]
    seen: dict[ModelConfig, str] = {}
    for r in rungs:
        if r.config in seen:
            raise PaceEdgeError(f"sizes {seen[r.config]!r} and {r.name!r} are the same "
                                f"architecture")
        seen[r.config] = r.name
    if len(rungs) < 2:
        raise PaceEdgeError("--sizes needs at least two sizes: the largest is the teacher of "
                            "the others")
    return sorted(rungs, key=lambda r: (r.cost(length).multiply_adds, r.name))


def candidates(rungs: list[Rung]) -> list[Candidate]:
    """Every rung with the recipe, then every rung but the largest (the teacher) distilled.
    ``rungs`` smallest first."""
    plain = [Candidate(r, distilled=False) for r in rungs]
    return plain + [Candidate(r, distilled=True) for r in rungs[:-1]]


__all__ = ["DEFAULT_SIZES", "Candidate", "Rung", "candidates", "parse_ladder", "parse_rung"]
