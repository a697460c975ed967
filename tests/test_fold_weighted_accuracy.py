"""Accuracy over folds of unequal size: the interval is of the reported figure.

Bug: the reported accuracy is the mean over folds (the LFW/CFP convention) while its
bootstrap interval was of the pooled fraction of correct pairs. The two agree only when
folds are equal; with IJB-A-like splits of other sizes the interval could exclude the
figure printed beside it (57.2 % [71.1, 76.5]).
"""

import numpy as np
import pandas as pd
import pytest

from bench.evaluation import EvalPlan, evaluate_scores
from bench.metrics import BootstrapSpec, Decisions, bootstrap_ci, paired_comparison

FARS = (0.1, 0.01)


def _unequal_folds(seed=0, sizes=(2000, 100, 100), n_subj=300):
    """A big easy fold and two small hard ones, subjects disjoint across folds."""
    rng = np.random.default_rng(seed)
    frames, base = [], 0
    for fold, (n, sep) in enumerate(zip(sizes, (2.5, 0.2, 0.4), strict=True)):
        y = np.arange(n) % 2 == 0
        a = base + rng.integers(0, n_subj // len(sizes), n)
        b = np.where(y, a, base + rng.integers(0, n_subj // len(sizes), n))
        s = rng.normal(size=n) + sep * y
        frames.append(pd.DataFrame({"score": s, "label": y.astype(int), "fold": fold,
                                    "subject_a": a.astype(str), "subject_b": b.astype(str)}))
        base += n_subj // len(sizes)
    return pd.concat(frames, ignore_index=True)


def test_interval_is_of_the_mean_over_folds():
    df = _unequal_folds()
    res = evaluate_scores(df, EvalPlan(n_boot=300, seed=0))
    mean = res["accuracy"]["mean"]
    pooled = np.mean([f["accuracy"] for f in res["accuracy"]["folds"]])
    assert mean == pytest.approx(pooled)
    ci = res["ci"]["metrics"]["accuracy"]
    assert ci["estimate"] == pytest.approx(mean, abs=1e-12)
    assert ci["low"] < mean < ci["high"], (ci, mean)


def test_a_perfect_small_fold_never_lifts_the_interval_above_one():
    df = _unequal_folds(seed=1)
    df.loc[df["fold"] > 0, "score"] = df.loc[df["fold"] > 0, "label"] * 10.0
    df.loc[df["fold"] == 0, "score"] = df.loc[df["fold"] == 0, "label"] * 10.0
    ci = evaluate_scores(df, EvalPlan(n_boot=200, seed=0))["ci"]["metrics"]["accuracy"]
    assert ci["estimate"] == 1.0 and ci["high"] <= 1.0 + 1e-12 and ci["low"] <= 1.0


@pytest.mark.parametrize("subjects", [True, False], ids=["subjects", "pairs"])
def test_reduced_large_set_path_gives_the_same_weighted_estimate(subjects):
    df = _unequal_folds(seed=2, sizes=(6000, 1500, 500))
    s, y = df["score"].to_numpy(), df["label"].to_numpy().astype(bool)
    correct = (s >= 0.5) == y
    sa, sb = (df["subject_a"].to_numpy(), df["subject_b"].to_numpy()) if subjects \
        else (None, None)
    spec = dict(n_boot=200, seed=3, far_targets=FARS)
    exact = bootstrap_ci(s, y, sa, sb, BootstrapSpec(**spec, head=10**9), correct=Decisions.of(correct, df["fold"])).intervals["accuracy"]
    fast = bootstrap_ci(s, y, sa, sb, BootstrapSpec(**spec, head=200), correct=Decisions.of(correct, df["fold"])).intervals["accuracy"]
    fold_mean = np.mean([correct[df["fold"] == f].mean() for f in range(3)])
    assert exact.estimate == pytest.approx(fold_mean, abs=1e-12)
    assert fast.estimate == pytest.approx(fold_mean, abs=1e-12)
    width = exact.high - exact.low
    assert width > 0
    assert abs(fast.low - exact.low) <= 0.3 * width and abs(fast.high - exact.high) <= 0.3 * width
    unweighted = bootstrap_ci(s, y, sa, sb, BootstrapSpec(**spec, head=10**9),
                              correct=correct).intervals["accuracy"]
    assert unweighted.estimate == pytest.approx(correct.mean(), abs=1e-12)


def test_paired_accuracy_difference_is_of_fold_means():
    df = _unequal_folds(seed=4)
    s, y = df["score"].to_numpy(), df["label"].to_numpy().astype(bool)
    s2 = s + 0.3 * y
    c1, c2 = (s >= 0.5) == y, (s2 >= 0.5) == y
    diffs, _ = paired_comparison(s, s2, y, df["subject_a"].to_numpy(),
                                 df["subject_b"].to_numpy(),
                                 BootstrapSpec(n_boot=100, seed=0, far_targets=FARS),
                                 Decisions.of(c1, df["fold"]), Decisions.of(c2, df["fold"]))
    acc = next(d for d in diffs if d.metric == "accuracy")
    fold_mean = [np.mean([c[df["fold"] == f].mean() for f in range(3)]) for c in (c1, c2)]
    assert acc.value_1 == pytest.approx(fold_mean[0]) and acc.value_2 == pytest.approx(fold_mean[1])
    assert acc.low <= acc.difference <= acc.high


def test_compare_reports_a_runs_accuracy_for_the_whole_set():
    """bench compare's 'all' row must show the accuracy each run reports."""
    from bench.runner.compare import paired_table
    from bench.yawbins import YawBinning

    df = _unequal_folds(seed=5)
    df["yaw_a"], df["yaw_b"] = 0.0, np.where(np.arange(len(df)) % 3 == 0, 80.0, 10.0)
    other = df.assign(score=df["score"] + 0.3 * df["label"])
    table = paired_table({"naive": df, "stitch": other}, YawBinning(),
                         BootstrapSpec(n_boot=50, seed=0, far_targets=FARS))
    row = table[(table["yaw_bin"] == "all") & (table["metric"] == "accuracy")
                & (table["mode"] == "stitch")].iloc[0]
    for frame, value in ((df, row["naive"]), (other, row["value"])):
        plan = EvalPlan(n_boot=0)
        assert value == pytest.approx(evaluate_scores(frame, plan)["accuracy"]["mean"])
