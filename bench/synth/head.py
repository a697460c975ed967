"""A parametric 3D head whose surface passes through the canonical landmarks of an identity.

The head is a closed surface that is star-shaped about a centre ``CENTRE`` inside it: a
radius along every direction. The base is a stack of horizontal superellipse cross-sections
(width, front, widest and back depth by height: cranium dome, face, jaw, neck) whose
profiles the identity's shape parameters bend; bumps add what cross-sections cannot make
(nose, brow ridge, eyes, cheekbones, lips, chin, ears, hair volume). A final smooth
correction makes the surface pass exactly through the identity's 22 landmarks
(:mod:`bench.face3d` order), which vary around :func:`bench.face3d.mean_landmarks_3d` with
the same parameters that shape the head, so a PnP fit against the mean face recovers the
rendered pose up to the identity's own shape.

Directions are sampled on a warped (azimuth, elevation) grid that is densest on the face;
the grid doubles as the texture's coordinates, so albedo is painted once per identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..face3d import LANDMARK_NAMES, mean_landmarks_3d

#: Centre of the radial parametrisation, in the head frame of :mod:`bench.face3d` (mm).
CENTRE = np.array([0.0, 20.0, 75.0])
#: Texture/geometry grid: rows sample elevation (top of head to bottom of neck), columns
#: azimuth (front at the middle column, wrapping at the back).
GRID_ROWS, GRID_COLS = 160, 224
#: The mesh uses every other grid point (per-pixel detail comes from the texture); the
#: geometry is evaluated there and interpolated for the texture (see ``build_head``).
MESH_STRIDE = 2

_IDX = {name: i for i, name in enumerate(LANDMARK_NAMES)}


# --------------------------------------------------------------------------- grid and mesh
def _azimuth(u: np.ndarray) -> np.ndarray:
    """u in [-1, 1) -> azimuth in radians; dense near the front (u = 0)."""
    return np.pi * (0.55 * u + 0.45 * u ** 3)


def _elevation(v: np.ndarray) -> np.ndarray:
    """v in [-1, 1] -> elevation in radians (positive = down, +y); dense on the face."""
    return 0.5 * np.pi * (0.6 * v + 0.4 * v ** 3)


def directions(azimuth: np.ndarray, elevation: np.ndarray) -> np.ndarray:
    """Unit vectors (..., 3) for azimuth (0 = towards the camera, + towards +x) and elevation."""
    ce = np.cos(elevation)
    return np.stack([np.sin(azimuth) * ce, np.sin(elevation) * np.ones_like(azimuth),
                     -np.cos(azimuth) * ce], axis=-1)


@dataclass(frozen=True)
class Grid:
    rows: int
    cols: int
    azimuth: np.ndarray      # (rows, cols)
    elevation: np.ndarray    # (rows, cols)
    dirs: np.ndarray         # (rows, cols, 3)


def make_grid(rows: int = GRID_ROWS, cols: int = GRID_COLS) -> Grid:
    u = -1.0 + 2.0 * np.arange(cols) / cols
    v = np.linspace(-1.0, 1.0, rows)
    az, el = np.meshgrid(_azimuth(u), _elevation(v))
    return Grid(rows, cols, az, el, directions(az, el))


def mesh_faces(rows: int, cols: int) -> np.ndarray:
    """(F, 3) int32 triangles of a (rows, cols) grid that wraps in azimuth.

    Columns run towards +x and rows towards +y on the face, so a triangle facing the camera
    has positive signed area in image coordinates (x right, y down): what the rasteriser
    keeps.
    """
    i, j = np.meshgrid(np.arange(rows - 1), np.arange(cols), indexing="ij")
    a = i * cols + j
    b = i * cols + (j + 1) % cols
    c = (i + 1) * cols + (j + 1) % cols
    d = (i + 1) * cols + j
    tris = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3),
                           np.stack([a, c, d], -1).reshape(-1, 3)])
    return tris.astype(np.int32)


def grid_normals(points: np.ndarray) -> np.ndarray:
    """Outward unit normals (rows, cols, 3) of a grid surface, by central differences."""
    d_az = np.roll(points, -1, axis=1) - np.roll(points, 1, axis=1)
    d_el = np.empty_like(points)
    d_el[1:-1] = points[2:] - points[:-2]
    d_el[0] = points[1] - points[0]
    d_el[-1] = points[-1] - points[-2]
    n = np.cross(d_el, d_az)
    # Pole rows collapse to a point: use the direction away from the pole's ring instead.
    for row, nxt in ((0, 1), (-1, -2)):
        n[row] = points[row] - points[nxt].mean(axis=0)
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-9)


# --------------------------------------------------------------------------- identity shape
#: Shape parameters: (mean, anthropometric std). Lengths in mm, ratios unitless.
SHAPE_PARAMS: dict[str, tuple[float, float]] = {
    "scale": (1.0, 0.035),
    "head_width": (0.0, 4.0),
    "head_length": (0.0, 6.0),
    "cranium_height": (0.0, 6.0),
    "forehead_slope": (0.0, 5.0),
    "face_width": (0.0, 4.0),
    "jaw_width": (0.0, 5.0),
    "lower_face": (0.0, 5.0),
    "cheekbones": (0.0, 1.5),
    "brow_ridge": (0.0, 1.3),
    "brow_height": (0.0, 2.0),
    "eye_spacing": (0.0, 2.5),
    "eye_depth": (0.0, 1.5),
    "nose_length": (0.0, 3.0),
    "nose_projection": (0.0, 2.5),
    "nose_width": (0.0, 2.5),
    "nose_bridge": (0.0, 1.5),
    "nose_hook": (0.0, 1.2),
    "mouth_width": (0.0, 3.0),
    "lip_thickness": (0.0, 1.3),
    "chin_projection": (0.0, 3.0),
    "chin_size": (0.0, 2.5),
    "ear_size": (0.0, 4.0),
    "ear_protrusion": (0.0, 3.0),
    "neck_width": (0.0, 4.0),
}


@dataclass(frozen=True)
class Shape:
    """One identity's shape: named parameters, hair volume and its exact 3D landmarks."""

    params: dict[str, float]
    landmarks: np.ndarray          # (22, 3) head frame, mm
    hair: HairStyle


@dataclass(frozen=True)
class HairStyle:
    """Where hair grows (elevation of the hairline by azimuth) and how thick it is."""

    front: float         # hairline elevation at the forehead (radians, negative = up)
    side: float          # at the temples (above the ears)
    back: float          # at the nape
    recession: float     # radians the hairline recedes at the temples (an "M")
    sideburn: float      # radians the sideburns come down in front of the ears
    parting: float       # radians of left-right asymmetry
    thickness: float     # mm of volume on the crown
    long: float          # 0..1: hair hanging down the back and sides
    bald: float          # 0..1: crown without hair


def sample_hair(rng: np.random.Generator, masculine: float, spread: float) -> HairStyle:
    long = float(np.clip(rng.normal(0.45 - 0.4 * masculine, 0.3), 0, 1)) * (rng.random() < 0.6)
    bald = float(rng.random() < 0.12 * masculine) * rng.uniform(0.4, 1.0)
    return HairStyle(
        front=float(np.deg2rad(-54 + 5 * spread * rng.normal() + 8 * masculine * rng.random())),
        side=float(np.deg2rad(-14 + 5 * spread * rng.normal())),
        back=float(np.deg2rad(22 + 6 * spread * rng.normal())),
        recession=float(np.deg2rad(rng.uniform(0, 6 + 10 * masculine))),
        sideburn=float(np.deg2rad(rng.uniform(0, 25))),
        parting=float(np.deg2rad(rng.normal(0, 4))),
        thickness=float(np.clip(rng.normal(7 - 3 * masculine, 3), 1, 15)),
        long=long, bald=bald)


def sample_shape(rng: np.random.Generator, spread: float, masculine: float) -> Shape:
    """Draw an identity's shape; ``spread`` scales the anthropometric std devs."""
    z = rng.standard_normal(len(SHAPE_PARAMS))
    params = {name: mean + spread * std * zi
              for (name, (mean, std)), zi in zip(SHAPE_PARAMS.items(), z, strict=True)}
    # Dimorphism: larger brow ridge, jaw and nose for the masculine end (in std units).
    m = masculine - 0.5
    for name, k in (("brow_ridge", 1.0), ("jaw_width", 1.0), ("nose_projection", 0.6),
                    ("chin_size", 0.8), ("scale", 0.8), ("lip_thickness", -0.6)):
        params[name] += spread * SHAPE_PARAMS[name][1] * k * m * 2
    asym = rng.normal(0.0, 0.7 * spread, size=(len(LANDMARK_NAMES), 3))
    landmarks = identity_landmarks(params) + asym
    return Shape(params=params, landmarks=landmarks,
                 hair=sample_hair(rng, masculine, spread))


def identity_landmarks(p: dict[str, float]) -> np.ndarray:
    """The mean face moved by the shape parameters that also move the surface features."""
    lm = mean_landmarks_3d().copy()
    x, y, z = lm[:, 0], lm[:, 1], lm[:, 2]  # views: edits below change ``lm``
    side = np.sign(x)
    eyes_brows = np.array([_IDX[n] for n in LANDMARK_NAMES if n.startswith(("eye", "brow",
                                                                           "pupil"))])
    brows = np.array([_IDX[n] for n in LANDMARK_NAMES if n.startswith("brow")])
    eyes = np.array([_IDX[n] for n in LANDMARK_NAMES if n.startswith(("eye", "pupil"))])
    x[eyes_brows] += side[eyes_brows] * p["eye_spacing"] / 2
    for n in ("brow_outer_r", "brow_outer_l", "eye_outer_r", "eye_outer_l"):
        x[_IDX[n]] += side[_IDX[n]] * p["face_width"] * 0.3
    y[brows] -= p["brow_height"]
    z[brows] -= p["brow_ridge"]
    z[eyes] += p["eye_depth"]
    # Nose: length moves its base down, projection moves the tip forward.
    y[_IDX["nose_tip"]] += 0.8 * p["nose_length"]
    y[_IDX["subnasale"]] += p["nose_length"]
    for n in ("nose_wing_r", "nose_wing_l"):
        y[_IDX[n]] += 0.9 * p["nose_length"]
        x[_IDX[n]] += side[_IDX[n]] * p["nose_width"] / 2
        z[_IDX[n]] -= 0.3 * p["nose_projection"]
    z[_IDX["nose_tip"]] -= p["nose_projection"]
    z[_IDX["subnasale"]] -= 0.4 * p["nose_projection"]
    # Lower face: everything below the nose stretches by lower_face at the chin.
    below = y > 45
    y[below] += p["lower_face"] * (y[below] - 45) / 67
    for n in ("mouth_corner_r", "mouth_corner_l"):
        x[_IDX[n]] += side[_IDX[n]] * p["mouth_width"] / 2
    y[_IDX["upper_lip"]] -= p["lip_thickness"] / 2
    y[_IDX["lower_lip"]] += p["lip_thickness"] / 2
    z[_IDX["upper_lip"]] -= p["lip_thickness"] / 2
    z[_IDX["lower_lip"]] -= p["lip_thickness"] / 2
    z[_IDX["chin"]] -= p["chin_projection"]
    return lm * p["scale"]


# --------------------------------------------------------------------------- radial surface
# The base head is a stack of horizontal cross-sections, each a superellipse that is widest
# at depth ``zc`` with half-width ``w``, front at ``zf`` and back at ``zb``; the front half is
# flatter (exponent ``nf``) than the back. Knots below the dome, by height y (mm, mean face):
_KNOTS = np.array([
    # y      w     zf     zc     zb    nf
    [-35.0, 74.0, -7.0, 80.0, 185.0, 2.45],
    [-15.0, 73.0, -7.0, 82.0, 182.0, 2.5],
    [5.0, 72.0, -6.0, 85.0, 172.0, 2.6],
    [25.0, 69.0, -9.0, 85.0, 160.0, 2.5],
    [45.0, 64.0, -10.0, 80.0, 150.0, 2.1],
    [65.0, 58.0, -9.5, 72.0, 142.0, 2.0],
    [85.0, 52.0, -8.0, 68.0, 137.0, 2.0],
    [100.0, 47.0, -7.0, 75.0, 134.0, 2.0],
    [110.0, 45.0, -6.0, 86.0, 133.0, 2.0],
    [118.0, 44.0, 2.0, 91.0, 134.0, 2.0],
    [126.0, 48.0, 38.0, 92.0, 138.0, 2.0],
    [140.0, 50.0, 44.0, 92.0, 140.0, 2.0],
    [262.0, 50.0, 44.0, 92.0, 140.0, 2.0],
])
_DOME_Y = -35.0
_TOP_Y = -125.0
_BACK_EXP = 2.2


@dataclass(frozen=True)
class _Profile:
    """Cross-section table by height: rows at ``y0 + k * step``, columns w, zf, zc, zb, nf."""

    y0: float
    step: float
    table: np.ndarray       # (K, 5)

    @property
    def y_range(self) -> tuple[float, float]:
        return self.y0, self.y0 + self.step * (len(self.table) - 1)

    def at(self, y: np.ndarray) -> np.ndarray:
        """(N, 5) linearly interpolated rows (clamped at both ends)."""
        pos = np.clip((y - self.y0) / self.step, 0, len(self.table) - 1.000001)
        k = pos.astype(np.int64)
        f = (pos - k)[:, None]
        return self.table[k] * (1 - f) + self.table[k + 1] * f


def _bump1d(y: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((y - centre) / width) ** 2)


def _natural_spline(x: np.ndarray, y: np.ndarray, xq: np.ndarray) -> np.ndarray:
    """Natural cubic spline through (x, y), evaluated at xq (inside [x0, xn])."""
    h = np.diff(x)
    n = len(x)
    a = np.zeros((n, n))
    rhs = np.zeros(n)
    a[0, 0] = a[-1, -1] = 1.0
    i = np.arange(1, n - 1)
    a[i, i - 1], a[i, i], a[i, i + 1] = h[:-1], 2 * (h[:-1] + h[1:]), h[1:]
    rhs[i] = 6 * ((y[2:] - y[1:-1]) / h[1:] - (y[1:-1] - y[:-2]) / h[:-1])
    m = np.linalg.solve(a, rhs)                   # second derivatives at the knots
    k = np.clip(np.searchsorted(x, xq, side="right") - 1, 0, n - 2)
    t0, t1, hk = xq - x[k], x[k + 1] - xq, h[k]
    return (m[k] * t1 ** 3 + m[k + 1] * t0 ** 3) / (6 * hk) \
        + (y[k] / hk - m[k] * hk / 6) * t1 + (y[k + 1] / hk - m[k + 1] * hk / 6) * t0


def _profile(p: dict[str, float]) -> _Profile:
    s = p["scale"]
    ky, kw, kzf, kzc, kzb, knf = (c.copy() for c in _KNOTS.T)
    # Longer lower face: stretch everything below the nose base.
    ky = ky + p["lower_face"] * np.clip((ky - 45.0) / 67.0, 0.0, 1.0)
    kw = kw + p["head_width"] * smoothstep(85, 25, ky) + p["jaw_width"] * _bump1d(ky, 92, 14) \
        + 0.6 * p["face_width"] * _bump1d(ky, 10, 30) + p["neck_width"] * smoothstep(118, 130, ky)
    kzb = kzb + p["head_length"] * smoothstep(70, 10, ky)
    kzf = kzf - p["chin_projection"] * _bump1d(ky, 108, 7)
    knf = knf + 0.06 * p["cheekbones"] * _bump1d(ky, 25, 15)
    dense_y = np.arange(np.ceil(ky[0]), ky[-1] + 1.0)
    lower = [_natural_spline(ky, k, dense_y) for k in (kw, kzf, kzc, kzb, knf)]
    # Dome: elliptical (exponent m) shrink of the top cross-section towards the crown.
    top = _TOP_Y - p["cranium_height"]
    dome_y = np.arange(np.ceil(top), _DOME_Y)
    m = 2.0 + 0.04 * p["forehead_slope"]
    t = (dome_y - _DOME_Y) / (top - _DOME_Y)
    k = (1 - np.clip(t, 0, 1) ** m) ** (1 / m)
    zc0 = kzc[0]
    dome = [kw[0] * k, zc0 - (zc0 - kzf[0]) * k, np.full_like(k, zc0), zc0 + (kzb[0] - zc0) * k,
            np.full_like(k, knf[0])]
    table = np.column_stack([np.concatenate([d, lo])
                             for d, lo in zip(dome, lower, strict=True)])
    table[:, :4] *= s
    # The crown closes at zero width half a step above the table.
    crown = table[0].copy()
    crown[0] = 0.0
    step = 0.5 * s
    y = np.concatenate([dome_y, dense_y])
    fine_y = np.arange(y[0] * s - step, y[-1] * s + step / 2, step)
    fine = np.column_stack([np.interp(fine_y, np.concatenate([[y[0] * s - step], y * s]),
                                      np.concatenate([[crown[c]], table[:, c]]))
                            for c in range(5)])
    return _Profile(float(fine_y[0]), step, fine)


def _base_radius(d: np.ndarray, prof: _Profile, steps: int = 18) -> np.ndarray:
    """Distance from CENTRE along unit directions ``d`` (N, 3) to the stacked cross-sections."""
    lo = np.full(len(d), 20.0)
    hi = np.full(len(d), 300.0)
    ymin, ymax = prof.y_range
    for _ in range(steps):
        t = 0.5 * (lo + hi)
        p = CENTRE + t[:, None] * d
        w, zf, zc, zb, nf = prof.at(p[:, 1]).T
        ahead = p[:, 2] < zc
        depth = np.where(ahead, zc - zf, zb - zc)
        n = np.where(ahead, nf, _BACK_EXP)
        f = (np.abs(p[:, 0]) / np.maximum(w, 1e-3)) ** n \
            + (np.abs(p[:, 2] - zc) / np.maximum(depth, 1e-3)) ** n
        outside = (f > 1.0) | (p[:, 1] < ymin) | (p[:, 1] > ymax)
        hi = np.where(outside, t, hi)
        lo = np.where(outside, lo, t)
    return 0.5 * (lo + hi)


def _gauss(a: np.ndarray, b: np.ndarray, sa: float, sb: float) -> np.ndarray:
    return np.exp(-0.5 * ((a / sa) ** 2 + (b / sb) ** 2))


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def hair_mask(azimuth: np.ndarray, elevation: np.ndarray, hair: HairStyle,
              soft: float = 0.04) -> np.ndarray:
    """0..1 where hair grows, from the hairline elevation as a function of azimuth."""
    c = np.cos(azimuth)
    # Hairline: front at c = 1, temples at c = 0, nape at c = -1 (quadratic through all three).
    line = hair.side + 0.5 * (hair.front - hair.back) * c + 0.5 * (hair.front + hair.back
                                                                   - 2 * hair.side) * c * c
    a = np.abs(azimuth)
    line = line - hair.recession * np.exp(-0.5 * ((a - 0.75) / 0.2) ** 2) \
        + hair.sideburn * np.exp(-0.5 * ((a - 1.3) / 0.08) ** 2) + hair.parting * np.sin(azimuth)
    mask = smoothstep(soft, -soft, elevation - line)
    if hair.long > 0:
        # Long hair falls behind the ears down to the shoulders (not over the face).
        behind = smoothstep(0.1, -0.35, c)
        fall = smoothstep(np.deg2rad(35 + 35 * hair.long), np.deg2rad(25 + 30 * hair.long),
                           elevation)
        mask = np.maximum(mask, behind * fall * (hair.long > 0.2))
    if hair.bald > 0:
        crown = smoothstep(np.deg2rad(-30), np.deg2rad(-55), elevation) * smoothstep(-0.5, 0.2, c)
        mask = mask * (1 - hair.bald * crown)
    return mask


def _radius(d: np.ndarray, p: dict[str, float], hair: HairStyle) -> np.ndarray:
    """Radius along unit directions (N, 3) before the landmark correction."""
    s = p["scale"]
    prof = _profile(p)
    rho = _base_radius(d, prof)
    pts = CENTRE + rho[:, None] * d
    x, y, zz = pts[:, 0], pts[:, 1], pts[:, 2]
    zc = prof.at(y)[:, 2]
    front = smoothstep(zc - 15, zc - 45, zz)         # the face half of each cross-section
    lm = identity_landmarks(p)
    tip, sub = lm[_IDX["nose_tip"]], lm[_IDX["subnasale"]]
    bump = np.zeros_like(rho)

    # Nose: a ridge from the nasion to the tip, falling steeply to the subnasale.
    nasion_y = -6.0 * s
    t = np.clip((y - nasion_y) / (tip[1] - nasion_y), 0, 1)
    ridge = (1.0 + p["nose_bridge"]) + t ** 0.8 * (11.5 + p["nose_projection"])
    ridge += p["nose_hook"] * np.sin(np.pi * t) * 2
    under = np.clip((y - tip[1]) / max(sub[1] - tip[1], 4.0), 0, 1)
    height = ridge * (1 - 0.8 * under ** 1.3) * smoothstep(sub[1] + 4, sub[1] - 1, y)
    width = 5.5 + (5.0 + p["nose_width"] / 2) * t ** 2
    bump += front * height * np.exp(-0.5 * np.abs(x / width) ** 3) \
        * smoothstep(nasion_y - 10, nasion_y + 2, y)
    for name in ("nose_wing_r", "nose_wing_l"):
        wing = lm[_IDX[name]]
        bump += front * 2.0 * _gauss(x - wing[0] * 0.85, y - wing[1] + 1, 5.0, 4.5)
    # Eyes: sockets with eyeballs, a mild brow ridge and cheekbones.
    for side in ("r", "l"):
        pupil = lm[_IDX[f"pupil_{side}"]]
        bump -= front * (4.5 + p["eye_depth"]) * _gauss(x - pupil[0] * 0.92, y - pupil[1] + 1,
                                                        12, 8)
        r2 = ((x - pupil[0]) / 12) ** 2 + ((y - pupil[1]) / 8) ** 2
        bump += front * 4.0 * np.clip(1 - r2, 0, 1) ** 0.8
        bump += front * (1.5 + p["cheekbones"]) * _gauss(x - np.sign(pupil[0]) * 44 * s,
                                                         y - 24 * s, 13, 9)
    brow_y = lm[_IDX["brow_mid_l"], 1] + 3
    bump += front * (1.5 + p["brow_ridge"]) * _bump1d(y, brow_y, 5.5) \
        * smoothstep(8, 40, np.abs(x)) * smoothstep(64, 52, np.abs(x))
    # Lips, the grooves around them, and the chin.
    ul, ll, mc = lm[_IDX["upper_lip"]], lm[_IDX["lower_lip"]], lm[_IDX["mouth_centre"]]
    half_mouth = abs(lm[_IDX["mouth_corner_l"], 0])
    lip = 2.5 + p["lip_thickness"]
    bump += front * lip * _gauss(x, y - ul[1] - 1.5, 0.7 * half_mouth, 4.0)
    bump += front * lip * _gauss(x, y - ll[1] + 1.5, 0.6 * half_mouth, 4.5)
    bump -= front * 0.8 * _gauss(x, y - mc[1], 0.8 * half_mouth, 1.2)
    bump -= front * 1.5 * _gauss(x, y - ll[1] - 9, 12, 3.5)
    chin = lm[_IDX["chin"]]
    bump += front * (2.5 + p["chin_size"]) * _gauss(x, y - chin[1] + 8, 13 + p["chin_size"], 8)
    # Ears: flat lobes on the sides, behind the jaw hinge.
    side = smoothstep(0.55, 0.85, np.abs(d[:, 0]))
    ear_h, ear_w = (30 + p["ear_size"]) * s, (15 + 0.3 * p["ear_size"]) * s
    ear_r = np.hypot((y - 27 * s) / ear_h, (zz - 96 * s) / ear_w)
    bump += side * (9 + p["ear_protrusion"]) * smoothstep(1.1, 0.75, ear_r)

    az = np.arctan2(d[:, 0], -d[:, 2])
    el = np.arcsin(np.clip(d[:, 1], -1, 1))
    bump += hair.thickness * hair_mask(az, el, hair, soft=0.12) * (1 - front) ** 2
    return rho + bump


def _rbf_kernel(a: np.ndarray, b: np.ndarray, width: float) -> np.ndarray:
    """Gaussian in the chord between unit vectors (~ the angle in radians when small)."""
    cos = a[:, None, 0] * b[None, :, 0] + a[:, None, 1] * b[None, :, 1] \
        + a[:, None, 2] * b[None, :, 2]
    return np.exp((cos - 1.0) / width ** 2)


@dataclass(frozen=True)
class Head:
    """An identity's rest geometry on the grid, plus its landmarks (on the surface)."""

    shape: Shape
    points: np.ndarray     # (rows, cols, 3) head frame, mm
    grid: Grid


def _upsample(coarse: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Bilinear 2x (``MESH_STRIDE``) upsampling of a grid sampled at even indices; columns wrap."""
    out = np.empty((rows, cols))
    out[::2, ::2] = coarse[: len(range(0, rows, 2))]
    out[::2, 1::2] = 0.5 * (out[::2, 0::2] + np.roll(out[::2, 0::2], -1, axis=1))
    last = rows - 1
    out[1:last:2] = 0.5 * (out[0:last - 1:2] + out[2:last + 1:2])
    if rows % 2 == 0:  # the last row has no even row below it
        out[last] = out[last - 1]
    return out


def build_head(shape: Shape, grid: Grid) -> Head:
    """Evaluate the radius and correct it so the landmarks lie on the surface.

    The radius is computed on every other grid point (the mesh's vertices, see
    ``MESH_STRIDE``) and interpolated in between for the texture's finer grid.
    """
    dirs = grid.dirs[::MESH_STRIDE, ::MESH_STRIDE].reshape(-1, 3)
    rho = _radius(dirs, shape.params, shape.hair)
    offsets = shape.landmarks - CENTRE
    lm_rho = np.sqrt((offsets ** 2).sum(axis=1))
    lm_dir = offsets / lm_rho[:, None]
    residual = lm_rho - _radius(lm_dir, shape.params, shape.hair)
    width = np.deg2rad(4.5)
    kernel = _rbf_kernel(lm_dir, lm_dir, width)
    weights = np.linalg.solve(kernel + 1e-6 * np.eye(len(kernel)), residual)
    # Written as a sum, not a matrix product: the same bits whatever BLAS threading does.
    rho = rho + (_rbf_kernel(dirs, lm_dir, width) * weights).sum(axis=1)
    coarse = rho.reshape((grid.rows + 1) // 2, (grid.cols + 1) // 2)
    rho_full = _upsample(coarse, grid.rows, grid.cols)
    points = CENTRE + rho_full[..., None] * grid.dirs
    return Head(shape=shape, points=points, grid=grid)


# --------------------------------------------------------------------------- expression
@dataclass(frozen=True)
class Expression:
    smile: float = 0.0       # 0..1
    jaw_open: float = 0.0    # 0..1
    brow_raise: float = 0.0  # -1..1 (negative: frown)


def sample_expression(rng: np.random.Generator, strength: float) -> Expression:
    if strength <= 0:
        return Expression()
    smile = rng.uniform(0, 1) if rng.random() < 0.45 else 0.0
    jaw = rng.uniform(0, 1) ** 2 if rng.random() < 0.3 else 0.0
    brow = rng.uniform(-1, 1) if rng.random() < 0.3 else 0.0
    return Expression(min(1.0, smile * strength), min(1.0, jaw * strength),
                      float(np.clip(brow * strength, -1, 1)))


def expression_offsets(points: np.ndarray, landmarks: np.ndarray, expr: Expression) -> np.ndarray:
    """(N, 3) displacement of head-frame points (N, 3): a smooth field, so landmarks that were
    on the surface stay on the displaced surface when displaced the same way."""
    out = np.zeros_like(points)
    if expr == Expression():
        return out
    x, y = points[:, 0], points[:, 1]
    front = smoothstep(20, -5, points[:, 2])
    mouth_y = landmarks[_IDX["mouth_centre"], 1]
    if expr.smile:
        for name in ("mouth_corner_r", "mouth_corner_l"):
            c = landmarks[_IDX[name]]
            w = _gauss(x - c[0], y - c[1], 11, 9) * expr.smile
            out[:, 0] += w * np.sign(c[0]) * 4.0
            out[:, 1] -= w * 4.0
            out[:, 2] += w * 2.0
            cheek = _gauss(x - c[0] * 1.6, y - c[1] + 30, 14, 12) * expr.smile
            out[:, 1] -= cheek * 2.5
            out[:, 2] -= cheek * 2.0
    if expr.jaw_open:
        drop = smoothstep(mouth_y - 2, mouth_y + 6, y) * front * smoothstep(75, 40, np.abs(x))
        out[:, 1] += drop * 9.0 * expr.jaw_open
        out[:, 2] += drop * 2.0 * expr.jaw_open
    if expr.brow_raise:
        brow_y = landmarks[_IDX["brow_mid_l"], 1]
        w = np.exp(-0.5 * ((y - brow_y) / 9) ** 2) * front * smoothstep(70, 40, np.abs(x))
        out[:, 1] -= w * 3.5 * expr.brow_raise
    return out
