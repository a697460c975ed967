"""Landmark schemes: how the points a dataset gives map onto the canonical landmarks.

Every alignment works on the 22 canonical landmarks of :mod:`bench.face3d` (array of
shape (N, 22, 2), NaN where a point is absent or hidden). A scheme says, for each canonical
landmark it can supply, which of the dataset's points give it; several indices are averaged
(the 68-point set has no pupil, so a pupil is the mean of its eye's six contour points).

Known schemes, chosen by point count when a sample carries a bare (K, 2) array:

==============  ===  ==========================================================================
name            K    correspondence
==============  ===  ==========================================================================
canonical22     22   bench.face3d order (the synthetic generator's fiducials)
dream21         21   the DREAM authors' 21-point PnP order = the first 21 canonical landmarks
five            5    insightface / RetinaFace / MTCNN order: pupil image-left, pupil
                     image-right, nose tip, mouth corner image-left, mouth corner image-right
ijba3           3    IJB-A metadata order as read by the readers: RIGHT_EYE, LEFT_EYE,
                     NOSE_BASE, taken as the subject's right pupil, left pupil, and subnasale
ibug68          68   iBUG 300-W / dlib 68-point order (0-based): 8 chin, 17/19/21 and
                     22/24/26 brows, 30 nose tip, 31/33/35 nose wings and subnasale,
                     36..41 and 42..47 eye contours (pupil = their mean), 48/54 mouth corners,
                     51/57 lip midpoints, 62+66 mean = mouth centre
==============  ===  ==========================================================================

Conventions that are ours, stated so readers can match them: "_r" is the subject's right,
which is the image-left side of a frontal face; IJB-A's RIGHT_EYE is read as the subject's
right eye and NOSE_BASE as the subnasale (the IJB-A documentation does not define either
precisely; the similarity fit tolerates the few-pixel difference to the nose tip).
CFP's 30 fiducials have no published correspondence we could verify, so a 30-point array is
an *unknown* scheme: its points do not drive a landmark fit, but their extent still gives a
face box (see :mod:`bench.align.plan`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..face3d import LANDMARK_NAMES
from ..registry import Registry

N_CANONICAL = len(LANDMARK_NAMES)
_INDEX = {name: i for i, name in enumerate(LANDMARK_NAMES)}


@dataclass(frozen=True)
class LandmarkScheme:
    """``sources[name]``: indices (into the dataset's K points) averaged to give ``name``."""

    name: str
    n_points: int
    sources: dict[str, tuple[int, ...]]

    def __post_init__(self):
        for landmark, idx in self.sources.items():
            if landmark not in _INDEX:
                raise ValueError(f"scheme {self.name}: unknown landmark {landmark!r}")
            if not idx or min(idx) < 0 or max(idx) >= self.n_points:
                raise ValueError(f"scheme {self.name}: bad indices {idx} for {landmark}")

    @property
    def matrix(self) -> np.ndarray:
        """(22, K) averaging matrix: canonical = matrix @ points (rows of zeros = absent)."""
        m = np.zeros((N_CANONICAL, self.n_points))
        for landmark, idx in self.sources.items():
            m[_INDEX[landmark], list(idx)] = 1.0 / len(idx)
        return m

    def to_canonical(self, points: np.ndarray) -> np.ndarray:
        """(..., K, 2) dataset points -> (..., 22, 2) canonical, NaN where absent.

        A NaN among the averaged points makes the result NaN (a hidden point stays hidden).
        """
        points = np.asarray(points, dtype=np.float64)
        if points.shape[-2:] != (self.n_points, 2):
            raise ValueError(f"scheme {self.name} expects (..., {self.n_points}, 2), "
                             f"got {points.shape}")
        m = self.matrix
        out = np.einsum("ck,...kd->...cd", m, np.nan_to_num(points, nan=0.0))
        hidden = np.einsum("ck,...k->...c", m > 0, ~np.isfinite(points).all(-1)) > 0
        out[hidden] = np.nan
        out[..., ~m.any(1), :] = np.nan
        return out


def _identity(name: str, names: Sequence[str]) -> LandmarkScheme:
    return LandmarkScheme(name, len(names), {n: (i,) for i, n in enumerate(names)})


SCHEMES: Registry[LandmarkScheme] = Registry("landmark scheme")
SCHEMES.add("canonical22", _identity("canonical22", LANDMARK_NAMES))
SCHEMES.add("dream21", _identity("dream21", LANDMARK_NAMES[:21]))
SCHEMES.add("five", _identity("five", ("pupil_r", "pupil_l", "nose_tip", "mouth_corner_r",
                                       "mouth_corner_l")))
SCHEMES.add("ijba3", _identity("ijba3", ("pupil_r", "pupil_l", "subnasale")))
SCHEMES.add("ibug68", LandmarkScheme("ibug68", 68, {
    "chin": (8,),
    "brow_outer_r": (17,), "brow_mid_r": (19,), "brow_inner_r": (21,),
    "brow_inner_l": (22,), "brow_mid_l": (24,), "brow_outer_l": (26,),
    "nose_tip": (30,), "nose_wing_r": (31,), "subnasale": (33,), "nose_wing_l": (35,),
    "eye_outer_r": (36,), "eye_inner_r": (39,), "eye_inner_l": (42,), "eye_outer_l": (45,),
    "pupil_r": tuple(range(36, 42)), "pupil_l": tuple(range(42, 48)),
    "mouth_corner_r": (48,), "upper_lip": (51,), "mouth_corner_l": (54,), "lower_lip": (57,),
    "mouth_centre": (62, 66),
}))

#: Scheme chosen for a bare (K, 2) array; counts not listed here are unknown schemes.
SCHEME_BY_COUNT: dict[int, str] = {
    SCHEMES.get(name).n_points: name for name in SCHEMES.names()
}


def scheme_for(n_points: int) -> LandmarkScheme | None:
    name = SCHEME_BY_COUNT.get(n_points)
    return None if name is None else SCHEMES.get(name)


def canonical_landmarks(column: Sequence[object]) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample landmark arrays (each (K, 2) or None) -> canonical points and raw extents.

    Returns ``(points, extent)``: ``points`` (N, 22, 2) float64 with NaN where absent (all
    NaN for None or an unknown scheme); ``extent`` (N, 4) x, y, w, h of each sample's finite
    raw points (NaN when fewer than 3), whatever the scheme.
    """
    n = len(column)
    points = np.full((n, N_CANONICAL, 2), np.nan)
    extent = np.full((n, 4), np.nan)
    arrays = [None if a is None else np.asarray(a, dtype=np.float64).reshape(-1, 2)
              for a in column]
    counts = np.array([-1 if a is None else len(a) for a in arrays])
    for k in np.unique(counts[counts > 0]):
        rows = np.flatnonzero(counts == k)
        raw = np.stack([arrays[i] for i in rows])
        scheme = scheme_for(int(k))
        if scheme is not None:
            points[rows] = scheme.to_canonical(raw)
        finite = np.isfinite(raw).all(-1)
        enough = finite.sum(1) >= 3
        with np.errstate(invalid="ignore"):
            lo = np.where(finite[..., None], raw, np.inf).min(1)
            hi = np.where(finite[..., None], raw, -np.inf).max(1)
        extent[rows[enough]] = np.concatenate([lo, hi - lo], 1)[enough]
    return points, extent
