"""k-fold verification accuracy with given fold ids (CFP's official splits, LFW-style).

For each fold, the threshold maximising accuracy on the *other* folds is found by an exact
search over the sorted training scores, then applied to the held-out fold. One global sort
serves every fold: each fold's training counts are the totals minus the fold's own counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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

    order, last = sorted_pairs(s, y)
    ys, fs, ss = y[order], fidx[order], s[order]
    # Per-fold cumulative genuine/impostor counts at each distinct threshold: (K, T).
    onehot = np.zeros((k, s.size), dtype=np.int32)
    onehot[fs, np.arange(s.size)] = 1
    tp_f = np.cumsum(onehot * ys, axis=1)[:, last]
    fp_f = np.cumsum(onehot * ~ys, axis=1)[:, last]
    pos_f, neg_f = tp_f[:, -1], fp_f[:, -1]
    tp_tr = tp_f.sum(0)[None, :] - tp_f
    fp_tr = fp_f.sum(0)[None, :] - fp_f
    pos_tr = pos_f.sum() - pos_f
    neg_tr = neg_f.sum() - neg_f
    n_tr = (pos_tr + neg_tr).astype(np.float64)
    # Column 0 is "accept nothing"; column j+1 accepts every score >= distinct value j.
    correct = np.concatenate([neg_tr[:, None], tp_tr + (neg_tr[:, None] - fp_tr)], axis=1)
    best = np.argmax(correct, axis=1)  # first maximum: the highest threshold among ties
    train_acc = correct[np.arange(k), best] / n_tr

    values = ss[last]  # distinct scores, descending
    hi = np.concatenate([[np.inf], values])
    # Training accuracy stays the same down to the next *training* score below the best one
    # (held-out scores in between change nothing): threshold = midpoint of that plateau.
    n_acc = np.concatenate([np.zeros((k, 1)), tp_tr + fp_tr], axis=1)
    nxt = np.array([np.searchsorted(n_acc[i], n_acc[i, best[i]], side="right")
                    for i in range(k)])
    lo = np.concatenate([[np.inf], values, [-np.inf]])
    thr_hi, thr_lo = hi[best], lo[np.minimum(nxt, values.size + 1)]
    thresholds = np.where(np.isinf(thr_hi), np.nextafter(thr_lo, np.inf),
                          np.where(np.isinf(thr_lo), thr_hi, (thr_hi + thr_lo) / 2.0))

    pred = s[None, :] >= thresholds[:, None]
    in_fold = fidx[None, :] == np.arange(k)[:, None]
    acc = ((pred == y[None, :]) & in_fold).sum(1) / in_fold.sum(1)
    return FoldAccuracy(fold_ids, acc, thresholds, train_acc, float(acc.mean()), float(acc.std()))


def accuracy_at_thresholds(scores, labels, folds, fold_result: FoldAccuracy) -> np.ndarray:
    """Per-pair correctness (n,) bool under each pair's own fold threshold.

    Lets a subset of pairs (a yaw bin) or a bootstrap replicate reuse thresholds chosen
    on the full training folds.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    pos = np.searchsorted(fold_result.folds, np.asarray(folds))
    return (s >= fold_result.thresholds[pos]) == y
