"""k-fold verification accuracy with given fold ids (CFP's official splits, LFW-style).

For each fold, the threshold maximising accuracy on the *other* folds is found by an exact
search over the sorted training scores, then applied to the held-out fold. One global sort
serves every fold: each fold's training counts are the totals minus the fold's own counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dtypes import index_dtype
from ._validation import check_scores_labels
from .roc import sorted_pairs


@dataclass(frozen=True)
class FoldAccuracy:
    """``folds``: (K,) fold ids; ``accuracy``/``thresholds``/``train_accuracy``: (K,).

    ``std`` is the population standard deviation over folds (ddof=0, as CFP and insightface
    report it). A pair is accepted as genuine when ``score >= threshold``.
    """

    folds: np.ndarray
    accuracy: np.ndarray
    thresholds: np.ndarray
    train_accuracy: np.ndarray
    mean: float
    std: float


def fold_accuracy(scores, labels, folds) -> FoldAccuracy:
    """``scores``, ``labels``, ``folds``: (n,). Needs at least two folds."""
    s, y, _ = check_scores_labels(scores, labels)
    f = np.asarray(folds)
    if f.shape != s.shape:
        raise ValueError(f"folds shape {f.shape} != scores shape {s.shape}")
    fold_ids, fidx = np.unique(f, return_inverse=True)
    k = fold_ids.size
    if k < 2:
        raise ValueError("fold accuracy needs at least two folds")

    fidx = fidx.astype(np.min_scalar_type(k - 1))
    # Counts fit int32 below 2^31 pairs: every (T,) array below is half the size
    count = index_dtype(s.size)
    order, last = sorted_pairs(s, y)
    last = last.astype(count)
    ys, fs = y[order], fidx[order]
    values = s[order][last]  # distinct scores, descending
    del order
    # Cumulative genuine/impostor counts at each distinct threshold, over all pairs and per
    # fold; one fold at a time, so memory stays a few (T,) arrays whatever the fold count
    # (a (K, n) table of them held 7 GiB for IJB-C's 69M 1:N pairs), and no padded copies.
    tp_all = np.cumsum(ys, dtype=count)[last]
    fp_all = np.cumsum(~ys, dtype=count)[last]
    acc, thresholds, train_acc = (np.empty(k) for _ in range(3))
    for i in range(k):
        mine = fs == i
        tp_tr = tp_all - np.cumsum(ys & mine, dtype=count)[last]
        fp_tr = fp_all - np.cumsum(~ys & mine, dtype=count)[last]
        pos_tr, neg_tr = int(tp_tr[-1]), int(fp_tr[-1])
        # Threshold j + 1 accepts every score >= distinct value j; threshold 0 accepts
        # nothing (correct: the training impostors). The first maximum: the highest
        # threshold among ties.
        correct = tp_tr + (neg_tr - fp_tr)
        j = int(np.argmax(correct))
        best, n_correct = (0, neg_tr) if neg_tr >= correct[j] else (j + 1, int(correct[j]))
        train_acc[i] = n_correct / float(pos_tr + neg_tr)
        # Training accuracy stays the same down to the next *training* score below the best
        # one (held-out scores in between change nothing): threshold = midpoint of that
        # plateau. ``accepted[j]``: training pairs at or above distinct value j.
        accepted = tp_tr + fp_tr
        n_best = 0 if best == 0 else int(accepted[best - 1])
        nxt = 1 + int(np.searchsorted(accepted, n_best, side="right"))
        thr_hi = np.inf if best == 0 else values[best - 1]
        thr_lo = values[nxt - 1] if nxt <= values.size else -np.inf
        thresholds[i] = (np.nextafter(thr_lo, np.inf) if np.isinf(thr_hi)
                         else thr_hi if np.isinf(thr_lo) else _between(thr_lo, thr_hi))
        held = fidx == i
        acc[i] = np.count_nonzero((s[held] >= thresholds[i]) == y[held]) / np.count_nonzero(held)
    return FoldAccuracy(fold_ids, acc, thresholds, train_acc, float(acc.mean()), float(acc.std()))


def _between(lo: float, hi: float) -> float:
    """The midpoint of (lo, hi], as a threshold that rejects lo and accepts hi: halves
    first (hi + lo overflows near the float maximum), and hi itself where the midpoint of
    two adjacent floats rounds onto lo."""
    mid = hi / 2.0 + lo / 2.0
    return mid if lo < mid <= hi else hi


def accuracy_at_thresholds(scores, labels, folds, fold_result: FoldAccuracy) -> np.ndarray:
    """Per-pair correctness (n,) bool under each pair's own fold threshold.

    Lets a subset of pairs (a yaw bin) or a bootstrap replicate reuse thresholds chosen
    on the full training folds.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    pos = np.searchsorted(fold_result.folds, np.asarray(folds))
    return (s >= fold_result.thresholds[pos]) == y
