"""The one yaw vocabulary (bench.yawbins) and the stages that read it."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from bench.errors import ConfigError
from bench.evaluation import EvalPlan, evaluate_scores
from bench.runner.pooling import template_table
from bench.scores import example_scores
from bench.yawbins import PAIR_RULES, TEMPLATE_YAW, YawBinning, bin_labels, yaw_bin

EDGES = (0, 30, 60, 90)


def test_bins_are_half_open_and_the_last_takes_what_lies_beyond():
    np.testing.assert_array_equal(yaw_bin([0, -29.9, 30, 59, -60, 90, 95, np.nan], EDGES),
                                  [0, 0, 1, 1, 2, 2, 2, -1])
    assert bin_labels(EDGES) == ["[0,30)", "[30,60)", "[60,90]"]
    with pytest.raises(ConfigError):
        yaw_bin([1], (0, 30, 20))


def test_pairs_cell_and_rules():
    yaw_a, yaw_b = [5, 70, 45, np.nan], [-80, 10, 50, 0]
    bins = YawBinning(EDGES, "max").pairs(yaw_a, yaw_b)
    np.testing.assert_array_equal(bins.lo, [0, 0, 1, -1])
    np.testing.assert_array_equal(bins.hi, [2, 2, 1, -1])
    np.testing.assert_array_equal(bins.pair, [2, 2, 1, -1])
    np.testing.assert_array_equal(YawBinning(EDGES, "min").pairs(yaw_a, yaw_b).pair,
                                  [0, 0, 1, -1])
    # probe: side b alone, so a pair whose side a has no yaw still has a bin
    np.testing.assert_array_equal(YawBinning(EDGES, "probe").pairs(yaw_a, yaw_b).pair,
                                  [2, 0, 1, 0])
    with pytest.raises(ConfigError, match="pair_rule"):
        YawBinning(EDGES, "b")


def test_bins_take_one_byte_a_pair():
    """Bins were int64: five arrays of them cost 40 bytes a pair in the per-yaw metrics,
    2.6 GB for IJB-C's 69M 1:N pairs."""
    bins = YawBinning(EDGES, "max").pairs([5, 70, np.nan], [-80, 10, 0])
    assert {a.dtype for a in bins} == {np.dtype(np.int8)}
    assert yaw_bin([5.0], tuple(range(0, 200))).dtype == np.int32  # 199 bins do not fit


@pytest.mark.parametrize("rule", list(PAIR_RULES))
def test_evaluate_scores_takes_every_rule_a_protocol_accepts(rule):
    """Bug: pair_rule = "probe" passed protocol validation, then evaluate_scores raised."""
    df = example_scores(n_subjects=40, pairs_per_fold=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = evaluate_scores(df, EvalPlan(yaw=YawBinning(EDGES, rule), n_boot=0))
    by = res["by_yaw"]
    assert by["pair_rule"] == rule and by["rule_doc"] == PAIR_RULES[rule]
    assert sum(b["n_pairs"] for b in by["by_bin"].values()) + by["n_unbinned"] == len(df)


@pytest.mark.parametrize("how", TEMPLATE_YAW)
def test_template_yaw_rule_reaches_the_template_table(how):
    """Bug: the runner summarised template yaw with a hard-coded median."""
    samples = pd.DataFrame({"template": ["t", "t", "t", "u"], "subject": ["A"] * 3 + ["B"],
                            "yaw": [10.0, -20.0, 60.0, -5.0]})
    t = template_table(samples, YawBinning(template_yaw=how)).set_index("template")
    assert t.loc["t", "yaw"] == {"median": 20.0, "mean": 30.0, "max": 60.0}[how]
    assert t.loc["u", "yaw"] == -5.0  # one image: its own yaw, sign kept
