"""The data model shared by readers, runner and training (see :mod:`bench.data.samples`).

Names load on first use, so that modules needing only a constant (protocol files need the
yaw-bin rules) do not import pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EvalSet": "evalset", "SkippedRows": "skipped", "COMPARISON_COLUMNS": "samples",
    "SAMPLE_COLUMNS": "samples", "YAW_METADATA": "samples", "YAW_UNKNOWN": "samples",
    "SampleSet": "samples", "check_comparisons": "samples", "check_samples": "samples",
    "new_comparisons": "samples", "new_samples": "samples", "unique_images": "samples",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bench.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
