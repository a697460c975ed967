"""dlib's face detector and 68-point shape predictor, offline from PyPI packages.

``dlib-bin`` provides dlib, ``face-recognition-models`` its model files (extra ``dlib``).
Faces are found by the HOG + linear SVM frontal detector (default: fast on a CPU, frontal
and moderately turned faces only) or, with ``cnn=True``, by the MMOD CNN detector
(``mmod_human_face_detector.dat``: slower, finds more turned faces). The 68 points of
``shape_predictor_68_face_landmarks.dat`` (iBUG 300-W order) are converted to the canonical
landmarks with the ``ibug68`` scheme.

Scores are not probabilities: for HOG the SVM margin that ``detector.run`` returns (faces
above ``threshold``; 0 is dlib's own operating point, lower finds more faces and more
false ones), for MMOD the network's detection confidence (dlib keeps those above 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..align.schemes import SCHEMES
from ..errors import ConfigError, DataError
from ..fileio import sha256_file
from ..models.dlib_stem import dlib_model_file, require_dlib
from .backends import FaceDetector
from .faces import Faces

PREDICTOR_FILE = "models/shape_predictor_68_face_landmarks.dat"
MMOD_FILE = "models/mmod_human_face_detector.dat"


class DlibDetector(FaceDetector):
    """``model``: a 68-point shape predictor ``.dat`` (default: the packaged one);
    ``upsample``: times the image is doubled before detection (finds faces down to about
    40 px at 1, 80 px at 0)."""

    name = "dlib"
    scheme = "ibug68"

    def __init__(self, model: str | None = None, upsample: int = 1, cnn: bool = False,
                 threshold: float = 0.0):
        dlib = require_dlib()
        if int(upsample) != upsample or upsample < 0:
            raise ConfigError(f"upsample must be a non-negative integer, got {upsample!r}")
        self.upsample = int(upsample)
        self.cnn = bool(cnn)
        self.threshold = float(threshold)
        self.predictor_path = (Path(model).expanduser() if model else
                               dlib_model_file(PREDICTOR_FILE, "the dlib detector"))
        if not self.predictor_path.is_file():
            raise DataError("dlib shape predictor file not found", self.predictor_path)
        try:
            self.predictor = dlib.shape_predictor(str(self.predictor_path))
        except RuntimeError as exc:
            raise DataError(f"cannot load as a dlib shape predictor ({exc})",
                            self.predictor_path) from exc
        self._hashes = {"predictor_sha256": sha256_file(self.predictor_path)}
        if self.cnn:
            path = dlib_model_file(MMOD_FILE, "the dlib CNN detector")
            self.detector = dlib.cnn_face_detection_model_v1(str(path))
            self._hashes["detector_sha256"] = sha256_file(path)
        else:
            self.detector = dlib.get_frontal_face_detector()
        self._dlib_version = dlib.__version__
        n = self.predictor(np.zeros((8, 8, 3), np.uint8), dlib.rectangle(0, 0, 7, 7)).num_parts
        if n != 68:
            raise DataError(f"expected a 68-point shape predictor, this one gives {n} points",
                            self.predictor_path)

    def identity(self) -> dict:
        # dlib's version too: the HOG detector is compiled into it, it has no model file.
        return {"backend": self.name, "detector": "mmod" if self.cnn else "hog",
                **self._hashes, "upsample": self.upsample, "threshold": self.threshold,
                "dlib": self._dlib_version}

    def _boxes(self, rgb: np.ndarray) -> tuple[list, np.ndarray]:
        if self.cnn:
            found = [d for d in self.detector(rgb, self.upsample)
                     if d.confidence >= self.threshold]
            return [d.rect for d in found], np.array([d.confidence for d in found])
        rects, scores, _ = self.detector.run(rgb, self.upsample, self.threshold)
        return list(rects), np.asarray(scores, np.float64)

    def detect(self, image_bgr: np.ndarray) -> Faces:
        h, w = image_bgr.shape[:2]
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
            raise ConfigError(f"expected an (H, W, 3) uint8 BGR image, got "
                              f"{image_bgr.shape} {image_bgr.dtype}")
        rgb = np.ascontiguousarray(image_bgr[..., ::-1])  # dlib wants contiguous RGB
        rects, scores = self._boxes(rgb)
        if not rects:
            return Faces.none((w, h), self.scheme)
        # dlib rectangles are inclusive pixel ranges: width = right - left + 1.
        boxes = np.array([[r.left(), r.top(), r.width(), r.height()] for r in rects],
                         np.float64)
        raw = np.array([[(p.x, p.y) for p in self.predictor(rgb, r).parts()] for r in rects],
                       np.float64)
        points = SCHEMES.get("ibug68").to_canonical(raw)
        return Faces(boxes, scores.reshape(-1), points, (w, h), self.scheme)
