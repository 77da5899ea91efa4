"""Right-sizing: train a ladder of PACE sizes (plain and distilled from the largest), export
and time each at INT8, and recommend the smallest that keeps the accuracy
(:func:`~pace_edge.rightsize.search.rightsize`)."""

from .export_step import DEFAULT_QAT_EPOCHS
from .ladder import DEFAULT_SIZES, Candidate, Rung, candidates, parse_ladder, parse_rung
from .record import CandidateRecord
from .select import (
    DEFAULT_MAX_DROP_PP,
    DEFAULT_STANDARD_ERRORS,
    Choice,
    standard_error,
    under_budget,
    within_drop,
)

__all__ = ["DEFAULT_MAX_DROP_PP", "DEFAULT_QAT_EPOCHS", "DEFAULT_SIZES",
           "DEFAULT_STANDARD_ERRORS", "Candidate", "CandidateRecord", "Choice", "Rung",
           "candidates", "parse_ladder", "parse_rung", "standard_error", "under_budget",
           "within_drop"]
