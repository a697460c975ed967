"""ROCs of many reweightings of one large score set, at a cost set by the genuine pairs.

A bootstrap replicate only reweights pairs, and on an IJB-C-sized set (15.7M pairs, 20k
genuine) a weighted pass over every pair per replicate is what makes 1,000 replicates take
half an hour. The ROC of any weighting is fixed by the weighted impostor count above each
genuine score, so the pairs are reduced once, after one sort:

- genuine pairs keep their own weights (the TPR is exact at every genuine score);
- the ``head``, the highest-scoring impostors (low FARs, where a few pairs move the
  threshold), keep their own weights too;
- the rest, the *bulk*, is cut into bins of consecutive impostors whose widths grow
  geometrically (``BIN_GROWTH`` of the impostor rank), and a replicate gives each bin one
  total weight, spread inside the bin in proportion to its pairs.

The ROC of a replicate is then exact down to FAR = head / impostors, and below that it is
interpolated inside bins that each span 1 % of the FAR there. How the bin totals are
drawn is the sampler's business (see :mod:`bench.metrics.bootstrap`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dtypes import index_dtype

#: Relative width of a bulk bin: a bin moves the FPR by at most this fraction of its value.
BIN_GROWTH = 0.01


@dataclass(frozen=True)
class ReducedScores:
    """One system's pairs, sorted once and reduced to what any weighting's ROC needs.

    Index arrays refer to the caller's pairs; ``points_*`` give each ROC operating point:
    the origin, then before and through every distinct genuine score (descending), then
    everything accepted.
    """

    genuine: np.ndarray      # (G,) pair indices of genuine pairs, descending score
    head: np.ndarray         # (H,) pair indices of the top impostors, descending score
    bulk_bin: np.ndarray     # (n_impostor - H,) bin of each remaining impostor
    bulk: np.ndarray         # (n_impostor - H,) their pair indices
    edges: np.ndarray        # (J + 1,) impostor ranks bounding the bins; edges[0] = H
    points_genuine: np.ndarray   # (P,) genuine pairs accepted at each point
    points_impostor: np.ndarray  # (P,) impostors accepted at each point

    @property
    def n_bins(self) -> int:
        return self.edges.size - 1

    @property
    def bin_sizes(self) -> np.ndarray:
        return np.diff(self.edges)

    def unit_weighting(self, correct: float | None = None, total: float | None = None
                       ) -> Weighting:
        """Every pair weighing 1: its ROC is the exact, unweighted one; ``correct`` and
        ``total``: the accuracy's numerator and denominator (see :class:`Weighting`)."""
        return Weighting(np.ones((1, self.genuine.size)), np.ones((1, self.head.size)),
                         self.bin_sizes[None, :].astype(float),
                         None if correct is None else np.array([float(correct)]),
                         None if total is None else np.array([float(total)]))


def bulk_edges(head: int, n_impostor: int, growth: float = BIN_GROWTH) -> np.ndarray:
    """Impostor ranks from ``head`` to ``n_impostor``, each bin ``growth`` times its start."""
    edges = [head]
    while edges[-1] < n_impostor:
        edges.append(min(n_impostor, max(edges[-1] + 1, int(np.ceil(edges[-1] * (1 + growth))))))
    return np.asarray(edges, dtype=np.int64)


def reduce_scores(scores: np.ndarray, labels: np.ndarray, head: int) -> ReducedScores:
    """Reduce once; ``scores`` (n,) float, ``labels`` (n,) bool, ``head`` >= 1.

    Only the genuine pairs and the head are argsorted; the impostors' values are sorted
    (several times faster than an argsort of all pairs) and the bulk is binned by value, so
    tied scores never straddle a bin edge.
    """
    # int32 indices and bins while they fit, negation in place: the bulk arrays live as
    # long as the bootstrap, one per impostor (IJB-C's 1:N: 69M)
    index = index_dtype(scores.size)
    gen_idx = np.flatnonzero(labels).astype(index)
    imp_idx = np.flatnonzero(~labels).astype(index)
    neg_gen, neg_imp_raw = -scores[gen_idx], scores[imp_idx]
    np.negative(neg_imp_raw, out=neg_imp_raw)
    go = np.argsort(neg_gen, kind="stable")
    genuine, neg_gen = gen_idx[go], neg_gen[go]
    neg_imp = np.sort(neg_imp_raw)        # ascending -score: descending score
    n_imp = neg_imp.size
    if head < n_imp:
        starts = np.unique(neg_imp[bulk_edges(head, n_imp)[:-1]])  # -score where bins start
        edges = np.append(np.searchsorted(neg_imp, starts, "left"), n_imp)
        in_head = neg_imp_raw < starts[0]
    else:
        starts, edges = np.empty(0), np.array([n_imp])
        in_head = np.ones(n_imp, bool)
    ho = np.argsort(neg_imp_raw[in_head], kind="stable")
    head_idx = imp_idx[in_head][ho]
    bulk_bin = np.searchsorted(starts, neg_imp_raw[~in_head], "right").astype(np.int32)
    bulk_bin -= 1
    del neg_imp_raw
    # Operating points: impostors strictly above / at-or-above each distinct genuine score.
    values = np.unique(neg_gen)           # distinct genuine scores, descending as -value
    imp_above = np.searchsorted(neg_imp, values, "left")
    imp_through = np.searchsorted(neg_imp, values, "right")
    gen_through = np.searchsorted(neg_gen, values, "right")
    gen_above = np.concatenate([[0], gen_through[:-1]])
    points_genuine = np.concatenate([[0], np.stack([gen_above, gen_through], 1).ravel(),
                                     [genuine.size]])
    points_impostor = np.concatenate([[0], np.stack([imp_above, imp_through], 1).ravel(),
                                      [n_imp]])
    return ReducedScores(genuine, head_idx, bulk_bin, imp_idx[~in_head], edges,
                         points_genuine, points_impostor)


@dataclass
class Weighting:
    """A batch of B replicate weightings of one :class:`ReducedScores`.

    ``genuine`` (B, G) and ``head`` (B, H) weigh those pairs; ``bins`` (B, J) are the bulk
    bins' totals; ``correct`` (B,) the total weight of correctly decided pairs, when asked,
    out of ``total`` (B,) (None: all the weight; given when decisions weigh unequally).
    """

    genuine: np.ndarray
    head: np.ndarray
    bins: np.ndarray
    correct: np.ndarray | None = None
    total: np.ndarray | None = None


def curve_counts(red: ReducedScores, w: Weighting) -> tuple[np.ndarray, np.ndarray]:
    """Weighted (TP, FP) counts at every operating point, each (B, P)."""
    b = w.genuine.shape[0]
    zeros = np.zeros((b, 1))
    tp = np.concatenate([zeros, np.cumsum(w.genuine, axis=1)], axis=1)[:, red.points_genuine]
    head_cum = np.concatenate([zeros, np.cumsum(w.head, axis=1)], axis=1)
    c = red.points_impostor
    h = red.head.size
    fp = head_cum[:, np.minimum(c, h)]
    if red.n_bins:
        bins = np.maximum(w.bins, 0.0)  # a linearised total may dip below 0 in a tiny bin
        bins_cum = np.concatenate([zeros, np.cumsum(bins, axis=1)], axis=1)
        j = np.clip(np.searchsorted(red.edges, c, "right") - 1, 0, red.n_bins - 1)
        frac = np.clip((c - red.edges[j]) / red.bin_sizes[j], 0.0, 1.0)
        in_bulk = c > h
        fp = fp + np.where(in_bulk, bins_cum[:, j] + bins[:, j] * frac, 0.0)
    return tp, fp
