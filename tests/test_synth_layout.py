"""The generated dataset's layout and counts, checked by a small reader written here (not the
generator's own code), against the formats in shared/design/formats.md."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.face3d import LANDMARK_NAMES
from bench.synth import generate, preset

IJBA_HEADER = ("TEMPLATE_ID,SUBJECT_ID,FILE,MEDIA_ID,SIGHTING_ID,FRAME,FACE_X,FACE_Y,FACE_WIDTH,"
               "FACE_HEIGHT,RIGHT_EYE_X,RIGHT_EYE_Y,LEFT_EYE_X,LEFT_EYE_Y,NOSE_BASE_X,NOSE_BASE_Y,"
               "FACE_YAW,FOREHEAD_VISIBLE,EYES_VISIBLE,NOSE_MOUTH_VISIBLE,INDOOR,GENDER,SKIN_TONE,"
               "AGE,FACIAL_HAIR").split(",")
N_TRAIN, PER_ID, N_CFP, N_IJBA = 3, 6, 20, 8


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    config = preset("small", seed=3, **{
        "train.identities": N_TRAIN, "train.images_per_identity": PER_ID,
        "cfp.identities": N_CFP, "ijba.subjects": N_IJBA, "ijba.stills": 3, "ijba.videos": 1,
        "ijba.frames": 2})
    out = tmp_path_factory.mktemp("synth") / "data"
    generate(out, config, workers=2)
    return out


def _image(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img


def test_summary_and_train_manifest(dataset):
    summary = json.loads((dataset / "synth.json").read_text())
    assert summary["seed"] == 3 and summary["landmarks"] == list(LANDMARK_NAMES)
    assert summary["counts"]["train"] == {"identities": N_TRAIN, "images": N_TRAIN * PER_ID}
    with open(dataset / "train" / "metadata.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["path", "subject", "yaw", "pitch", "roll", "landmarks", "visible",
                             "box"]
    assert len(rows) == N_TRAIN * PER_ID
    assert len({r["subject"] for r in rows}) == N_TRAIN
    for r in rows:
        img = _image(dataset / "train" / r["path"])
        assert img.shape == (112, 112, 3)
        assert r["path"].startswith(r["subject"] + "/") and r["path"].endswith(".jpg")
        assert -90 <= float(r["yaw"]) <= 90
        assert len(r["landmarks"].split()) == 2 * len(LANDMARK_NAMES)
        assert set(r["visible"].split()) <= {"0", "1"}
        assert len(r["box"].split()) == 4
    for subject in {r["subject"] for r in rows}:  # every identity has a profile
        assert max(abs(float(r["yaw"])) for r in rows if r["subject"] == subject) >= 60


def _pair_list(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines, start=1):
        index, rel = line.split(" ")
        assert int(index) == i
        assert (path.parent / rel).is_file(), rel
    return [line.split(" ")[1] for line in lines]


def _identity(rel: str) -> str:
    return rel.split("/")[3]  # ../Data/Images/<id>/<kind>/NN.jpg


def test_cfp_layout_and_protocol(dataset):
    cfp = dataset / "cfp"
    ids = sorted(p.name for p in (cfp / "Data" / "Images").iterdir())
    assert ids == [f"{i:03d}" for i in range(1, N_CFP + 1)]
    assert len((cfp / "Data" / "list_names.txt").read_text().splitlines()) == N_CFP
    for ident in ids:
        for kind, n in (("frontal", 10), ("profile", 4)):
            names = sorted(p.name for p in (cfp / "Data" / "Images" / ident / kind).iterdir())
            assert names == [f"{k:02d}.jpg" for k in range(1, n + 1)]
            fid = cfp / "Data" / "Fiducials" / ident / kind / "01.txt"
            points = [tuple(map(float, line.split(","))) for line in fid.read_text().splitlines()]
            assert len(points) == len(LANDMARK_NAMES)
    poses = list(csv.DictReader(open(cfp / "Data" / "pose.csv", newline="")))
    assert len(poses) == N_CFP * 14
    for row in poses:
        assert (cfp / row["path"]).is_file()
        yaw = abs(float(row["yaw"]))
        assert (yaw < 10) if "/frontal/" in row["path"] else (70 <= yaw <= 90)

    flist = _pair_list(cfp / "Protocol" / "Pair_list_F.txt")
    plist = _pair_list(cfp / "Protocol" / "Pair_list_P.txt")
    assert len(flist) == N_CFP * 10 and len(plist) == N_CFP * 4
    assert all("/frontal/" in p for p in flist) and all("/profile/" in p for p in plist)
    split_ids: dict[int, set[str]] = {}
    for proto, blist in (("FF", flist), ("FP", plist)):
        splits = sorted(p.name for p in (cfp / "Protocol" / "Split" / proto).iterdir())
        assert splits == [f"{s:02d}" for s in range(1, 11)]
        for s in range(1, 11):
            folder = cfp / "Protocol" / "Split" / proto / f"{s:02d}"
            pairs = {}
            for name in ("same", "diff"):
                lines = (folder / f"{name}.txt").read_text().splitlines()
                pairs[name] = [tuple(int(v) for v in line.split(",")) for line in lines]
                assert len(set(pairs[name])) == len(pairs[name])  # no repeated pair
            assert len(pairs["same"]) == len(pairs["diff"]) > 0
            for name, expect_same in (("same", True), ("diff", False)):
                for a, b in pairs[name]:
                    ia, ib = _identity(flist[a - 1]), _identity(blist[b - 1])
                    assert (ia == ib) == expect_same
                    split_ids.setdefault(s, set()).update((ia, ib))
    # Splits are identity-disjoint.
    all_ids = [i for ids_ in split_ids.values() for i in ids_]
    assert len(all_ids) == len(set(all_ids))


def _metadata(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        assert header == IJBA_HEADER, path
        return [dict(zip(header, row, strict=True)) for row in reader]


def test_ijba_layout_and_protocols(dataset):
    ijba = dataset / "ijba"
    images = ijba / "images"
    saw_frame = saw_still = open_set = False
    for split in range(1, 11):
        folder = ijba / "IJB-A_11_sets" / f"split{split}"
        meta = _metadata(folder / f"verify_metadata_{split}.csv")
        train = _metadata(folder / f"train_{split}.csv")
        assert {r["SUBJECT_ID"] for r in meta}.isdisjoint({r["SUBJECT_ID"] for r in train})
        subject_of = {}
        for r in meta + train:
            assert (images / r["FILE"]).is_file(), r["FILE"]
            assert -90 <= float(r["FACE_YAW"]) <= 90
            assert float(r["FACE_WIDTH"]) > 0 and float(r["FACE_HEIGHT"]) > 0
            if r["FILE"].startswith("frame/"):
                media, frame = r["FILE"][len("frame/"):-len(".png")].split("_")
                assert r["FILE"].endswith(".png") and media == r["MEDIA_ID"] \
                    and frame == r["FRAME"]
                saw_frame = True
            else:
                assert r["FILE"] == f"img/{r['MEDIA_ID']}.jpg" and r["FRAME"] == ""
                saw_still = True
            subject_of.setdefault(r["TEMPLATE_ID"], r["SUBJECT_ID"])
            assert subject_of[r["TEMPLATE_ID"]] == r["SUBJECT_ID"]  # one subject per template
        lines = (folder / f"verify_comparisons_{split}.csv").read_text().splitlines()
        pairs = [line.split(",") for line in lines]
        assert all(len(p) == 2 and p[0].isdigit() for p in pairs)  # no header row
        labels = [subject_of[a] == subject_of[b] for a, b in pairs]
        assert 0 < sum(labels) < len(labels)

        folder = ijba / "IJB-A_1N_sets" / f"split{split}"
        gallery = _metadata(folder / f"search_gallery_{split}.csv")
        probe = _metadata(folder / f"search_probe_{split}.csv")
        _metadata(folder / f"train_{split}.csv")
        g_subjects = {r["SUBJECT_ID"] for r in gallery}
        p_subjects = {r["SUBJECT_ID"] for r in probe}
        assert g_subjects < p_subjects  # some probes have no mate in the gallery
        open_set = True
        assert {r["TEMPLATE_ID"] for r in gallery}.isdisjoint({r["TEMPLATE_ID"] for r in probe})
    assert saw_frame and saw_still and open_set
    frame = next((images / "frame").iterdir())
    assert _image(frame).shape == (112, 112, 3)


def test_baseline_reports_ff_and_fp(dataset):
    from bench.synth.baseline import cfp_accuracy, hog

    result = cfp_accuracy(dataset)
    assert set(result) == {"FF", "FP"}
    for proto in ("FF", "FP"):
        assert 0.0 <= result[proto]["accuracy"] <= 1.0
        same = sum(len((dataset / "cfp" / "Protocol" / "Split" / proto / f"{s:02d}" /
                        "same.txt").read_text().splitlines()) for s in range(1, 11))
        assert result[proto]["pairs"] == 2 * same
    flat = hog(np.full((2, 112, 112), 128, np.uint8))
    assert flat.shape == (2, 13 * 13 * 36) and not flat.any()
    edge = np.zeros((1, 112, 112), np.uint8)
    edge[:, :, 56:] = 255
    assert hog(edge).max() > 0
