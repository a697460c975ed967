"""Bootstrap CIs of 1:N metrics (CMC rank-k, TPIR@FPIR) that resample probe subjects.

The gallery is fixed; probe subjects are drawn with replacement, and every probe template
of a drawn subject comes along, as many times as its subject was drawn (the subject
bootstrap of :mod:`bench.metrics.bootstrap`, its sampler, seed and percentile rule, with
probes as the items: a probe's weight is its subject's draw count). Searches of several
galleries by one probe set (IJB-C's G1 and G2) share each draw, and a replicate's value
is the mean over galleries, the number the run reports.

Nothing re-reads the score matrix: each gallery's :class:`ProbeScores` (mate rank, mate
score, best non-mate score per probe) is computed once, and a batch of replicates is a
(B, P) weight matrix over those vectors (:func:`cmc_rates`, :func:`tpir_rates`). TPIR's
threshold is recomputed in every replicate from that replicate's non-mated probes, each
counted as often as it was drawn: the threshold is part of what is being estimated, and
a fixed one would understate the interval. Two systems that searched the same galleries
with the same probes are compared on one shared draw per replicate
(:func:`paired_identification`), so the CI is of the difference itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..metric_specs import rank_key, tpir_key
from ._validation import check_targets
from .bootstrap import (
    _CHUNK_ELEMENTS,
    BootstrapResult,
    BootstrapSpec,
    Interval,
    PairedDifference,
    _percentile,
    _WeightSampler,
    paired_difference,
)
from .identification import ProbeScores, cmc_rates, tpir_rates

__all__ = ["identification_ci", "paired_identification"]


def _rates(search: ProbeScores, ranks, fpir, weights=None) -> np.ndarray:
    """(B, len(ranks) + len(fpir)): CMC points then TPIR points of one gallery."""
    parts = [cmc_rates(search, ranks, weights)]
    if len(fpir):
        parts.append(tpir_rates(search, fpir, weights)[0])
    return np.concatenate(parts, axis=1)


def _check(searches, ranks, fpir, spec: BootstrapSpec, min_boot: int = 1):
    """Validated (ranks, fpir) as tuples; ValueError naming what is wrong."""
    if not searches:
        raise ValueError("no search to resample")
    for s in searches:
        if not isinstance(s, ProbeScores):
            raise ValueError(f"each search must be ProbeScores, got {type(s).__name__}")
    r = np.asarray(ranks, dtype=np.float64).ravel()
    if np.any(r < 1) or np.any(r != np.round(r)):
        raise ValueError(f"ranks must be integers >= 1, got {ranks!r}")
    t = check_targets(fpir, "fpir")
    if r.size + t.size == 0:
        raise ValueError("no rank and no fpir target: nothing to estimate")
    if int(spec.n_boot) != spec.n_boot or spec.n_boot < min_boot:
        what = "a positive integer for a CI" if min_boot else "an integer >= 0"
        raise ValueError(f"n_boot must be {what}, got {spec.n_boot!r}")
    if not 0 < spec.level < 1:
        raise ValueError(f"level must be in (0, 1), got {spec.level!r}")
    return tuple(int(k) for k in r), tuple(float(x) for x in t)


def _gallery_mean(values: np.ndarray, defined: np.ndarray) -> np.ndarray:
    """(B, K) mean over galleries of ``values`` (galleries, B, K), each metric over the
    galleries where it is ``defined`` (galleries, K): a NaN there (a replicate that lost
    it) stays NaN; a metric defined nowhere is NaN."""
    total = np.where(defined[:, None, :], values, 0.0).sum(axis=0)
    count = defined.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _shared_replicates(systems: Sequence[Sequence[ProbeScores]], ranks, fpir,
                       spec: BootstrapSpec):
    """For each system (its searches, one per gallery, of the same probes): the observed
    mean over galleries (K,), which metrics are defined per gallery (galleries, K) and
    ``spec.n_boot`` replicates (n_boot, K), every system weighted by the same draws;
    and the sampler (its unit)."""
    first = systems[0]
    subjects = np.concatenate([np.asarray(s.subjects) for s in first])
    sampler = _WeightSampler(subjects.size, subjects, subjects, spec.seed, item="probe")
    ends = np.cumsum([0] + [len(s) for s in first])
    observed = [np.stack([_rates(s, ranks, fpir) for s in searches])    # (galleries, 1, K)
                for searches in systems]
    defined = [np.isfinite(o[:, 0, :]) for o in observed]
    # every replicate's weights for all galleries' probes, a chunk of replicates at a time
    chunk = max(1, _CHUNK_ELEMENTS // max(1, subjects.size))
    reps = [[] for _ in systems]
    done = 0
    while done < spec.n_boot:
        b = min(chunk, spec.n_boot - done)
        w = sampler.draw(b)
        for out, searches, ok in zip(reps, systems, defined, strict=True):
            per = np.stack([_rates(s, ranks, fpir, w[:, lo:hi])
                            for s, lo, hi in zip(searches, ends[:-1], ends[1:], strict=True)])
            out.append(_gallery_mean(per, ok))
        done += b
    estimates = [_gallery_mean(o, ok)[0] for o, ok in zip(observed, defined, strict=True)]
    k = observed[0].shape[-1]
    return estimates, [np.concatenate(r) if r else np.empty((0, k)) for r in reps], sampler


def identification_ci(searches: Sequence[ProbeScores], ranks=(1, 5, 10), fpir=(0.1, 0.01),
                      spec: BootstrapSpec | None = None) -> BootstrapResult:
    """Percentile CIs of the mean over galleries of each rank-k rate and TPIR@FPIR.

    ``searches``: one :class:`ProbeScores` per gallery (from :func:`probe_scores`); the
    same subject id is one subject in every gallery. Uses ``spec.n_boot``, ``seed`` and
    ``level`` (its FAR targets are 1:1's). Keys: ``rank{k}``, ``tpir@fpir={t}``; each
    interval's estimate is the mean over the galleries where the metric is defined (a
    closed-set gallery has no TPIR). A replicate in which a defined metric is not (no
    mated, or no non-mated probe drawn) is left out of the percentiles and counted in
    ``n_invalid``. Unit "subject", or "probe" when fewer than two named subjects exist.
    """
    spec = spec or BootstrapSpec()
    ranks, fpir = _check(list(searches), ranks, fpir, spec)
    keys = [rank_key(k) for k in ranks] + [tpir_key(t) for t in fpir]
    (estimate,), (replicates,), sampler = _shared_replicates([searches], ranks, fpir, spec)
    counted = np.isfinite(estimate)
    n_invalid = int(np.isnan(replicates[:, counted]).any(axis=1).sum())
    intervals = {k: Interval(float(estimate[j]), *_percentile(replicates[:, j], spec.level))
                 for j, k in enumerate(keys)}
    return BootstrapResult(intervals, sampler.unit, spec.n_boot, spec.level, spec.seed,
                           n_invalid, {k: replicates[:, j] for j, k in enumerate(keys)})


def paired_identification(searches_1: Sequence[ProbeScores], searches_2: Sequence[ProbeScores],
                          ranks=(1, 5, 10), fpir=(0.1, 0.01), spec: BootstrapSpec | None = None
                          ) -> tuple[list[PairedDifference], str]:
    """System 2 minus system 1 on each rank-k rate and TPIR@FPIR (means over galleries),
    with CIs and p-values from shared resamples of probe subjects: both systems searched
    the same galleries with the same probes, and each replicate draws the subjects once
    for both (:func:`bench.metrics.bootstrap.paired_difference`; NaN with ``spec.n_boot``
    0). Returns the differences, keyed as :func:`identification_ci`'s, and the
    resampling unit."""
    spec = spec or BootstrapSpec()
    searches_1, searches_2 = list(searches_1), list(searches_2)
    ranks, fpir = _check(searches_1 + searches_2, ranks, fpir, spec, min_boot=0)
    if len(searches_1) != len(searches_2):
        raise ValueError(f"the systems searched different galleries: {len(searches_1)} "
                         f"against {len(searches_2)} searches")
    for g, (s1, s2) in enumerate(zip(searches_1, searches_2, strict=True), start=1):
        if len(s1) != len(s2) or not np.array_equal(np.asarray(s1.subjects, str),
                                                    np.asarray(s2.subjects, str)):
            raise ValueError(f"gallery {g}: the systems were not searched with the same probes "
                             "(subjects differ in number or order)")
    keys = [rank_key(k) for k in ranks] + [tpir_key(t) for t in fpir]
    (o1, o2), (r1, r2), sampler = _shared_replicates([searches_1, searches_2], ranks, fpir,
                                                     spec)
    return [paired_difference(k, float(o1[j]), float(o2[j]), r1[:, j], r2[:, j], spec.level)
            for j, k in enumerate(keys)], sampler.unit
