"""IJB-A reader: 11 and 1N sets, header names, the header-less first-row trap, bad rows."""

from __future__ import annotations

import numpy as np
import pytest
from test_readers_fixtures import IJBA_HEADER_25, write_ijba

from bench.data import SkippedRows
from bench.errors import DataError
from bench.readers import ijba


@pytest.fixture()
def ijba_root(tmp_path):
    root = tmp_path / "ijba"
    return root, write_ijba(root)


def test_verify_keeps_every_pair_including_the_first_row(ijba_root):
    root, info = ijba_root
    ev = ijba.read(root, task="verify", folds=2)
    c = ev.comparisons
    for k in (1, 2):
        got = list(zip(c[c.fold == k]["a"], c[c.fold == k]["b"], strict=True))
        assert got == [(f"{k}:{a}", f"{k}:{b}") for a, b in info["pairs"][k]]
    a, b = info["first_pair"][1]
    assert ((c.a == f"1:{a}") & (c.b == f"1:{b}") & (c.label == 1)).sum() == 1
    assert c["label"].tolist() == [1, 1, 1, 1, 0, 0, 0, 0] * 2


def test_verify_samples_keep_templates_media_frames_yaw_box_points(ijba_root):
    root, info = ijba_root
    s = ijba.read(root, folds=2).samples.samples
    assert len(s) == 2 * info["rows_per_split"]
    t = s[s.template == "1:111"].reset_index(drop=True)  # split 1, subject 1, template 1
    assert t["path"].tolist() == [str(root / "images/img/111.jpg"),
                                  str(root / "images/frame/1111_1.png"),
                                  str(root / "images/frame/1111_2.png")]
    assert t["media"].tolist() == ["111", "1111", "1111"]
    assert t["frame"].tolist() == ["", "1", "2"]
    assert t["yaw"].tolist() == [-10.0, 60.0, 60.0] and (t["yaw_source"] == "metadata").all()
    assert t["box"][0].tolist() == [2, 3, 5, 6]
    assert t["landmarks"][0].tolist() == [[3, 4], [6, 4], [4.5, 6]]
    assert t["landmarks"][0].dtype == np.float32


def test_sixteen_column_metadata_has_no_yaw(tmp_path):
    root = tmp_path / "ijba"
    write_ijba(root, columns=16)
    s = ijba.read(root, folds=2).samples.samples
    assert s["yaw"].isna().all() and (s["yaw_source"] == "none").all()
    assert s["landmarks"].map(lambda a: a.shape == (3, 2)).all()


def test_columns_are_found_by_name_not_position(ijba_root):
    root, _ = ijba_root
    meta = root / "IJB-A_11_sets/split1/verify_metadata_1.csv"
    lines = meta.read_text().splitlines()
    order = list(reversed(range(len(IJBA_HEADER_25))))
    meta.write_text("\n".join(",".join(line.split(",")[i] for i in order)
                              for line in lines) + "\n")
    s = ijba.read(root, folds=2).samples.samples
    assert s[s.template == "1:111"]["yaw"].tolist() == [-10.0, 60.0, 60.0]


def test_search_gallery_probe_and_open_set(ijba_root):
    root, info = ijba_root
    ev = ijba.read(root, task="search", folds=2)
    assert ev.task == "search" and ev.folds == [1, 2]
    gallery, probes = ev.gallery(1), ev.probes(1)
    assert gallery["template"].tolist() == ["1:110", "1:120", "1:130"]
    assert probes["template"].tolist() == ["1:111", "1:121", "1:131", "1:141"]
    assert not set(probes["subject"]) - {"1", "2", "3", "4"}
    assert "4" not in set(gallery["subject"])  # the left-out subject makes it open-set


def test_comparison_file_with_a_header_row_is_noted_not_lost(ijba_root):
    root, info = ijba_root
    comp = root / "IJB-A_11_sets/split1/verify_comparisons_1.csv"
    comp.write_text("ENROLL_TEMPLATE_ID,VERIFY_TEMPLATE_ID\n" + comp.read_text())
    ev = ijba.read(root, folds=2)
    assert (ev.comparisons.fold == 1).sum() == len(info["pairs"][1])
    assert any("read as a header" in n for n in ev.samples.provenance["notes"])


def test_unknown_template_and_duplicate_pair(ijba_root):
    root, _ = ijba_root
    comp = root / "IJB-A_11_sets/split2/verify_comparisons_2.csv"
    original = comp.read_text()
    comp.write_text(original + "210,999\n")
    with pytest.raises(DataError, match="unknown template id '2:999'") as err:
        ijba.read(root, folds=2)
    assert err.value.path == str(comp) and err.value.line == 9 and err.value.text == "210,999"
    comp.write_text(original + "211,210\n")  # the first pair, the other way round
    with pytest.raises(DataError, match="duplicate pair") as err:
        ijba.read(root, folds=2)
    assert err.value.line == 9
    # bug: a template paired with itself was kept, scored the maximum, counted genuine
    comp.write_text(original + "210,210\n")
    with pytest.raises(DataError, match=r"\(2:210, 2:210\) compares a template with itself") as err:
        ijba.read(root, folds=2)
    assert err.value.line == 9 and err.value.path == str(comp)


@pytest.mark.parametrize("column, yaw, message", [
    ("FACE_YAW", "left", "non-numeric yaw: FACE_YAW is 'left'"),
    # bug: a yaw beyond a half turn was kept (and binned as a profile)
    ("FACE_YAW", "400", r"FACE_YAW 400 is outside \[-180, 180\]"),
    ("FACE_YAW", "1.2e3", "FACE_YAW 1.2e3 is outside"),
    # bug: a box of no size was kept, then ignored by every stage without a word
    ("FACE_WIDTH", "0", r"face box of no size \(FACE_WIDTH 0, FACE_HEIGHT"),
    ("FACE_HEIGHT", "-12", r"face box of no size \(FACE_WIDTH .*, FACE_HEIGHT -12\)"),
])
def test_bad_yaw_strict_and_lenient(ijba_root, column, yaw, message):
    root, info = ijba_root
    meta = root / "IJB-A_11_sets/split1/verify_metadata_1.csv"
    lines = meta.read_text().splitlines()
    fields = lines[1].split(",")
    fields[IJBA_HEADER_25.index(column)] = yaw
    lines[1] = ",".join(fields)
    meta.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=message) as err:
        ijba.read(root, folds=2)
    assert err.value.line == 2
    skipped = SkippedRows(lenient=True)
    ev = ijba.read(root, folds=2, skipped=skipped)
    assert len(ev.samples) == 2 * info["rows_per_split"] - 1
    assert [(e.line, e.path) for e in skipped.errors] == [(2, str(meta))]


def test_missing_image_drops_template_and_its_pairs_reporting_both(ijba_root):
    root, info = ijba_root
    # Template 1:141 has one still and two frames; remove all three files.
    for f in ("img/141.jpg", "frame/1141_1.png", "frame/1141_2.png"):
        (root / "images" / f).unlink()
    with pytest.raises(DataError, match="missing image"):
        ijba.read(root, folds=2)
    skipped = SkippedRows(lenient=True)
    ev = ijba.read(root, folds=2, skipped=skipped)
    messages = [e.message for e in skipped.errors]
    assert sum(m.startswith("missing image") for m in messages) == 3
    # The template lost every image, so its pair (140, 141) is reported too, not dropped.
    assert messages[3:] == ["unknown template id '1:141'"]
    assert skipped.errors[3].text == "140,141"
    assert (ev.comparisons.fold == 1).sum() == len(info["pairs"][1]) - 1


def test_missing_column_and_subject_conflict(ijba_root):
    root, _ = ijba_root
    meta = root / "IJB-A_11_sets/split1/verify_metadata_1.csv"
    text = meta.read_text()
    meta.write_text(text.replace("SUBJECT_ID", "SUBJECT", 1))
    with pytest.raises(DataError, match=r"lacks columns \['SUBJECT_ID'\]") as err:
        ijba.read(root, folds=2)
    assert err.value.line == 1
    lines = text.splitlines()
    fields = lines[2].split(",")
    fields[1] = "9"  # second row of template 110 claims another subject
    lines[2] = ",".join(fields)
    meta.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="template 110 has subject 9 here but 1"):
        ijba.read(root, folds=2)


def test_missing_split_folder(ijba_root):
    root, _ = ijba_root
    with pytest.raises(DataError, match="missing IJB-A split 3") as err:
        ijba.read(root, folds=3)
    assert err.value.path == str(root / "IJB-A_11_sets/split3")


def test_images_beside_the_set_folders(ijba_root):
    root, info = ijba_root
    for sub in ("img", "frame"):
        (root / "images" / sub).rename(root / sub)
    (root / "images").rmdir()
    s = ijba.read(root, folds=2).samples.samples
    assert s["path"][0] == str(root / "img/110.jpg") and len(s) == 2 * info["rows_per_split"]
    with pytest.raises(DataError, match="missing IJB-A image folder"):
        ijba.read(root, folds=2, images="pictures")


def test_a_search_template_that_lost_every_row_is_dropped_and_said(ijba_root):
    """Lenient: a gallery template whose every row was skipped left the search with no
    word, and the probes of its subject silently became non-mated."""
    root, _ = ijba_root
    gallery = root / "IJB-A_1N_sets/split1/search_gallery_1.csv"
    lines = gallery.read_text().splitlines()
    gallery.write_text("\n".join(line.replace("110,1,", "110,,", 1) for line in lines) + "\n")
    skipped = SkippedRows(lenient=True)
    ev = ijba.read(root, task="search", folds=2, skipped=skipped)
    assert "1:110" not in set(ev.gallery(1)["template"])
    notes = ev.samples.provenance["notes"]
    assert any("1:110" in n and "gallery" in n and "every row skipped" in n
               for n in notes), notes
