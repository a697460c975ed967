"""Bootstrap confidence intervals that resample subjects, and paired system comparison.

Pairs are not independent: every pair of a subject shares that subject's images. Resampling
subjects (with replacement) and weighting each pair by how often its subjects were drawn
(genuine: m[a]; impostor: m[a] * m[b]) keeps that dependence. Without subject ids the pairs
themselves are resampled, and the result says so (``unit = "pair"``).

Every replicate reuses the one sort of the scores: only the weights change, so B replicates
cost B weighted cumulative sums, not B sorts. On large sets (more impostors than
``BootstrapSpec.head``) even that is too much (15.7M pairs x 1,000 replicates), so the
pairs are reduced once (:mod:`bench.metrics.reweighted_roc`): genuine pairs and the top
impostors keep their own weights, the other impostors are drawn as bins of consecutive
scores. A bin's total weight is drawn exactly for pairs (a multinomial over the bins) and,
for subjects, from the first-order term of the pair weight ``m[a] * m[b] ~ m[a] + m[b] - 1``
(the dropped term ``(m[a] - 1)(m[b] - 1)`` sums to a relative variance of order
subjects / impostors, and the head is at least 32 impostors per subject). Tests check the
intervals against the exact per-pair resampling.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..dtypes import index_dtype
from ..progress import progress_bar
from ._validation import check_scores_labels, check_targets
from .reweighted_roc import ReducedScores, Weighting, curve_counts, reduce_scores
from .roc import auc, eer, sorted_pairs, tar_at_far

_CHUNK_ELEMENTS = 8_000_000  # weights per chunk: bounds memory to ~64 MB per array
#: Impostors that keep their own weights on large sets (at least): FAR 4e-3 on IJB-C.
HEAD_MIN = 2**16
#: ... and at least this many per subject, so the linearised bulk weights stay accurate.
HEAD_PER_SUBJECT = 32


@dataclass(frozen=True)
class BootstrapSpec:
    n_boot: int = 1000
    seed: int = 0
    level: float = 0.95
    far_targets: tuple[float, ...] = (0.1, 0.01, 0.001)
    #: Impostors kept with their own weights; more are reduced to bins (None: automatic,
    #: ``max(HEAD_MIN, HEAD_PER_SUBJECT * subjects)``). Sets with fewer are resampled exactly.
    head: int | None = None
    #: A progress bar (on a terminal) when the replicates are many pairs' worth of work.
    progress: bool = True


@dataclass(frozen=True)
class Decisions:
    """Per-pair decisions at fixed thresholds, for the accuracy and its interval.

    ``correct`` (n,) bool; ``group`` (n,) int codes 0..F-1 of the folds and ``group_weight``
    (F,) the weight of a decision in each (None, None: every decision weighs 1, the pooled
    fraction). Folds of unequal size weigh ``n / (F * n_f)``: the weighted fraction is then
    the mean over folds, the figure a 10-fold protocol reports, and each replicate's is a
    ratio of weighted sums, so it never leaves [0, 1].
    """

    correct: np.ndarray
    group: np.ndarray | None = None
    group_weight: np.ndarray | None = None

    @classmethod
    def of(cls, correct, folds=None) -> Decisions:
        """``folds`` (n,) fold labels: decisions weighted to the mean over folds when the
        folds differ in size (unweighted when they do not: the same number, exactly)."""
        correct = np.asarray(correct, dtype=bool)
        if folds is None or correct.size == 0:
            return cls(correct)
        _, group, sizes = np.unique(np.asarray(folds), return_inverse=True, return_counts=True)
        if np.all(sizes == sizes[0]):
            return cls(correct)
        # a byte a pair while folds are few: IJB-C's 1:N has 69M
        group = group.astype(np.min_scalar_type(sizes.size - 1))
        return cls(correct, group, correct.size / (sizes.size * sizes))

    @property
    def weight(self) -> np.ndarray | None:
        """(n,) each decision's weight; None when all weigh 1."""
        return self.weight_at(slice(None))

    @property
    def right(self) -> np.ndarray:
        """(n,) float: each pair's weight when decided correctly, else 0."""
        return self.right_at(slice(None))

    def weight_at(self, idx) -> np.ndarray | None:
        """:attr:`weight` of the pairs ``idx`` alone (no (n,) float array is made)."""
        return None if self.group is None else self.group_weight[self.group[idx]]

    def right_at(self, idx) -> np.ndarray:
        """:attr:`right` of the pairs ``idx`` alone."""
        w, c = self.weight_at(idx), self.correct[idx]
        return c.astype(float) if w is None else np.where(c, w, 0.0)

    def accuracy(self) -> float:
        right, total = _sums(self)
        total = self.correct.size if total is None else total
        return right / total if total else float("nan")


def as_decisions(correct) -> Decisions | None:
    """``correct`` as :class:`Decisions`: a bool array as unweighted decisions (the pooled
    fraction), Decisions and None as they are."""
    if correct is None or isinstance(correct, Decisions):
        return correct
    return Decisions(np.asarray(correct, dtype=bool))


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


#: The text of an unknown subject id: an empty one, or a missing value (None, NaN: an
#: insightface .bin stores none). A subject may be called "nan" or "None" in a file.
UNKNOWN_SUBJECT = ""


def _id_text(value) -> str:
    return UNKNOWN_SUBJECT if pd.api.types.is_scalar(value) and pd.isna(value) else str(value)


#: Rows factorised at a time by :func:`_sorted_codes`: pandas sizes its hash table by the
#: rows it is given (about 48 bytes a row for object ids, 3 GB for a 69M-row column).
_FACTORIZE_ROWS = 1 << 20


def _sorted_codes(*columns: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """``np.unique`` of the ids of all ``columns`` as text, and each column's codes into it,
    by hashing: sorting 31M strings (an IJB-C score file's two subject columns) takes most
    of a minute, hashing seconds. The distinct ids come out sorted as ``np.unique`` sorts
    them, so every subject keeps the column of the bootstrap draws it always had. Columns
    are factorised one by one and a block of rows at a time (:func:`_column_codes`), and
    codes are int32 while they fit: a few bytes a row, whatever the row count."""
    found = [_column_codes(np.asarray(c)) for c in columns]
    # only the distinct values are turned into text (10 and "10" become one subject)
    names, merged = np.unique(np.array([_id_text(u) for _, uniques in found for u in uniques],
                                       dtype=str), return_inverse=True)
    merged = merged.astype(index_dtype(names.size))
    codes, start = [], 0
    for column_codes, uniques in found:
        codes.append(merged[start:start + len(uniques)][column_codes])
        start += len(uniques)
    return names, codes


def _column_codes(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(column)`` (NaN a value), a block of rows at a time: each block's
    distinct values are factorised once more, in order, so values that hash as one (10
    and 10.0) are one id spelt as the column first writes it, as a whole-column pass
    gives."""
    codes = np.empty(len(column), dtype=index_dtype(len(column)))
    blocks, offset = [], 0
    for lo in range(0, len(column), _FACTORIZE_ROWS):
        part, uniques = pd.factorize(column[lo:lo + _FACTORIZE_ROWS], use_na_sentinel=False)
        codes[lo:lo + _FACTORIZE_ROWS] = part + offset
        offset += len(uniques)
        blocks.append(np.asarray(uniques))
    if not blocks:
        return codes, column[:0]
    remap, uniques = pd.factorize(np.concatenate(blocks), use_na_sentinel=False)
    return remap.astype(codes.dtype)[codes], np.asarray(uniques)


def subjects_known(ids) -> bool:
    """True when every id of the distinct texts ``ids`` (:func:`_sorted_codes`' names)
    names a subject (none empty)."""
    ids = np.asarray(ids).astype(str)
    return ids.size > 0 and not (ids == UNKNOWN_SUBJECT).any()


class _WeightSampler:
    """Draws (B, n) pair weights from subject (or pair) resampling, seeded.

    Subject j of a draw is the j-th of the distinct ids in sorted order (as text); each
    replicate is one ``multinomial(subjects, uniform)`` from ``default_rng(seed)``. The
    items need not be pairs: probes of one subject each pass ``subject_a = subject_b``
    (weight ``m[a]``) and name themselves with ``item``, the unit when subjects are
    unknown and the items themselves are resampled.
    """

    def __init__(self, n: int, subject_a=None, subject_b=None, seed: int = 0,
                 item: str = "pair"):
        self.rng = np.random.default_rng(seed)
        self.n = n
        if subject_a is None or subject_b is None:
            self.unit = item
            return
        a, b = np.asarray(subject_a), np.asarray(subject_b)
        if a.shape != (n,) or b.shape != (n,):
            raise ValueError("subject_a and subject_b must have one entry per pair")
        subjects, (ia, ib) = _sorted_codes(a, b)
        if not subjects_known(subjects) or subjects.size < 2:
            # Resampling one (or an unnamed) subject draws the same set every time: an
            # interval of zero width under a false name. Pairs are then the unit.
            self.unit = item
            return
        self.unit = "subject"
        self.n_subjects = subjects.size
        self.ia, self.ib = ia, ib
        self.same = self.ia == self.ib

    def head(self, spec: BootstrapSpec) -> int:
        if spec.head is not None:
            return max(1, spec.head)
        per_subject = HEAD_PER_SUBJECT * self.n_subjects if self.unit == "subject" else 0
        return max(HEAD_MIN, per_subject)

    def draw_subjects(self, b: int) -> np.ndarray | None:
        """(b, subjects) subject multiplicities shared by every system (None for pairs)."""
        if self.unit != "subject":
            return None
        return self.rng.multinomial(self.n_subjects, np.full(self.n_subjects, 1.0 / self.n_subjects),
                                    size=b).astype(float)

    def draw(self, b: int) -> np.ndarray:
        if self.unit != "subject":
            return self.rng.multinomial(self.n, np.full(self.n, 1.0 / self.n), size=b).astype(float)
        m = self.draw_subjects(b)
        ma = m[:, self.ia]
        if self.same.all():  # items of one subject each (probes): no product to form
            return ma
        return np.where(self.same[None, :], ma, ma * m[:, self.ib])


def _curve_metrics(tps: np.ndarray, fps: np.ndarray, far_targets,
                   correct: np.ndarray | None = None, total: np.ndarray | None = None
                   ) -> dict[str, np.ndarray]:
    """Metrics from weighted (TP, FP) counts (B, P) at operating points that start at the
    origin and end with everything accepted; ``correct`` (B,): weight of correct pairs,
    out of ``total`` (default: all the weight)."""
    pos, neg = tps[:, -1:], fps[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        fpr, tpr = fps / neg, tps / pos
    valid = (pos[:, 0] > 0) & (neg[:, 0] > 0)
    fpr[~valid], tpr[~valid] = 0.0, 0.0
    out = {"auc": auc(fpr, tpr), "eer": eer(fpr, tpr)}
    tars = tar_at_far(fpr, tpr, far_targets)
    for j, t in enumerate(far_targets):
        out[f"tar@far={t:g}"] = tars[:, j]
    if correct is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            out["accuracy"] = correct / (pos[:, 0] + neg[:, 0] if total is None else total)
    for k in out:
        out[k] = np.where(valid, out[k], np.nan)
    return out


def _weighted_metrics(order, last, ys, w, far_targets, decisions: Decisions | None = None
                      ) -> dict[str, np.ndarray]:
    """Metrics for a batch of weight vectors ``w`` (B, n) over a fixed sort."""
    wo = w[:, order]
    zeros = np.zeros((w.shape[0], 1))
    tps = np.concatenate([zeros, np.cumsum(wo * ys, axis=1)[:, last]], axis=1)
    fps = np.concatenate([zeros, np.cumsum(wo * ~ys, axis=1)[:, last]], axis=1)
    if decisions is None:
        return _curve_metrics(tps, fps, far_targets)
    weight = decisions.weight
    return _curve_metrics(tps, fps, far_targets, w @ decisions.right,
                          w.sum(axis=1) if weight is None else w @ weight)


class _ReducedWeights:
    """Draws :class:`Weighting` batches of one system's reduced pairs.

    Subjects: the pair weights follow from the shared subject draw ``m`` (genuine and head
    pairs exactly, bulk bins through their subject degrees). Pairs: one multinomial over
    genuine pairs, head pairs and bulk bins (split into classes of decisions: correct or
    wrong, in each fold when folds weigh unequally), which is the per-pair multinomial
    summed within each bin, exactly. A class is a boolean mask over the bulk, never a
    float per impostor (69M in IJB-C's 1:N).
    """

    def __init__(self, red: ReducedScores, sampler: _WeightSampler,
                 decisions: Decisions | None = None):
        self.red, self.sampler, self.decisions = red, sampler, decisions
        j = red.n_bins
        if decisions is not None:  # the pairs with their own weights, computed once
            own = (red.genuine, red.head)
            self.own_right = [decisions.right_at(i) for i in own]
            self.own_weight = None if decisions.group is None else \
                [decisions.weight_at(i) for i in own]
        # (mask over the bulk, its decisions' weight if correct, its weight) per class
        if sampler.unit != "subject" and decisions is None:  # one class: the bins themselves
            self.bin_sizes = red.bin_sizes
            self.class_right, self.class_weight = np.zeros(1), np.ones(1)
            return
        if sampler.unit != "subject":
            sizes, self.class_right, self.class_weight = [], [], []
            for mask, right, weight in self._classes():
                sizes.append(np.bincount(red.bulk_bin[mask], minlength=j))
                self.class_right.append(right)
                self.class_weight.append(weight)
            self.bin_sizes = np.concatenate(sizes)
            self.class_right = np.asarray(self.class_right, dtype=float)
            self.class_weight = np.asarray(self.class_weight, dtype=float)
            return
        ia, ib, same = sampler.ia, sampler.ib, sampler.same
        n_s = sampler.n_subjects
        a, b, one = ia[red.bulk], ib[red.bulk], same[red.bulk]
        # Degrees: m[a] + m[b] - 1 per pair of two subjects, m[a] for a same-subject pair.
        # One cell index array, updated in place (one per bulk impostor: 69M in IJB-C's 1:N)
        cell = red.bulk_bin.astype(np.int64) * n_s
        cell += a
        deg = np.bincount(cell, minlength=j * n_s)
        cell += b
        cell -= a
        deg += np.bincount(cell[~one], minlength=j * n_s)
        del cell
        self.degrees = deg.reshape(j, n_s).T.astype(float)       # (S, J)
        self.offset = np.bincount(red.bulk_bin[~one], minlength=j).astype(float)
        # the bulk's weighted decisions as subject degrees, correct ones and (weighted) all
        self.degrees_ok, self.offset_ok = np.zeros(n_s), 0.0
        self.degrees_all, self.offset_all = np.zeros(n_s), 0.0
        for mask, right, weight in self._classes() if decisions is not None else ():
            deg = (np.bincount(a[mask], minlength=n_s)
                   + np.bincount(b[mask & ~one], minlength=n_s)).astype(float)
            off = float(np.sum(mask & ~one))
            self.degrees_ok += right * deg
            self.offset_ok += right * off
            self.degrees_all += weight * deg
            self.offset_all += weight * off

    def _classes(self) -> Iterator[tuple[np.ndarray, float, float]]:
        """One class of decisions at a time: each mask is a byte per bulk impostor (69M in
        IJB-C)."""
        red, d = self.red, self.decisions
        ok = d.correct[red.bulk]
        if d.group is None:
            yield ok, 1.0, 1.0
            yield ~ok, 0.0, 1.0
            return
        group = d.group[red.bulk]
        for g, weight in enumerate(d.group_weight):
            in_g = group == g
            yield in_g & ok, float(weight), float(weight)
            yield in_g & ~ok, 0.0, float(weight)

    def _own_pair_counts(self, b: int) -> np.ndarray:
        """(b, G + H) draws of the pairs with their own weight, as part of one multinomial
        over all n pairs: how many of the n draws land on them (a binomial), then which
        of them each draw is (uniform), far cheaper than a multinomial over G + H cells."""
        rng, n = self.sampler.rng, self.sampler.n
        own = self.red.genuine.size + self.red.head.size
        k = rng.binomial(n, own / n, size=b)
        which = rng.integers(0, own, size=int(k.sum())) + np.repeat(np.arange(b) * own, k)
        return np.bincount(which, minlength=b * own).reshape(b, own).astype(float)

    def _pair_weights(self, m: np.ndarray, idx: np.ndarray) -> np.ndarray:
        s = self.sampler
        ma = m[:, s.ia[idx]]
        return np.where(s.same[idx][None, :], ma, ma * m[:, s.ib[idx]])

    def __call__(self, m: np.ndarray | None, b: int) -> Weighting:
        red, d = self.red, self.decisions
        g, j = red.genuine.size, red.n_bins
        if m is None:
            own = self._own_pair_counts(b)
            gen, head = own[:, :g], own[:, g:]
            rest = self.sampler.n - own.sum(axis=1).astype(np.int64)
            binned = self.sampler.rng.multinomial(
                rest, self.bin_sizes / max(1, self.bin_sizes.sum()), size=b).astype(float)
            binned = binned.reshape(b, -1, j)
            bins, per_class = binned.sum(axis=1), binned.sum(axis=2)
            bulk_ok, bulk_all = per_class @ self.class_right, per_class @ self.class_weight
        else:
            gen, head = self._pair_weights(m, red.genuine), self._pair_weights(m, red.head)
            bins = m @ self.degrees - self.offset
            bulk_ok = m @ self.degrees_ok - self.offset_ok
            bulk_all = m @ self.degrees_all - self.offset_all
        if d is None:
            return Weighting(gen, head, bins)
        right = gen @ self.own_right[0] + head @ self.own_right[1] + bulk_ok
        total = None if self.own_weight is None else \
            gen @ self.own_weight[0] + head @ self.own_weight[1] + bulk_all
        return Weighting(gen, head, bins, right, total)


def _reduced_replicates(reds: list[ReducedScores], sampler: _WeightSampler,
                        spec: BootstrapSpec, correct_list=None) -> list[dict[str, np.ndarray]]:
    weights = [_ReducedWeights(r, sampler, None if correct_list is None else correct_list[i])
               for i, r in enumerate(reds)]
    width = max(r.genuine.size + r.head.size + r.n_bins for r in reds)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, width))
    acc: list[dict[str, list]] = [dict() for _ in reds]
    with progress_bar(total=spec.n_boot, unit="rep", enabled=spec.progress, leave=False,
                      desc="bootstrap") as bar:
        done = 0
        while done < spec.n_boot:
            b = min(chunk, spec.n_boot - done)
            m = sampler.draw_subjects(b)
            for i, (red, draw) in enumerate(zip(reds, weights, strict=True)):
                w = draw(m, b)
                tps, fps = curve_counts(red, w)
                for k, v in _curve_metrics(tps, fps, spec.far_targets, w.correct,
                                           w.total).items():
                    acc[i].setdefault(k, []).append(v)
            done += b
            bar.update(b)
    return [{k: np.concatenate(v) for k, v in a.items()} for a in acc]


def _exact_replicates(scores_list, y, sampler: _WeightSampler, spec: BootstrapSpec,
                      correct_list=None) -> list[dict[str, np.ndarray]]:
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
            decisions = None if correct_list is None else correct_list[i]
            for k, v in _weighted_metrics(order, last, ys, w, spec.far_targets,
                                          decisions).items():
                acc[i].setdefault(k, []).append(v)
        done += b
    return [{k: np.concatenate(v) for k, v in a.items()} for a in acc]


def _resample(scores_list, labels, sampler: _WeightSampler, spec: BootstrapSpec,
              correct_list=None) -> tuple[list[dict[str, float]], list[dict[str, np.ndarray]]]:
    """Per system, the observed metrics and metric -> (n_boot,) replicates, every system
    drawn with the same weights. Exact per-pair weights while the impostors fit in the
    head; beyond that the reduced pairs (pair resampling of two systems stays exact: it
    shares per-pair weights, which bins cannot carry)."""
    y = np.asarray(labels).astype(bool)
    corr = correct_list or [None] * len(scores_list)
    head = sampler.head(spec)
    if int(np.sum(~y)) > head and (sampler.unit == "subject" or len(scores_list) == 1):
        reds = [reduce_scores(s, y, head) for s in scores_list]
        observed = []
        for red, d in zip(reds, corr, strict=True):
            w = red.unit_weighting(*(() if d is None else _sums(d)))
            one = _curve_metrics(*curve_counts(red, w), spec.far_targets, w.correct, w.total)
            observed.append({k: float(v[0]) for k, v in one.items()})
        return observed, _reduced_replicates(reds, sampler, spec, correct_list)
    observed = [_observed(s, y, spec, c) for s, c in zip(scores_list, corr, strict=True)]
    return observed, _exact_replicates(scores_list, y, sampler, spec, correct_list)


def _sums(d: Decisions) -> tuple[float, float | None]:
    """Total weight of the correct decisions and of all, by counts per fold (no (n,)
    float array); the total is None when all weigh 1."""
    if d.group is None:
        return float(np.count_nonzero(d.correct)), None
    k = d.group_weight.size
    right = np.bincount(d.group[d.correct], minlength=k) @ d.group_weight
    return float(right), float(np.bincount(d.group, minlength=k) @ d.group_weight)


def _percentile(values: np.ndarray, level: float) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(v, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def _observed(scores, labels, spec: BootstrapSpec, decisions: Decisions | None = None
              ) -> dict[str, float]:
    y = np.asarray(labels).astype(bool)
    order, last = sorted_pairs(scores, y)
    one = _weighted_metrics(order, last, y[order], np.ones((1, y.size)), spec.far_targets,
                            decisions)
    return {k: float(v[0]) for k, v in one.items()}


def bootstrap_ci(scores, labels, subject_a=None, subject_b=None, spec: BootstrapSpec | None = None,
                 correct=None) -> BootstrapResult:
    """Percentile CIs of AUC, EER, TAR@FAR (and accuracy when ``correct`` is given).

    ``scores``, ``labels``: (n,); ``subject_a``/``subject_b``: (n,) subject ids of both sides
    (None: resample pairs); ``correct``: (n,) bool per-pair correctness at fixed thresholds
    (the pooled fraction), or :class:`Decisions` (``Decisions.of(correct, folds)``: the
    mean over folds of unequal size).
    """
    spec = spec or BootstrapSpec()
    s, y, _ = check_scores_labels(scores, labels)
    check_targets(spec.far_targets)
    sampler = _WeightSampler(s.size, subject_a, subject_b, spec.seed)
    corr = None if correct is None else [as_decisions(correct)]
    (obs,), (reps,) = _resample([s], y, sampler, spec, corr)
    n_invalid = int(np.isnan(reps["auc"]).sum())
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
    """Compare two systems scored on the same pairs with shared bootstrap resamples
    (:func:`paired_difference`: CIs and p-values; NaN with ``spec.n_boot`` 0). Returns
    the differences and the resampling unit. ``correct_1``, ``correct_2``: as
    :func:`bootstrap_ci`'s ``correct``.
    """
    spec = spec or BootstrapSpec()
    s1, y, _ = check_scores_labels(scores_1, labels)
    s2, _, _ = check_scores_labels(scores_2, labels)
    sampler = _WeightSampler(s1.size, subject_a, subject_b, spec.seed)
    corr = None
    if correct_1 is not None and correct_2 is not None:
        corr = [as_decisions(correct_1), as_decisions(correct_2)]
    (o1, o2), (r1, r2) = _resample([s1, s2], y, sampler, spec, corr)
    none = np.empty(0)  # n_boot 0: the differences, with no replicates for a CI
    return [paired_difference(k, o1[k], o2[k], r1.get(k, none), r2.get(k, none), spec.level)
            for k in o1], sampler.unit


def paired_difference(metric: str, value_1: float, value_2: float, replicates_1: np.ndarray,
                      replicates_2: np.ndarray, level: float) -> PairedDifference:
    """System 2 minus system 1 from replicates drawn by one shared resampling (entry b of
    both from the same draw). Replicates where either system's metric is undefined (NaN)
    are left out. The p-value tests "no difference": twice the smaller tail mass of the
    replicate differences at zero, capped at 1."""
    d = np.asarray(replicates_2, np.float64) - np.asarray(replicates_1, np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        nan = float("nan")
        return PairedDifference(metric, value_1, value_2, value_2 - value_1, nan, nan, nan)
    p = float(min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0))))
    return PairedDifference(metric, value_1, value_2, value_2 - value_1,
                            *_percentile(d, level), p)
