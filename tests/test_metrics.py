"""Accuracy, per-class scores and the confusion matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pace_edge.evaluate import Metrics, save_confusion_png


def test_metrics_by_hand() -> None:
    y = np.array([0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 1, 1, 2, 2])
    m = Metrics.from_labels(y, p, ["a", "b", "c"])
    np.testing.assert_array_equal(m.confusion, [[2, 1, 0], [0, 1, 1], [0, 0, 1]])
    assert m.accuracy == pytest.approx(4 / 6)
    rows = {r["class"]: r for r in m.per_class()}
    assert rows["a"]["precision"] == 1.0 and rows["a"]["recall"] == pytest.approx(2 / 3)
    assert rows["b"]["precision"] == pytest.approx(0.5) and rows["b"]["support"] == 2
    assert rows["c"]["f1"] == pytest.approx(2 * 0.5 * 1 / 1.5)
    text = m.to_text()
    assert "accuracy 66.67% (4/6)" in text and "confusion matrix" in text


def test_empty_class_gives_zero_not_nan() -> None:
    m = Metrics.from_labels(np.array([0, 0]), np.array([0, 0]), ["a", "b"])
    assert all(np.isfinite([r["f1"] for r in m.per_class()]))
    assert m.per_class()[1]["precision"] == 0.0


def test_confusion_png(tmp_path: Path) -> None:
    m = Metrics.from_labels(np.array([0, 1, 1]), np.array([0, 1, 0]), ["x", "y"])
    out = tmp_path / "c.png"
    save_confusion_png(m, str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
