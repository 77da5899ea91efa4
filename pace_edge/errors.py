"""Error types shared by every stage.

A :class:`PaceEdgeError` is a *user* error (bad file, bad option, tampered bundle): the CLI
prints its message on one line and exits non-zero, without a traceback.
"""

from __future__ import annotations


class PaceEdgeError(Exception):
    """An error caused by the user's input, reported as one clear line."""


class DataError(PaceEdgeError):
    """Spectra or labels that cannot be used (ragged, NaN, bad axis, unreadable file...)."""


class BundleError(PaceEdgeError):
    """A model bundle that is missing files, malformed, or fails its integrity check."""
