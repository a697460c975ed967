"""Yaw for every image of a dataset, from the best source available per image.

Order of preference (configurable): ``metadata`` (the dataset's own yaw: IJB-A FACE_YAW,
the synthetic ground truth, a manifest's yaw column) > ``landmarks`` (the dataset's 2D
points fitted by PnP, :mod:`bench.pose.pnp`) > ``image`` (an image landmark backend,
:mod:`bench.pose.backends`, then PnP). The ``source`` column of the result names what
produced each value: the dataset's ``yaw_source`` for metadata, ``landmarks``,
``image:<backend>``, or ``none`` when nothing could.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..data.samples import YAW_METADATA, YAW_UNKNOWN, unique_images
from ..errors import ConfigError, DataError
from .backends import BACKENDS
from .pnp import DEFAULT_FOCAL_FACTOR, estimate_pose

SOURCES = ("metadata", "landmarks", "image")
RESULT_COLUMNS = ("path", "yaw", "pitch", "roll", "source", "rms_px")
LANDMARKS = "landmarks"


def estimate_yaw(samples: pd.DataFrame, *, sources: Sequence[str] = SOURCES,
                 backend: str | None = "yunet", focal_factor: float = DEFAULT_FOCAL_FACTOR,
                 progress: bool = False) -> pd.DataFrame:
    """One row per distinct crop (path, box) of ``samples``: :data:`RESULT_COLUMNS`, plus
    ``box`` ("x y w h" or "") when the dataset gives boxes.

    ``backend`` None leaves images without metadata or landmarks at NaN (source ``none``);
    a named backend that is not installed raises a ConfigError with the install hint, but
    only when some image needs it.
    """
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or len(set(sources)) != len(sources):
        raise ConfigError(f"yaw sources must be distinct names from {SOURCES}, got {list(sources)}")
    crops, _ = unique_images(samples)
    n = len(crops)
    result = pd.DataFrame({"path": crops["path"].to_numpy(), "yaw": np.full(n, np.nan),
                           "pitch": np.full(n, np.nan), "roll": np.full(n, np.nan),
                           "source": np.full(n, YAW_UNKNOWN, dtype=object),
                           "rms_px": np.full(n, np.nan)})
    steps = {"metadata": _from_metadata, LANDMARKS: _from_landmarks, "image": _from_images}
    for source in sources:
        todo = np.flatnonzero(result["source"].to_numpy() == YAW_UNKNOWN)
        if len(todo) == 0:
            break
        steps[source](crops, todo, result, backend=backend, focal_factor=focal_factor,
                      progress=progress)
    if crops["box"].map(lambda b: b is not None).any():
        result["box"] = crops["box"].map(
            lambda b: "" if b is None else " ".join(f"{v:g}" for v in b)).to_numpy()
    return result


def _store(result: pd.DataFrame, rows: np.ndarray, fit, source: str) -> None:
    ok = np.isfinite(fit.yaw)
    rows = rows[ok]
    for column in ("yaw", "pitch", "roll", "rms_px"):
        result.loc[rows, column] = getattr(fit, column)[ok]
    result.loc[rows, "source"] = source


def _from_metadata(crops, todo, result, **_) -> None:
    yaw = crops["yaw"].to_numpy(dtype=np.float64)[todo]
    rows = todo[np.isfinite(yaw)]
    for column in ("yaw", "pitch", "roll"):
        result.loc[rows, column] = crops[column].to_numpy(dtype=np.float64)[rows]
    given = crops["yaw_source"].to_numpy(dtype=object)[rows]
    result.loc[rows, "source"] = np.where(given == YAW_UNKNOWN, YAW_METADATA, given)


def _from_landmarks(crops, todo, result, *, focal_factor, progress, **_) -> None:
    from ..align.schemes import canonical_landmarks

    has = crops["landmarks"].to_numpy(dtype=object)[todo]
    rows = todo[[a is not None for a in has]]
    if len(rows) == 0:
        return
    points, _ = canonical_landmarks(list(crops["landmarks"].to_numpy(dtype=object)[rows]))
    sizes = image_sizes(crops["path"].to_numpy()[rows], progress=progress)
    fit = estimate_pose(points, landmark_ids=range(points.shape[1]), image_size=sizes,
                        focal_factor=focal_factor)
    _store(result, rows, fit, LANDMARKS)


def _from_images(crops, todo, result, *, backend, focal_factor, progress, **_) -> None:
    if backend is None:
        return
    detector = BACKENDS.get(backend)()
    paths = crops["path"].to_numpy()[todo]
    boxes = crops["box"].to_numpy(dtype=object)[todo]
    detections = [detector.detect(path, None if box is None else np.asarray(box, np.float64))
                  for path, box in tqdm(zip(paths, boxes, strict=True), total=len(paths),
                                        disable=not progress, desc=f"landmarks ({backend})",
                                        unit="img")]
    found = np.array([d.landmarks is not None for d in detections], dtype=bool)
    if not found.any():
        return
    hits = [d for d in detections if d.landmarks is not None]
    fit = estimate_pose(np.stack([d.landmarks for d in hits]), landmark_ids=hits[0].landmark_ids,
                        image_size=np.array([d.image_size for d in hits], np.float64),
                        focal_factor=focal_factor)
    _store(result, todo[found], fit, f"image:{backend}")


def image_sizes(paths: Sequence[str], progress: bool = False) -> np.ndarray:
    """(N, 2) width, height of image files, read from their headers (no decoding)."""
    from PIL import Image, UnidentifiedImageError

    out = np.empty((len(paths), 2))
    for i, path in enumerate(tqdm(paths, disable=not progress, desc="image sizes", unit="img")):
        try:
            with Image.open(path) as im:
                out[i] = im.size
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(f"cannot read image header ({exc})", path) from exc
    return out
