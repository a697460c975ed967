"""What a face detector returns for one image, and which of its faces a sample means.

Points are kept in the harness's canonical landmark order (:mod:`bench.face3d`, 22 points,
NaN where a backend gives no such point), so a 5-point detector, dlib's 68-point predictor
and a dataset's own fiducials all reach the alignment and the pose fit in one form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..face3d import LANDMARK_NAMES

N_CANONICAL = len(LANDMARK_NAMES)
#: A dataset box whose best detection overlaps it less than this (IoU) and whose centre
#: is farther than one box size away is "another face": the sample keeps its box.
MIN_HINT_IOU = 0.1


@dataclass(frozen=True)
class Faces:
    """Detections in one image.

    ``boxes`` (M, 4) x, y, w, h; ``scores`` (M,); ``points`` (M, 22, 2) canonical landmarks
    in image pixels (NaN where absent); ``image_size`` (width, height) of the decoded image;
    ``scheme`` names the backend's own point set (``five``, ``ibug68``, ...), recorded so
    a pose fit can say what it fitted.
    """

    boxes: np.ndarray
    scores: np.ndarray
    points: np.ndarray
    image_size: tuple[int, int]
    scheme: str

    def __post_init__(self):
        m = len(self.boxes)
        if self.boxes.shape != (m, 4) or self.scores.shape != (m,) \
                or self.points.shape != (m, N_CANONICAL, 2):
            raise ValueError(f"inconsistent detections: boxes {self.boxes.shape}, scores "
                             f"{self.scores.shape}, points {self.points.shape}")

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def none(cls, image_size: tuple[int, int], scheme: str) -> Faces:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros((0, N_CANONICAL, 2)),
                   (int(image_size[0]), int(image_size[1])), scheme)

    def scaled(self, factor: float) -> Faces:
        """Coordinates of an image resized by ``factor`` (detection ran on a resized image).

        Pixel centres are at integers (OpenCV's resize convention), so a point maps as
        ``(x + 0.5) * factor - 0.5``; box sizes scale by ``factor``.
        """
        if factor == 1.0:
            return self
        boxes = self.boxes.copy()
        boxes[:, :2] = (boxes[:, :2] + 0.5) * factor - 0.5
        boxes[:, 2:] *= factor
        return Faces(boxes, self.scores, (self.points + 0.5) * factor - 0.5, self.image_size,
                     self.scheme)

    def to_dict(self) -> dict:
        return {"image_size": list(self.image_size), "scheme": self.scheme,
                "boxes": np.round(self.boxes, 3).tolist(),
                "scores": np.round(self.scores, 5).tolist(),
                "points": [[None if not np.isfinite(p).all() else [round(float(p[0]), 3),
                                                                   round(float(p[1]), 3)]
                            for p in face] for face in self.points]}

    @classmethod
    def from_dict(cls, data: dict) -> Faces:
        m = len(data["boxes"])
        points = np.full((m, N_CANONICAL, 2), np.nan)
        for i, face in enumerate(data["points"]):
            for j, p in enumerate(face):
                if p is not None:
                    points[i, j] = p
        return cls(np.asarray(data["boxes"], np.float64).reshape(m, 4),
                   np.asarray(data["scores"], np.float64).reshape(m), points,
                   tuple(int(v) for v in data["image_size"]), str(data["scheme"]))


def iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(M, 4) and (4,) x, y, w, h -> (M,) intersection over union."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    lo = np.maximum(boxes[:, :2], box[:2])
    hi = np.minimum(boxes[:, :2] + boxes[:, 2:], box[:2] + box[2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    union = boxes[:, 2] * boxes[:, 3] + box[2] * box[3] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def choose_face(faces: Faces, hint: np.ndarray | None) -> tuple[int | None, str]:
    """Which detection a sample means: ``(index, "")`` or ``(None, reason)``.

    With a ``hint`` box (the dataset's box, or the extent of its points) the detection that
    overlaps it most, else the one whose centre is nearest (within one hint size); without
    one, the largest central face: the largest ``area - 2 * offset^2``, ``offset`` being the
    distance of the box centre from the image centre (insightface's rule for "the main face").
    """
    if len(faces) == 0:
        return None, "no face found"
    boxes = faces.boxes
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    if hint is not None and np.all(np.isfinite(hint)) and hint[2] > 0 and hint[3] > 0:
        hint = np.asarray(hint, np.float64)
        overlap = iou(boxes, hint)
        best = int(np.argmax(overlap))
        if overlap[best] >= MIN_HINT_IOU:
            return best, ""
        dist = np.linalg.norm(centres - (hint[:2] + hint[2:] / 2), axis=1)
        best = int(np.argmin(dist))
        if dist[best] <= max(hint[2], hint[3]):
            return best, ""
        return None, f"no face near the dataset's box ({len(faces)} found elsewhere)"
    w, h = faces.image_size
    offset2 = np.sum((centres - np.array([w / 2, h / 2])) ** 2, axis=1)
    return int(np.argmax(boxes[:, 2] * boxes[:, 3] - 2.0 * offset2)), ""
