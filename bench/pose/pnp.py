"""Head pose from 2D landmarks: PnP against the harness's 3D mean face (as in DREAM).

Every face is fitted by Levenberg-Marquardt minimisation of the reprojection error (as
OpenCV's ``solvePnPRefineLM``), vectorised over all faces at once: OpenCV's PnP takes one
face per call, about 2 ms each, which is a quarter of an hour for IJB-C's 469,375 crops.
The two agree to 0.02 degrees of yaw (checked when this replaced the per-face OpenCV fit).
Yaw, pitch and roll follow from the rotation with :func:`bench.face3d.euler_from_matrix`, so
they use the same convention as the synthetic generator (``R = Rz(roll) Rx(pitch) Ry(yaw)``).

Camera: a pinhole with square pixels, no distortion, principal point at the image centre
(the pose of a boxed face is then turned to the line of sight through its box centre)
``((W - 1) / 2, (H - 1) / 2)`` (pixel-centre convention, so a mirrored image gives exactly the
mirrored fit) and focal length ``focal_factor * max(W, H)`` pixels. The default factor 2.0
(a 28 degree field of view, a face crop seen from about 4 face heights) is a middle ground:
the crops and photos the harness meets are neither orthographic nor wide-angle, and yaw is
insensitive to the choice (see ``tests/test_pose_pnp.py``, which fits with the default while
the true focal length varies). Without an image size the landmarks' own bounding box (scaled
by 1.6, a typical crop margin) stands in for the image.

Two local minima are common for landmark PnP (the depth-flip ambiguity of nearly planar
point sets). The refinement starts from frontal and from +-60 degree yaw, at the distance
the face's size gives; the solution with the face towards the camera and the lowest
reprojection error wins.
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
                  model_points: np.ndarray | None = None,
                  principal_point: np.ndarray | None = None) -> PoseFit:
    """Fit head pose to landmarks.

    ``points``: (N, K, 2) or (K, 2) pixel coordinates, NaN for absent points;
    ``landmark_ids``: the canonical landmark (index into ``bench.face3d.LANDMARK_NAMES``) of
    each of the K columns, inferred for K in (22, 21, 5); ``image_size``: (W, H) for all faces
    or (N, 2) per face, None to frame each face by its landmarks; ``model_points``: the 3D face
    to fit (default :func:`bench.face3d.mean_landmarks_3d`, in canonical order).
    ``principal_point``: (N, 2) or (2,) pixel per face (NaN: none), with ``image_size``:
    the pose is given against the line of sight through that pixel (a face's box centre:
    as the face looks in its own crop) rather than against the photo's optical axis, off
    which a face near a group photo's edge that looks into the camera is turned by the
    angle it is seen under (12 degrees 550 px off the centre of a 1280 px photo).
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

    framed = np.ones(n, bool)
    if image_size is None:
        offset, size = _frames_from_landmarks(pts)
        pts = pts - offset[:, None, :]
        # points with no extent frame no face: no pose, rather than failing every face
        framed = (size > 0).all(1)
        size = np.where(framed[:, None], size, 1.0)
    else:
        size = np.broadcast_to(np.asarray(image_size, dtype=np.float64).reshape(-1, 2), (n, 2))
    cams = camera_matrices(size, focal_factor)

    rot = np.full((n, 3, 3), np.nan)
    rms = np.full(n, np.nan)
    finite = np.isfinite(pts).all(-1)
    counts = finite.sum(1)
    todo = (counts >= MIN_POINTS) & framed
    if todo.any():
        rot[todo], rms[todo] = _fit_all(obj, pts[todo], finite[todo], cams[todo])
    if principal_point is not None and image_size is not None:
        rot = _towards(rot, principal_point, cams)
    yaw, pitch, roll = euler_from_matrix(rot)
    return PoseFit(yaw, pitch, roll, rms, counts)


def _towards(rot: np.ndarray, point, cams: np.ndarray) -> np.ndarray:
    """(N, 3, 3) head rotations in the camera frame -> in the frame whose z axis is the
    line of sight through ``point`` (N, 2) pixels (NaN rows: left as they are)."""
    point = np.broadcast_to(np.asarray(point, np.float64), (len(rot), 2))
    ray = np.concatenate([(point - cams[:, :2, 2]) / cams[:, [0, 1], [0, 1]],
                          np.ones((len(rot), 1))], axis=1)
    ray /= np.linalg.norm(ray, axis=1, keepdims=True)
    # the rotation taking the optical axis (0, 0, 1) onto the ray: about z x ray
    axis = np.stack([-ray[:, 1], ray[:, 0], np.zeros(len(ray))], axis=1)
    angle = np.arccos(np.clip(ray[:, 2], -1.0, 1.0))
    norm = np.linalg.norm(axis, axis=1, keepdims=True)
    turn = rodrigues(np.where(norm > 0, axis / np.maximum(norm, 1e-12), 0.0) * angle[:, None])
    out = np.einsum("nji,njk->nik", turn, rot)
    given = np.isfinite(point).all(axis=1)
    return np.where(given[:, None, None], out, rot)


def rodrigues(rvec: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle vectors -> (..., 3, 3) rotation matrices (OpenCV's Rodrigues)."""
    theta = np.linalg.norm(rvec, axis=-1, keepdims=True)
    k = rvec / np.maximum(theta, 1e-12)
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    zero = np.zeros_like(kx)
    cross = np.stack([np.stack([zero, -kz, ky], -1), np.stack([kz, zero, -kx], -1),
                      np.stack([-ky, kx, zero], -1)], -2)
    th = theta[..., None]
    eye = np.broadcast_to(np.eye(3), cross.shape)
    return eye + np.sin(th) * cross + (1 - np.cos(th)) * (cross @ cross)


def _project(params: np.ndarray, obj: np.ndarray, cams: np.ndarray) -> np.ndarray:
    """(M, 6) [rvec, tvec] -> (M, K, 2) pixel projections of (K, 3) or (M, K, 3) points."""
    cam_pts = np.einsum("mij,mkj->mki", rodrigues(params[:, :3]),
                        np.broadcast_to(obj, (len(params), *obj.shape[-2:])))
    cam_pts = cam_pts + params[:, None, 3:]
    z = np.where(np.abs(cam_pts[..., 2:]) < 1e-9, 1e-9, cam_pts[..., 2:])
    return (cam_pts[..., :2] / z) * cams[:, None, [0, 1], [0, 1]] + cams[:, None, :2, 2]


def _lm(params, obj, img, weight, cams, iterations: int = 50, tol: float = 1e-12):
    """Levenberg-Marquardt on the reprojection error of every face at once (numerical
    Jacobian), each face with its own damping; ``weight`` (M, K) is 0 for absent points.
    A face leaves the iteration once a step no longer lowers its cost by ``tol``
    (relative) with little damping, so the work shrinks as faces converge."""
    def residual(p, rows):
        diff = _project(p, obj, cams[rows]) - img[rows]
        return (diff * weight[rows][..., None]).reshape(len(p), -1)

    steps = np.array([1e-6] * 3 + [1e-4] * 3)
    eye = np.eye(6)
    params = params.copy()
    everyone = np.arange(len(params))
    r = residual(params, everyone)
    cost = (r ** 2).sum(1)
    lam = np.full(len(params), 1e-3)
    active = everyone
    for _ in range(iterations):
        if not active.size:
            break
        p, ra = params[active], r[active]
        jac = np.stack([(residual(p + eye[i] * steps[i], active) - ra) / steps[i]
                        for i in range(6)], -1)                          # (A, 2K, 6)
        jt = jac.transpose(0, 2, 1)
        jtj, jtr = jt @ jac, jt @ ra[..., None]
        damped = jtj + lam[active, None, None] * (eye * np.diagonal(jtj, 0, 1, 2)[:, None, :]
                                                  + 1e-9 * eye)
        trial = p - np.linalg.solve(damped, jtr)[..., 0]
        r_new = residual(trial, active)
        cost_new = (r_new ** 2).sum(1)
        old = cost[active]
        better = np.isfinite(cost_new) & (cost_new < old)
        params[active] = np.where(better[:, None], trial, p)
        r[active] = np.where(better[:, None], r_new, ra)
        cost[active] = np.where(better, cost_new, old)
        lam[active] = np.clip(np.where(better, lam[active] / 10, lam[active] * 10), 1e-9, 1e9)
        gain = (old - cost[active]) / np.maximum(old, 1e-30)
        done = (better & (gain < tol)) | (lam[active] >= 1e9)
        active = active[~done]
    return params, cost


def _fit_all(obj: np.ndarray, img: np.ndarray, finite: np.ndarray, cams: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, 3) rotations and (N,) RMS errors of N faces, fitted together from each start
    of ``_START_YAWS``; the start with the face towards the camera and the lowest error wins.
    Faces are fitted in blocks to bound memory (a block's arrays hold ~ 1M numbers)."""
    n, k = finite.shape
    weight = finite.astype(np.float64)
    img = np.where(finite[..., None], img, 0.0)
    count = np.maximum(finite.sum(1), 1)
    # The face's scale gives its distance; centred on the landmarks' centroid.
    centroid = (img * weight[..., None]).sum(1) / count[:, None]
    obj_c = obj - obj.mean(0)
    spread = np.sqrt(((obj_c[None] ** 2).sum(-1) * weight).sum(1) / count)
    spread_px = np.sqrt((((img - centroid[:, None]) ** 2).sum(-1) * weight).sum(1) / count)
    focal = cams[:, 0, 0]
    z = focal * spread / np.maximum(spread_px, 1e-6)
    t0 = np.stack([(centroid[:, 0] - cams[:, 0, 2]) * z / focal,
                   (centroid[:, 1] - cams[:, 1, 2]) * z / focal, z], 1) - obj.mean(0)
    best_rot = np.full((n, 3, 3), np.nan)
    best_err = np.full(n, np.inf)
    block = max(1, 1_000_000 // (k * 6 * 2))
    for yaw0 in _START_YAWS:
        r0 = cv2.Rodrigues(rotation_matrix(yaw0))[0].ravel()
        for lo in range(0, n, block):
            sl = slice(lo, lo + block)
            start = np.concatenate([np.broadcast_to(r0, (len(z[sl]), 3)), t0[sl]], 1)
            params, cost = _lm(start, obj, img[sl], weight[sl], cams[sl])
            rot = rodrigues(params[:, :3])
            err = np.sqrt(cost / count[sl])
            ok = (params[:, 5] > 0) & (rot[:, 2, 2] >= _MIN_FACING) & (err < best_err[sl])
            best_rot[sl] = np.where(ok[:, None, None], rot, best_rot[sl])
            best_err[sl] = np.where(ok, err, best_err[sl])
    return best_rot, np.where(np.isfinite(best_err), best_err, np.nan)
