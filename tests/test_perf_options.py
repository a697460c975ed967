"""``bench perf``: a bad option value is a usage error (exit 2, naming the option), never
a traceback and never after a benchmark ran.

``bench perf metrics --pairs -5`` (or 0, or fewer pairs than --genuine, or --repeats 0)
crashed in numpy with exit 1; an --out that is a file failed after the whole benchmark,
and an unknown --models name only when the extract benchmark came (after the others in
``bench perf all``). Every benchmark is replaced by one that fails if reached.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.perf import SUITES, metrics_bench, suite


@pytest.fixture(autouse=True)
def no_benchmark(monkeypatch):
    def reached(*args, **kwargs):
        raise AssertionError("a benchmark ran before its options were checked")

    monkeypatch.setattr(metrics_bench, "run", reached)
    monkeypatch.setattr(suite, "RUNNERS", {name: reached for name in SUITES})


def _usage_error(args: list[str], option: str) -> str:
    res = CliRunner().invoke(main, ["perf", *args])
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output
    assert option in res.output, res.output
    return res.output


@pytest.mark.parametrize(("args", "option"), [
    (["--pairs", "-5"], "--pairs"),
    (["--pairs", "0"], "--pairs"),
    (["--genuine", "0"], "--genuine"),
    (["--genuine", "-3"], "--genuine"),
    (["--repeats", "0"], "--repeats"),
    (["--repeats", "-1"], "--repeats"),
    (["--pairs", "1000", "--genuine", "2000"], "--genuine"),
    (["--pairs", "1000", "--genuine", "1000"], "--genuine"),  # no impostor pair left
    (["--pairs", "1"], "--genuine"),  # the default 19,557 genuine of 1 pair
])
def test_metrics_refuses_bad_counts(tmp_path, args, option):
    _usage_error(["metrics", *args, "--out", str(tmp_path)], option)


def test_metrics_names_both_counts_when_genuine_is_too_many(tmp_path):
    output = _usage_error(["metrics", "--pairs", "1000", "--genuine", "2000", "--out",
                           str(tmp_path)], "--genuine")
    assert "2000" in output and "1000" in output and "--pairs" in output


COMMANDS = [*(name for name in SUITES if name != "metrics"), "all", "metrics"]


@pytest.mark.parametrize("command", COMMANDS)
def test_an_out_that_is_a_file_is_refused_before_any_work(tmp_path, command):
    out = tmp_path / "results.csv"
    out.write_text("mine\n")
    _usage_error([command, "--out", str(out)], "--out")
    assert out.read_text() == "mine\n"


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "metrics"])
@pytest.mark.parametrize(("args", "option"), [
    (["--images", "0"], "--images"),
    (["--images", "-4"], "--images"),
    (["--models", "nosuch"], "--models"),
    (["--models", "resnet18,resnet18"], "--models"),
    (["--models", ","], "--models"),
])
def test_suite_options_are_checked_before_any_benchmark(tmp_path, command, args, option):
    _usage_error([command, *args, "--device", "cpu", "--out", str(tmp_path)], option)


def test_a_work_dir_that_is_a_file_is_refused(tmp_path):
    work = tmp_path / "work"
    work.write_text("")
    _usage_error(["dream", "--work-dir", str(work), "--out", str(tmp_path / "o")],
                 "--work-dir")


def test_good_models_reach_the_suite(monkeypatch, tmp_path):
    """--models is a checked name list now: the suite still gets the names, in order."""
    seen = []

    def runner(opts, device, work_dir):
        seen.append(opts.models)
        return [{"what": "extract", "images_per_s": 1.0}], "cpu", "fp32"

    monkeypatch.setattr(suite, "RUNNERS", {"extract": runner})
    res = CliRunner().invoke(main, ["perf", "extract", "--models", "sface, resnet18",
                                    "--device", "cpu", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert seen == [("sface", "resnet18")]
    assert len(list(tmp_path.glob("extract-sface-resnet18-*.md"))) == 1
