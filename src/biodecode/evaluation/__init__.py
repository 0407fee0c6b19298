"""Evaluation: leakage-free protocols, metrics, and reports."""

from .metrics import chance_level, compute_metrics, summarize
from .protocols import (PROTOCOLS, Fold, LeakageError, check_fold, describe_scoring, inner_validation, make_folds,
                        scored_windows)

__all__ = ["PROTOCOLS", "Fold", "LeakageError", "chance_level", "check_fold", "compute_metrics", "describe_scoring",
           "inner_validation", "make_folds", "scored_windows", "summarize"]
