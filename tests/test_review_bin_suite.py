"""bench run -p bin-suite on real .bin files found through their variables."""

from __future__ import annotations

from bench.runner.run import RunConfig
from bench.runner.suite import log_lines, run_suite


class _Run:
    def __init__(self, flip: bool = True):
        self.result = {"model": {"mode": "pretrained"}, "run_id": "r",
                       "preprocessing": {"flip_test": flip},
                       "metrics": {"n_pairs": 6000, "accuracy": {"mean": 0.99, "std": 0.01},
                                   "eer": 0.01, "auc": 0.999}}


def test_real_sets_found_by_their_variables_are_not_joined_by_synthetic_ones(
        tmp_path, monkeypatch):
    # with $BENCH_LFW_BIN alone set, the members without data took the synthetic default's
    # cfp_ff.bin and cfp_fp.bin, so one suite table mixed real and synthetic numbers
    lfw = tmp_path / "lfw.bin"
    lfw.write_bytes(b"")
    for var in ("BENCH_DATA", "BENCH_CFP_FF_BIN", "BENCH_CFP_FP_BIN", "BENCH_AGEDB30_BIN",
                "BENCH_CALFW_BIN", "BENCH_CPLFW_BIN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("BENCH_LFW_BIN", str(lfw))
    synthetic = tmp_path / "synthetic"
    synthetic.mkdir()
    for name in ("cfp_ff.bin", "cfp_fp.bin"):
        (synthetic / name).write_bytes(b"")
    monkeypatch.setattr("bench.runner.data_source.synthetic_root", lambda *a, **k: synthetic)
    ran = []
    monkeypatch.setattr("bench.runner.run.run_benchmark",
                        lambda cfg, echo=None: ran.append(cfg.protocol) or _Run())
    cfg = RunConfig(protocol="bin-suite", model="sface", out=str(tmp_path / "out"))
    outcome = run_suite("bin-suite", cfg, echo=lambda s: None)
    assert ran == ["lfw-bin"]
    assert [m.split(":")[0] for m in outcome.missing] == [
        "cfp-ff-bin", "cfp-fp-bin", "agedb-30-bin", "calfw-bin", "cplfw-bin"]


def test_the_log_says_flip_only_for_runs_with_the_flip_test(tmp_path, monkeypatch):
    # insightface's "Accuracy-Flip" names its flip test; bench's default is no flip test,
    # and every line said "Accuracy-Flip" whatever the run did
    for name in ("lfw.bin", "cfp_ff.bin"):
        (tmp_path / name).write_bytes(b"")
    flips = {"lfw-bin": False, "cfp-ff-bin": True}
    monkeypatch.setattr("bench.runner.run.run_benchmark",
                        lambda cfg, echo=None: _Run(flip=flips[cfg.protocol]))
    cfg = RunConfig(protocol="bin-suite", model="sface", data=str(tmp_path),
                    out=str(tmp_path / "out"))
    lines = log_lines(run_suite("bin-suite", cfg, echo=lambda s: None))
    assert lines[0].startswith("[lfw]Accuracy: 0.99000+-0.01000")
    assert lines[1].startswith("[cfp-ff]Accuracy-Flip: 0.99000+-0.01000")
