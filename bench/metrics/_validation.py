"""Input checks shared by every metric (scikit-learn style: validate at the boundary)."""

from __future__ import annotations

import numpy as np


def check_scores_labels(scores, labels, weights=None, *, need_both_classes: bool = True):
    """Return float64 scores, bool labels and float64 weights (or None), all shape (n,).

    Raises ValueError on shape mismatch, NaN/inf scores, labels outside {0, 1} and, unless
    ``need_both_classes`` is False, a single class.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    if s.ndim != 1 or y.ndim != 1 or s.shape != y.shape:
        raise ValueError(f"scores and labels must be 1-D of equal length, got {s.shape} and {y.shape}")
    if s.size == 0:
        raise ValueError("no scores")
    if not np.all(np.isfinite(s)):
        bad = int(np.flatnonzero(~np.isfinite(s))[0])
        raise ValueError(f"scores must be finite; element {bad} is {s[bad]}")
    if y.dtype != bool:
        uniq = np.unique(y)
        if not np.all(np.isin(uniq, (0, 1))):
            raise ValueError(f"labels must be 0/1 or bool, found {uniq[~np.isin(uniq, (0, 1))][:5]}")
        y = y.astype(bool)
    if need_both_classes and (y.all() or not y.any()):
        raise ValueError("labels hold a single class: a ROC needs genuine and impostor pairs")
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != s.shape:
            raise ValueError(f"weights shape {w.shape} != scores shape {s.shape}")
        if np.any(w < 0) or not np.all(np.isfinite(w)):
            raise ValueError("weights must be finite and non-negative")
    return s, y, w


def check_targets(targets, name: str = "far") -> np.ndarray:
    t = np.atleast_1d(np.asarray(targets, dtype=np.float64))
    if t.ndim != 1 or np.any(~np.isfinite(t)) or np.any(t < 0) or np.any(t > 1):
        raise ValueError(f"{name} targets must be in [0, 1], got {targets!r}")
    return t
