"""The vectorised PnP fit against OpenCV's per-face EPnP + Levenberg-Marquardt."""

import cv2
import numpy as np
from test_pose_pnp import SIZE, simulate

from bench.face3d import euler_from_matrix, mean_landmarks_3d, rotation_matrix
from bench.pose.pnp import _START_YAWS, camera_matrices, default_landmark_ids, estimate_pose


def _opencv_yaw(obj, img, cam):
    """Best of EPnP and the frontal / +-60 degree starts, each refined by OpenCV's LM."""
    candidates = []
    ok, rvec, tvec = cv2.solvePnP(obj, img, cam, None, flags=cv2.SOLVEPNP_EPNP)
    if ok and tvec[2, 0] > 0:
        candidates.append((rvec, tvec))
    z = cam[0, 0] * np.sqrt(((obj - obj.mean(0)) ** 2).sum(1).mean()) / np.sqrt(
        ((img - img.mean(0)) ** 2).sum(1).mean())
    t0 = np.append((img.mean(0) - cam[:2, 2]) * z / cam[0, 0], z)[:, None] - obj.mean(0)[:, None]
    candidates += [(cv2.Rodrigues(rotation_matrix(y))[0], t0.copy()) for y in _START_YAWS]
    best = (np.inf, np.nan)
    for rvec, tvec in candidates:
        rvec, tvec = cv2.solvePnPRefineLM(obj, img, cam, None, rvec, tvec)
        r = cv2.Rodrigues(rvec)[0]
        if tvec[2, 0] <= 0 or r[2, 2] < -0.25:
            continue
        proj = cv2.projectPoints(obj, rvec, tvec, cam, None)[0].reshape(-1, 2)
        err = np.sqrt(((proj - img) ** 2).sum(1).mean())
        if err < best[0]:
            best = (err, float(euler_from_matrix(r)[0]))
    return best


def test_vectorised_fit_matches_opencv_per_face():
    for points in (slice(None), [16, 17, 18, 19, 20]):
        uv, _, _, _ = simulate(150, seed=7)
        uv = np.ascontiguousarray(uv[:, points])
        fit = estimate_pose(uv, image_size=(SIZE, SIZE))
        obj = mean_landmarks_3d()[list(default_landmark_ids(uv.shape[1]))]
        cam = camera_matrices(np.array([[SIZE, SIZE]]))[0]
        ref = np.array([_opencv_yaw(obj, uv[i], cam) for i in range(len(uv))])
        np.testing.assert_allclose(fit.yaw, ref[:, 1], atol=0.05)
        np.testing.assert_allclose(fit.rms_px, ref[:, 0], rtol=1e-4)
