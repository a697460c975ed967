"""The four modes end to end on a tiny model: cache reuse, exact resume, stitch invariants, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from train_helpers import TINY, make_manifest, tiny_config

from bench.errors import ConfigError, DataError
from bench.models import DreamBlock, create_model
from bench.models.weights import read_checkpoint
from bench.train import find_finished, train
from bench.train.config import ClassifyConfig, StitchConfig
from bench.train.data import load_train_data
from bench.train.heads import ArcFaceHead
from bench.train.loop import lr_factor
from bench.train.stitch import (
    StitchPairs,
    extract_features,
    mean_distance,
    stitch_pairs,
    train_block,
)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return make_manifest(tmp_path_factory.mktemp("train_set"))


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _state(path):
    return read_checkpoint(path).state_dict


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


class Interrupt(Exception):
    pass


def test_resume_reproduces_the_uninterrupted_weights(manifest, cache, tmp_path):
    cfg = tiny_config()
    whole = train(TINY, "naive", manifest, tmp_path / "a", cfg)
    assert not whole.reused and whole.metrics["epochs"] == 3

    def stop_after_first(mode, record):
        if record.epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(TINY, "naive", manifest, tmp_path / "b", cfg, on_epoch_end=stop_after_first)
    assert find_finished(TINY, "naive", cfg, whole.data_hash, tmp_path / "b") is None
    partial = next((tmp_path / "b").iterdir())
    assert (partial / "last.pt").is_file() and not (partial / "model.pt").exists()
    assert json.loads((partial / "log.json").read_text())["finished"] is False

    resumed = train(TINY, "naive", manifest, tmp_path / "b", cfg, resume=True)
    assert resumed.metrics["resumed_from_epoch"] == 1 and resumed.metrics["epochs"] == 3
    _assert_same_state(_state(whole.checkpoint), _state(resumed.checkpoint))
    assert not (partial / "last.pt").exists()  # the resumable state goes once finished
    history = json.loads(resumed.log.read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_restart_without_resume_starts_again(manifest, cache, tmp_path):
    cfg = tiny_config(**{"classify.epochs": 2})

    def stop(mode, record):
        raise Interrupt

    with pytest.raises(Interrupt):
        train(TINY, "naive", manifest, tmp_path, cfg, on_epoch_end=stop)
    result = train(TINY, "naive", manifest, tmp_path, cfg, resume=False)
    assert result.metrics["resumed_from_epoch"] == 0 and result.metrics["epochs"] == 2


def test_finished_runs_are_reused_and_modes_chain(manifest, cache, tmp_path):
    cfg = tiny_config(**{"classify.epochs": 2})
    naive = train(TINY, "naive", manifest, tmp_path, cfg)
    stamp = naive.checkpoint.stat().st_mtime_ns
    stitch = train(f"{TINY}-dream", "stitch", manifest, tmp_path, cfg)
    assert stitch.upstream is not None and stitch.upstream.reused
    assert stitch.upstream.checkpoint == naive.checkpoint
    assert naive.checkpoint.stat().st_mtime_ns == stamp  # the naive stem was not retrained
    again = train(TINY, "stitch", manifest, tmp_path, cfg)
    assert again.reused and again.checkpoint == stitch.checkpoint
    assert (naive.model_name, stitch.model_name) == (TINY, f"{TINY}-dream")

    retrain = train(TINY, "retrain", manifest, tmp_path, cfg)
    end2end = retrain.upstream
    assert end2end.mode == "end2end" and not retrain.reused
    e2e, re = _state(end2end.checkpoint), _state(retrain.checkpoint)
    # retrain changes only the block of the end2end model
    assert all(torch.equal(e2e[k], re[k]) for k in e2e if k.startswith("stem."))
    assert any(not torch.equal(e2e[k], re[k]) for k in e2e if k.startswith("dream."))
    model = retrain.load()
    assert model.dream is not None and model.preprocess.input_size == (16, 16)
    log = json.loads(retrain.log.read_text())
    assert log["finished"] and log["upstream"]["key"] == end2end.key
    assert log["metrics"]["distance_after"] < log["metrics"]["distance_before"]


def test_stitch_freezes_the_stem_and_closes_the_pose_gap(manifest, cache, tmp_path):
    cfg = tiny_config()
    naive = train(TINY, "naive", manifest, tmp_path, cfg)
    stitched = train(TINY, "stitch", manifest, tmp_path, cfg)
    before, after = _state(naive.checkpoint), _state(stitched.checkpoint)
    stem_keys = [k for k in after if k.startswith("stem.")]
    assert stem_keys and all(torch.equal(before[k], after[k]) for k in stem_keys)

    model = stitched.load()
    data = load_train_data(manifest, model.preprocess.template, model.preprocess.input_size)
    features = extract_features(model, data)
    pairs = stitch_pairs(features, data.labels, data.yaw, cfg.stitch)
    # 4 identities x 3 profile images (|yaw| 60, 70, 80), 4 frontal (0, 5, 10, 15) each
    assert (len(pairs), pairs.identities, pairs.frontal) == (12, 4, 16)
    m = stitched.metrics
    assert m["pairs"] == 12 and m["distance_after"] < 0.5 * m["distance_before"]
    assert mean_distance(model.dream, pairs) == pytest.approx(m["distance_after"], rel=1e-4)

    # where the gate is exactly zero the block passes frontal features through unchanged
    x = model.preprocess.normalise(data.images[:4].permute(0, 2, 3, 1))
    with torch.no_grad():
        assert torch.equal(model(x, condition=torch.zeros(4)), model.stem(x))


def test_stitch_targets_are_identity_mean_frontal_features():
    features = torch.tensor([[1.0, 0], [3, 0], [5, 5], [0, 2], [0, 4], [9, 9]])
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    yaw = torch.tensor([0.0, -20, 70, 10, 30, -50])
    pairs = stitch_pairs(features, labels, yaw, StitchConfig())
    assert pairs.mids.tolist() == [[5, 5], [9, 9]]
    assert pairs.targets.tolist() == [[2, 0], [0, 2]]  # |yaw| 30 is neither frontal nor profile
    assert pairs.yaw.tolist() == [70, -50] and pairs.frontal == 3
    assert math.isclose(mean_distance(None, pairs), ((9 + 25) + (81 + 49)) / 2)


def test_train_block_closes_a_learnable_pose_gap():
    torch.manual_seed(0)
    identity = torch.randn(40, 8)
    profile_yaw = torch.full((40,), 75.0)
    # a profile feature is its frontal one minus a fixed positive offset: a ReLU residual
    # branch can learn to add it back
    pairs = StitchPairs(identity - 1.0, profile_yaw, identity, identities=40, frontal=40)
    block = DreamBlock(8)
    outcome = train_block(block, pairs, StitchConfig(iterations=1500, batch_size=20, lr=0.05),
                          seed=0)
    assert outcome.distance_unmapped == pytest.approx(8.0)
    # the final ReLU leaves an output unit dead when it starts dead: two of eight may
    assert outcome.distance_after < 0.3 * outcome.distance_unmapped
    # frontal faces (gate about 0 at |yaw| 0) stay where they were
    with torch.no_grad():
        assert torch.allclose(block(identity, torch.zeros(40)), identity, atol=1e-3)


def test_a_diverging_stitch_says_which_step_to_take(tmp_path):
    """Features of a far larger scale than the preset's (an untrained ONNX stem gave norms of
    1e8) made SGD diverge, and the NaN block surfaced only at evaluation as 'the model
    produced NaN/inf features'. The stitch itself must say what happened and the fix."""
    torch.manual_seed(0)
    identity = torch.randn(40, 8) * 1e7
    pairs = StitchPairs(identity - 1e7, torch.full((40,), 75.0), identity, identities=40,
                        frontal=40)
    with pytest.raises(ConfigError, match=r"diverged .* mean norm of .*stitch\.lr="):
        train_block(DreamBlock(8), pairs, StitchConfig(iterations=50, batch_size=20, lr=0.01,
                                                       feature_rms=None), seed=0)


@pytest.mark.parametrize("scale", [1e-2, 1e3])
def test_the_stitch_is_the_same_at_any_feature_scale(scale):
    """Bug: SGD on raw features made the stitch depend on the stem's feature scale: dlib's
    descriptors (norms ~0.5) barely moved the block (training distance 0.269 -> 0.258),
    features of norms ~1e8 diverged. The block learns at one scale and is folded back to
    the stem's, so a stem whose features are c times larger gets the block whose output
    is c times larger."""
    torch.manual_seed(0)
    identity = torch.randn(40, 8)
    pairs = StitchPairs(identity - 1.0, torch.full((40,), 75.0), identity, identities=40,
                        frontal=40)
    scaled = StitchPairs(pairs.mids * scale, pairs.yaw, pairs.targets * scale, 40, 40)
    cfg = StitchConfig(iterations=300, batch_size=20, lr=0.05)
    blocks, outcomes = [], []
    for p in (pairs, scaled):
        torch.manual_seed(1)
        blocks.append(DreamBlock(8))
        outcomes.append(train_block(blocks[-1], p, cfg, seed=0))
    assert outcomes[1].distance_after == pytest.approx(outcomes[0].distance_after * scale ** 2,
                                                       rel=1e-3)
    assert outcomes[1].distance_before == pytest.approx(
        outcomes[0].distance_before * scale ** 2, rel=1e-3)
    assert outcomes[0].distance_after < 0.5 * outcomes[0].distance_unmapped
    with torch.no_grad():
        x = torch.randn(10, 8)
        yaw = torch.full((10,), 80.0)
        torch.testing.assert_close(blocks[1](x * scale, yaw), blocks[0](x, yaw) * scale,
                                   rtol=1e-3, atol=1e-5 * scale)


def test_retrain_starts_from_the_trained_block_as_it_is():
    """Bug: retrain trained the end2end block on features scaled by 1/s and folded it back
    with its biases times s, without first expressing it at that scale: with no step at
    all, the saved block had biases s times the end2end block's (s = 20.6 here), another
    mapping, and distance_before described that one."""
    torch.manual_seed(0)
    identity = torch.randn(40, 8) * 20
    pairs = StitchPairs(identity - 20.0, torch.full((40,), 75.0), identity, identities=40,
                        frontal=40)
    block = DreamBlock(8)
    with torch.no_grad():
        for layer in block.residual:
            if isinstance(layer, torch.nn.Linear):
                layer.bias.uniform_(0.5, 2.0)
    start = {k: v.clone() for k, v in block.state_dict().items()}
    before = mean_distance(block, pairs)
    outcome = train_block(block, pairs, StitchConfig(iterations=1, batch_size=20, lr=1e-12,
                                                     momentum=0.0, weight_decay=0.0),
                          seed=0, trained=True)
    for key, value in block.state_dict().items():
        torch.testing.assert_close(value, start[key], rtol=1e-5, atol=1e-6)
    assert outcome.distance_before == pytest.approx(before, rel=1e-5)


def test_retrain_checkpoints_of_the_rescaled_start_are_not_found_again():
    """Retrain's key changed with the fix (its old checkpoints started from a rescaled
    block); stitch and end2end keep the keys they had, so their checkpoints stay valid."""
    import bench.train.modes as modes
    from bench.train.config import TrainConfig

    cfg, model = TrainConfig(), "resnet18-dream"

    def before_the_fix(mode: str) -> str:
        return modes.digest({"mode": mode, "model": modes.stage_model(model, mode),
                             **cfg.hashed_part("stitch"),
                             "upstream": modes.run_key(model, modes.UPSTREAM[mode], cfg, "d")})

    assert modes.run_key(model, "retrain", cfg, "d") != before_the_fix("retrain")
    assert modes.run_key(model, "stitch", cfg, "d") == before_the_fix("stitch")


def test_stitch_batches_draw_identities_alike_as_the_authors_do():
    """The authors' gen_batch draws an identity, then one of its profiles: an identity
    with 30 profile images must not weigh 30 times one with a single profile."""
    from bench.train.stitch import batch_indices

    features = torch.randn(40, 4)
    labels = torch.tensor([0] * 4 + [1] * 4 + [0] * 30 + [1] * 2)   # frontals, profiles
    yaw = torch.tensor([0.0] * 8 + [70.0] * 32)
    pairs = stitch_pairs(features, labels, yaw, StitchConfig())
    assert pairs.identities == 2 and pairs.owner.tolist() == [0] * 30 + [1] * 2
    draws = torch.cat(list(batch_indices(pairs, 64, 100, "identity",
                                         torch.Generator().manual_seed(0))))
    share = (pairs.owner[draws] == 1).double().mean().item()
    assert 0.45 < share < 0.55
    assert set(draws[pairs.owner[draws] == 1].tolist()) == {30, 31}
    by_image = torch.cat(list(batch_indices(pairs, 16, 100, "image",
                                            torch.Generator().manual_seed(0))))
    assert (pairs.owner[by_image] == 1).double().mean().item() < 0.1
    with pytest.raises(ConfigError, match="stitch.sampling"):
        StitchConfig(sampling="subject")


def test_lr_schedule_warms_up_and_decays():
    f = lr_factor(ClassifyConfig(epochs=4, warmup_epochs=1), steps_per_epoch=10)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(39) < 0.01
    step = lr_factor(ClassifyConfig(epochs=4, warmup_epochs=0, schedule="step"), 10)
    assert (step(0), step(20), step(30)) == (1.0, pytest.approx(0.1), pytest.approx(0.01))


def test_arcface_margin_lowers_only_the_true_logit():
    head = ArcFaceHead(4, 3, scale=10.0, margin=0.3).train()
    feats, labels = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    plain = head(feats)  # no labels: plain scaled cosines
    margin = head(feats, labels)
    true = torch.nn.functional.one_hot(labels, 3).bool()
    assert torch.allclose(margin[~true], plain[~true])
    assert bool((margin[true] < plain[true]).all())
    assert bool((plain.abs() <= 10.0 + 1e-5).all())


def test_arcface_head_trains(manifest, cache, tmp_path):
    result = train(TINY, "naive", manifest, tmp_path,
                   tiny_config(**{"classify.head": "arcface", "classify.epochs": 2}))
    assert math.isfinite(result.metrics["final_loss"])


def test_dream_modes_need_yaw(cache, tmp_path):
    manifest = make_manifest(tmp_path / "set", identities=2, per_identity=4)
    text = manifest.read_text().replace(",0.0\n", ",\n")
    manifest.write_text(text)
    with pytest.raises(Exception, match="no yaw"):
        train(TINY, "end2end", manifest, tmp_path / "out",
              tiny_config(**{"classify.batch_size": 4, "classify.epochs": 1,
                             "classify.warmup_epochs": 0}))


def test_cli_trains_then_reuses(manifest, cache, tmp_path):
    from bench.cli.train import train as train_cmd

    args = ["--model", TINY, "--mode", "naive", "--data", str(manifest), "--out",
            str(tmp_path), "--device", "cpu", "--epochs", "1", "--no-progress", "--json",
            "--set", "classify.batch_size=8", "--set", "classify.warmup_epochs=0",
            "--set", "input_size=null", "--set", "workers=1"]
    first = CliRunner().invoke(train_cmd, args)
    assert first.exit_code == 0, first.output
    out = json.loads(first.stdout)
    assert out["reused"] is False and out["metrics"]["epochs"] == 1
    second = json.loads(CliRunner().invoke(train_cmd, args).stdout)
    assert second["reused"] is True and second["checkpoint"] == out["checkpoint"]
    assert second["checkpoint_sha256"] == out["checkpoint_sha256"]
    model = create_model(TINY, weights=out["checkpoint"])
    assert model.config["name"] == TINY


def test_cli_rejects_bad_overrides(manifest):
    from bench.cli import main

    result = CliRunner().invoke(main, ["train", "--model", TINY, "--mode", "naive", "--data",
                                       str(manifest), "--set", "classify.nope=1"])
    assert result.exit_code == 2 and "unknown classify option" in result.output


@pytest.mark.gpu
def test_cuda_training_runs_every_mode(manifest, cache, tmp_path):
    cfg = tiny_config(device="cuda")
    result = train(TINY, "retrain", manifest, tmp_path, cfg)
    assert result.metrics["distance_after"] < result.metrics["distance_before"]
    log = json.loads(result.upstream.log.read_text())
    assert log["environment"]["device"].startswith("cuda") and log["finished"]
    assert math.isfinite(log["metrics"]["final_loss"])


@pytest.mark.parametrize("order", ["RGB", "BGR"])
def test_training_normaliser_matches_preprocess_bit_for_bit(order):
    from bench.models import Preprocess
    from bench.train.loop import Normaliser

    pre = Preprocess(input_size=(6, 5), mean=(0.1, 0.5, 0.9), std=(0.2, 0.3, 0.4),
                     channel_order=order)
    crops = torch.randint(0, 256, (3, 3, 6, 5), dtype=torch.uint8)
    expected = pre.normalise(crops.permute(0, 2, 3, 1))
    assert torch.equal(Normaliser(pre, torch.device("cpu"))(crops), expected)


def test_the_detector_reaches_training_and_its_key(cache, tmp_path):
    """Bug: training detected its photos with the default detector whatever the run or
    `bench train` asked for, and the training key did not name the detector, so a set
    trained after detection with one backend was served for another."""
    from bench.cli.train import train as train_cmd

    manifest = make_manifest(tmp_path / "photos", identities=2, per_identity=4)
    args = ["--model", TINY, "--mode", "naive", "--data", str(manifest), "--out",
            str(tmp_path / "out"), "--device", "cpu", "--epochs", "1", "--no-progress",
            "--json", "--set", "classify.batch_size=4", "--set", "classify.warmup_epochs=0",
            "--set", "input_size=null", "--set", "workers=1"]
    runs = {}
    for mode in ("auto", "never"):
        res = CliRunner().invoke(train_cmd, [*args, "--detect", mode])
        assert res.exit_code == 0, res.output
        runs[mode] = json.loads(res.stdout)
        assert runs[mode]["reused"] is False  # "never" is not served auto's checkpoint
    assert runs["auto"]["key"] != runs["never"]["key"]
    log = json.loads(Path(runs["never"]["log"]).read_text())
    assert log["data"]["detection"] is None  # nothing was detected under "never"


def test_sets_with_landmarks_keep_their_training_key_whatever_the_detector(tmp_path):
    """No sample of a set with landmarks of a known scheme is detected, so its key (and
    every committed checkpoint's) stays the bare data hash."""
    from bench.detect.stage import DetectOptions
    from bench.train.data import data_hash, load_samples, training_digest

    manifest = make_manifest(tmp_path / "set", identities=2, per_identity=2)
    text = manifest.read_text().splitlines()
    points = "10 10 14 10 12 13 10 16 14 16"  # five points, eyes to mouth corners
    rows = [text[0] + ",landmarks"] + [f"{row},{points}" for row in text[1:]]
    manifest.write_text("\n".join(rows) + "\n")
    samples = load_samples(manifest)
    bare = data_hash(samples, 1)
    for options in (None, DetectOptions(mode="never"), DetectOptions(detector="dlib")):
        assert training_digest(samples, options, workers=1) == bare
    assert training_digest(samples, DetectOptions(mode="always"), workers=1) != bare


def test_training_yaw_errors_name_the_options_of_every_command():
    """Bug: the fixes named only "add a yaw column or run bench yaw", never the option that
    passes a yaw file to the training set (--train-yaw-file for run and compare, --yaw-file
    for train), the only fix for identity folders; and "change stitch.frontal_max_yaw"
    without saying that only `bench train --set` changes it."""
    features, labels = torch.randn(4, 8), torch.tensor([0, 0, 1, 1])
    with pytest.raises(DataError) as missing:
        stitch_pairs(features, labels, torch.tensor([0.0, float("nan"), 5.0, 80.0]),
                     StitchConfig())
    with pytest.raises(DataError) as nothing:
        stitch_pairs(features, labels, torch.tensor([0.0, 5.0, 10.0, 20.0]), StitchConfig())
    for text in ("bench yaw", "--train-yaw-file", "bench train", "--yaw-file"):
        assert text in str(missing.value), str(missing.value)
    assert "bench train --set stitch.frontal_max_yaw=" in str(nothing.value)
    assert "bench run --weights" in str(nothing.value)
