"""Head pose from 2D landmarks: PnP against the harness's 3D mean face (as in DREAM).

Each face is fitted with EPnP for the initial pose and Levenberg-Marquardt refinement of the
reprojection error (OpenCV ``solvePnP(SOLVEPNP_EPNP)`` then ``solvePnPRefineLM``); yaw, pitch
and roll follow from the rotation with :func:`bench.face3d.euler_from_matrix`, so they use the
same convention as the synthetic generator (``R = Rz(roll) Rx(pitch) Ry(yaw)``).

Camera: a pinhole with square pixels, no distortion, principal point at the image centre
``((W - 1) / 2, (H - 1) / 2)`` (pixel-centre convention, so a mirrored image gives exactly the
mirrored fit) and focal length ``focal_factor * max(W, H)`` pixels. The default factor 2.0
(a 28 degree field of view, a face crop seen from about 4 face heights) is a middle ground:
the crops and photos the harness meets are neither orthographic nor wide-angle, and yaw is
insensitive to the choice (see ``tests/test_pose_pnp.py``, which fits with the default while
the true focal length varies). Without an image size the landmarks' own bounding box (scaled
by 1.6, a typical crop margin) stands in for the image.

Two local minima are common for landmark PnP (the depth-flip ambiguity of nearly planar
point sets). Besides the EPnP start, the refinement also starts from frontal and from
+-60 degree yaw; the solution with the face towards the camera and the lowest reprojection
error wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import ConfigError
from ..face3d import DREAM21, FIVE_POINT, euler_from_matrix, mean_landmarks_3d, rotation_matrix

DEFAULT_FOCAL_FACTOR = 2.0
#: Image size assumed from the landmarks' extent when the image size is unknown.
BOX_TO_IMAGE = 1.6
#: Fewest points a fit accepts: EPnP needs 4; 5 leaves one degree of redundancy.
MIN_POINTS = 5
_START_YAWS = (0.0, 60.0, -60.0)
#: cos(yaw) of the most turned-away face accepted: a little past a full profile (105 deg).
_MIN_FACING = -0.25


@dataclass(frozen=True)
class PoseFit:
    """Per-face results, arrays of shape (N,): angles in degrees, error in pixels (RMS).

    Faces that could not be fitted (too few finite points, failure) have NaN everywhere.
    """

    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    rms_px: np.ndarray
    n_points: np.ndarray

    def __len__(self) -> int:
        return len(self.yaw)


def default_landmark_ids(n_points: int) -> tuple[int, ...]:
    """Which canonical landmarks a bare (K, 2) array holds, from its K (22, 21 or 5)."""
    by_count = {22: tuple(range(22)), 21: DREAM21, 5: FIVE_POINT}
    if n_points not in by_count:
        raise ConfigError(f"cannot tell which landmarks {n_points} points are: give landmark_ids "
                          "(indices into bench.face3d.LANDMARK_NAMES) or map them to the 22 "
                          "canonical points first (bench.align.schemes)")
    return by_count[n_points]


def camera_matrices(image_size: np.ndarray, focal_factor: float = DEFAULT_FOCAL_FACTOR
                    ) -> np.ndarray:
    """(N, 2) image (width, height) -> (N, 3, 3) intrinsics (see module doc)."""
    size = np.asarray(image_size, dtype=np.float64).reshape(-1, 2)
    if not np.all(size > 0):
        raise ConfigError("image sizes must be positive")
    k = np.zeros((len(size), 3, 3))
    k[:, 0, 0] = k[:, 1, 1] = focal_factor * size.max(1)
    k[:, 0, 2] = (size[:, 0] - 1) / 2
    k[:, 1, 2] = (size[:, 1] - 1) / 2
    k[:, 2, 2] = 1.0
    return k


def _frames_from_landmarks(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stand-in image frames (offset, size) around each face's finite landmarks."""
    with np.errstate(invalid="ignore"):
        lo, hi = np.nanmin(points, axis=1), np.nanmax(points, axis=1)
    centre = (lo + hi) / 2
    side = BOX_TO_IMAGE * np.nanmax(hi - lo, axis=1, keepdims=True).repeat(2, 1)
    return centre - (side - 1) / 2, side


def estimate_pose(points: np.ndarray, landmark_ids: Sequence[int] | None = None,
                  image_size: Sequence[float] | np.ndarray | None = None,
                  focal_factor: float = DEFAULT_FOCAL_FACTOR,
                  model_points: np.ndarray | None = None) -> PoseFit:
    """Fit head pose to landmarks.

    ``points``: (N, K, 2) or (K, 2) pixel coordinates, NaN for absent points;
    ``landmark_ids``: the canonical landmark (index into ``bench.face3d.LANDMARK_NAMES``) of
    each of the K columns, inferred for K in (22, 21, 5); ``image_size``: (W, H) for all faces
    or (N, 2) per face, None to frame each face by its landmarks; ``model_points``: the 3D face
    to fit (default :func:`bench.face3d.mean_landmarks_3d`, in canonical order).
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim == 2:
        pts = pts[None]
    if pts.ndim != 3 or pts.shape[-1] != 2:
        raise ConfigError(f"landmarks must be shaped (N, K, 2) or (K, 2), got {points.shape}")
    n, k = pts.shape[:2]
    ids = np.asarray(default_landmark_ids(k) if landmark_ids is None else landmark_ids)
    model = mean_landmarks_3d() if model_points is None else np.asarray(model_points, float)
    if ids.shape != (k,) or ids.min(initial=0) < 0 or ids.max(initial=0) >= len(model):
        raise ConfigError(f"landmark_ids must give one index < {len(model)} per point ({k})")
    obj = model[ids]

    if image_size is None:
        offset, size = _frames_from_landmarks(pts)
        pts = pts - offset[:, None, :]
    else:
        size = np.broadcast_to(np.asarray(image_size, dtype=np.float64).reshape(-1, 2), (n, 2))
    cams = camera_matrices(size, focal_factor)

    rot = np.full((n, 3, 3), np.nan)
    rms = np.full(n, np.nan)
    finite = np.isfinite(pts).all(-1)
    counts = finite.sum(1)
    starts = [cv2.Rodrigues(rotation_matrix(y))[0] for y in _START_YAWS]
    for i in np.flatnonzero(counts >= MIN_POINTS):  # OpenCV's PnP takes one face per call
        rot[i], rms[i] = _fit_one(obj[finite[i]], pts[i, finite[i]], cams[i], starts)
    yaw, pitch, roll = euler_from_matrix(rot)
    return PoseFit(yaw, pitch, roll, rms, counts)


def _fit_one(obj: np.ndarray, img: np.ndarray, cam: np.ndarray,
             starts: list[np.ndarray]) -> tuple[np.ndarray, float]:
    obj = np.ascontiguousarray(obj, dtype=np.float64)
    img = np.ascontiguousarray(img, dtype=np.float64)
    candidates = []
    ok, rvec, tvec = cv2.solvePnP(obj, img, cam, None, flags=cv2.SOLVEPNP_EPNP)
    if ok and np.all(np.isfinite(rvec)) and np.all(np.isfinite(tvec)) and tvec[2, 0] > 0:
        candidates.append((rvec, tvec))
    # Other starts: the face's scale gives its distance; centred on the landmarks' centroid.
    spread = np.sqrt(((obj - obj.mean(0)) ** 2).sum(1).mean())
    spread_px = np.sqrt(((img - img.mean(0)) ** 2).sum(1).mean())
    z = cam[0, 0] * spread / max(spread_px, 1e-6)
    centre = (img.mean(0) - cam[:2, 2]) * z / cam[0, 0]
    tvec0 = np.array([[centre[0]], [centre[1]], [z]]) - obj.mean(0)[:, None]
    candidates += [(r.copy(), tvec0.copy()) for r in starts]
    best = (np.full((3, 3), np.nan), np.inf)
    for rvec, tvec in candidates:
        rvec, tvec = cv2.solvePnPRefineLM(obj, img, cam, None, rvec, tvec)
        r = cv2.Rodrigues(rvec)[0]
        if tvec[2, 0] <= 0 or r[2, 2] < _MIN_FACING:  # behind the camera, or facing away
            continue
        proj = cv2.projectPoints(obj, rvec, tvec, cam, None)[0].reshape(-1, 2)
        err = float(np.sqrt(((proj - img) ** 2).sum(1).mean()))
        if err < best[1]:
            best = (r, err)
    return best[0], (best[1] if np.isfinite(best[1]) else np.nan)
