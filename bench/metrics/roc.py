"""Exact ROC, AUC, EER and TAR@FAR from one sort of the scores.

Convention: higher score = more likely genuine; a pair is accepted when ``score >= t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import check_scores_labels, check_targets


@dataclass(frozen=True)
class Roc:
    """ROC operating points, starting with the all-rejected point.

    ``fpr``, ``tpr``, ``thresholds``: shape (P,); ``thresholds`` decrease and
    ``thresholds[0] = +inf`` (nothing accepted). With ``drop_intermediate=False`` there is
    one point per distinct score, as scikit-learn's ``roc_curve(..., drop_intermediate=False)``;
    by default the interior points of horizontal runs (impostor-only steps) are left out:
    the curve as a polyline, hence AUC, EER and TAR@FAR, is exactly the same.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    n_genuine: float
    n_impostor: float


def sorted_pairs(scores: np.ndarray, labels: np.ndarray):
    """Sort descending once; return (order, index of the last element of each tie group)."""
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    last = np.flatnonzero(np.diff(s) != 0)
    last = np.append(last, s.size - 1)
    return order, last


def roc_curve(scores, labels, weights=None, drop_intermediate: bool = True) -> Roc:
    """Exact ROC. ``scores``: (n,) float; ``labels``: (n,) 0/1 or bool; ``weights``: (n,) >= 0.

    Ties are one operating point, as in scikit-learn.
    """
    s, y, w = check_scores_labels(scores, labels, weights)
    if w is None and drop_intermediate:
        values, tps, fps = _corner_counts(s, y)
    else:
        order, last = sorted_pairs(s, y)
        ys = y[order]
        ws = np.ones(s.size) if w is None else w[order]
        tps = np.cumsum(ws * ys)[last]
        fps = np.cumsum(ws * ~ys)[last]
        values = s[order][last]
        if drop_intermediate:
            values, tps, fps = _drop_horizontal(values, tps, fps)
    n_pos, n_neg = tps[-1], fps[-1]
    if n_pos <= 0 or n_neg <= 0:
        raise ValueError("weights leave a single class")
    fpr = np.concatenate([[0.0], fps / n_neg])
    tpr = np.concatenate([[0.0], tps / n_pos])
    thr = np.concatenate([[np.inf], values])
    return Roc(fpr, tpr, thr, float(n_pos), float(n_neg))


def _drop_horizontal(values, tps, fps):
    """Keep the ends of every run of equal TP counts; interior points are collinear."""
    prev = np.concatenate([[0.0], tps[:-1]])
    nxt = np.concatenate([tps[1:], [np.nan]])
    keep = (tps != prev) | (tps != nxt)
    return values[keep], tps[keep], fps[keep]


def _corner_counts(s: np.ndarray, y: np.ndarray):
    """The ROC's corners from a value sort and binary searches (no argsort).

    Only genuine scores move the TPR, so the polyline is fixed by two points per distinct
    genuine value v: just above v (counts of scores > v) and at v (counts >= v). Sorting
    values is several times faster than an argsort, and the searches cost O(G log n) for
    G genuine pairs, which keeps IJB-C-sized sets (15.7M pairs) well under a second.
    """
    a = np.sort(s)
    gen = np.sort(s[y])
    gv = np.unique(gen)[::-1]  # distinct genuine values, descending
    n, g = a.size, gen.size
    lo_all, hi_all = np.searchsorted(a, gv, "left"), np.searchsorted(a, gv, "right")
    lo_gen, hi_gen = np.searchsorted(gen, gv, "left"), np.searchsorted(gen, gv, "right")
    tp_gt, tp_ge = g - hi_gen, g - lo_gen
    fp_gt, fp_ge = (n - hi_all) - tp_gt, (n - lo_all) - tp_ge
    # Threshold reaching the "> v" point: the smallest score above v.
    above = np.where(hi_all < n, a[np.minimum(hi_all, n - 1)], np.inf)
    values = np.stack([above, gv], 1).ravel()
    tps = np.stack([tp_gt, tp_ge], 1).ravel().astype(np.float64)
    fps = np.stack([fp_gt, fp_ge], 1).ravel().astype(np.float64)
    if fps[-1] < n - g:  # impostors below the lowest genuine score: the final point
        values = np.append(values, a[0])
        tps = np.append(tps, float(g))
        fps = np.append(fps, float(n - g))
    # Consecutive genuine values with no impostor between them repeat a point.
    new = np.concatenate([[True], (tps[1:] != tps[:-1]) | (fps[1:] != fps[:-1])])
    new &= (tps > 0) | (fps > 0)  # the origin is added by the caller
    return values[new], tps[new], fps[new]


def auc(fpr, tpr) -> np.ndarray:
    """Trapezoidal area under ROC point(s); ``fpr``/``tpr`` shape (..., T).

    On an exact ROC this equals the Mann-Whitney statistic with ties counted 1/2.
    """
    fpr, tpr = np.asarray(fpr), np.asarray(tpr)
    return np.sum(np.diff(fpr, axis=-1) * (tpr[..., 1:] + tpr[..., :-1]) / 2.0, axis=-1)


def eer(fpr, tpr, thresholds=None):
    """Equal error rate where FPR = FNR on the ROC's linear interpolation.

    Between two consecutive operating points the ROC is the straight segment reached by
    randomising between their thresholds, so the EER is where that segment crosses
    FPR + TPR = 1 (exact, not the nearest point as the DREAM code takes). Also returns the
    threshold of the point on the crossing segment nearest to the crossing (the score a
    deterministic system would use). Shapes: (..., T) in, (...) out.
    """
    fpr, tpr = np.asarray(fpr, dtype=np.float64), np.asarray(tpr, dtype=np.float64)
    d = fpr - (1.0 - tpr)  # increases along the curve from -1 to +1
    k = np.argmax(d >= 0, axis=-1)  # first point at or past the crossing (k >= 1)
    k = np.maximum(k, 1)
    d1 = np.take_along_axis(d, k[..., None], -1)[..., 0]
    d0 = np.take_along_axis(d, (k - 1)[..., None], -1)[..., 0]
    f1 = np.take_along_axis(fpr, k[..., None], -1)[..., 0]
    f0 = np.take_along_axis(fpr, (k - 1)[..., None], -1)[..., 0]
    denom = d1 - d0
    alpha = np.where(denom > 0, -d0 / np.where(denom > 0, denom, 1.0), 0.0)
    value = f0 + alpha * (f1 - f0)
    if thresholds is None:
        return value
    thr = np.asarray(thresholds)
    idx = np.where(alpha < 0.5, k - 1, k)
    return value, np.take_along_axis(np.broadcast_to(thr, fpr.shape), idx[..., None], -1)[..., 0]


def tar_at_far(fpr, tpr, targets, thresholds=None):
    """Largest TPR among operating points with FPR <= target (never the nearest point above).

    ``fpr``/``tpr``: (..., T), nondecreasing; ``targets``: (K,). Returns (..., K) TARs, and
    the thresholds achieving them when ``thresholds`` is given.
    """
    fpr, tpr = np.asarray(fpr), np.asarray(tpr)
    t = check_targets(targets)
    # fpr is nondecreasing, so the admissible points are a prefix and its last one wins.
    if fpr.ndim == 1:
        idx = np.searchsorted(fpr, t, side="right") - 1
        tar = tpr[idx]
    else:
        idx = np.stack([np.sum(fpr <= v, axis=-1) - 1 for v in t], axis=-1)
        tar = np.take_along_axis(tpr, idx, -1)
    if thresholds is None:
        return tar
    thr = np.broadcast_to(np.asarray(thresholds), fpr.shape)
    return tar, (thr[idx] if fpr.ndim == 1 else np.take_along_axis(thr, idx, -1))


def roc_summary(scores, labels, far_targets=(0.1, 0.01, 0.001), weights=None) -> dict:
    """AUC, EER (+ threshold) and TAR@FAR (+ thresholds) from one ROC."""
    r = roc_curve(scores, labels, weights)
    e, e_thr = eer(r.fpr, r.tpr, r.thresholds)
    tar, tar_thr = tar_at_far(r.fpr, r.tpr, far_targets, r.thresholds)
    return {
        "auc": float(auc(r.fpr, r.tpr)),
        "eer": float(e),
        "eer_threshold": float(e_thr),
        "tar_at_far": [float(v) for v in tar],
        "tar_thresholds": [float(v) for v in tar_thr],
        "n_genuine": r.n_genuine,
        "n_impostor": r.n_impostor,
    }
