"""A checkpoint `bench train` wrote runs as what it was trained as: its mode and training
record reach the run record and the leaderboard, not 'pretrained' with no training."""

from __future__ import annotations

import torch

from bench.fileio import dump_json, sha256_file
from bench.models import create_model
from bench.models.weights import save_checkpoint
from bench.runner.run import RunConfig, run_benchmark


def _trained(folder, mode: str, with_log: bool):
    """A checkpoint written as bench.train.modes._finish writes it, with its log.json."""
    torch.manual_seed(0)
    model = create_model("resnet18-dream", preprocess={"input_size": [32, 32]})
    path = save_checkpoint(model, folder / "model.pt", training={"mode": mode, "key": "k1"})
    if with_log:
        dump_json({"format": "bench-train-log", "version": 1, "key": "k1", "finished": True,
                   "model": "resnet18-dream", "mode": mode, "data_hash": "d1",
                   "metrics": {"final_loss": 0.5}, "checkpoint": "model.pt",
                   "checkpoint_sha256": sha256_file(path)}, folder / "log.json")
    return path


def _run(path, tiny_synth, tmp_path):
    cfg = RunConfig(protocol="cfp-fp", model="resnet18-dream", weights=str(path),
                    data=str(tiny_synth), device="cpu", out=str(tmp_path / "results"),
                    n_boot=0, cache_dir=str(tmp_path / "cache"), progress=False)
    return run_benchmark(cfg, echo=lambda s: None)


def test_a_trained_checkpoint_keeps_its_mode_and_training_record(tiny_synth, tmp_path):
    """Bug: `bench run -m resnet18-dream --weights <end2end run>/model.pt` was recorded as
    mode 'pretrained' with training None, so leaderboard rows of naive, end2end and stitch
    checkpoints could not be told apart."""
    (tmp_path / "train").mkdir()
    path = _trained(tmp_path / "train", "end2end", with_log=True)
    outcome = _run(path, tiny_synth, tmp_path)
    model = outcome.result["model"]
    assert model["mode"] == "end2end" and "__end2end__" in outcome.result["run_id"]
    assert model["training"]["key"] == "k1" and model["training"]["metrics"] == {
        "final_loss": 0.5}
    assert model["training"]["log"].endswith("log.json")


def test_a_moved_checkpoint_without_its_log_still_says_its_mode(tiny_synth, tmp_path):
    (tmp_path / "moved").mkdir()
    path = _trained(tmp_path / "moved", "stitch", with_log=False)
    model = _run(path, tiny_synth, tmp_path).result["model"]
    assert model["mode"] == "stitch"
    assert model["training"] == {"mode": "stitch", "key": "k1", "log": None}


def test_a_plain_state_dict_stays_pretrained(tiny_synth, tmp_path):
    torch.manual_seed(0)
    model = create_model("resnet18-dream", preprocess={"input_size": [32, 32]})
    path = save_checkpoint(model, tmp_path / "plain.pt")  # no training record
    result = _run(path, tiny_synth, tmp_path).result
    assert result["model"]["mode"] == "pretrained" and result["model"]["training"] is None
