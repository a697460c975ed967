"""The reduced bootstrap of large score sets against exact per-pair resampling."""

import numpy as np
import pytest

from bench.metrics import BootstrapSpec, bootstrap_ci, paired_comparison, roc_summary
from bench.metrics.reweighted_roc import bulk_edges, curve_counts, reduce_scores

FARS = (0.1, 0.01, 0.001)


def _pairs(n=60_000, n_subj=150, n_gen=1_500, seed=0, ties=False, effect=0.5):
    """Subject effects on both genuine and impostor scores, as real data has."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_subj, n)
    y = np.zeros(n, bool)
    y[rng.choice(n, n_gen, replace=False)] = True
    b = np.where(y, a, (a + rng.integers(1, n_subj, n)) % n_subj)
    eff = rng.normal(0, effect, n_subj)
    s = rng.normal(size=n) + y * (2.5 + eff[a]) + ~y * 0.3 * (eff[a] + eff[b])
    if ties:
        s = np.round(s, 1)
    return s, y, a.astype(str), b.astype(str)


@pytest.mark.parametrize("ties", [False, True])
def test_reduction_with_unit_weights_is_the_exact_roc(ties):
    s, y, _, _ = _pairs(n=20_000, ties=ties)
    red = reduce_scores(s, y, head=500)
    assert red.n_bins > 10 and red.edges[0] <= 500
    tp, fp = curve_counts(red, red.unit_weighting())
    exact = roc_summary(s, y, FARS)
    from bench.metrics import auc, eer, tar_at_far
    fpr, tpr = fp[0] / fp[0, -1], tp[0] / tp[0, -1]
    assert auc(fpr, tpr) == pytest.approx(exact["auc"], abs=1e-12)
    assert eer(fpr, tpr) == pytest.approx(exact["eer"], abs=1e-12)
    np.testing.assert_allclose(tar_at_far(fpr, tpr, FARS), exact["tar_at_far"], atol=1e-12)
    # every impostor counted once: head + bins
    assert red.head.size + red.bulk.size == (~y).sum()
    np.testing.assert_array_equal(np.bincount(red.bulk_bin, minlength=red.n_bins),
                                  red.bin_sizes)


def test_bulk_edges_grow_by_one_percent_and_cover_everything():
    e = bulk_edges(1000, 1_000_000)
    assert e[0] == 1000 and e[-1] == 1_000_000
    assert np.all(np.diff(e) >= 1)
    assert np.all(np.diff(e)[:-1] <= np.ceil(0.01 * e[:-2]) + 1)


def _width(iv):
    return iv.high - iv.low


@pytest.mark.parametrize("unit", ["subject", "pair"])
def test_reduced_intervals_agree_with_exact_resampling(unit):
    s, y, a, b = _pairs()
    sa, sb = (a, b) if unit == "subject" else (None, None)
    exact = bootstrap_ci(s, y, sa, sb, BootstrapSpec(n_boot=400, seed=3, far_targets=FARS,
                                                     head=10**9))
    fast = bootstrap_ci(s, y, sa, sb, BootstrapSpec(n_boot=400, seed=3, far_targets=FARS,
                                                    head=2_000))
    assert exact.unit == fast.unit == unit
    # Subjects: the same subject draws feed both, so replicates nearly coincide; pairs:
    # different draws, so the percentiles agree within Monte Carlo error.
    tol = 0.1 if unit == "subject" else 0.3
    for k, iv in exact.intervals.items():
        f = fast.intervals[k]
        assert f.estimate == pytest.approx(iv.estimate, abs=1e-12), k
        assert abs(f.low - iv.low) <= tol * _width(iv), (k, iv, f)
        assert abs(f.high - iv.high) <= tol * _width(iv), (k, iv, f)
    if unit == "subject":
        r = np.corrcoef(exact.replicates["auc"], fast.replicates["auc"])[0, 1]
        assert r > 0.99


def test_reduced_subject_bootstrap_keeps_the_subject_effect():
    # Same data, resampled by pairs, gives narrower intervals: the reduction must not
    # lose the between-subject variation (the point of resampling subjects).
    s, y, a, b = _pairs(n_subj=40, seed=1, effect=1.0)
    spec = BootstrapSpec(n_boot=300, seed=0, far_targets=FARS, head=2_000)
    subj = bootstrap_ci(s, y, a, b, spec).intervals["auc"]
    pair = bootstrap_ci(s, y, None, None, spec).intervals["auc"]
    assert _width(subj) > 1.3 * _width(pair)


def test_reduced_accuracy_interval_tracks_exact():
    s, y, a, b = _pairs(seed=2)
    correct = (s >= 1.2) == y
    spec = dict(n_boot=300, seed=1, far_targets=FARS)
    exact = bootstrap_ci(s, y, a, b, BootstrapSpec(**spec, head=10**9), correct=correct)
    fast = bootstrap_ci(s, y, a, b, BootstrapSpec(**spec, head=2_000), correct=correct)
    e, f = exact.intervals["accuracy"], fast.intervals["accuracy"]
    assert f.estimate == pytest.approx(e.estimate, abs=1e-12)
    # the linearised bulk drops a second-order term: looser than the ROC metrics
    assert abs(f.low - e.low) <= 0.3 * _width(e) and abs(f.high - e.high) <= 0.3 * _width(e)


def test_reduced_paired_comparison_matches_exact_verdicts():
    s, y, a, b = _pairs(seed=4)
    rng = np.random.default_rng(5)
    better = s + 0.4 * y + rng.normal(0, 0.2, s.size)
    spec = dict(n_boot=200, seed=2, far_targets=FARS)
    exact, unit = paired_comparison(s, better, y, a, b, BootstrapSpec(**spec, head=10**9))
    fast, unit_fast = paired_comparison(s, better, y, a, b, BootstrapSpec(**spec, head=2_000))
    assert unit == unit_fast == "subject"
    for e, f in zip(exact, fast, strict=True):
        assert f.difference == pytest.approx(e.difference, abs=1e-12)
        assert (f.low > 0) == (e.low > 0) and (f.high < 0) == (e.high < 0), e.metric


def test_pair_resampling_of_two_systems_stays_exact():
    # Bins cannot share per-pair weights between two systems: the exact path is used,
    # so a tiny head gives the very same numbers as a huge one.
    s, y, _, _ = _pairs(n=8_000, n_gen=400, seed=6)
    s2 = s + np.random.default_rng(0).normal(0, 0.3, s.size)
    small, _ = paired_comparison(s, s2, y, spec=BootstrapSpec(n_boot=50, head=100))
    big, _ = paired_comparison(s, s2, y, spec=BootstrapSpec(n_boot=50, head=10**9))
    assert [d.as_dict() for d in small] == [d.as_dict() for d in big]


def test_subject_codes_by_hashing_equal_np_unique():
    from bench.metrics.bootstrap import _sorted_codes

    rng = np.random.default_rng(0)
    for ids in (rng.integers(0, 500, 5000), rng.integers(0, 500, 5000).astype(str),
                np.array(["b", "a", 10, 2, float("nan"), "a"], dtype=object)):
        # a missing id (NaN, None) is the unknown subject "", whatever it would print as
        text = ["" if isinstance(v, float) and v != v else str(v) for v in ids.tolist()]
        want_u, want_inv = np.unique(np.array(text, dtype=str), return_inverse=True)
        got_u, (got_inv,) = _sorted_codes(ids)
        np.testing.assert_array_equal(got_u, want_u)
        np.testing.assert_array_equal(got_inv, want_inv)
        # two columns, as the sampler passes subject_a and subject_b: codes into one list
        half = len(ids) // 2
        got_u, (first, second) = _sorted_codes(ids[:half], ids[half:])
        np.testing.assert_array_equal(got_u, want_u)
        np.testing.assert_array_equal(np.concatenate([first, second]), want_inv)
        assert first.dtype == np.int32


def test_subject_bootstrap_memory_per_pair_is_a_few_words(monkeypatch):
    """What the subject bootstrap holds per pair bounds the memory of a 1:N run (IJB-C:
    69M probe x gallery pairs). Factorising a whole subject column peaked at 7 float64s
    per pair (pandas sizes its hash table by the rows), and the reduction held 8-byte
    indices and bins for every bulk impostor. Blocks of rows (here 16k, standing for
    1M of a 69M-row column) and int32 indices and bins: under 6."""
    import tracemalloc

    from bench.metrics import bootstrap, bootstrap_ci

    monkeypatch.setattr(bootstrap, "_FACTORIZE_ROWS", 1 << 14, raising=False)
    s, y, a, b = _pairs(n=400_000, ties=False)
    a, b = a.astype(object), b.astype(object)  # as a score table holds them
    tracemalloc.start()
    try:
        bootstrap_ci(s, y, a, b, BootstrapSpec(n_boot=4))  # few replicates: no chunk cost
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 6 * 8 * s.size, peak / (8 * s.size)
