import numpy as np
import pytest

from bench.metrics import cmc, fold_accuracy, mate_ranks, tpir_at_fpir


def _brute_force(s, y, f):
    """Exhaustive search over all midpoints between distinct scores on the training folds."""
    u = np.unique(s)
    cands = np.concatenate([[u[0] - 1], (u[1:] + u[:-1]) / 2, [u[-1] + 1]])
    accs, trains = [], []
    for k in np.unique(f):
        tr, te = f != k, f == k
        train_acc = np.array([np.mean((s[tr] >= c) == y[tr]) for c in cands])
        best = train_acc.max()
        trains.append(best)
        # any best threshold is admissible; report the held-out accuracy range
        te_accs = [np.mean((s[te] >= c) == y[te]) for c in cands[train_acc == best]]
        accs.append((min(te_accs), max(te_accs)))
    return trains, accs


@pytest.mark.parametrize("seed", [0, 1])
def test_fold_accuracy_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 600
    y = rng.random(n) < 0.5
    s = np.round(rng.normal(size=n) + 1.5 * y, 2)
    f = rng.integers(1, 11, n)
    res = fold_accuracy(s, y, f)
    trains, accs = _brute_force(s, y, f)
    np.testing.assert_allclose(res.train_accuracy, trains)
    for a, (lo, hi) in zip(res.accuracy, accs, strict=True):
        assert lo - 1e-12 <= a <= hi + 1e-12
    # The threshold achieves the reported training accuracy.
    for k, fold in enumerate(res.folds):
        tr = f != fold
        assert np.mean((s[tr] >= res.thresholds[k]) == y[tr]) == pytest.approx(trains[k])
    assert res.mean == pytest.approx(np.mean(res.accuracy))
    assert res.std == pytest.approx(np.std(res.accuracy))


def test_fold_accuracy_uses_given_folds_not_blocks():
    # Fold ids interleaved: contiguous-block folding would give different thresholds.
    s = np.array([0.9, 0.1, 0.8, 0.35, 0.7, 0.3, 0.65, 0.2])
    y = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    f = np.array([1, 2, 1, 2, 2, 1, 2, 1])
    res = fold_accuracy(s, y, f)
    # Fold 1 is thresholded on fold 2's plateau (0.35, 0.65], fold 2 on fold 1's (0.3, 0.8].
    np.testing.assert_allclose(res.thresholds, [0.5, 0.55])
    np.testing.assert_allclose(res.accuracy, [1.0, 1.0])
    assert list(res.folds) == [1, 2]


def test_fold_accuracy_memory_does_not_grow_with_the_fold_count():
    """Bug: (folds, pairs) tables of cumulative counts peaked at about 80 float64s per pair
    with ten folds, 7 GiB for IJB-C's 69M 1:N pairs with two; one fold at a time needs a
    fixed few arrays of the pair count. Then 15.5 float64s per pair (8.6 GiB at IJB-C's
    size) in int64 counts and padded copies of the distinct scores; int32 counts and no
    copies need about 6."""
    import tracemalloc

    rng = np.random.default_rng(0)
    n = 200_000
    scores, labels, folds = rng.normal(size=n), rng.random(n) < 0.3, rng.integers(0, 10, n)
    tracemalloc.start()
    try:
        fold_accuracy(scores, labels, folds)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 8 * n, peak / (8 * n)


@pytest.mark.parametrize("scores", [
    [1.7e308, 1.6e308, 1.5e308, 1.4e308],            # hi + lo overflows to inf
    [np.nextafter(1.0, 2.0), 1.0, 0.5, 0.25],         # (hi + lo) / 2 rounds down to lo
], ids=["huge", "adjacent"])
def test_the_midpoint_threshold_separates_what_training_separated(scores):
    """Bug: the threshold (hi + lo) / 2 overflowed to inf (accepting nothing) or rounded
    onto the impostor score, so a perfectly separated fold scored 50 %."""
    s = np.array(scores[:2] * 2)
    y = np.array([1, 0, 1, 0])
    f = np.array([0, 0, 1, 1])
    res = fold_accuracy(s, y, f)
    np.testing.assert_array_equal(res.accuracy, [1.0, 1.0])
    assert np.all((res.thresholds > s[1]) & (res.thresholds <= s[0]))


def test_fold_accuracy_needs_two_folds():
    with pytest.raises(ValueError):
        fold_accuracy([0.1, 0.9], [0, 1], [1, 1])


def test_cmc_and_ranks_hand_made():
    gallery = np.array(["A", "B", "C"])
    probes = np.array(["A", "B", "C", "X"])
    scores = np.array([
        [0.9, 0.1, 0.2],  # A rank 1
        [0.8, 0.7, 0.1],  # B rank 2
        [0.5, 0.6, 0.4],  # C rank 3
        [0.3, 0.2, 0.1],  # X non-mated
    ])
    np.testing.assert_array_equal(mate_ranks(scores, probes, gallery), [1, 2, 3, 0])
    np.testing.assert_allclose(cmc(scores, probes, gallery, ranks=(1, 2, 3)), [1 / 3, 2 / 3, 1])


def test_tpir_at_fpir_hand_made():
    gallery = np.array(["A", "B"])
    probes = np.array(["A", "A", "B", "X", "Y", "Z", "W"])
    scores = np.array([
        [0.9, 0.1],   # mated, rank 1, 0.9
        [0.6, 0.2],   # mated, rank 1, 0.6
        [0.8, 0.5],   # mated, rank 2 -> never counts
        [0.7, 0.1],   # non-mated max 0.7
        [0.4, 0.3],   # non-mated max 0.4
        [0.2, 0.55],  # non-mated max 0.55
        [0.1, 0.05],  # non-mated max 0.1
    ])
    tpir, thr = tpir_at_fpir(scores, probes, gallery, targets=(0.0, 0.25, 0.5, 1.0))
    # FPIR 0: threshold above 0.7 -> only 0.9 counts: 1/3
    # FPIR 0.25: one false alarm allowed (0.7), threshold above 0.55 -> 0.9, 0.6: 2/3
    # FPIR 0.5: two allowed, threshold above 0.4 -> 2/3 (rank-2 probe never counts)
    # FPIR 1: everything accepted -> 2/3
    np.testing.assert_allclose(tpir, [1 / 3, 2 / 3, 2 / 3, 2 / 3])
    nonmated_max = np.array([0.7, 0.4, 0.55, 0.1])
    for t, th in zip((0.0, 0.25, 0.5, 1.0), thr, strict=True):
        assert np.mean(nonmated_max >= th) <= t


def test_tpir_requires_both_kinds():
    with pytest.raises(ValueError):
        tpir_at_fpir(np.eye(2), ["A", "B"], ["A", "B"])


def test_unknown_subjects_never_match_each_other():
    """Regression (per-probe pass): subjects were factorised with NaN as a value, so a
    probe and a gallery entry without a subject id matched; a missing id matches nothing."""
    scores = np.array([[0.9, 0.1], [0.2, 0.8]])
    probes = np.array([np.nan, "b"], dtype=object)
    gallery = np.array([np.nan, "b"], dtype=object)
    assert mate_ranks(scores, probes, gallery).tolist() == [0, 1]
