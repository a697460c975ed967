"""A .bin holds crops already aligned to arcface112: the harness must embed exactly those
pixels (never re-crop them as raw photos), warp them template-to-template for a model on
another template, and, having no subject ids, bootstrap over pairs with a real width."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from bench.align.api import align_samples, plan_samples
from bench.align.templates import get_template
from bench.align.transform import fit_similarity
from bench.errors import ConfigError
from bench.evaluation import EvalPlan, evaluate_scores
from bench.models import create_model
from bench.readers import insightface_bin
from bench.runner.features import ExtractOptions, extract_features

FIVE = ("pupil_r", "pupil_l", "nose_tip", "mouth_corner_r", "mouth_corner_l")


def _crops(n: int, seed: int = 0) -> np.ndarray:
    """(n, 112, 112, 3) uint8 RGB: smooth random images, different from each other."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 14, 14, 3), dtype=np.uint8)
    return np.stack([cv2.resize(s, (112, 112), interpolation=cv2.INTER_CUBIC) for s in small])


def _write_bin(path, crops, issame):
    blobs = [cv2.imencode(".png", c[..., ::-1])[1].tobytes() for c in crops]  # RGB -> BGR file
    insightface_bin.write_bin(path, blobs, issame)


@pytest.fixture
def bin_set(tmp_path):
    crops = _crops(8)
    path = tmp_path / "cfp_fp.bin"
    _write_bin(path, crops, [True, False, True, False])
    return crops, insightface_bin.read(path, folds=2, cache_dir=tmp_path / "cache")


def test_arcface112_alignment_copies_the_stored_pixels(bin_set):
    crops, ev = bin_set
    samples = ev.samples.samples
    assert (samples["landmark_source"] == "pre_aligned").all()
    result = align_samples(samples, "arcface112", "cpu", batch_size=3)
    np.testing.assert_array_equal(result.crops, crops.transpose(0, 3, 1, 2))
    assert result.report.by_source == {"pre_aligned": 8}
    assert len(result.report.fallbacks) == 0


def test_arcface112_model_embeds_exactly_the_stored_crops(bin_set):
    pytest.importorskip("onnxruntime")
    crops, ev = bin_set
    try:
        model = create_model("sface").eval()
    except ConfigError as exc:
        pytest.skip(str(exc))
    feats, info = extract_features(model, ev.samples.samples,
                                   ExtractOptions(flip=False, batch_size=8))
    with torch.no_grad():
        direct = model(model.preprocess.normalise(crops)).numpy()
    np.testing.assert_array_equal(feats, direct)
    assert info["alignment"]["by_source"] == {"pre_aligned": 8}


def test_another_template_gets_the_exact_template_to_template_warp(bin_set):
    _, ev = bin_set
    plan = plan_samples(ev.samples.samples, "celeba")
    src = np.array([get_template("arcface112").points[n] for n in FIVE])
    dst = np.array([get_template("celeba").points[n] for n in FIVE])
    expected = fit_similarity(src[None], dst[None])[0]
    assert (plan.method == "template").all()
    np.testing.assert_allclose(plan.transforms, np.broadcast_to(expected, plan.transforms.shape),
                               atol=1e-4)


@pytest.mark.parametrize("side", [128, 224, 256])
def test_a_bin_crop_is_resized_for_an_arcface_template_of_another_size(bin_set, side):
    """Bug: for a model with a fixed 128 input (template arcface128, the 112 frame shifted
    8 px in a 128 one), a .bin crop aligned at 112 was re-cut into the 128 frame, 23 % of
    the input black; insightface feeds such a crop resized. Photos keep norm_crop's 128."""
    crops, ev = bin_set
    plan = plan_samples(ev.samples.samples, f"arcface{side}")
    k = side / 112
    expected = np.array([[k, 0.0, 0.5 * k - 0.5], [0.0, k, 0.5 * k - 0.5]])
    np.testing.assert_allclose(plan.transforms, np.broadcast_to(expected, plan.transforms.shape),
                               atol=1e-4)
    aligned = align_samples(ev.samples.samples, f"arcface{side}", "cpu").crops
    assert (aligned.reshape(len(aligned), 3, -1).max(axis=1) == 0).mean() < 0.01
    resized = np.stack([cv2.resize(c, (side, side), interpolation=cv2.INTER_LINEAR)
                        for c in crops]).transpose(0, 3, 1, 2)
    assert np.abs(aligned.astype(float) - resized).mean() < 1.5


def test_a_bin_without_subjects_bootstraps_pairs_with_a_real_width():
    # A .bin stores pair labels only: subject ids are empty. Resampling "subjects" then
    # drew the one empty id every time and gave low = high for every metric.
    rng = np.random.default_rng(1)
    n = 400
    label = np.repeat([1, 0], n // 2)
    df = pd.DataFrame({"score": rng.normal(label * 1.5, 1.0), "label": label,
                       "fold": np.tile([1, 2], n // 2), "subject_a": "", "subject_b": ""})
    out = evaluate_scores(df, EvalPlan(n_boot=200))
    assert out["ci"]["unit"] == "pair"
    auc = out["ci"]["metrics"]["auc"]
    assert auc["low"] < out["auc"] < auc["high"]
    # and with real subject ids the unit stays "subject"
    df["subject_a"] = np.arange(n) % 37
    df["subject_b"] = np.where(label == 1, df["subject_a"], (df["subject_a"] + 5) % 37)
    assert evaluate_scores(df, EvalPlan(n_boot=50))["ci"]["unit"] == "subject"


def test_112x96_crops_are_the_arcface_template_without_its_8_px_margins(tmp_path):
    """Bug: a .bin of 112x96 crops (the SphereFace/CosFace crop, whose five-point template is
    ArcFace's 8 px to the left) was stretched to 112x112 as if it were a resize. It must
    land in the 112x112 frame shifted by 8 px, pixel for pixel."""
    full = _crops(4)
    path = tmp_path / "lfw96.bin"
    _write_bin(path, np.ascontiguousarray(full[:, :, 8:104]), [True, False])
    ev = insightface_bin.read(path, folds=2, cache_dir=tmp_path / "cache")
    result = align_samples(ev.samples.samples, "arcface112", "cpu")
    np.testing.assert_array_equal(result.crops[..., 8:104], full[:, :, 8:104].transpose(0, 3, 1, 2))
    points = insightface_bin.aligned_points([112, 96])
    template = np.array([get_template("arcface112").points[n] for n in FIVE])
    np.testing.assert_allclose(points, template - [8.0, 0.0], atol=1e-4)
    # a 224x192 crop is the same frame at twice the size
    np.testing.assert_allclose(insightface_bin.aligned_points([224, 192]),
                               (points + 0.5) * 2 - 0.5, atol=1e-4)


def test_a_lenient_bin_read_hashes_alike_wherever_the_cache_is(tmp_path):
    """Bug: a lenient read hashed its kept images' paths relative to the .bin's folder,
    and a .bin's images live in the bench cache: each cache location gave another data
    hash, run id and leaderboard row for the same data."""
    from bench.data.skipped import SkippedRows
    from bench.runner.run import evalset_digest

    crops = _crops(8)
    blobs = [cv2.imencode(".png", c[..., ::-1])[1].tobytes() for c in crops]
    blobs[5] = b"not an image at all"
    insightface_bin.write_bin(tmp_path / "x.bin", blobs, [True, False, True, False])
    digests = set()
    for cache in ("a", "b/c"):
        skipped = SkippedRows(lenient=True)
        ev = insightface_bin.read(tmp_path / "x.bin", folds=2, cache_dir=tmp_path / cache,
                                  skipped=skipped)
        assert len(skipped) == 1
        digests.add(evalset_digest(ev, skipped.as_records()))
    assert len(digests) == 1
