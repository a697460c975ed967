"""Per-identity appearance: skin, brows, eyes, lips, marks, beard and hair, painted once into
a texture on the head's grid (the texel's rest 3D position places each feature)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..face3d import LANDMARK_NAMES
from .head import Head, hair_mask, smoothstep

_IDX = {name: i for i, name in enumerate(LANDMARK_NAMES)}

# Display-space reflectances (RGB, 0..1).
_SKIN = np.array([[0.93, 0.78, 0.68], [0.84, 0.64, 0.50], [0.66, 0.46, 0.33],
                  [0.45, 0.30, 0.21], [0.30, 0.20, 0.14]])
_HAIR = np.array([[0.06, 0.05, 0.05], [0.17, 0.11, 0.07], [0.32, 0.21, 0.12],
                  [0.55, 0.40, 0.24], [0.80, 0.66, 0.42], [0.55, 0.22, 0.10],
                  [0.62, 0.61, 0.60]])
_HAIR_P = np.array([0.28, 0.27, 0.18, 0.10, 0.07, 0.04, 0.06])
_IRIS = np.array([[0.25, 0.14, 0.07], [0.42, 0.27, 0.13], [0.30, 0.42, 0.58],
                  [0.35, 0.45, 0.30], [0.45, 0.47, 0.50]])
_IRIS_P = np.array([0.45, 0.2, 0.15, 0.1, 0.1])


@dataclass(frozen=True)
class Appearance:
    """Colours and feature sizes of one identity (the texture is painted from these)."""

    skin: np.ndarray       # (3,)
    hair: np.ndarray       # (3,)
    brow: np.ndarray       # (3,)
    iris: np.ndarray       # (3,)
    lips: np.ndarray       # (3,)
    brow_thickness: float  # mm
    brow_density: float    # 0..1
    blush: float
    beard: float           # 0..1
    freckles: float        # 0..1
    marks: np.ndarray      # (M, 4): azimuth, elevation (radians), radius (mm), darkness
    eye_opening: float     # mm, half-height of the eye's almond
    masculine: float
    skin_tone: int         # 1..6, IJB-A's SKIN_TONE scale


def _pick(rng: np.random.Generator, palette: np.ndarray, probs: np.ndarray, spread: float,
          jitter: float) -> np.ndarray:
    """A palette colour pulled towards the palette mean by (1 - spread), plus jitter."""
    centre = (palette * probs[:, None]).sum(0)
    colour = palette[rng.choice(len(palette), p=probs)]
    colour = centre + spread * (colour - centre) + rng.normal(0, jitter * spread, 3)
    return np.clip(colour, 0.02, 0.98)


def sample_appearance(rng: np.random.Generator, masculine: float, spread: float,
                      marks: float) -> Appearance:
    tone = rng.uniform(0, len(_SKIN) - 1)
    lo = int(np.floor(tone))
    hi = min(lo + 1, len(_SKIN) - 1)
    skin_raw = _SKIN[lo] + (tone - lo) * (_SKIN[hi] - _SKIN[lo])
    centre = _SKIN.mean(0)
    skin = centre + spread * (skin_raw - centre)
    skin = skin + spread * np.array([0.03, 0.0, -0.03]) * rng.normal()   # undertone
    skin = np.clip(skin, 0.05, 0.98)
    hair = _pick(rng, _HAIR, _HAIR_P, spread, 0.03)
    brow = np.clip(hair * rng.uniform(0.55, 0.9) + 0.02, 0, 1)
    # Eyes show only from the front: their colour keeps its full spread, a frontal-only cue.
    iris = _pick(rng, _IRIS, _IRIS_P, 1.0, 0.04)
    lips = np.clip(skin * np.array([0.92, 0.72, 0.74]) + spread * rng.normal(0, 0.025, 3)
                   + np.array([0.03, 0.0, 0.01]), 0, 1)
    n_marks = rng.poisson(marks * 2.0)
    mark = np.column_stack([
        rng.uniform(-1.4, 1.4, n_marks),                  # azimuth: face and sides
        rng.uniform(-0.45, 0.55, n_marks),                # elevation: forehead to chin
        rng.uniform(1.0, 3.0, n_marks),
        rng.uniform(0.25, 0.65, n_marks)])
    beard = float(rng.uniform(0.3, 1.0)) if rng.random() < 0.45 * masculine else 0.0
    light = tone < 1.5
    return Appearance(
        skin=skin, hair=hair, brow=brow, iris=iris, lips=lips,
        brow_thickness=float(np.clip(rng.normal(4.5 + 1.5 * masculine, 1.0), 2.0, 8.0)),
        brow_density=float(rng.uniform(0.55, 0.95)),
        blush=float(rng.uniform(0.0, 0.12)),
        beard=beard,
        freckles=float(rng.uniform(0.3, 1.0)) if light and rng.random() < 0.25 else 0.0,
        marks=mark, masculine=masculine,
        eye_opening=float(rng.uniform(3.8, 6.0)),
        skin_tone=int(np.clip(1 + np.floor(tone / (len(_SKIN) - 1) * 6), 1, 6)))


def _blend(tex: np.ndarray, alpha: np.ndarray, colour) -> None:
    a = np.clip(alpha, 0, 1).astype(np.float32)[..., None]
    tex += a * (np.asarray(colour, dtype=np.float32) - tex)


def _smooth_noise(rng: np.random.Generator, shape, sigma: tuple[float, float]) -> np.ndarray:
    noise = rng.standard_normal(shape).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), sigmaX=sigma[1], sigmaY=sigma[0],
                             borderType=cv2.BORDER_REFLECT)
    return noise / max(float(noise.std()), 1e-6)


def paint_texture(head: Head, app: Appearance, rng: np.random.Generator) -> np.ndarray:
    """(rows, cols, 3) float32 albedo on the head's grid."""
    grid, lm = head.grid, head.shape.landmarks
    pts = head.points.astype(np.float32)
    x, y = pts[..., 0], pts[..., 1]
    az, el = grid.azimuth.astype(np.float32), grid.elevation.astype(np.float32)
    front = smoothstep(1.45, 1.2, np.abs(az))          # the face side of the head
    shape = x.shape

    tex = np.empty(shape + (3,), dtype=np.float32)
    tex[:] = app.skin
    # Low-frequency skin variation and fine pores.
    tex *= (1 + 0.05 * _smooth_noise(rng, shape, (6, 6)))[..., None]
    tex *= (1 + 0.025 * _smooth_noise(rng, shape, (0.7, 0.7)))[..., None]
    # Redder cheeks, nose and ears.
    for cx in (-40.0, 40.0):
        w = np.exp(-0.5 * (((x - cx) / 15) ** 2 + ((y - 35) / 13) ** 2)) * front
        _blend(tex, w * app.blush * 2, app.skin * [1.0, 0.72, 0.72])
    tip = lm[_IDX["nose_tip"]]
    _blend(tex, 0.25 * np.exp(-0.5 * (((x - tip[0]) / 9) ** 2 + ((y - tip[1]) / 9) ** 2))
           * front, app.skin * [1.0, 0.8, 0.78])
    ear = smoothstep(0.5, 0.9, np.abs(np.sin(az))) * np.exp(-0.5 * ((y - 22) / 28) ** 2)
    _blend(tex, 0.3 * ear, app.skin * [1.0, 0.75, 0.72])
    # Neck slightly darker, as under the jaw.
    _blend(tex, 0.25 * smoothstep(lm[_IDX["chin"], 1], lm[_IDX["chin"], 1] + 25, y),
           app.skin * 0.8)
    if app.freckles:
        spots = (rng.random(shape) < 0.05 * app.freckles) * front \
            * np.exp(-0.5 * (((y - 25) / 22) ** 2 + (x / 45) ** 2))
        spots = cv2.GaussianBlur(spots.astype(np.float32), (0, 0), 0.6) * 3
        _blend(tex, 0.5 * spots, app.skin * [0.75, 0.55, 0.4])
    if app.beard:
        sub = lm[_IDX["subnasale"], 1]
        jaw = smoothstep(sub + 3, sub + 10, y) * smoothstep(1.75, 1.35, np.abs(az))
        jaw = jaw * (1 - 0.7 * np.exp(-0.5 * ((x / 30) ** 2 + ((y - lm[_IDX["mouth_centre"], 1])
                                                                / 12) ** 2)))
        jaw = jaw * smoothstep(lm[_IDX["chin"], 1] + 35, lm[_IDX["chin"], 1] + 15, y)
        grain = np.clip(0.7 + 0.3 * _smooth_noise(rng, shape, (0.6, 0.6)), 0, 1)
        _blend(tex, app.beard * 0.85 * jaw * grain, app.hair * 0.9)

    # Eyes: sclera almond between the corners, iris, pupil, lash line.
    for side in ("r", "l"):
        inner, outer = lm[_IDX[f"eye_inner_{side}"]], lm[_IDX[f"eye_outer_{side}"]]
        pupil = lm[_IDX[f"pupil_{side}"]]
        axis = outer[:2] - inner[:2]
        length = np.linalg.norm(axis)
        axis = axis / length
        rel = np.stack([x - inner[0], y - inner[1]], -1)
        s = (rel @ axis) / length
        perp = rel @ np.array([-axis[1], axis[0]])
        half = app.eye_opening * np.sin(np.pi * np.clip(s, 0, 1)) ** 0.8
        in_eye = smoothstep(0.5, -0.5, np.abs(perp) - half) * (s > 0) * (s < 1) * front
        _blend(tex, in_eye, [0.86, 0.83, 0.79])
        r = np.hypot(x - pupil[0], y - pupil[1])
        _blend(tex, in_eye * smoothstep(6.2, 5.4, r), app.iris)
        _blend(tex, in_eye * smoothstep(2.4, 1.8, r), [0.03, 0.03, 0.03])
        lash = smoothstep(1.6, 0.4, np.abs(perp + half + 0.4)) * (s > -0.05) * (s < 1.05) \
            * front
        _blend(tex, 0.8 * lash, app.brow * 0.5)
        # Brow: a curve through the three brow points, tapering outwards.
        pts3 = lm[[_IDX[f"brow_inner_{side}"], _IDX[f"brow_mid_{side}"],
                   _IDX[f"brow_outer_{side}"]]]
        coef = np.polyfit(pts3[:, 0], pts3[:, 1], 2)
        curve = np.polyval(coef, x)
        t = (x - pts3[0, 0]) / (pts3[2, 0] - pts3[0, 0])
        thick = app.brow_thickness * (1.1 - 0.6 * np.clip(t, 0, 1)) / 2
        in_brow = smoothstep(0.8, -0.4, np.abs(y - curve + 0.5) - thick) \
            * smoothstep(-0.12, 0.0, t) * smoothstep(1.12, 1.0, t) * front
        hairs = np.clip(0.75 + 0.35 * _smooth_noise(rng, shape, (0.5, 1.5)), 0, 1)
        _blend(tex, app.brow_density * in_brow * hairs, app.brow)

    # Lips: upper and lower lip shapes around the mouth line, between the corners.
    corner = (abs(lm[_IDX["mouth_corner_l"], 0]) + abs(lm[_IDX["mouth_corner_r"], 0])) / 2
    mouth_y = lm[_IDX["mouth_centre"], 1]
    u = np.clip(1 - (x / corner) ** 2, 0, 1)
    top = mouth_y - (mouth_y - lm[_IDX["upper_lip"], 1]) * u ** 0.6 \
        * (1 - 0.15 * np.exp(-0.5 * (x / 3) ** 2))
    bottom = mouth_y + (lm[_IDX["lower_lip"], 1] - mouth_y) * u ** 0.5
    in_lips = smoothstep(top - 0.7, top + 0.7, y) * smoothstep(bottom + 0.7, bottom - 0.7, y) \
        * front * (u > 0)
    _blend(tex, in_lips, app.lips)
    line = np.exp(-0.5 * ((y - mouth_y) / 0.7) ** 2) * smoothstep(1.02, 0.9, np.abs(x) / corner)
    _blend(tex, 0.7 * line * front, app.lips * 0.35)
    # Nostrils.
    for side in ("r", "l"):
        wing = lm[_IDX[f"nose_wing_{side}"]]
        d = ((x - wing[0] * 0.5) / 4.0) ** 2 + ((y - wing[1] - 3) / 2.2) ** 2
        _blend(tex, 0.8 * smoothstep(1.0, 0.5, d) * front, app.skin * 0.25)
    # Moles and marks: what one side shows and the other hides.
    dirs_el = el
    for mark_az, mark_el, radius, dark in app.marks:
        dist = np.hypot((az - mark_az) * np.cos(mark_el), dirs_el - mark_el) * 100.0
        _blend(tex, dark * smoothstep(radius, radius * 0.6, dist), app.skin * [0.45, 0.33, 0.28])

    # Hair, with strands running down the head.
    mask = hair_mask(az, el, head.shape.hair)
    strands = 1 + 0.18 * _smooth_noise(rng, shape, (3.0, 0.5))
    _blend(tex, mask, app.hair)
    tex = np.where(mask[..., None] > 0.01, tex * (1 + (strands[..., None] - 1) * mask[..., None]),
                   tex)
    return np.clip(tex, 0, 1).astype(np.float32)
