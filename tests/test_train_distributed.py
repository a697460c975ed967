"""Two gloo processes on CPU: identical weights on both ranks, equal to one process with the
same global batch (the tiny stem has no batch norm, whose statistics are per rank)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from train_helpers import TINY, make_manifest, tiny_config

from bench.models import create_model
from bench.models.weights import read_checkpoint
from bench.train import train
from bench.train.data import load_train_data
from bench.train.distributed import DistContext, distributed
from bench.train.loop import train_classifier

WORLD = 2


def _config():
    # no dropout: its random masks are drawn per rank and could not match one process
    return tiny_config(**{"classify.epochs": 2, "classify.dropout": 0.0,
                          "model_options": {"norm": False}})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fit(ctx: DistContext, manifest: Path, folder: Path) -> dict[str, torch.Tensor]:
    cfg = _config()
    torch.manual_seed(cfg.seed)
    model = create_model(TINY, norm=False)
    data = load_train_data(manifest, "celeba", model.preprocess.input_size, ctx.device)
    train_classifier(model, data, cfg, folder / "last.pt", ctx)
    return model.state_dict()


def _worker(rank: int, port: int, manifest: str, folder: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    folder = Path(folder)
    with distributed("cpu") as ctx:
        assert (ctx.rank, ctx.world_size) == (rank, WORLD)
        torch.save(_fit(ctx, Path(manifest), folder / "loop"), folder / f"rank{rank}.pt")
        result = train(TINY, "naive", manifest, folder / "runs", _config())
        torch.save({"checkpoint": str(result.checkpoint), "key": result.key},
                   folder / f"result{rank}.pt")


def test_two_gloo_ranks_match_each_other_and_one_process(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    manifest = make_manifest(tmp_path / "set")
    load_train_data(manifest, "celeba", (16, 16))  # fill the alignment cache once
    mp.spawn(_worker, args=(_free_port(), str(manifest), str(tmp_path)), nprocs=WORLD,
             join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    single = _fit(DistContext(), manifest, tmp_path / "single")
    for key, value in single.items():
        assert torch.equal(ranks[0][key], ranks[1][key]), key
        assert torch.allclose(ranks[0][key], value, atol=1e-5, rtol=1e-4), key
    assert any(not torch.equal(value, torch.zeros_like(value)) for value in single.values())

    # the full API under two ranks: one checkpoint, written by rank 0, same key on both ranks
    results = [torch.load(tmp_path / f"result{r}.pt") for r in range(WORLD)]
    assert results[0] == results[1]
    alone = train(TINY, "naive", manifest, tmp_path / "alone", _config())
    assert alone.key == results[0]["key"]
    both = read_checkpoint(results[0]["checkpoint"]).state_dict
    for key, value in read_checkpoint(alone.checkpoint).state_dict.items():
        assert torch.allclose(both[key], value, atol=1e-5, rtol=1e-4), key


@pytest.mark.slow
def test_torchrun_runs_the_same_command_line(tmp_path):
    """``torchrun --no-python --nproc-per-node 2 bench train ...`` (the README's command)."""
    manifest = make_manifest(tmp_path / "set")
    env = {**os.environ, "BENCH_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-port", str(_free_port()), "--no-python", "bench", "train",
           "--model", "resnet18", "--mode", "naive", "--data", str(manifest),
           "--out", str(tmp_path / "runs"), "--device", "cpu", "--epochs", "1", "--no-progress",
           "--set", "classify.batch_size=8", "--set", "input_size=[32,32]"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "trained resnet18 (naive)" in done.stdout
    checkpoints = list((tmp_path / "runs").glob("*/model.pt"))
    assert len(checkpoints) == 1
