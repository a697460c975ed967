"""``bench protocols``: list, show, validate (with exit status 2 and file:line on bad data)."""

from __future__ import annotations

import json
import tomllib

from click.testing import CliRunner
from test_readers_fixtures import write_cfp

from bench.cli import main


def _run(*args):
    return CliRunner().invoke(main, ["protocols", *args], catch_exceptions=False)


def test_list_names_every_protocol():
    result = _run()
    assert result.exit_code == 0
    for name in ("cfp-fp", "cfp-ff", "cfp-fp-bin", "ijba-verify", "ijba-search", "yaw-bins"):
        assert f"\n{name} " in result.output


def test_show_prints_a_loadable_resolved_file():
    result = _run("show", "cfp-ff")
    assert result.exit_code == 0 and result.output.startswith("# cfp-ff, resolved (extends")
    data = tomllib.loads(result.output)
    assert data["reader"] == {"pairs": "FF"} and data["counts"]["images"] == 5000
    assert data["metrics"]["main"] == "accuracy"
    shown = json.loads(_run("show", "ijba-search", "--json").output)
    assert shown["task"] == "search" and shown["main_score"] == "rank1"
    assert _run("show", "nope").exit_code == 2


def test_validate_prints_counts_and_fails_with_the_place(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_CFP", raising=False)
    root = tmp_path / "data"
    write_cfp(root / "cfp", subjects=20, folds=10)  # 10 folds as the shipped protocol says
    (root / "synth.json").write_text(json.dumps({"protocol_counts": {"cfp-fp": {"pairs": 40}}}))
    out = tmp_path / "report.json"
    result = _run("validate", "cfp-fp", "--data", str(root), "--json", str(out))
    assert result.exit_code == 0, result.output
    assert "pairs 40" in result.output and "all match" in result.output
    assert json.loads(out.read_text())["counts"]["subjects"] == 20
    bad = root / "cfp/Protocol/Split/FP/07/diff.txt"
    with open(bad, "a") as f:
        f.write("1;2\n")
    result = CliRunner().invoke(main, ["protocols", "validate", "cfp-fp", "--data", str(root)])
    assert result.exit_code == 2
    assert f"{bad}:3: malformed line" in result.output
    lenient = _run("validate", "cfp-fp", "--data", str(root), "--lenient")
    assert lenient.exit_code == 0 and f"{bad}:3: malformed line" in lenient.output


def test_validate_without_data_uses_the_embedded_synthetic_set(tmp_path, monkeypatch):
    import bench.runner.data_source

    root = tmp_path / "synthetic"
    write_cfp(root / "cfp", subjects=6, folds=3)
    (root / "synth.json").write_text("{}")
    monkeypatch.delenv("BENCH_DATA", raising=False)
    monkeypatch.delenv("BENCH_CFP", raising=False)
    monkeypatch.setattr(bench.runner.data_source, "synthetic_root", lambda **kw: root)
    result = _run("validate", "cfp-ff")
    assert result.exit_code == 0, result.output
    assert f"protocol cfp-ff (verify): {root / 'cfp'}" in result.output
    assert "folds 3" in result.output and "data found by default" in result.output
