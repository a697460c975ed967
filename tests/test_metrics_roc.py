import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from bench.metrics import auc, eer, roc_curve, roc_summary, tar_at_far


def _data(seed, n=3000, ties=False):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    s = rng.normal(size=n) + 1.2 * y
    if ties:
        s = np.round(s, 1)
    return s, y


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_matches_sklearn(seed, ties):
    s, y = _data(seed, ties=ties)
    r = roc_curve(s, y, drop_intermediate=False)
    fpr, tpr, thr = sk_roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(r.fpr, fpr)
    np.testing.assert_allclose(r.tpr, tpr)
    np.testing.assert_allclose(r.thresholds[1:], thr[1:])
    assert r.thresholds[0] == np.inf
    assert auc(r.fpr, r.tpr) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_dropped_points_lie_on_the_same_polyline(ties, weighted):
    s, y = _data(11, n=2000, ties=ties)
    w = np.random.default_rng(1).integers(1, 3, s.size) if weighted else None
    full = roc_curve(s, y, w, drop_intermediate=False)
    short = roc_curve(s, y, w)
    assert short.fpr.size < full.fpr.size
    # every full point lies on the short polyline (TPR as a function of FPR, right-continuous)
    for f, t in zip(full.fpr, full.tpr, strict=True):
        on = (short.fpr == f) & (short.tpr == t)
        if not on.any():
            k = np.searchsorted(short.fpr, f, side="right")
            assert short.tpr[k - 1] == pytest.approx(t)
    assert auc(short.fpr, short.tpr) == pytest.approx(auc(full.fpr, full.tpr), abs=1e-12)
    assert eer(short.fpr, short.tpr) == pytest.approx(eer(full.fpr, full.tpr), abs=1e-12)
    targets = [0.5, 0.1, 0.013, 0.001, 0.0]
    np.testing.assert_allclose(tar_at_far(short.fpr, short.tpr, targets),
                               tar_at_far(full.fpr, full.tpr, targets))
    # the thresholds of the short curve reproduce its operating points
    if w is None:
        for f, t, th in zip(short.fpr, short.tpr, short.thresholds, strict=True):
            assert np.mean(s[~y] >= th) == pytest.approx(f)
            assert np.mean(s[y] >= th) == pytest.approx(t)


def test_weighted_roc_equals_repeated_rows():
    s, y = _data(3, n=400, ties=True)
    w = np.random.default_rng(0).integers(0, 4, s.size)
    r_w = roc_curve(s, y, weights=w)
    rep = np.repeat(np.arange(s.size), w)
    r_rep = roc_curve(s[rep], y[rep])
    # Weighted curve has the points of the repeated one (plus zero-weight duplicates).
    assert auc(r_w.fpr, r_w.tpr) == pytest.approx(auc(r_rep.fpr, r_rep.tpr), abs=1e-12)
    assert eer(r_w.fpr, r_w.tpr) == pytest.approx(eer(r_rep.fpr, r_rep.tpr), abs=1e-12)


def test_hand_computed_small_case():
    # scores: genuine 0.9, 0.6, 0.4; impostor 0.7, 0.3
    s = [0.9, 0.7, 0.6, 0.4, 0.3]
    y = [1, 0, 1, 1, 0]
    r = roc_curve(s, y, drop_intermediate=False)
    np.testing.assert_allclose(r.tpr, [0, 1 / 3, 1 / 3, 2 / 3, 1, 1])
    np.testing.assert_allclose(r.fpr, [0, 0, 0.5, 0.5, 0.5, 1])
    # 6 genuine-impostor pairs, 4 ordered correctly (0.6 and 0.4 lose to 0.7).
    assert auc(r.fpr, r.tpr) == pytest.approx(4 / 6)
    tar = tar_at_far(r.fpr, r.tpr, [0.0, 0.49, 0.5, 1.0])
    np.testing.assert_allclose(tar, [1 / 3, 1 / 3, 1, 1])


def test_eer_known_answers():
    # Perfect separation: EER 0.
    assert eer(*_ft([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])) == pytest.approx(0.0)
    # Reversed: EER 1.
    assert eer(*_ft([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1])) == pytest.approx(1.0)
    # All tied: the chance diagonal crosses FPR = FNR at 0.5.
    assert eer(*_ft([0.5] * 4, [1, 0, 1, 0])) == pytest.approx(0.5)
    # Symmetric interleaving g i g i ... : the segment crossing is exact, not a nearest point.
    s = np.arange(10)[::-1].astype(float)
    y = np.array([1, 0] * 5)
    fpr, tpr = _ft(s, y)
    e = eer(fpr, tpr)
    assert 0 < e < 0.5
    # On the interpolated ROC, fpr == 1 - tpr at the crossing.
    grid = np.linspace(0, 1, 100001)
    tpr_i = np.interp(grid, fpr, tpr)
    k = np.argmin(np.abs(grid - (1 - tpr_i)))
    assert e == pytest.approx(grid[k], abs=1e-4)


def _ft(s, y):
    r = roc_curve(s, y)
    return r.fpr, r.tpr


def test_gaussian_eer_matches_theory():
    from scipy.stats import norm

    rng = np.random.default_rng(0)
    d = 2.0
    s = np.concatenate([rng.normal(d, 1, 200_000), rng.normal(0, 1, 200_000)])
    y = np.r_[np.ones(200_000), np.zeros(200_000)]
    fpr, tpr = _ft(s, y)
    assert eer(fpr, tpr) == pytest.approx(norm.cdf(-d / 2), abs=3e-3)


@pytest.mark.parametrize("transform", [np.exp, lambda x: 3 * x - 7, np.arctan])
def test_invariant_to_increasing_transform_and_order(transform):
    s, y = _data(5, ties=True)
    base = roc_summary(s, y)
    perm = np.random.default_rng(1).permutation(s.size)
    other = roc_summary(transform(s)[perm], y[perm])
    for k in ("auc", "eer", "tar_at_far"):
        np.testing.assert_allclose(other[k], base[k], atol=1e-12)


def test_tar_at_far_never_exceeds_target():
    s, y = _data(7, n=5000)
    r = roc_curve(s, y)
    targets = [0.3, 0.05, 0.001, 0.0]
    tar, thr = tar_at_far(r.fpr, r.tpr, targets, r.thresholds)
    for t, v, th in zip(targets, tar, thr, strict=True):
        far_at = np.mean(s[~y] >= th)
        assert far_at <= t
        assert np.mean(s[y] >= th) == pytest.approx(v)
        # Largest: every admissible point has TPR <= v.
        assert r.tpr[r.fpr <= t].max() == pytest.approx(v)


@pytest.mark.parametrize("bad", [
    ([0.1, np.nan], [0, 1]),
    ([0.1, 0.2], [0, 2]),
    ([0.1, 0.2], [1, 1]),
    ([0.1, 0.2, 0.3], [0, 1]),
])
def test_invalid_inputs(bad):
    with pytest.raises(ValueError):
        roc_curve(*bad)
