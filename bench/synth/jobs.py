"""Units of rendering work: one identity with all of its images, run in a worker process.

A job carries only seeds and poses, so results are identical whichever worker runs it and
in whatever order; the worker writes the image files and returns small per-image records.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .config import Difficulty
from .identity import make_identity
from .render import Pose, render, sample_nuisance


@dataclass(frozen=True)
class ImageJob:
    path: str                              # relative to the dataset root
    pose: Pose
    seed: tuple[int, ...]                  # nuisance of this image
    scene: tuple[int, ...] | None = None   # video frames share a scene (light, background)
    fiducials: str | None = None           # also write CFP-style "x,y" lines here


@dataclass(frozen=True)
class IdentityJob:
    seed: tuple[int, ...]
    images: tuple[ImageJob, ...]


@dataclass(frozen=True)
class ImageResult:
    landmarks: np.ndarray    # (22, 2) float32
    visible: np.ndarray      # (22,) bool
    box: np.ndarray          # (4,) float32
    occluded_eyes: bool      # sunglasses
    covered_forehead: bool   # hat or fringe
    occluder: bool


@dataclass(frozen=True)
class IdentityResult:
    masculine: float
    skin_tone: int
    beard: float
    images: tuple[ImageResult, ...]


def _encode(image: np.ndarray, path: str, quality: int) -> bytes:
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if path.endswith(".png"):
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    else:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality,
                                             cv2.IMWRITE_JPEG_OPTIMIZE, 0])
    if not ok:  # pragma: no cover - OpenCV without codecs is a broken install
        raise RuntimeError(f"OpenCV could not encode {path}")
    return buf.tobytes()


def fiducial_text(landmarks: np.ndarray) -> str:
    return "".join(f"{x:.2f},{y:.2f}\n" for x, y in landmarks)


def run_job(job: IdentityJob, difficulty: Difficulty, root: str) -> IdentityResult:
    """Render and write every image of one identity below ``root``."""
    cv2.setNumThreads(1)
    identity = make_identity(job.seed, difficulty)
    out = []
    for image in job.images:
        rng = np.random.default_rng(image.seed)
        nuisance = sample_nuisance(rng, difficulty)
        if image.scene is not None:
            # A video: light, background, expression and hair stay; framing and noise change.
            scene = sample_nuisance(np.random.default_rng(image.scene), difficulty)
            nuisance = dataclasses.replace(scene, shift_px=nuisance.shift_px,
                                           noise_sigma=nuisance.noise_sigma,
                                           jpeg_quality=nuisance.jpeg_quality)
        result = render(identity, image.pose, nuisance)
        target = Path(root, image.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_encode(result.image, image.path, nuisance.jpeg_quality))
        if image.fiducials is not None:
            fid = Path(root, image.fiducials)
            fid.parent.mkdir(parents=True, exist_ok=True)
            fid.write_text(fiducial_text(result.landmarks), encoding="ascii")
        out.append(ImageResult(
            landmarks=result.landmarks.astype(np.float32), visible=result.visible,
            box=result.box.astype(np.float32), occluded_eyes=nuisance.sunglasses,
            covered_forehead=nuisance.hat is not None or nuisance.fringe > 0,
            occluder=bool(nuisance.occluder)))
    app = identity.appearance
    return IdentityResult(masculine=app.masculine, skin_tone=app.skin_tone, beard=app.beard,
                          images=tuple(out))
