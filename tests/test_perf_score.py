"""``bench perf score``: the whole score job beside pandas + scikit-learn, on a tiny size."""

from __future__ import annotations

import pandas as pd

from bench.perf import score_bench
from bench.scores import read_scores


def test_score_file_is_shaped_like_ijbc_and_readable(tmp_path):
    path = score_bench.write_score_file(tmp_path / "s.csv", 5_000, 0.01, subjects=30)
    df = read_scores(path)
    assert len(df) == 5_000 and df["label"].sum() == 50
    genuine = df[df["label"] == 1]
    assert (genuine["subject_a"] == genuine["subject_b"]).all()
    assert (df.loc[df["label"] == 0, "subject_a"] != df.loc[df["label"] == 0, "subject_b"]).all()


def test_score_bench_runs_both_jobs_and_agrees_on_auc(tmp_path):
    records = score_bench.run(score_bench.ScoreBenchConfig(
        sizes=(3_000,), subject_sizes=(3_000,), subjects=40, n_boot=20, genuine_fraction=0.05),
        tmp_path)
    r, with_subjects = records
    assert with_subjects["ci_unit"] == "subject" and with_subjects["subjects"] == 40
    assert r["pairs"] == 3_000 and r["genuine"] == 150 and r["n_boot"] == 20
    assert r["same_auc"] and r["ci_unit"] == "pair"
    assert r["auc_low"] <= r["auc"] <= r["auc_high"]
    assert r["bench_score_s"] > 0 and r["pandas_sklearn_s"] > 0
    assert not list(tmp_path.glob("*.csv"))  # the generated files are removed
    pd.DataFrame(records)  # flat records: one CSV row each
