"""Evaluation and prediction with a trained bundle."""

from .metrics import Metrics, save_confusion_png

__all__ = ["Metrics", "save_confusion_png"]
