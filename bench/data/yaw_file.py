"""Head pose from a ``path,yaw[,pitch,roll,source]`` CSV (what ``bench yaw`` writes) applied to
a dataset that has none, or whose own values should be replaced.

Paths in the file are matched to the dataset's after both are made absolute and normalised
(a relative path in the file is relative to the file's folder), with the symbolic links of
their folders resolved, so a table written for ``--data data/cfp`` still applies when the
dataset is read as ``/home/me/data/cfp``, or through a link to it (``/data -> /mnt/disk``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..fileio import absolute, sha256_file
from .delimited import LINE, TEXT, read_angle_table
from .samples import YAW_UNKNOWN, SampleSet, box_text
from .skipped import SkippedRows


class NotInYawFile(DataError):
    """A yaw file lists none of a dataset's images (it was written for another one)."""


def _normalise(paths, base: Path) -> np.ndarray:
    absolute = [os.path.normpath(os.path.join(base, p)) for p in paths]
    # realpath of each folder once (a dataset has few; a path per image would stat them all)
    folders = {d: os.path.realpath(d) for d in {os.path.dirname(p) for p in absolute}}
    return np.array([os.path.join(folders[os.path.dirname(p)], os.path.basename(p))
                     for p in absolute], dtype=object)


def _with_box(paths: np.ndarray, boxes) -> np.ndarray:
    return np.array([f"{p} [{box_text(b)}]" for p, b in zip(paths, boxes, strict=True)],
                    dtype=object)


def _check_duplicates(rows: pd.DataFrame, listed: np.ndarray, path: Path) -> None:
    """A path listed twice must give the same angles both times (else which one holds?)."""
    dup = pd.Series(listed).duplicated(keep=False).to_numpy()
    if not dup.any():
        return
    angles = [c for c in ("yaw", "pitch", "roll") if c in rows]
    first: dict[str, int] = {}
    for i in np.flatnonzero(dup):
        j = first.setdefault(listed[i], i)
        if j == i:
            continue
        a = rows[angles].iloc[j].to_numpy(np.float64)
        b = rows[angles].iloc[i].to_numpy(np.float64)
        if not np.array_equal(a, b, equal_nan=True):
            raise DataError(f"{rows['path'].iat[i]} is listed again with other angles (first at "
                            f"line {int(rows[LINE].iat[j])}): which one holds?", path,
                            int(rows[LINE].iat[i]), rows[TEXT].iat[i])


def apply_yaw_file(samples: SampleSet, yaw_path: str | Path, skipped: SkippedRows) -> int:
    """Overwrite yaw/pitch/roll/yaw_source of the images ``yaw_path`` lists; returns how many.

    The file's sha256 joins the provenance's ``files`` (so it changes the data hash and
    every cache keyed on it). Images the file does not list keep what they had.
    """
    yaw_path = Path(yaw_path)
    rows = read_angle_table(yaw_path, "yaw file", skipped, extra=("source", "box"))
    frame = samples.samples
    listed = _normalise(rows["path"], absolute(yaw_path).parent)
    wanted = _normalise(frame["path"], Path.cwd())
    if "box" in rows:
        # bench yaw writes a row per face, (path, box), when the dataset gives boxes: an
        # image with several faces (a group photo, an IJB-A frame) is listed once per face
        listed = _with_box(listed, rows["box"])
        wanted = _with_box(wanted, frame["box"] if "box" in frame else [None] * len(frame))
    _check_duplicates(rows, listed, yaw_path)
    where = pd.Series(np.arange(len(rows)), index=listed)
    where = where[~where.index.duplicated()]
    hit = pd.Series(wanted).map(where)
    found = hit.notna().to_numpy()
    idx = hit[found].astype(int).to_numpy()
    for col in ("yaw", "pitch", "roll"):
        if col in rows:
            frame.loc[found, col] = rows[col].to_numpy(dtype=np.float64)[idx]
    source = rows["source"].to_numpy() if "source" in rows else np.full(len(rows), "file")
    frame.loc[found, "yaw_source"] = np.where(np.isfinite(frame.loc[found, "yaw"]),
                                              source[idx], YAW_UNKNOWN)
    samples.provenance.setdefault("files", {})[yaw_path.name] = sha256_file(yaw_path)
    given = int(np.isfinite(frame["yaw"].to_numpy(np.float64)[found]).sum())
    empty = int(found.sum()) - given  # rows of images bench yaw found no face in
    samples.provenance.setdefault("notes", []).append(
        f"yaw of {given}/{len(frame)} images from {yaw_path}"
        + (f"; {empty} row{'s' * (empty != 1)} there give{'s' * (empty == 1)} no yaw"
           if empty else ""))
    return int(found.sum())


def apply_listed_yaw_file(samples: SampleSet, yaw_path: str | Path, skipped: SkippedRows,
                          dataset: str | Path) -> int:
    """:func:`apply_yaw_file`, refusing a file that lists none of ``dataset``'s images: it
    was written for another dataset, and running on would silently ignore it."""
    listed = apply_yaw_file(samples, yaw_path, skipped)
    if listed == 0:
        raise NotInYawFile(f"none of the {len(samples.samples)} images of {dataset} is listed "
                           f"in the yaw file (was it written for this dataset?)", yaw_path)
    return listed
