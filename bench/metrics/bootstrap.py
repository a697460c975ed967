"""Bootstrap confidence intervals that resample subjects, and paired system comparison.

Pairs are not independent: every pair of a subject shares that subject's images. Resampling
subjects (with replacement) and weighting each pair by how often its subjects were drawn
(genuine: m[a]; impostor: m[a] * m[b]) keeps that dependence. Without subject ids the pairs
themselves are resampled, and the result says so (``unit = "pair"``).

Every replicate reuses the one sort of the scores: only the weights change, so B replicates
cost B weighted cumulative sums, not B sorts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validation import check_scores_labels, check_targets
from .roc import auc, eer, sorted_pairs, tar_at_far

_CHUNK_ELEMENTS = 8_000_000  # weights per chunk: bounds memory to ~64 MB per array


@dataclass(frozen=True)
class BootstrapSpec:
    n_boot: int = 1000
    seed: int = 0
    level: float = 0.95
    far_targets: tuple[float, ...] = (0.1, 0.01, 0.001)


@dataclass
class Interval:
    estimate: float
    low: float
    high: float

    def as_dict(self) -> dict:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}


@dataclass
class BootstrapResult:
    """Percentile intervals per metric; ``unit`` is "subject" or "pair"."""

    intervals: dict[str, Interval]
    unit: str
    n_boot: int
    level: float
    seed: int
    n_invalid: int = 0
    replicates: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict:
        return {"unit": self.unit, "n_boot": self.n_boot, "level": self.level, "seed": self.seed,
                "n_invalid_replicates": self.n_invalid,
                "metrics": {k: v.as_dict() for k, v in self.intervals.items()}}


#: Subject ids that mean "unknown" (an insightface .bin stores none).
UNKNOWN_SUBJECTS = ("", "nan", "None")


def subjects_known(ids) -> bool:
    """True when every id names a subject (none empty or NaN)."""
    ids = np.asarray(ids).astype(str)
    return ids.size > 0 and not np.isin(ids, UNKNOWN_SUBJECTS).any()


def _metric_names(far_targets) -> list[str]:
    return ["auc", "eer"] + [f"tar@far={t:g}" for t in far_targets]


class _WeightSampler:
    """Draws (B, n) pair weights from subject (or pair) resampling, seeded."""

    def __init__(self, n: int, subject_a=None, subject_b=None, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.n = n
        if subject_a is None or subject_b is None:
            self.unit = "pair"
            return
        a, b = np.asarray(subject_a), np.asarray(subject_b)
        if a.shape != (n,) or b.shape != (n,):
            raise ValueError("subject_a and subject_b must have one entry per pair")
        ids = np.concatenate([a.astype(str), b.astype(str)])
        subjects, inv = np.unique(ids, return_inverse=True)
        if not subjects_known(ids) or subjects.size < 2:
            # Resampling one (or an unnamed) subject draws the same set every time: an
            # interval of zero width under a false name. Pairs are then the unit.
            self.unit = "pair"
            return
        self.unit = "subject"
        self.n_subjects = subjects.size
        self.ia, self.ib = inv[:n], inv[n:]
        self.same = self.ia == self.ib

    def draw(self, b: int) -> np.ndarray:
        if self.unit == "pair":
            return self.rng.multinomial(self.n, np.full(self.n, 1.0 / self.n), size=b).astype(float)
        m = self.rng.multinomial(self.n_subjects, np.full(self.n_subjects, 1.0 / self.n_subjects),
                                 size=b).astype(float)
        ma, mb = m[:, self.ia], m[:, self.ib]
        return np.where(self.same[None, :], ma, ma * mb)


def _weighted_metrics(order, last, ys, w, far_targets, correct=None) -> dict[str, np.ndarray]:
    """Metrics for a batch of weight vectors ``w`` (B, n) over a fixed sort."""
    wo = w[:, order]
    tps = np.cumsum(wo * ys, axis=1)[:, last]
    fps = np.cumsum(wo * ~ys, axis=1)[:, last]
    pos, neg = tps[:, -1:], fps[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        zeros = np.zeros((w.shape[0], 1))
        fpr = np.concatenate([zeros, fps / neg], axis=1)
        tpr = np.concatenate([zeros, tps / pos], axis=1)
    valid = (pos[:, 0] > 0) & (neg[:, 0] > 0)
    fpr[~valid], tpr[~valid] = 0.0, 0.0
    out = {"auc": auc(fpr, tpr), "eer": eer(fpr, tpr)}
    tars = tar_at_far(fpr, tpr, far_targets)
    for j, t in enumerate(far_targets):
        out[f"tar@far={t:g}"] = tars[:, j]
    if correct is not None:
        total = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["accuracy"] = (w @ correct.astype(float)) / total
    for k in out:
        out[k] = np.where(valid, out[k], np.nan)
    return out


def _replicates(scores_list, labels, sampler: _WeightSampler, spec: BootstrapSpec,
                correct_list=None) -> tuple[list[dict[str, np.ndarray]], int]:
    """Per system, metric -> (n_boot,) replicates, drawn with shared weights."""
    y = np.asarray(labels).astype(bool)
    sorts = []
    for s in scores_list:
        order, last = sorted_pairs(s, y)
        sorts.append((order, last, y[order]))
    chunk = max(1, _CHUNK_ELEMENTS // max(1, y.size))
    acc: list[dict[str, list]] = [dict() for _ in scores_list]
    done = 0
    while done < spec.n_boot:
        b = min(chunk, spec.n_boot - done)
        w = sampler.draw(b)
        for i, (order, last, ys) in enumerate(sorts):
            correct = None if correct_list is None else correct_list[i]
            for k, v in _weighted_metrics(order, last, ys, w, spec.far_targets, correct).items():
                acc[i].setdefault(k, []).append(v)
        done += b
    reps = [{k: np.concatenate(v) for k, v in a.items()} for a in acc]
    n_invalid = int(np.isnan(reps[0]["auc"]).sum())
    return reps, n_invalid


def _percentile(values: np.ndarray, level: float) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(v, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def _observed(scores, labels, spec: BootstrapSpec, correct=None) -> dict[str, float]:
    y = np.asarray(labels).astype(bool)
    order, last = sorted_pairs(scores, y)
    one = _weighted_metrics(order, last, y[order], np.ones((1, y.size)), spec.far_targets,
                            correct)
    return {k: float(v[0]) for k, v in one.items()}


def bootstrap_ci(scores, labels, subject_a=None, subject_b=None, spec: BootstrapSpec | None = None,
                 correct=None) -> BootstrapResult:
    """Percentile CIs of AUC, EER, TAR@FAR (and accuracy when ``correct`` is given).

    ``scores``, ``labels``: (n,); ``subject_a``/``subject_b``: (n,) subject ids of both sides
    (None: resample pairs); ``correct``: (n,) bool per-pair correctness at fixed thresholds.
    """
    spec = spec or BootstrapSpec()
    s, y, _ = check_scores_labels(scores, labels)
    check_targets(spec.far_targets)
    sampler = _WeightSampler(s.size, subject_a, subject_b, spec.seed)
    corr = None if correct is None else [np.asarray(correct, dtype=bool)]
    (reps,), n_invalid = _replicates([s], y, sampler, spec, corr)
    obs = _observed(s, y, spec, None if corr is None else corr[0])
    intervals = {k: Interval(obs[k], *_percentile(reps[k], spec.level)) for k in obs}
    return BootstrapResult(intervals, sampler.unit, spec.n_boot, spec.level, spec.seed,
                           n_invalid, reps)


@dataclass
class PairedDifference:
    """System 2 minus system 1 per metric: estimate, CI, two-sided bootstrap p-value."""

    metric: str
    value_1: float
    value_2: float
    difference: float
    low: float
    high: float
    p_value: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def paired_comparison(scores_1, scores_2, labels, subject_a=None, subject_b=None,
                      spec: BootstrapSpec | None = None, correct_1=None, correct_2=None
                      ) -> tuple[list[PairedDifference], str]:
    """Compare two systems scored on the same pairs with shared bootstrap resamples.

    The p-value tests "no difference": twice the smaller tail mass of the replicate
    differences at zero (capped at 1). Returns the differences and the resampling unit.
    """
    spec = spec or BootstrapSpec()
    s1, y, _ = check_scores_labels(scores_1, labels)
    s2, _, _ = check_scores_labels(scores_2, labels)
    sampler = _WeightSampler(s1.size, subject_a, subject_b, spec.seed)
    corr = None
    if correct_1 is not None and correct_2 is not None:
        corr = [np.asarray(correct_1, bool), np.asarray(correct_2, bool)]
    (r1, r2), _ = _replicates([s1, s2], y, sampler, spec, corr)
    o1 = _observed(s1, y, spec, None if corr is None else corr[0])
    o2 = _observed(s2, y, spec, None if corr is None else corr[1])
    out = []
    for k in o1:
        d = r2[k] - r1[k]
        d = d[np.isfinite(d)]
        if d.size:
            p = float(min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0))))
        else:
            p = float("nan")
        lo, hi = _percentile(d, spec.level) if d.size else (float("nan"), float("nan"))
        out.append(PairedDifference(k, o1[k], o2[k], o2[k] - o1[k], lo, hi, p))
    return out, sampler.unit
