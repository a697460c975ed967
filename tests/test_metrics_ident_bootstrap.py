"""1:N bootstrap CIs over probe subjects: checked replicate by replicate against a naive loop
that resamples the probe rows of the score matrix and recomputes every metric from its
definition, probe by probe."""

from __future__ import annotations

import numpy as np
import pytest

from bench.metrics import (
    BootstrapSpec,
    ProbeScores,
    cmc,
    ident_bootstrap,
    identification_ci,
    paired_identification,
    probe_scores,
    tpir_at_fpir,
    tpir_rates,
)

RANKS, FPIR = (1, 2, 5), (0.5, 0.25, 0.1, 0.0)


def _reference(scores, probes, gallery, ranks, fpir):
    """CMC and TPIR@FPIR of one gallery from the definitions (NaN when undefined)."""
    gal = list(gallery)
    ranks_of, best_of, non_top = [], [], []
    for i, p in enumerate(probes):
        if p not in gal:
            non_top.append(max(scores[i]))
            continue
        best = max(scores[i, j] for j, g in enumerate(gal) if g == p)
        ranks_of.append(1 + sum(scores[i, j] >= best for j, g in enumerate(gal) if g != p))
        best_of.append(best)
    n_mated = len(ranks_of)
    rates = [sum(r <= k for r in ranks_of) / n_mated if n_mated else np.nan for k in ranks]
    tpir = []
    for t in fpir:
        if not n_mated or not non_top:
            tpir.append(np.nan)
            continue
        # the lowest threshold whose FPIR is at most t: just above a non-mated top score
        candidates = sorted({-np.inf} | {np.nextafter(x, np.inf) for x in non_top})
        thr = min(c for c in candidates
                  if sum(x >= c for x in non_top) <= t * len(non_top) + 1e-9)
        tpir.append(sum(r == 1 and b >= thr for r, b in zip(ranks_of, best_of, strict=True))
                    / n_mated)
    return rates + tpir


def _searches(seed=0, n_probes=40, n_subjects=12, galleries=(7, 6)):
    """Two galleries searched by one probe set (IJB-C's layout); rounded scores tie."""
    rng = np.random.default_rng(seed)
    names = np.array([f"s{i:02d}" for i in range(n_subjects)], dtype=object)
    probes = names[rng.integers(0, n_subjects, n_probes)]
    out = []
    for n_gallery in galleries:
        gallery = names[rng.choice(n_subjects, n_gallery, replace=False)]
        mate = probes[:, None] == gallery[None, :]
        scores = np.round(rng.normal(size=(n_probes, n_gallery)) + 1.2 * mate, 1)
        out.append((scores, probes, gallery))
    return out


def _naive_bootstrap(searches, ranks, fpir, n_boot, seed):
    """Replicates by brute force: draw subject multiplicities (subjects in sorted order,
    as the project's subject bootstrap does), repeat each probe row by its subject's draw
    count, recompute the metrics of every gallery, average over galleries."""
    subjects = np.unique(np.concatenate([p for _, p, _ in searches]).astype(str))
    n = subjects.size
    draws = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=n_boot)
    reps = []
    for m in draws:
        per_split = []
        for scores, probes, gallery in searches:
            rows = np.repeat(np.arange(len(probes)),
                             m[np.searchsorted(subjects, probes.astype(str))])
            per_split.append(_reference(scores[rows], probes[rows], gallery, ranks, fpir))
        reps.append(np.mean(np.array(per_split, dtype=float), axis=0))
    return np.array(reps)


def _keys(ranks, fpir):
    return [f"rank{k}" for k in ranks] + [f"tpir@fpir={t:g}" for t in fpir]


def test_point_estimates_match_the_definitions():
    for scores, probes, gallery in _searches(seed=3):
        expect = _reference(scores, probes, gallery, RANKS, FPIR)
        got_cmc = cmc(scores, probes, gallery, RANKS)
        got_tpir, thr = tpir_at_fpir(scores, probes, gallery, FPIR)
        np.testing.assert_array_equal(np.concatenate([got_cmc, got_tpir]), expect)
        top = scores[~np.isin(probes, gallery)].max(axis=1)
        for t, th in zip(FPIR, thr, strict=True):
            assert np.mean(top >= th) <= t


@pytest.mark.parametrize("seed", [0, 1])
def test_bootstrap_equals_a_naive_loop_over_resampled_probe_rows(seed, monkeypatch):
    # a small chunk: replicates are drawn over several chunks and must not notice
    monkeypatch.setattr(ident_bootstrap, "_CHUNK_ELEMENTS", 7 * 80)
    searches = _searches(seed=seed)
    spec = BootstrapSpec(n_boot=60, seed=11)
    res = identification_ci([probe_scores(*s) for s in searches], RANKS, FPIR, spec)
    naive = _naive_bootstrap(searches, RANKS, FPIR, spec.n_boot, spec.seed)
    keys = _keys(RANKS, FPIR)
    assert list(res.intervals) == keys and res.unit == "subject"
    for j, key in enumerate(keys):
        np.testing.assert_array_equal(res.replicates[key], naive[:, j], err_msg=key)
        finite = naive[:, j][np.isfinite(naive[:, j])]
        # the project's percentile rule, spelt as bootstrap.py spells it (to the last bit)
        low, high = np.percentile(finite, [50 * (1 - spec.level), 50 * (1 + spec.level)])
        iv = res.intervals[key]
        assert (iv.low, iv.high) == (low, high)
        observed = np.mean([_reference(*s, RANKS, FPIR)[j] for s in searches])
        assert iv.estimate == observed
    assert res.n_invalid == int(np.isnan(naive).any(axis=1).sum())


def test_a_replicate_recomputes_the_threshold_from_its_own_non_mated_probes():
    # probes 0, 1 mated at rank 1 (0.9, 0.6); non-mated tops 0.7 and 0.4
    probes = ProbeScores(subjects=np.array(["A", "B", "X", "Y"], dtype=object),
                         rank=np.array([1, 1, 0, 0]), mate=np.array([0.9, 0.6, -np.inf, -np.inf]),
                         nonmate=np.array([0.1, 0.2, 0.7, 0.4]))
    weights = np.array([[1.0, 1.0, 1.0, 1.0],    # as observed: no false alarm -> above 0.7
                        [1.0, 1.0, 0.0, 2.0]])   # X not drawn, Y twice: above 0.4
    tpir, cut = tpir_rates(probes, [0.0], weights)
    np.testing.assert_array_equal(cut[:, 0], [0.7, 0.4])
    np.testing.assert_array_equal(tpir[:, 0], [0.5, 1.0])


def test_the_same_seed_gives_the_same_interval_and_another_seed_another():
    searches = [probe_scores(*s) for s in _searches(seed=2)]
    first = identification_ci(searches, RANKS, FPIR, BootstrapSpec(n_boot=200, seed=5))
    again = identification_ci(searches, RANKS, FPIR, BootstrapSpec(n_boot=200, seed=5))
    other = identification_ci(searches, RANKS, FPIR, BootstrapSpec(n_boot=200, seed=6))
    assert first.as_dict() == again.as_dict()
    assert other.as_dict() != first.as_dict()
    for iv in first.intervals.values():
        assert iv.low <= iv.estimate <= iv.high


def test_one_probe_subject_resamples_probes_and_says_so():
    scores, _, gallery = _searches()[0]
    probes = np.array(["s00"] * len(scores), dtype=object)
    res = identification_ci([probe_scores(scores, probes, gallery)], (1,), (),
                            BootstrapSpec(n_boot=20))
    assert res.unit == "probe"


def test_inputs_are_validated_with_clear_errors():
    scores, probes, gallery = _searches()[0]
    bad = scores.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        probe_scores(bad, probes, gallery)
    with pytest.raises(ValueError, match=r"\(n_probes, n_gallery\)"):
        probe_scores(scores[:-1], probes, gallery)
    with pytest.raises(ValueError, match="one entry per probe"):
        ProbeScores(subjects=probes[:-1], rank=np.ones(len(probes), int),
                    mate=np.zeros(len(probes)), nonmate=np.zeros(len(probes)))
    with pytest.raises(ValueError, match="NaN"):
        ProbeScores(subjects=probes[:2], rank=np.array([1, 0]),
                    mate=np.array([np.nan, -np.inf]), nonmate=np.zeros(2))
    good = [probe_scores(scores, probes, gallery)]
    with pytest.raises(ValueError, match="n_boot"):
        identification_ci(good, RANKS, FPIR, BootstrapSpec(n_boot=0))
    with pytest.raises(ValueError, match="level"):
        identification_ci(good, RANKS, FPIR, BootstrapSpec(n_boot=5, level=1.5))
    with pytest.raises(ValueError, match="rank"):
        identification_ci(good, (0,), FPIR, BootstrapSpec(n_boot=5))
    with pytest.raises(ValueError, match="fpir"):
        identification_ci(good, RANKS, (2.0,), BootstrapSpec(n_boot=5))
    with pytest.raises(ValueError, match="no search"):
        identification_ci([], RANKS, FPIR, BootstrapSpec(n_boot=5))


def _other_system(searches, seed):
    """The same searches (probes, galleries) scored by another system."""
    rng = np.random.default_rng(seed)
    return [(np.round(s + rng.normal(scale=0.6, size=s.shape), 1), p, g)
            for s, p, g in searches]


def test_paired_identification_differences_are_of_shared_resamples(monkeypatch):
    monkeypatch.setattr(ident_bootstrap, "_CHUNK_ELEMENTS", 7 * 80)
    one = _searches(seed=4)
    two = _other_system(one, seed=9)
    spec = BootstrapSpec(n_boot=80, seed=3)
    diffs, unit = paired_identification([probe_scores(*s) for s in one],
                                        [probe_scores(*s) for s in two], RANKS, FPIR, spec)
    assert unit == "subject" and [d.metric for d in diffs] == _keys(RANKS, FPIR)
    # the brute-force replicates of each system under one draw of subjects, differenced
    naive = (_naive_bootstrap(two, RANKS, FPIR, spec.n_boot, spec.seed)
             - _naive_bootstrap(one, RANKS, FPIR, spec.n_boot, spec.seed))
    for j, d in enumerate(diffs):
        v1 = np.mean([_reference(*s, RANKS, FPIR)[j] for s in one])
        v2 = np.mean([_reference(*s, RANKS, FPIR)[j] for s in two])
        assert (d.value_1, d.value_2, d.difference) == (v1, v2, v2 - v1)
        finite = naive[:, j][np.isfinite(naive[:, j])]
        low, high = np.percentile(finite, [50 * (1 - spec.level), 50 * (1 + spec.level)])
        assert (d.low, d.high) == (low, high), d.metric
        p = min(1.0, 2 * min(np.mean(finite <= 0), np.mean(finite >= 0)))
        assert d.p_value == p


def test_a_system_against_itself_differs_by_nothing():
    searches = [probe_scores(*s) for s in _searches(seed=5)]
    diffs, _ = paired_identification(searches, searches, RANKS, FPIR,
                                     BootstrapSpec(n_boot=50))
    for d in diffs:
        assert (d.difference, d.low, d.high, d.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_paired_identification_needs_the_same_searches():
    one = [probe_scores(*s) for s in _searches(seed=6)]
    spec = BootstrapSpec(n_boot=10)
    with pytest.raises(ValueError, match="galleries"):
        paired_identification(one, one[:1], RANKS, FPIR, spec)
    scores, probes, gallery = _searches(seed=6)[1]
    shuffled = one[:1] + [probe_scores(scores[::-1], probes[::-1], gallery)]
    with pytest.raises(ValueError, match="gallery 2.*same probes"):
        paired_identification(one, shuffled, RANKS, FPIR, spec)


def test_paired_identification_without_resamples_gives_differences_only():
    one = [probe_scores(*s) for s in _searches(seed=7)]
    two = [probe_scores(*s) for s in _other_system(_searches(seed=7), seed=1)]
    diffs, _ = paired_identification(one, two, RANKS, FPIR, BootstrapSpec(n_boot=0))
    assert all(np.isnan([d.low, d.high, d.p_value]).all() for d in diffs)
    assert any(d.difference != 0 for d in diffs)
