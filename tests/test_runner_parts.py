import json
import multiprocessing as mp

import numpy as np
import pandas as pd
import pytest

from bench.runner import leaderboard as lb
from bench.runner.pooling import PoolingConfig, pool_templates, template_table
from bench.runner.result_schema import FIELDS, validate_result
from bench.runner.scoring import score_comparisons


def _samples():
    return pd.DataFrame({
        "template": ["t1", "t1", "t1", "t2", "t3"],
        "media": ["m1", "m1", "m2", "m3", "m4"],
        "subject": ["A", "A", "A", "B", "A"],
        "yaw": [10.0, -20.0, 70.0, np.nan, -5.0],
    })


def test_pooling_media_first_then_template():
    f = np.array([[1, 0], [3, 0], [0, 1], [0, 2], [1, 1]], dtype=np.float32)
    ids, pooled = pool_templates(f, _samples(), PoolingConfig(normalise_images=False,
                                                              media_average=True))
    assert list(ids) == ["t1", "t2", "t3"]
    # t1: media m1 mean (2, 0), media m2 (0, 1) -> (1, 0.5) normalised
    np.testing.assert_allclose(pooled[0], np.array([1, 0.5]) / np.hypot(1, 0.5), rtol=1e-6)
    ids2, pooled2 = pool_templates(f, _samples(), PoolingConfig(normalise_images=False,
                                                                media_average=False))
    # without media averaging: mean of (1,0),(3,0),(0,1) = (4/3, 1/3)
    np.testing.assert_allclose(pooled2[0], np.array([4, 1]) / np.hypot(4, 1), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(pooled2, axis=1), 1, rtol=1e-6)


def test_template_yaw_is_median_abs_for_multi_image_templates():
    t = template_table(_samples()).set_index("template")
    assert t.loc["t1", "yaw"] == pytest.approx(20.0)
    assert np.isnan(t.loc["t2", "yaw"])
    assert t.loc["t3", "yaw"] == pytest.approx(-5.0)  # single image keeps its sign


def test_score_comparisons_cosine_and_metadata():
    s = _samples()
    f = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float32)
    ids, pooled = pool_templates(f, s)
    comps = pd.DataFrame({"a": ["t1", "t1"], "b": ["t2", "t3"], "label": [0, 1], "fold": [1, 1]})
    df = score_comparisons(comps, ids, pooled, template_table(s))
    np.testing.assert_allclose(df["score"], [0.0, 1 / np.sqrt(2)], atol=1e-6)
    assert list(df["subject_b"]) == ["B", "A"]
    with pytest.raises(KeyError):
        score_comparisons(pd.DataFrame({"a": ["zz"], "b": ["t1"], "label": [0], "fold": [1]}),
                          ids, pooled, template_table(s))


def _fake_result(run_id: str, value: float) -> dict:
    r = {k: None for k in FIELDS}
    r.update(schema_version=1, run_id=run_id, created="2026-11-25T00:00:00Z", bench_version="0",
             git_commit=None, command="bench run", environment={}, seeds={},
             protocol={"name": "cfp-fp"}, data={"root": "x", "synthetic": True},
             model={"name": "m", "mode": "naive"}, preprocessing={}, pooling={},
             main_score={"name": "accuracy", "value": value, "low": value - 0.01,
                         "high": value + 0.01},
             metrics={"auc": 0.9, "eer": 0.1, "tar_at_far": {"0.01": 0.5}, "accuracy": None,
                      "by_yaw": None}, identification=None, timings={}, files={})
    return r


def _add_run(args):
    out, i = args
    d = out / "runs" / f"run{i}"
    d.mkdir(parents=True)
    (d / "result.json").write_text(json.dumps(_fake_result(f"run{i}", 0.5 + i / 100)))
    lb.update(out)


def test_result_schema_validation():
    assert validate_result(_fake_result("x", 0.9)) == []
    bad = _fake_result("x", 0.9)
    del bad["metrics"]
    bad["surprise"] = 1
    problems = validate_result(bad)
    assert any("metrics" in p for p in problems) and any("surprise" in p for p in problems)


def test_leaderboard_concurrent_writers_lose_nothing(tmp_path):
    # spawned writers, as concurrent `bench run`s are: a forked child of this threaded
    # test process inherits any lock another thread held at the fork, and hung on one
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        pool.map(_add_run, [(tmp_path, i) for i in range(12)])
    df = pd.read_csv(tmp_path / "leaderboard.csv")
    assert sorted(df["run_id"]) == sorted(f"run{i}" for i in range(12))
    assert df["value"].is_monotonic_decreasing
    md = (tmp_path / "leaderboard.md").read_text()
    assert "run11" not in md and "| cfp-fp" in md  # run ids stay out of the markdown
    assert not list(tmp_path.glob(".*.tmp"))


def test_readme_documents_result_json_as_the_schema_describes_it():
    from pathlib import Path

    from bench.runner.result_schema import describe

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert describe() in readme  # regenerate the README table from describe() when it fails


def test_a_run_trains_on_faces_detected_as_its_test_faces(monkeypatch, tmp_path):
    """Bug: `bench run --detector ...` detected the test set with that detector and the
    training set with the default one."""
    import torch

    import bench.train.modes as modes
    from bench.detect.stage import DetectOptions
    from bench.runner.run import RunConfig, get_model

    seen = {}

    def fake_train(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(modes, "train", fake_train)
    cfg = RunConfig(protocol="cfp-fp", model="resnet18", device="cpu", detector="dlib",
                    detect="always", out=str(tmp_path))
    with pytest.raises(RuntimeError, match="stop here"):
        get_model(cfg, "naive", torch.device("cpu"), tmp_path / "metadata.csv",
                  echo=lambda s: None)
    assert seen["detect"] == DetectOptions(detector="dlib", mode="always")


def test_compare_refuses_a_mode_scored_on_other_comparisons():
    """The report takes subjects and yaw from naive's table: a mode whose rows are other
    comparisons (same labels, another order) would be paired row by row with the wrong
    ones. Labels alone cannot tell (a 1:N table is almost all impostors)."""
    from bench.errors import ConfigError
    from bench.runner.compare import _report_columns

    naive = pd.DataFrame({"score": [0.1, 0.2, 0.3], "label": [0, 0, 1], "fold": [1, 1, 1],
                          "a": ["p1", "p2", "p1"], "b": ["g1", "g1", "g2"]})
    same = naive.assign(score=[0.3, 0.1, 0.2])
    assert list(_report_columns(same, naive, "stitch").columns) == ["score", "label", "fold"]
    swapped = same.iloc[[1, 0, 2]].reset_index(drop=True)
    with pytest.raises(ConfigError, match="stitch was not scored on the same comparisons"):
        _report_columns(swapped, naive, "stitch")
    assert _report_columns(naive, None, "naive") is naive


@pytest.mark.parametrize("flag", [["--epochs", "3"], ["--preset", "gpu"],
                                  ["--train-data", "nowhere.csv"],
                                  ["--train-yaw-file", "nowhere.csv"]])
def test_training_flags_on_a_model_that_trains_nothing_are_refused(sface_available, tiny_synth,
                                                                   tmp_path, flag):
    """Bug: `bench run -m sface --epochs 3` (or a --train-data that does not exist) ran,
    ignored the flag, and kept it in the record's command as if it had been used."""
    from click.testing import CliRunner

    from bench.cli import main

    res = CliRunner().invoke(main, ["run", "-p", "cfp-fp", "-m", "sface", "--data",
                                    str(tiny_synth), "--out", str(tmp_path / "out"),
                                    "--n-boot", "0", "--quiet", *flag],
                             env={"BENCH_CACHE": str(tmp_path / "cache")})
    assert res.exit_code == 2, res.output
    assert f"'sface' runs as 'pretrained' here and trains nothing: drop {flag[0]}" in res.output
    assert not (tmp_path / "out" / "runs").exists()


@pytest.mark.parametrize("flag", [["--detector", "bogus"],
                                  ["--detector-model", "/nowhere/det.onnx"]])
def test_a_detector_flag_is_checked_even_when_nothing_is_detected(sface_available, tiny_synth,
                                                                  tmp_path, flag):
    from click.testing import CliRunner

    from bench.cli import main

    res = CliRunner().invoke(main, ["run", "-p", "cfp-fp", "-m", "sface", "--data",
                                    str(tiny_synth), "--out", str(tmp_path / "out"),
                                    "--n-boot", "0", "--quiet", *flag],
                             env={"BENCH_CACHE": str(tmp_path / "cache")})
    assert res.exit_code == 2, res.output
    assert ("unknown face detector" in res.output if flag[0] == "--detector"
            else "detector model not found" in res.output), res.output


def test_compare_checks_every_input_before_the_first_mode_runs(tmp_path):
    """Bug: a missing --train-data surfaced in stitch, after naive had run (after its
    training, for a stem trained here), and left no leaderboard for the run it wrote."""
    from bench.errors import DataError
    from bench.runner.compare import compare_modes
    from bench.runner.run import RunConfig

    base = RunConfig(protocol="cfp-fp", model="sface", out=str(tmp_path / "out"),
                     train_data=str(tmp_path / "missing.csv"))
    with pytest.raises(DataError, match="--train-data: not found"):
        compare_modes("cfp-fp", "sface", base=base, echo=lambda s: None)
    assert not (tmp_path / "out" / "runs").exists()


def test_compare_puts_the_runs_it_wrote_on_the_board_when_a_later_mode_fails(tmp_path,
                                                                            monkeypatch):
    from types import SimpleNamespace

    from bench.runner import compare
    from bench.runner.run import RunConfig

    out = tmp_path / "out"
    written = []

    def run(cfg, echo):
        if written:
            raise RuntimeError("stitch failed")
        written.append(cfg.model)
        folder = out / "runs" / "cfp-fp__sface__pretrained__0000000000"
        folder.mkdir(parents=True)
        return SimpleNamespace(run_dir=folder, result={}, scores=pd.DataFrame(
            {"score": [0.5], "label": [1], "fold": [1]}), searches=None)

    updated = []
    monkeypatch.setattr(compare, "run_benchmark", run)
    monkeypatch.setattr(compare.leaderboard, "update", lambda o, **k: updated.append(o))
    with pytest.raises(RuntimeError, match="stitch failed"):
        compare.compare_modes("cfp-fp", "sface", base=RunConfig(
            protocol="cfp-fp", model="sface", out=str(out)), echo=lambda s: None)
    assert written == ["sface"] and updated == [str(out)]


def test_features_are_reused_across_changes_that_cannot_change_them(sface_available,
                                                                    tiny_synth, tmp_path):
    """Bug: the feature cache key held the pair lists' hashes and the detector of a run that
    detected nothing: reordering diff.txt, or --detect never with nothing to detect,
    re-embedded every image."""
    import shutil

    from click.testing import CliRunner

    from bench.cli import main

    data = tmp_path / "data"
    shutil.copytree(tiny_synth / "cfp", data / "cfp")
    shutil.copy(tiny_synth / "synth.json", data / "synth.json")

    def run(*extra):
        res = CliRunner().invoke(main, ["run", "-p", "cfp-fp", "-m", "sface", "--data",
                                        str(data), "--out", str(tmp_path / "out"), "--n-boot",
                                        "0", "--quiet", *extra],
                                 env={"BENCH_CACHE": str(tmp_path / "cache")})
        assert res.exit_code == 0, res.output
        (line,) = [x for x in res.output.splitlines() if x.startswith("features:")]
        return line

    assert "(cached)" not in run()
    diff = data / "cfp/Protocol/Split/FP/01/diff.txt"
    diff.write_text("".join(reversed(diff.read_text().splitlines(keepends=True))))
    assert "(cached)" in run()
    assert "(cached)" in run("--detect", "never")


def test_unknown_yaw_stem_names_nothing_anew_where_it_changes_nothing(sface_available,
                                                                      tiny_synth, tmp_path):
    """Bug: `--unknown-yaw stem` on a model without a DREAM block (or data with every yaw)
    gave the run another id and re-embedded every image, for the same numbers."""
    from click.testing import CliRunner

    from bench.cli import main

    outputs = []
    for extra in ([], ["--unknown-yaw", "stem"]):
        res = CliRunner().invoke(main, ["run", "-p", "cfp-fp", "-m", "sface", "--data",
                                        str(tiny_synth), "--out", str(tmp_path / "out"),
                                        "--n-boot", "0", "--quiet", *extra],
                                 env={"BENCH_CACHE": str(tmp_path / "cache")})
        assert res.exit_code == 0, res.output
        outputs.append(res.output)
    assert "(cached)" in outputs[1]
    assert len(list((tmp_path / "out" / "runs").iterdir())) == 1
