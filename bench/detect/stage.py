"""The detection stage: find each sample's face and its landmarks when the dataset gives
none the alignment can use.

Real datasets rarely carry clean points (CFP's 30 fiducials have no documented order,
IJB-A gives boxes, a folder of photos gives nothing), so before alignment every sample
without usable landmarks of a known scheme is detected (``mode="auto"``; ``"always"``
detects every sample, ``"never"`` none). Per sample the detection nearest the dataset's
box (or the extent of its unusable points) is taken, else the largest central face
(:func:`bench.detect.faces.choose_face`). Its points replace the sample's landmarks
(canonical 22-point form) and its box fills a missing box; ``landmark_source`` says where
each sample's points came from: ``dataset``, ``detection``, ``pre_aligned`` (an
insightface ``.bin`` crop) or ``none``. A sample whose face is not found keeps what it had
and falls back in the alignment to its box or the whole image, counted and listed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..align.decode import decode_bgr, read_bytes
from ..align.schemes import canonical_landmarks
from ..data.samples import LANDMARK_SOURCE, PRE_ALIGNED, at_listing
from ..errors import ConfigError, DataError
from ..progress import progress_bar
from .backends import DEFAULT_DETECTOR, DETECTORS, FaceDetector, create_detector
from .cache import DetectionCache
from .faces import Faces, choose_face

DETECT_MODES = ("auto", "always", "never")
EXIF_ORIENTATION = 0x0112  # the EXIF tag
SOURCE_COLUMN = LANDMARK_SOURCE
#: the other landmark_source values (PRE_ALIGNED is a reader's, bench.data.samples)
DATASET, DETECTION, NONE = "dataset", "detection", "none"


@dataclass(frozen=True)
class DetectOptions:
    """``detector``: a name in :data:`~bench.detect.backends.DETECTORS`; ``model``: its
    model file or pack (insightface); images are resized for detection only (coordinates
    are scaled back), as detectors are trained on faces of moderate size in context:
    shrunk to ``max_side``, or enlarged to ``min_side`` (up to 4x) when a face crop fills
    a small frame (YuNet misses 14 % of the synthetic 112 px CFP images as they are, 5 %
    at 2x)."""

    detector: str = DEFAULT_DETECTOR
    model: str | None = None
    mode: str = "auto"
    max_side: int = 1280
    min_side: int = 224
    workers: int = 4

    def __post_init__(self):
        if self.mode not in DETECT_MODES:
            raise ConfigError(f"detection mode must be one of {', '.join(DETECT_MODES)}, "
                              f"got {self.mode!r}")
        if not 32 <= self.min_side <= self.max_side:
            raise ConfigError(f"need 32 <= min_side <= max_side, got {self.min_side}, "
                              f"{self.max_side}")
        # checked when given, not when first needed: a typo must not pass a run that
        # happens to detect nothing, and stand in its record as if it had been used
        if self.detector not in DETECTORS:
            raise ConfigError(DETECTORS.unknown_message(self.detector))
        if self.model is not None and not Path(self.model).expanduser().exists():
            raise DataError("detector model not found", self.model)


@dataclass
class DetectionReport:
    """What the stage did, for run records: counts and the samples with no face."""

    detector: dict
    mode: str
    n_samples: int = 0
    n_images: int = 0
    cache_hits: int = 0
    found: int = 0
    failures: list[dict] = field(default_factory=list)
    #: samples without usable landmarks left undetected (``--detect never``): they fall back
    undetected: int = 0
    #: images whose EXIF orientation asks viewers to turn them (path, orientation)
    exif_rotated: list[dict] = field(default_factory=list)

    def to_dict(self, max_listed: int = 50) -> dict:
        out = asdict(self)
        out["n_failures"] = len(self.failures)
        out["failures"] = self.failures[:max_listed]
        out["n_exif_rotated"] = len(self.exif_rotated)
        out["exif_rotated"] = self.exif_rotated[:max_listed]
        return out

    def summary(self) -> str:
        if self.undetected:
            n = self.undetected
            return (f"detection: off (--detect {self.mode}); {n} sample{'s' * (n != 1)} "
                    f"without usable landmarks fall{'s' * (n == 1)} back to "
                    f"{'its' if n == 1 else 'their'} box or the whole image")
        if self.n_samples == 0:
            return ("detection: not needed (every sample has usable landmarks, or the "
                    "template places none)")
        text = (f"detection ({self.detector.get('backend')}): {self.found} of "
                f"{self.n_samples} samples found ({self.cache_hits} of {self.n_images} images "
                f"from the cache)")
        if self.failures:
            text += f"; {self.failures_note()}"
        if self.exif_rotated:
            text += f"; {self.exif_note()}"
        return text

    def failures_note(self) -> str:
        """The samples without a face, in words: how many, and the first three images."""
        # several samples can share an image (IJB-A's frames): each is named once
        first_reason: dict[str, str] = {}
        for f in self.failures:
            first_reason.setdefault(f["path"], f["reason"])
        images = list(first_reason.items())
        first = "; ".join(f"{path} ({reason})" for path, reason in images[:3])
        n, k = len(self.failures), len(images)
        return (f"{n} sample{'s' * (n != 1)} without a face ({k} image{'s' * (k != 1)}), "
                f"{'each' if n != 1 else 'it'} kept its dataset landmarks, else its box or "
                f"the whole image: {first}" + " ..." * (k > 3))

    def exif_note(self) -> str:
        """The images with an EXIF rotation, in words ("" when none)."""
        return exif_note(self.exif_rotated)


def exif_rotated(paths: Sequence[str]) -> list[dict]:
    """``{"path", "orientation"}`` of the images among ``paths`` that carry an EXIF
    rotation (see :func:`exif_orientation`)."""
    return [{"path": str(p), "orientation": o} for p in paths
            if (o := exif_orientation(p)) != 1]


def exif_note(rotated: Sequence[dict]) -> str:
    """:func:`exif_rotated`'s images in words ("" when none)."""
    n = len(rotated)
    if n == 0:
        return ""
    first = ", ".join(f"{r['path']} ({EXIF_VIEWS.get(r['orientation'], 'turned')})"
                      for r in rotated[:3]) + " ..." * (n > 3)
    mirrored = sum(r["orientation"] in (2, 4, 5, 7) for r in rotated)
    return (f"{n} image{'s' * (n != 1)} with an EXIF rotation read as stored: {first}"
            + (f"; {mirrored} stored mirrored, so their yaw has the sign opposite to what a "
               "viewer sees" if mirrored else "")
            + " (turn the files upright, e.g. `exiftran -ai`)")


#: How a photo with each EXIF orientation is stored, against how viewers show it.
EXIF_VIEWS = {2: "mirrored", 3: "upside down", 4: "mirrored upside down",
              5: "mirrored and sideways", 6: "sideways", 7: "mirrored and sideways",
              8: "sideways"}


def exif_orientation(path: str) -> int:
    """The image's EXIF orientation (1: show as stored, also when it has none); reads the
    header only. Images are read as stored (bench.align.decode: datasets give points in
    that grid), so a phone photo stored sideways is detected and aligned sideways: the
    report lists those files rather than let a sideways "face" pass as found."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return int(img.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # a header PIL cannot parse: the decoder judges the file, not this
        return 1


def detection_scale(h: int, w: int, options: DetectOptions) -> float:
    if max(h, w) > options.max_side:
        return options.max_side / max(h, w)
    if min(h, w) < options.min_side:
        return min(4.0, options.min_side / min(h, w))
    return 1.0


def _decode(data: bytes, path: str, options: DetectOptions) -> tuple[np.ndarray, float, tuple]:
    image = decode_bgr(data, path)
    h, w = image.shape[:2]
    scale = detection_scale(h, w, options)
    if scale != 1.0:
        image = cv2.resize(image, (round(w * scale), round(h * scale)),
                           interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return image, scale, (w, h)


def _load(path: str, options: DetectOptions, cache: DetectionCache
          ) -> tuple[str, Faces | None, tuple]:
    """Runs on a worker thread: bytes, content hash, the cached answer or a decoded image."""
    data = read_bytes(path)
    sha = hashlib.sha256(data).hexdigest()
    cached = cache.get(sha)
    if cached is not None:
        return sha, cached, ()
    return sha, None, _decode(data, path, options)


def detect_images(paths: Sequence[str], detector: FaceDetector, *,
                  options: DetectOptions = DetectOptions(), cache_dir=None,
                  progress: bool = False) -> tuple[list[Faces], int]:
    """Faces of every image in ``paths`` (in order) and how many came from the cache.

    Files are read, hashed and decoded on ``options.workers`` threads ahead of the
    detector, which runs on the calling thread (OpenCV and onnxruntime use the cores).
    """
    # the resize policy changes what the detector sees, so it is part of the cache key
    cache = DetectionCache(cache_dir, detector.name, detector.digest(),
                           f"{options.min_side}-{options.max_side}-large{LARGE_FACE_PX}")
    out: list[Faces] = []
    hits = 0
    with ThreadPoolExecutor(max(1, options.workers)) as pool:
        loaded = _prefetch(pool, paths, options, cache, depth=4 * options.workers)
        bar = progress_bar(loaded, total=len(paths), enabled=progress,
                           desc=f"detect ({detector.name})")
        for sha, faces, decoded in bar:
            if faces is None:
                image, scale, size = decoded
                found = _detect_at_face_scale(detector, image, scale)
                faces = Faces(found.boxes, found.scores, found.points, size, found.scheme)
                cache.put(sha, faces)
                # what a later cache hit returns (rounded as stored): the first run and
                # every rerun align from the very same points
                faces = Faces.from_dict(faces.to_dict())
            else:
                hits += 1
            out.append(faces)
    return out, hits


#: A face taller or wider than this many detection pixels is detected again in the image
#: shrunk to put it at RETRY_FACE_PX, by a detector that ``misses_large_faces``: YuNet
#: (trained on WIDER FACE) returns shifted half faces scored 0.55-0.8 for faces over
#: ~450 px, so a 1024 px close-up or a 4000 px portrait got points a third of an eye
#: distance off, and a yaw that followed the file's resolution. SCRFD resizes every input
#: to its own size (shrinking first would only blur it). Smaller faces of the first pass
#: are kept (a group photo's background).
LARGE_FACE_PX = 320
RETRY_FACE_PX = 224


def _detect_at_face_scale(detector, image: np.ndarray, scale: float) -> Faces:
    """Faces of a decoded detection image (at ``scale`` of the file), in file pixels."""
    found = detector.detect(image).scaled(1.0 / scale)
    if not len(found) or not detector.misses_large_faces:
        return found
    sides = found.boxes[:, 2:].max(1) * scale  # detection pixels
    if sides.max() <= LARGE_FACE_PX:
        return found
    h, w = image.shape[:2]
    width = max(1, round(w * RETRY_FACE_PX / sides.max()))
    small = cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    again = detector.detect(small).scaled(1.0 / (scale * width / w))
    if not len(again):
        return found
    # the first pass's small faces, unless the second pass found them too
    x, y, bw, bh = (again.boxes[:, i][None] for i in range(4))
    cx = found.boxes[:, :1] + found.boxes[:, 2:3] / 2
    cy = found.boxes[:, 1:2] + found.boxes[:, 3:4] / 2
    inside = ((cx >= x) & (cx <= x + bw) & (cy >= y) & (cy <= y + bh)).any(1)
    keep = (sides <= LARGE_FACE_PX) & ~inside
    return Faces(np.concatenate([again.boxes, found.boxes[keep]]),
                 np.concatenate([again.scores, found.scores[keep]]),
                 np.concatenate([again.points, found.points[keep]]), found.image_size,
                 found.scheme)


def _prefetch(pool, paths, options, cache, depth) -> Iterator:
    """pool.map with a bounded look-ahead, so decoded images never pile up in memory."""
    pending = []
    it = iter(paths)
    for path in it:
        pending.append(pool.submit(_load, path, options, cache))
        if len(pending) >= depth:
            break
    for path in it:
        done = pending.pop(0)
        pending.append(pool.submit(_load, path, options, cache))
        yield done.result()
    for done in pending:
        yield done.result()


def landmark_sources(frame: pd.DataFrame, points: np.ndarray | None = None) -> np.ndarray:
    """(N,) where each sample's landmarks come from: the column when the reader set it,
    else ``dataset`` for samples with usable points of a known scheme, ``none`` otherwise.
    ``points``: the frame's canonical landmarks when the caller already has them."""
    if points is None:
        points, _ = canonical_landmarks(_landmark_column(frame))
    usable = np.isfinite(points).all(-1).sum(1) >= 2
    derived = np.where(usable, DATASET, NONE).astype(object)
    if SOURCE_COLUMN in frame:
        given = frame[SOURCE_COLUMN].to_numpy(dtype=object)
        keep = pd.notna(given) & (given != "")
        derived[keep] = given[keep]
    return derived


def _landmark_column(frame: pd.DataFrame) -> list:
    if "landmarks" not in frame:
        return [None] * len(frame)
    return [v if isinstance(v, np.ndarray) else None for v in frame["landmarks"].to_numpy()]


def face_hints(frame: pd.DataFrame, rows: np.ndarray,
               extents: np.ndarray | None = None) -> list[np.ndarray | None]:
    """Which face each of ``rows`` means (for :func:`~bench.detect.faces.choose_face`): the
    dataset's box, else the extent of its points (IJB-A's three, CFP's 30 of unknown
    order), else None (the largest central face). ``extents``: those rows' point extents
    when the caller already has them."""
    if extents is None:
        column = _landmark_column(frame)
        _, extents = canonical_landmarks([column[i] for i in rows])
    boxes = frame["box"].to_numpy(dtype=object)[rows] if "box" in frame \
        else [None] * len(rows)
    out = []
    for box, extent in zip(boxes, extents, strict=True):
        if isinstance(box, np.ndarray):
            out.append(np.asarray(box, np.float64))
        elif np.isfinite(extent).all():
            out.append(extent)
        else:
            out.append(None)
    return out


def needs_detection(frame: pd.DataFrame, uses_landmarks: bool, mode: str) -> np.ndarray:
    """(N,) bool: the samples the stage detects under ``mode`` for a template that
    does (``uses_landmarks``) or does not place landmarks."""
    return _to_detect(landmark_sources(frame), uses_landmarks, mode)


def _to_detect(sources: np.ndarray, uses_landmarks: bool, mode: str) -> np.ndarray:
    if mode == "never" or not uses_landmarks:
        return np.zeros(len(sources), bool)
    if mode == "always":
        return sources != PRE_ALIGNED
    return sources == NONE


def complete_landmarks(frame: pd.DataFrame, *, uses_landmarks: bool = True,
                       options: DetectOptions = DetectOptions(), cache_dir=None,
                       progress: bool = False,
                       detector: FaceDetector | None = None
                       ) -> tuple[pd.DataFrame, DetectionReport]:
    """A copy of ``frame`` whose samples without usable landmarks carry detected ones,
    with a ``landmark_source`` column, and the stage's report (see the module doc)."""
    frame = frame.copy()
    points, extents = canonical_landmarks(_landmark_column(frame))
    sources = landmark_sources(frame, points)
    todo = np.flatnonzero(_to_detect(sources, uses_landmarks, options.mode))
    if len(todo) == 0:
        frame[SOURCE_COLUMN] = sources
        undetected = int((sources == NONE).sum()) if uses_landmarks else 0
        return frame, DetectionReport({"backend": None}, options.mode, undetected=undetected)
    detector = detector or create_detector(options.detector, options.model)
    paths = frame["path"].to_numpy(dtype=object)[todo]
    unique, inverse = np.unique(paths.astype(str), return_inverse=True)
    try:
        found, hits = detect_images(list(unique), detector, options=options,
                                    cache_dir=cache_dir, progress=progress)
    except DataError as exc:
        raise at_listing(exc, frame) from None
    report = DetectionReport(detector.identity(), options.mode, len(todo), len(unique), hits)
    report.exif_rotated = exif_rotated(unique)
    landmarks = frame["landmarks"].to_numpy(dtype=object).copy() if "landmarks" in frame \
        else np.full(len(frame), None, dtype=object)
    boxes = frame["box"].to_numpy(dtype=object).copy() if "box" in frame \
        else np.full(len(frame), None, dtype=object)
    detected_box = np.full(len(frame), None, dtype=object)
    score = np.full(len(frame), np.nan)
    n_faces = np.full(len(frame), -1, dtype=np.int64)
    reasons = np.full(len(frame), "", dtype=object)
    for row, k, hint in zip(todo, inverse, face_hints(frame, todo, extents[todo]),
                            strict=True):
        faces = found[k]
        n_faces[row] = len(faces)
        index, reason = choose_face(faces, hint)
        if index is None:
            reasons[row] = f"{reason} ({detector.name})"
            if sources[row] == DATASET:  # --detect always: its own points still align it
                reasons[row] += "; aligned from the dataset's landmarks"
            else:
                sources[row] = NONE
            report.failures.append({"path": str(frame["path"].iat[row]), "reason": reasons[row]})
            continue
        landmarks[row] = faces.points[index].astype(np.float32)
        boxes[row] = faces.boxes[index].astype(np.float32) \
            if not isinstance(boxes[row], np.ndarray) else boxes[row]
        detected_box[row] = faces.boxes[index]
        score[row] = faces.scores[index]
        sources[row] = DETECTION
        report.found += 1
    frame["landmarks"] = landmarks
    frame["box"] = boxes
    frame[SOURCE_COLUMN] = sources
    frame["detection_box"] = list(detected_box)
    frame["detection_score"] = score
    frame["detection_faces"] = n_faces
    frame["detection_reason"] = reasons
    return frame, report


#: Columns of :func:`detection_table` (``bench detect``'s CSV).
TABLE_COLUMNS = ("path", "box", "landmarks", "score", "n_faces", "landmark_source", "reason")


def detection_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per sample of a :func:`complete_landmarks` output: :data:`TABLE_COLUMNS`.

    ``box`` is the chosen face's (the dataset's for samples not detected); ``landmarks``
    the five points ``x1 y1 ... x5 y5`` in the ``five`` scheme order (pupil_r, pupil_l,
    nose_tip, mouth_corner_r, mouth_corner_l), empty when the sample has no such five;
    ``score`` and ``n_faces`` the detector's (empty when not detected); ``reason`` why no
    face was chosen.
    """
    from ..face3d import FIVE_POINT

    points, _ = canonical_landmarks(_landmark_column(frame))
    five = points[:, list(FIVE_POINT)]
    detected = frame.get("detection_box", pd.Series([None] * len(frame))).to_numpy(dtype=object)
    boxes = [d if isinstance(d, np.ndarray) else b
             for d, b in zip(detected, frame["box"].to_numpy(dtype=object), strict=True)]
    score = frame.get("detection_score", pd.Series(np.nan, index=frame.index)).to_numpy()
    faces = frame.get("detection_faces", pd.Series(-1, index=frame.index)).to_numpy()
    return pd.DataFrame({
        "path": frame["path"].to_numpy(),
        "box": [_text(b, ".1f") for b in boxes],
        "landmarks": [_text(p, ".2f") for p in five],
        "score": ["" if not np.isfinite(v) else f"{v:.4f}" for v in score],
        "n_faces": ["" if v < 0 else str(int(v)) for v in faces],
        "landmark_source": frame[SOURCE_COLUMN].to_numpy(),
        "reason": frame.get("detection_reason", pd.Series("", index=frame.index)).to_numpy(),
    }, columns=list(TABLE_COLUMNS))


def _text(values, fmt: str) -> str:
    if not isinstance(values, np.ndarray) or not np.isfinite(values).all():
        return ""
    return " ".join(f"{v:{fmt}}" for v in np.asarray(values, np.float64).ravel())
