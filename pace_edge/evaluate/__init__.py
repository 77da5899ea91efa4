"""Evaluation and prediction with a trained bundle."""

from .groups import GroupMetrics
from .metrics import Metrics, save_confusion_png

__all__ = ["GroupMetrics", "Metrics", "save_confusion_png"]
