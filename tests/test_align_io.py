"""Alignment end to end: decoding, the batch API and its report, the crop cache, bench align."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bench.align import align_batches, align_samples
from bench.align.decode import read_images
from bench.align.templates import TEMPLATES
from bench.align.transform import apply
from bench.cli import main
from bench.data.samples import SampleSet, new_samples
from bench.errors import DataError
from bench.face3d import FIVE_POINT

ARCFACE = TEMPLATES.get("arcface112")
FIVE = list(FIVE_POINT)


def write_face(path: Path, scale: float, degrees: float, hw=(180, 240), seed=0):
    """An image whose five 'landmarks' are bright dots; returns the (5, 2) points."""
    a = np.radians(degrees)
    lin = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = (ARCFACE.reference[FIVE] - [56, 72]) @ lin.T + np.array(hw[::-1]) / 2
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 120, (*hw, 3)).astype(np.uint8), (0, 0), 2)
    for x, y in pts:
        cv2.circle(img, (round(x), round(y)), 3, (255, 255, 255), -1)
    ok, data = cv2.imencode(path.suffix, img)
    path.write_bytes(data.tobytes())
    return pts.astype(np.float32)


@pytest.fixture
def faces(tmp_path) -> SampleSet:
    """Four images: two with points (JPEG, PNG), one with only a box, one with nothing."""
    root = tmp_path / "data"
    root.mkdir()
    p0 = write_face(root / "a.jpg", 1.5, 20, seed=1)
    p1 = write_face(root / "b.png", 0.8, -10, hw=(120, 100), seed=2)
    write_face(root / "c.jpg", 1.0, 0, seed=3)
    write_face(root / "d.jpg", 1.0, 0, seed=4)
    frame = new_samples(
        [str(root / n) for n in ("a.jpg", "b.png", "c.jpg", "d.jpg")], ["s1", "s1", "s2", "s2"],
        yaw=[10.0, np.nan, 0.0, np.nan], landmarks=[p0, p1, None, None],
        box=[None, None, np.array([60, 40, 120, 100], np.float32), None])
    return SampleSet(root=root, samples=frame, provenance={})


def test_decode_is_rgb_for_jpeg_and_png(tmp_path):
    red = np.zeros((8, 10, 3), np.uint8)
    red[..., 2] = 255  # BGR red
    for name in ("r.png", "r.jpg"):
        cv2.imwrite(str(tmp_path / name), red)
    images = read_images([tmp_path / "r.png", tmp_path / "r.jpg"])
    assert [tuple(i.shape) for i in images] == [(3, 8, 10)] * 2
    assert images[0][0].min() == 255 and images[0][1:].max() == 0
    assert images[1][0].float().mean() > 240 and images[1][1:].float().mean() < 15


def test_corrupt_and_missing_images_name_the_file(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DataError, match="bad.jpg: cannot decode"):
        read_images([bad])
    with pytest.raises(DataError, match="gone.png: cannot read"):
        read_images([tmp_path / "gone.png"])


def test_batched_torchvision_decode_names_a_corrupt_file(tmp_path):
    from bench.align.decode import decode_jpegs_torchvision

    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), np.full((6, 4, 3), 128, np.uint8))
    data = [good.read_bytes(), b"\xff\xd8 broken"]
    ok = decode_jpegs_torchvision(data[:1] * 2, [good, good], "cpu")
    assert [tuple(i.shape) for i in ok] == [(3, 6, 4)] * 2
    with pytest.raises(DataError, match="broken.jpg: cannot decode"):
        decode_jpegs_torchvision(data, [good, tmp_path / "broken.jpg"], "cpu")


def test_align_samples_crops_and_reports_fallbacks(faces):
    result = align_samples(faces, "arcface112", device="cpu", batch_size=3)
    assert result.crops.shape == (4, 3, 112, 112) and result.crops.dtype == np.uint8
    assert list(result.report.methods) == ["template", "template", "box", "full_image"]
    assert result.report.counts == {"box": 1, "full_image": 1, "template": 2}
    fallbacks = result.report.fallbacks
    assert list(fallbacks["path"]) == [faces.samples["path"][2], faces.samples["path"][3]]
    assert list(fallbacks["reason"]) == ["no landmarks", "no landmarks"]
    assert "2 fell back" in result.report.summary() and "d.jpg" in result.report.summary()
    # the dots land on the template's points in the crop
    for row in (0, 1):
        crop = result.crops[row].astype(float).mean(0)
        mapped = apply(result.transforms[row], faces.samples["landmarks"][row])
        np.testing.assert_allclose(mapped, ARCFACE.reference[FIVE], atol=0.6)
        for x, y in ARCFACE.reference[FIVE]:
            assert crop[round(y), round(x)] > 200
    # full-image fallback: the whole 180x240 frame fits the template's face box
    assert np.isfinite(result.transforms).all()


def test_stream_yields_rows_in_order_on_the_device(faces):
    stream = align_batches(faces.samples, "celeba", device="cpu", batch_size=3, warn=False)
    batches = list(stream)
    assert len(stream) == 2 == len(batches)
    assert [b.rows.tolist() for b in batches] == [[0, 1, 2], [3]]
    assert batches[0].crops.shape == (3, 3, 112, 112) and batches[0].crops.device.type == "cpu"


def test_fallbacks_are_logged(faces, caplog):
    with caplog.at_level("WARNING", logger="bench.align"):
        align_batches(faces, device="cpu")
    assert "fell back" in caplog.text and "d.jpg" in caplog.text


def test_cache_is_reused_and_invalidated_by_a_changed_image(faces, tmp_path):
    cache = tmp_path / "cache"
    first = align_samples(faces, "arcface112", device="cpu", cache_dir=cache)
    entries = [p for p in cache.iterdir()]
    assert len(entries) == 1 and entries[0].name.startswith("arcface112-")
    assert {p.name for p in entries[0].iterdir()} == {"crops.npy", "transforms.npy",
                                                      "meta.json"}
    assert first.report.cache == str(entries[0])

    stream = align_batches(faces, "arcface112", device="cpu", cache_dir=cache, warn=False)
    assert stream.cached is not None  # known before any decoding
    second = align_samples(faces, "arcface112", device="cpu", cache_dir=cache)
    np.testing.assert_array_equal(second.crops, first.crops)
    np.testing.assert_array_equal(second.transforms, first.transforms)
    assert list(second.report.methods) == list(first.report.methods)

    uncached = align_samples(faces, "arcface112", device="cpu")
    np.testing.assert_array_equal(uncached.crops, first.crops)

    write_face(Path(faces.samples["path"][3]), 1.0, 0, seed=99)  # new content, new mtime
    third = align_samples(faces, "arcface112", device="cpu", cache_dir=cache)
    assert len(list(cache.iterdir())) == 2
    assert not np.array_equal(third.crops[3], first.crops[3])
    np.testing.assert_array_equal(third.crops[:3], first.crops[:3])


def test_interrupted_stream_leaves_no_cache_entry(faces, tmp_path):
    cache = tmp_path / "cache"
    stream = align_batches(faces, device="cpu", batch_size=2, cache_dir=cache, warn=False)
    iterator = iter(stream)
    next(iterator)
    iterator.close()
    assert list(cache.iterdir()) == []


def test_cli_writes_crops_manifest_report_and_preview(faces, tmp_path):
    frame = faces.samples
    csv = pd.DataFrame({
        "path": [Path(p).name for p in frame["path"]], "subject": frame["subject"],
        "yaw": frame["yaw"],
        "landmarks": [" ".join(f"{v:.3f}" for v in lm.ravel()) if lm is not None else ""
                      for lm in frame["landmarks"]],
        "box": [" ".join(f"{v:g}" for v in b) if b is not None else "" for b in frame["box"]]})
    csv.to_csv(faces.root / "metadata.csv", index=False)
    out, preview = tmp_path / "out", tmp_path / "preview.png"
    res = CliRunner().invoke(main, ["align", str(faces.root), "--template", "arcface112",
                                    "--out", str(out), "--preview", str(preview),
                                    "--device", "cpu", "--detect", "never"])
    assert res.exit_code == 0, res.output
    assert "2 fell back" in res.output
    crops = sorted(p.relative_to(out).as_posix() for p in (out / "images").iterdir())
    assert crops == ["images/a.png", "images/b.png", "images/c.png", "images/d.png"]
    assert cv2.imread(str(out / "images" / "a.png")).shape == (112, 112, 3)
    report = json.loads((out / "align_report.json").read_text())
    assert report["counts"] == {"box": 1, "full_image": 1, "template": 2}

    from bench.readers.manifest import read_samples

    aligned = read_samples(out / "metadata.csv").samples
    assert list(aligned["subject"]) == ["s1", "s1", "s2", "s2"]
    np.testing.assert_allclose(aligned["landmarks"][0], ARCFACE.reference[FIVE], atol=0.6)
    assert aligned["landmarks"][2] is None
    grid = cv2.imread(str(preview))
    assert grid is not None and grid.shape[0] > 112 and grid.shape[1] > 3 * 112


def test_cli_reports_an_unknown_template(faces, tmp_path):
    res = CliRunner().invoke(main, ["align", str(faces.root), "--template", "arcfce112",
                                    "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "Did you mean arcface112" in res.output


@pytest.mark.gpu
def test_cuda_decode_and_warp_match_the_cpu_path(faces):
    cpu = align_samples(faces, "arcface112", device="cpu")
    gpu = align_samples(faces, "arcface112", device="cuda")
    diff = np.abs(cpu.crops.astype(int) - gpu.crops.astype(int))
    assert diff.mean() < 1.0  # nvJPEG and libjpeg differ by a grey level here and there
    np.testing.assert_array_equal(cpu.transforms, gpu.transforms)
    images = read_images(faces.samples["path"], device="cuda")
    assert all(i.device.type == "cuda" for i in images)


def test_cli_crops_of_paths_above_the_manifest_stay_in_out(tmp_path):
    """A manifest in a/b/ listing ``../../photos/x.png``: its crops must land under
    OUT/images, never at OUT/images/../../photos/x.png, which (OUT built beside the
    photos) is the input photo itself, overwritten with its crop."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("x", "y"):
        cv2.imwrite(str(photos / f"{name}.png"), np.full((90, 80, 3), 100, np.uint8))
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    manifest = tmp_path / "a" / "b" / "m.csv"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("path,subject,yaw\n../../photos/x.png,s,\n../../photos/y.png,t,\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["align", str(manifest), "--out", str(out), "--detect",
                                    "never", "--device", "cpu", "--quiet"])
    assert res.exit_code == 0, res.output
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before
    listed = pd.read_csv(out / "metadata.csv")["path"]
    assert sorted(listed) == ["images/x.png", "images/y.png"]
    assert all((out / p).is_file() for p in listed)
