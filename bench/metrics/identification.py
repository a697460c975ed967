"""Closed-set CMC and open-set TPIR@FPIR for one gallery (bob.measure semantics).

Inputs: ``scores`` (P, G) similarity of every probe to every gallery template,
``probe_subjects`` (P,), ``gallery_subjects`` (G,). A probe is *mated* when its subject is
in the gallery. Call once per gallery (IJB-A: once per split) and aggregate across splits.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_targets


def _check(scores, probe_subjects, gallery_subjects):
    s = np.asarray(scores, dtype=np.float64)
    p, g = np.asarray(probe_subjects), np.asarray(gallery_subjects)
    if s.ndim != 2 or s.shape != (p.size, g.size):
        raise ValueError(f"scores must be (n_probes, n_gallery) = ({p.size}, {g.size}), got {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    mate = p[:, None] == g[None, :]
    return s, mate


def mate_ranks(scores, probe_subjects, gallery_subjects) -> np.ndarray:
    """(P,) 1-based rank of the best-scoring mate; 0 for non-mated probes.

    Ties are counted against the probe: rank = 1 + number of non-mated gallery entries
    scoring at least as high as the best mate.
    """
    s, mate = _check(scores, probe_subjects, gallery_subjects)
    best_mate = np.where(mate, s, -np.inf).max(axis=1)
    rank = 1 + np.sum(~mate & (s >= best_mate[:, None]), axis=1)
    return np.where(mate.any(axis=1), rank, 0)


def cmc(scores, probe_subjects, gallery_subjects, ranks=(1, 5, 10)) -> np.ndarray:
    """Identification rate at each rank in ``ranks`` over mated probes, shape (len(ranks),)."""
    r = mate_ranks(scores, probe_subjects, gallery_subjects)
    r = r[r > 0]
    if r.size == 0:
        return np.full(len(ranks), np.nan)
    return np.array([np.mean(r <= k) for k in ranks])


def tpir_at_fpir(scores, probe_subjects, gallery_subjects, targets=(0.1, 0.01)):
    """Open-set TPIR at each FPIR target; returns (tpir (K,), thresholds (K,)).

    FPIR(t): fraction of non-mated probes whose best gallery score is >= t. A mated probe
    counts towards TPIR(t) only when its mate is at rank 1 *and* scores >= t. For each
    target the threshold is the lowest one with FPIR <= target.
    """
    s, mate = _check(scores, probe_subjects, gallery_subjects)
    t = check_targets(targets, "fpir")
    mated = mate.any(axis=1)
    if mated.all() or not mated.any():
        raise ValueError("open-set identification needs mated and non-mated probes")
    nonmated_max = np.sort(s[~mated].max(axis=1))[::-1]
    ranks = mate_ranks(s, probe_subjects, gallery_subjects)
    best_mate = np.where(mate, s, -np.inf).max(axis=1)
    hit_scores = best_mate[mated & (ranks == 1)]
    n_mated, n_non = int(mated.sum()), nonmated_max.size
    allowed = np.floor(t * n_non + 1e-9).astype(int)  # false alarms allowed per target
    # Accept scores strictly above the (allowed+1)-th highest non-mated score.
    cut = np.where(allowed < n_non, nonmated_max[np.minimum(allowed, n_non - 1)], -np.inf)
    tpir = np.array([np.sum(hit_scores > c) for c in cut]) / n_mated
    thresholds = np.array([np.nextafter(c, np.inf) for c in cut])
    return tpir, thresholds
