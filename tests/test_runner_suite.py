"""``bench run -p bin-suite``: every present insightface .bin, one table in its log layout."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from click.testing import CliRunner
from test_runner_e2e import TINY_TRAIN

from bench.cli import main
from bench.errors import ConfigError
from bench.protocols import load_protocol
from bench.runner.run import RunConfig
from bench.runner.suite import PROTOCOL_SUITES, log_lines, run_suite


def test_suite_members_are_shipped_bin_protocols_with_published_counts():
    for name in PROTOCOL_SUITES["bin-suite"]:
        p = load_protocol(name)
        assert p.format == "insightface_bin" and p.main_score == "accuracy"
        pairs = 7000 if name.startswith("cfp") else 6000
        assert p.counts["pairs"] == pairs and p.counts["images"] == 2 * pairs
        assert p.counts["genuine"] == p.counts["impostor"] == pairs // 2


def test_suite_runs_the_present_bins_and_names_the_absent_ones(tiny_synth, tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "runner-cache"  # shared with test_runner_e2e
    out = tmp_path_factory.mktemp("suite")
    cfg = RunConfig(protocol="bin-suite", model="resnet18", mode="naive", data=str(tiny_synth),
                    device="cpu", out=str(out), n_boot=20, train_changes=TINY_TRAIN,
                    cache_dir=str(cache), batch_size=16)
    outcome = run_suite("bin-suite", cfg, echo=lambda s: None)
    assert [r["set"] for r in outcome.rows] == ["cfp-ff", "cfp-fp"]
    assert {m.split(":")[0] for m in outcome.missing} == {"lfw-bin", "agedb-30-bin",
                                                         "calfw-bin", "cplfw-bin"}
    lines = log_lines(outcome)
    assert re.fullmatch(r"\[cfp-fp\]Accuracy: 0\.\d{5}\+-0\.\d{5}  EER .*AUC .*95% CI .*",
                        lines[1])
    assert lines[-1].startswith("not run: cplfw-bin")
    table = pd.read_csv(outcome.table_path)
    assert outcome.table_path.name == "bin-suite__resnet18__naive.csv"
    assert list(table["set"]) == ["cfp-ff", "cfp-fp"] and table["accuracy"].between(0, 1).all()
    board = pd.read_csv(out / "leaderboard.csv")  # each member is an ordinary run
    assert {"cfp-ff-bin", "cfp-fp-bin"} <= set(board["protocol"])


def test_suite_with_no_data_present_is_a_clear_error(tmp_path):
    cfg = RunConfig(protocol="bin-suite", model="resnet18", data=str(tmp_path), device="cpu",
                    out=str(tmp_path / "out"))
    with pytest.raises(ConfigError, match="none of its datasets is present"):
        run_suite("bin-suite", cfg, echo=lambda s: None)
    result = CliRunner().invoke(main, ["run", "-p", "bin-suite", "-m", "resnet18",
                                       "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "lfw.bin" in result.output


def test_suite_gives_per_yaw_columns_for_the_sets_a_yaw_file_covers(tiny_synth,
                                                                     tmp_path_factory,
                                                                     monkeypatch):
    cache = tmp_path_factory.getbasetemp() / "runner-cache"
    monkeypatch.setenv("BENCH_CACHE", str(cache))  # the .bin's images live in the cache
    out = tmp_path_factory.mktemp("suite-yaw")
    listed = out / "listed.csv"
    r = CliRunner().invoke(main, ["yaw", str(tiny_synth / "cfp_fp.bin"), "--out", str(listed),
                                  "--sources", "metadata", "--backend", "none", "--quiet"])
    assert r.exit_code == 0, r.output
    paths = pd.read_csv(listed)["path"]
    # pair i is images 2i (frontal) and 2i + 1 (profile), as the generator writes them
    yaw = [0.0 if int(p.rsplit("/", 1)[1].split(".")[0]) % 2 == 0 else 80.0 for p in paths]
    pd.DataFrame({"path": paths, "yaw": yaw}).to_csv(out / "yaw.csv", index=False)
    cfg = RunConfig(protocol="bin-suite", model="resnet18", mode="naive", data=str(tiny_synth),
                    device="cpu", out=str(out), n_boot=20, train_changes=TINY_TRAIN,
                    cache_dir=str(cache), batch_size=16, yaw_file=str(out / "yaw.csv"))
    outcome = run_suite("bin-suite", cfg, echo=lambda s: None)
    rows = {r["set"]: r for r in outcome.rows}
    assert rows["cfp-fp"]["accuracy|yaw [60,90]"] is not None
    assert not any(k.startswith("accuracy|yaw") for k in rows["cfp-ff"])
    assert outcome.notes == [f"cfp-ff-bin: not in {out / 'yaw.csv'}, so no per-yaw breakdown"]
    assert log_lines(outcome)[-1].startswith("note: cfp-ff-bin")


def test_other_ranks_under_torchrun_write_no_suite_table(tiny_synth, tmp_path, monkeypatch):
    # run_benchmark returns None on ranks other than 0: the suite leaves writing to rank 0
    monkeypatch.setattr("bench.runner.run.run_benchmark", lambda cfg, echo=None: None)
    cfg = RunConfig(protocol="bin-suite", model="resnet18", data=str(tiny_synth), device="cpu",
                    out=str(tmp_path / "out"))
    outcome = run_suite("bin-suite", cfg, echo=lambda s: None)
    assert outcome.rows == [] and outcome.table_path is None
    assert not (tmp_path / "out" / "suites").exists()
