"""``bench align`` as files: read any supported layout, write crops and a manifest.

The crops go to ``OUT/images/<path relative to the dataset root>`` (suffix replaced; a
second face of the same image gets ``__2``, ``__3``...), one file per distinct (image, box)
crop. ``OUT/metadata.csv`` is a manifest in the project's format (one row per sample,
paths relative to OUT) whose ``landmarks`` are the points the alignment used (the
dataset's, or a detector's: :mod:`bench.detect`) mapped into its crop, and whose
``landmark_source`` says which, so ``bench`` reads the aligned set like any other manifest.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..data.samples import SampleSet
from ..detect.stage import DETECTION, SOURCE_COLUMN
from ..face3d import FIVE_POINT
from ..fileio import absolute, atomic_write
from .api import AlignStream
from .transform import apply

MANIFEST_COLUMNS = ("path", "subject", "yaw", "pitch", "roll", "yaw_source", "template",
                    "media", "landmarks")


def crop_names(paths: Iterable[str], root: Path, suffix: str) -> list[str]:
    """Relative output names mirroring the dataset tree; repeated images get ``__k``."""
    root = absolute(root)
    names, seen = [], {}
    for p in paths:
        # normalised first: "ROOT/../../photos/x.png" is lexically under ROOT, and its
        # name "images/../../photos/x.png" would leave OUT (and overwrite the photo)
        p = absolute(p)
        rel = p.relative_to(root) if p.is_relative_to(root) else Path(p.name)
        base = (Path("images") / rel).with_suffix("").as_posix()
        k = seen[base] = seen.get(base, 0) + 1
        names.append(f"{base}{'' if k == 1 else f'__{k}'}.{suffix}")
    return names


def _write_image(path: Path, rgb_chw: np.ndarray, suffix: str) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if suffix == "jpg" else []
    ok, data = cv2.imencode(f".{suffix}", cv2.cvtColor(rgb_chw.transpose(1, 2, 0),
                                                       cv2.COLOR_RGB2BGR), params)
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 image
        raise RuntimeError(f"cannot encode {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.tobytes())
    os.replace(tmp, path)  # a killed run never leaves a truncated crop under the real name


def _points_text(points) -> str:
    if points is None or not np.isfinite(points).all():
        return ""  # the manifest format has no notation for a hidden point
    return " ".join(f"{v:.2f}" for v in np.asarray(points).ravel())


def _detected_points(points: np.ndarray) -> np.ndarray | None:
    """A detection's canonical (22, 2) points as a manifest can say them: all 22 when the
    detector gives every one (dlib), else the five in ``five`` order (YuNet, SCRFD)."""
    if np.isfinite(points).all():
        return points
    five = points[list(FIVE_POINT)]
    return five if np.isfinite(five).all() else None


def used_landmarks(frame: pd.DataFrame) -> list:
    """Per crop of ``frame`` (what the alignment planned from), the points it used, in a
    scheme the manifest reader recognises by count."""
    sources = frame[SOURCE_COLUMN].to_numpy(dtype=object) if SOURCE_COLUMN in frame \
        else np.full(len(frame), None)
    out = []
    for lm, source in zip(frame["landmarks"], sources, strict=True):
        if not isinstance(lm, np.ndarray):
            out.append(None)  # None, or a NaN a frame built by hand may hold
        else:
            out.append(_detected_points(lm.astype(np.float64)) if source == DETECTION else lm)
    return out


def write_aligned(stream: AlignStream, sample_set: SampleSet, inverse: np.ndarray, out: Path,
                  suffix: str = "png", workers: int = 4) -> Path:
    """Write every crop of ``stream`` (the distinct crops of ``sample_set``; sample row r is
    crop ``inverse[r]``) under ``out`` and the manifest ``out/metadata.csv``."""
    out = Path(out)
    names = crop_names(stream.frame["path"], sample_set.root, suffix)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for batch in stream:
            crops = batch.crops.cpu().numpy()
            list(pool.map(_write_image, [out / names[r] for r in batch.rows], crops,
                          repeat(suffix)))
    samples = sample_set.samples
    # per crop, then per sample: the points the crop was aligned from, into the crop
    mapped = [None if lm is None else apply(m, lm) for lm, m in
              zip(used_landmarks(stream.frame), stream.plan.transforms, strict=True)]
    manifest = pd.DataFrame({c: samples[c] for c in MANIFEST_COLUMNS[1:-1]})
    crop_path = np.asarray(names, dtype=object)[inverse]
    manifest.insert(0, "path", crop_path)
    for column in ("template", "media"):  # image-level ids were the source path: follow it
        own = (samples[column] == samples["path"]).to_numpy()
        manifest.loc[own, column] = crop_path[own]
    manifest["landmarks"] = [_points_text(mapped[k]) for k in inverse]
    if SOURCE_COLUMN in stream.frame:
        manifest[SOURCE_COLUMN] = stream.frame[SOURCE_COLUMN].to_numpy(dtype=object)[inverse]
    with atomic_write(out / "metadata.csv") as f:
        manifest.to_csv(f, index=False, float_format="%.4g")
    return out / "metadata.csv"
