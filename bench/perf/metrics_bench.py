"""Metric speed at IJB-C scale against scikit-learn, and fold accuracy against a grid.

The comparison baselines are what people run today: scikit-learn's ``roc_curve`` + ``auc``
(+ EER and TAR read off its curve), and insightface's LFW/CFP evaluator, which tries 400
thresholds (``arange(0, 4, 0.01)`` on distances) for each fold in a Python loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..metrics import auc, eer, fold_accuracy, roc_curve, tar_at_far

FARS = (1e-1, 1e-2, 1e-3, 1e-4)


@dataclass(frozen=True)
class MetricsBenchConfig:
    n_pairs: int = 15_658_489  # IJB-C 1:1
    n_genuine: int = 19_557
    cfp_pairs: int = 7_000
    cfp_folds: int = 10
    grid_size: int = 400
    repeats: int = 3
    seed: int = 0


def _timed(fn, repeats: int):
    best, out = np.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _ours(s, y):
    r = roc_curve(s, y)
    return auc(r.fpr, r.tpr), eer(r.fpr, r.tpr), tar_at_far(r.fpr, r.tpr, FARS)


def _sklearn(s, y):
    from sklearn.metrics import auc as sk_auc
    from sklearn.metrics import roc_curve as sk_roc

    fpr, tpr, _ = sk_roc(y, s)
    return sk_auc(fpr, tpr), eer(fpr, tpr), tar_at_far(fpr, tpr, FARS)


def grid_fold_accuracy(s, y, folds, grid):
    """insightface-style: per fold, best of ``grid`` thresholds on the other folds."""
    accs = []
    for k in np.unique(folds):
        tr, te = folds != k, folds == k
        best = max(grid, key=lambda t: np.mean((s[tr] >= t) == y[tr]))
        accs.append(np.mean((s[te] >= best) == y[te]))
    return float(np.mean(accs))


def run(cfg: MetricsBenchConfig = MetricsBenchConfig()) -> list[dict]:
    rng = np.random.default_rng(cfg.seed)
    y = np.zeros(cfg.n_pairs, dtype=bool)
    y[rng.choice(cfg.n_pairs, cfg.n_genuine, replace=False)] = True
    # float32-precision cosine-like scores, as feature dot products produce (with ties)
    s = np.tanh(0.3 * (rng.normal(size=cfg.n_pairs) + 3.0 * y)).astype(np.float32)
    s = s.astype(np.float64)
    records = []
    t_ours, ours = _timed(lambda: _ours(s, y), cfg.repeats)
    t_sk, sk = _timed(lambda: _sklearn(s, y), 1)
    same = bool(np.isclose(ours[0], sk[0], atol=1e-12) and np.isclose(ours[1], sk[1], atol=1e-12)
                and np.allclose(ours[2], sk[2], atol=1e-12))
    records.append({"task": "roc+auc+eer+tar@far", "n": cfg.n_pairs, "seconds": t_ours,
                    "baseline": "sklearn roc_curve+auc", "baseline_seconds": t_sk,
                    "speedup": t_sk / t_ours, "same_numbers": same, "value": float(ours[0])})

    n = cfg.cfp_pairs
    yc = rng.random(n) < 0.5
    sc = np.tanh(0.5 * (rng.normal(size=n) + 2.5 * yc)).astype(np.float32).astype(np.float64)
    folds = rng.integers(1, cfg.cfp_folds + 1, n)
    t_fold, fa = _timed(lambda: fold_accuracy(sc, yc, folds), max(cfg.repeats, 5))
    grid = np.linspace(-1, 1, cfg.grid_size)
    t_grid, grid_acc = _timed(lambda: grid_fold_accuracy(sc, yc, folds, grid), 1)
    records.append({"task": f"{cfg.cfp_folds}-fold accuracy (exact)", "n": n, "seconds": t_fold,
                    "baseline": f"{cfg.grid_size}-threshold grid", "baseline_seconds": t_grid,
                    "speedup": t_grid / t_fold, "same_numbers": bool(fa.mean >= grid_acc - 0.01),
                    "value": fa.mean})
    return records
