"""IJB-A (NIST) 1:1 verification (``IJB-A_11_sets``) and 1:N search (``IJB-A_1N_sets``).

::

    ROOT/IJB-A_11_sets/splitK/verify_metadata_K.csv     header row, 25 (or the older 16) columns
    ROOT/IJB-A_11_sets/splitK/verify_comparisons_K.csv  NO header: enroll_tid,verify_tid
    ROOT/IJB-A_1N_sets/splitK/search_gallery_K.csv, search_probe_K.csv   metadata columns
    ROOT/images/img/N.jpg, ROOT/images/frame/<media>_<frame>.png         FILE is relative to images/

Metadata is read by header name. Template ids are namespaced by split (``"3:1234"`` is
template 1234 of split 3) because each split is its own protocol; the same image then
appears once per split that uses it, and :func:`bench.data.samples.unique_images` lets the
runner extract it once. A pair is genuine iff both templates have the same SUBJECT_ID.
Media ids, frames and sightings are kept for template pooling; FACE_YAW (when present)
is the yaw; the face box and the eye and nose points (scheme ``ijba3``: right eye, left
eye, nose base) are kept as ``box`` and ``landmarks``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..data.comparisons_io import reject_bad_pairs
from ..data.delimited import (
    LINE,
    TEXT,
    count_numbered,
    keep_rows,
    missing_image,
    parse_angles,
    parse_numbers,
    read_table,
    require_dir,
)
from ..data.evalset import EvalSet
from ..data.samples import LISTED_AT, SampleSet, new_comparisons, new_samples
from ..data.skipped import SkippedRows
from ..errors import ConfigError, DataError
from ..fileio import absolute, sha256_file

TASKS = ("verify", "search")
REQUIRED = ("TEMPLATE_ID", "SUBJECT_ID", "FILE", "MEDIA_ID")
BOX = ("FACE_X", "FACE_Y", "FACE_WIDTH", "FACE_HEIGHT")
POINTS = ("RIGHT_EYE_X", "RIGHT_EYE_Y", "LEFT_EYE_X", "LEFT_EYE_Y", "NOSE_BASE_X",
          "NOSE_BASE_Y")
OPTIONAL = ("SIGHTING_ID", "FRAME", *BOX, *POINTS, "FACE_YAW")
LANDMARK_SCHEME = "ijba3"


def read(root: str | Path, *, task: str = "verify", folds: int | None = 10, images: str = "auto",
         skipped: SkippedRows | None = None) -> EvalSet:
    """All ``folds`` splits of the 1:1 (``task="verify"``) or 1:N (``"search"``) protocol.

    ``folds`` None: as many splits as ``split1, split2, ...`` hold.
    ``images``: the folder FILE paths are relative to, under ``root``; ``auto`` takes
    ``images/`` when present, else ``root`` itself (copies that keep img/ and frame/ there).
    """
    if task not in TASKS:
        raise ConfigError(f"IJB-A task must be one of {TASKS}, got {task!r}")
    skipped = skipped if skipped is not None else SkippedRows()
    root = absolute(root)
    if images == "auto":
        images = "images" if (root / "images").is_dir() or not (root / "img").is_dir() else "."
    image_dir = require_dir(absolute(root / images) if images != "." else root,
                            "IJB-A image folder (img/, frame/)")
    set_dir = require_dir(root / ("IJB-A_11_sets" if task == "verify" else "IJB-A_1N_sets"),
                          f"IJB-A {'1:1' if task == 'verify' else '1:N'} protocol folder")
    if folds is None:
        folds = count_numbered(set_dir, "split{}".format, "IJB-A split")
    files: dict[str, str] = {}
    notes: list[str] = []
    metadata, pairs, roles = [], [], []
    listed: dict[str, set[str]] = {}  # search list file -> every template it names
    for k in range(1, folds + 1):
        split = require_dir(set_dir / f"split{k}", f"IJB-A split {k}")
        if task == "verify":
            meta_path = split / f"verify_metadata_{k}.csv"
            meta = _read_metadata(meta_path, k, skipped)
            metadata.append(meta)
            comp_path = split / f"verify_comparisons_{k}.csv"
            pairs.append(_read_comparisons(comp_path, k, meta, notes, skipped))
            files.update({_rel(p, root): sha256_file(p) for p in (meta_path, comp_path)})
        else:
            gallery = _read_metadata(split / f"search_gallery_{k}.csv", k, skipped, listed)
            probe = _read_metadata(split / f"search_probe_{k}.csv", k, skipped, listed)
            probe = _reject_shared_templates(gallery, probe, skipped)
            metadata += [gallery, probe]
            roles += [_roles(gallery, "gallery", k), _roles(probe, "probe", k)]
            files.update({_rel(split / f"search_{r}_{k}.csv", root):
                          sha256_file(split / f"search_{r}_{k}.csv") for r in ("gallery", "probe")})
    meta = pd.concat(metadata, ignore_index=True)
    meta = _reject_missing_images(meta, image_dir, skipped)
    samples = _samples(meta, image_dir)
    provenance = {"format": "ijba", "task": task, "files": files, "landmark_scheme":
                  LANDMARK_SCHEME, "folds": f"the {folds} official splits, split K = fold K",
                  "template_ids": "'<split>:<TEMPLATE_ID>'", "notes": notes}
    sample_set = SampleSet(root=root, samples=samples, provenance=provenance)
    if task == "verify":
        # Checked against the templates that kept an image, so a pair that lost a side to
        # a skipped row is itself reported, not dropped.
        rows = reject_bad_pairs(pd.concat(pairs, ignore_index=True), samples["template"],
                                set_dir, skipped)
        subject = samples.groupby("template", sort=False)["subject"].first()
        label = rows["a"].map(subject).to_numpy() == rows["b"].map(subject).to_numpy()
        comparisons = new_comparisons(rows["a"], rows["b"], label.astype(int), rows["fold"])
        return EvalSet(samples=sample_set, comparisons=comparisons)
    search = pd.concat(roles, ignore_index=True)
    search = search[search["template"].isin(set(samples["template"]))].reset_index(drop=True)
    notes += _lost_templates(listed, set(search["template"]))
    return EvalSet(samples=sample_set, search=search)


def _lost_templates(listed: dict[str, set[str]], kept: set[str]) -> list[str]:
    """Notes on listed search templates left without a row (lenient: every row skipped),
    which would otherwise leave the search unsaid, turning their subject's probes
    non-mated (gallery) or shrinking the probe set."""
    notes = []
    for path, templates in listed.items():
        lost = sorted(templates - kept)
        if lost:
            role = "gallery" if "gallery" in Path(path).name else "probe"
            notes.append(f"{Path(path).name}: {len(lost)} {role} template"
                         f"{'s' * (len(lost) != 1)} with every row skipped left the search"
                         f" ({', '.join(lost[:5])}{', ...' if len(lost) > 5 else ''})"
                         + ("; their subjects' probes count as non-mated"
                            if role == "gallery" else ""))
    return notes


def _read_metadata(path: Path, split: int, skipped: SkippedRows,
                   listed: dict[str, set[str]] | None = None) -> pd.DataFrame:
    """The rows of one metadata file that pass; ``listed[path]`` gets every template it
    names, kept or not."""
    rows = read_table(path, "IJB-A metadata", required=REQUIRED, optional=OPTIONAL,
                      skipped=skipped)
    rows["_file"] = str(path)
    if listed is not None:
        named = rows["TEMPLATE_ID"].astype(str)
        listed[str(path)] = set(f"{split}:" + named[named != ""])
    ok = np.ones(len(rows), dtype=bool)
    for col in ("TEMPLATE_ID", "SUBJECT_ID", "FILE", "MEDIA_ID"):
        empty = rows[col].eq("").to_numpy()
        for i in np.flatnonzero(empty & ok):
            skipped.reject(DataError(f"empty {col}", path, int(rows[LINE].iat[i]),
                                     rows[TEXT].iat[i]))
        ok &= ~empty
    numbers = {}
    for col in (*BOX, *POINTS, "FACE_YAW"):
        if col in rows:
            parse = parse_angles if col == "FACE_YAW" else parse_numbers
            what = "non-numeric yaw" if col == "FACE_YAW" else "non-numeric coordinate"
            numbers[col], good = parse(rows, col, path, skipped, what=what)
            ok &= good
        else:
            numbers[col] = np.full(len(rows), np.nan)
    rows = rows.assign(**numbers)
    # an empty box is no box, but a box of no size is a broken row: every later stage
    # would ignore it and crop the face from elsewhere without a word
    sides = rows[list(BOX[2:])].to_numpy(np.float64)
    flat = ok & np.isfinite(sides).all(axis=1) & (sides <= 0).any(axis=1)
    for i in np.flatnonzero(flat):
        skipped.reject(DataError(f"face box of no size ({BOX[2]} {sides[i, 0]:g}, {BOX[3]} "
                                 f"{sides[i, 1]:g})", path, int(rows[LINE].iat[i]),
                                 rows[TEXT].iat[i]))
    ok &= ~flat
    rows["template"] = f"{split}:" + rows["TEMPLATE_ID"].astype(str)
    rows = keep_rows(rows, ok)
    # A template is one person: a second SUBJECT_ID means a corrupted row or file.
    first_subject = rows.groupby("template", sort=False)["SUBJECT_ID"].transform("first")
    conflict = (rows["SUBJECT_ID"] != first_subject).to_numpy()
    for i in np.flatnonzero(conflict):
        skipped.reject(DataError(
            f"template {rows['TEMPLATE_ID'].iat[i]} has subject {rows['SUBJECT_ID'].iat[i]} "
            f"here but {first_subject.iat[i]} on an earlier line", path,
            int(rows[LINE].iat[i]), rows[TEXT].iat[i]))
    return keep_rows(rows, ~conflict)


def _read_comparisons(path: Path, split: int, meta: pd.DataFrame, notes: list[str],
                      skipped: SkippedRows) -> pd.DataFrame:
    """Header-less ``enroll,verify`` pairs. Reading them with a header would lose pair 1,
    so the first row is data unless it names no known template and is not a number."""
    rows = read_table(path, "IJB-A comparison list", required=("a", "b"), header=False,
                      skipped=skipped)
    rows["_file"] = str(path)
    known_ids = set(meta["TEMPLATE_ID"])
    if len(rows):
        first = (rows["a"].iat[0], rows["b"].iat[0])
        if not any(v in known_ids or _is_number(v) for v in first):
            notes.append(f"{path.name}:{rows[LINE].iat[0]}: first row {rows[TEXT].iat[0]!r} "
                         f"read as a header (the official files have none)")
            rows = rows.iloc[1:].reset_index(drop=True)
    rows["a"] = f"{split}:" + rows["a"].astype(str)
    rows["b"] = f"{split}:" + rows["b"].astype(str)
    rows["fold"] = split
    return rows


def _reject_shared_templates(gallery: pd.DataFrame, probe: pd.DataFrame,
                             skipped: SkippedRows) -> pd.DataFrame:
    shared = probe["template"].isin(set(gallery["template"])).to_numpy()
    for i in np.flatnonzero(shared):
        skipped.reject(DataError(f"template {probe['TEMPLATE_ID'].iat[i]} is also in the "
                                 f"gallery", probe["_file"].iat[i], int(probe[LINE].iat[i]),
                                 probe[TEXT].iat[i]))
    return keep_rows(probe, ~shared)


def _roles(meta: pd.DataFrame, role: str, split: int) -> pd.DataFrame:
    first = meta.groupby("template", sort=False)["SUBJECT_ID"].first()
    return pd.DataFrame({"template": first.index.astype(str), "subject": first.to_numpy(),
                         "role": role, "fold": split})


def _reject_missing_images(meta: pd.DataFrame, image_dir: Path,
                           skipped: SkippedRows) -> pd.DataFrame:
    files = pd.unique(meta["FILE"])
    present = {f: (image_dir / f).is_file() for f in files}
    missing = ~meta["FILE"].map(present).to_numpy(dtype=bool)
    for i in np.flatnonzero(missing):
        skipped.reject(DataError(missing_image(image_dir / meta["FILE"].iat[i]),
                                 meta["_file"].iat[i], int(meta[LINE].iat[i]),
                                 meta[TEXT].iat[i]))
    return keep_rows(meta, ~missing)


def _samples(meta: pd.DataFrame, image_dir: Path) -> pd.DataFrame:
    box = meta.loc[:, list(BOX)].to_numpy(dtype=np.float32)
    points = meta.loc[:, list(POINTS)].to_numpy(dtype=np.float32).reshape(-1, 3, 2)
    has_box = np.isfinite(box).all(axis=1)
    # A hidden eye of a profile is an empty cell: keep the visible points (NaN for the
    # hidden one) so alignment can still fit a pose-aware crop; no point at all -> None.
    has_points = np.isfinite(points).all(axis=2).any(axis=1)
    extra = {col.lower().removesuffix("_id"): meta[col].astype(str).to_numpy()
             for col in ("SIGHTING_ID", "FRAME") if col in meta}
    return new_samples(
        [str(image_dir / f) for f in meta["FILE"]], meta["SUBJECT_ID"],
        template=meta["template"], media=meta["MEDIA_ID"], yaw=meta["FACE_YAW"],
        box=[b if ok else None for b, ok in zip(box, has_box, strict=True)],
        landmarks=[p if ok else None for p, ok in zip(points, has_points, strict=True)],
        **{LISTED_AT: meta["_file"] + ":" + meta[LINE].astype(str)}, **extra)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()

