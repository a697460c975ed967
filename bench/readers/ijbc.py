"""IJB-B and IJB-C in the layout of insightface's evaluation release (1:1 and 1:N).

::

    ROOT/loose_crop/<n>.jpg                         one loosely cropped face per file
    ROOT/meta/ijbc_face_tid_mid.txt                 "<n>.jpg <template> <media>"
    ROOT/meta/ijbc_name_5pts_score.txt              "<n>.jpg x1 y1 ... x5 y5 <faceness>"
                                                    (or ..._retina.txt: ``five_points``)
    ROOT/meta/ijbc_template_pair_label.txt          "<template a> <template b> <label>"
    ROOT/meta/ijbc_1N_gallery_G1.csv, ..._G2.csv, ijbc_1N_probe_mixed.csv   (1:N)
                                                    header; TEMPLATE_ID, SUBJECT_ID, ...

IJB-B has the same files named ``ijbb_*`` (galleries ``S1``/``S2``). The meta files have
no header and are space-separated; they run to 15.7M lines, so they are read by
:func:`bench.data.delimited.read_columns` (pandas' C parser, errors still by line).

- Five points (insightface order) come from the release's detector: they are kept as
  ``landmarks`` with ``landmark_source = "detection"``, so alignment is the plain
  similarity fit to the model's template (insightface's ``norm_crop``), and the faceness
  as ``faceness`` (for detector-score weighted pooling).
- Yaw: the release has none, so each crop's yaw is fitted to its five points by PnP against
  the harness's mean face (:func:`bench.pose.pnp.estimate_pose`), ``yaw_source =
  "landmarks"``; the fit's RMS reprojection error is kept as ``pose_rms_px`` and summarised
  in the provenance.
- Subjects: the 1:1 files name none. The 1:N files map templates to subjects where present;
  otherwise a template's subject is its connected component in the graph of genuine pairs
  (``"g<k>"``; a template in no genuine pair is its own). The provenance says which.
- 1:N: gallery G1 (S1) is split 1 and G2 (S2) split 2, each with the mixed probe set; a
  probe whose subject is absent from that gallery is non-mated (open-set search).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.comparisons_io import reject_bad_pairs
from ..data.delimited import (
    LINE,
    TEXT,
    keep_rows,
    line_text,
    missing_image,
    read_columns,
    read_table,
    require_dir,
    require_file,
)
from ..data.evalset import EvalSet
from ..data.samples import (
    LANDMARK_SOURCE,
    LISTED_AT,
    SampleSet,
    new_comparisons,
    new_samples,
)
from ..data.skipped import SkippedRows
from ..errors import ConfigError, DataError
from ..fileio import absolute, sha256_file

TASKS = ("verify", "search")
#: release prefix -> names of its two 1:N galleries
RELEASES = {"ijbc": ("G1", "G2"), "ijbb": ("S1", "S2")}
FIVE = tuple(f"{axis}{i}" for i in range(1, 6) for axis in "xy")
DETECTION = "detection"


def meta_file(root: Path, release: str, what: str) -> Path:
    return root / "meta" / f"{release}_{what}"


def detect_release(root: Path) -> str:
    found = [r for r in RELEASES if meta_file(root, r, "face_tid_mid.txt").is_file()]
    if len(found) != 1:
        names = " or ".join(str(meta_file(root, r, "face_tid_mid.txt")) for r in RELEASES)
        raise DataError(f"not an IJB-B/IJB-C release folder: expected {names}"
                        if not found else "both IJB-B and IJB-C meta files here: pass "
                        "release='ijbb' or 'ijbc'", root)
    return found[0]


def read(root: str | Path, *, task: str = "verify", release: str = "auto",
         five_points: str = "name_5pts_score", skipped: SkippedRows | None = None,
         cache_dir: str | Path | None = None) -> EvalSet:
    """The 1:1 (``task="verify"``) or 1:N (``"search"``) protocol of the release in ``root``.

    ``release``: ``ijbc``, ``ijbb`` or ``auto`` (from the meta file names).
    ``five_points``: the points file ``meta/<release>_<five_points>.txt``; some copies also
    carry ``name_5pts_score_retina`` (same columns, another detector's). The yaw fitted
    to the five points is cached under ``cache_dir`` (default ``$BENCH_CACHE``) by the five
    points file's sha256: IJB-C's 469,375 fits take minutes, a reread seconds.
    """
    if task not in TASKS:
        raise ConfigError(f"IJB-B/C task must be one of {TASKS}, got {task!r}")
    skipped = skipped if skipped is not None else SkippedRows()
    root = absolute(root)
    require_dir(root / "meta", "IJB-B/C meta folder")
    if release == "auto":
        release = detect_release(root)
    elif release not in RELEASES:
        raise ConfigError(f"release must be one of {', '.join(RELEASES)} or auto, got "
                          f"{release!r}")
    crops = require_dir(root / "loose_crop", "IJB-B/C loose_crop folder")
    tid_path = require_file(meta_file(root, release, "face_tid_mid.txt"), "face list")
    five_path = _five_points_file(root, release, five_points)
    files = {_rel(p, root): sha256_file(p) for p in (tid_path, five_path)}
    notes: list[str] = []

    faces, text = read_columns(tid_path, "face list", ("image", "template", "media"),
                               skipped=skipped)
    faces = _reject_repeated_crops(faces, tid_path, text, skipped)
    listed = set(faces["template"])
    faces = _reject_missing_images(faces, crops, tid_path, text, skipped)
    del text
    points = _read_points(five_path, skipped)

    roles = None
    if task == "verify":
        pair_path = require_file(meta_file(root, release, "template_pair_label.txt"),
                                 "template pair list")
        files[_rel(pair_path, root)] = sha256_file(pair_path)
        pairs = _read_pairs(pair_path, set(faces["template"]), skipped)
    else:
        roles, role_files = _read_search(root, release, listed, tid_path, skipped)
        files.update({_rel(p, root): sha256_file(p) for p in role_files})
        unlisted = ~faces["template"].isin(set(roles["template"])).to_numpy()
        if unlisted.any():  # no role, no subject: nothing to search with them
            first = ", ".join(pd.unique(faces.loc[unlisted, "template"])[:3])
            n = faces.loc[unlisted, "template"].nunique()
            notes.append(f"{n} template{'s' * (n != 1)} of the face list {'are' if n != 1 else 'is'}"
                         f" in no 1:N list and take{'s' * (n == 1)} no part in the search "
                         f"(first: {first})")
            faces = keep_rows(faces, ~unlisted)
    subject_of, how = _subjects(root, release, faces, pairs if task == "verify" else None,
                                roles, skipped)
    pose = _pose(points, files[_rel(five_path, root)], cache_dir)
    samples, pose_note = _samples(faces, points, pose, crops, subject_of, tid_path)
    notes.append(pose_note)
    provenance = {"format": "ijbc", "release": release, "task": task, "files": files,
                  "landmark_scheme": "five", "subjects": how,
                  "yaw": "PnP of the release's five points against the mean 3D face",
                  "folds": ("one 1:1 set (fold 1)" if task == "verify" else
                            f"gallery {RELEASES[release][0]} = split 1, "
                            f"{RELEASES[release][1]} = split 2, each with the mixed probes"),
                  "notes": notes}
    sample_set = SampleSet(root=root, samples=samples, provenance=provenance)
    if task == "verify":
        comparisons = new_comparisons(pairs["a"], pairs["b"], pairs["label"],
                                      np.ones(len(pairs), np.int64))
        return EvalSet(samples=sample_set, comparisons=comparisons)
    known = set(samples["template"])
    lost = roles[~roles["template"].isin(known)]
    if len(lost):  # every crop of theirs skipped (lenient): said, as IJB-A's reader says it
        n = lost["template"].nunique()
        g = lost.loc[lost["role"] == "gallery", "template"].nunique()
        notes.append(
            f"{n} template{'s' * (n != 1)} of the 1:N lists lost every crop and left the "
            f"search (first: {', '.join(pd.unique(lost['template'])[:3])})"
            + (f"; {g} of them gallery template{'s' * (g != 1)}, whose subjects' probes "
               "count as non-mated in that gallery" if g else ""))
    return EvalSet(samples=sample_set,
                   search=roles[roles["template"].isin(known)].reset_index(drop=True))


def _five_points_file(root: Path, release: str, name: str) -> Path:
    path = meta_file(root, release, f"{name}.txt")
    others = sorted(p.stem.removeprefix(f"{release}_") for p in
                    (root / "meta").glob(f"{release}_name_5pts_score*.txt"))
    if path.is_file() or not others:
        return require_file(path, "five points")
    found = ", ".join(f'{release}_{o}.txt (five_points = "{o}")' for o in others)
    raise DataError(f"missing five points: expected a file here; this copy has {found}: "
                    "to read it, set that option under [reader] in a protocol file that "
                    "extends this protocol", path)


def _read_points(path: Path, skipped: SkippedRows) -> pd.DataFrame:
    names = ("image", *FIVE, "faceness")
    frame, data = read_columns(path, "five points", names, skipped=skipped,
                               numbers={c: np.float64 for c in names[1:]})
    bad = ~np.isfinite(frame[list(names[1:])].to_numpy()).all(axis=1)
    for i in np.flatnonzero(bad):
        line = int(frame[LINE].iat[i])
        skipped.reject(DataError("a point or the faceness is not finite", path, line,
                                 line_text(data, line)))
    frame = frame.loc[~bad]
    xy = frame[list(FIVE)].to_numpy(np.float64).reshape(-1, 5, 2)
    flat = np.ptp(xy, axis=1).max(axis=1) < 1.0  # no face has its five points in one pixel
    for i in np.flatnonzero(flat):
        line = int(frame[LINE].iat[i])
        skipped.reject(DataError("the five points coincide (no face was found in this "
                                 "crop?)", path, line, line_text(data, line)))
    frame = frame.loc[~flat]
    twice = frame["image"].duplicated().to_numpy()
    for i in np.flatnonzero(twice):
        line = int(frame[LINE].iat[i])
        skipped.reject(DataError(f"{frame['image'].iat[i]} has five points on an earlier line",
                                 path, line, line_text(data, line)))
    return frame.loc[~twice].set_index("image")


def _read_pairs(path: Path, known: set, skipped: SkippedRows) -> pd.DataFrame:
    pairs, data = read_columns(path, "template pair list", ("a", "b", "label"),
                               skipped=skipped, numbers={"label": np.int64})

    bad = ~pairs["label"].isin((0, 1)).to_numpy()
    for i in np.flatnonzero(bad):
        line = int(pairs[LINE].iat[i])
        skipped.reject(DataError(f"label {pairs['label'].iat[i]} is not 0 or 1", path, line,
                                 line_text(data, line)))
    if bad.any():  # a copy of millions of rows only when there is something to drop
        pairs = keep_rows(pairs, ~bad)
    return reject_bad_pairs(pairs, known, path, skipped,
                            line_text=lambda line: line_text(data, line))


def _read_search(root: Path, release: str, known: set, face_list: Path,
                 skipped: SkippedRows) -> tuple[pd.DataFrame, list[Path]]:
    """(template, subject, role, fold) rows of both galleries and the mixed probes;
    ``known``: the templates of ``face_list``."""
    paths, out = [], []
    probe_path = require_file(meta_file(root, release, "1N_probe_mixed.csv"), "1:N probe list")
    probes = _template_subjects(probe_path, skipped, known, face_list)
    paths.append(probe_path)
    for fold, gallery in enumerate(RELEASES[release], 1):
        path = require_file(meta_file(root, release, f"1N_gallery_{gallery}.csv"),
                            f"1:N gallery {gallery}")
        paths.append(path)
        g = _template_subjects(path, skipped, known, face_list)
        out.append(g.assign(role="gallery", fold=fold))
        out.append(probes[~probes["template"].isin(set(g["template"]))]
                   .assign(role="probe", fold=fold))
    return pd.concat(out, ignore_index=True), paths


def _template_subjects(path: Path, skipped: SkippedRows, known: set | None = None,
                       face_list: Path | None = None) -> pd.DataFrame:
    """One row per template of a 1:N list (which lists a row per image). With ``known``,
    a template that has no crop in ``face_list`` is rejected at its line: searching
    without it would change the gallery or the probe set in silence."""
    rows = read_table(path, "1:N template list", required=("TEMPLATE_ID", "SUBJECT_ID"),
                      skipped=skipped)
    if known is not None:
        unknown = ~rows["TEMPLATE_ID"].isin(known).to_numpy()
        for i in np.flatnonzero(unknown):
            skipped.reject(DataError(f"template {rows['TEMPLATE_ID'].iat[i]} has no crop in "
                                     f"{face_list}", path, int(rows[LINE].iat[i]),
                                     rows[TEXT].iat[i]))
        rows = keep_rows(rows, ~unknown)
    first = rows.groupby("TEMPLATE_ID", sort=False)["SUBJECT_ID"].transform("first")
    conflict = (rows["SUBJECT_ID"] != first).to_numpy()
    for i in np.flatnonzero(conflict):
        skipped.reject(DataError(f"template {rows['TEMPLATE_ID'].iat[i]} has subject "
                                 f"{rows['SUBJECT_ID'].iat[i]} here but {first.iat[i]} on an "
                                 "earlier line", path, int(rows[LINE].iat[i]), rows[TEXT].iat[i]))
    rows = rows.loc[~conflict].drop_duplicates("TEMPLATE_ID")
    return pd.DataFrame({"template": rows["TEMPLATE_ID"].astype(str).to_numpy(),
                         "subject": rows["SUBJECT_ID"].astype(str).to_numpy()})


def _subjects(root: Path, release: str, faces: pd.DataFrame, pairs: pd.DataFrame | None,
              roles: pd.DataFrame | None, skipped: SkippedRows) -> tuple[pd.Series, str]:
    """Template -> subject, and how it was found."""
    templates = pd.Index(pd.unique(faces["template"]))
    listed = roles
    if listed is None:
        lists = [meta_file(root, release, f"1N_{n}.csv") for n in
                 ("probe_mixed", *(f"gallery_{g}" for g in RELEASES[release]))]
        if all(p.is_file() for p in lists):
            listed = pd.concat([_template_subjects(p, skipped) for p in lists],
                               ignore_index=True)
    if listed is not None:
        subject = listed.drop_duplicates("template").set_index("template")["subject"]
        covered = templates.isin(subject.index)
        if covered.all():
            return subject.reindex(templates), "SUBJECT_ID of the 1:N lists"
        if pairs is not None:  # said where a run prints it, not in the provenance alone
            n = int((~covered).sum())
            warnings.warn(f"the 1:N lists of {root} name no subject for {n} template"
                          f"{'s' * (n != 1)} of the 1:1 pairs (first: "
                          f"{', '.join(templates[~covered][:3])}): every template's subject "
                          "is its genuine-pair component instead", stacklevel=3)
    if pairs is None:  # pragma: no cover - search keeps the templates its lists name
        raise DataError("no subject for some templates", root)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    code = pd.Series(np.arange(len(templates)), index=templates)
    gen = pairs[pairs["label"] == 1]
    ia, ib = code[gen["a"]].to_numpy(), code[gen["b"]].to_numpy()
    graph = coo_matrix((np.ones(ia.size), (ia, ib)), shape=(len(templates),) * 2)
    _, comp = connected_components(graph, directed=False)
    return (pd.Series([f"g{c}" for c in comp], index=templates),
            "connected components of the genuine template pairs (the 1:1 files name no "
            "subject and the 1:N lists are absent or incomplete)")


def _reject_repeated_crops(faces: pd.DataFrame, path: Path, data: bytes,
                           skipped: SkippedRows) -> pd.DataFrame:
    """Every loose crop is one face of one template: a crop listed again (a repeated line
    of a concatenated or resumed download, or one crop in two templates) would count twice
    in its media's average, and the image count cannot tell."""
    again = faces["image"].duplicated().to_numpy()
    if not again.any():
        return faces
    first = faces.groupby("image", sort=False)[LINE].transform("first").to_numpy()
    for i in np.flatnonzero(again):
        line = int(faces[LINE].iat[i])
        skipped.reject(DataError(f"{faces['image'].iat[i]} is listed on line {first[i]} "
                                 "already", path, line, line_text(data, line)))
    return keep_rows(faces, ~again)


def _reject_missing_images(faces: pd.DataFrame, crops: Path, path: Path, data: bytes,
                           skipped: SkippedRows) -> pd.DataFrame:
    """``data``: the face list's text as read (gunzipped), to quote its lines."""
    present = set(os.listdir(crops))
    missing = ~faces["image"].isin(present).to_numpy()
    if missing.any():
        for i in np.flatnonzero(missing):
            line = int(faces[LINE].iat[i])
            skipped.reject(DataError(missing_image(crops / faces["image"].iat[i]),
                                     path, line, line_text(data, line)))
    return faces.loc[~missing].reset_index(drop=True)


#: Bumped when the pose fit changes, so cached poses are fitted again.
POSE_VERSION = "1"


def _pose(points: pd.DataFrame, sha: str, cache_dir) -> pd.DataFrame:
    """Yaw and RMS reprojection error per image of the five points file (cached)."""
    from .. import integrity
    from ..data.cache import reader_cache
    from ..pose.pnp import estimate_pose

    path = reader_cache(cache_dir) / "ijbc-pose" / f"{sha[:32]}-v{POSE_VERSION}-{len(points)}.npy"
    fit = integrity.load_array(path, rows=len(points))
    if fit is None:
        xy = points[list(FIVE)].to_numpy(np.float64).reshape(-1, 5, 2)
        pose = estimate_pose(xy)
        fit = np.stack([pose.yaw, pose.rms_px], 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        integrity.save_array(path, fit, meta={"five_points_sha256": sha})
    return pd.DataFrame({"yaw": fit[:, 0], "rms": fit[:, 1]}, index=points.index)


def _samples(faces: pd.DataFrame, points: pd.DataFrame, pose: pd.DataFrame, crops: Path,
             subject_of: pd.Series, face_list: Path) -> tuple[pd.DataFrame, str]:
    from ..pose.sources import LANDMARKS

    five = points.reindex(faces["image"])
    has = five["faceness"].notna().to_numpy()
    xy = five[list(FIVE)].to_numpy(np.float64).reshape(-1, 5, 2)
    fit = pose.reindex(faces["image"])
    yaw, rms = fit["yaw"].to_numpy(), fit["rms"].to_numpy()
    landmarks = [p.astype(np.float32) if ok else None for p, ok in zip(xy, has, strict=True)]
    samples = new_samples(
        [str(crops / f) for f in faces["image"]], subject_of.reindex(faces["template"]),
        template=faces["template"], media=faces["media"], yaw=yaw,
        yaw_source=np.where(np.isfinite(yaw), LANDMARKS, "none"), landmarks=landmarks,
        faceness=five["faceness"].to_numpy(), pose_rms_px=rms,
        **{LANDMARK_SOURCE: np.where(has, DETECTION, ""),
           LISTED_AT: f"{face_list}:" + faces[LINE].astype(str).to_numpy(dtype=object)})
    fitted = np.isfinite(rms)
    note = (f"yaw fitted to the five points of {int(fitted.sum())} of {len(faces)} crops "
            f"(median RMS reprojection error {np.median(rms[fitted]) if fitted.any() else 0:.2f}"
            f" px); {int((~has).sum())} crops have no five points (the detection stage finds "
            "them; with no faceness they weigh 1 in faceness-weighted pooling)")
    return samples, note


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
