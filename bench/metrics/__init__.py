"""Exact, vectorised verification and identification metrics (pure functions)."""

from .bootstrap import (
    BootstrapResult,
    BootstrapSpec,
    Decisions,
    as_decisions,
    bootstrap_ci,
    paired_comparison,
)
from .folds import FoldAccuracy, accuracy_at_thresholds, fold_accuracy
from .ident_bootstrap import identification_ci, paired_identification
from .identification import (
                             ProbeScores,
                             cmc,
                             cmc_rates,
                             mate_ranks,
                             probe_scores,
                             tpir_at_fpir,
                             tpir_rates,
)
from .roc import Roc, auc, eer, roc_curve, roc_summary, tar_at_far

__all__ = [
    "BootstrapResult", "BootstrapSpec", "Decisions", "as_decisions", "bootstrap_ci", "paired_comparison",
    "FoldAccuracy", "accuracy_at_thresholds", "fold_accuracy",
    "ProbeScores", "cmc", "cmc_rates", "identification_ci", "mate_ranks", "paired_identification",
    "probe_scores",
    "tpir_at_fpir", "tpir_rates",
    "Roc", "auc", "eer", "roc_curve", "roc_summary", "tar_at_far",
]
