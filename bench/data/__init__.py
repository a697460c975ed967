"""The data model shared by readers, runner and training (see :mod:`bench.data.samples`)."""

from .evalset import EvalSet
from .samples import (
                      COMPARISON_COLUMNS,
                      SAMPLE_COLUMNS,
                      YAW_METADATA,
                      YAW_UNKNOWN,
                      SampleSet,
                      check_comparisons,
                      check_samples,
                      new_comparisons,
                      new_samples,
                      unique_images,
)
from .skipped import SkippedRows

__all__ = [
    "COMPARISON_COLUMNS", "SAMPLE_COLUMNS", "YAW_METADATA", "YAW_UNKNOWN", "EvalSet",
    "SampleSet", "SkippedRows", "check_comparisons", "check_samples", "new_comparisons",
    "new_samples", "unique_images",
]
