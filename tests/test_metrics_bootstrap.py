import numpy as np

from bench.metrics import BootstrapSpec, bootstrap_ci, paired_comparison


def _pairs(seed=0, n_subj=60, n=1200, shift=1.5):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_subj, n)
    y = rng.random(n) < 0.5
    b = np.where(y, a, (a + rng.integers(1, n_subj, n)) % n_subj)
    s = rng.normal(size=n) + shift * y
    return s, y, a.astype(str), b.astype(str)


def test_bootstrap_is_seeded_and_contains_estimate():
    s, y, a, b = _pairs()
    spec = BootstrapSpec(n_boot=300, seed=4)
    r1 = bootstrap_ci(s, y, a, b, spec)
    r2 = bootstrap_ci(s, y, a, b, spec)
    assert r1.as_dict() == r2.as_dict()
    assert r1.unit == "subject"
    for iv in r1.intervals.values():
        assert iv.low <= iv.estimate <= iv.high
    other = bootstrap_ci(s, y, a, b, BootstrapSpec(n_boot=300, seed=5))
    assert other.as_dict() != r1.as_dict()


def test_subject_bootstrap_wider_than_pair_bootstrap_with_subject_effects():
    # Subject-level random effects make pairs of one subject correlated: resampling pairs
    # understates the uncertainty.
    rng = np.random.default_rng(0)
    n_subj, per = 40, 30
    a = np.repeat(np.arange(n_subj), per)
    y = np.tile(np.arange(per) % 2 == 0, n_subj)
    effect = rng.normal(0, 1.0, n_subj)[a]
    s = rng.normal(size=a.size) + y * (1.0 + effect)
    b = np.where(y, a, (a + 1) % n_subj)
    spec = BootstrapSpec(n_boot=400, seed=0)
    subj = bootstrap_ci(s, y, a, b, spec).intervals["auc"]
    pair = bootstrap_ci(s, y, None, None, spec)
    assert pair.unit == "pair"
    pw = pair.intervals["auc"]
    assert (subj.high - subj.low) > 1.3 * (pw.high - pw.low)


def test_paired_comparison_detects_real_difference_and_not_a_null_one():
    s, y, a, b = _pairs(seed=1)
    rng = np.random.default_rng(2)
    better = s + 0.8 * y + rng.normal(0, 0.1, s.size)
    diffs, unit = paired_comparison(s, better, y, a, b, BootstrapSpec(n_boot=300))
    d = {x.metric: x for x in diffs}
    assert unit == "subject"
    assert d["auc"].difference > 0 and d["auc"].low > 0 and d["auc"].p_value < 0.01
    assert d["eer"].difference < 0 and d["eer"].high < 0
    same, _ = paired_comparison(s, s.copy(), y, a, b, BootstrapSpec(n_boot=100))
    for x in same:
        assert x.difference == 0 and x.p_value == 1.0


def test_paired_comparison_without_resamples_gives_differences_and_no_ci():
    """Bug: `bench compare --n-boot 0` (allowed by its option) crashed with KeyError 'auc':
    there were no replicates to look up."""
    s, y, a, b = _pairs(seed=1)
    diffs, _ = paired_comparison(s, s + 0.5 * y, y, a, b, BootstrapSpec(n_boot=0))
    d = {x.metric: x for x in diffs}
    assert d["auc"].difference > 0
    assert all(np.isnan([x.low, x.high, x.p_value]).all() for x in diffs)


def test_subject_codes_do_not_depend_on_the_factorising_blocks(monkeypatch):
    """Ids that hash as one (0.0 and -0.0, 10 and 10.0) are one subject named as the
    column first writes it; factorised a block of rows at a time, each block kept its own
    first spelling and "10" and "10.0" became two subjects."""
    from bench.metrics import bootstrap

    columns = [np.array([1.0, 2.0, 0.0, 3.0, 4.0, 5.0, -0.0, 0.0, 2.0]),
               np.array(["x", 10, "y", "z", "w", "v", 10.0, "x", 10], dtype=object)]
    whole = bootstrap._sorted_codes(*columns)
    monkeypatch.setattr(bootstrap, "_FACTORIZE_ROWS", 4)
    blocks = bootstrap._sorted_codes(*columns)
    np.testing.assert_array_equal(blocks[0], whole[0])
    for got, expect in zip(blocks[1], whole[1], strict=True):
        np.testing.assert_array_equal(got, expect)
    assert "10.0" not in whole[0] and "-0.0" not in whole[0]
