"""The generic formats for a user's own data: a manifest CSV, or one folder per identity.

Manifest columns (by header name): ``path``, ``subject``, ``yaw`` required (yaw may be
empty when unknown); ``pitch``, ``roll``, ``yaw_source``, ``template``, ``media``,
``landmarks`` ("x1 y1 x2 y2 ..."), ``box`` ("x y w h") optional. Paths are relative to the
CSV's folder unless absolute. Without a ``template`` column each image is its own
template, named by its path as written.

Identity folders: ``ROOT/<subject>/<image>`` with no metadata; yaw is unknown. A folder
that holds a ``metadata.csv`` is read as that manifest instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..data.comparisons_io import read_comparisons
from ..data.delimited import (
    LINE,
    TEXT,
    keep_rows,
    missing_image,
    parse_angles,
    read_table,
    require_dir,
)
from ..data.evalset import EvalSet
from ..data.samples import (
    LISTED_AT,
    YAW_METADATA,
    YAW_UNKNOWN,
    SampleSet,
    box_text,
    new_samples,
)
from ..data.skipped import SkippedRows
from ..errors import DataError
from ..fileio import absolute, sha256_file

REQUIRED = ("path", "subject", "yaw")
OPTIONAL = ("pitch", "roll", "yaw_source", "template", "media", "landmarks", "box")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MANIFEST_NAME = "metadata.csv"
LAYOUTS = (f"identity folders ROOT/<subject>/<image>, a folder holding a {MANIFEST_NAME}, "
           f"or a manifest CSV (path,subject,yaw)")


def read(path: str | Path, *, comparisons: str | None = None,
         skipped: SkippedRows | None = None) -> EvalSet:
    """A manifest (or identity folders) with a comparison list (``a,b,label,fold`` CSV,
    relative to the manifest's folder), as written by the yaw-binned split builder."""
    skipped = skipped if skipped is not None else SkippedRows()
    samples = read_samples(path, skipped)
    if comparisons is None:
        raise DataError("a manifest protocol needs a comparison list (reader option "
                        "'comparisons'), or use the yaw-bins protocol to build one", path)
    list_path = _base(absolute(path)) / comparisons
    frame, digest = read_comparisons(list_path, samples.samples["template"], skipped)
    samples.provenance["files"][list_path.name] = digest
    return EvalSet(samples=samples, comparisons=frame)


def read_samples(path: str | Path, skipped: SkippedRows | None = None) -> SampleSet:
    """Samples of a manifest CSV, a folder holding ``metadata.csv``, or identity folders."""
    skipped = skipped if skipped is not None else SkippedRows()
    path = absolute(path)
    if path.is_dir() and (path / MANIFEST_NAME).is_file():
        path = path / MANIFEST_NAME
    if path.is_dir():
        return read_folders(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:  # else read as CSV: "not UTF-8 text" at line 1
        raise DataError(f"an image, not a dataset: expected {LAYOUTS}", path)
    return read_manifest(path, skipped)


def _base(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def read_manifest(path: Path, skipped: SkippedRows) -> SampleSet:
    rows = read_table(path, "manifest CSV", required=REQUIRED, optional=OPTIONAL,
                      skipped=skipped)
    base = path.parent
    ok = np.ones(len(rows), dtype=bool)
    angles = {}
    for col in ("yaw", "pitch", "roll"):
        if col in rows:
            angles[col], good = parse_angles(rows, col, path, skipped)
            ok &= good
    empty_subject = rows["subject"].eq("").to_numpy()
    for i in np.flatnonzero(empty_subject & ok):
        skipped.reject(DataError("empty subject", path, int(rows[LINE].iat[i]), rows[TEXT].iat[i]))
    ok &= ~empty_subject
    rows = keep_rows(rows.assign(**angles), ok)
    landmarks, ok_lm = _parse_points(rows, "landmarks", path, skipped, size=None)
    box, ok_box = _parse_points(rows, "box", path, skipped, size=4)
    image = rows["path"].map(lambda p: str(base / p) if not Path(p).is_absolute() else p)
    exists = image.map(lambda p: Path(p).is_file()).to_numpy(dtype=bool)
    for i in np.flatnonzero(~exists & ok_lm & ok_box):
        skipped.reject(DataError(missing_image(image.iat[i]), path,
                                 int(rows[LINE].iat[i]), rows[TEXT].iat[i]))
    template = _column_or(rows, "template", rows["path"])
    twice = _duplicate_images(image, template) & exists
    twice_message = "image listed twice in one template" if "template" in rows else (
        "image listed twice: without a template column each row is the template of its "
        "path; add a template column to list one photo once per face in it")
    for i in np.flatnonzero(twice & ok_lm & ok_box):
        skipped.reject(DataError(twice_message, path, int(rows[LINE].iat[i]),
                                 rows[TEXT].iat[i]))
    keep = ok_lm & ok_box & exists & ~twice
    other_face = _other_face_same_crop(image, rows, landmarks, keep)
    for i in np.flatnonzero(other_face):
        skipped.reject(DataError(
            "this photo is listed for another face on an earlier line, with other landmarks "
            "and the same box (or none): every stage keys a face by photo and box, so the "
            "faces would share one crop and one yaw; give each face its box (x y w h)",
            path, int(rows[LINE].iat[i]), rows[TEXT].iat[i]))
    keep &= ~other_face
    yaw = rows["yaw"].to_numpy(dtype=np.float64)
    default_source = np.where(np.isfinite(yaw), YAW_METADATA, YAW_UNKNOWN)
    source = _column_or(rows, "yaw_source", pd.Series(default_source))
    frame = new_samples(
        image[keep], rows["subject"][keep], template=template[keep],
        media=_column_or(rows, "media", template)[keep], yaw=yaw[keep],
        pitch=rows["pitch"][keep] if "pitch" in rows else None,
        roll=rows["roll"][keep] if "roll" in rows else None,
        yaw_source=source[keep], landmarks=[lm for lm, k in zip(landmarks, keep, strict=True) if k],
        box=[b for b, k in zip(box, keep, strict=True) if k],
        **{LISTED_AT: [f"{path}:{line}" for line in rows[LINE][keep]]})
    counts = {len(lm) for lm in frame["landmarks"] if lm is not None}
    provenance = {"format": "manifest", "files": {path.name: sha256_file(path)},
                  "source": str(path),
                  "landmark_scheme": ",".join(f"{k} points" for k in sorted(counts)) or None,
                  "notes": []}
    return SampleSet(root=base, samples=frame, provenance=provenance)


def _column_or(rows: pd.DataFrame, column: str, default: pd.Series) -> pd.Series:
    """``rows[column]`` where present and non-empty, else ``default`` (same index)."""
    default = pd.Series(np.asarray(default, dtype=object), index=rows.index)
    if column not in rows:
        return default
    return rows[column].where(rows[column].ne(""), default)


def _other_face_same_crop(image: pd.Series, rows: pd.DataFrame, landmarks: list,
                          keep: np.ndarray) -> np.ndarray:
    """Rows (among ``keep``) whose photo and box an earlier kept row has with other landmarks."""
    out = np.zeros(len(rows), bool)
    if "landmarks" not in rows:
        return out
    box = rows["box"].map(box_text) if "box" in rows else pd.Series("", index=rows.index)
    crop = pd.Series(image.to_numpy() + "\0" + box.to_numpy())[keep]
    shared = np.flatnonzero(keep)[crop.duplicated(keep=False).to_numpy()]
    if shared.size:  # the points compared as numbers, for the few photos listed twice
        frame = pd.DataFrame({"crop": crop.to_numpy()[np.isin(np.flatnonzero(keep), shared)],
                              "points": [box_text(landmarks[i]) for i in shared]})
        first = frame.groupby("crop", sort=False)["points"].transform("first")
        out[shared] = (frame["points"] != first).to_numpy()
    return out


def _duplicate_images(image: pd.Series, template: pd.Series) -> np.ndarray:
    return pd.DataFrame({"i": image.to_numpy(), "t": template.to_numpy()}).duplicated().to_numpy()


def _parse_points(rows: pd.DataFrame, column: str, path: Path, skipped: SkippedRows,
                  size: int | None) -> tuple[list[np.ndarray | None], np.ndarray]:
    """Space-separated numbers per row: (K, 2) points (``size`` None; "nan" marks a hidden
    point) or a finite (size,) vector."""
    n = len(rows)
    out: list[np.ndarray | None] = [None] * n
    ok = np.ones(n, dtype=bool)
    if column not in rows:
        return out, ok
    expected = "an even count of numbers 'x1 y1 x2 y2 ...'" if size is None else \
        f"{size} numbers"
    for i, text in enumerate(rows[column]):
        if not text:
            continue
        try:
            values = np.asarray(text.replace(",", " ").split(), dtype=np.float32)
        except ValueError:
            values = None
        # A hidden landmark may be written as "nan" (its pair stays NaN); a box may not.
        finite = values is not None and (np.isfinite(values).all() if size else (
            not np.isinf(values).any() and np.isfinite(values).any()))
        good = finite and (
            values.size == size if size else values.size % 2 == 0 and values.size > 0)
        if not good:
            skipped.reject(DataError(f"bad {column}: expected {expected}", path,
                                     int(rows[LINE].iat[i]), rows[TEXT].iat[i]))
            ok[i] = False
            continue
        out[i] = values if size else values.reshape(-1, 2)
    return out, ok


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def read_folders(root: Path) -> SampleSet:
    """``root/<subject>/<image>``: every image file, sorted, yaw unknown."""
    require_dir(root, "identity folders")
    # hidden folders (.thumbnails, a Mac's .AppleDouble) and __MACOSX hold no identities
    hidden = sorted(p.name for p in root.iterdir() if p.is_dir() and _hidden(p.name))
    files = [p for p in root.glob("*/*") if p.is_file() and not _hidden(p.name)
             and not _hidden(p.parent.name)]
    images = sorted(p for p in files if p.suffix.lower() in IMAGE_SUFFIXES)
    others = sorted(p for p in files if p.suffix.lower() not in IMAGE_SUFFIXES)
    if not images:
        flat = [p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        if flat:  # the subject of an image is its folder's name: these have none
            raise DataError(f"no images found in identity folders: {len(flat)} images lie "
                            f"directly in this folder, with no identity: put them in one folder per identity, or list them "
                            f"in a {MANIFEST_NAME} (expected {LAYOUTS})", root)
        raise DataError(f"no images found: expected ROOT/<subject>/<image> with a suffix "
                        f"in {IMAGE_SUFFIXES}, or a {MANIFEST_NAME}", root)
    rel = [p.relative_to(root).as_posix() for p in images]
    frame = new_samples([str(p) for p in images], [p.parent.name for p in images],
                        template=rel)
    provenance = {"format": "folders", "source": str(root), "files": {},
                  "landmark_scheme": None,
                  "notes": ["identity folders carry no yaw of their own (`bench yaw` estimates "
                            "it; pass the file with --yaw-file)"]}
    if hidden:
        provenance["notes"].append(f"{len(hidden)} hidden or system folders were left out: "
                                   + ", ".join(hidden[:3]) + (", ..." if len(hidden) > 3 else ""))
    deeper = sorted(p for p in root.glob("*/*/**/*") if p.is_file()
                    and p.suffix.lower() in IMAGE_SUFFIXES
                    and not any(_hidden(part) for part in p.relative_to(root).parts))
    if deeper:  # frames of a video folder, say: their subject is not this layout's to guess
        first = ", ".join(p.relative_to(root).as_posix() for p in deeper[:3])
        provenance["notes"].append(
            f"{len(deeper)} images lie deeper than ROOT/<subject>/<image> and were left out "
            f"(list them in a {MANIFEST_NAME} to use them): {first}"
            + (", ..." if len(deeper) > 3 else ""))
    if others:  # a .tif or .heic left out must not pass unnoticed
        first = ", ".join(p.relative_to(root).as_posix() for p in others[:3])
        provenance["notes"].append(
            f"{len(others)} files in identity folders are not images of a suffix bench "
            f"reads ({', '.join(IMAGE_SUFFIXES)}) and were left out: {first}"
            + (", ..." if len(others) > 3 else ""))
    return SampleSet(root=root, samples=frame, provenance=provenance)
