"""IJB metric semantics against formats.md: IJB-A 1:1 is reported per split, then mean and
std over the splits (each split has its own ROC), beside the pooled number and its CI."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from bench.evaluation import EvalPlan, evaluate_scores


def _tar_at_far(scores, labels, far):
    """Largest TPR among ROC points with FPR <= far (sklearn's full curve)."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return tpr[fpr <= far].max()


def test_tar_at_far_has_a_mean_and_std_over_splits():
    rng = np.random.default_rng(0)
    frames = []
    for fold, shift in ((1, 0.0), (2, 0.8), (3, 0.3)):  # splits of unlike difficulty
        labels = np.r_[np.ones(40, int), np.zeros(400, int)]
        scores = rng.normal(labels * 2.0 + shift * (1 - labels), 1.0)
        frames.append(pd.DataFrame({"score": scores, "label": labels, "fold": fold}))
    df = pd.concat(frames, ignore_index=True)
    result = evaluate_scores(df, EvalPlan(n_boot=0))
    splits = result["tar_at_far_folds"]
    for far in ("0.1", "0.01"):
        per = [_tar_at_far(f["score"], f["label"], float(far)) for f in frames]
        assert [s["tar_at_far"][far] for s in splits["folds"]] == per
        assert splits["mean"][far] == np.mean(per) and splits["std"][far] == np.std(per)
        # the pooled ROC is a different number: one threshold for all splits
        assert result["tar_at_far"][far] == _tar_at_far(df["score"], df["label"], float(far))
    assert result["tar_at_far"]["0.01"] != splits["mean"]["0.01"]
    assert splits["std_kind"] == "population (ddof=0) over folds"
    # and the run's console table says it (IJB-A's published form), not only result.json
    from bench.report.tables import summary_table

    text = summary_table(result)
    m, sd = splits["mean"]["0.01"], splits["std"]["0.01"]
    assert f"0.01: {100 * m:.2f} +- {100 * sd:.2f}" in text and "per fold's own ROC" in text


def test_a_split_with_one_class_gives_nan_not_an_error():
    df = pd.DataFrame({"score": [0.9, 0.1, 0.8, 0.7], "label": [1, 0, 1, 1],
                       "fold": [1, 1, 2, 2]})
    splits = evaluate_scores(df, EvalPlan(n_boot=0))["tar_at_far_folds"]
    assert np.isnan(splits["folds"][1]["tar_at_far"]["0.1"])
    assert splits["mean"]["0.1"] == 1.0  # the mean of the splits that have both classes


def test_no_folds_no_split_summary():
    df = pd.DataFrame({"score": [0.9, 0.1], "label": [1, 0]})
    assert evaluate_scores(df, EvalPlan(n_boot=0))["tar_at_far_folds"] is None


def test_per_fold_tar_below_a_folds_resolution_is_marked():
    """Bug: the per-fold TAR@FAR line printed 0.001 on 20 impostors per fold, a TAR at zero
    false accepts, without the '*' the README promises wherever a FAR is below one false
    accept (the pooled table marked it; this line did not)."""
    from bench.report.tables import BELOW_FLOOR, summary_table

    rng = np.random.default_rng(1)
    frames = [pd.DataFrame({"score": rng.normal(np.r_[np.ones(20), np.zeros(20)], 1.0),
                            "label": np.r_[np.ones(20, int), np.zeros(20, int)], "fold": f})
              for f in (1, 2)]
    result = evaluate_scores(pd.concat(frames, ignore_index=True), EvalPlan(n_boot=0))
    assert [f["n_impostor"] for f in result["tar_at_far_folds"]["folds"]] == [20, 20]
    line = next(s for s in summary_table(result).splitlines() if "per fold's own ROC" in s)
    parts = dict(p.split(": ", 1) for p in line.split(" folds: ", 1)[1].split(", "))
    assert parts["0.1"].rstrip(" %").endswith(tuple("0123456789"))  # 0.1 * 20 = 2 false accepts
    assert parts["0.01"].rstrip(" %").endswith(BELOW_FLOOR)
