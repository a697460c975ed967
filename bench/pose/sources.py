"""Yaw for every image of a dataset, from the best source available per image.

Order of preference (configurable): ``metadata`` (the dataset's own yaw: IJB-A FACE_YAW,
the synthetic ground truth, a manifest's yaw column) > ``landmarks`` (the dataset's 2D
points fitted by PnP, :mod:`bench.pose.pnp`) > ``image`` (the detection stage,
:mod:`bench.detect`, then PnP on the chosen face's points). The ``source`` column of the
result names what produced each value: the dataset's ``yaw_source`` for metadata,
``landmarks``, ``image:<detector>``, or ``none`` when nothing could.

Detections come from (and go to) the detection stage's per-image cache, so ``bench yaw``,
``bench detect``, ``bench align`` and ``bench run`` detect each image once per detector.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..align.schemes import canonical_landmarks
from ..data.samples import YAW_METADATA, YAW_UNKNOWN, box_text, unique_images
from ..detect.backends import DEFAULT_DETECTOR, DETECTORS, create_detector
from ..detect.faces import choose_face
from ..detect.stage import (
    PRE_ALIGNED,
    DetectOptions,
    detect_images,
    face_hints,
    landmark_sources,
)
from ..errors import ConfigError, DataError
from ..progress import progress_bar
from .pnp import DEFAULT_FOCAL_FACTOR, estimate_pose

SOURCES = ("metadata", "landmarks", "image")
RESULT_COLUMNS = ("path", "yaw", "pitch", "roll", "source", "rms_px")
LANDMARKS = "landmarks"


def estimate_yaw(samples: pd.DataFrame, *, sources: Sequence[str] = SOURCES,
                 backend: str | None = DEFAULT_DETECTOR, detector_model: str | None = None,
                 focal_factor: float = DEFAULT_FOCAL_FACTOR, cache_dir=None,
                 progress: bool = False) -> pd.DataFrame:
    """One row per distinct crop (path, box) of ``samples``: :data:`RESULT_COLUMNS`, plus
    ``box`` ("x y w h" or "") when the dataset gives boxes.

    ``backend``: the face detector (a name in :data:`bench.detect.DETECTORS`, with its
    ``detector_model`` file where it needs one) for images with neither yaw nor usable
    landmarks; None leaves them at NaN (source ``none``). A detector that is not installed
    raises a ConfigError with the install hint, but only when some image needs it.
    ``cache_dir``: root of the detection cache (default ``$BENCH_CACHE``).
    """
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or len(set(sources)) != len(sources):
        raise ConfigError(f"yaw sources must be distinct names from {SOURCES}, got {list(sources)}")
    if backend is not None and backend not in DETECTORS:  # a typo fails before any work
        raise ConfigError(DETECTORS.unknown_message(backend))
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
        steps[source](crops, todo, result, backend=backend, detector_model=detector_model,
                      focal_factor=focal_factor, cache_dir=cache_dir, progress=progress)
    if crops["box"].map(lambda b: b is not None).any():
        result["box"] = crops["box"].map(box_text).to_numpy()
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
    landmarks = crops["landmarks"].to_numpy(dtype=object)
    # A pre-aligned crop (.bin) carries the template's points, not the face's: fitting them
    # would give every crop the template's pose. Its yaw has to come from the image.
    posed = landmark_sources(crops) != PRE_ALIGNED
    rows = todo[[landmarks[i] is not None and posed[i] for i in todo]]
    if len(rows) == 0:
        return
    points, _ = canonical_landmarks(list(landmarks[rows]))
    sizes = image_sizes(crops["path"].to_numpy()[rows], progress=progress)
    fit = estimate_pose(points, landmark_ids=range(points.shape[1]), image_size=sizes,
                        focal_factor=focal_factor, principal_point=box_centres(crops, rows))
    _store(result, rows, fit, LANDMARKS)


def _from_images(crops, todo, result, *, backend, detector_model, focal_factor, cache_dir,
                 progress, **_) -> None:
    """Detect (cached), choose each crop's face, fit PnP on all the points the detector
    gives in canonical form (dlib's 68 give all 22, YuNet's five only five).

    The stage's pieces are called directly rather than ``complete_landmarks``: that one
    never detects pre-aligned crops, whose yaw only the image can give.
    """
    if backend is None:
        return
    detector = create_detector(backend, detector_model)
    paths = crops["path"].to_numpy(dtype=object)[todo].astype(str)
    unique, inverse = np.unique(paths, return_inverse=True)
    # the default resize policy, so bench run finds these entries in the cache too
    found, _ = detect_images(list(unique), detector,
                             options=DetectOptions(detector=backend, model=detector_model),
                             cache_dir=cache_dir, progress=progress)
    chosen = [(found[k], choose_face(found[k], hint)[0])
              for k, hint in zip(inverse, face_hints(crops, todo), strict=True)]
    ok = np.array([index is not None for _, index in chosen], dtype=bool)
    if not ok.any():
        return
    points = np.stack([faces.points[i] for faces, i in chosen if i is not None])
    sizes = np.array([faces.image_size for faces, i in chosen if i is not None], np.float64)
    fit = estimate_pose(points, landmark_ids=range(points.shape[1]), image_size=sizes,
                        focal_factor=focal_factor, principal_point=box_centres(crops, todo[ok]))
    _store(result, todo[ok], fit, f"image:{backend}")


def box_centres(crops: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """(len(rows), 2) centre pixel of each row's dataset box, NaN without one: a boxed face
    (one of a group photo, an IJB-A frame's) is posed against the line of sight to it, as
    its crop shows it, not against the photo's optical axis (:func:`estimate_pose`)."""
    out = np.full((len(rows), 2), np.nan)
    if "box" not in crops:
        return out
    boxes = crops["box"].to_numpy(dtype=object)[rows]
    for i, box in enumerate(boxes):
        if box is not None and np.size(box) == 4:
            x, y, w, h = np.asarray(box, np.float64).ravel()
            out[i] = (x + w / 2 - 0.5, y + h / 2 - 0.5)  # the box covers x .. x + w - 1
    return out


def image_sizes(paths: Sequence[str], progress: bool = False) -> np.ndarray:
    """(N, 2) width, height of image files, read from their headers (no decoding)."""
    from PIL import Image, UnidentifiedImageError

    out = np.empty((len(paths), 2))
    for i, path in enumerate(progress_bar(paths, enabled=progress, desc="image sizes")):
        try:
            with Image.open(path) as im:
                out[i] = im.size
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(f"cannot read image header ({exc})", path) from exc
    return out
