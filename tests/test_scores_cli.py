import gzip
import json

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.errors import DataError
from bench.evaluation import EvalPlan, evaluate_scores
from bench.scores import example_scores, read_scores, write_scores
from bench.yawbins import YawBinning


@pytest.fixture
def example(tmp_path):
    path = tmp_path / "scores.csv"
    write_scores(example_scores(n_subjects=100, pairs_per_fold=70), path)
    return path


def test_example_roundtrip_keeps_extra_columns(example, tmp_path):
    df = read_scores(example)
    assert list(df.columns[:7]) == ["score", "label", "fold", "subject_a", "subject_b",
                                    "yaw_a", "yaw_b"]
    assert "protocol" in df.columns  # extra metadata kept
    gz = tmp_path / "scores.csv.gz"
    write_scores(df, gz)
    again = read_scores(gz)
    np.testing.assert_allclose(again["score"], df["score"], rtol=1e-8)


def test_example_has_a_pose_gap(example):
    res = evaluate_scores(read_scores(example),
                          EvalPlan(yaw=YawBinning(pair_rule="probe"), n_boot=50))
    bins = res["by_yaw"]["by_bin"]
    assert bins["[0,30)"]["eer"] < bins["[60,90]"]["eer"]
    assert bins["[0,30)"]["accuracy"] > bins["[60,90]"]["accuracy"]


def _write(tmp_path, text, name="s.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text,needle", [
    ("score\n0.5\n", "missing required column(s) label"),
    ("score,label\n0.5,1\nabc,0\n", ":3: column 'score': 'abc'"),
    ("score,label\n0.5,1\n,0\n", ":3: column 'score'"),
    ("score,label\n0.5,1\nnan,0\n", ":3: column 'score'"),
    ("score,label\n0.5,1\n0.2,2\n", ":3: column 'label': '2'"),
    ("score,label\n0.5,1\n0.2,1\n", "label 1"),
    ("score,label,yaw_a,yaw_b\n0.5,1,x,3\n0.1,0,1,2\n", ":2: column 'yaw_a'"),
    ("", "empty file"),
])
def test_bad_score_files_name_file_and_line(tmp_path, text, needle):
    p = _write(tmp_path, text)
    with pytest.raises(DataError) as exc:
        read_scores(p)
    assert str(p) in str(exc.value)
    assert needle in str(exc.value)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_scores(tmp_path / "nope.csv")
    bad = tmp_path / "x.csv.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="x.csv.gz"):
        read_scores(bad)


def test_cli_json_keys_and_far_keys_as_written(example):
    r = CliRunner().invoke(main, ["score", str(example), "--json", "--far", "0.1,1e-3",
                                  "--n-boot", "20"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    for key in ("n_pairs", "n_genuine", "auc", "eer", "tar_at_far", "accuracy", "by_yaw"):
        assert key in out
    assert set(out["tar_at_far"]) == {"0.1", "1e-3"}
    assert out["n_pairs"] == 1400 and out["n_genuine"] == 700
    assert set(out["accuracy"]) >= {"mean", "std", "folds"}
    assert len(out["accuracy"]["folds"]) == 10


def test_cli_without_folds_or_yaw_gives_nulls(tmp_path):
    p = _write(tmp_path, "score,label\n0.9,1\n0.8,0\n0.7,1\n0.1,0\n")
    r = CliRunner().invoke(main, ["score", str(p), "--json", "--n-boot", "10"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["accuracy"] is None and out["by_yaw"] is None
    assert out["auc"] == pytest.approx(0.75)


def test_empty_yaw_cell_gives_null_and_warning(tmp_path):
    # only frontal genuine pairs in the profile bin -> one class -> NaN -> null in JSON
    p = _write(tmp_path, "score,label,yaw_a,yaw_b\n0.9,1,0,0\n0.2,0,0,0\n0.8,1,0,80\n0.7,1,5,75\n")
    r = CliRunner().invoke(main, ["score", str(p), "--json", "--n-boot", "10"])
    assert r.exit_code == 0, r.output
    text = r.output[r.output.index("{"):]
    out = json.loads(text)
    assert out["by_yaw"]["by_bin"]["[60,90]"]["auc"] is None
    assert "NaN" not in text and "Infinity" not in text


def test_cli_table_and_errors(example, tmp_path):
    r = CliRunner().invoke(main, ["score", str(example), "--n-boot", "20"])
    assert r.exit_code == 0, r.output
    assert "TAR@FAR=0.001" in r.output and "|yaw| [60,90]" in r.output
    assert "pair bin = bin of the larger |yaw| of its two sides; yaw cell = unordered" in r.output
    bad = _write(tmp_path, "score,label\n0.5,7\n")
    r = CliRunner().invoke(main, ["score", str(bad)])
    assert r.exit_code == 2
    assert f"{bad}:2:" in r.output
    r = CliRunner().invoke(main, ["score", str(example), "--far", "x"])
    assert r.exit_code == 2 and "not a number" in r.output


def test_cli_example_writes_file(tmp_path):
    out = tmp_path / "ex.csv.gz"
    r = CliRunner().invoke(main, ["score", "--example", str(out)])
    assert r.exit_code == 0
    with gzip.open(out, "rt") as f:
        assert f.readline().startswith("score,label,fold")


@pytest.mark.parametrize("rule", ["max", "min", "probe"])
def test_score_rule_offers_the_protocol_pair_rules(example, rule):
    r = CliRunner().invoke(main, ["score", str(example), "--rule", rule, "--n-boot", "0",
                                  "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["by_yaw"]["pair_rule"] == rule


def test_score_rule_refuses_the_old_side_names(example):
    r = CliRunner().invoke(main, ["score", str(example), "--rule", "b"])
    assert r.exit_code == 2 and "probe" in r.output


def test_tar_at_a_far_below_one_false_accept_is_marked(tmp_path):
    """A TAR@FAR target under 1 / impostors allows no false accept: its value is the TAR
    at zero false accepts, and the result and the tables say so instead of passing it off
    as measured at that FAR."""
    rng = np.random.default_rng(0)
    n_gen, n_imp = 300, 400
    lines = ["score,label"] + [f"{s:.6f},1" for s in rng.normal(1, 1, n_gen)] \
        + [f"{s:.6f},0" for s in rng.normal(-1, 1, n_imp)]
    path = _write(tmp_path, "\n".join(lines) + "\n")
    res = evaluate_scores(read_scores(path), EvalPlan(far=("0.01", "0.001"), n_boot=0))
    assert res["far_floor"] == pytest.approx(1 / n_imp)
    out = CliRunner().invoke(main, ["score", str(path), "--far", "0.01,0.001", "--n-boot",
                                    "0"])
    assert out.exit_code == 0, out.output
    row = next(line for line in out.output.splitlines() if line.startswith("| all"))
    cells = [c.strip() for c in row.split("|")]
    assert cells[-2].endswith("*") and not cells[-3].endswith("*"), out.output  # 1e-3 only
    assert "TAR@FAR=0.001: under one false accept" in out.output


def test_a_score_file_without_any_yaw_says_how_to_get_the_breakdown(tmp_path):
    """A .bin run's scores have yaw columns with no value: `bench score` printed two empty
    per-yaw tables, where `bench run` says how to get yaw. Both now say the same."""
    path = tmp_path / "bin_scores.csv"
    rows = [f"{s},{lab},{1 + i % 2},,"
            for i, (s, lab) in enumerate([(0.9, 1), (0.2, 0), (0.8, 1), (0.4, 0)] * 5)]
    path.write_text("score,label,fold,yaw_a,yaw_b\n" + "\n".join(rows) + "\n")
    res = CliRunner().invoke(main, ["score", str(path), "--n-boot", "0"])
    assert res.exit_code == 0, res.output
    assert "no per-yaw breakdown" in res.output and "bench yaw" in res.output
    assert "pair bin" not in res.output


@pytest.mark.parametrize("far", ["0.1,0.1", "1e-3,0.001"])
def test_a_far_given_twice_is_a_usage_error(example, far):
    """Bug: --far 0.1,0.1 on a file with folds ended in a zip() traceback; 1e-3,0.001
    reported one target twice under two names."""
    r = CliRunner().invoke(main, ["score", str(example), "--far", far, "--n-boot", "0"])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "once" in r.output, r.output


def test_an_eval_plan_refuses_a_repeated_far():
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match="once"):
        EvalPlan(far=("0.1", "1e-1"))
    # alike to the 6 digits of the intervals' keys: one key for two targets
    with pytest.raises(ConfigError, match="once"):
        EvalPlan(far=("0.001", "0.0010000001"))


def _subject_file(tmp_path, ids):
    rng = np.random.default_rng(0)
    rows = ["score,label,subject_a,subject_b,yaw_a,yaw_b"]
    for i, (a, b) in enumerate(ids):
        y = i % 2
        rows.append(f"{rng.normal() + 2 * y:.4f},{y},{a},{b},{'' if i % 3 else 10},NA")
    return _write(tmp_path, "\n".join(rows) + "\n")


def test_subject_ids_spelled_like_missing_values_are_ids(tmp_path, monkeypatch):
    """Bug: pandas read the ids NA and null as missing, so their pairs lost their subjects
    and the intervals silently resampled pairs instead."""
    import bench.scores

    names = ["NA", "null", "N/A", "nan", "None", "s5"]
    ids = [(names[i % 6], names[i % 6] if i % 2 else names[(i + 1) % 6]) for i in range(60)]
    p = _subject_file(tmp_path, ids)

    def no_checked(*args):  # empty and NA yaw stay on the fast parser
        raise AssertionError("the checked parser ran")

    monkeypatch.setattr(bench.scores, "_parse_checked", no_checked)
    df = read_scores(p)
    assert set(df["subject_a"]) == set(names)
    assert df["yaw_b"].isna().all() and df["yaw_a"].isna().sum() == 40
    res = evaluate_scores(df, EvalPlan(n_boot=20))
    assert res["ci"]["unit"] == "subject"


def test_a_pair_without_subjects_among_named_ones_is_refused(tmp_path):
    """Bug: one empty subject id switched every interval to pair resampling, unsaid."""
    ids = [("s1", "s1"), ("s1", "s2"), ("s2", "s2"), ("", "s1"), ("s2", "s1"), ("s1", "s1")]
    p = _subject_file(tmp_path, ids)
    with pytest.raises(DataError, match=r"s\.csv:5: .*subject_a.* empty") as err:
        read_scores(p)
    assert "drop both columns" in str(err.value)


def test_a_file_with_no_subject_named_resamples_pairs(tmp_path):
    p = _subject_file(tmp_path, [("", "")] * 6)
    res = evaluate_scores(read_scores(p), EvalPlan(n_boot=20))
    assert res["ci"]["unit"] == "pair"


def test_tables_keep_two_decimals_for_every_rate(example):
    """Bug: tabulate re-parsed the formatted cells, so 97.10 printed as 97.1 and 3.00 as 3
    beside 99.51 (and the leaderboard's 78.50 as 78.5)."""
    import pandas as pd

    from bench.runner.leaderboard import to_markdown

    r = CliRunner().invoke(main, ["score", str(example), "--n-boot", "0"])
    assert r.exit_code == 0, r.output
    row = next(line for line in r.output.splitlines() if line.startswith("| all"))
    cells = [c.strip() for c in row.strip("|").split("|")][3:]
    assert all(c.rstrip("*").count(".") == 1 and len(c.rstrip("*").split(".")[1]) == 2
               for c in cells), row
    board = pd.DataFrame([{"protocol": "p", "model": "m", "value": 0.785, "ci_low": 0.75,
                           "n": 4, "run_id": "x"}])
    text = to_markdown(board)
    assert "78.50" in text and "75.00" in text, text


def test_scores_that_look_like_distances_are_warned_about(tmp_path):
    """A distance file (lower = more alike) gave AUC 11 % and 0 % TARs without a word."""
    p = _write(tmp_path, "score,label\n0.1,1\n0.9,0\n0.2,1\n0.8,0\n0.5,1\n0.4,0\n")
    r = CliRunner().invoke(main, ["score", str(p), "--n-boot", "0"])
    assert r.exit_code == 0 and "AUC 11.11 % is below 50 %" in r.output, r.output
    assert "negate" in r.output


def test_a_missing_value_leaves_a_column_of_numbers_right_aligned():
    from bench.report.tables import text_table

    text = text_table([["a", "97.10"], ["b", "n/a"], ["c", "3.00"]], ["", "acc %"])
    lines = text.splitlines()
    assert lines[2].endswith("  97.10 |") and lines[3].endswith("    n/a |"), text
    with pytest.raises(ValueError, match="headers"):
        text_table([["a", "1", "2"]], ["", "x"])
