"""Per-sample accuracy: one verdict per group (sample or patient) by majority vote.

A sample measured 25 times is one diagnosis, not 25. Each group's verdict is the class most
of its spectra were predicted as; a tie between classes gives no verdict (the sample counts as
not correct, and the tied classes are reported) rather than a coin toss. A group's true class
is the class of its spectra; a group whose spectra carry different labels takes the most
common one and is flagged ``mixed_labels``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class GroupVote:
    """One group's spectra, their votes and the verdict (``None`` on a tie)."""

    group: str
    true: str
    spectra: int
    votes: dict[str, int]
    verdict: str | None
    tied: list[str]
    mixed_labels: bool = False

    @property
    def correct(self) -> bool:
        return self.verdict == self.true

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "true": self.true, "spectra": self.spectra,
                "votes": self.votes, "verdict": self.verdict, "tied": self.tied,
                "correct": self.correct, "mixed_labels": self.mixed_labels}


def majority(labels: list[str]) -> tuple[str | None, list[str], dict[str, int]]:
    """``(winner, tied, counts)``: the most common label, or ``None`` and the tied labels."""
    counts = Counter(labels)
    top = max(counts.values())
    leaders = sorted(c for c, n in counts.items() if n == top)
    return (leaders[0] if len(leaders) == 1 else None), (leaders if len(leaders) > 1 else []), \
        dict(counts.most_common())


@dataclass
class GroupMetrics:
    """Majority-vote verdicts of every group, in the order groups first appear."""

    classes: list[str]
    votes: list[GroupVote]

    @classmethod
    def from_labels(cls, y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray,
                    classes: list[str]) -> GroupMetrics:
        """Vote per group over predicted class indices ``y_pred`` (true ones ``y_true``)."""
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        groups = np.asarray(groups)
        if not y_true.shape == y_pred.shape == groups.shape:
            raise ValueError(f"{y_true.size} labels, {y_pred.size} predictions and "
                             f"{groups.size} group ids")
        names, first, code = np.unique(groups, return_index=True, return_inverse=True)
        votes = []
        for g in np.argsort(first, kind="stable"):
            members = np.flatnonzero(code == g)
            truth, truth_tied, truth_counts = majority([classes[i] for i in y_true[members]])
            verdict, tied, counts = majority([classes[i] for i in y_pred[members]])
            votes.append(GroupVote(
                group=str(names[g]), true=truth if truth is not None else truth_tied[0],
                spectra=int(members.size), votes=counts, verdict=verdict, tied=tied,
                mixed_labels=len(truth_counts) > 1))
        return cls(list(classes), votes)

    @property
    def total(self) -> int:
        return len(self.votes)

    @property
    def correct(self) -> int:
        return sum(v.correct for v in self.votes)

    @property
    def ties(self) -> int:
        return sum(bool(v.tied) for v in self.votes)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def per_class(self) -> list[dict[str, Any]]:
        """Samples and correct verdicts per true class."""
        rows = []
        for name in self.classes:
            mine = [v for v in self.votes if v.true == name]
            right = sum(v.correct for v in mine)
            rows.append({"class": name, "samples": len(mine), "correct": right,
                         "accuracy": right / len(mine) if mine else 0.0})
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"rule": "majority vote of each group's spectra; a tie gives no verdict and "
                        "counts as not correct",
                "accuracy": self.accuracy, "correct": self.correct, "total": self.total,
                "ties": self.ties, "mixed_labels": sum(v.mixed_labels for v in self.votes),
                "per_class": self.per_class(), "groups": [v.to_dict() for v in self.votes]}

    def to_text(self) -> str:
        """Per-sample accuracy, per class, then every sample the vote got wrong or tied."""
        lines = [f"per sample (majority vote over each sample's spectra): accuracy "
                 f"{self.accuracy:.2%} ({self.correct}/{self.total} samples)"]
        if self.ties:
            lines.append(f"{self.ties} sample(s) tied between classes: no verdict, counted as "
                         f"not correct")
        mixed = sum(v.mixed_labels for v in self.votes)
        if mixed:
            lines.append(f"{mixed} sample(s) hold spectra of several classes: their true class "
                         f"is the most common label")
        width = max(12, *(len(c) for c in self.classes)) + 2
        lines.append(f"{'class':<{width}}{'samples':>9}{'correct':>9}{'accuracy':>10}")
        for r in self.per_class():
            lines.append(f"{r['class']:<{width}}{r['samples']:>9d}{r['correct']:>9d}"
                         f"{r['accuracy']:>10.2%}")
        wrong = [v for v in self.votes if not v.correct]
        if wrong:
            lines.append("samples not correct (votes per class):")
            for v in wrong:
                verdict = f"tie {' = '.join(v.tied)}" if v.tied else v.verdict
                votes = ", ".join(f"{c} {n}" for c, n in v.votes.items())
                lines.append(f"  {v.group}: true {v.true}, verdict {verdict} ({votes})")
        return "\n".join(lines)
