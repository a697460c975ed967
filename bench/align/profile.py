"""Pose-aware reference points: sensible crops for profile faces with a hidden eye.

A fixed frontal template asks both eyes, the nose and the mouth to sit where they sit on a
frontal face. A profile face cannot satisfy that: with one eye missing, a fit of the
visible points (eye, nose, mouth corners) to the frontal template shrinks and shifts the
face, because under yaw the horizontal distances between those points shrink.

What we do instead: the reference points are the template's mean face *turned by the
sample's own yaw* (and pitch), projected with the template's frontal geometry
(:meth:`Template.posed_reference`), and the similarity is fitted on the visible points
only. The face then keeps its frontal scale (pixels per mm of head) and its head origin
(between the pupils) lands where a frontal face's would, so a 70-degree profile and a
frontal photo of the same head give crops of the same size and vertical placement; the
profile's visible half sits where the head's geometry puts it.

When the sample's yaw is unknown (NaN), it is estimated here from the visible points: the
yaw on a 5-degree grid in [-90, 90] whose turned mean face fits them best (needs at least
3 visible points; two points fit any yaw exactly). A missing eye is evidence too: a face
hides its image-left eye (``pupil_r``) only when turned far to the image left (yaw beyond
+:data:`HIDDEN_EYE_MIN_YAW`), and the other eye at the mirrored yaws, so the grid is cut to
those yaws; three points then suffice. This is a crude estimate for alignment only; the
head-pose estimator (``bench yaw``) is the measurement of record.

Which samples use this is decided in :mod:`bench.align.plan`: by default (``auto``) only
those whose frontal fit is impossible (an eye missing) or poor (large residual).
"""

from __future__ import annotations

import numpy as np

from ..face3d import LANDMARK_NAMES
from .templates import Template
from .transform import fit_quality, fit_similarity

#: Candidate yaws (degrees) when a sample's yaw is unknown.
YAW_GRID = np.arange(-90.0, 90.1, 5.0)
#: Fewest visible points from which the yaw is estimated.
MIN_POINTS_FOR_YAW = 3
#: Smallest |yaw| (degrees) at which one eye is taken to be hidden by the head.
HIDDEN_EYE_MIN_YAW = 40.0
PUPILS = [LANDMARK_NAMES.index("pupil_r"), LANDMARK_NAMES.index("pupil_l")]
_ROWS_PER_CHUNK = 2048  # bounds the (rows x grid) fit arrays to a few tens of MB


def estimate_yaw(points: np.ndarray, template: Template) -> np.ndarray:
    """(N,) yaw in degrees whose turned mean face best fits each (22, 2) point set.

    NaN where fewer than :data:`MIN_POINTS_FOR_YAW` points are finite.
    """
    n = len(points)
    visible = np.isfinite(points).all(-1).sum(1)
    out = np.full(n, np.nan)
    rows = np.flatnonzero(visible >= MIN_POINTS_FOR_YAW)
    if rows.size == 0:
        return out
    refs = template.posed_reference(YAW_GRID)  # (Y, 22, 2)
    y = len(YAW_GRID)
    pupils = np.isfinite(points[:, PUPILS]).all(-1)
    # (N, Y) allowed yaws: a hidden image-left eye means a large positive yaw, and mirrored
    allowed = np.ones((n, y), bool)
    allowed[~pupils[:, 0] & pupils[:, 1]] = YAW_GRID >= HIDDEN_EYE_MIN_YAW
    allowed[pupils[:, 0] & ~pupils[:, 1]] = YAW_GRID <= -HIDDEN_EYE_MIN_YAW
    for chunk in np.array_split(rows, -(-rows.size // _ROWS_PER_CHUNK)):
        src = np.repeat(points[chunk], y, axis=0)
        dst = np.tile(refs, (chunk.size, 1, 1))
        quality = fit_quality(fit_similarity(src, dst), src, dst)
        residual = np.nan_to_num(quality.residual, nan=np.inf).reshape(chunk.size, y)
        out[chunk] = YAW_GRID[np.where(allowed[chunk], residual, np.inf).argmin(1)]
    return out


def posed_references(points: np.ndarray, template: Template, yaw: np.ndarray,
                     pitch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample reference points (N, 22, 2) and the yaw they use (N,).

    ``yaw``/``pitch`` (N,) in degrees, NaN unknown: an unknown yaw is estimated from the
    points (:func:`estimate_yaw`), an unknown pitch is taken as 0. Rows whose yaw stays
    unknown get NaN references.
    """
    yaw = np.asarray(yaw, dtype=np.float64).copy()
    pitch = np.nan_to_num(np.asarray(pitch, dtype=np.float64), nan=0.0)
    unknown = ~np.isfinite(yaw)
    if unknown.any():
        yaw[unknown] = estimate_yaw(points[unknown], template)
    refs = np.full(points.shape, np.nan)
    known = np.isfinite(yaw)
    refs[known] = template.posed_reference(yaw[known], pitch[known])
    return refs, yaw
