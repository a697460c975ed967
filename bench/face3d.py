"""The harness's canonical facial landmarks and head-pose convention, shared by the
synthetic generator (which renders them) and the head-pose estimator (which fits them).

Landmarks follow the 21-point order of the DREAM authors' PnP mean face, plus a chin point.
Coordinates are in millimetres in the head frame: x to the image's right for a frontal
face (the subject's left), y down, z away from the camera, origin between the pupils.
The values are our own anthropometric averages; a test checks them against the authors'
mean face (up to a similarity transform) when ``../shared/reference`` is present.

Pose convention: a head-frame point ``p`` appears in camera coordinates as
``R(yaw, pitch, roll) @ p + t`` with ``R = Rz(roll) @ Rx(pitch) @ Ry(yaw)``, angles in degrees.
Positive yaw moves the nose tip towards the image's left (-x); a horizontally flipped
image therefore has negated yaw (and negated roll), same pitch.
"""

from __future__ import annotations

import numpy as np

LANDMARK_NAMES: tuple[str, ...] = (
    "brow_outer_r", "brow_mid_r", "brow_inner_r",       # image-left brow (subject's right)
    "brow_inner_l", "brow_mid_l", "brow_outer_l",
    "eye_outer_r", "eye_inner_r", "eye_inner_l", "eye_outer_l",
    "nose_wing_r", "subnasale", "nose_wing_l",
    "upper_lip", "mouth_centre", "lower_lip",
    "pupil_r", "pupil_l",
    "nose_tip",
    "mouth_corner_r", "mouth_corner_l",
    "chin",
)

#: Index lists of common subsets (pupils, nose tip, mouth corners is the ArcFace 5-point set).
DREAM21 = tuple(range(21))
FIVE_POINT = (16, 17, 18, 19, 20)

#: Mirror permutation: landmark i of a flipped face is landmark MIRROR[i] of the original.
MIRROR: tuple[int, ...] = (5, 4, 3, 2, 1, 0, 9, 8, 7, 6, 12, 11, 10, 13, 14, 15, 17, 16, 18, 20,
                           19, 21)

_HALF = {  # x >= 0 side given once; the other side is mirrored
    "brow_outer": (54.0, -21.0, 9.0),
    "brow_mid": (36.0, -25.0, 1.0),
    "brow_inner": (16.0, -20.0, -5.0),
    "eye_outer": (45.0, 1.0, 5.0),
    "eye_inner": (17.0, 1.5, 0.0),
    "nose_wing": (17.0, 40.0, -8.0),
    "pupil": (31.5, 0.0, -2.0),
    "mouth_corner": (24.0, 71.0, 0.0),
}
_MID = {
    "subnasale": (0.0, 46.0, -14.0),
    "upper_lip": (0.0, 61.0, -13.0),
    "mouth_centre": (0.0, 70.0, -11.0),
    "lower_lip": (0.0, 79.0, -11.5),
    "nose_tip": (0.0, 33.0, -22.0),
    "chin": (0.0, 112.0, -8.0),
}


def mean_landmarks_3d() -> np.ndarray:
    """(22, 3) float64 mean-face landmarks in mm, in :data:`LANDMARK_NAMES` order."""
    out = []
    for name in LANDMARK_NAMES:
        if name in _MID:
            out.append(_MID[name])
            continue
        base, side = name[:-2], name[-1]
        x, y, z = _HALF[base]
        out.append((-x if side == "r" else x, y, z))
    return np.asarray(out, dtype=np.float64)


def rotation_matrix(yaw: float | np.ndarray, pitch: float | np.ndarray = 0.0,
                    roll: float | np.ndarray = 0.0) -> np.ndarray:
    """Rotation(s) ``Rz(roll) @ Rx(pitch) @ Ry(yaw)``; angles in degrees, broadcastable.

    Returns shape ``(..., 3, 3)``.
    """
    y, p, r = (np.deg2rad(np.asarray(a, dtype=np.float64)) for a in (yaw, pitch, roll))
    y, p, r = np.broadcast_arrays(y, p, r)
    cy, sy, cp, sp, cr, sr = np.cos(y), np.sin(y), np.cos(p), np.sin(p), np.cos(r), np.sin(r)
    one, zero = np.ones_like(y), np.zeros_like(y)
    ry = np.stack([np.stack([cy, zero, sy], -1), np.stack([zero, one, zero], -1),
                   np.stack([-sy, zero, cy], -1)], -2)
    rx = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, cp, -sp], -1),
                   np.stack([zero, sp, cp], -1)], -2)
    rz = np.stack([np.stack([cr, -sr, zero], -1), np.stack([sr, cr, zero], -1),
                   np.stack([zero, zero, one], -1)], -2)
    return rz @ rx @ ry


def euler_from_matrix(rot: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`rotation_matrix`: (yaw, pitch, roll) in degrees for ``(..., 3, 3)``.

    Unique for |pitch| < 90 degrees, which holds for faces.
    """
    rot = np.asarray(rot, dtype=np.float64)
    # R = Rz Rx Ry: R[2,1] = sin(pitch); R[2,0] = -cos(p) sin(y); R[2,2] = cos(p) cos(y);
    # R[0,1] = -sin(r) cos(p); R[1,1] = cos(r) cos(p).
    pitch = np.arcsin(np.clip(rot[..., 2, 1], -1.0, 1.0))
    yaw = np.arctan2(-rot[..., 2, 0], rot[..., 2, 2])
    roll = np.arctan2(-rot[..., 0, 1], rot[..., 1, 1])
    return np.rad2deg(yaw), np.rad2deg(pitch), np.rad2deg(roll)
