"""``bench perf``: the suite's file names, notes and the CLI, with stand-in benchmarks."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from bench.cli import main
from bench.perf import suite


@pytest.fixture
def fake_runners(monkeypatch):
    calls = []

    def fake(name):
        def runner(opts, device, work_dir):
            assert work_dir.is_dir()  # a temporary folder the suite made
            calls.append((name, opts, device.type))
            return [{"what": name, "images_per_s": 123.0}], device.type, "fp32"
        return runner

    monkeypatch.setattr(suite, "RUNNERS", {name: fake(name) for name in suite.SUITES})
    return calls


def test_run_suite_names_files_by_device_precision_torch(fake_runners, tmp_path):
    records, (csv_path, md_path) = suite.run_suite("dream", suite.SuiteOptions(device="cpu"),
                                                   tmp_path)
    torch_version = torch.__version__.split("+")[0]
    assert csv_path.name.startswith("dream-cpu") and csv_path.suffix == ".csv"
    assert csv_path.name.endswith(f"-fp32-torch{torch_version}.csv")
    frame = pd.read_csv(csv_path)
    assert frame["images_per_s"].tolist() == [123.0] and frame["device"].tolist() == ["cpu"]
    assert "load_avg_1m" in frame
    text = md_path.read_text()
    assert "shared 2-core machine" in text and "noisy" in text
    with pytest.raises(ValueError, match="unknown benchmark"):
        suite.run_suite("nope", suite.SuiteOptions(device="cpu"), tmp_path)


def test_machine_note_only_for_cpu_figures():
    assert suite.machine_note("cuda") == "" and "noisy" in suite.machine_note("cpu")


def test_cli_all_runs_every_suite_in_order(fake_runners, tmp_path):
    result = CliRunner().invoke(main, ["perf", "all", "--device", "cpu", "--quick",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert [c[0] for c in fake_runners] == list(suite.SUITES)
    assert all(c[1].quick and c[2] == "cpu" for c in fake_runners)
    assert "noisy" in result.output and result.output.count("wrote ") == len(suite.SUITES)
    assert len(list(tmp_path.glob("*.md"))) == len(suite.SUITES)


def test_cli_single_benchmark_and_only(fake_runners, tmp_path):
    runner = CliRunner()
    assert runner.invoke(main, ["perf", "synth", "--device", "cpu", "--out",
                                str(tmp_path)]).exit_code == 0
    result = runner.invoke(main, ["perf", "all", "--only", "dream", "--only", "extract",
                                  "--device", "cpu", "--images", "469375", "--out",
                                  str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert [c[0] for c in fake_runners] == ["synth", "dream", "extract"]
    assert fake_runners[0][1].images is None and fake_runners[2][1].images == 469_375


def test_cli_rejects_a_bad_device(fake_runners, tmp_path):
    result = CliRunner().invoke(main, ["perf", "dream", "--device", "gpu", "--out",
                                       str(tmp_path)])
    assert result.exit_code == 2 and "--device" in result.output and not fake_runners


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cli_says_when_cuda_is_missing(fake_runners, tmp_path):
    result = CliRunner().invoke(main, ["perf", "dream", "--device", "cuda", "--out",
                                       str(tmp_path)])
    assert result.exit_code == 2 and "CUDA is not available" in result.output
