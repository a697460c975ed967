"""CFP reader on hand-made fixtures in the original layout, well-formed and broken."""

from __future__ import annotations

import numpy as np
import pytest
from test_readers_fixtures import write_cfp

from bench.data import SkippedRows
from bench.errors import DataError
from bench.readers import cfp


@pytest.fixture()
def cfp_root(tmp_path):
    root = tmp_path / "cfp"
    info = write_cfp(root)
    return root, info


def test_fp_reads_images_pairs_and_official_folds(cfp_root):
    root, info = cfp_root
    ev = cfp.read(root, pairs="FP", folds=2)
    s = ev.samples.samples
    assert len(s) == info["frontal"] + info["profile"] == 20
    assert s["subject"].nunique() == 4
    assert set(s["template"]) == {f"F{i}" for i in range(1, 13)} | {f"P{i}" for i in range(1, 9)}
    c = ev.comparisons
    assert len(c) == 8 and c["fold"].value_counts().to_dict() == {1: 4, 2: 4}
    # subject 1 (fold 1): frontal 1 is F1, profile 1 is P1; its diff pair uses subject 3's P.
    assert ((c.a == "F1") & (c.b == "P1") & (c.label == 1) & (c.fold == 1)).sum() == 1
    assert ((c.a == "F1") & (c.b == "P5") & (c.label == 0)).sum() == 1
    subject = s.set_index("template")["subject"]
    assert (c["a"].map(subject).eq(c["b"].map(subject)) == c["label"].eq(1)).all()


def test_fp_paths_landmarks_and_pose(cfp_root):
    root, _ = cfp_root
    s = cfp.read(root, folds=2).samples.samples.set_index("template")
    assert s.loc["P3", "path"] == str(root / "Data/Images/002/profile/01.jpg")
    lm = s.loc["F1", "landmarks"]
    assert lm.dtype == np.float32 and lm.shape == (22, 2)
    assert lm[0].tolist() == [10.5, 20.0] and lm[21].tolist() == [31.5, 41.0]
    assert s.loc["F2", "yaw"] == 6.0 and s.loc["P2", "yaw"] == 72.0 and s.loc["P1", "yaw"] == -71
    assert s.loc["F2", "pitch"] == 1.5 and s.loc["F2", "roll"] == -0.5
    assert (s["yaw_source"] == "metadata").all()


def test_ff_uses_frontal_list_only(cfp_root):
    root, info = cfp_root
    ev = cfp.read(root, pairs="FF", folds=2)
    assert len(ev.samples) == info["frontal"]
    assert ev.comparisons["b"].str.startswith("F").all()
    assert ev.comparisons["label"].sum() == 4


def test_fiducial_folder_spelling_and_no_pose(tmp_path):
    root = tmp_path / "cfp"
    write_cfp(root, fiducial_dir="Fiducial", points=30, pose=False)
    ev = cfp.read(root, folds=2)
    s = ev.samples.samples
    assert s["landmarks"].map(lambda a: a.shape == (30, 2)).all()
    assert ev.samples.provenance["landmark_scheme"] == "cfp30"
    assert s["yaw"].isna().all() and (s["yaw_source"] == "none").all()
    assert any("pose.csv" in n for n in ev.samples.provenance["notes"])


def test_provenance_hashes_lists_and_split_files(cfp_root):
    root, _ = cfp_root
    files = cfp.read(root, folds=2).samples.provenance["files"]
    assert "Protocol/Pair_list_P.txt" in files and "Protocol/Split/FP/02/diff.txt" in files
    assert all(len(h) == 64 for h in files.values())


def _append(path, text):
    with open(path, "a") as f:
        f.write(text)


@pytest.mark.parametrize("line, message", [
    ("1;2", "malformed line"),
    ("1,2,3", "malformed line"),
    ("x,2", "bad index"),
    ("1,99", "index out of range"),
    # bug: "nan" passed the whole-number check and was cast to -2**63 with a RuntimeWarning
    ("nan,2", "bad index: a is 'nan', not a whole number"),
    ("1,inf", "bad index: b is 'inf', not a whole number"),
])
def test_bad_split_lines_name_file_and_line(cfp_root, line, message):
    import warnings

    root, _ = cfp_root
    same = root / "Protocol/Split/FP/01/same.txt"
    _append(same, line + "\n")
    with pytest.raises(DataError) as err, warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        cfp.read(root, folds=2)
    assert message in str(err.value)
    assert err.value.path == str(same) and err.value.line == 3 and err.value.text == line


def test_repeated_pairs_are_kept_counted_and_noted_as_published(cfp_root):
    # The official FF splits repeat 130 pairs ("1,4" and later "4,1" in one file): every
    # published CFP number counts them, so the reader must too, and say so.
    root, _ = cfp_root
    before = len(cfp.read(root, folds=2).comparisons)
    same = root / "Protocol/Split/FP/01/same.txt"
    first = same.read_text().splitlines()[0]
    a, b = first.split(",")
    _append(same, f"{a},{b}\n")
    ev = cfp.read(root, folds=2)
    assert len(ev.comparisons) == before + 1
    rep = ev.samples.provenance["repeated_pairs"]
    assert rep["count"] == 1 and f"{same}:3" in rep["first"][0]
    assert any("repeats an earlier pair" in n for n in ev.samples.provenance["notes"])


def test_lenient_skips_and_reports_each_bad_row(cfp_root):
    root, _ = cfp_root
    same = root / "Protocol/Split/FP/01/same.txt"
    _append(same, "1;2\n1,99\n")
    skipped = SkippedRows(lenient=True)
    ev = cfp.read(root, folds=2, skipped=skipped)
    assert len(ev.comparisons) == 8
    assert [(e.line, e.text) for e in skipped.errors] == [(3, "1;2"), (4, "1,99")]


def test_wrong_label_is_an_error(cfp_root):
    root, _ = cfp_root
    # F1 (subject 1) and P3 (subject 2) are two identities: not a "same" pair.
    _append(root / "Protocol/Split/FP/01/same.txt", "1,3\n")
    with pytest.raises(DataError, match="same.txt pair of two identities"):
        cfp.read(root, folds=2)


def test_missing_files_say_what_was_expected(cfp_root, tmp_path):
    root, _ = cfp_root
    with pytest.raises(DataError, match="missing CFP FP split 03 same.txt") as err:
        cfp.read(root, folds=3)
    assert err.value.path == str(root / "Protocol/Split/FP/03/same.txt")
    with pytest.raises(DataError, match="missing CFP Data folder"):
        cfp.read(tmp_path / "nowhere")
    (root / "Data/Images/001/profile/01.jpg").unlink()
    with pytest.raises(DataError, match="missing image") as err:
        cfp.read(root, folds=2)
    assert err.value.path.endswith("Pair_list_P.txt") and err.value.line == 1


def test_non_numeric_yaw_and_bad_fiducial(cfp_root):
    root, _ = cfp_root
    _append(root / "Data/pose.csv", "Data/Images/001/frontal/01.jpg,abc,0,0\n")
    with pytest.raises(DataError, match="non-numeric yaw") as err:
        cfp.read(root, folds=2)
    assert err.value.line == 22  # header + 20 images, then the bad row
    root2 = root.parent / "cfp2"
    write_cfp(root2)
    _append(root2 / "Data/Fiducials/002/frontal/01.txt", "7;8;9\n")
    with pytest.raises(DataError, match="malformed fiducial line"):
        cfp.read(root2, folds=2)
    skipped = SkippedRows(lenient=True)
    s = cfp.read(root2, folds=2, skipped=skipped).samples.samples.set_index("template")
    assert s.loc["F4", "landmarks"] is None and len(skipped) == 1


@pytest.mark.parametrize("change", ["drop", "add"])
def test_a_fiducial_file_with_another_count_is_refused(cfp_root, change):
    """Bug: a fiducial file with a line lost (21 of 22 points) was read as another
    scheme, and its face cropped from the points' extent without a word."""
    root, _ = cfp_root
    path = root / "Data/Fiducials/002/frontal/01.txt"  # F4
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1] if change == "drop" else lines + ["50,60\n"]))
    with pytest.raises(DataError, match=r"fiducial points where this dataset's frontal files") \
            as err:
        cfp.read(root, folds=2)
    assert err.value.path == str(path)
    skipped = SkippedRows(lenient=True)
    s = cfp.read(root, folds=2, skipped=skipped).samples.samples.set_index("template")
    assert s.loc["F4", "landmarks"] is None and len(skipped) == 1


def test_a_real_cfp_count_of_no_known_scheme_that_varies_is_kept_and_noted(cfp_root):
    """Real CFP's fiducials (30 points of no documented order) only give a face box: a file
    with 29 or 31 of them must not stop a run on the real release, whose counts nobody
    here could check; it is counted in the notes. A count that would be read as a known
    scheme (22 = the canonical set) is still refused."""
    root, _ = cfp_root
    folder = root / "Data/Fiducials"
    for path in folder.rglob("*.txt"):  # the real layout: 30 points of no known scheme
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines + lines[:8]))
    odd = folder / "002/frontal/01.txt"  # F4
    lines = odd.read_text().splitlines(keepends=True)
    odd.write_text("".join(lines[:-1]))
    data = cfp.read(root, folds=2)
    s = data.samples.samples.set_index("template")
    assert len(s.loc["F4", "landmarks"]) == 29
    notes = data.samples.provenance["notes"]
    assert any("1 frontal fiducial files have another count than the usual 30: kept" in n
               for n in notes), notes
    odd.write_text("".join(lines[:22]))  # would read as canonical22: refused
    with pytest.raises(DataError, match=r"22 fiducial points where this dataset's frontal "
                                        r"files have 30"):
        cfp.read(root, folds=2)


def test_folds_none_counts_the_split_folders(cfp_root):
    root, _ = cfp_root
    assert cfp.read(root, folds=None).folds == [1, 2]
    (root / "Protocol/Split/FP/04").mkdir()
    with pytest.raises(DataError, match="CFP FP split 03 is missing but 04 exists"):
        cfp.read(root, folds=None)


def test_a_corrupt_image_and_a_fallback_are_named_at_their_pair_list_line(cfp_root):
    """CFP lists each image on a line of Pair_list_F/P.txt: an image that does not decode is
    reported there (not only by path), and a sample that falls back to its box or the
    whole image is listed with that line, so the user can find the row to fix."""
    from bench.align import align_samples

    root, _ = cfp_root
    (root / "Data/Images/002/frontal/01.jpg").write_bytes(b"not a jpeg")  # F4, line 4
    samples = cfp.read(root, folds=2).samples.samples
    with pytest.raises(DataError) as err:
        align_samples(samples, "arcface112", "cpu")
    assert (err.value.path, err.value.line) == (str(root / "Protocol/Pair_list_F.txt"), 4)
    assert "002/frontal/01.jpg" in str(err.value)

    readable = samples[samples["template"] != "F4"].assign(landmarks=None)
    report = align_samples(readable, "arcface112", "cpu").report
    listed = report.to_dict()["fallbacks"]
    assert {r["listed_at"] for r in listed} >= {f"{root / 'Protocol/Pair_list_P.txt'}:1"}
    assert all(r["listed_at"].rsplit(":", 1)[0].endswith(("Pair_list_F.txt", "Pair_list_P.txt"))
               for r in listed)


def test_edited_fiducials_change_the_data_hash(cfp_root, tmp_path):
    """The data hash (a run's data.sha256, and part of its run id) covered the lists,
    splits and pose file but not the fiducials: a run on the same folder with other
    landmarks got the same run id and replaced the first run's folder. It still does not
    depend on where the dataset lies."""
    import shutil

    from bench.runner.run import evalset_digest

    root, _ = cfp_root
    before = evalset_digest(cfp.read(root, folds=2))
    moved = tmp_path / "elsewhere" / "cfp"
    shutil.copytree(root, moved)
    assert evalset_digest(cfp.read(moved, folds=2)) == before
    fiducial = root / "Data/Fiducials/002/frontal/01.txt"
    fiducial.write_text(fiducial.read_text().replace("10.5,20", "11.5,20"))
    edited = evalset_digest(cfp.read(root, folds=2))
    assert edited != before
    fiducial.unlink()  # the image falls back to detection: other crops again
    assert evalset_digest(cfp.read(root, folds=2)) not in (before, edited)


def test_repeats_are_noted_by_kind_not_all_as_the_published_reversals(cfp_root):
    """Bug: every repeat was described as 'an earlier pair in the other order (as in the
    published FP splits)': a same-order copy, a pair in two splits (so in two folds, one
    of them the test fold of the other's threshold), and FP (whose published splits repeat
    nothing) all got the FF wording."""
    root, _ = cfp_root
    for pairs in ("FF", "FP"):
        same1 = root / f"Protocol/Split/{pairs}/01/same.txt"
        same2 = root / f"Protocol/Split/{pairs}/02/same.txt"
        a, b = same1.read_text().splitlines()[0].split(",")
        if pairs == "FF":  # two frontals: the sides may swap
            _append(same1, f"{b},{a}\n")
        _append(same1, f"{a},{b}\n")
        _append(same2, f"{a},{b}\n")
        ev = cfp.read(root, pairs=pairs, folds=2)
        notes = " | ".join(n for n in ev.samples.provenance["notes"] if "repeat" in n)
        if pairs == "FF":
            assert ("1 pair repeats an earlier pair of its file in the other order (as the "
                    "published FF splits do") in notes, notes
        assert "1 pair repeats an earlier pair of its file in the same order" in notes, notes
        assert "1 pair repeats a pair of another split" in notes and "two folds" in notes
        assert "published FP" not in notes and "other order" not in notes or pairs == "FF"
        kinds = ev.samples.provenance["repeated_pairs"]["by_kind"]
        assert kinds == {"other order": int(pairs == "FF"), "same order": 1, "other file": 1,
                         "self": 0}


def test_a_published_self_pair_is_kept_and_noted(cfp_root):
    """A pair of one image with itself is refused in every other list; in CFP's official
    splits it would be kept and counted as published, and noted."""
    root, _ = cfp_root
    same1 = root / "Protocol/Split/FF/01/same.txt"
    a = same1.read_text().splitlines()[0].split(",")[0]
    n = len(cfp.read(root, pairs="FF", folds=2).comparisons)
    _append(same1, f"{a},{a}\n")
    ev = cfp.read(root, pairs="FF", folds=2)
    assert len(ev.comparisons) == n + 1
    assert ev.samples.provenance["repeated_pairs"]["by_kind"]["self"] == 1
    assert any("compares an image with itself" in note for note in ev.samples.provenance["notes"])
