"""Render an identity at a pose: perspective camera, z-buffer, shading, background, nuisance.

Camera: head-frame points ``p`` map to camera coordinates ``R(yaw, pitch, roll) @ p + t``
(:func:`bench.face3d.rotation_matrix`), then to pixels with a pinhole of focal length
:data:`FOCAL_PX` and principal point at the image centre. ``t`` puts an anchor point at a
fixed pixel, like a face crop: the point between the eyes for frontal faces, moving back
into the head as yaw grows, so that profiles stay centred as crops of real profiles do.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ..face3d import LANDMARK_NAMES, rotation_matrix
from .config import Difficulty
from .head import (
    CENTRE,
    MESH_STRIDE,
    Expression,
    expression_offsets,
    grid_normals,
    mesh_faces,
    sample_expression,
)
from .identity import Identity
from .raster import rasterize

IMAGE_SIZE = 112
#: Render this many times larger and box-filter down (anti-aliasing); 1 keeps the small
#: preset within its time budget, and blur and JPEG hide the jagged silhouettes anyway.
SUPERSAMPLE = 1
#: Pixels per mm at the anchor's depth: 35.2 px between the pupils, as in ArcFace's template.
SCALE_PX_PER_MM = 0.559
DISTANCE_MM = 1200.0
FOCAL_PX = SCALE_PX_PER_MM * DISTANCE_MM
PRINCIPAL = ((IMAGE_SIZE - 1) / 2, (IMAGE_SIZE - 1) / 2)
#: Where the anchor lands: the eye midpoint of the 112x112 ArcFace template.
ANCHOR_PX = (PRINCIPAL[0], 51.6)
#: How far behind the eyes (mm) the anchor sits at full profile (times sin^2 yaw).
PROFILE_ANCHOR_MM = 30.0

_IDX = {name: i for i, name in enumerate(LANDMARK_NAMES)}
#: Extra head-frame points (mm) that, with the landmarks, bound the face for the face box.
_BOX_POINTS = np.array([[0, -62, -1], [-58, -35, 25], [58, -35, 25], [-55, 85, 45],
                        [55, 85, 45], [-74, 20, 90], [74, 20, 90]], dtype=np.float64)


@dataclass(frozen=True)
class Pose:
    yaw: float
    pitch: float = 0.0
    roll: float = 0.0


@dataclass(frozen=True)
class Light:
    ambient: float
    ambient_rgb: tuple[float, float, float]
    key_dir: tuple[float, float, float]       # camera frame, from the surface to the light
    key: float
    key_rgb: tuple[float, float, float]
    fill: float
    specular: float
    shininess: float


@dataclass(frozen=True)
class Nuisance:
    """Everything about one image that is not identity or pose."""

    expression: Expression = Expression()
    light: Light = Light(0.4, (1, 1, 1), (0, 0, -1), 0.7, (1, 1, 1), 0.0, 0.0, 20.0)
    background_seed: int = 0
    background: float = 0.0          # clutter strength; 0 = a plain wall
    shift_px: tuple[float, float] = (0.0, 0.0)
    scale: float = 1.0
    blur_sigma: float = 0.0
    downsample: float = 1.0
    noise_sigma: float = 0.0         # in 0..255 units
    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    gamma: float = 1.0
    sunglasses: bool = False
    hat: tuple[float, float, float] | None = None
    fringe: float = 0.0              # mm the hairline comes down over the forehead
    occluder: int = 0                # 0 none, else the seed of a 2D occluder
    greyscale: bool = False
    jpeg_quality: int = 90


def neutral_nuisance() -> Nuisance:
    """Front light, plain background, no blur or noise: for tests and previews."""
    return Nuisance()


def sample_nuisance(rng: np.random.Generator, d: Difficulty) -> Nuisance:
    lam = d.lighting
    az = np.deg2rad(np.clip(rng.normal(0, 35 * lam), -85, 85))
    el = np.deg2rad(rng.uniform(-10, 10 + 35 * min(lam, 1.5)))
    key_dir = (np.sin(az) * np.cos(el), -np.sin(el), -np.cos(az) * np.cos(el))
    warm = rng.normal(0, 0.06 * lam)
    light = Light(
        ambient=float(rng.uniform(0.45 - 0.2 * min(lam, 1.5), 0.5)),
        ambient_rgb=tuple(float(v) for v in 1 + rng.normal(0, 0.03 * lam, 3)),
        key_dir=tuple(float(v) for v in key_dir),
        key=float(rng.uniform(0.55, 0.55 + 0.4 * min(lam, 1.5))),
        key_rgb=(1 + warm, 1.0, 1 - warm),
        fill=float(rng.uniform(0, 0.25)),
        specular=float(rng.uniform(0.03, 0.15)),
        shininess=float(rng.uniform(10, 40)))
    blurry = rng.random() < 0.5
    hair_change = rng.random() < d.hair_change
    hat = rng.uniform(0.05, 0.9, 3) if hair_change and rng.random() < 0.5 else None
    fringe = rng.uniform(10, 30) if hair_change and rng.random() < 0.6 else 0.0
    occluded = rng.random() < d.occlusion
    sunglasses = occluded and rng.random() < 0.35
    return Nuisance(
        expression=sample_expression(rng, d.expression),
        light=light,
        background_seed=int(rng.integers(2 ** 31)),
        background=float(d.background * rng.uniform(0.3, 1.0)),
        shift_px=tuple(float(v) for v in rng.normal(0, d.shift_px, 2)),
        scale=float(np.exp(rng.normal(0, d.scale_jitter))),
        blur_sigma=float(rng.uniform(0.3, 0.3 + 1.0 * d.blur) if blurry else 0.3),
        downsample=float(rng.uniform(1.0, 1.0 + 1.2 * d.blur) if rng.random() < 0.3 else 1.0),
        noise_sigma=float(rng.uniform(0.5, 0.5 + 5.0 * d.noise)),
        gain=tuple(float(v) for v in np.exp(rng.normal(0, d.colour_cast, 3))),
        gamma=float(np.exp(rng.normal(0, 0.08))),
        sunglasses=bool(sunglasses),
        hat=None if hat is None else tuple(float(v) for v in hat),
        fringe=float(fringe),
        occluder=int(rng.integers(1, 2 ** 31)) if occluded and not sunglasses else 0,
        greyscale=bool(rng.random() < d.greyscale),
        jpeg_quality=int(rng.integers(d.jpeg_quality[0], d.jpeg_quality[1] + 1)))


@dataclass(frozen=True)
class Rendered:
    image: np.ndarray        # (112, 112, 3) uint8 RGB
    landmarks: np.ndarray    # (22, 2) float pixel coordinates (self-occluded points too)
    visible: np.ndarray      # (22,) bool: not hidden by the head itself
    box: np.ndarray          # (4,) x, y, w, h of the face in pixels
    depth: np.ndarray        # (22,) camera-frame depth of the landmarks, mm


@dataclass(frozen=True)
class _Topology:
    rows: int
    cols: int
    faces: np.ndarray        # (F, 3) mesh vertex indices
    face_uv: np.ndarray      # (F, 3, 2) texture (row, col) per corner, unwrapped at the seam


@lru_cache(maxsize=4)
def _topology(grid_rows: int, grid_cols: int) -> _Topology:
    rows = len(range(0, grid_rows, MESH_STRIDE))
    cols = grid_cols // MESH_STRIDE
    faces = mesh_faces(rows, cols)
    r, c = np.divmod(faces, cols)
    c = c.astype(np.float64)
    # A triangle across the back seam mixes column cols-1 with column 0: unwrap it.
    c = np.where((c.max(1, keepdims=True) - c) > cols / 2, c + cols, c)
    uv = np.stack([r * MESH_STRIDE, c * MESH_STRIDE], -1).astype(np.float32)
    return _Topology(rows, cols, faces, uv)


def _rotate(points: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """``points @ rot.T`` written out: identical bits whatever BLAS and thread count."""
    x, y, z = points[..., 0:1], points[..., 1:2], points[..., 2:3]
    return x * rot[:, 0] + y * rot[:, 1] + z * rot[:, 2]


def _sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup, wrapping in columns and clamping rows. ``uv``: (P, 2) (row, col)."""
    rows, cols = texture.shape[:2]
    r = np.clip(uv[:, 0], 0, rows - 1)
    c = np.mod(uv[:, 1], cols)
    r0 = np.minimum(np.floor(r).astype(np.int64), rows - 2)
    c0 = np.floor(c).astype(np.int64) % cols   # float rounding can give c == cols
    fr, fc = (r - r0)[:, None], (c - c0)[:, None]
    c1 = (c0 + 1) % cols
    top = texture[r0, c0] * (1 - fc) + texture[r0, c1] * fc
    bottom = texture[r0 + 1, c0] * (1 - fc) + texture[r0 + 1, c1] * fc
    return top * (1 - fr) + bottom * fr


def camera_translation(pose: Pose, nuisance: Nuisance) -> np.ndarray:
    rot = rotation_matrix(pose.yaw, pose.pitch, pose.roll)
    anchor = np.array([0.0, 0.0, PROFILE_ANCHOR_MM * np.sin(np.deg2rad(pose.yaw)) ** 2])
    depth = DISTANCE_MM * nuisance.scale
    target_px = np.array([ANCHOR_PX[0] + nuisance.shift_px[0], ANCHOR_PX[1] + nuisance.shift_px[1]])
    target = np.array([*((target_px - PRINCIPAL) * depth / FOCAL_PX), depth])
    return target - _rotate(anchor, rot)


def project(cam: np.ndarray, supersample: int = 1) -> np.ndarray:
    """Camera-frame points (..., 3) -> pixel coordinates (..., 2) of an image ``supersample``
    times larger (pixel centres at integers in both)."""
    z = cam[..., 2:3]
    px = FOCAL_PX * cam[..., :2] / z + np.array(PRINCIPAL)
    return px * supersample + (supersample - 1) / 2


def _modify_albedo(albedo, rest, identity: Identity, nz: Nuisance) -> None:
    """Per-image changes painted on the surface: open mouth, sunglasses, hat, fringe."""
    lm = identity.landmarks
    x, y = rest[:, 0], rest[:, 1]
    front = rest[:, 2] < 40
    expr = nz.expression
    if expr.jaw_open > 0.1:
        mouth_y = lm[_IDX["mouth_centre"], 1]
        corner = abs(lm[_IDX["mouth_corner_l"], 0])
        gap = (np.abs(y - mouth_y - 1.0) < 0.4 + 1.5 * expr.jaw_open) \
            & (np.abs(x) < corner * (0.8 - 0.3 * (1 - expr.jaw_open))) & front
        albedo[gap] = [0.16, 0.05, 0.05]
    if nz.sunglasses:
        lens = np.zeros(len(x), dtype=bool)
        for side in ("r", "l"):
            p = lm[_IDX[f"pupil_{side}"]]
            lens |= ((x - p[0]) / 17) ** 2 + ((y - p[1] - 2) / 12) ** 2 < 1
        lens |= (np.abs(x) < 16) & (np.abs(y + 3) < 1.2)
        albedo[lens & front] = [0.04, 0.04, 0.05]
    d = rest - CENTRE
    el = np.arcsin(np.clip(d[:, 1] / np.linalg.norm(d, axis=1), -1, 1))
    if nz.fringe:
        hair = identity.head.shape.hair
        forehead = front & (y < lm[_IDX["brow_mid_l"], 1] - 22 + nz.fringe) \
            & (el > hair.front - 0.05) & (np.abs(x) < 58)
        albedo[forehead] = identity.appearance.hair
    if nz.hat is not None:
        albedo[el < np.deg2rad(-44)] = nz.hat


def _muted(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    """Colours of walls, furniture and clothes: mostly desaturated, any brightness."""
    hsv = np.column_stack([rng.uniform(0, 180, n), rng.uniform(0, 110, n) * rng.random(n),
                           rng.uniform(40, 235, n)]).astype(np.float32)
    return cv2.cvtColor(hsv[None].astype(np.uint8), cv2.COLOR_HSV2RGB)[0] / np.float32(255)


def _background(rng: np.random.Generator, strength: float) -> np.ndarray:
    size = IMAGE_SIZE
    img = np.broadcast_to(_muted(rng)[0], (size, size, 3)).astype(np.float32).copy()
    grad = rng.normal(0, 0.2 * strength, 2).astype(np.float32)
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    img += (ramp[None, :] * grad[0] + ramp[:, None] * grad[1])[..., None]
    blobs = rng.normal(0, 0.08 * strength, (5, 5, 3)).astype(np.float32)
    img += cv2.resize(blobs, (size, size), interpolation=cv2.INTER_CUBIC)
    n_shapes = int(rng.poisson(3 * strength))
    colours = _muted(rng, max(n_shapes, 1))
    for k in range(n_shapes):
        x0, y0 = rng.integers(0, size, 2)
        w, h = rng.integers(6, 60, 2)
        img[y0:y0 + h, x0:x0 + w] = colours[k]
    return np.clip(img, 0, 1)


def _draw_occluder(img: np.ndarray, seed: int, skin) -> None:
    rng = np.random.default_rng(seed)
    colour = rng.uniform(0.05, 0.95, 3) if rng.random() < 0.6 else np.asarray(skin) * 0.95
    centre = (int(rng.uniform(25, 87) * 16), int(rng.uniform(60, 110) * 16))
    axes = (int(rng.uniform(10, 28) * 16), int(rng.uniform(6, 20) * 16))
    angle = float(rng.uniform(0, 180))
    mask = np.zeros(img.shape[:2], dtype=np.float32)
    cv2.ellipse(mask, centre, axes, angle, 0, 360, 1.0, -1, cv2.LINE_AA, shift=4)
    shade = np.linspace(1.1, 0.8, img.shape[0], dtype=np.float32)[:, None, None]
    img *= 1 - mask[..., None]
    img += mask[..., None] * colour * shade


def render(identity: Identity, pose: Pose, nuisance: Nuisance | None = None) -> Rendered:
    """Render one 112x112 RGB image with its landmarks, visibility and face box."""
    nz = nuisance if nuisance is not None else neutral_nuisance()
    rot = rotation_matrix(pose.yaw, pose.pitch, pose.roll)
    t = camera_translation(pose, nz)
    frags, colour = _surface(identity, rot, t, nz)
    rng = np.random.default_rng(nz.background_seed)
    img = _compose(frags, colour, _background(rng, nz.background))
    if nz.occluder:
        _draw_occluder(img, nz.occluder, identity.appearance.skin)
    img = _camera_effects(img, nz, rng)

    landmarks = identity.landmarks + expression_offsets(identity.landmarks, identity.landmarks,
                                                        nz.expression)
    big = IMAGE_SIZE * SUPERSAMPLE
    zbuf = np.full(big * big, np.inf)
    zbuf[frags.pixel] = frags.depth
    lm_cam = _rotate(landmarks, rot) + t
    visible = _visible(lm_cam, zbuf, big)
    box_cam = _rotate(_BOX_POINTS, rot) + t
    lm_px = project(lm_cam)
    box_pts = np.concatenate([lm_px[visible], project(box_cam)[_visible(box_cam, zbuf, big)]])
    lo = np.clip(box_pts.min(0), 0, IMAGE_SIZE - 1)
    hi = np.clip(box_pts.max(0), 0, IMAGE_SIZE - 1)
    box = np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])
    return Rendered(image=img, landmarks=lm_px, visible=visible, box=box, depth=lm_cam[:, 2])


def _surface(identity: Identity, rot: np.ndarray, t: np.ndarray, nz: Nuisance):
    """Visible fragments of the posed, expressive head and their shaded colours."""
    head = identity.head
    topo = _topology(head.grid.rows, head.grid.cols)
    rest = head.points[::MESH_STRIDE, ::MESH_STRIDE][: topo.rows]
    rest_flat = rest.reshape(-1, 3)
    verts = rest_flat + expression_offsets(rest_flat, identity.landmarks, nz.expression)
    cam = _rotate(verts, rot) + t
    normals = _rotate(grid_normals(verts.reshape(rest.shape)).reshape(-1, 3), rot)
    big = IMAGE_SIZE * SUPERSAMPLE
    frags = rasterize(project(cam, SUPERSAMPLE), cam[:, 2], topo.faces, big, big)

    corner = topo.faces[frags.face]                              # (P, 3)
    b = frags.bary
    uv = _interp(topo.face_uv[frags.face], b)
    n = _unit(_interp(normals.astype(np.float32)[corner], b))
    pos = _interp(cam.astype(np.float32)[corner], b)
    albedo = _sample_texture(identity.texture, uv)
    _modify_albedo(albedo, _interp(rest_flat.astype(np.float32)[corner], b), identity, nz)
    return frags, _shade(albedo, n, pos, nz.light)


def _compose(frags, colour: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The face over the background, box-filtered down when rendered supersampled."""
    size, ss = IMAGE_SIZE, SUPERSAMPLE
    if ss == 1:
        img = background.reshape(-1, 3)
        img[frags.pixel] = colour
        return img.reshape(size, size, 3)
    big = size * ss
    canvas = np.zeros((big * big, 3), np.float32)
    cover = np.zeros(big * big, np.float32)
    canvas[frags.pixel] = colour
    cover[frags.pixel] = 1.0
    canvas = canvas.reshape(size, ss, size, ss, 3).mean(axis=(1, 3))
    cover = cover.reshape(size, ss, size, ss).mean(axis=(1, 3))
    return canvas + (1 - cover[..., None]) * background


def _interp(values: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """Per-fragment attribute from (P, 3, C) corner values and (P, 3) barycentrics."""
    return values[:, 0] * bary[:, 0:1] + values[:, 1] * bary[:, 1:2] + values[:, 2] * bary[:, 2:3]


def _dot(a: np.ndarray, b) -> np.ndarray:
    return a[:, 0] * b[..., 0] + a[:, 1] * b[..., 1] + a[:, 2] * b[..., 2]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.sqrt(_dot(v, v)), 1e-9)[:, None]


def _shade(albedo: np.ndarray, n: np.ndarray, pos: np.ndarray, lt: Light) -> np.ndarray:
    """Lambert (ambient, key and a weaker opposite fill) plus Blinn-Phong highlights."""
    key = np.asarray(lt.key_dir, dtype=np.float32)
    fill = key * np.array([-1.0, 0.3, 1.0], dtype=np.float32)
    fill /= np.linalg.norm(fill)
    diffuse = (np.asarray(lt.ambient, np.float32) * np.asarray(lt.ambient_rgb, np.float32)
               + np.float32(lt.key) * np.asarray(lt.key_rgb, np.float32)
               * np.maximum(_dot(n, key), 0)[:, None]
               + np.float32(lt.fill) * np.maximum(_dot(n, fill), 0)[:, None])
    half = _unit(key - _unit(pos))
    spec = np.float32(lt.specular * lt.key) * np.maximum(_dot(n, half), 0) ** np.float32(
        lt.shininess)
    return albedo * diffuse + spec[:, None]


def _visible(cam: np.ndarray, zbuf: np.ndarray, big: int, tol_mm: float = 4.0) -> np.ndarray:
    px = np.rint(project(cam, SUPERSAMPLE)).astype(np.int64)
    inside = (px >= 0).all(1) & (px < big).all(1)
    flat = np.clip(px[:, 1], 0, big - 1) * big + np.clip(px[:, 0], 0, big - 1)
    return inside & (cam[:, 2] <= zbuf[flat] + tol_mm)


def _camera_effects(img: np.ndarray, nz: Nuisance, rng: np.random.Generator) -> np.ndarray:
    size = img.shape[0]
    img = np.clip(img * np.asarray(nz.gain, dtype=np.float32), 0, 1) ** np.float32(nz.gamma)
    if nz.greyscale:
        grey = img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114
        img = np.repeat(grey[..., None], 3, axis=2)
    if nz.downsample > 1.01:
        small = max(8, int(round(size / nz.downsample)))
        img = cv2.resize(cv2.resize(img, (small, small), interpolation=cv2.INTER_AREA),
                         (size, size), interpolation=cv2.INTER_LINEAR)
    if nz.blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), nz.blur_sigma)
    img = img * 255 + rng.normal(0, nz.noise_sigma, img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
