"""An output file or folder is never one of the files a command reads.

``bench yaw`` and ``bench detect`` checked their --out only against DATA itself, so an
--out naming the manifest they read, or an image the dataset lists (inside DATA or not),
was overwritten with CSV text; ``bench align --preview`` and a ``bench align --out``
holding listed images, and ``bench score FILE --example FILE`` had the same hole. Each
test makes the heavy step (estimation, detection) fail loudly if it is reached: the
refusal must come first. No detector is needed: the stage is replaced where reached.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.errors import ConfigError
from bench.fileio import check_output_file, prepare_output_dir


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((40, 40, 3), 128, np.uint8))
    return path


@pytest.fixture
def layout(tmp_path) -> Path:
    """photos/ (identity folders), md/ (a folder with metadata.csv), man.csv listing an
    image of other_folder/ and one of photos/."""
    for rel in ("photos/p0/img0.jpg", "photos/p1/img0.jpg", "other_folder/p2/img0.jpg",
                "md/a.png"):
        _image(tmp_path / rel)
    (tmp_path / "md" / "metadata.csv").write_text("path,subject,yaw\na.png,s0,10\n")
    (tmp_path / "man.csv").write_text(
        "path,subject,yaw\nother_folder/p2/img0.jpg,s2,\nphotos/p0/img0.jpg,s0,5\n")
    return tmp_path


@pytest.fixture
def no_heavy_work(monkeypatch):
    """Estimation and detection raise if reached; creating a detector needs no model."""
    import bench.detect
    import bench.pose.sources

    def reached(*args, **kwargs):
        raise AssertionError("the heavy step ran before the output was checked")

    monkeypatch.setattr(bench.pose.sources, "estimate_yaw", reached)
    monkeypatch.setattr(bench.detect, "complete_landmarks", reached)
    monkeypatch.setattr(bench.detect, "create_detector", lambda *a, **k: object())


def _cli(root: Path, *args) -> object:
    cwd = os.getcwd()
    os.chdir(root)  # relative paths, as a user types them
    try:
        return CliRunner().invoke(main, [str(a) for a in args])
    finally:
        os.chdir(cwd)


def _refused(res, *fragments: str) -> None:
    """Exit 2, one message naming the output and the input, no traceback."""
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output
    assert "refusing" in res.output, res.output
    for fragment in fragments:
        assert fragment in res.output, (fragment, res.output)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


COMMANDS = [("yaw", "--backend", "none", "--quiet"), ("detect", "--quiet")]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_the_manifest_read_is_refused(layout, no_heavy_work, command):
    before = _snapshot(layout)
    res = _cli(layout, command[0], "md", "--out", "md/metadata.csv", *command[1:])
    _refused(res, "md/metadata.csv")
    assert _snapshot(layout) == before


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("out", ["photos/p0/img0.jpg", "photos/p1/img0.jpg"])
def test_an_image_inside_data_is_refused(layout, no_heavy_work, command, out):
    before = _snapshot(layout)
    res = _cli(layout, command[0], "photos", "--out", out, *command[1:])
    _refused(res, out)
    assert _snapshot(layout) == before


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_listed_image_outside_data_is_refused(layout, no_heavy_work, command):
    before = _snapshot(layout)
    res = _cli(layout, command[0], "man.csv", "--out", "other_folder/p2/img0.jpg",
               *command[1:])
    _refused(res, "other_folder/p2/img0.jpg")
    assert _snapshot(layout) == before


def test_a_new_table_beside_the_images_is_still_written(layout):
    """The guard refuses files read, not the input folder: a yaw table may sit beside
    the photos it describes."""
    res = _cli(layout, "yaw", "photos", "--out", "photos/yaw.csv", "--backend", "none",
               "--quiet")
    assert res.exit_code == 0, res.output
    assert (layout / "photos" / "yaw.csv").read_text().startswith("path,yaw")


def test_an_undecodable_image_skipped_by_lenient_is_still_refused(layout, no_heavy_work):
    """--lenient leaves a corrupt photo out of the work; it is still the user's file."""
    (layout / "photos" / "p1" / "bad.jpg").write_bytes(b"not a jpeg")
    before = _snapshot(layout)
    res = _cli(layout, "yaw", "photos", "--out", "photos/p1/bad.jpg", "--lenient",
               "--backend", "none", "--quiet")
    _refused(res, "photos/p1/bad.jpg")
    assert _snapshot(layout) == before


def _cfp(root: Path) -> Path:
    """A CFP root with one frontal and one profile image and a fiducial file."""
    for pose in ("frontal", "profile"):
        _image(root / "Data" / "Images" / "s1" / pose / "01.jpg")
    fiducial = root / "Data" / "Fiducials" / "s1" / "frontal" / "01.txt"
    fiducial.parent.mkdir(parents=True)
    fiducial.write_text("10,12\n30,12\n20,22\n14,30\n26,30\n")
    (root / "Protocol").mkdir()
    for kind, pose in (("F", "frontal"), ("P", "profile")):
        (root / "Protocol" / f"Pair_list_{kind}.txt").write_text(
            f"1 ../Data/Images/s1/{pose}/01.jpg\n")
    return root


@pytest.mark.parametrize("out", ["cfp/Protocol/Pair_list_P.txt",
                                 "cfp/Data/Fiducials/s1/frontal/01.txt"])
def test_the_lists_and_points_of_a_cfp_root_are_refused(tmp_path, no_heavy_work, out):
    _cfp(tmp_path / "cfp")
    before = _snapshot(tmp_path)
    res = _cli(tmp_path, "yaw", "cfp", "--out", out, "--backend", "none", "--quiet")
    _refused(res, out)
    assert _snapshot(tmp_path) == before


def test_a_link_to_a_read_file_is_refused(tmp_path):
    """Paths are compared resolved: a listed image reached through a linked folder is the
    file the output names."""
    image = _image(tmp_path / "real" / "p0" / "img0.jpg")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "alias.jpg").symlink_to(image)
    for listed in (tmp_path / "link" / "p0" / "img0.jpg", tmp_path / "alias.jpg"):
        with pytest.raises(ConfigError, match="is the input"):
            check_output_file(image, read=[listed])
    with pytest.raises(ConfigError, match="contains the input"):
        prepare_output_dir(tmp_path / "real", read=[tmp_path / "link" / "p0" / "img0.jpg"])
    assert check_output_file(tmp_path / "real" / "p0" / "new.csv", inputs=[tmp_path],
                             read=[image])


def test_align_preview_may_not_be_a_listed_image(layout, no_heavy_work):
    before = _snapshot(layout)
    res = _cli(layout, "align", "man.csv", "--out", "aligned", "--preview",
               "photos/p0/img0.jpg", "--detect", "never", "--device", "cpu", "--quiet")
    _refused(res, "--preview", "photos/p0/img0.jpg")
    assert _snapshot(layout) == before and not (layout / "aligned").exists()


def test_align_out_may_not_hold_listed_images(layout, no_heavy_work):
    """An earlier align output (it holds align_report.json, so it would be replaced
    whole) that also holds images a manifest elsewhere lists."""
    (layout / "other_folder" / "align_report.json").write_text("{}\n")
    before = _snapshot(layout)
    res = _cli(layout, "align", "man.csv", "--out", "other_folder", "--detect", "never",
               "--device", "cpu", "--quiet")
    _refused(res, "other_folder", "contains the input")
    assert _snapshot(layout) == before


def test_score_example_may_not_be_the_score_file(tmp_path):
    scores = tmp_path / "scores.csv"
    scores.write_text("score,label\n0.9,1\n0.1,0\n")
    res = _cli(tmp_path, "score", "scores.csv", "--example", "scores.csv")
    assert res.exit_code == 2 and "not both" in res.output, res.output
    assert scores.read_text() == "score,label\n0.9,1\n0.1,0\n"


def test_validate_json_may_not_be_a_file_the_dataset_reads(tiny_synth, tmp_path):
    """Bug: `bench protocols validate ... --json` was checked against DATA alone and wrote
    its report over a pair list (or manifest) of the dataset it had just validated."""
    import shutil

    shutil.copytree(tiny_synth / "cfp", tmp_path / "data" / "cfp")
    shutil.copy(tiny_synth / "synth.json", tmp_path / "data" / "synth.json")
    before = _snapshot(tmp_path)
    res = _cli(tmp_path, "protocols", "validate", "cfp-fp", "--data", "data",
               "--json", "data/cfp/Protocol/Pair_list_P.txt")
    _refused(res, "Pair_list_P.txt")
    assert _snapshot(tmp_path) == before


def test_score_with_both_a_file_and_example_is_a_usage_error(tmp_path):
    """Bug: `bench score FILE --example OUT` wrote the example and silently ignored FILE."""
    (tmp_path / "scores.csv").write_text("score,label\n0.9,1\n0.1,0\n")
    res = _cli(tmp_path, "score", "scores.csv", "--example", "ex.csv")
    assert res.exit_code == 2 and "not both" in res.output, res.output
    assert not (tmp_path / "ex.csv").exists()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("data", ["man.csv", "cfp"])
def test_a_listed_undecodable_image_skipped_by_lenient_is_still_refused(
        layout, no_heavy_work, command, data):
    """Bug: in a layout that lists its images (a manifest, CFP's pair lists) the skipped
    image's error is moved to the list row naming it, so the guard saw the list, not the
    photo, and --out wrote CSV text over the user's corrupt photo."""
    bad = "photos/p1/bad.jpg"
    (layout / "photos" / "p1" / "bad.jpg").write_bytes(b"not a jpeg")
    with (layout / "man.csv").open("a") as f:
        f.write(f"{bad},s1,\n")
    cfp = _cfp(layout / "cfp")
    (cfp / "Data" / "Images" / "s1" / "profile" / "02.jpg").write_bytes(b"not a jpeg")
    with (cfp / "Protocol" / "Pair_list_P.txt").open("a") as f:
        f.write("2 ../Data/Images/s1/profile/02.jpg\n")
    out = bad if data == "man.csv" else "cfp/Data/Images/s1/profile/02.jpg"
    before = _snapshot(layout)
    res = _cli(layout, command[0], data, "--out", out, "--lenient", *command[1:])
    _refused(res, out)
    assert _snapshot(layout) == before


def test_validate_json_may_not_be_an_image_lenient_left_out(tiny_synth, tmp_path):
    import shutil

    shutil.copytree(tiny_synth / "cfp", tmp_path / "data" / "cfp")
    shutil.copy(tiny_synth / "synth.json", tmp_path / "data" / "synth.json")
    image = next((tmp_path / "data" / "cfp" / "Data" / "Images").rglob("*.jpg"))
    image.write_bytes(b"not a jpeg")
    out = image.relative_to(tmp_path).as_posix()
    before = _snapshot(tmp_path)
    res = _cli(tmp_path, "protocols", "validate", "cfp-fp", "--data", "data", "--lenient",
               "--json", out)
    _refused(res, out)
    assert _snapshot(tmp_path) == before
