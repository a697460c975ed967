"""Every protocol option `bench protocols validate` accepts runs through `bench run`
(issue #16): pair rules, template-yaw rules, main metrics and a protocol given as a path,
on the tiny synthetic set; and a rerun's result.json equals the first's."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from test_runner_e2e import TINY_TRAIN

from bench.cli import main
from bench.metric_specs import parse_metric
from bench.runner.result_schema import validate_result
from bench.runner.run import RunConfig, run_benchmark
from bench.yawbins import PAIR_RULES, TEMPLATE_YAW

VOLATILE = ("created", "timings")


@pytest.fixture
def base(tiny_synth, tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "runner-cache"  # shared: training is reused
    return RunConfig(protocol="cfp-fp", model="resnet18", mode="naive", data=str(tiny_synth),
                     device="cpu", out=str(tmp_path_factory.mktemp("results")), n_boot=20,
                     train_changes=TINY_TRAIN, cache_dir=str(cache), batch_size=16,
                     progress=False)


def _protocol_file(folder, parent: str, **tables) -> str:
    """A user's protocol file (its name is its file name) extending a shipped one."""
    name = f"mine-{len(list(folder.glob('*.toml')))}"
    lines = [f'name = "{name}"', f'extends = "{parent}"']
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _run_and_check(base, protocol_path: str):
    r = CliRunner().invoke(main, ["protocols", "validate", protocol_path, "--data", base.data,
                                  "--no-decode"])
    assert r.exit_code == 0, r.output  # what validate accepts ...
    outcome = run_benchmark(RunConfig(**{**base.__dict__, "protocol": protocol_path}),
                            echo=lambda s: None)  # ... runs to the end
    result = json.loads((outcome.run_dir / "result.json").read_text())
    assert validate_result(result) == []
    name = result["protocol"]["name"]
    assert outcome.run_dir.parent == outcome.run_dir.parents[1] / "runs"
    assert result["run_id"].startswith(f"{name}__") and "/" not in result["run_id"]
    return result


@pytest.mark.parametrize("rule", list(PAIR_RULES))
def test_every_pair_rule_runs(base, tmp_path, rule):
    result = _run_and_check(base, _protocol_file(tmp_path, "cfp-fp", yaw={"pair_rule": rule}))
    by = result["metrics"]["by_yaw"]
    assert by["pair_rule"] == rule and by["rule_doc"] == PAIR_RULES[rule]
    # CFP-FP pairs a frontal a with a profile b
    expect = {"max": "[60,90]", "min": "[0,30)", "probe": "[60,90]"}[rule]
    assert list(by["by_bin"]) == [expect]


@pytest.mark.parametrize("how", TEMPLATE_YAW)
def test_every_template_yaw_rule_runs_and_reaches_the_scores(base, tmp_path, how):
    result = _run_and_check(base, _protocol_file(tmp_path, "ijba-verify",
                                                 yaw={"template_yaw": how}))
    assert result["protocol"]["definition"]["yaw"]["template_yaw"] == how
    assert result["data"]["validation"]["yaw"]["template_yaw"] == how


@pytest.mark.parametrize("parent, main_metric", [
    ("cfp-fp", "accuracy"), ("cfp-fp", "eer"), ("cfp-fp", "auc"), ("cfp-fp", "tar@far=.01"),
    ("cfp-fp", "tar@far=1e-3"), ("ijba-search", "rank1"), ("ijba-search", "rank20"),
    ("ijba-search", "tpir@fpir=.1")])
def test_every_main_metric_runs_and_is_reported_under_its_name(base, tmp_path, parent,
                                                               main_metric):
    """Bug: rank20 and tpir@fpir=.1 were reported as the AUC."""
    path = _protocol_file(tmp_path, parent, metrics={"report": [main_metric],
                                                     "main": main_metric})
    result = _run_and_check(base, path)
    spec = parse_metric(main_metric)
    assert result["main_score"]["name"] == spec.key
    assert result["main_score"]["value"] is not None
    if spec.task == "search":
        assert spec.key in result["identification"]["summary"]
        assert spec.key in result["identification"]["ci"]["metrics"]
    assert result["main_score"]["low"] is not None  # its CI found under its one key


def test_a_rerun_writes_the_same_result_but_for_timestamps_and_timings(base, tmp_path):
    path = _protocol_file(tmp_path, "cfp-fp")
    first = _run_and_check(base, path)
    again = _run_and_check(base, path)
    assert again["model"]["training"]["reused"] is True
    for r in (first, again):
        for key in VOLATILE:
            r.pop(key)
        r["model"]["training"].pop("reused")
    assert again == first  # a feature-cache hit keeps the whole record (alignment, device)
