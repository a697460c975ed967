"""bench run / bench compare end to end on a tiny synthetic set (CPU, seconds)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.errors import BenchError
from bench.runner.compare import compare_modes
from bench.runner.result_schema import validate_result
from bench.runner.run import RunConfig, run_benchmark

TINY_TRAIN = {"classify.epochs": 1, "classify.batch_size": 8, "classify.warmup_epochs": 0.0,
              "stitch.iterations": 20, "stitch.batch_size": 8, "input_size": (32, 32),
              "progress": False, "workers": 1}


@pytest.fixture
def cfg(tiny_synth, tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "runner-cache"  # shared: training is reused
    out = tmp_path_factory.mktemp("results")
    return RunConfig(protocol="cfp-fp", model="resnet18-dream", data=str(tiny_synth),
                     device="cpu", out=str(out), n_boot=30, train_changes=TINY_TRAIN,
                     cache_dir=str(cache), batch_size=16)


def test_run_writes_valid_result_scores_plots_and_leaderboard(cfg, capsys):
    lines = []
    outcome = run_benchmark(cfg, echo=lines.append)
    result = json.loads((outcome.run_dir / "result.json").read_text())
    assert validate_result(result) == []
    assert result["model"]["mode"] == "retrain"
    assert result["model"]["gate"] == "code"
    assert result["data"]["synthetic"] is False  # --data given: not the embedded default
    assert result["main_score"]["name"] == "accuracy"
    assert 0 <= result["main_score"]["value"] <= 1
    scores = pd.read_csv(outcome.run_dir / "scores.csv.gz")
    assert len(scores) == result["metrics"]["n_pairs"] > 0
    assert {"score", "label", "fold", "subject_a", "yaw_b"} <= set(scores.columns)
    for name in result["files"].values():
        assert (outcome.run_dir / name).stat().st_size > 0
    board = pd.read_csv(f"{cfg.out}/leaderboard.csv")
    assert list(board["run_id"]) == [result["run_id"]]
    assert not list(outcome.run_dir.parent.glob(".*"))  # no temporary folders left


def test_rerun_hits_training_and_feature_caches(cfg):
    first = run_benchmark(cfg, echo=lambda s: None)
    lines = []
    again = run_benchmark(cfg, echo=lines.append)
    assert again.run_dir == first.run_dir
    assert again.result["model"]["training"]["reused"] is True
    assert any("(cached)" in line for line in lines)
    pd.testing.assert_frame_equal(again.scores, first.scores)


def test_threads_apply_to_the_run_and_are_restored(cfg, monkeypatch):
    """``--threads`` (a shared CPU: 1 thread can beat 2) governs the run's torch threads,
    training included, and leaves the caller's setting as it was."""
    import torch

    from bench.runner import run as run_module

    seen = []
    real = run_module.extract_features
    monkeypatch.setattr(run_module, "extract_features",
                        lambda *a, **k: (seen.append(torch.get_num_threads()), real(*a, **k))[1])
    before = torch.get_num_threads()
    outcome = run_benchmark(dataclasses.replace(cfg, threads=1), echo=lambda s: None)
    assert seen == [1] and outcome.result["environment"]["torch_threads"] == 1
    assert torch.get_num_threads() == before
    res = CliRunner().invoke(main, ["run", "-p", "cfp-fp", "-m", "resnet18", "--threads", "0"])
    assert res.exit_code == 2 and "--threads" in res.output


def test_missing_data_is_a_clear_error(cfg, tmp_path):
    bad = RunConfig(**{**cfg.__dict__, "data": str(tmp_path / "nowhere")})
    with pytest.raises(BenchError, match="nowhere"):
        run_benchmark(bad, echo=lambda s: None)
    r = CliRunner().invoke(main, ["run", "-p", "cfp-fp", "-m", "resnet18-dream", "--data",
                                  str(tmp_path / "nowhere"), "--out", str(tmp_path)])
    assert r.exit_code == 2 and "nowhere" in r.output and "Traceback" not in r.output


def test_compare_reports_every_mode_with_paired_cis(cfg):
    outcome = compare_modes("cfp-fp", "resnet18", ["naive", "stitch", "end2end", "retrain"],
                            RunConfig(**{**cfg.__dict__, "model": "resnet18"}),
                            echo=lambda s: None)
    t = outcome.table
    assert set(t["mode"]) == {"naive", "stitch", "end2end", "retrain"}
    # CFP-FP pairs a frontal with a profile: under the "max" rule every pair is a profile pair
    assert set(t["yaw_bin"]) == {"all", "[60,90]"}
    dream = t[t["mode"] != "naive"]
    assert dream["ci_low"].notna().all() and (dream["ci_low"] <= dream["ci_high"]).all()
    assert dream["p_value"].between(0, 1).all()
    naive = t[t["mode"] == "naive"]
    assert naive["difference"].isna().all()
    for name in ("report.md", "report.csv", "roc_overlay.png", "compare.json"):
        assert (outcome.report_dir / name).stat().st_size > 0
    md = (outcome.report_dir / "report.md").read_text()
    assert "paired bootstrap" in md and "retrain" in md
    board = pd.read_csv(f"{cfg.out}/leaderboard.csv")
    assert set(board["mode"]) == {"naive", "stitch", "end2end", "retrain"}


def test_compare_on_a_search_protocol_reports_paired_1n_differences(cfg):
    """A 1:N protocol's headline numbers are rank-k and TPIR@FPIR: compare reports each
    mode's difference to naive on them, with paired CIs over probe subjects, beside the
    1:1 view of every probe x gallery pair."""
    base = RunConfig(**{**cfg.__dict__, "protocol": "ijba-search", "model": "resnet18"})
    outcome = compare_modes("ijba-search", "resnet18", ["naive", "stitch"], base,
                            echo=lambda s: None)
    t = outcome.table
    search = t[t["yaw_bin"] == "1:N"]
    assert set(search["metric"]) == {"rank1", "rank5", "rank10", "tpir@fpir=0.1",
                                     "tpir@fpir=0.01"}
    stitch = search[search["mode"] == "stitch"].set_index("metric")
    naive = search[search["mode"] == "naive"].set_index("metric")
    assert (stitch["unit"] == "subject").all()
    assert (stitch["ci_low"] <= stitch["difference"]).all()
    assert (stitch["difference"] <= stitch["ci_high"]).all()
    assert stitch["p_value"].between(0, 1).all()
    results = {m: json.loads((p / "result.json").read_text()) for m, p in outcome.runs.items()}
    for mode, rows in (("naive", naive), ("stitch", stitch)):
        summary = results[mode]["identification"]["summary"]
        for metric, row in rows.iterrows():
            assert row["value"] == pytest.approx(summary[metric]["mean"], abs=1e-12)
    assert stitch.loc["rank1", "difference"] == pytest.approx(
        stitch.loc["rank1", "value"] - naive.loc["rank1", "value"])
    assert {"all"} <= set(t["yaw_bin"])  # the 1:1 view stays
    md = (outcome.report_dir / "report.md").read_text()
    assert "## 1:N search" in md and "rank1" in md


def test_compare_keeps_only_the_scores_of_the_modes_besides_naive(cfg, monkeypatch):
    """Every mode's whole score table was held until the report: four 1:N tables of IJB-C
    (69M rows, 4 GB each). The report reads naive's whole and the others' scores, and a
    mode's whole table is gone before the next mode runs."""
    import gc
    import weakref

    import bench.runner.compare as compare

    seen, earlier, alive = {}, [], []
    real_table, real_run = compare.paired_table, compare.run_benchmark

    def spy_table(tables, *args):
        seen.update(tables)
        return real_table(tables, *args)

    def spy_run(cfg, **kw):
        gc.collect()
        alive.append([ref() is not None for ref in earlier])
        outcome = real_run(cfg, **kw)
        earlier.append(weakref.ref(outcome.scores))
        return outcome

    monkeypatch.setattr(compare, "paired_table", spy_table)
    monkeypatch.setattr(compare, "run_benchmark", spy_run)
    base = RunConfig(**{**cfg.__dict__, "model": "resnet18"})
    compare_modes("cfp-fp", "resnet18", ["stitch", "end2end", "naive"], base,
                  echo=lambda s: None)
    assert list(seen) == ["naive", "stitch", "end2end"]  # naive runs first
    assert {"subject_a", "yaw_a", "a"} <= set(seen["naive"].columns)
    assert list(seen["stitch"].columns) == ["score", "label", "fold"]
    # naive's table is kept whole; stitch's was gone while end2end ran
    assert alive == [[], [True], [True, False]]


def test_compare_without_resamples_reports_differences_without_cis(cfg):
    """Bug: `bench compare --n-boot 0` (an allowed value) crashed with KeyError 'auc'."""
    base = RunConfig(**{**cfg.__dict__, "model": "resnet18", "n_boot": 0})
    outcome = compare_modes("cfp-fp", "resnet18", ["naive", "stitch"], base,
                            echo=lambda s: None)
    stitch = outcome.table[outcome.table["mode"] == "stitch"]
    assert stitch["difference"].notna().all() and stitch["ci_low"].isna().all()
    assert "no CI" in (outcome.report_dir / "report.md").read_text()


@pytest.mark.parametrize("protocol", ["ijba-verify", "ijba-search", "cfp-ff"])
def test_other_protocols_run_end_to_end(cfg, protocol):
    run_cfg = RunConfig(**{**cfg.__dict__, "protocol": protocol, "model": "resnet18",
                           "mode": "naive"})
    outcome = run_benchmark(run_cfg, echo=lambda s: None)
    result = outcome.result
    assert validate_result(json.loads((outcome.run_dir / "result.json").read_text())) == []
    assert result["main_score"]["value"] is not None
    if protocol == "ijba-search":
        ident = result["identification"]
        assert ident["splits"] and {"rank1", "rank5", "tpir@fpir=0.1"} <= set(ident["summary"])
        assert 0 <= ident["summary"]["rank1"]["mean"] <= 1
        # a CI over probe subjects, with the run's n_boot, as the 1:1 metrics have
        assert (ident["ci"]["unit"], ident["ci"]["n_boot"]) == ("subject", cfg.n_boot)
        assert result["main_score"]["low"] <= result["main_score"]["value"]
    else:
        assert result["identification"] is None


def test_too_small_dataset_for_yaw_bins_says_why(cfg):
    run_cfg = RunConfig(**{**cfg.__dict__, "protocol": "yaw-bins", "model": "resnet18",
                           "mode": "naive"})
    with pytest.raises(BenchError, match="too few for 10 folds"):
        run_benchmark(run_cfg, echo=lambda s: None)


@pytest.mark.slow
def test_readme_main_job(tmp_path):
    """`bench run --protocol cfp-fp --model resnet18-dream` as the README runs it: the
    embedded synthetic default, the CPU preset, a fresh cache."""
    import time

    t0 = time.perf_counter()
    lines = []
    outcome = run_benchmark(RunConfig(protocol="cfp-fp", model="resnet18-dream", device="cpu",
                                      out=str(tmp_path / "results"),
                                      cache_dir=str(tmp_path / "cache")), echo=lines.append)
    elapsed = time.perf_counter() - t0
    assert any(line.startswith("using the embedded synthetic dataset") for line in lines)
    result = outcome.result
    assert result["data"]["synthetic"] is True and result["model"]["mode"] == "retrain"
    assert result["metrics"]["n_pairs"] == 1400
    # the calibrated default: 82.7 % [78.6, 87.0] measured 2026-11-26; far above chance,
    # with a CI that says so
    assert result["main_score"]["low"] > 0.7
    print(f"README main job: {elapsed:.0f} s")


def test_dream_on_a_bin_needs_a_yaw_file_and_runs_with_one(cfg, tmp_path, monkeypatch):
    """A .bin holds no pose: the DREAM gate asks for ``bench yaw`` output, then uses it."""
    monkeypatch.setenv("BENCH_CACHE", cfg.cache_dir)  # the .bin's images live in the cache
    run_cfg = RunConfig(**{**cfg.__dict__, "protocol": "cfp-fp-bin", "out": str(tmp_path)})
    with pytest.raises(BenchError, match="--yaw-file"):
        run_benchmark(run_cfg, echo=lambda s: None)
    r = CliRunner().invoke(main, ["yaw", str(tmp_path / "missing.bin"), "--out",
                                  str(tmp_path / "y.csv")])
    assert r.exit_code == 2 and "missing.bin" in r.output
    bin_file = Path(cfg.data) / "cfp_fp.bin"
    listed = tmp_path / "listed.csv"
    r = CliRunner().invoke(main, ["yaw", str(bin_file), "--out", str(listed), "--sources",
                                  "metadata", "--backend", "none", "--quiet"])
    assert r.exit_code == 0, r.output
    paths = pd.read_csv(listed)["path"]
    assert len(paths) > 0 and paths.str.endswith(".jpg").all()
    # pair i is images 2i (frontal) and 2i + 1 (profile), as the generator writes them
    yaw = [0.0 if int(Path(p).stem) % 2 == 0 else 80.0 for p in paths]
    pd.DataFrame({"path": paths, "yaw": yaw}).to_csv(tmp_path / "yaw.csv", index=False)
    outcome = run_benchmark(RunConfig(**{**run_cfg.__dict__,
                                         "yaw_file": str(tmp_path / "yaw.csv")}),
                            echo=lambda s: None)
    result = outcome.result
    assert result["model"]["mode"] == "retrain"
    assert list(result["metrics"]["by_yaw"]["by_bin"]) == ["[60,90]"]
    assert result["metrics"]["by_yaw"]["n_unbinned"] == 0
    assert "yaw.csv" in result["data"]["files"]
    assert any(f"yaw of {len(paths)}/{len(paths)} images" in n for n in result["data"]["notes"])


def test_a_bin_run_names_its_bin_file_on_the_leaderboard(cfg, tmp_path, monkeypatch,
                                                         sface_available):
    """Bug: the leaderboard's data column showed the folder that holds the .bin, so runs on
    cfp_fp.bin and lfw.bin of one folder looked like runs on the same data."""
    monkeypatch.setenv("BENCH_CACHE", cfg.cache_dir)
    bin_file = tmp_path / "sets" / "cfp_fp.bin"
    bin_file.parent.mkdir()
    shutil.copy(Path(cfg.data) / "cfp_fp.bin", bin_file)
    run_cfg = RunConfig(**{**cfg.__dict__, "protocol": "cfp-fp-bin", "model": "sface",
                           "mode": None, "data": str(bin_file), "out": str(tmp_path / "o"),
                           "lenient": True,  # 24 pairs, not the 7,000 of a real set
                           "train_changes": {}})  # sface trains nothing
    outcome = run_benchmark(run_cfg, echo=lambda s: None)
    assert outcome.result["data"]["synthetic"] is False
    board = pd.read_csv(tmp_path / "o" / "leaderboard.csv")
    assert board["data"].tolist() == [str(bin_file)]
