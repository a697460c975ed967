"""A vectorised z-buffer triangle rasteriser (numpy, no per-pixel or per-triangle loops).

Triangles are grouped by the size of their pixel bounding box; each group tests every
pixel of a fixed-size window at once. The nearest fragment per pixel wins through one
``np.minimum.at`` on a key that packs quantised depth and triangle id, so ties resolve the
same way on every machine. Pixel centres are at integer coordinates (OpenCV's convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_FACE_BITS = 22
_DEPTH_LEVELS = 1 << 38


@dataclass(frozen=True)
class Fragments:
    """The visible surface: one entry per covered pixel, in increasing pixel order."""

    pixel: np.ndarray   # (P,) flat pixel index (row * width + col)
    face: np.ndarray    # (P,) triangle index
    bary: np.ndarray    # (P, 3) float32 barycentric weights of the triangle's vertices
    depth: np.ndarray   # (P,) interpolated depth


def _window_fragments(tri_ids, p, inv_area, lo, hi, size, width):
    oy, ox = np.divmod(np.arange(size * size, dtype=np.int32), size)
    px = lo[:, 0:1] + ox[None, :]
    py = lo[:, 1:2] + oy[None, :]
    t, k = np.nonzero((px <= hi[:, 0:1]) & (py <= hi[:, 1:2]))
    px, py = px[t, k], py[t, k]
    fx, fy = px.astype(np.float32), py.astype(np.float32)
    a, b, c = p[t, 0], p[t, 1], p[t, 2]
    ia = inv_area[t]
    # Edge functions: barycentric weight of each vertex = area of the opposite sub-triangle.
    w0 = ((b[:, 0] - fx) * (c[:, 1] - fy) - (b[:, 1] - fy) * (c[:, 0] - fx)) * ia
    w1 = ((c[:, 0] - fx) * (a[:, 1] - fy) - (c[:, 1] - fy) * (a[:, 0] - fx)) * ia
    w2 = 1.0 - w0 - w1
    inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
    pixel = py[inside].astype(np.int64) * width + px[inside]
    return pixel, tri_ids[t[inside]], w0[inside], w1[inside], w2[inside]


def rasterize(xy: np.ndarray, depth: np.ndarray, faces: np.ndarray, height: int,
              width: int) -> Fragments:
    """Rasterise front-facing triangles (positive signed area with y pointing down).

    ``xy``: (V, 2) pixel coordinates, ``depth``: (V,) distance along the view axis (smaller is
    nearer), ``faces``: (F, 3) vertex indices. Returns the nearest fragment of each pixel.
    """
    if len(faces) >= 1 << _FACE_BITS:
        raise ValueError(f"at most {1 << _FACE_BITS} triangles")
    xy = xy.astype(np.float32)
    a, b, c = xy[faces[:, 0]], xy[faces[:, 1]], xy[faces[:, 2]]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    ids = np.nonzero(area > 1e-9)[0]                  # back faces and slivers culled first
    p = np.stack([a[ids], b[ids], c[ids]], axis=1)    # (F', 3, 2)
    # Reductions over an axis of length 3 are slow in numpy: take element-wise extrema.
    pmin = np.minimum(np.minimum(p[:, 0], p[:, 1]), p[:, 2])
    pmax = np.maximum(np.maximum(p[:, 0], p[:, 1]), p[:, 2])
    lo = np.maximum(np.ceil(pmin), 0).astype(np.int32)
    hi = np.minimum(np.floor(pmax), [width - 1, height - 1]).astype(np.int32)
    ok = np.nonzero((hi[:, 0] >= lo[:, 0]) & (hi[:, 1] >= lo[:, 1]))[0]
    ids, p, lo, hi = ids[ok], p[ok], lo[ok], hi[ok]
    inv_area = (1.0 / area[ids]).astype(np.float32)
    span = np.maximum(hi[:, 0] - lo[:, 0], hi[:, 1] - lo[:, 1]) + 1

    parts = []
    start = 0
    for size in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128, 256, max(height, width)):
        sel = np.nonzero((span > start) & (span <= size))[0]
        start = size
        if sel.size:
            parts.append(_window_fragments(ids[sel], p[sel], inv_area[sel], lo[sel], hi[sel],
                                           size, width))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return Fragments(empty, empty, np.zeros((0, 3), np.float32), np.zeros(0))
    pixel, face, w0, w1, w2 = (np.concatenate(c) for c in zip(*parts, strict=True))
    d = depth[faces[face]]
    z = w0 * d[:, 0] + w1 * d[:, 1] + w2 * d[:, 2]
    # Quantise depth relative to the visible range; the triangle id in the low bits makes
    # every key unique, so the minimum is one fragment per pixel.
    z0, z1 = float(z.min()), float(z.max())
    zq = ((z - z0) * ((_DEPTH_LEVELS - 1) / max(z1 - z0, 1e-9))).astype(np.int64)
    key = (zq << _FACE_BITS) | face
    best = np.full(height * width, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(best, pixel, key)
    win = np.nonzero(best[pixel] == key)[0]
    order = np.argsort(pixel[win], kind="stable")
    win = win[order]
    bary = np.stack([w0[win], w1[win], w2[win]], axis=1)
    return Fragments(pixel[win], face[win], bary, z[win])
