"""Leaderboards holding runs on .bin files (no subject ids) and runs from protocol files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from bench.cli import main
from bench.runner import leaderboard as lb

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _store(out: Path, run_id: str, protocol: str, ci: str, flip: bool = False) -> None:
    data = json.loads(next(RESULTS.glob("runs/cfp-fp__*/result.json")).read_text())
    data["run_id"], data["protocol"]["name"] = run_id, protocol
    data["preprocessing"]["flip_test"] = flip
    data["main_score"]["ci"] = ci
    folder = out / "runs" / run_id
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps(data))


def test_the_board_says_what_each_ci_resamples(tmp_path):
    # the board called every CI a subject bootstrap; a .bin has no subject ids, so its
    # runs resample pairs, and their result.json says so
    _store(tmp_path, "cfp-fp__m__naive__1", "cfp-fp", "95% bootstrap over subjects")
    _store(tmp_path, "lfw-bin__m__naive__2", "lfw-bin", "95% bootstrap over pairs")
    csv_path, md_path = lb.update(tmp_path)
    board = pd.read_csv(csv_path).set_index("protocol")
    assert board.loc["lfw-bin", "ci"] == "95% bootstrap over pairs"
    assert board.loc["cfp-fp", "ci"] == "95% bootstrap over subjects"
    assert "subject-bootstrap" not in md_path.read_text()


def test_a_protocol_file_s_runs_have_their_own_board(tmp_path):
    # bench run -p mini-lfw.toml names its runs mini-lfw, a name no registry holds:
    # bench leaderboard --protocol mini-lfw refused it as an unknown protocol
    _store(tmp_path, "mini-lfw__m__naive__1", "mini-lfw", "95% bootstrap over pairs")
    _store(tmp_path, "cfp-fp__m__naive__2", "cfp-fp", "95% bootstrap over subjects")
    result = CliRunner().invoke(main, ["leaderboard", "--out", str(tmp_path),
                                       "--protocol", "mini-lfw", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "leaderboard-mini-lfw.csv")["protocol"].tolist() == ["mini-lfw"]
    result = CliRunner().invoke(main, ["leaderboard", "--out", str(tmp_path),
                                       "--protocol", "mini-lwf"])
    assert result.exit_code == 2 and "unknown protocol 'mini-lwf'" in result.output
    assert not (tmp_path / "leaderboard-mini-lwf.csv").exists()


def test_runs_with_and_without_the_flip_test_are_told_apart(tmp_path):
    # insightface's .bin numbers are flip-test numbers: two rows of one model, one run
    # with --flip, looked the same but for their values
    _store(tmp_path, "lfw-bin__m__pretrained__1", "lfw-bin", "95% bootstrap over pairs")
    _store(tmp_path, "lfw-bin__m__pretrained__2", "lfw-bin", "95% bootstrap over pairs",
           flip=True)
    board = pd.read_csv(lb.update(tmp_path)[0]).set_index("run_id")
    assert board.loc["lfw-bin__m__pretrained__2", "flip"]
    assert not board.loc["lfw-bin__m__pretrained__1", "flip"]
    assert list(board.columns[:4]) == ["protocol", "model", "mode", "flip"]
