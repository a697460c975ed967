"""Face detection: a first-class, cached stage before alignment and head pose.

    frame, report = complete_landmarks(samples, options=DetectOptions(detector="yunet"))

See :mod:`bench.detect.stage` for the policy and :mod:`bench.detect.backends` for the
backends (``yunet`` default, ``insightface``, ``dlib``).
"""

from .backends import DEFAULT_DETECTOR, DETECTORS, FaceDetector, create_detector
from .faces import Faces, choose_face
from .stage import (
    DETECT_MODES,
    SOURCE_COLUMN,
    TABLE_COLUMNS,
    DetectionReport,
    DetectOptions,
    complete_landmarks,
    detect_images,
    detection_table,
    landmark_sources,
    needs_detection,
)

__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "DETECT_MODES", "SOURCE_COLUMN", "TABLE_COLUMNS",
           "DetectOptions", "DetectionReport", "FaceDetector", "Faces", "choose_face",
           "complete_landmarks", "create_detector", "detect_images", "detection_table",
           "landmark_sources", "needs_detection"]
