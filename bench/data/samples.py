"""The data model shared by the dataset readers, the runner and training.

A :class:`SampleSet` holds one row per image occurrence; a comparisons frame lists the
template pairs to score. Readers build both with :func:`new_samples` and
:func:`new_comparisons` so that every reader returns the same columns and dtypes, and
:func:`check_samples` / :func:`check_comparisons` enforce the contract at the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError

#: Columns every samples frame has, in this order (readers may append format-specific ones,
#: e.g. IJB-A's ``frame`` and ``sighting``).
SAMPLE_COLUMNS: tuple[str, ...] = (
    "path", "subject", "yaw", "pitch", "roll", "yaw_source", "template", "media",
    "landmarks", "box",
)
#: ``yaw_source`` of an image whose yaw is not known (yet): the yaw estimator fills it in.
YAW_UNKNOWN = "none"
#: ``yaw_source`` of a yaw read from the dataset's own files (IJB-A FACE_YAW, pose.csv, manifest).
YAW_METADATA = "metadata"

#: Optional column: where a sample's landmarks come from (``dataset``, ``detection``,
#: ``pre_aligned``, ``none``; filled by :mod:`bench.detect.stage`).
LANDMARK_SOURCE = "landmark_source"
#: ``landmark_source`` of a crop already aligned to its template (an insightface .bin):
#: its points are the template's, never to be detected or fitted for pose.
PRE_ALIGNED = "pre_aligned"

#: Optional column: ``"FILE:LINE"`` of the list row that names a sample's image (a
#: manifest's), so an image that fails to decode is reported at the row to fix or drop.
LISTED_AT = "listed_at"

COMPARISON_COLUMNS: tuple[str, ...] = ("a", "b", "label", "fold")


@dataclass
class SampleSet:
    """Images of one dataset.

    ``samples`` columns: ``path`` (absolute str), ``subject`` (str, "" when the format has
    no identities), ``yaw``/``pitch``/``roll`` (float degrees, NaN unknown), ``yaw_source``
    (str), ``template`` (str), ``media`` (str), ``landmarks`` (float32 (K, 2) pixel coordinates
    in the image file, or None), ``box`` (float32 (4,) x, y, w, h, or None). One row per
    (template, image): an image used by two templates appears twice; see :func:`unique_images`.
    ``provenance`` says where the rows came from: format, files with sha256, notes, and
    ``landmark_scheme`` naming the point order of ``landmarks``.
    """

    root: Path
    samples: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        check_samples(self.samples, where=str(self.root))

    def __len__(self) -> int:
        return len(self.samples)


def new_samples(path, subject, *, template=None, media=None, yaw=None, pitch=None, roll=None,
                yaw_source=None, landmarks=None, box=None, **extra) -> pd.DataFrame:
    """Build a samples frame with the contract's columns and dtypes from per-row sequences.

    Omitted columns get their "unknown" value: NaN angles, ``template`` = ``path`` (the image
    is its own template), ``media`` = ``template``, landmarks/box None, and ``yaw_source``
    ``"metadata"`` where yaw is finite, ``"none"`` elsewhere.
    """
    path = np.asarray(path, dtype=object).astype(str)
    n = len(path)

    def angle(values) -> np.ndarray:
        return np.full(n, np.nan) if values is None else np.asarray(values, dtype=np.float64)

    yaw_a, pitch_a, roll_a = angle(yaw), angle(pitch), angle(roll)
    if yaw_source is None:
        yaw_source = np.where(np.isfinite(yaw_a), YAW_METADATA, YAW_UNKNOWN)
    template = path if template is None else np.asarray(template, dtype=object).astype(str)
    media = template if media is None else np.asarray(media, dtype=object).astype(str)
    frame = pd.DataFrame({
        "path": path,
        "subject": np.asarray(subject, dtype=object).astype(str),
        "yaw": yaw_a, "pitch": pitch_a, "roll": roll_a,
        "yaw_source": np.asarray(yaw_source, dtype=object).astype(str),
        "template": template,
        "media": media,
        "landmarks": _object_column(landmarks, n),
        "box": _object_column(box, n),
    })
    for name, values in extra.items():
        frame[name] = list(values)
    return frame


def _object_column(values, n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    if values is not None:
        out[:] = list(values)
    return out


def check_samples(samples: pd.DataFrame, where: str = "samples") -> None:
    """Raise DataError unless ``samples`` follows the contract (columns, dtypes, shapes)."""
    missing = [c for c in SAMPLE_COLUMNS if c not in samples.columns]
    if missing:
        raise DataError(f"samples frame lacks columns {missing}", where)
    if not isinstance(samples.index, pd.RangeIndex) or samples.index.start != 0:
        raise DataError("samples frame must have a RangeIndex from 0", where)
    for col in ("yaw", "pitch", "roll"):
        if not pd.api.types.is_float_dtype(samples[col]):
            raise DataError(f"column {col!r} must be float degrees, got {samples[col].dtype}",
                            where)
    for col in ("path", "subject", "yaw_source", "template", "media"):
        if len(samples) and not all(isinstance(v, str) for v in samples[col].to_numpy()):
            raise DataError(f"column {col!r} must hold str values", where)
    for i, lm in enumerate(samples["landmarks"].to_numpy()):
        if lm is not None and (not isinstance(lm, np.ndarray) or lm.ndim != 2
                               or lm.shape[1] != 2 or lm.dtype != np.float32):
            raise DataError(f"row {i}: landmarks must be a float32 (K, 2) array or None", where)
    for i, box in enumerate(samples["box"].to_numpy()):
        if box is not None and (not isinstance(box, np.ndarray) or box.shape != (4,)):
            raise DataError(f"row {i}: box must be a (4,) array x, y, w, h or None", where)


def new_comparisons(a, b, label, fold) -> pd.DataFrame:
    """A comparisons frame: ``a``, ``b`` template ids (str), ``label`` 0/1, ``fold`` 1-based."""
    return pd.DataFrame({
        "a": np.asarray(a, dtype=object).astype(str),
        "b": np.asarray(b, dtype=object).astype(str),
        "label": np.asarray(label, dtype=np.int64),
        "fold": np.asarray(fold, dtype=np.int64),
    })


def check_comparisons(comparisons: pd.DataFrame, templates, where: str = "comparisons",
                      repeats_allowed: int = 0) -> None:
    """Raise DataError on missing columns, labels outside {0, 1}, folds < 1, unknown
    template ids or pairs listed twice (in either order) beyond the ``repeats_allowed``
    that the reader found in a published protocol and declared."""
    missing = [c for c in COMPARISON_COLUMNS if c not in comparisons.columns]
    if missing:
        raise DataError(f"comparisons frame lacks columns {missing}", where)
    bad_label = ~comparisons["label"].isin((0, 1))
    if bad_label.any():
        raise DataError(f"{int(bad_label.sum())} labels are not 0/1", where)
    if (comparisons["fold"] < 1).any():
        raise DataError("folds are 1-based; found a fold < 1", where)
    known = pd.Index(pd.unique(np.asarray(templates, dtype=object).astype(str)))
    for side in ("a", "b"):
        unknown = ~comparisons[side].isin(known)
        if unknown.any():
            first = comparisons[side][unknown].iloc[0]
            raise DataError(f"{int(unknown.sum())} unknown template ids in column {side!r}, "
                            f"first {first!r}", where)
    dup = duplicate_pairs(comparisons["a"], comparisons["b"])
    if dup.sum() > repeats_allowed:
        row = comparisons[dup].iloc[0]
        raise DataError(f"{int(dup.sum())} duplicate pairs, first ({row.a}, {row.b})", where)


def duplicate_pairs(a, b) -> np.ndarray:
    """Bool mask: True for each pair already seen earlier (order of the two sides ignored).
    """
    return pd.Series(pair_keys(a, b)).duplicated().to_numpy()


def pair_keys(a, b) -> np.ndarray:
    """(n,) int64: one integer per unordered pair, equal for equal pairs.

    Ids compare as text (``3`` and ``"3"`` are one template). The sides are coded by
    hashing and the unordered pair becomes one integer, so IJB-C's 15.7M pairs take
    seconds (comparing string pairs took most of a minute)."""
    a, b = np.asarray(a), np.asarray(b)
    codes, uniques = pd.factorize(np.concatenate([a, b]), use_na_sentinel=False)
    _, merged = np.unique(np.array([str(u) for u in uniques], dtype=str), return_inverse=True)
    codes = merged[codes].astype(np.int64)
    ca, cb = codes[:a.size], codes[a.size:]
    lo, hi = np.minimum(ca, cb), np.maximum(ca, cb)
    return lo * (int(codes.max(initial=0)) + 1) + hi


def box_text(box) -> str:
    """A sample's box as files write it ("x y w h", numbers in %g; "" for none), from its
    numbers or from such a text read back (kept as written when not numbers, so that it
    matches nothing by accident)."""
    if box is None or (isinstance(box, str) and not box.strip()):
        return ""
    values = box.split() if isinstance(box, str) else np.asarray(box).ravel()
    try:
        return " ".join(f"{float(v):g}" for v in values)
    except ValueError:
        return str(box)


def unique_images(samples: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Distinct (path, box) crops and, per samples row, the index of its crop.

    Features are extracted once per crop and gathered back with ``inverse``:
    ``row_features = crop_features[inverse]``. Templates sharing an image (IJB-A, or one
    image in several splits) then cost one forward pass.
    """
    box_key = samples["box"].map(box_text)
    keys = pd.MultiIndex.from_arrays([samples["path"].to_numpy(), box_key.to_numpy()])
    codes, uniques = pd.factorize(keys)
    first = pd.Series(np.arange(len(samples))).groupby(codes).first().to_numpy()
    return samples.iloc[first].reset_index(drop=True), codes.astype(np.int64)


def at_listing(exc: DataError, frame: pd.DataFrame) -> DataError:
    """``exc`` (about one image file) moved to the list row that names that image, when
    ``frame`` has a :data:`LISTED_AT` column listing it; else ``exc`` itself."""
    return at_listings(exc, frame)[0]


def at_listings(exc: DataError, frame: pd.DataFrame) -> list[DataError]:
    """``exc`` at each distinct list row that names its image (an IJB-A image may be
    listed by several splits), in the order of ``frame``; ``[exc]`` when none does."""
    if exc.path is None or LISTED_AT not in frame:
        return [exc]
    listed = frame.loc[frame["path"].astype(str) == exc.path, LISTED_AT]
    where = [w for w in pd.unique(listed.to_numpy()) if isinstance(w, str)]
    if not where:
        return [exc]
    return [DataError(f"image {exc.path}: {exc.message}", file, int(line), exc.text,
                      image=exc.path)
            for file, _, line in (w.rpartition(":") for w in where)]
