"""Exact, vectorised verification and identification metrics (pure functions)."""

from .bootstrap import BootstrapResult, BootstrapSpec, bootstrap_ci, paired_comparison
from .folds import FoldAccuracy, accuracy_at_thresholds, fold_accuracy
from .identification import cmc, mate_ranks, tpir_at_fpir
from .roc import Roc, auc, eer, roc_curve, roc_summary, tar_at_far

__all__ = [
    "BootstrapResult", "BootstrapSpec", "bootstrap_ci", "paired_comparison",
    "FoldAccuracy", "accuracy_at_thresholds", "fold_accuracy",
    "cmc", "mate_ranks", "tpir_at_fpir",
    "Roc", "auc", "eer", "roc_curve", "roc_summary", "tar_at_far",
]
