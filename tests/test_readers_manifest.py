"""Manifest CSV and identity-folder readers, and comparison lists on disk."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from test_readers_fixtures import tiny_image, write_manifest

from bench.data import SkippedRows, new_comparisons
from bench.data.comparisons_io import read_comparisons, write_comparisons
from bench.errors import DataError
from bench.readers import manifest


def test_manifest_columns_paths_points(tmp_path):
    path = write_manifest(tmp_path / "d", subjects=2, per_subject=3)
    s = manifest.read_samples(path).samples
    assert len(s) == 6 and s["subject"].tolist() == ["s00"] * 3 + ["s01"] * 3
    assert s["path"][4] == str(tmp_path / "d/s01/0001.jpg")
    assert s["template"][4] == "s01/0001.jpg" and s["media"][4] == "s01/0001.jpg"
    assert s["yaw"].tolist() == [0.0, 20.0, -45.0, 0.0, -20.0, 45.0]
    assert (s["yaw_source"] == "metadata").all() and (s["pitch"] == 2).all()
    assert s["landmarks"][0].tolist() == [[1, 2], [3, 4], [5, 6]]
    assert s["box"][0].tolist() == [0, 0, 8, 8]
    # a folder holding metadata.csv reads the same manifest
    assert manifest.read_samples(tmp_path / "d").samples["path"].tolist() == s["path"].tolist()


def test_minimal_manifest_with_templates_and_unknown_yaw(tmp_path):
    (tmp_path / "a.jpg").write_bytes(tiny_image(0))
    (tmp_path / "b.jpg").write_bytes(tiny_image(1))
    (tmp_path / "m.csv").write_text("subject,yaw,path,template\nx,,a.jpg,t1\nx,12.5,b.jpg,t1\n")
    s = manifest.read_samples(tmp_path / "m.csv").samples
    assert s["template"].tolist() == ["t1", "t1"]
    assert np.isnan(s["yaw"][0]) and s["yaw_source"].tolist() == ["none", "metadata"]
    assert s["landmarks"].isna().all() and s["box"].isna().all()


@pytest.mark.parametrize("row, message", [
    ("s00/0000.jpg,s00,abc,0,0,,", "non-numeric yaw: yaw is 'abc'"),
    ("s00/none.jpg,s00,1,0,0,,", "missing image"),
    ("s00/0000.jpg,s00,1,0,0,1 2 3,", "bad landmarks"),
    ("s00/0000.jpg,s00,1,0,0,,1 2 3", "bad box"),
    ("s00/0000.jpg,,1,0,0,,", "empty subject"),
    ("s00/0000.jpg,s00,1", "malformed line"),
    ("s00\\0000.jpg,s00,1,0,0,,", r"missing image: .*separates folders with '\\'"),
    # bug: angles beyond a half turn were taken as they were (|yaw| 400: a full profile)
    ("s00/0000.jpg,s00,400,0,0,,", r"yaw 400 is outside \[-180, 180\]"),
    ("s00/0000.jpg,s00,inf,0,0,,", "yaw inf is outside"),
    ("s00/0000.jpg,s00,1,0,-200,,", "roll -200 is outside"),
])
def test_bad_rows_name_file_and_line(tmp_path, row, message):
    path = write_manifest(tmp_path, subjects=1, per_subject=1)
    with open(path, "a") as f:
        f.write(row + "\n")
    with pytest.raises(DataError, match=message) as err:
        manifest.read_samples(path)
    assert err.value.path == str(path) and err.value.line == 3 and err.value.text == row
    skipped = SkippedRows(lenient=True)
    assert len(manifest.read_samples(path, skipped)) == 1 and len(skipped) == 1


def test_image_listed_twice(tmp_path):
    path = write_manifest(tmp_path, subjects=1, per_subject=2)
    with open(path, "a") as f:
        f.write("s00/0001.jpg,s00,5,0,0,,\n")
    with pytest.raises(DataError, match="image listed twice") as err:
        manifest.read_samples(path)
    assert err.value.line == 4
    # without a template column the user never named templates: say how to list one group
    # photo once per face in it
    assert "add a template column" in err.value.message


def test_identity_folders(tmp_path):
    for subject, n in (("bob", 2), ("amy", 1)):
        for i in range(n):
            (tmp_path / subject).mkdir(exist_ok=True)
            (tmp_path / subject / f"{i}.png").write_bytes(tiny_image(i, ".png"))
    (tmp_path / "bob" / "notes.txt").write_text("not an image")
    (tmp_path / "amy" / "2.tif").write_bytes(b"a suffix bench does not read")
    (tmp_path / "amy" / ".DS_Store").write_bytes(b"")
    read = manifest.read_samples(tmp_path)
    s = read.samples
    assert s["template"].tolist() == ["amy/0.png", "bob/0.png", "bob/1.png"]
    # files left out are said, not silently dropped (hidden files are no one's data)
    (note,) = [n for n in read.provenance["notes"] if "left out" in n]
    assert note.startswith("2 files") and "amy/2.tif, bob/notes.txt" in note
    assert s["subject"].tolist() == ["amy", "bob", "bob"] and s["yaw"].isna().all()
    with pytest.raises(DataError, match="no images found"):
        manifest.read_samples(tmp_path / "bob")


def test_a_photo_or_a_flat_folder_as_data_says_what_data_is(tmp_path):
    """A user's first try with their photos: one image, or a folder of images with no
    identity folders. Each error names the path and the layouts DATA may have."""
    (tmp_path / "flat").mkdir()
    for i in range(3):
        (tmp_path / "flat" / f"{i}.jpg").write_bytes(tiny_image(i))
    with pytest.raises(DataError, match="an image, not a dataset.*ROOT/<subject>/<image>") \
            as err:
        manifest.read_samples(tmp_path / "flat" / "0.jpg")
    assert err.value.path == str(tmp_path / "flat" / "0.jpg") and err.value.line is None
    with pytest.raises(DataError, match="3 images lie directly in this folder.*one folder "
                       "per identity") as err:
        manifest.read_samples(tmp_path / "flat")
    assert err.value.path == str(tmp_path / "flat")


def test_comparison_list_round_trip_and_checksum(tmp_path):
    comp = new_comparisons(["a", "b"], ["c", "d"], [1, 0], [1, 2])
    digest = write_comparisons(comp, tmp_path / "pairs.csv")
    assert digest == hashlib.sha256((tmp_path / "pairs.csv").read_bytes()).hexdigest()
    assert (tmp_path / "pairs.csv.sha256").read_text() == f"{digest}  pairs.csv\n"
    back, digest2 = read_comparisons(tmp_path / "pairs.csv", ["a", "b", "c", "d"])
    assert digest2 == digest and back.equals(comp)
    with open(tmp_path / "pairs.csv", "a") as f:
        f.write("a,d,0,1\n")
    with pytest.raises(DataError, match="does not match its checksum"):
        read_comparisons(tmp_path / "pairs.csv", ["a", "b", "c", "d"])


@pytest.mark.parametrize("row, message", [
    ("a,x,1,1", "unknown template id 'x'"),
    ("c,a,1,1", "duplicate pair"),
    ("a,d,2,1", "label must be 0 or 1"),
    ("a,d,1,0", "fold must be >= 1"),
    ("a,d,1,one", "bad fold"),
])
def test_comparison_list_bad_rows(tmp_path, row, message):
    (tmp_path / "p.csv").write_text(f"a,b,label,fold\na,c,1,1\n{row}\n")
    with pytest.raises(DataError, match=message) as err:
        read_comparisons(tmp_path / "p.csv", ["a", "b", "c", "d"])
    assert err.value.line == 3


def test_manifest_protocol_reads_its_comparison_list(tmp_path):
    path = write_manifest(tmp_path, subjects=2, per_subject=2)
    comp = new_comparisons(["s00/0000.jpg"], ["s01/0001.jpg"], [0], [1])
    write_comparisons(comp, tmp_path / "pairs.csv")
    ev = manifest.read(path, comparisons="pairs.csv")
    assert ev.comparisons.equals(comp) and "pairs.csv" in ev.samples.provenance["files"]
    with pytest.raises(DataError, match="needs a comparison list"):
        manifest.read(path)


def test_binary_garbage_names_file_and_line(tmp_path):
    (tmp_path / "m.csv").write_bytes(b"path,subject,yaw\na.jpg,x,1\n\xff\xfe,y,2\n")
    with pytest.raises(DataError, match="not UTF-8 text") as err:
        manifest.read_samples(tmp_path / "m.csv")
    assert err.value.line == 3


def test_hidden_landmarks_as_nan_are_kept(tmp_path):
    import cv2
    import numpy as np

    from bench.readers import manifest

    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "metadata.csv").write_text(
        "path,subject,yaw,landmarks\na.jpg,s1,80,1 2 nan nan 5 6\n")
    s = manifest.read_samples(tmp_path / "metadata.csv").samples
    lm = s["landmarks"].iloc[0]
    assert lm.shape == (3, 2) and np.isnan(lm[1]).all() and lm[2, 1] == 6


def test_a_corrupt_image_is_named_with_its_manifest_line(tmp_path):
    """An image that does not decode is named with the manifest line that lists it, at
    both places a run decodes images (the detection stage and the alignment), so the user
    can fix or drop that row."""
    from bench.align import align_samples
    from bench.detect import complete_landmarks
    from bench.detect.backends import FaceDetector
    from bench.detect.faces import Faces

    class NoFaces(FaceDetector):
        name = "none"

        def detect(self, image_bgr):
            return Faces.none(image_bgr.shape[1::-1], "five")

        def identity(self):
            return {"backend": self.name}

    path = write_manifest(tmp_path / "own", subjects=2, per_subject=2)
    (tmp_path / "own" / "s01" / "0001.jpg").write_bytes(b"not a jpeg")  # line 5
    samples = manifest.read_samples(path).samples
    no_points = samples.assign(landmarks=[None] * len(samples))
    for decode in (lambda: align_samples(samples, "arcface112", "cpu"),
                   lambda: complete_landmarks(no_points, detector=NoFaces(),
                                              cache_dir=tmp_path / "cache")):
        with pytest.raises(DataError) as err:
            decode()
        assert (err.value.path, err.value.line) == (str(path), 5), str(err.value)
        assert "s01/0001.jpg" in str(err.value) and "cannot decode image" in str(err.value)


def test_images_below_the_identity_folders_are_said_not_silently_dropped(tmp_path):
    """Bug: ROOT/<subject>/<video>/frame.jpg was skipped without a word."""
    (tmp_path / "bob" / "v1").mkdir(parents=True)
    (tmp_path / "bob" / "0.png").write_bytes(tiny_image(0, ".png"))
    (tmp_path / "amy").mkdir()
    (tmp_path / "amy" / "0.png").write_bytes(tiny_image(1, ".png"))
    for i in range(2):
        (tmp_path / "bob" / "v1" / f"{i}.png").write_bytes(tiny_image(2 + i, ".png"))
    read = manifest.read_samples(tmp_path)
    assert read.samples["template"].tolist() == ["amy/0.png", "bob/0.png"]
    (note,) = [n for n in read.provenance["notes"] if "deeper" in n]
    assert note.startswith("2 images") and "bob/v1/0.png" in note and "metadata.csv" in note


def test_hidden_and_system_folders_are_no_identities(tmp_path):
    """Bug: .thumbnails/ and __MACOSX/ became subjects of their own."""
    for folder in ("amy", ".thumbnails", "__MACOSX"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "0.png").write_bytes(tiny_image(len(folder), ".png"))
    read = manifest.read_samples(tmp_path)
    assert read.samples["subject"].tolist() == ["amy"]
    (note,) = [n for n in read.provenance["notes"] if "hidden" in n]
    assert note.startswith("2 hidden") and ".thumbnails" in note and "__MACOSX" in note


def test_two_faces_of_one_photo_need_their_own_boxes(tmp_path):
    """Bug: one photo listed for two faces told apart by landmarks alone collapsed into one
    crop (stages key a face by photo and box): the second face got the first's crop, yaw
    and features. The same face listed again (equal points, however written) is fine."""
    (tmp_path / "group.png").write_bytes(tiny_image(0, ".png"))
    header = "path,subject,yaw,template,landmarks\n"
    same = ("group.png,amy,,t1,10 10 20 10 15 15 12 20 18 20\n"
            "group.png,amy,,t2,10.0 10 20 10 15 15 12 20 18 20\n")
    path = tmp_path / "m.csv"
    path.write_text(header + same)
    assert len(manifest.read_samples(path).samples) == 2
    path.write_text(header + same + "group.png,bob,,t3,40 10 50 10 45 15 42 20 48 20\n")
    with pytest.raises(DataError, match="give each face its box") as err:
        manifest.read_samples(path)
    assert err.value.line == 4 and err.value.path == str(path)
    path.write_text("path,subject,yaw,template,landmarks,box\n"
                    "group.png,amy,,t1,10 10 20 10 15 15 12 20 18 20,5 5 20 20\n"
                    "group.png,bob,,t3,40 10 50 10 45 15 42 20 48 20,35 5 20 20\n")
    assert manifest.read_samples(path).samples["subject"].tolist() == ["amy", "bob"]
