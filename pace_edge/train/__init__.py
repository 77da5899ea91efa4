"""Training: recipe, augmentations, the fit loop, and producing a bundle."""

from .recipe import Recipe

__all__ = ["Recipe"]
