"""Closed-set CMC and open-set TPIR@FPIR for one gallery (bob.measure semantics).

Inputs: ``scores`` (P, G) similarity of every probe to every gallery template,
``probe_subjects`` (P,), ``gallery_subjects`` (G,). A probe is *mated* when its subject is
in the gallery. Call once per gallery (IJB-A: once per split) and aggregate across splits.

Every metric is a function of three numbers per probe (:class:`ProbeScores`: the rank of
its best mate, that mate's score, its best non-mate score), found in one pass over the
matrix. The rates are then weighted sums over probes: weights of ones give the metric,
a (B, P) matrix of draw counts gives B bootstrap replicates at once
(:mod:`bench.metrics.ident_bootstrap`) without touching the matrix again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._validation import check_targets

#: Score-matrix cells per block of the per-probe pass: bounds its temporaries to ~32 MB
#: each (IJB-C: 19,593 x 1,772 = 35M cells, 278 MB as float64, is the caller's already).
_BLOCK_CELLS = 1 << 22


@dataclass(frozen=True)
class ProbeScores:
    """What every 1:N metric needs of one gallery search, per probe, all shape (P,):
    ``subjects``; ``rank``, the 1-based rank of the best mate (0: non-mated);
    ``mate``, the best mate's score (-inf when non-mated); ``nonmate``, the best
    non-mated gallery score (-inf when every gallery entry is a mate). For a non-mated
    probe ``nonmate`` is its top score, the one FPIR counts."""

    subjects: np.ndarray
    rank: np.ndarray
    mate: np.ndarray
    nonmate: np.ndarray

    def __post_init__(self):
        arrays = {"subjects": np.asarray(self.subjects), "rank": np.asarray(self.rank),
                  "mate": np.asarray(self.mate, dtype=np.float64),
                  "nonmate": np.asarray(self.nonmate, dtype=np.float64)}
        n = arrays["subjects"].shape
        if len(n) != 1:
            raise ValueError(f"subjects must be 1-D, got shape {n}")
        for name, value in arrays.items():
            if value.shape != n:
                raise ValueError(f"{name} must have one entry per probe: shape "
                                 f"{value.shape} != {n}")
            object.__setattr__(self, name, value)  # frozen: arrays once, here
        if np.isnan(self.mate).any() or np.isnan(self.nonmate).any():
            raise ValueError("probe scores hold NaN")
        if not np.issubdtype(self.rank.dtype, np.integer) or (self.rank < 0).any():
            raise ValueError("ranks must be integers, 1-based (0: non-mated)")

    @property
    def mated(self) -> np.ndarray:
        return self.rank > 0

    def __len__(self) -> int:
        return len(self.subjects)


def _check(scores, probe_subjects, gallery_subjects):
    s = np.asarray(scores, dtype=np.float64)
    p, g = np.asarray(probe_subjects), np.asarray(gallery_subjects)
    if p.ndim != 1 or g.ndim != 1:
        raise ValueError("probe_subjects and gallery_subjects must be 1-D")
    if s.ndim != 2 or s.shape != (p.size, g.size):
        raise ValueError(f"scores must be (n_probes, n_gallery) = ({p.size}, {g.size}), got {s.shape}")
    return s, p, g


def probe_scores(scores, probe_subjects, gallery_subjects) -> ProbeScores:
    """The :class:`ProbeScores` of one gallery: one pass over ``scores`` in row blocks.

    Ties are counted against the probe: rank = 1 + number of non-mated gallery entries
    scoring at least as high as the best mate.
    """
    s, p, g = _check(scores, probe_subjects, gallery_subjects)
    # subjects as gallery codes (-1: not in the gallery), so that a block's mate mask is
    # an integer comparison, not one of Python objects per cell
    # an unknown (NaN) subject matches nothing, as with ==: gallery -1, probe -2
    g_code, g_names = pd.factorize(g)
    p_code = pd.Index(g_names).get_indexer(p) if g.size else np.full(p.size, -1)
    p_code[p_code < 0] = -2
    rank = np.zeros(p.size, dtype=np.int64)
    mate = np.full(p.size, -np.inf)
    nonmate = np.full(p.size, -np.inf)
    step = max(1, _BLOCK_CELLS // max(1, g.size))
    for lo in range(0, p.size, step):
        block = s[lo:lo + step]
        if not np.all(np.isfinite(block)):
            row, col = np.argwhere(~np.isfinite(block))[0]
            raise ValueError(f"scores must be finite; [{lo + row}, {col}] is {block[row, col]}")
        is_mate = p_code[lo:lo + step, None] == g_code[None, :]
        best = np.where(is_mate, block, -np.inf).max(axis=1, initial=-np.inf)
        others = np.where(is_mate, -np.inf, block)
        nonmate[lo:lo + step] = others.max(axis=1, initial=-np.inf)
        mated = is_mate.any(axis=1)
        rank[lo:lo + step] = np.where(mated, 1 + np.sum(others >= best[:, None], axis=1), 0)
        mate[lo:lo + step] = best
    return ProbeScores(p, rank, mate, nonmate)


def _weights(probes: ProbeScores, weights) -> np.ndarray:
    """(B, P) probe weights; None: one row of ones (the metric itself)."""
    if weights is None:
        return np.ones((1, len(probes)))
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != len(probes):
        raise ValueError(f"weights must be (n_replicates, {len(probes)}), got {w.shape}")
    return w


def cmc_rates(probes: ProbeScores, ranks=(1, 5, 10), weights=None) -> np.ndarray:
    """(B, K) identification rate at each rank: the weight of mated probes whose mate is
    within the rank, over the weight of mated probes (NaN without any)."""
    w = _weights(probes, weights)
    r = probes.rank[:, None]
    hits = ((r > 0) & (r <= np.asarray(ranks, dtype=np.int64).reshape(1, -1))).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w @ hits) / (w @ probes.mated.astype(np.float64))[:, None]


def tpir_rates(probes: ProbeScores, targets=(0.1, 0.01), weights=None
               ) -> tuple[np.ndarray, np.ndarray]:
    """(B, K) TPIR at each FPIR target and (B, K) cut scores: a search is accepted when
    its top score is strictly above the cut.

    Each row's cut comes from its own non-mated probes, each counted its weight times:
    with ``n`` their total weight and ``a = floor(target * n)`` the false alarms allowed,
    the cut is the (a + 1)-th highest of their top scores (-inf when ``a >= n``). A row
    without mated or non-mated weight is NaN.
    """
    t = check_targets(targets, "fpir")
    w = _weights(probes, weights)
    mated = probes.mated
    # non-mated top scores, highest first, and each row's running count of false alarms
    non = np.flatnonzero(~mated)
    non = non[np.argsort(-probes.nonmate[non], kind="stable")]
    tops = probes.nonmate[non]
    alarms = np.cumsum(w[:, non], axis=1)
    n_non = alarms[:, -1] if non.size else np.zeros(w.shape[0])
    allowed = np.floor(t[None, :] * n_non[:, None] + 1e-9)
    # index of the (allowed + 1)-th alarm: the first position whose running count exceeds it
    first = np.sum(alarms[:, :, None] <= allowed[:, None, :], axis=1)
    cut = np.append(tops, -np.inf)[first]  # past the last alarm: everything accepted
    # rank-1 mates ascending: the weight above a cut is the total minus a prefix sum
    hit = np.flatnonzero(probes.rank == 1)
    hit = hit[np.argsort(probes.mate[hit], kind="stable")]
    prefix = np.concatenate([np.zeros((w.shape[0], 1)), np.cumsum(w[:, hit], axis=1)], axis=1)
    below = np.searchsorted(probes.mate[hit], cut.ravel(), side="right").reshape(cut.shape)
    accepted = prefix[:, -1:] - np.take_along_axis(prefix, below, axis=1)
    n_mated = w @ mated.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpir = accepted / n_mated[:, None]
    tpir[(n_mated <= 0) | (n_non <= 0)] = np.nan
    return tpir, cut


def mate_ranks(scores, probe_subjects, gallery_subjects) -> np.ndarray:
    """(P,) 1-based rank of the best-scoring mate; 0 for non-mated probes (ties count
    against the probe, see :func:`probe_scores`)."""
    return probe_scores(scores, probe_subjects, gallery_subjects).rank


def cmc(scores, probe_subjects, gallery_subjects, ranks=(1, 5, 10)) -> np.ndarray:
    """Identification rate at each rank in ``ranks`` over mated probes, shape (len(ranks),)."""
    return cmc_rates(probe_scores(scores, probe_subjects, gallery_subjects), ranks)[0]


def tpir_at_fpir(scores, probe_subjects, gallery_subjects, targets=(0.1, 0.01)):
    """Open-set TPIR at each FPIR target; returns (tpir (K,), thresholds (K,)).

    FPIR(t): fraction of non-mated probes whose best gallery score is >= t. A mated probe
    counts towards TPIR(t) only when its mate is at rank 1 *and* scores >= t. For each
    target the threshold is the lowest one with FPIR <= target.
    """
    probes = probe_scores(scores, probe_subjects, gallery_subjects)
    if probes.mated.all() or not probes.mated.any():
        raise ValueError("open-set identification needs mated and non-mated probes")
    tpir, cut = tpir_rates(probes, targets)
    return tpir[0], np.nextafter(cut[0], np.inf)
