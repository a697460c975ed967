"""The typed run result: result.json, the schema check, the README table and leaderboard
rows all come from RunResult."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from bench.runner import leaderboard as lb
from bench.runner.result_schema import FIELDS, RunResult, describe, validate_result

RESULTS = Path(__file__).resolve().parents[1] / "results"


def test_fields_schema_and_readme_table_are_the_dataclass():
    assert list(FIELDS) == [f.name for f in dataclasses.fields(RunResult)]
    readme = (RESULTS.parent / "README.md").read_text()
    assert describe() in readme


@pytest.mark.parametrize("path", sorted(RESULTS.glob("runs/*/result.json")),
                         ids=lambda p: p.parent.name)
def test_committed_results_round_trip(path):
    data = json.loads(path.read_text())
    record = RunResult.from_dict(data)
    assert record.to_dict() == data and list(record.to_dict()) == list(data)


def test_a_result_missing_a_key_is_refused_by_name():
    data = json.loads(next(RESULTS.glob("runs/*/result.json")).read_text())
    del data["metrics"]
    with pytest.raises(ValueError, match="missing key 'metrics'"):
        RunResult.from_dict(data)
    assert validate_result({**data, "surprise": 1}) != []


def _result(run_id: str, with_pairs: list[str], value: float) -> dict:
    """A committed result whose yaw bins with pairs are ``with_pairs``."""
    data = json.loads(next(RESULTS.glob("runs/cfp-fp__*/result.json")).read_text())
    block = {"eer": 0.1, "accuracy": 0.9}
    data["run_id"] = run_id
    data["main_score"]["value"] = value
    data["metrics"]["by_yaw"]["by_bin"] = {b: block for b in with_pairs}
    return data


def test_leaderboard_columns_have_a_fixed_order_whatever_the_runs(tmp_path):
    """Bug: columns followed insertion order, so yaw columns landed after `commit`."""
    runs = {"a": (["[60,90]"], 0.8),   # the first run read: the last bin only
            "b": (["[0,30)", "[30,60)"], 0.7)}
    for run_id, (bins, value) in runs.items():
        folder = tmp_path / "runs" / run_id
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(_result(run_id, bins, value)))
    lb.update(tmp_path)
    columns = list(pd.read_csv(tmp_path / "leaderboard.csv").columns)
    assert columns[:11] == ["protocol", "model", "mode", "flip", "main_score", "value",
                            "ci_low", "ci_high", "ci", "auc", "eer"]
    assert columns[11:15] == ["tar@far=0.1", "tar@far=0.01", "tar@far=0.001", "accuracy"]
    assert columns[15:21] == ["eer|yaw [0,30)", "acc|yaw [0,30)", "eer|yaw [30,60)",
                              "acc|yaw [30,60)", "eer|yaw [60,90]", "acc|yaw [60,90]"]
    assert columns[21:] == ["data", "date", "commit", "run_id"]


def test_committed_leaderboard_is_what_bench_leaderboard_builds(tmp_path):
    import shutil

    shutil.copytree(RESULTS / "runs", tmp_path / "runs")
    lb.update(tmp_path)
    for name in ("leaderboard.csv", "leaderboard.md"):
        assert (tmp_path / name).read_text() == (RESULTS / name).read_text()


def test_search_runs_report_their_identification_metrics():
    """A 1:N run printed and ranked only verification metrics of its probe x gallery pairs
    (not an IJB metric) beside rank-1: its CMC and TPIR@FPIR, mean and std over splits,
    are what a search protocol publishes, on the console and on the board."""
    from bench.report.tables import identification_table

    path = next(RESULTS.glob("runs/ijbc-search*/result.json"))
    result = json.loads(path.read_text())
    summary = result["identification"]["summary"]
    row, order = RunResult.from_dict(result).leaderboard_row()
    assert row["rank1"] == summary["rank1"]["mean"]
    assert row["tpir@fpir=0.01"] == summary["tpir@fpir=0.01"]["mean"]
    text = identification_table(result["identification"])
    r1 = summary["rank1"]
    assert f"{100 * r1['mean']:.2f} +- {100 * r1['std']:.2f}" in text
    assert "TPIR@FPIR=0.1" in text and f"{len(result['identification']['splits'])} splits" in text


def _ident_splits(seed=0, n_probes=60, n_subjects=15, galleries=(8, 7)):
    """Two galleries searched by one probe set, some probe subjects in neither."""
    import numpy as np

    from bench.runner.scoring import SplitScores

    rng = np.random.default_rng(seed)
    names = np.array([f"s{i}" for i in range(n_subjects)], dtype=object)
    probes = pd.DataFrame({"template": [f"p{i}" for i in range(n_probes)],
                           "subject": names[rng.integers(0, n_subjects, n_probes)]})
    splits = []
    for fold, n_gallery in enumerate(galleries, 1):
        gallery = pd.DataFrame({"template": [f"g{fold}-{i}" for i in range(n_gallery)],
                                "subject": names[rng.choice(n_subjects, n_gallery, False)]})
        mate = probes["subject"].to_numpy()[:, None] == gallery["subject"].to_numpy()[None, :]
        scores = rng.normal(size=mate.shape) + 1.5 * mate
        splits.append(SplitScores(fold, gallery, probes, scores))
    return splits


def test_the_search_score_table_keeps_its_fold_in_one_byte():
    """The fold column was int64: 8 bytes a row of IJB-C's 69M probe x gallery rows."""
    import numpy as np

    from bench.runner.scoring import search_score_table

    splits = _ident_splits()
    templates = pd.concat([sp.gallery for sp in splits] + [splits[0].probes])
    templates["yaw"] = 0.0
    table = search_score_table(splits, templates)
    assert table["fold"].dtype == np.int8
    sizes = [len(sp.probes) * len(sp.gallery) for sp in splits]
    assert table["fold"].tolist() == [1] * sizes[0] + [2] * sizes[1]


def test_search_runs_get_a_subject_bootstrap_ci_of_their_identification_metrics():
    """1:N metrics had mean +- std over splits only: no CI to tell two models apart."""
    from bench.evaluation import EvalPlan
    from bench.protocols import load_protocol
    from bench.report.tables import identification_table
    from bench.runner.scoring import identification

    plan = EvalPlan.from_protocol(load_protocol("ijbc-search"), n_boot=200, seed=3)
    splits = _ident_splits()
    ident = identification(splits, plan.ranks, plan.fpir, plan.bootstrap_spec())
    ci = ident["ci"]
    assert (ci["unit"], ci["n_boot"], ci["level"], ci["seed"]) == ("subject", 200, 0.95, 3)
    assert list(ci["metrics"]) == list(ident["summary"])
    for key, block in ci["metrics"].items():
        assert block["estimate"] == ident["summary"][key]["mean"]
        assert block["low"] <= block["estimate"] <= block["high"]
    # without resamples, the numbers and keys are those of before
    plain = identification(splits, plan.ranks, plan.fpir)
    none = identification(splits, plan.ranks, plan.fpir,
                          EvalPlan.from_protocol(load_protocol("ijbc-search"),
                                                 n_boot=0).bootstrap_spec())
    assert plain == none == {k: v for k, v in ident.items() if k != "ci"}
    # the console table shows it beside mean +- std, and says what it is
    r1, c1 = ident["summary"]["rank1"], ci["metrics"]["rank1"]
    text = identification_table(ident)
    assert (f"{100 * r1['mean']:.2f} +- {100 * r1['std']:.2f} "
            f"[{100 * c1['low']:.2f}, {100 * c1['high']:.2f}]") in text
    assert "[low, high]: 95% bootstrap CI over subjects (200 resamples, seed 3)" in text
    assert "[" not in identification_table(plain)
    # the main score (rank-1) carries it to result.json and the leaderboard as 1:1 CIs do
    metrics = {"ci": {"unit": "pair", "level": 0.9, "metrics": {}}}  # the pairs' own CI
    score = plan.main_score(metrics, ident)
    assert score == {"name": "rank1", "value": r1["mean"], "low": c1["low"],
                     "high": c1["high"], "ci": "95% bootstrap over subjects"}


def test_a_search_result_with_a_ci_is_valid_and_its_board_row_carries_it(tmp_path):
    from bench.evaluation import EvalPlan
    from bench.protocols import load_protocol
    from bench.runner.scoring import identification

    old = json.loads(next(RESULTS.glob("runs/ijbc-search*/result.json")).read_text())
    # as written before 1:N CIs: no identification CI, a main score without an interval
    old["identification"].pop("ci", None)
    old["main_score"] = {k: v for k, v in old["main_score"].items()
                         if k not in ("low", "high", "ci")}
    plan = EvalPlan.from_protocol(load_protocol("ijbc-search"), n_boot=50)
    ident = identification(_ident_splits(), plan.ranks, plan.fpir, plan.bootstrap_spec())
    new = {**old, "run_id": "new", "identification": ident,
           "main_score": plan.main_score(old["metrics"], ident)}
    assert validate_result(new) == []
    row, _ = RunResult.from_dict(new).leaderboard_row()
    low, high = (ident["ci"]["metrics"]["rank1"][k] for k in ("low", "high"))
    assert (row["ci_low"], row["ci_high"], row["ci"]) == (low, high,
                                                          "95% bootstrap over subjects")
    # a result written before 1:N CIs is still read, without a CI
    old_row, _ = RunResult.from_dict(old).leaderboard_row()
    assert old_row["ci_low"] is None and old_row["rank1"] == old_row["value"]
    for run in (old, new):
        folder = tmp_path / "runs" / run["run_id"]
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(run))
    lb.update(tmp_path)
    board = pd.read_csv(tmp_path / "leaderboard.csv").set_index("run_id")
    assert board.loc["new", "ci_low"] == pytest.approx(low, rel=1e-5)
    assert pd.isna(board.loc[old["run_id"], "ci_low"])


@pytest.mark.parametrize("path", sorted(RESULTS.glob("runs/*/result.json")),
                         ids=lambda p: p.parent.name)
def test_committed_run_ids_follow_from_their_records(path):
    """A run id is a hash of what its record holds (protocol, data and model hashes, flip,
    bootstrap, seed, detector): a change of that key would rename every committed run on
    its next run, leaving the old folder beside the new one on the leaderboard."""
    from bench.runner.run import RunConfig, run_id_for

    data = json.loads(path.read_text())
    detection = data["preprocessing"].get("detection") or {}
    plan = data["metrics"]["config"]
    cfg = RunConfig(protocol=data["protocol"]["name"], model=data["model"]["name"],
                    n_boot=plan["n_boot"], seed=plan["seed"])
    assert run_id_for(data["protocol"]["name"], cfg, data["model"]["mode"],
                      data["protocol"]["sha256"], data["data"]["sha256"],
                      data["model"]["checkpoint_sha256"], data["preprocessing"]["flip_test"],
                      detection={k: detection[k] for k in ("detector", "mode")}
                      if detection.get("n_samples") else None) == data["run_id"]
