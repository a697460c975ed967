"""CFP (Celebrities in Frontal-Profile) in its original layout, FF and FP protocols.

::

    ROOT/Data/Images/<id>/{frontal,profile}/NN.jpg
    ROOT/Data/Fiducials/<id>/{frontal,profile}/NN.txt   one "x,y" per line ("Fiducial" also)
    ROOT/Data/pose.csv                                  optional: path (relative to ROOT), yaw, pitch, roll
    ROOT/Protocol/Pair_list_F.txt, Pair_list_P.txt      "<1-based index> <path relative to Protocol/>"
    ROOT/Protocol/Split/{FF,FP}/01..10/{same,diff}.txt  "a,b": FF both index F, FP a -> F, b -> P

Templates are the images themselves, named by list and index: ``F12`` is line ``12`` of
Pair_list_F.txt, ``P3`` of Pair_list_P.txt. Folds are the official splits (split ``NN`` is
fold ``NN``). The real dataset has no yaw; a ground-truth ``Data/pose.csv`` (the synthetic
generator writes one) sets ``yaw_source`` to ``"metadata"``. The provenance ``files`` hash
every file read, the fiducials as one entry for their folder (``Data/Fiducials/``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..align.schemes import scheme_for
from ..data.comparisons_io import REPEAT_KINDS, reject_bad_pairs
from ..data.delimited import (
    LINE,
    TEXT,
    count_numbered,
    keep_rows,
    missing_image,
    parse_numbers,
    read_angle_table,
    read_lines,
    read_table,
    require_dir,
    require_file,
)
from ..data.evalset import EvalSet
from ..data.samples import (
    LISTED_AT,
    YAW_METADATA,
    YAW_UNKNOWN,
    SampleSet,
    new_comparisons,
    new_samples,
)
from ..data.skipped import SkippedRows
from ..errors import ConfigError, DataError
from ..face3d import LANDMARK_NAMES
from ..fileio import absolute, sha256_file

PROTOCOLS = ("FF", "FP")
FIDUCIAL_DIRS = ("Fiducials", "Fiducial")
#: Named point orders by count: the harness's own 22 (what the generator renders) and the
#: 30 points of the real CFP release.
LANDMARK_SCHEMES = {len(LANDMARK_NAMES): "canonical22", 30: "cfp30"}  # names of bench.align.schemes


def read(root: str | Path, *, pairs: str = "FP", folds: int | None = 10,
         skipped: SkippedRows | None = None) -> EvalSet:
    """The CFP-``pairs`` protocol: the images its pairs use and its official splits
    (``folds`` of them; None: as many as ``Protocol/Split/<pairs>/01, 02, ...`` hold)."""
    if pairs not in PROTOCOLS:
        raise ConfigError(f"CFP pairs must be one of {PROTOCOLS}, got {pairs!r}")
    skipped = skipped if skipped is not None else SkippedRows()
    root = absolute(root)
    lists = ("F",) if pairs == "FF" else ("F", "P")
    samples, files = _read_images(root, lists, skipped)
    if folds is None:
        folds = count_numbered(root / "Protocol" / "Split" / pairs, "{:02d}".format,
                               f"CFP {pairs} split")
    repeats: list[tuple[str, DataError]] = []
    comparisons, split_files = _read_splits(root, pairs, folds, samples.samples, skipped,
                                            repeats)
    files.update(split_files)
    samples.provenance.update(files=files, protocol=pairs, folds=(
        f"official splits Protocol/Split/{pairs}/01..{folds:02d}, split NN = fold NN"))
    if repeats:
        samples.provenance["repeated_pairs"] = {
            "count": len(repeats), "rule": "kept and counted as published",
            "by_kind": {k: sum(kind == k for kind, _ in repeats) for k in REPEAT_KINDS},
            "first": [str(e).split("\n")[0] for _, e in repeats[:5]]}
        samples.provenance.setdefault("notes", []).extend(_repeat_notes(repeats, pairs))
    return EvalSet(samples=samples, comparisons=comparisons)


def _repeat_notes(repeats: list[tuple[str, DataError]], pairs: str) -> list[str]:
    """One note per kind of repeat, each saying what it means for the protocol."""
    what = {
        "other order": "an earlier pair of its file in the other order"
                       + (" (as the published FF splits do, 130 times)" if pairs == "FF" else ""),
        "same order": "an earlier pair of its file in the same order",
        "other file": "a pair of another split, so the pair is in two folds (in the "
                      "training folds of the other's threshold)",
        "self": "no other pair but compares an image with itself (it scores the maximum)",
    }
    notes = []
    for kind in REPEAT_KINDS:
        mine = [e for k, e in repeats if k == kind]
        if mine:
            n = len(mine)
            notes.append(f"{n} pair{' repeats' if n == 1 else 's repeat'} {what[kind]}; kept "
                         f"and counted as listed, first: {str(mine[0]).splitlines()[0]}")
    return notes


def read_samples(root: str | Path, skipped: SkippedRows | None = None) -> SampleSet:
    """Every image of both lists (frontal and profile), e.g. as a yaw-binned split's source."""
    skipped = skipped if skipped is not None else SkippedRows()
    samples, files = _read_images(absolute(root), ("F", "P"), skipped)
    samples.provenance["files"] = files
    return samples


def _read_images(root: Path, lists: tuple[str, ...], skipped: SkippedRows
                 ) -> tuple[SampleSet, dict[str, str]]:
    require_dir(root / "Data", "CFP Data folder (Data/Images, Data/Fiducials)")
    protocol_dir = require_dir(root / "Protocol", "CFP Protocol folder (Pair_list_F.txt, Split/)")
    frames, files = [], {}
    for kind in lists:
        list_path = protocol_dir / f"Pair_list_{kind}.txt"
        frames.append(_read_pair_list(list_path, kind, skipped))
        files[_rel(list_path, root)] = sha256_file(list_path)
    images = pd.concat(frames, ignore_index=True)
    landmarks, fiducial_note, fiducials = _read_fiducials(root, images["path"], skipped)
    files.update(fiducials)
    yaw, pose_note = _read_pose(root, images["path"], skipped)
    if (root / "Data" / "pose.csv").is_file():
        files["Data/pose.csv"] = sha256_file(root / "Data" / "pose.csv")
    frame = new_samples(
        images["path"], images["subject"], template=images["template"],
        yaw=yaw[:, 0], pitch=yaw[:, 1], roll=yaw[:, 2],
        yaw_source=np.where(np.isfinite(yaw[:, 0]), YAW_METADATA, YAW_UNKNOWN),
        landmarks=landmarks, **{LISTED_AT: images[LISTED_AT]})
    counts = {len(lm) for lm in landmarks if lm is not None}
    scheme = ",".join(LANDMARK_SCHEMES.get(k, f"{k} points") for k in sorted(counts)) or None
    provenance = {"format": "cfp", "landmark_scheme": scheme,
                  "notes": [n for n in (fiducial_note, pose_note) if n]}
    return SampleSet(root=root, samples=frame, provenance=provenance), files


def _read_pair_list(path: Path, kind: str, skipped: SkippedRows) -> pd.DataFrame:
    """Rows (template, path, subject) of one ``Pair_list_X.txt``."""
    base = path.parent
    rows, seen = [], set()
    for line_no, text in read_lines(require_file(path, f"CFP image list Pair_list_{kind}.txt")):
        fields = text.split()
        if len(fields) != 2 or not fields[0].isdigit():
            skipped.reject(DataError("malformed line: expected '<index> <image path>'", path,
                                     line_no, text))
            continue
        index, rel = int(fields[0]), fields[1]
        if index in seen:
            skipped.reject(DataError(f"index {index} listed twice", path, line_no, text))
            continue
        image = Path(os.path.normpath(base / rel))
        if not image.is_file():
            skipped.reject(DataError(missing_image(image), path, line_no, text))
            continue
        seen.add(index)
        # <id>/<frontal|profile>/NN.jpg: the identity is the folder above the pose folder.
        rows.append((f"{kind}{index}", str(image), image.parent.parent.name,
                     f"{path}:{line_no}"))
    return pd.DataFrame(rows, columns=["template", "path", "subject", LISTED_AT])


def _fiducial_dir(root: Path) -> Path | None:
    for name in FIDUCIAL_DIRS:
        if (root / "Data" / name).is_dir():
            return root / "Data" / name
    return None


def _read_fiducials(root: Path, paths: pd.Series, skipped: SkippedRows
                    ) -> tuple[list[np.ndarray | None], str, dict[str, str]]:
    """(points per image or None, a note on images without a file, the folder's entry of
    the provenance ``files``). The entry is one hash for thousands of small files: the
    sha256 of their ``sha256sum`` lines (paths relative to the folder), so that the data
    hash, and with it the run id, changes when a fiducial file does, appears or goes."""
    folder = _fiducial_dir(root)
    if folder is None:
        return [None] * len(paths), "no Data/Fiducials folder: images have no landmarks", {}
    images = root / "Data" / "Images"
    out: list[np.ndarray | None] = []
    read_from: list[Path | None] = []
    listing = hashlib.sha256()
    missing = 0
    for image in paths:
        rel = Path(image).relative_to(images) if Path(image).is_relative_to(images) else None
        txt = None if rel is None else (folder / rel).with_suffix(".txt")
        if txt is None or not txt.is_file():
            missing += 1
            out.append(None)
            read_from.append(None)
            continue
        listing.update(f"{sha256_file(txt)}  {txt.relative_to(folder).as_posix()}\n".encode())
        out.append(_read_points(txt, skipped))
        read_from.append(txt)
    odd = _check_counts(out, read_from, skipped)
    notes = [f"{missing} images have no fiducial file in {folder.name}/" if missing else "",
             odd]
    return out, "; ".join(n for n in notes if n), {f"{_rel(folder, root)}/": listing.hexdigest()}


def _check_counts(points: list, paths: list, skipped: SkippedRows) -> str:
    """Fiducial files with another count of points than their view's (frontal, profile:
    compared within each folder, which may differ). Where either count is a known scheme
    (the synthetic set's 22), a line lost or added would read the file as another scheme,
    or as none, and crop that face from the points' extent in silence: it is refused
    (lenient: its image is detected). Where neither is (real CFP's 30 points of no
    documented order), the points only ever give a face box, so the file is kept and
    counted in the returned note: a real release is not refused over an undocumented
    count it may well have."""
    rows = [(i, paths[i].parent.name, len(p)) for i, p in enumerate(points) if p is not None]
    if not rows:
        return ""
    table = pd.DataFrame(rows, columns=["i", "view", "n"])
    usual = table.groupby("view")["n"].agg(lambda n: int(n.mode().min()))
    kept: dict[str, int] = {}
    for i, view, n in rows:
        if n == usual[view]:
            continue
        if scheme_for(n) is None and scheme_for(usual[view]) is None:
            kept[view] = kept.get(view, 0) + 1
            continue
        skipped.reject(DataError(f"{n} fiducial points where this dataset's {view} files "
                                 f"have {usual[view]} (a line lost or added?)", paths[i]))
        points[i] = None
    return "; ".join(f"{k} {view} fiducial files have another count than the usual "
                     f"{usual[view]}: kept (points of no known scheme give only a face box)"
                     for view, k in sorted(kept.items()))


def _read_points(path: Path, skipped: SkippedRows) -> np.ndarray | None:
    points = []
    for line_no, text in read_lines(path):
        fields = text.replace(",", " ").split()
        try:
            if len(fields) != 2:
                raise ValueError
            points.append((float(fields[0]), float(fields[1])))
        except ValueError:
            skipped.reject(DataError("malformed fiducial line: expected 'x,y'", path, line_no,
                                     text))
            return None  # a partial point set would misalign the landmark order
    return np.asarray(points, dtype=np.float32).reshape(-1, 2) if points else None


def _read_pose(root: Path, paths: pd.Series, skipped: SkippedRows) -> tuple[np.ndarray, str]:
    """(N, 3) yaw, pitch, roll from Data/pose.csv, NaN for images it does not list."""
    out = np.full((len(paths), 3), np.nan)
    pose_path = root / "Data" / "pose.csv"
    if not pose_path.is_file():
        return out, "no Data/pose.csv: yaw unknown (estimate it from the fiducials)"
    rows = read_angle_table(pose_path, "CFP pose file", skipped)
    keys = rows["path"].map(lambda p: os.path.normpath(root / p))
    twice = keys.duplicated()
    for i in np.flatnonzero(twice.to_numpy()):
        skipped.reject(DataError("image listed twice", pose_path, int(rows[LINE].iat[i]),
                                 rows[TEXT].iat[i]))
    rows, keys = rows[~twice.to_numpy()], keys[~twice.to_numpy()]
    position = pd.Series(np.arange(len(rows)), index=keys.to_numpy())
    where = paths.map(position)
    found = where.notna().to_numpy()
    idx = where[found].astype(int).to_numpy()
    for j, col in enumerate(("yaw", "pitch", "roll")):
        if col in rows:
            out[found, j] = rows[col].to_numpy(dtype=np.float64)[idx]
    note = f"{int((~found).sum())} images not in Data/pose.csv: yaw unknown" if (~found).any() \
        else ""
    return out, note


def _read_splits(root: Path, pairs: str, folds: int, samples: pd.DataFrame,
                 skipped: SkippedRows, repeats: list[DataError]
                 ) -> tuple[pd.DataFrame, dict[str, str]]:
    split_root = require_dir(root / "Protocol" / "Split" / pairs, f"CFP {pairs} split folder")
    second = "F" if pairs == "FF" else "P"
    subject = pd.Series(samples["subject"].to_numpy(), index=samples["template"].to_numpy())
    tables, files = [], {}
    for fold in range(1, folds + 1):
        for name, label in (("same.txt", 1), ("diff.txt", 0)):
            path = split_root / f"{fold:02d}" / name
            rows = read_table(path, f"CFP {pairs} split {fold:02d} {name}", required=("a", "b"),
                              header=False, skipped=skipped)
            files[_rel(path, root)] = sha256_file(path)
            ia, ok_a = parse_numbers(rows, "a", path, skipped, what="bad index",
                                     allow_empty=False, integer=True)
            ib, ok_b = parse_numbers(rows, "b", path, skipped, what="bad index",
                                     allow_empty=False, integer=True)
            rows = keep_rows(rows, ok_a & ok_b)
            ia, ib = ia[ok_a & ok_b].astype(np.int64), ib[ok_a & ok_b].astype(np.int64)
            rows = rows.assign(a=[f"F{i}" for i in ia], b=[f"{second}{i}" for i in ib],
                               label=label, fold=fold, _file=str(path))
            tables.append(rows)
    pairs_frame = pd.concat(tables, ignore_index=True)
    # Pairs index the lists by position, so an index with no image is "out of range".
    kept = []
    for path, rows in pairs_frame.groupby("_file", sort=False):
        kept.append(_check_pair_rows(Path(path), rows.reset_index(drop=True), subject, skipped))
    pairs_frame = pd.concat(kept, ignore_index=True)
    checked = reject_bad_pairs(pairs_frame, subject.index, Path(split_root), skipped, repeats)
    return new_comparisons(checked["a"], checked["b"], checked["label"],
                           checked["fold"]), files


def _check_pair_rows(path: Path, rows: pd.DataFrame, subject: pd.Series,
                     skipped: SkippedRows) -> pd.DataFrame:
    ok = np.ones(len(rows), dtype=bool)
    for side in ("a", "b"):
        unknown = ~rows[side].isin(subject.index).to_numpy()
        for i in np.flatnonzero(unknown & ok):
            skipped.reject(DataError(
                f"index out of range: {rows[side].iat[i][1:]} is not an image of "
                f"Pair_list_{rows[side].iat[i][0]}.txt", path, int(rows[LINE].iat[i]),
                rows[TEXT].iat[i]))
        ok &= ~unknown
    same = np.zeros(len(rows), dtype=bool)
    same[ok] = (rows["a"][ok].map(subject).to_numpy() == rows["b"][ok].map(subject).to_numpy())
    wrong = ok & (same != (rows["label"].to_numpy() == 1))
    for i in np.flatnonzero(wrong):
        kind = "same.txt pair of two identities" if rows["label"].iat[i] == 1 else \
            "diff.txt pair of one identity"
        skipped.reject(DataError(f"{kind} ({rows['a'].iat[i]}, {rows['b'].iat[i]})", path,
                                 int(rows[LINE].iat[i]), rows[TEXT].iat[i]))
    return keep_rows(rows, ok & ~wrong)


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
