"""IJB-B/C in insightface's release layout: the reader, bad input, and agreement of the
harness's 1:1 pipeline with an independent re-implementation of insightface's IJB script."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.data.skipped import SkippedRows
from bench.errors import DataError
from bench.metrics import roc_summary
from bench.protocols import load_protocol
from bench.readers.ijbc import read
from bench.runner.pooling import PoolingConfig, pool_templates, template_table
from bench.runner.scoring import score_comparisons


@pytest.fixture
def ijbc(tiny_synth, tmp_path) -> Path:
    """A private copy of the tiny synthetic IJBC folder, free to damage."""
    root = tmp_path / "IJBC"
    shutil.copytree(tiny_synth / "IJBC", root)
    return root


def _meta(root: Path, name: str) -> Path:
    return root / "meta" / f"ijbc_{name}"


def test_reads_the_release_layout_with_counts_points_yaw_and_subjects(tiny_synth):
    es = read(tiny_synth / "IJBC")
    counts = json.loads((tiny_synth / "synth.json").read_text())["counts"]["ijbc"]
    s = es.samples.samples
    assert len(s) == counts["images"] and s["template"].nunique() == counts["templates"]
    assert len(es.comparisons) == counts["pairs"]
    assert int(es.comparisons["label"].sum()) == counts["genuine"]
    assert (s["landmark_source"] == "detection").all()
    assert all(p.shape == (5, 2) for p in s["landmarks"])
    assert s["yaw"].notna().all() and (s["yaw_source"] == "landmarks").all()
    assert s["faceness"].between(0, 1).all()
    assert es.samples.provenance["subjects"] == "SUBJECT_ID of the 1:N lists"
    # a template is one subject; genuine pairs share it
    per_t = s.groupby("template")["subject"].nunique()
    assert (per_t == 1).all()
    subj = s.groupby("template")["subject"].first()
    c = es.comparisons
    assert ((subj[c["a"]].to_numpy() == subj[c["b"]].to_numpy()) == c["label"].astype(bool)).all()


def test_yaw_from_five_points_follows_the_rendered_pose(tiny_synth):
    from conftest import TINY_SYNTH

    from bench.synth import ijba, preset

    records = ijba.plan(preset("small", **TINY_SYNTH)).records
    s = read(tiny_synth / "IJBC").samples.samples
    n = s["path"].str.extract(r"(\d+)\.jpg$")[0].astype(int).to_numpy()
    true = np.array([records[k - 1].pose.yaw for k in n])
    assert np.all(np.sign(true) == np.sign(s["yaw"])) or np.abs(true).min() < 2
    assert np.median(np.abs(true - s["yaw"])) < 5.0


def test_search_pairs_each_gallery_with_the_mixed_probes(tiny_synth):
    es = read(tiny_synth / "IJBC", task="search")
    assert es.folds == [1, 2]
    for fold in (1, 2):
        gallery, probes = es.gallery(fold), es.probes(fold)
        assert not set(gallery["template"]) & set(probes["template"])
        mated = probes["subject"].isin(set(gallery["subject"]))
        assert mated.any() and (~mated).any()  # open set


def test_without_1n_lists_subjects_are_genuine_pair_components(ijbc):
    for p in (ijbc / "meta").glob("*_1N_*.csv"):
        p.unlink()
    es = read(ijbc)
    assert es.samples.provenance["subjects"].startswith("connected components")
    s = es.samples.samples
    subj = s.groupby("template")["subject"].first()
    c = es.comparisons
    same = subj[c["a"]].to_numpy() == subj[c["b"]].to_numpy()
    assert (same == c["label"].astype(bool)).all()


def test_ijbb_names_and_galleries_are_found(ijbc, tmp_path):
    root = tmp_path / "IJBB"
    shutil.copytree(ijbc, root)
    for p in (root / "meta").iterdir():
        name = p.name.replace("ijbc_", "ijbb_").replace("_G1", "_S1").replace("_G2", "_S2")
        p.rename(p.with_name(name))
    es = read(root, task="search")
    assert es.samples.provenance["release"] == "ijbb" and es.folds == [1, 2]


@pytest.mark.parametrize("file,change,message", [
    ("face_tid_mid.txt", lambda t: t.replace("\n", " extra\n", 1), "expected 3 fields"),
    ("template_pair_label.txt", lambda t: t.replace(" 1\n", " x\n", 1), "is not a number"),
    ("template_pair_label.txt", lambda t: t.replace(" 1\n", " 2\n", 1), "is not 0 or 1"),
    ("template_pair_label.txt", lambda t: "99999 1 0\n" + t, "unknown template id '99999'"),
    # bug: a repeated line counted its crop twice in its media's average, in silence
    ("face_tid_mid.txt", lambda t: t + t.splitlines(keepends=True)[0], "is listed on line 1"),
    ("face_tid_mid.txt", lambda t: t + t.split(" ")[0] + " 2 9\n", "is listed on line 1"),
    ("name_5pts_score.txt", lambda t: t.replace(t.split(" ")[1], "inf", 1), "not finite"),
    # bug: a line of coincident points failed the whole read ("image sizes must be positive")
    ("name_5pts_score.txt", lambda t: " ".join([t.split(" ")[0]] + ["0"] * 10 + ["0.5\n"])
     + t.split("\n", 1)[1], "the five points coincide"),
])
def test_bad_lines_are_named_by_file_and_line(ijbc, file, change, message):
    path = _meta(ijbc, file)
    path.write_text(change(path.read_text()))
    with pytest.raises(DataError, match=message) as err:
        read(ijbc)
    assert str(err.value).startswith(f"{path}:")
    skipped = SkippedRows(lenient=True)
    read(ijbc, skipped=skipped)  # lenient: the line is skipped and listed
    assert len(skipped) == 1 and skipped.errors[0].path == str(path)


def test_a_missing_crop_is_named_with_its_face_list_line(ijbc):
    (ijbc / "loose_crop" / "3.jpg").unlink()
    with pytest.raises(DataError, match="missing image") as err:
        read(ijbc)
    line = next(i for i, t in enumerate(_meta(ijbc, "face_tid_mid.txt").read_text()
                                        .splitlines(), 1) if t.startswith("3.jpg "))
    assert f"face_tid_mid.txt:{line}:" in str(err.value)


def test_a_missing_crop_of_a_gzipped_face_list_is_named_too(ijbc):
    """Bug: the face list's line was quoted from its compressed bytes: IndexError."""
    import gzip

    tid = _meta(ijbc, "face_tid_mid.txt")
    text = tid.read_text()
    tid.write_bytes(gzip.compress(text.encode()))
    (ijbc / "loose_crop" / "3.jpg").unlink()
    with pytest.raises(DataError, match="missing image") as err:
        read(ijbc)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("3.jpg "))
    assert f"face_tid_mid.txt:{line}:" in str(err.value)
    assert err.value.text.startswith("3.jpg ")


def test_not_a_release_folder_says_what_it_expected(tmp_path):
    (tmp_path / "meta").mkdir()
    (tmp_path / "loose_crop").mkdir()
    with pytest.raises(DataError, match="ijbc_face_tid_mid.txt"):
        read(tmp_path)


# -- agreement with insightface's IJB 1:1 computation --------------------------------------

def _insightface_templates(feats, templates, medias, faceness):
    """Test-local re-implementation of insightface's IJB 1:1 in its default test mode
    N1D1F1 (eval_ijbc.py: use_norm_score, use_detector_score, use_flip_test True): image
    features kept unnormalised times the detector score, mean per media, sum per template,
    L2-normalise; loops as the script has them."""
    x = feats * faceness[:, None]
    out = {}
    for t in np.unique(templates):
        ind_t = templates == t
        f_t, m_t = x[ind_t], medias[ind_t]
        media_feats = [f_t[m_t == m].mean(axis=0) for m in np.unique(m_t)]
        v = np.sum(media_feats, axis=0)
        out[t] = v / np.linalg.norm(v)
    return out


def _nearest_rule_tar(fpr, tpr, far):
    """insightface's rule: the TPR at the ROC point whose FPR is nearest the target."""
    return tpr[np.argmin(np.abs(fpr - far))]


def test_one_to_one_matches_an_independent_insightface_reimplementation(tiny_synth):
    """Bug: the shipped IJB-B/C pooling L2-normalised each image (insightface's N0D1F1)
    while insightface's IJB script defaults to N1D1F1, keeping the image norms."""
    from sklearn.metrics import roc_curve

    es = read(tiny_synth / "IJBC")
    s = es.samples.samples
    rng = np.random.default_rng(0)
    # features with a subject signal so the ROC is not degenerate
    centres = {sub: rng.normal(size=32) for sub in s["subject"].unique()}
    # norms that vary by image, as a real model's do (insightface's default keeps them)
    feats = np.stack([centres[sub] + 0.8 * rng.normal(size=32) for sub in s["subject"]])
    feats *= rng.uniform(0.3, 3.0, size=(len(feats), 1))
    pooling = PoolingConfig.of(load_protocol("ijbc-verify").pooling)
    ids, pooled = pool_templates(feats, s, pooling)
    scores = score_comparisons(es.comparisons, ids, pooled, template_table(s))

    ref = _insightface_templates(feats, s["template"].to_numpy(), s["media"].to_numpy(),
                                 s["faceness"].to_numpy())
    c = es.comparisons
    ref_scores = np.array([ref[a] @ ref[b] for a, b in zip(c["a"], c["b"], strict=True)])
    np.testing.assert_allclose(scores["score"], ref_scores, atol=1e-6)

    fars = (1e-1, 5e-2)
    ours = roc_summary(scores["score"].to_numpy(), c["label"].to_numpy(), fars)
    fpr, tpr, _ = roc_curve(c["label"], ref_scores)
    for far, tar in zip(fars, ours["tar_at_far"], strict=True):
        # ours: the largest TPR with FPR <= FAR on the exact ROC
        assert tar == pytest.approx(tpr[fpr <= far + 1e-12].max(), abs=1e-6)
        # insightface's nearest-point rule can only differ by taking a point above the FAR
        near = _nearest_rule_tar(fpr, tpr, far)
        assert near >= tar - 1e-12 or fpr[np.argmin(np.abs(fpr - far))] <= far


def test_run_end_to_end_on_the_synthetic_ijbc(tiny_synth, tmp_path_factory):
    from test_runner_e2e import TINY_TRAIN

    from bench.runner.result_schema import validate_result
    from bench.runner.run import RunConfig, run_benchmark

    cache = tmp_path_factory.getbasetemp() / "runner-cache"  # shared with test_runner_e2e
    out = tmp_path_factory.mktemp("ijbc-results")
    for protocol in ("ijbc-verify", "ijbc-search"):
        cfg = RunConfig(protocol=protocol, model="resnet18", mode="naive",
                        data=str(tiny_synth), device="cpu", out=str(out), n_boot=20,
                        train_changes=TINY_TRAIN, cache_dir=str(cache), batch_size=16)
        outcome = run_benchmark(cfg, echo=lambda s: None)
        result = json.loads((outcome.run_dir / "result.json").read_text())
        assert validate_result(result) == []
        assert result["main_score"]["value"] is not None
        assert result["pooling"]["faceness_weight"] is True
        if protocol == "ijbc-verify":
            assert result["main_score"]["name"] == "tar@far=0.0001"  # canonical spelling
            assert result["metrics"]["by_yaw"]["bins"]
            scores = pd.read_csv(outcome.run_dir / result["files"]["scores"])
            assert scores["yaw_a"].notna().all()
        else:
            assert result["identification"]["summary"]["rank1"]["mean"] is not None
    board = pd.read_csv(out / "leaderboard.csv")
    assert {"ijbc-verify", "ijbc-search"} <= set(board["protocol"])


def test_pose_fits_are_cached_by_the_five_points_file(ijbc, tmp_path, monkeypatch):
    first = read(ijbc, cache_dir=tmp_path / "cache").samples.samples

    def refit(*args, **kwargs):
        raise AssertionError("the cached pose was fitted again")

    monkeypatch.setattr("bench.pose.pnp.estimate_pose", refit)
    again = read(ijbc, cache_dir=tmp_path / "cache").samples.samples
    np.testing.assert_array_equal(first["yaw"], again["yaw"])
    five = _meta(ijbc, "name_5pts_score.txt")
    five.write_text(five.read_text())  # rewritten with the same bytes: still cached
    read(ijbc, cache_dir=tmp_path / "cache")
    monkeypatch.undo()
    lines = five.read_text().splitlines()
    five.write_text("\n".join(lines[1:] + lines[:1]) + "\n")  # other bytes: fitted anew
    moved = read(ijbc, cache_dir=tmp_path / "cache").samples.samples
    np.testing.assert_allclose(moved.sort_values("path")["yaw"],
                               first.sort_values("path")["yaw"], atol=1e-9)


def test_duplicate_pairs_compare_ids_as_text_in_either_order():
    from bench.data.samples import duplicate_pairs

    a = np.array([1, "2", "1", 3, "x", 2], dtype=object)
    b = np.array(["2", 1, 2, "x", 3, "1"], dtype=object)
    np.testing.assert_array_equal(duplicate_pairs(a, b), [False, True, True, False, True, True])


def test_a_crop_without_five_points_weighs_one_not_nan(ijbc):
    """Bug: a crop with no line in the five points file had faceness NaN, and the
    faceness-weighted pooling made its whole template NaN: every pair of that template
    scored NaN and the run died in the metrics, after the whole extraction."""
    five = _meta(ijbc, "name_5pts_score.txt")
    lines = five.read_text().splitlines(keepends=True)
    crop = lines[0].split()[0]
    five.write_text("".join(lines[1:]))
    es = read(ijbc)
    s = es.samples.samples
    assert np.isnan(s.loc[s["path"].str.endswith("/" + crop), "faceness"]).all()
    assert any("weigh 1" in n for n in es.samples.provenance["notes"])
    feats = np.random.default_rng(0).normal(size=(len(s), 8))
    ids, pooled = pool_templates(feats, s, PoolingConfig.of(load_protocol("ijbc-verify").pooling))
    assert np.isfinite(pooled).all()
    scores = score_comparisons(es.comparisons, ids, pooled, template_table(s))
    assert np.isfinite(scores["score"]).all()


def test_a_gallery_template_that_lost_every_crop_is_said_to_leave_the_search(ijbc):
    """Bug (lenient): a gallery template whose crops were all missing left the gallery in
    silence, and its subject's probes became non-mated searches without a word."""
    gallery = pd.read_csv(_meta(ijbc, "1N_gallery_G1.csv"), dtype=str)
    template = gallery["TEMPLATE_ID"].iat[0]
    faces = pd.read_csv(_meta(ijbc, "face_tid_mid.txt"), sep=" ", header=None, dtype=str)
    for crop in faces.loc[faces[1] == template, 0]:
        (ijbc / "loose_crop" / crop).unlink()
    skipped = SkippedRows(lenient=True)
    es = read(ijbc, task="search", skipped=skipped)
    assert template not in set(es.search["template"])
    (note,) = [n for n in es.samples.provenance["notes"] if "lost every crop" in n]
    assert note.startswith("1 template of the 1:N lists lost every crop") and template in note
    assert "1 of them gallery template, whose" in note and "non-mated" in note


def test_a_template_no_1n_list_names(ijbc):
    """Bug: for search, a face-list template named by no 1:N list failed the read with
    'no subject for some templates' (naming none); for verify, it switched every
    template's subject to genuine-pair components with a word in the provenance alone."""
    probes_path = _meta(ijbc, "1N_probe_mixed.csv")
    probes = pd.read_csv(probes_path, dtype=str)
    template = probes["TEMPLATE_ID"].iat[0]
    probes[probes["TEMPLATE_ID"] != template].to_csv(probes_path, index=False)
    es = read(ijbc, task="search")
    assert template not in set(es.samples.samples["template"])
    (note,) = [n for n in es.samples.provenance["notes"] if "in no 1:N list" in n]
    assert note.startswith("1 template of the face list is in no 1:N list") and template in note
    with pytest.warns(UserWarning, match=f"name no subject for 1 template of .*first: {template}"):
        verify = read(ijbc)
    assert verify.samples.provenance["subjects"].startswith("connected components")
