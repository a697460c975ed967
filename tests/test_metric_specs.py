"""Metric specs: parsed once at protocol load, read by the main score, identification,
leaderboard order and compare's verdict."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bench.errors import ConfigError
from bench.evaluation import EvalPlan
from bench.metric_specs import parse_metric
from bench.protocols import load_protocol
from bench.protocols.loading import load_file, shipped_files
from bench.runner import leaderboard as lb
from bench.runner.compare import verdict


def _protocol(tmp_path, parent: str, report: list[str], main: str):
    path = tmp_path / "mine.toml"
    path.write_text(f'name = "mine"\nextends = "{parent}"\n[metrics]\n'
                    f"report = {json.dumps(report)}\nmain = {json.dumps(main)}\n")
    return load_file(path, shipped_files())


@pytest.mark.parametrize("name, key, higher", [
    ("accuracy", "accuracy", True), ("eer", "eer", False), ("auc", "auc", True),
    ("tar@far=.01", "tar@far=0.01", True), ("tar@far=1e-3", "tar@far=0.001", True),
    ("rank20", "rank20", True), ("tpir@fpir=.1", "tpir@fpir=0.1", True)])
def test_one_spelling_and_direction_per_metric(name, key, higher):
    spec = parse_metric(name)
    assert (spec.key, spec.higher_is_better) == (key, higher)


@pytest.mark.parametrize("report, main, message", [
    (["accuracy", "rank1"], "accuracy", "unknown metric 'rank1'"),
    (["tar@far=0.01", "tar@far=.01"], "tar@far=.01", "more than once"),
    (["auc"], "eer", "main_score 'eer'"),
    (["tar@far=.0"], "tar@far=.0", r"rate must be in \(0, 1\]"),
])
def test_a_metric_no_stage_computes_fails_at_load(tmp_path, report, main, message):
    with pytest.raises(ConfigError, match=message):
        _protocol(tmp_path, "cfp-fp", report, main)


def test_main_score_never_falls_back_to_auc(tmp_path):
    """Bug: main = "rank20" or "tpir@fpir=.1" reported the AUC under the name auc."""
    ident = {"summary": {"rank20": {"mean": 0.7, "std": 0.0},
                         "tpir@fpir=0.1": {"mean": 0.4, "std": 0.0}}}
    metrics = {"auc": 0.99, "ci": None}
    for main, value in (("rank20", 0.7), ("tpir@fpir=.1", 0.4)):
        plan = EvalPlan.from_protocol(_protocol(tmp_path, "ijba-search", ["rank1", main], main))
        assert 20 in plan.ranks or 0.1 in plan.fpir  # identification computes it
        score = plan.main_score(metrics, ident)
        assert (score["name"], score["value"]) == (parse_metric(main).key, value)


def test_tar_main_reads_its_one_spelling_and_its_ci(tmp_path):
    plan = EvalPlan.from_protocol(_protocol(tmp_path, "cfp-fp", ["tar@far=.01"], "tar@far=.01"))
    assert plan.far == ("0.1", "0.01", "0.001")  # one entry per target, not ".01" beside it
    metrics = {"tar_at_far": {"0.01": 0.5}, "ci": {"level": 0.95, "unit": "subject", "metrics": {
        "tar@far=0.01": {"low": 0.4, "high": 0.6}}}}
    assert plan.main_score(metrics) == {"name": "tar@far=0.01", "value": 0.5, "low": 0.4,
                                        "high": 0.6, "ci": "95% bootstrap over subjects"}


def test_protocol_specs_are_parsed_once_and_left_out_of_the_definition():
    p = load_protocol("ijba-search")
    assert [s.key for s in p.metric_specs] == list(p.metrics)
    assert p.main_metric.key == "rank1"
    assert "metric_specs" not in p.to_dict()


def test_compare_verdict_follows_the_metric_direction():
    row = {"mode": "stitch", "ci_low": -0.05, "ci_high": -0.01, "difference": -0.03}
    assert verdict(row, parse_metric("eer")) == "better"
    assert verdict(row, parse_metric("auc")) == "worse"
    assert verdict({**row, "ci_high": 0.01}, parse_metric("eer")) == "no significant difference"


def test_compare_report_writes_a_rounding_zero_difference_as_plus_zero():
    """Bug: two modes with equal TPIR got "-0.00" (their means differed by 1e-17); any
    difference that rounds to zero points is +0.00."""
    from bench.runner.compare import markdown_report

    rows = [{"yaw_bin": "1:N", "n_pairs": None, "n_searches": 10, "unit": "subject",
             "mode": m, "metric": "rank1", "value": v, "naive": 0.5, "difference": d,
             "ci_low": lo, "ci_high": hi, "p_value": p, "verdict": w}
            for m, v, d, lo, hi, p, w in (
                ("naive", 0.5, None, None, None, None, ""),
                ("stitch", 0.5, -1e-17, -0.069, 0.10, 0.8, "no significant difference"),
                ("end2end", 0.5, -4.9e-5, -0.00004, 0.10, 0.9, "no significant difference"))]
    md = markdown_report(pd.DataFrame(rows), "t", {}, EvalPlan(n_boot=10))
    assert "50.00 (+0.00 [-6.90, +10.00], p=0.800" in md and "-0.00" not in md


def test_leaderboard_puts_the_lowest_eer_first(tmp_path):
    """Bug: the leaderboard sorted every main score descending, an EER too."""
    from test_runner_parts import _fake_result

    for i, eer in enumerate((0.2, 0.1, 0.3)):
        r = _fake_result(f"run{i}", eer)
        r["main_score"]["name"] = "eer"
        d = tmp_path / "runs" / f"run{i}"
        d.mkdir(parents=True)
        (d / "result.json").write_text(json.dumps(r))
    lb.update(tmp_path)
    assert list(pd.read_csv(tmp_path / "leaderboard.csv")["value"]) == [0.1, 0.2, 0.3]


def test_a_run_whose_main_metric_is_unknown_is_named_not_fatal(tmp_path):
    from test_runner_parts import _fake_result

    for i, name in enumerate(("accuracy", "0.1")):
        r = _fake_result(f"run{i}", 0.5)
        r["main_score"]["name"] = name
        d = tmp_path / "runs" / f"run{i}"
        d.mkdir(parents=True)
        (d / "result.json").write_text(json.dumps(r))
    warned = []
    lb.update(tmp_path, warn=warned.append)
    assert list(pd.read_csv(tmp_path / "leaderboard.csv")["run_id"]) == ["run0"]
    assert any("run1" in w and "unknown metric" in w for w in warned)
