"""Batched least-squares similarity transforms (rotation, uniform scale, translation).

``fit_similarity`` minimises ``sum_k w_k |A src_k + t - dst_k|^2`` over A = s R (R a proper
rotation, s >= 0). That is the objective of Umeyama's method with scaling, which
``skimage.transform.SimilarityTransform.estimate`` (and through it insightface's
``estimate_norm``) implements with an SVD; in 2-D the minimiser has the closed form used
here: with centred points, A = [[a, -b], [b, a]] where a = sum(x u + y v) / sum(x^2 + y^2)
and b = sum(x v - y u) / sum(x^2 + y^2). It is vectorised over a batch, takes per-point
weights (absent points weigh 0; NaN points count as absent) and never needs an SVD, so a
point set that is collinear is fine and only a set with no spread at all is degenerate.

Transforms are (N, 2, 3) float64 arrays mapping source pixels to destination pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _weights(src: np.ndarray, dst: np.ndarray, weights) -> np.ndarray:
    w = np.ones(src.shape[:-1]) if weights is None else np.asarray(weights, dtype=np.float64)
    finite = np.isfinite(src).all(-1) & np.isfinite(dst).all(-1)
    return np.where(finite, np.broadcast_to(w, finite.shape), 0.0)


def fit_similarity(src, dst, weights=None) -> np.ndarray:
    """Least-squares similarity from ``src`` to ``dst``.

    ``src``: (N, K, 2); ``dst``: (N, K, 2) or (K, 2); ``weights``: (N, K) or (K,) >= 0.
    Returns (N, 2, 3); a row is NaN where the weighted source points have no spread
    (fewer than two distinct points), so the transform is undefined.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.broadcast_to(np.asarray(dst, dtype=np.float64), src.shape)
    if src.ndim != 3 or src.shape[-1] != 2:
        raise ValueError(f"src must be (N, K, 2), got {src.shape}")
    w = _weights(src, dst, weights)
    total = w.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        wn = w / total
    s0 = np.where(w[..., None] > 0, src, 0.0)
    d0 = np.where(w[..., None] > 0, dst, 0.0)
    mu_s = np.einsum("nk,nkd->nd", wn, s0)
    mu_d = np.einsum("nk,nkd->nd", wn, d0)
    xs, ys = (s0 - mu_s[:, None]).transpose(2, 0, 1)
    us, vs = (d0 - mu_d[:, None]).transpose(2, 0, 1)
    norm = np.einsum("nk,nk->n", wn, xs * xs + ys * ys)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.einsum("nk,nk->n", wn, xs * us + ys * vs) / norm
        b = np.einsum("nk,nk->n", wn, xs * vs - ys * us) / norm
    lin = np.stack([np.stack([a, -b], -1), np.stack([b, a], -1)], -2)
    t = mu_d - np.einsum("nij,nj->ni", lin, mu_s)
    out = np.concatenate([lin, t[..., None]], -1)
    # Relative threshold: spread below 1e-12 of the coordinates' magnitude is round-off.
    scale2 = np.einsum("nk,nkd->n", wn, s0 * s0) + 1.0
    out[~(norm > 1e-12 * scale2)] = np.nan
    return out


def apply(transforms, points) -> np.ndarray:
    """Map (N, K, 2) points through (N, 2, 3) transforms (or one (2, 3) for all)."""
    m = np.asarray(transforms, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64)
    return np.einsum("...ij,...kj->...ki", m[..., :2], p) + m[..., None, :, 2]


def invert(transforms) -> np.ndarray:
    """Inverse of (..., 2, 3) affine transforms."""
    m = np.asarray(transforms, dtype=np.float64)
    lin_inv = np.linalg.inv(m[..., :2])
    t = -np.einsum("...ij,...j->...i", lin_inv, m[..., 2])
    return np.concatenate([lin_inv, t[..., None]], -1)


def compose(outer, inner) -> np.ndarray:
    """The transform ``outer(inner(x))`` of (..., 2, 3) affine transforms."""
    o = np.asarray(outer, dtype=np.float64)
    i = np.asarray(inner, dtype=np.float64)
    lin = o[..., :2] @ i[..., :2]
    t = np.einsum("...ij,...j->...i", o[..., :2], i[..., 2]) + o[..., 2]
    return np.concatenate([lin, t[..., None]], -1)


def box_transforms(boxes, face_box) -> np.ndarray:
    """Axis-aligned similarity placing each box's centre on the face box centre and its
    longer side on the face box side (a square crop around the box).

    ``boxes``: (N, 4) x, y, w, h with (x, y) the top-left pixel and w, h in pixels;
    ``face_box``: (3,) cx, cy, side in destination pixels. NaN rows for empty boxes.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    cx, cy, side = np.asarray(face_box, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = side / np.maximum(b[:, 2], b[:, 3])
    s = np.where(np.isfinite(s) & (s > 0), s, np.nan)
    # pixel-centre convention: the box covers columns x .. x + w - 1
    bx = b[:, 0] + b[:, 2] / 2 - 0.5
    by = b[:, 1] + b[:, 3] / 2 - 0.5
    zero = np.zeros_like(s)
    out = np.stack([np.stack([s, zero, cx - s * bx], -1),
                    np.stack([zero, s, cy - s * by], -1)], -2)
    out[~np.isfinite(s)] = np.nan
    return out


def _rms_spread(points: np.ndarray, used: np.ndarray) -> np.ndarray:
    """RMS distance of the used points from their centroid; NaN with no point."""
    n = used.sum(1)
    p = np.where(used[..., None], points, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = p.sum(1) / n[:, None]
        d = np.where(used[..., None], p - centroid[:, None], 0.0)
        return np.sqrt((d ** 2).sum((1, 2)) / n)


@dataclass(frozen=True)
class FitQuality:
    """Per-sample diagnostics of a fit, all (N,) arrays.

    ``n_points``: points used; ``spread``: RMS distance of the used source points from
    their centroid, in source pixels; ``residual``: RMS fit error divided by the RMS spread
    of the used destination points (0 = perfect, about 1 = no better than a point);
    ``rotation``: in-plane rotation in degrees; ``scale``: destination px per source px.
    """

    n_points: np.ndarray
    spread: np.ndarray
    residual: np.ndarray
    rotation: np.ndarray
    scale: np.ndarray


def fit_quality(transforms, src, dst, weights=None) -> FitQuality:
    src = np.asarray(src, dtype=np.float64)
    dst = np.broadcast_to(np.asarray(dst, dtype=np.float64), src.shape)
    w = _weights(src, dst, weights) > 0
    n = w.sum(1)
    m = np.asarray(transforms, dtype=np.float64)
    err = np.where(w[..., None], apply(m, np.where(w[..., None], src, 0.0)) - dst, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        residual = np.sqrt((err ** 2).sum((1, 2)) / np.maximum(n, 1)) / _rms_spread(dst, w)
    return FitQuality(
        n_points=n,
        spread=_rms_spread(src, w),
        residual=residual,
        rotation=np.degrees(np.arctan2(m[:, 1, 0], m[:, 0, 0])),
        scale=np.hypot(m[:, 0, 0], m[:, 1, 0]),
    )
