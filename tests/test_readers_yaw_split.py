"""Yaw-binned split builder: identity-disjoint folds, balanced cells, seeded, shareable."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from test_readers_fixtures import write_cfp, write_manifest

from bench.data import new_samples
from bench.data.comparisons_io import sidecar
from bench.errors import DataError
from bench.readers import yaw_split
from bench.yawbins import yaw_bin


def _samples(subjects=40, per_subject=8, seed=0):
    rng = np.random.default_rng(seed)
    subject = np.repeat([f"id{i:03d}" for i in range(subjects)], per_subject)
    yaw = rng.uniform(-90, 90, subject.size)
    yaw[::17] = np.nan
    return new_samples([f"/x/{i}.jpg" for i in range(subject.size)], subject, yaw=yaw,
                       template=[f"t{i}" for i in range(subject.size)])


def test_folds_are_identity_disjoint_and_cells_balanced():
    samples = _samples()
    comp, notes = yaw_split.build_split(samples, folds=4, pairs_per_cell=3, seed=1)
    info = samples.set_index("template")
    subj_a, subj_b = comp["a"].map(info["subject"]), comp["b"].map(info["subject"])
    assert (comp["label"] == (subj_a == subj_b).astype(int)).all()
    fold_of = pd.concat([pd.Series(comp["fold"].to_numpy(), index=subj_a),
                         pd.Series(comp["fold"].to_numpy(), index=subj_b)])
    assert fold_of.groupby(level=0).nunique().max() == 1  # every identity in one fold only
    bin_a = yaw_bin(comp["a"].map(info["yaw"]))
    bin_b = yaw_bin(comp["b"].map(info["yaw"]))
    assert (bin_a >= 0).all() and (bin_b >= bin_a).all()  # side a holds the lower bin
    cells = comp.assign(lo=bin_a, hi=bin_b).groupby(["fold", "lo", "hi"])["label"]
    assert (cells.sum() * 2 == cells.size()).all()  # as many genuine as impostor
    assert cells.size().max() == 6
    lo_hi = comp.assign(lo=np.minimum(comp.a, comp.b), hi=np.maximum(comp.a, comp.b))
    assert not lo_hi.duplicated(["lo", "hi"]).any()
    assert any("unknown yaw left out" in n for n in notes)


def test_seeded_and_deterministic():
    samples = _samples()
    one, _ = yaw_split.build_split(samples, folds=4, pairs_per_cell=3, seed=5)
    two, _ = yaw_split.build_split(samples, folds=4, pairs_per_cell=3, seed=5)
    three, _ = yaw_split.build_split(samples, folds=4, pairs_per_cell=3, seed=6)
    assert one.equals(two) and not one.equals(three)


def test_short_cells_shrink_both_labels_and_say_so():
    # 2 images per identity: at most one genuine pair each, so cells run short.
    samples = _samples(subjects=8, per_subject=2)
    comp, notes = yaw_split.build_split(samples, folds=2, pairs_per_cell=50, seed=0)
    assert comp["label"].sum() * 2 == len(comp)
    assert any("fewer than 50 candidates" in n for n in notes)


def test_too_few_identities():
    # a small set of one's own photos: say how to run it (the protocol's folds are fixed)
    with pytest.raises(DataError, match=r"too few for 10 folds .*name = \"mine\".*"
                                        r"extends = \"yaw-bins\".*\[folds\] count = 2"):
        yaw_split.build_split(_samples(subjects=5), folds=10)


def test_read_writes_split_with_hash_and_reuses_it(tmp_path):
    path = write_manifest(tmp_path / "d", subjects=12, per_subject=4)
    ev = yaw_split.read(path, folds=3, pairs_per_cell=2, cache_dir=tmp_path / "cache")
    prov = ev.samples.provenance
    split = tmp_path / "cache" / "splits"
    (written,) = split.glob("*.csv")
    assert prov["split_file"] == str(written)
    assert prov["split_sha256"] == hashlib.sha256(written.read_bytes()).hexdigest()
    assert sidecar(written).read_text().split()[0] == prov["split_sha256"]
    assert pd.read_csv(written, dtype={"a": str, "b": str}).equals(ev.comparisons)
    again = yaw_split.read(path, folds=3, pairs_per_cell=2, cache_dir=tmp_path / "cache")
    assert again.comparisons.equals(ev.comparisons) and "built earlier" in \
        again.samples.provenance["folds"]
    # a shared split file is read instead of built
    shared = tmp_path / "d" / "shared.csv"
    shared.write_bytes(written.read_bytes())
    given = yaw_split.read(path, folds=3, split_file="shared.csv", cache_dir=tmp_path / "other")
    assert given.comparisons.equals(ev.comparisons) and not (tmp_path / "other").exists()


def test_cfp_source_is_detected(tmp_path):
    root = tmp_path / "cfp"
    write_cfp(root, subjects=8, folds=2)
    ev = yaw_split.read(root, folds=2, pairs_per_cell=2, cache_dir=tmp_path / "c")
    assert set(ev.comparisons["a"]) | set(ev.comparisons["b"]) <= set(
        ev.samples.samples["template"])
    assert ev.samples.provenance["format"] == "cfp"


def test_templates_are_refused(tmp_path):
    path = write_manifest(tmp_path, subjects=4, per_subject=2)
    text = path.read_text().splitlines()
    text[0] += ",template"
    text[1:] = [line + ",same" for line in text[1:]]
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match="groups images into templates"):
        yaw_split.read(path, folds=2, cache_dir=tmp_path / "c")


def test_yaw_file_sets_yaw_of_a_dataset_without_it(tmp_path):
    root = tmp_path / "cfp"
    write_cfp(root, subjects=8, folds=2, pose=False)
    with pytest.raises(DataError, match="0 identities with a known yaw.*bench yaw DATA "
                       "--out yaw.csv`, then pass --yaw-file yaw.csv"):
        yaw_split.read(root, folds=2, cache_dir=tmp_path / "c")
    images = sorted((root / "Data/Images").glob("*/*/*.jpg"))
    lines = ["path,yaw,pitch,roll,source"]
    lines += [f"{p},{75.0 if 'profile' in str(p) else 5.0},0,0,landmarks" for p in images]
    (root / "yaw.csv").write_text("\n".join(lines) + "\n")
    ev = yaw_split.read(root, folds=2, pairs_per_cell=2, yaw_file="yaw.csv",
                        cache_dir=tmp_path / "c")
    s = ev.samples.samples
    assert (s["yaw_source"] == "landmarks").all() and set(s["yaw"]) == {5.0, 75.0}
    assert "yaw.csv" in ev.samples.provenance["files"]
    assert ev.comparisons["label"].sum() * 2 == len(ev.comparisons) > 0


def test_a_fold_left_without_genuine_pairs_is_an_error_not_a_silent_n_a():
    """Bug: a yaw file covering only some photos left identities with one image of known
    yaw; a fold drew no genuine pair, the run had one usable fold and reported accuracy
    'n/a' with exit 0. The split must refuse, saying what is missing."""
    subject = np.repeat(["a", "b", "c", "d", "e"], 2)
    yaw = np.array([5, 40, 10, np.nan, 15, np.nan, 20, np.nan, 25, np.nan], float)
    samples = new_samples([f"/x/{i}.jpg" for i in range(10)], subject, yaw=yaw,
                          template=[f"t{i}" for i in range(10)])
    with pytest.raises(DataError, match=r"fold \d has no genuine pair.*identities with two "
                                        r"or more images of known yaw.*bench yaw"):
        yaw_split.build_split(samples, folds=2, pairs_per_cell=2, seed=0)


def test_too_few_identities_for_two_folds_asks_for_yaw_not_fewer_folds():
    """Bug: three identities with a known yaw were told to run with '[folds] count = 2',
    the count already in use (two folds is the least there is)."""
    with pytest.raises(DataError, match="too few for 2 folds") as err:
        yaw_split.build_split(_samples(subjects=3), folds=2)
    assert "count = 2" not in str(err.value) and "bench yaw" in str(err.value)
