"""Classification metrics from predicted and true labels (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .groups import GroupMetrics


@dataclass
class Metrics:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix (rows = true).

    Built by :meth:`from_labels`, it keeps the per-spectrum labels (``y_true``, ``y_pred``)
    for :meth:`by_group`.
    """

    classes: list[str]
    confusion: np.ndarray
    y_true: np.ndarray | None = field(default=None, repr=False, compare=False)
    y_pred: np.ndarray | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_labels(cls, y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> Metrics:
        k = len(classes)
        y_true = np.asarray(y_true, dtype=np.int64)
        y_pred = np.asarray(y_pred, dtype=np.int64)
        if y_true.shape != y_pred.shape:
            raise ValueError(f"{y_true.size} true labels but {y_pred.size} predictions")
        confusion = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)
        return cls(list(classes), confusion, y_true, y_pred)

    def by_group(self, groups: np.ndarray) -> GroupMetrics:
        """Per-sample verdicts by majority vote over each group's spectra."""
        if self.y_true is None or self.y_pred is None:
            raise ValueError("per-group metrics need Metrics built from labels")
        return GroupMetrics.from_labels(self.y_true, self.y_pred, groups, self.classes)

    @property
    def total(self) -> int:
        return int(self.confusion.sum())

    @property
    def correct(self) -> int:
        return int(np.trace(self.confusion))

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def per_class(self) -> list[dict[str, Any]]:
        """Precision, recall, F1 and support for each class (0 where undefined)."""
        c = self.confusion
        tp = np.diag(c).astype(float)
        predicted, support = c.sum(axis=0), c.sum(axis=1)
        rows = []
        for i, name in enumerate(self.classes):
            p = tp[i] / predicted[i] if predicted[i] else 0.0
            r = tp[i] / support[i] if support[i] else 0.0
            f1 = 2 * p * r / (p + r) if p + r else 0.0
            rows.append({"class": name, "precision": p, "recall": r, "f1": f1,
                         "support": int(support[i])})
        return rows

    def macro_f1(self) -> float:
        return float(np.mean([r["f1"] for r in self.per_class()]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "correct": self.correct,
            "total": self.total,
            "macro_f1": self.macro_f1(),
            "per_class": self.per_class(),
            "classes": self.classes,
            "confusion": self.confusion.tolist(),
        }

    def to_text(self) -> str:
        """A plain-text report: accuracy, per-class table, confusion matrix."""
        width = max(12, *(len(c) for c in self.classes)) + 2
        lines = [f"accuracy {self.accuracy:.2%} ({self.correct}/{self.total}), "
                 f"macro F1 {self.macro_f1():.3f}", ""]
        lines.append(f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
        for r in self.per_class():
            lines.append(f"{r['class']:<{width}}{r['precision']:>10.3f}{r['recall']:>10.3f}"
                         f"{r['f1']:>10.3f}{r['support']:>9d}")
        lines += ["", "confusion matrix (rows: true, columns: predicted)"]
        col = max(8, *(len(c) for c in self.classes)) + 2
        lines.append(" " * width + "".join(f"{c:>{col}}" for c in self.classes))
        for name, row in zip(self.classes, self.confusion, strict=True):
            lines.append(f"{name:<{width}}" + "".join(f"{v:>{col}d}" for v in row))
        return "\n".join(lines)


def save_confusion_png(metrics: Metrics, path: str, title: str = "") -> None:
    """Write the confusion matrix as a PNG heat map with counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(metrics.classes)
    fig, ax = plt.subplots(figsize=(1.2 * k + 2.5, 1.0 * k + 2))
    ax.imshow(metrics.confusion, cmap="Blues")
    ax.set_xticks(range(k), metrics.classes, rotation=30, ha="right")
    ax.set_yticks(range(k), metrics.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    vmax = metrics.confusion.max() or 1
    for i in range(k):
        for j in range(k):
            v = metrics.confusion[i, j]
            ax.text(j, i, str(v), ha="center", va="center",
                    color="white" if v > vmax / 2 else "black")
    ax.set_title(title or f"accuracy {metrics.accuracy:.1%} ({metrics.correct}/{metrics.total})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
